"""Scratch databases: fresh databases beside the dev database for one run, and the leftovers of
runs that are gone (tools/scratch.py runs its replays in them).

Scratch databases are named `schemaflow_scratch_<run>_<label>` and carry the workflow's scratch
mark (tools/ownership.py). While a run lives, one of its sessions holds an advisory lock keyed on
its run token; a later run drops a marked scratch database only when it can take that lock, i.e.
when its run is gone (killed, crashed).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tools import signals, timings
from tools.config import Config
from tools.console import Log
from tools.errors import WorkflowError
from tools.ownership import WORKFLOW, Mark, _sql, claim, dbname_of, owned, parse_mark, project_of, url_with_db
from tools.pg import connect, connection_error, dev_lock, scalar

if TYPE_CHECKING:
    import psycopg
    import psycopg.sql

SCRATCH_PREFIX = f"{WORKFLOW}_scratch_"
RUN_LOCK_CLASS = 0x5C4E_3A13  # advisory lock (class, run token) held by a run that owns scratch databases


def run_key(run: str) -> int:
    """The run token (8 hex digits) as the signed int4 an advisory lock key takes."""
    value = int(run, 16) & 0xFFFF_FFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def scratch_name(run: str, label: str) -> str:
    return f"{SCRATCH_PREFIX}{run}_{label}"


def drop_leftovers(conn: psycopg.Connection, log: Log | None = None) -> list[str]:
    """Drop the scratch databases of runs that are gone: marked as scratch, named for their run,
    and that run's advisory lock free. Unmarked look-alikes and live runs' databases stay."""
    rows = conn.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE starts_with(datname, %s)",
        (SCRATCH_PREFIX,),
    ).fetchall()
    dropped = []
    for name, comment in rows:
        mark = parse_mark(comment)
        if not owned(mark, "scratch") or not mark.run or not name.startswith(scratch_name(mark.run, "")):
            continue
        if not scalar(conn, "SELECT pg_try_advisory_lock(%s, %s)", (RUN_LOCK_CLASS, run_key(mark.run))):
            continue  # its run is alive
        try:
            conn.execute(_sql("DROP DATABASE IF EXISTS {db} WITH (FORCE)", name))
            dropped.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (RUN_LOCK_CLASS, run_key(mark.run)))
    if dropped and log:
        log(f"dropped {len(dropped)} scratch database(s) left by a run that is gone: {', '.join(dropped)}")
    return dropped


@contextlib.contextmanager
def scratch(config: Config, *labels: str, log: Log | None = None, template: str | None = None) -> Iterator[list[str]]:
    """Fresh databases next to the dev database (yields their URLs), dropped at the end even
    on an error or Ctrl-C; a run killed before that leaves them to the next run's cleanup.

    `template`: the URL of a database on the same server (one of this run's, with no session
    open on it) to copy instead of an empty one: a history replayed once serves several checks."""
    dev = config.dev_url()
    run = secrets.token_hex(4)
    names = [scratch_name(run, label) for label in labels]
    created: list[str] = []
    holder = None
    try:
        holder = connect(dev, dbname="postgres")
        holder.execute(
            "SELECT set_config('application_name', %s, false)", (f"{WORKFLOW} run {run}",)
        )  # pg_stat_activity
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (RUN_LOCK_CLASS, run_key(run)))  # ours: never taken
        # CREATE DATABASE copies template1, which must not be in use: one creator at a time.
        with dev_lock(dev), timings.step("scratch databases created"):
            claim(config, dev)  # the dev server is the dev database's: never beside a real one
            drop_leftovers(holder, log)
            for name in names:
                created.append(name)  # before: an interrupted CREATE leaves nothing unaccounted for
                holder.execute(_create_sql(name, template))
                holder.execute(
                    _sql("COMMENT ON DATABASE {db} IS {comment}", name, Mark("scratch", project_of(config), run).text())
                )
    except BaseException as exc:
        _drop_all(dev, holder, created, log)
        if isinstance(exc, WorkflowError) or not isinstance(exc, Exception):
            raise
        raise connection_error(exc, "the dev database server") from None
    try:
        yield [url_with_db(dev, name) for name in names]
    finally:
        _drop_all(dev, holder, created, log)


def _create_sql(name: str, template: str | None) -> psycopg.sql.Composed:
    from psycopg import sql

    if not template:
        return _sql("CREATE DATABASE {db}", name)
    return sql.SQL("CREATE DATABASE {db} TEMPLATE {template}").format(
        db=sql.Identifier(name), template=sql.Identifier(dbname_of(template))
    )


def _drop_all(
    dev: str, holder: psycopg.Connection[tuple[Any, ...]] | None, names: list[str], log: Log | None = None
) -> None:
    """Drop this run's scratch databases (on the lock holder's session, or a new one if that
    broke), then end the holder's session, which frees the run's lock. What cannot be dropped
    is reported (on `log`, else stderr): the next run drops it, once this one is gone."""
    with timings.step("scratch databases dropped"):
        failure = _drop(dev, holder, names)
    if names:
        reason = (
            str(failure).strip().splitlines()[0] if failure is not None and str(failure).strip() else "no connection"
        )
        (log or signals.log)(
            f"note: could not drop scratch database(s) {', '.join(names)} ({reason}); "
            "the next run drops them once this one is gone"
        )
    if holder is not None:
        with contextlib.suppress(Exception):
            holder.close()


def _drop(dev: str, holder: psycopg.Connection[tuple[Any, ...]] | None, names: list[str]) -> Exception | None:
    """Drop `names` (emptying the list as they go); the last error when some are left."""
    failure = None
    for attempt in ("holder", "new"):
        if not names:
            break
        try:
            conn = holder if attempt == "holder" else connect(dev, dbname="postgres")
            if conn is None or conn.closed:
                continue
            with contextlib.closing(conn) if conn is not holder else contextlib.nullcontext():
                while names:
                    conn.execute(_sql("DROP DATABASE IF EXISTS {db} WITH (FORCE)", names[0]))
                    names.pop(0)
        except Exception as exc:
            failure = exc
            continue  # the next run drops what is left, once this one is gone
    return failure
