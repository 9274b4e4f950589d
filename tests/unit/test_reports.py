"""Reports print themselves and end as they say; the task edge turns their errors into one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Exit

import tasks
from tools.apply import ApplyReport
from tools.baseline import BaselineReport
from tools.check import CheckReport
from tools.errors import OutOfSync, WorkflowError, exit_with
from tools.fidelity import DriftReport
from tools.schema import DumpReport
from tools.status import AllStatusReport, StatusReport


def status(env="local", state="OK", pending=(), skipped=()) -> StatusReport:
    return StatusReport(
        env=env,
        status=state,
        current="20260101000000",
        next="",
        pending=list(pending),
        applied=1,
        available=1 + len(pending),
        skipped=list(skipped),
    )


def ended(report) -> tuple[int, str | None]:
    """(exit code, the edge's line) of a task that shows `report`."""
    try:
        tasks.edge(lambda: tasks.show(report))()
    except Exit as exc:
        return exc.code, exc.message
    return 0, None


@pytest.mark.parametrize(
    "code, expected", [(0, None), (1, WorkflowError), (2, OutOfSync)], ids=["ok", "error", "out-of-sync"]
)
def test_exit_with(code, expected):
    if expected is None:
        assert exit_with(code) is None
        return
    with pytest.raises(expected) as exc:
        exit_with(code)
    assert exc.value.code == code and exc.value.line() is None


def test_status_lines_and_codes(capsys):
    report = status(state="PENDING", pending=["20260102000000_b.sql"])
    assert report.lines() == [
        "local: PENDING; current version 20260101000000; 1 applied, 1 pending of 2",
        "  pending 20260102000000_b.sql",
    ]
    assert ended(report) == (2, None)
    assert capsys.readouterr().out.splitlines() == report.lines()
    assert ended(status()) == (0, None)
    assert ended(status(state="OUT_OF_ORDER", skipped=["1_a.sql"]))[0] == 1


def test_status_of_every_environment():
    report = AllStatusReport(
        [
            ("local", status(state="PENDING", pending=["2_b.sql"])),
            ("staging", WorkflowError("boom", hint="fix")),
            ("production", None),
        ]
    )
    assert report.lines()[-2:] == [
        "staging: error: boom: fix",
        "production: not configured (PRODUCTION_DATABASE_URL is not set)",
    ]
    assert report.code == 1  # an error wins over pending
    assert AllStatusReport([("local", status()), ("production", None)]).code == 0
    assert AllStatusReport([("local", status(state="PENDING", pending=["2_b.sql"]))]).code == 2


def test_out_of_sync_reports_say_why_in_one_line():
    assert ended(DumpReport(Path("schema.sql"), changed=True, written=False)) == (
        2,
        "schema.sql is stale against the models: run inv schema.dump",
    )
    assert ended(DriftReport("staging", ["x"])) == (2, "error: staging differs from its migrations in 1 place(s)")
    assert ended(DriftReport("staging", [])) == (0, None)


def test_baseline_verdicts():
    dry = BaselineReport(env="local", version="1", differences=["x"], dry_run=True)
    assert ended(dry) == (2, None)
    refused = BaselineReport(env="local", version="1", differences=["x"])
    code, line = ended(refused)
    assert code == 2 and line.startswith("error: local differs from what migrations/ up to 1 builds in 1 place(s)")


def test_check_report_lines():
    report = CheckReport(problems=[(2, "schema.sql is stale"), (1, "lint: bad")])
    assert report.lines() == ["out of sync: schema.sql is stale", "error: lint: bad"]
    assert ended(report) == (2, None)
    assert CheckReport(not_run=["x"]).lines()[-1] == (
        "in sync: schema.sql, migrations/ and atlas.sum match the models (1 check(s) not run, listed above)"
    )


def test_apply_lines():
    report = ApplyReport(env="staging", applied=["1_a.sql"], timings={"1_a.sql": (3, 12.4)}, pending=["1_a.sql"])
    assert report.lines() == ["applied 1_a.sql (3 statement(s), 12 ms)", "staging: 1 migration(s) applied"]
    dry = ApplyReport(env="staging", pending=["1_a.sql"], dry_run=True, sql={"1_a.sql": ["SELECT 1"]})
    assert dry.lines() == ["staging: 1 pending file(s) (dry run, nothing applied):", "-- 1_a.sql", "SELECT 1;"]


def test_atlas_not_clean_is_the_not_adopted_kind():
    from tools.atlas import Result, map_error
    from tools.errors import NotAdopted

    result = Result(
        argv=["atlas", "migrate", "apply", "--env", "staging"],
        code=1,
        stdout="",
        stderr='Error: sql/migrate: connected database is not clean: found table "orders"',
    )
    error = map_error(result)
    assert isinstance(error, NotAdopted) and error.code == 1
    assert error.line() == (
        "error: staging holds objects but no Atlas migration history: if another tool (Alembic) built it, "
        "adopt it: inv migrate.baseline --env staging --dry-run, then without --dry-run"
    )
    assert (
        NotAdopted("local", ["table", "view"]).message
        == "local holds objects (table, view) but no Atlas migration history"
    )
