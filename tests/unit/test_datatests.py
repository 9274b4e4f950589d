"""Data tests (tools/datatests.py) without a database: test file names, pytest's summary read
into a report, the report's lines and verdict. On PostgreSQL: tests/integration/test_datatests.py."""

from __future__ import annotations

import pytest

from tools.datatests import DataTestsReport, parse_pytest_output, version_from_test_file
from tools.errors import WorkflowError


@pytest.mark.parametrize(
    "name, version",
    [
        ("test_20261128234636.py", "20261128234636"),
        ("test_20261128234636_backfill_order_item_line_total.py", "20261128234636"),
        ("test_backfill.py", None),
        ("conftest.py", None),
        ("test_20261128234636.sql", None),
    ],
)
def test_the_version_comes_from_the_file_name(name, version):
    assert version_from_test_file(name) == version


FAILED_RUN = """\
..F.                                                                     [100%]
=================================== FAILURES ===================================
___________________________ test_every_line ___________________________
E   assert not [(501, 1, 2, 3)]
=========================== short test summary info ============================
FAILED tests/migrations/test_2_backfill.py::test_every_line - assert not [(501, 1, 2, 3)]
ERROR tests/migrations/test_3.py::test_x - WorkflowError: replaying migrations/ failed
1 failed, 2 passed, 1 skipped, 1 error in 5.67s
"""


def test_a_failed_run_names_each_failing_test():
    report = parse_pytest_output(FAILED_RUN, 1)
    assert not report.ok
    assert (report.passed, report.skipped, report.errors) == (2, 1, 1)
    assert report.failed == [
        "tests/migrations/test_2_backfill.py::test_every_line - assert not [(501, 1, 2, 3)]",
        "tests/migrations/test_3.py::test_x - WorkflowError: replaying migrations/ failed",
    ]
    assert report.lines() == [
        "data test failed: tests/migrations/test_2_backfill.py::test_every_line - assert not [(501, 1, 2, 3)]",
        "data test failed: tests/migrations/test_3.py::test_x - WorkflowError: replaying migrations/ failed",
        "data tests (tests/migrations/): 2 passed, 2 failed, 1 error(s), 1 skipped",
    ]
    with pytest.raises(WorkflowError, match=r"^2 migration data test\(s\) failed, first: tests/migrations/test_2_"):
        report.verdict()


def test_a_passing_run_and_an_empty_one_are_fine():
    report = parse_pytest_output("...\n3 passed in 4.80s\n", 0)
    assert report.ok and report.lines() == ["data tests (tests/migrations/): 3 passed"]
    report.verdict()
    empty = parse_pytest_output("no tests ran in 0.01s\n", 5)
    assert empty.ok and empty.lines() == ["data tests: none in tests/migrations/"]
    empty.verdict()


def test_pytest_failing_without_a_test_name_still_fails():
    report = DataTestsReport(code=4, output="ERROR: file or directory not found")
    with pytest.raises(WorkflowError, match="some migration data test"):
        report.verdict()
