"""Pre-apply analysis that needs no database: type narrowing rules, SQL findings, squawk wiring."""

from __future__ import annotations

import pytest

from tests.conftest import require
from tools import safety


@pytest.mark.parametrize(
    "old,new,lossy",
    [
        ("character varying(200)", "varchar(20)", True),
        ("character varying(20)", "varchar(200)", False),
        ("character varying(20)", "text", False),
        ("text", "varchar(5)", True),
        ("integer", "bigint", False),
        ("bigint", "int", True),
        ("smallint", "int4", False),
        ("numeric(12,2)", "numeric(10, 2)", True),
        ("numeric(12,2)", "numeric(14, 2)", False),
        ("numeric(12,2)", "numeric(12, 1)", True),
        ("integer", "boolean", True),
        ("timestamp with time zone", "timestamptz", False),
    ],
    ids=lambda v: str(v),
)
def test_narrowing(old, new, lossy):
    assert (safety.narrowing(old, new) is not None) is lossy


def test_sql_findings_without_a_target(tmp_path):
    f = tmp_path / "1_x.sql"
    f.write_text('DROP TYPE "public"."status";\nALTER TABLE t ALTER COLUMN c TYPE int;\n')
    findings = safety.type_change_findings([f], None)
    assert [(x.code, x.blocking) for x in findings] == [("drop-type", True)]


def test_broken_sql_is_a_blocking_finding(tmp_path):
    f = tmp_path / "1_x.sql"
    f.write_text("ALTER TABLEE t ADD COLUMN c int;\n")
    (finding,) = safety.type_change_findings([f], None)
    assert finding.code == "syntax" and finding.blocking


def test_squawk_reports_lock_problems_with_the_alternative(tmp_path):
    require(safety.squawk_binary() is not None, "squawk is not installed (pip install squawk-cli)")
    f = tmp_path / "1_x.sql"
    f.write_text("CREATE INDEX ix_a ON t (a);\nALTER TABLE t DROP COLUMN b;\n")
    findings = safety.squawk([f])
    rules = {x.code: x for x in findings}
    assert "require-concurrent-index-creation" in rules
    assert "concurrently" in rules["require-concurrent-index-creation"].text.lower()
    assert not rules["require-concurrent-index-creation"].blocking
    assert rules["ban-drop-column"].blocking
    assert not any(code in safety.SQUAWK_EXCLUDE for code in rules)


def _target(config, name: str):
    """An environment resolved as the task edge does (its URL is not read by the guard)."""
    from tools.config import Target, env_var_for

    return Target(name, "postgres://h/db", env_var_for(name), config.is_protected(name))


def test_protected_environment_confirmation(tmp_path):
    from tools.config import Config
    from tools.console import guard
    from tools.errors import WorkflowError

    (tmp_path / "atlas.hcl").write_text('env "local" {\n}\nenv "production" {\n}\n')
    config = Config.load(tmp_path, environ={})
    guard(_target(config, "production"), yes=False, ask=lambda _: "production", isatty=lambda: True)  # typed: goes on
    guard(_target(config, "production"), yes=True, ask=None, isatty=lambda: False)  # --yes: no question
    guard(_target(config, "local"), yes=False, ask=None, isatty=lambda: False)  # local never asks
    with pytest.raises(WorkflowError, match="not confirmed; nothing was applied on production"):
        guard(_target(config, "production"), yes=False, ask=lambda _: "prod", isatty=lambda: True)
    with pytest.raises(WorkflowError, match="no terminal to confirm"):
        guard(_target(config, "production"), yes=False, ask=lambda _: "production", isatty=lambda: False)


def test_confirmation_names_the_action_and_the_files(tmp_path):
    from tools.config import Config
    from tools.console import guard

    (tmp_path / "atlas.hcl").write_text('env "local" {\n}\nenv "production" {\n}\n')
    config = Config.load(tmp_path, environ={})
    asked = []
    guard(
        _target(config, "production"),
        yes=False,
        ask=lambda q: asked.append(q) or "production",
        isatty=lambda: True,
        action="apply 2 file(s)",
        files=["20260101000000_a.sql", "20260102000000_b.sql"],
    )
    assert asked == [
        "  20260101000000_a.sql\n  20260102000000_b.sql\nApply 2 file(s) on production? Type the environment name to "
        "confirm: "
    ]


def test_file_duration_from_atlas_timestamps():
    from tools.apply import _file_ms

    entry = {"Start": "2026-11-25T18:40:01.123456789Z", "End": "2026-11-25T18:40:01.160456789+00:00"}
    assert round(_file_ms(entry)) == 37
    assert _file_ms({"Start": "garbage", "End": None}) is None


def _snap(tables: dict[str, dict[str, tuple]]) -> dict:
    return {
        "table": {t: {} for t in tables},
        "column": {
            f"{t}.{c}": {"type": ty, "not_null": nn} for t, cols in tables.items() for c, (ty, nn) in cols.items()
        },
    }


def test_possible_renames_pairs_only_unambiguous_shapes():
    from tools.catalog import possible_renames

    before = _snap(
        {
            "public.users": {
                "id": ("bigint", True),
                "full_name": ("text", True),
                "a": ("int", False),
                "b": ("int", False),
            },
            "public.old_logs": {"id": ("bigint", True), "line": ("text", False)},
        }
    )
    after = _snap(
        {
            "public.users": {
                "id": ("bigint", True),
                "display_name": ("text", True),
                "c": ("int", False),
                "d": ("int", False),
            },
            "public.logs": {"id": ("bigint", True), "line": ("text", False)},
        }
    )
    hints = possible_renames(before, after)
    assert hints == [
        'table public.old_logs -> logs: if it is a rename, use ALTER TABLE "public"."old_logs" RENAME TO "logs"',
        'column public.users.full_name -> display_name: if it is a rename, use ALTER TABLE "public"."users" RENAME '
        'COLUMN "full_name" TO "display_name"',
    ]  # a, b -> c, d: two candidates of one shape, no guess
    assert possible_renames(before, before) == []
    changed_type = _snap({"public.users": {"id": ("bigint", True), "display_name": ("varchar(10)", True)}})
    assert all("full_name" not in h for h in possible_renames(before, changed_type))
