"""tools/down.py's pure parts: passwords kept off Atlas's command line, --steps, the report."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tools import down, downloss, downplan
from tools.errors import WorkflowError
from tools.urls import without_password


@pytest.mark.parametrize(
    "url, bare, password",
    [
        (
            "postgres://app:pw@127.0.0.1:5433/app?sslmode=disable",
            "postgres://app@127.0.0.1:5433/app?sslmode=disable",
            "pw",
        ),
        ("postgres://app:p%40ss%3Aw@db.example:5432/shop", "postgres://app@db.example:5432/shop", "p@ss:w"),
        ("postgres://app@127.0.0.1:5433/app", "postgres://app@127.0.0.1:5433/app", None),
        ("postgres://app:pw@[::1]:5433/app", "postgres://app@[::1]:5433/app", "pw"),
    ],
    ids=["plain", "percent-encoded", "no-password", "ipv6"],
)
def test_a_url_loses_its_password(url, bare, password):
    assert without_password(url) == (bare, password)


def test_the_password_file_is_private_and_escaped_and_gone_afterwards():
    urls = ("postgres://app:p%3Aw%5C@127.0.0.1:5433/app?sslmode=disable", "postgres://dev:x@127.0.0.1:5434/dev_scratch")
    with downplan._passwords_off_argv(*urls) as (bare, environ):
        path = Path(environ["PGPASSFILE"])
        assert bare == [
            "postgres://app@127.0.0.1:5433/app?sslmode=disable",
            "postgres://dev@127.0.0.1:5434/dev_scratch",
        ]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # libpq ignores a file others can read
        assert path.read_text() == "127.0.0.1:5433:app:app:p\\:w\\\\\n127.0.0.1:5434:dev_scratch:dev:x\n"
        assert all("p:w" not in arg and ":x@" not in arg for arg in bare)
    assert not path.exists()


@pytest.mark.parametrize("value, steps", [("", 0), ("2", 2), (3, 3), (" 1 ", 1)])
def test_steps(value, steps):
    assert down._steps(value) == steps


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_steps_that_are_not_a_count_are_refused(value):
    with pytest.raises(WorkflowError, match=f"invalid --steps '{value}'"):
        down._steps(value)


def test_the_report_previews_then_refuses_in_its_verdict():
    report = down.DownReport(
        "local",
        "3",
        "2",
        undone=["3_priority.sql"],
        statements=['ALTER TABLE "public"."notes" DROP COLUMN "priority"'],
        corrections=['ALTER TABLE "public"."t" RENAME CONSTRAINT "t_pkey" TO "pk_t";'],
        hazards=["down_plan.sql:1: [squawk ban-drop-column] Dropping a column may break existing clients."],
        losses=[downloss.Loss("column public.notes.priority", 2), downloss.Loss("column public.notes.empty", 0)],
        refused=WorkflowError("the plan deletes data"),
    )
    assert report.lines() == [
        "local: down from 3 to 2 undoes 1 file(s): 3_priority.sql",
        "-- plan (Atlas's schema diff, verified on a scratch copy)",
        'ALTER TABLE "public"."notes" DROP COLUMN "priority";',
        "-- corrections (details Atlas v0.13.1 drops)",
        'ALTER TABLE "public"."t" RENAME CONSTRAINT "t_pkey" TO "pk_t";',
        "hazard: down_plan.sql:1: [squawk ban-drop-column] Dropping a column may break existing clients.",
        "data loss: column public.notes.priority holds 2 row(s)",
    ]
    with pytest.raises(WorkflowError, match="the plan deletes data"):
        report.verdict()


def test_the_plan_runs_atlas_statements_then_corrections_without_doubled_semicolons():
    plan = downplan.Plan(
        ['DROP TABLE "a";', 'DROP TABLE "b"'], ['ALTER TABLE "c" ALTER CONSTRAINT "f" DEFERRABLE;'], {}, {}
    )
    assert plan.sql == ['DROP TABLE "a"', 'DROP TABLE "b"', 'ALTER TABLE "c" ALTER CONSTRAINT "f" DEFERRABLE']


def test_row_counts_stop_at_the_cap():
    assert downloss.rows_text(3) == "3 row(s)"
    assert downloss.rows_text(downloss.COUNT_CAP) == f"{downloss.COUNT_CAP} row(s)"
    assert downloss.rows_text(downloss.COUNT_CAP + 1) == f"more than {downloss.COUNT_CAP} rows"
    assert f"LIMIT {downloss.COUNT_CAP + 1}" in downloss._count(("public", "t")).as_string(None)


def test_migrate_test_reports_the_data_tests_and_fails_on_them():
    from tools.datatests import DataTestsReport
    from tools.prove import ProveReport

    passed = ProveReport([("1_init.sql", None)], data=DataTestsReport(passed=3))
    assert passed.lines()[-1] == "data tests (tests/migrations/): 3 passed"
    passed.verdict()

    broken = DataTestsReport(passed=2, failed=["tests/migrations/test_2.py::test_backfill - assert 0 == 6"], code=1)
    data_failed = ProveReport([("1_init.sql", None)], data=broken)
    assert "data test failed: tests/migrations/test_2.py::test_backfill - assert 0 == 6" in data_failed.lines()
    with pytest.raises(WorkflowError, match="migration data test"):
        data_failed.verdict()

    both = ProveReport([("2_view.sql", "a view stays")], data=broken)
    with pytest.raises(WorkflowError, match=r"2_view.sql; migration data tests failed too"):
        both.verdict()
    assert ProveReport([], data=DataTestsReport(passed=1)).lines()[-1] == "data tests (tests/migrations/): 1 passed"


def test_an_interrupted_down_says_what_is_true_at_that_point():
    from tools import signals

    report = down.DownReport("local", "3", "2")
    with pytest.raises(signals.Interrupted) as before, down._interrupt_note("local", report):
        raise KeyboardInterrupt  # computing the plan: nothing changed yet
    assert signals.line(before.value).endswith("; local is unchanged: the down changed nothing")
    assert "apply" not in signals.line(before.value)
    report.done = True  # committed: what an interruption leaves is the version reached
    with pytest.raises(signals.Interrupted) as after, down._interrupt_note("local", report):
        raise signals.Interrupted()
    assert signals.line(after.value).endswith("; the down completed: local is at version 2")
