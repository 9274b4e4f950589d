"""The plan of `inv migrate.down` (and of `inv migrate.test`'s proof): Atlas's `schema diff`
from a database to what migrations/ up to a version builds, its passwords kept off Atlas's
command line, verified by catalogs on a scratch copy; its lock-safety findings (squawk). The
data it would delete is counted by tools/downloss.py.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools import catalog, corrections, safety
from tools.atlas import atlas_for
from tools.config import GUIDE_ENV, Config
from tools.downloss import Layout, Risks, risks
from tools.errors import WorkflowError
from tools.migrations import statements_of
from tools.pg import connect, dev_lock
from tools.urls import pgpass_line, without_password

if TYPE_CHECKING:
    import psycopg

REVISIONS = "atlas_schema_revisions"
SYNCED = "Schemas are synced, no changes to be made."
LOCK_TIMEOUT = "55P03"  # lock_not_available: a lock_timeout expired
BY_HAND = "write the reverse change by hand as a new migration (inv migrate.new), then apply it"


@dataclass
class Plan:
    statements: list[str]
    corrections: list[str]
    current: catalog.Snapshot  # the target's state (what the plan starts from)
    capped: catalog.Snapshot  # what migrations/ up to the version builds
    before: Layout = field(default_factory=Layout)  # the target's tables and column types
    after: Layout = field(default_factory=Layout)  # the same, of what migrations/ up to the version builds

    @property
    def risks(self) -> Risks:
        """What the plan drops or rewrites (tools/downloss.py)."""
        return risks(self.before, self.after)

    @property
    def sql(self) -> list[str]:
        return [s.rstrip().rstrip(";") for s in self.statements] + [s.rstrip().rstrip(";") for s in self.corrections]


# --- the plan ----------------------------------------------------------------------------


@contextlib.contextmanager
def _passwords_off_argv(*urls: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The URLs without their passwords, and an environment naming a private password file
    (libpq's format, which lib/pq, Atlas's driver, reads): `schema diff` takes its databases on
    the command line only, where every user of the machine can read them (ps)."""
    bare = [without_password(url)[0] for url in urls]
    lines = [line for line in map(pgpass_line, urls) if line]
    fd, name = tempfile.mkstemp(prefix="down-", suffix=".pgpass")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(line + "\n" for line in lines))
        yield bare, {"PGPASSFILE": name}
    finally:
        Path(name).unlink(missing_ok=True)


def schema_diff(config: Config, current_url: str, wanted_url: str) -> list[str]:
    """Atlas's plan from the database at `current_url` to the one at `wanted_url` (its revision
    table left out); the dev database drives the diff."""
    # The dev database drives the diff: no other run may drop it meanwhile (pg.dev_lock, re-entrant).
    with dev_lock(config.dev_url()), _passwords_off_argv(current_url, wanted_url) as ((current, wanted), extra):
        atlas = atlas_for(config)
        # libpq's order: a password in the URL, then PGPASSWORD, then the file: only the file here.
        atlas.environ = {**{k: v for k, v in atlas.environ.items() if k != "PGPASSWORD"}, **extra}
        result = atlas.run(
            "schema", "diff", "--env", GUIDE_ENV, "--from", current, "--to", wanted, "--exclude", REVISIONS, check=False
        )
    if result.code != 0:
        why = result.error.split("error calling sql: ")[-1]  # Atlas's planner, under its template's words
        raise WorkflowError(
            f"Atlas cannot compute the plan: {why}",
            hint=BY_HAND,
        )
    text = result.stdout.strip()
    return [] if not text or text == SYNCED else statements_of(text)


def run_all(
    conn: psycopg.Connection[tuple[Any, ...]], sql: list[str], what: str, hint: str = BY_HAND, lock_hint: str = ""
) -> None:
    """Run `sql` in order; a failing statement raises, named with its error (and `lock_hint`
    as the hint when that error is a lock timeout)."""
    import psycopg

    for stmt in sql:
        try:
            conn.execute(stmt.encode())  # bytes: run as written, no placeholders
        except psycopg.Error as exc:
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WorkflowError(
                f"{what} fails at `{' '.join(stmt.split())[:120]}`: {line}",
                hint=lock_hint if lock_hint and exc.sqlstate == LOCK_TIMEOUT else hint,
            ) from None


def left_over(snapshot: catalog.Snapshot, capped: catalog.Snapshot, version: str) -> list[catalog.Difference]:
    return catalog.diff(snapshot, capped, left_label="the plan's result", right_label=f"migrations/ up to {version}")


def verified(config: Config, copy_url: str, statements: list[str], capped: catalog.Snapshot, version: str) -> list[str]:
    """Run `statements` on the scratch copy at `copy_url`, add the corrections migrate.diff adds,
    and prove by catalogs that the copy then equals `capped`. Returns the corrections; refuses,
    naming every difference left (objects Atlas does not see, details nothing corrects)."""
    with connect(copy_url) as conn:
        with conn.transaction():
            run_all(conn, statements, "the plan")
        snap = catalog.snapshot(conn)
        details = corrections.plan_details(snap, capped, left_over(snap, capped, version))
        if not details.unfixable and details.after:
            with conn.transaction():
                run_all(conn, details.after, "the corrections")
            snap = catalog.snapshot(conn)
        left = left_over(snap, capped, version)
    if left:
        raise WorkflowError(
            f"the plan does not return the schema to {version} ({len(left)} difference(s)): "
            + "; ".join(map(str, left[:5]))
            + ("; ..." if len(left) > 5 else ""),
            hint="Atlas v0.13.1 does not see or cannot reverse these: write the reverse change by hand as a new "
            "migration (inv migrate.new), then apply it",
        )
    return details.after


def hazards(sql: list[str]) -> list[str]:
    """Squawk's lock-safety findings on the plan (as migrate.apply shows them for files)."""
    if not sql:
        return []
    with tempfile.TemporaryDirectory(prefix="down-plan-") as tmp:
        path = Path(tmp) / "down_plan.sql"
        path.write_text("".join(stmt + ";\n" for stmt in sql))
        return [str(finding) for finding in safety.squawk([path])]
