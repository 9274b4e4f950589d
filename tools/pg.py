"""PostgreSQL connections: connect, one-line connection errors, create a database, the two
advisory locks (the dev database's, an apply's) and the durations their waits take.

What the workflow may drop (marks, claim, recreate) is tools/ownership.py; scratch databases are
tools/scratch_runs.py.
psycopg is imported inside the functions: `inv migrate.status` must stay fast.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from tools import timings
from tools.console import Log
from tools.errors import WorkflowError
from tools.urls import libpq_url

if TYPE_CHECKING:
    import psycopg


def connect(url: str, dbname: str | None = None, timeout: int = 5) -> psycopg.Connection[tuple[Any, ...]]:
    import psycopg

    kwargs: dict[str, Any] = {"connect_timeout": timeout, "autocommit": True}
    if dbname:
        kwargs["dbname"] = dbname
    with timings.step("connections opened"):
        return psycopg.connect(libpq_url(url, "database URL"), **kwargs)


def connection_error(exc: Exception, what: str) -> WorkflowError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if "password authentication failed" in low:
        return WorkflowError(
            f"{what}: the server refused the password", hint="check the user and password in the URL (.env)"
        )
    if "no password supplied" in low:
        return WorkflowError(
            f"{what}: the server wants a password and the URL has none",
            hint="set POSTGRES_PASSWORD in .env (an empty one leaves the URLs without a password)",
        )
    if "does not exist" in low:
        return WorkflowError(f"{what}: {text}", hint="create it, or fix the database name in the URL")
    import psycopg

    if isinstance(exc, psycopg.Error) and not isinstance(exc, psycopg.OperationalError):
        return WorkflowError(f"{what}: {text}")
    reason = (
        "connection refused"
        if "refused" in low
        else ("timed out" if "timeout" in low or "timed out" in low else text[:120])
    )
    return WorkflowError(
        f"{what} is not reachable ({reason})",
        hint="start the stack with inv db.up, or check the URL's host and port in .env",
    )


def ensure_database(url: str, what: str) -> None:
    import psycopg

    parts = urlsplit(url)
    dbname = parts.path.strip("/")
    try:
        with connect(url, dbname="postgres") as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None:
                # created meanwhile by a concurrent run: fine
                with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    conn.execute(f'CREATE DATABASE "{dbname}"')
    except Exception as exc:
        raise connection_error(exc, what) from None


DEV_LOCK_KEY = 0x5C4E_3A12
_dev_lock_depth = 0


class dev_lock:
    """One user of the dev database at a time (it is dropped and recreated around each use).

    Re-entrant within a process; waits at most `timeout` seconds for other processes.
    """

    def __init__(self, url: str, timeout: float = 600, log: Log | None = None) -> None:
        self.url, self.timeout, self.log = url, timeout, log
        self.conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def __enter__(self) -> dev_lock:
        global _dev_lock_depth
        _dev_lock_depth += 1
        if _dev_lock_depth > 1:
            return self
        import psycopg

        try:
            self.conn = conn = connect(self.url, dbname="postgres")
            if not scalar(conn, "SELECT pg_try_advisory_lock(%s)", (DEV_LOCK_KEY,)):
                if self.log:
                    self.log(f"the dev database is in use by another run: waiting up to {self.timeout:.0f}s...")
                conn.execute(f"SET lock_timeout = {int(self.timeout * 1000)}")
                conn.execute("SELECT pg_advisory_lock(%s)", (DEV_LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            self._release()
            raise WorkflowError(
                f"the dev database stayed in use for {self.timeout:.0f}s",
                hint="wait for the other diff/lint/apply to finish",
            ) from None
        except Exception as exc:
            self._release()
            raise connection_error(exc, "the dev database") from None
        return self

    def _release(self) -> None:
        global _dev_lock_depth
        _dev_lock_depth -= 1
        if _dev_lock_depth == 0 and self.conn is not None:
            self.conn.close()
            self.conn = None

    def __exit__(self, *exc: object) -> Literal[False]:
        self._release()
        return False


def reachable(url: str) -> str | None:
    """None when the database answers, else a one-line reason."""
    try:
        with connect(url, timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except WorkflowError as exc:
        return str(exc)
    except Exception as exc:
        return str(connection_error(exc, "database"))


APPLY_LOCK_KEY = 0x5C4E_3A11  # our own advisory lock, taken on top of Atlas's, around the whole apply


class apply_lock:
    """Serialise whole applies (status, drift check, lint, apply) on one database.

    Atlas takes its own advisory lock around executing files; this one also covers our checks,
    so that a concurrent apply never sees another one half-way. Waits at most `timeout`.
    """

    def __init__(self, url: str, env: str, timeout: str, log: Log) -> None:
        self.url, self.env, self.timeout, self.log = url, env, timeout, log
        self.conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def __enter__(self) -> apply_lock:
        try:
            self.conn = conn = connect(self.url)
        except Exception as exc:
            raise connection_error(exc, f"the {self.env} database") from None
        import psycopg

        if scalar(conn, "SELECT pg_try_advisory_lock(%s)", (APPLY_LOCK_KEY,)):
            return self
        self.log(f"another apply is running on {self.env}: waiting up to {self.timeout} for it...")
        try:
            conn.execute(f"SET lock_timeout = {duration_ms(self.timeout)}")
            conn.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            conn.close()
            raise WorkflowError(
                f"another apply is still running on {self.env} after {self.timeout}",
                hint="wait for it to finish, or pass a longer --lock-timeout",
            ) from None
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        if self.conn is not None:
            self.conn.close()  # ends the session: releases the lock
        return False


def scalar(conn: psycopg.Connection[tuple[Any, ...]], sql: str, params: tuple[Any, ...] | None = None) -> Any:
    """The first column of the first row, None when there is no row. Without params the query
    goes as written (psycopg reads `%` as a placeholder only when params are given)."""
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def duration_ms(value: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", value)
    if match is None:
        raise WorkflowError(f"invalid duration {value!r}", hint="use a duration such as 10s, 500ms or 2m")
    number, unit = match.groups()
    return int(number) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


def validate_duration(value: str, allow_zero: bool = False, what: str = "lock timeout") -> str:
    if allow_zero and value.strip() == "0":
        return "0"
    if not re.fullmatch(r"\d+(ms|s|m|h)", value.strip()):
        raise WorkflowError(
            f"invalid {what} {value!r}",
            hint="use a duration such as 10s, 500ms or 2m" + (" (0: wait forever)" if allow_zero else ""),
        )
    return value.strip()


def server_version(url: str, what: str = "the dev database server") -> str:
    """The full version number of the server at `url` (SHOW server_version_num, e.g. 150018)."""
    try:
        with connect(url, dbname="postgres") as conn:
            return str(scalar(conn, "SHOW server_version_num"))
    except Exception as exc:
        raise connection_error(exc, what) from None
