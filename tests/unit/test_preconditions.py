"""Pre-conditions (tools/preconditions.py): parsing a checks file, which files are accepted,
the verdict on a check's rows and the refusal line. Running them on PostgreSQL:
tests/integration/test_preconditions.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tools import preconditions
from tools.config import Config
from tools.errors import WorkflowError
from tools.preconditions import Check, Result, parse
from tools.staging import publish, staged

V1, V2 = "20260101000000", "20260102000000"


def project(tmp_path, checks: dict[str, str] | None = None) -> Config:
    root = tmp_path / "project"
    (root / "migrations").mkdir(parents=True)
    (root / "migrations" / f"{V1}_initial.sql").write_text("SELECT 1;\n")
    (root / "migrations" / f"{V2}_not_null.sql").write_text("SELECT 2;\n")
    (root / "migrations" / "atlas.sum").write_text("h1:x\n")
    if checks is not None:
        (root / "migrations" / "checks").mkdir()
        for name, text in checks.items():
            (root / "migrations" / "checks" / name).write_text(text)
    return Config(root=root, values={}, env_names=["local"])


def refused(fn, *args) -> str:
    with pytest.raises(WorkflowError) as err:
        fn(*args)
    return str(err.value)


def test_each_select_is_a_check_named_by_its_comment_or_its_sql():
    text = (
        "-- a header, no check's name\n\n"
        "-- no line without a total\n"
        "SELECT NOT EXISTS (SELECT 1 FROM order_items WHERE line_total IS NULL);\n"
        "\n"
        "select count(*) = 0\n  from customers where full_name = 'Zoë';  -- trailing note\n"
        "-- a\n-- b\nSELECT true"
    )
    checks = parse(text, "migrations/checks/1.sql")
    assert [(c.number, c.line, c.name) for c in checks] == [
        (1, 4, "no line without a total"),
        (2, 6, "select count(*) = 0 from customers where full_name = 'Zoë'"),
        (3, 10, "a b"),
    ]
    assert checks[1].sql == "select count(*) = 0\n  from customers where full_name = 'Zoë'"
    assert str(checks[0]) == "migrations/checks/1.sql check 1 (line 4): no line without a total"


@pytest.mark.parametrize(
    "text, message",
    [
        ("SELECT 1;\nDELETE FROM customers;", "f.sql line 2: a check must be a SELECT, not DELETE"),
        ("SELECT true INTO copy;", "f.sql line 1: a check must be a SELECT, not SELECT INTO"),
        ("UPDATE t SET a = 1", "f.sql line 1: a check must be a SELECT, not UPDATE"),
        ("SELEC 1;", 'f.sql is not valid SQL: syntax error at or near "SELEC"'),
        ("-- nothing but a comment\n", "f.sql holds no check"),
        ("", "f.sql holds no check"),
    ],
    ids=["delete", "select-into", "update", "syntax", "comment-only", "empty"],
)
def test_what_is_not_a_check_is_refused(text, message):
    assert refused(parse, text, "f.sql").startswith(message)


def test_a_blank_line_parts_a_comment_from_the_check_below():
    checks = parse("-- about the file\n\nSELECT true;\n  -- indented\n  SELECT 1 = 1;", "f.sql")
    assert [c.name for c in checks] == ["SELECT true", "indented"]


def test_a_long_check_is_named_by_its_first_100_characters():
    check = parse("SELECT " + " AND ".join(f"col{i} IS NOT NULL" for i in range(20)), "f.sql")[0]
    assert len(check.name) == 100 and check.name.endswith("...")


@pytest.mark.parametrize(
    "rows, verdict",
    [
        ([(True,)], (True, "true")),
        ([(False,)], (False, "returned false, not true")),
        ([(None,)], (False, "returned NULL, not true")),
        ([], (False, "returned no row")),
        ([(True,), (True,)], (False, "returned more than one row")),
        ([(1,)], (False, "returned 1, not true")),
        ([(Decimal("0"),)], (False, "returned Decimal('0'), not true")),
    ],
    ids=["true", "false", "null", "no-row", "two-rows", "one-not-true", "zero"],
)
def test_only_one_row_holding_true_passes(rows, verdict):
    assert preconditions._verdict(rows) == verdict


def test_the_refusal_names_the_first_failed_check_and_counts_the_others():
    checks = [Check("migrations/checks/2.sql", n, n, f"check {n}", "SELECT") for n in (1, 2, 3)]
    results = [Result(checks[0], True, "true"), Result(checks[1], False, "returned NULL, not true")]
    results.append(Result(checks[2], False, "error: relation does not exist"))
    error = preconditions.refusal(results, "staging")
    assert error is not None
    assert error.message == (
        "a pre-condition does not hold on staging, nothing was applied: migrations/checks/2.sql check 2 (line 2): "
        "check 2 -> returned NULL, not true (2 of 3 check(s) failed)"
    )
    assert "inv migrate.apply --env staging --dry-run" in (error.hint or "")
    assert preconditions.refusal(results[:1], "staging") is None
    assert preconditions.refusal([], "staging") is None


def test_checks_load_by_version_and_attach_to_their_files(tmp_path):
    config = project(tmp_path, {f"{V2}.sql": "SELECT true;\nSELECT 1 = 1;\n"})
    assert list(preconditions.load(config)) == [V2]
    assert [c.number for c in preconditions.for_files(config, [f"{V1}_initial.sql", f"{V2}_not_null.sql"])] == [1, 2]
    assert preconditions.for_files(config, [f"{V1}_initial.sql"]) == []


def test_no_checks_directory_means_no_checks(tmp_path):
    assert preconditions.load(project(tmp_path)) == {}
    assert preconditions.load(project(tmp_path / "b", {})) == {}


@pytest.mark.parametrize(
    "name, message",
    [
        ("29990101000000.sql", "migrations/checks/29990101000000.sql guards version 29990101000000, but no file"),
        (f"{V2}_not_null.sql", f"migrations/checks/{V2}_not_null.sql is not named <version>.sql"),
        ("README.md", "migrations/checks/README.md is not named <version>.sql"),
    ],
    ids=["unknown-version", "named-like-the-file", "not-sql"],
)
def test_a_checks_file_naming_no_migration_is_refused(tmp_path, name, message):
    assert refused(preconditions.load, project(tmp_path, {name: "SELECT true;\n"})).startswith(message)


def test_a_link_or_a_directory_in_checks_is_refused(tmp_path):
    config = project(tmp_path, {})
    outside = tmp_path / "outside.sql"
    outside.write_text("SELECT true;\n")
    (config.root / "migrations" / "checks" / f"{V2}.sql").symlink_to(outside)
    assert refused(preconditions.load, config).startswith(f"migrations/checks/{V2}.sql is a symbolic link (to ")
    (config.root / "migrations" / "checks" / f"{V2}.sql").unlink()
    (config.root / "migrations" / "checks" / f"{V2}.sql").mkdir()
    assert refused(preconditions.load, config).startswith(f"migrations/checks/{V2}.sql is not a regular file")


def test_checks_itself_a_link_is_refused(tmp_path):
    config = project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (config.root / "migrations" / "checks").symlink_to(elsewhere)
    assert refused(preconditions.load, config).startswith("migrations/checks is a symbolic link (to ")


def test_a_staged_diff_leaves_the_checks_alone(tmp_path):
    """A diff's private copy holds what Atlas reads (the top-level files); publishing a new file keeps checks/."""
    config = project(tmp_path, {f"{V2}.sql": "SELECT true;\n"})
    target = config.root / "migrations"
    with staged(config.root, target) as copy:
        assert sorted(p.name for p in copy.directory.iterdir()) == sorted(p.name for p in target.glob("*.*"))
        new = copy.directory / "20260103000000_next.sql"
        new.write_text("SELECT 3;\n")
        (copy.directory / "atlas.sum").write_text("h1:y\n")
        publish(copy, [new])
    assert (target / "checks" / f"{V2}.sql").read_text() == "SELECT true;\n"
    assert (target / "20260103000000_next.sql").exists()
