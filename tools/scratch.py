"""Throw-away databases on the dev server: the dev database recreated around each use (under
its lock), scratch databases for one run, migrations replayed into them, SQL executed there.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from tools import catalog, ownership, scratch_runs, snapcache, timings
from tools.atlas import AtlasRun, atlas_for
from tools.config import GUIDE_ENV, Config
from tools.errors import WorkflowError
from tools.migrations import dir_args, migrations_dir, regular_files_only
from tools.pg import connect, dev_lock, server_version
from tools.schema_statements import desired_state_for_atlas

P = ParamSpec("P")
R = TypeVar("R")


def fresh_dev(config: Config) -> str:
    """Drop and recreate the dev database, once proven the workflow's (callers hold dev_lock).

    config.dev_url() refuses an environment's database; ownership.recreate refuses a database
    that holds objects the workflow did not make (tools/ownership.py).
    """
    dev = config.dev_url()
    ownership.recreate(config, dev)
    return dev


def tidy_dev(config: Config) -> None:
    """After Atlas used the dev database: recreate it only when something stayed behind (Atlas
    v0.13.1 leaves the object kinds it does not know, e.g. functions). Every use recreates it
    first anyway (fresh_dev); this keeps it clean for the guide's plain `atlas` commands."""
    dev = config.dev_url()
    if ownership.inventory(dev, "DEV_DATABASE_URL"):
        ownership.recreate(config, dev)


def using_dev(fn: Callable[Concatenate[Config, P], R]) -> Callable[Concatenate[Config, P], R]:
    """Run `fn` holding the dev database's lock: concurrent runs must not share it."""

    @functools.wraps(fn)
    def wrapper(config: Config, *args: P.args, **kwargs: P.kwargs) -> R:
        with dev_lock(config.dev_url()):
            return fn(config, *args, **kwargs)

    return wrapper


@contextlib.contextmanager
def desired_state(schema_sql: str) -> Iterator[str]:
    """A file:// URL of schema.sql as Atlas should read it (see schema_statements.desired_state_for_atlas)."""
    with tempfile.TemporaryDirectory(prefix="desired-") as tmp:
        path = Path(tmp) / "schema.sql"
        with timings.step("desired state for Atlas (pglast)"):
            path.write_text(desired_state_for_atlas(schema_sql))
        yield f"file://{path}"


def history_snapshot(config: Config, amount: int, directory: Path | None = None) -> catalog.Snapshot:
    """The catalogs of the first `amount` migration files replayed into an empty database,
    remembered under a key of their bytes, the server and the tools (tools/snapcache.py)."""
    version = server_version(config.dev_url())
    cached = snapcache.load(config, snapcache.key(config, amount, version, directory))
    if cached is not None:
        return cached
    with private_copy(config, directory) as copy, scratch_databases(config, "history") as (url,):
        name = snapcache.key(config, amount, version, copy)  # the very bytes replayed
        if amount:
            replay_migrations(config, url, amount=amount, directory=copy)
        snapshot = catalog.snapshot_url(url)
    snapcache.store(config, name, snapshot)
    return snapshot


@contextlib.contextmanager
def private_copy(config: Config, directory: Path | None) -> Iterator[Path]:
    """`directory` (a staged copy, private already), else a copy of migrations/ made now: a file
    changed meanwhile (a branch switched and back) never makes a result remembered under a key
    of other bytes than those it was made of (tools/snapcache.py)."""
    if directory is not None:
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="history-") as tmp:
        copy = Path(tmp) / "migrations"
        copy.mkdir()
        for path in migrations_dir(config).iterdir():
            if path.is_file() and not path.is_symlink():
                (copy / path.name).write_bytes(path.read_bytes())
        yield copy


def scratch_databases(
    config: Config, *labels: str, template: str | None = None
) -> contextlib.AbstractContextManager[list[str]]:
    """Fresh databases next to the dev database (copies of `template`, one of this run's
    scratch databases, when given); yields their URLs; drops them afterwards
    (tools/scratch_runs.py: unique per run, marked, dropped on error and Ctrl-C, leftovers of killed runs
    dropped by the next run)."""
    return scratch_runs.scratch(config, *labels, template=template)


def replay_migrations(config: Config, url: str, amount: int | None = None, directory: Path | None = None) -> None:
    """Apply migrations/ (or `directory`, a staged copy; or its first `amount` files) to the
    empty database at `url`. An interruption (Atlas's "context canceled") stays one: it is
    not a failing file (tools/atlas.py)."""
    with replay_started(config, url, amount, directory) as replaying:
        replaying.wait()


class Replay:
    """A replay running in the background (replay_started); `wait()` raises what it failed with."""

    def __init__(self, running: AtlasRun) -> None:
        self.running = running

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.running.__exit__(*exc)

    def wait(self) -> None:
        try:
            self.running.wait()
        except WorkflowError as exc:
            raise WorkflowError(
                f"replaying migrations/ failed: {exc.message}", hint=exc.hint or "fix the failing migration file"
            ) from None


def replay_started(config: Config, url: str, amount: int | None = None, directory: Path | None = None) -> Replay:
    """replay_migrations started in the background."""
    regular_files_only(config)
    atlas = atlas_for(config)
    atlas.environ = config.child_environ(DATABASE_URL=url)
    args = ["migrate", "apply", "--env", GUIDE_ENV, *dir_args(directory)]
    if amount is not None:
        args.append(str(amount))
    return Replay(atlas.start(*args))


@timings.timed("SQL executed (schema.sql, checks)")
def execute_sql(url: str, sql: str, what: str) -> None:
    with connect(url) as conn:
        try:
            conn.execute(sql)
        except Exception as exc:
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WorkflowError(
                f"{what} does not run on PostgreSQL: {line}", hint="fix the models (or the hand-written SQL)"
            ) from None
