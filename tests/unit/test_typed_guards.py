"""Inputs the type checker showed unguarded: a refusal in one line, never an AttributeError."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.errors import WorkflowError
from tools.migrations import version_of
from tools.pg import duration_ms


@pytest.mark.parametrize("value", ["5", "1.5s", " 5s", "soon"])
def test_duration_ms_refuses_what_is_not_a_duration(value):
    with pytest.raises(WorkflowError, match="invalid duration"):
        duration_ms(value)


def test_duration_ms_reads_every_unit():
    assert [duration_ms(v) for v in ("250ms", "2s", "3m", "1h")] == [250, 2000, 180_000, 3_600_000]


def test_a_migration_file_without_a_version_is_named_in_the_refusal():
    with pytest.raises(WorkflowError, match=r"migrations/notes\.sql is not named <version>_<name>\.sql"):
        version_of(Path("migrations/notes.sql"))
    assert version_of(Path("migrations/20260101000000_add_users.sql")) == "20260101000000"


def test_scalar_without_params_sends_the_query_as_written():
    """psycopg parses `%` as a placeholder whenever params is not None: `LIKE 'x%'` must go as is."""
    from tools.pg import scalar

    sent = []

    class Conn:
        def execute(self, sql, params):
            sent.append((sql, params))
            return self

        def fetchone(self):
            return (True,)

    assert scalar(Conn(), "SELECT 'xy' LIKE 'x%'") is True
    assert scalar(Conn(), "SELECT %s", (1,)) is True
    assert sent == [("SELECT 'xy' LIKE 'x%'", None), ("SELECT %s", (1,))]


@pytest.mark.parametrize(
    "status, skipped, message",
    [
        ("OK", [], None),
        ("PENDING", [], None),
        ("PENDING", ["1_below.sql"], "staging: 1 file(s) have a version below the current one (5)"),
        ("ERROR", [], "staging is in state ERROR (current version 5); nothing was changed"),
    ],
)
def test_apply_and_down_start_only_from_a_settled_target(status, skipped, message):
    from tools.status import StatusReport, require_settled

    report = StatusReport("staging", status, "5", "6", ["6_x.sql"], 5, 6, skipped=skipped)
    if message is None:
        require_settled(report)
        return
    with pytest.raises(WorkflowError) as raised:
        require_settled(report)
    assert message in str(raised.value)
