"""Migration data tests: `tests/migrations/test_<version>.py` proves that the migration file
<version> keeps (or fills) the data it should.

`at_version(config, version)` builds a scratch database at the version before <version> (the
files before it, replayed by the real Atlas), lets the test write rows, applies <version>
through the workflow (its pre-conditions from migrations/checks/, then Atlas applies that one
file) and gives the test the database to read. The scratch database is dropped afterwards,
whatever happens (tools/ownership.py). `run(config)` runs every data test (pytest on
tests/migrations/) on the configuration's dev server: what `inv migrate.test` calls.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tools import preconditions
from tools.config import Config
from tools.console import Report
from tools.errors import WorkflowError
from tools.migrations import migration_files, version_of
from tools.scratch import replay_migrations, scratch_databases
from tools.urls import libpq_url

if TYPE_CHECKING:
    import sqlalchemy

TESTS = "tests/migrations"
TEST_FILE_RE = re.compile(r"^test_(?P<version>\d+)(?:_\w*)?\.py$")
ON_DEV = "MIGRATION_DATA_TESTS_ON_DEV"  # set by run(): the tests use DEV_DATABASE_URL's server
TIMEOUT = 1800.0  # seconds for the whole run; a data test keeps to thousands of rows


def version_from_test_file(name: str) -> str | None:
    """`test_20240101000000.py` or `test_20240101000000_backfill.py` -> its version."""
    match = TEST_FILE_RE.match(name)
    return match.group("version") if match else None


@dataclass
class MigrationUnderTest:
    """The scratch database of one data test, at the version before `version` until apply()."""

    config: Config
    version: str  # the migration under test
    file: str  # its file name
    previous: str | None  # the version the database is at before apply() (None: empty)
    url: str
    applied: bool = False
    checks: list[preconditions.Result] = field(default_factory=list)
    _engine: sqlalchemy.engine.Engine | None = None

    def engine(self) -> sqlalchemy.engine.Engine:
        """A SQLAlchemy engine on the scratch database (disposed when the test ends)."""
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            url = libpq_url(self.url, "the scratch database").replace("postgresql://", "postgresql+psycopg://", 1)
            self._engine = create_engine(url, poolclass=NullPool)  # no session left open between steps
        return self._engine

    def connect(self) -> contextlib.AbstractContextManager[sqlalchemy.engine.Connection]:
        """A connection in a transaction, committed at the end of the `with` block (SQLAlchemy Core)."""
        return self.engine().begin()

    def execute(self, sql: str, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> list[Any]:
        """Run one SQL statement (named :params, or a list of them for many rows), committed; its rows."""
        from sqlalchemy import text

        with self.connect() as conn:
            result = conn.execute(text(sql), params) if params is not None else conn.execute(text(sql))
            return list(result.all()) if result.returns_rows else []

    def table(self, name: str, schema: str | None = None) -> sqlalchemy.Table:
        """A table as the database has it now (reflected): the models describe the newest version,
        not the one before the migration under test, so use this for Core inserts and selects."""
        from sqlalchemy import MetaData, Table

        return Table(name, MetaData(), autoload_with=self.engine(), schema=schema)

    def apply(self) -> list[preconditions.Result]:
        """Apply the migration under test: its pre-conditions first (refused: WorkflowError, nothing
        applied), then Atlas applies exactly that file; returns the checks' results."""
        if self.applied:
            raise WorkflowError(f"{self.file} is applied already", hint="call apply() once per test")
        checks = preconditions.for_files(self.config, [self.file])
        # as migrate.apply: a database with no migration applied holds no data to guard
        self.checks = preconditions.run(self.url, checks, "the scratch database") if self.previous else []
        refused = preconditions.refusal(self.checks, "the scratch database")
        if refused:
            raise refused
        if self._engine is not None:
            self._engine.dispose()  # no idle session holds a lock the migration waits for
        replay_migrations(self.config, self.url, amount=1)
        self.applied = True
        return self.checks


@contextlib.contextmanager
def at_version(config: Config, version: str) -> Iterator[MigrationUnderTest]:
    """A scratch database holding migrations/ up to the file before `version`; dropped afterwards."""
    files = migration_files(config)
    versions = [version_of(path) for path in files]
    if version not in versions:
        raise WorkflowError(
            f"no migration with version {version!r} in migrations/",
            hint=f"name a data test after its file's version: {TESTS}/test_<version>.py (see inv migrate.status)",
        )
    index = versions.index(version)
    with scratch_databases(config, f"data_{version}") as (url,):
        if index:
            replay_migrations(config, url, amount=index)
        test = MigrationUnderTest(config, version, files[index].name, versions[index - 1] if index else None, url=url)
        try:
            yield test
        finally:
            if test._engine is not None:
                test._engine.dispose()


@dataclass
class DataTestsReport(Report):
    """The outcome of pytest on tests/migrations/: counts, then the failing tests by name."""

    passed: int = 0
    failed: list[str] = field(default_factory=list)  # pytest node ids (with the reason)
    errors: int = 0
    skipped: int = 0
    output: str = ""  # pytest's output, for a caller that shows it on failure
    code: int = 0

    @property
    def ok(self) -> bool:
        return self.code in (0, 5)  # 5: no test collected (no data test yet)

    def lines(self) -> list[str]:
        out = [f"data test failed: {name}" for name in self.failed]
        if self.code == 5:
            return [f"data tests: none in {TESTS}/"]
        counts = [f"{self.passed} passed"]
        counts += [f"{len(self.failed)} failed"] if self.failed else []
        counts += [f"{self.errors} error(s)"] if self.errors else []
        counts += [f"{self.skipped} skipped"] if self.skipped else []
        return out + [f"data tests ({TESTS}/): " + ", ".join(counts)]

    def verdict(self) -> None:
        if not self.ok:
            first = self.failed[0] if self.failed else f"pytest exited with {self.code}"
            raise WorkflowError(
                f"{len(self.failed) or 'some'} migration data test(s) failed, first: {first}",
                hint=f"run .venv/bin/python -m pytest {TESTS} -x for the details",
            )


_SUMMARY_RE = re.compile(r"(\d+) (passed|failed|errors?|skipped)")


def parse_pytest_output(output: str, code: int) -> DataTestsReport:
    """pytest's `-rfE` summary lines (FAILED/ERROR node ids) and its last counts line."""
    report = DataTestsReport(output=output, code=code)
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            report.failed.append(line.split(" ", 1)[1])
    last = [ln for ln in output.splitlines() if _SUMMARY_RE.search(ln)]
    for count, kind in _SUMMARY_RE.findall(last[-1] if last else ""):
        if kind == "passed":
            report.passed = int(count)
        elif kind.startswith("error"):
            report.errors = int(count)
        elif kind == "skipped":
            report.skipped = int(count)
    return report


def run(config: Config, pytest_args: tuple[str, ...] = ()) -> DataTestsReport:
    """Run every data test of tests/migrations/ with pytest, on the configuration's dev server
    (scratch databases beside the dev database); call it without holding the dev database's lock."""
    config.dev_url()  # unset or naming an environment's database: refused here, in one line
    if not (config.root / TESTS).is_dir():
        return DataTestsReport(code=5)
    argv = [sys.executable, "-m", "pytest", TESTS, "-q", "-rfE", "-p", "no:cacheprovider", *pytest_args]
    try:
        proc = subprocess.run(
            argv,
            cwd=config.root,
            env=config.child_environ(**{ON_DEV: "1"}),
            text=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise WorkflowError(
            f"the data tests ran longer than {TIMEOUT:.0f} s and were stopped",
            hint=f"keep data tests small (thousands of rows); run pytest {TESTS} to see which one is slow",
        ) from None
    return parse_pytest_output(config.mask(proc.stdout + proc.stderr), proc.returncode)
