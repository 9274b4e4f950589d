"""Pure parsers: Atlas's JSON (status, lint, apply), version ordering, migration names."""

from __future__ import annotations

import pytest

from tools.apply import _apply_failure
from tools.atlaslint import lint_report_of
from tools.config import Config
from tools.errors import WorkflowError
from tools.migrations import ensure_increasing, validate_name
from tools.status import status_of


def project(tmp_path, *files: str) -> Config:
    (tmp_path / "atlas.hcl").write_text('env "local" {\n}\n')
    (tmp_path / "migrations").mkdir()
    for name in files:
        (tmp_path / "migrations" / name).write_text("SELECT 1;\n")
    return Config.load(tmp_path, environ={})


def test_status_json_pending_and_in_sync():
    pending = status_of(
        "local",
        {
            "Status": "PENDING",
            "Current": "1",
            "Next": "2",
            "Applied": [{"Version": "1"}],
            "Available": [{"Name": "1_a.sql"}, {"Name": "2_b.sql"}],
            "Pending": [{"Name": "2_b.sql"}],
        },
    )
    assert (pending.status, pending.code, pending.pending, pending.applied, pending.available) == (
        "PENDING",
        2,
        ["2_b.sql"],
        1,
        2,
    )
    assert status_of("local", {"Status": "OK", "Current": "No migration applied yet"}).code == 0
    assert status_of("local", {}).status == "UNKNOWN"


def test_status_json_names_files_below_the_current_version():
    report = status_of(
        "staging",
        {
            "Status": "OK",
            "Current": "3",
            "Applied": [{"Version": "1"}, {"Version": "3"}],
            "Available": [{"Name": "1_a.sql"}, {"Name": "2_late.sql"}, {"Name": "3_c.sql"}],
        },
    )
    assert (report.status, report.skipped, report.code) == ("OUT_OF_ORDER", ["2_late.sql"], 1)


def test_lint_json_findings_errors_and_files_that_cannot_run():
    report = lint_report_of(
        {
            "Files": [
                {"Name": "2_b.sql", "Reports": [{"Diagnostics": [{"Code": "DS103", "Text": "dropping column"}]}]},
                {
                    "Name": "3_c.sql",
                    "Reports": [{"Diagnostics": [{"Code": "PG103", "Text": "concurrently in a transaction"}]}],
                },
                {"Name": "4_d.sql", "Error": "syntax error"},
            ],
            "Steps": [{"Name": "Analyze", "Error": "boom"}],
        }
    )
    assert report.findings == [
        ("2_b.sql", "DS103", "dropping column"),
        ("3_c.sql", "PG103", "concurrently in a transaction"),
    ]
    assert report.errors == [
        "4_d.sql: syntax error",
        "Analyze: boom",
        "3_c.sql: cannot run as written (see PG103 above)",
    ]
    assert lint_report_of({}).lines() == ["lint: no errors"]


def test_apply_json_names_the_failing_statement():
    data = {
        "Applied": [
            {"Name": "1_a.sql"},
            {"Name": "2_b.sql", "Error": {"Stmt": "ALTER TABLE t\n  ADD x int", "Text": "boom"}},
        ]
    }
    assert _apply_failure(data) == "2_b.sql failed at statement `ALTER TABLE t ADD x int`: boom"
    assert _apply_failure({"Applied": [{"Name": "1_a.sql"}]}) is None and _apply_failure(None) is None


def test_new_files_get_versions_above_every_existing_one(tmp_path):
    project(tmp_path, "20260101000000_a.sql", "20260101000000_b.sql")
    directory = tmp_path / "migrations"
    files, renamed = ensure_increasing(None, {"20260102000000_old.sql"}, sorted(directory.iterdir()))
    assert [p.name for p in files] == ["20260102000001_a.sql", "20260102000002_b.sql"]
    assert renamed == ["20260101000000_a.sql -> 20260102000001_a.sql", "20260101000000_b.sql -> 20260102000002_b.sql"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "a migration name is required"),
        ("Add-Thing", "invalid migration name 'Add-Thing'"),
        ("1st", "invalid migration name '1st'"),
        ("a" * 61, "invalid migration name"),
        ("add_x", "a migration named 'add_x' exists already"),
    ],
    ids=["empty", "dash", "digit-first", "too-long", "taken"],
)
def test_migration_names(tmp_path, name, message):
    config = project(tmp_path, "20260101000000_add_x.sql")
    with pytest.raises(WorkflowError, match=message):
        validate_name(config, name)
    assert validate_name(config, "  add_y ") == "add_y"
