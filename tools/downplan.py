"""The plan of `inv migrate.down` (and of `inv migrate.test`'s proof): Atlas's `schema diff`
from a database to what migrations/ up to a version builds, its passwords kept off Atlas's
command line, verified by catalogs on a scratch copy; the data it would delete, counted; its
lock-safety findings (squawk).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools import catalog, corrections, safety
from tools.atlas import atlas_for
from tools.config import GUIDE_ENV, Config
from tools.errors import WorkflowError
from tools.migrations import statements_of
from tools.pg import connect, connection_error, dev_lock, scalar
from tools.urls import pgpass_line, without_password

if TYPE_CHECKING:
    import psycopg

REVISIONS = "atlas_schema_revisions"
SYNCED = "Schemas are synced, no changes to be made."
COUNT_CAP = 1_000_000  # rows counted at most, per table or column the plan drops
BY_HAND = "write the reverse change by hand as a new migration (inv migrate.new), then apply it"


@dataclass
class Plan:
    statements: list[str]
    corrections: list[str]
    current: catalog.Snapshot  # the target's state (what the plan starts from)
    capped: catalog.Snapshot  # what migrations/ up to the version builds

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


def run_all(conn: psycopg.Connection[tuple[Any, ...]], sql: list[str], what: str, hint: str = BY_HAND) -> None:
    import psycopg

    for stmt in sql:
        try:
            conn.execute(stmt.encode())  # bytes: run as written, no placeholders
        except psycopg.Error as exc:
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WorkflowError(
                f"{what} fails at `{' '.join(stmt.split())[:120]}`: {line}",
                hint=hint,
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


# --- what the plan would delete --------------------------------------------------------------


def _q(name: str) -> str:
    return corrections.q(*name.split("."))


def data_loss(url: str, current: catalog.Snapshot, capped: catalog.Snapshot) -> list[tuple[str, int]]:
    """Tables and columns the plan drops, with the rows that hold data in them (on `url`),
    counted up to COUNT_CAP + 1: a preview must not scan a production table of a billion rows."""
    gone_tables = sorted(set(current.get("table", {})) - set(capped.get("table", {})))
    gone_columns = sorted(
        name
        for name in set(current.get("column", {})) - set(capped.get("column", {}))
        if name.rsplit(".", 1)[0] in capped.get("table", {})
    )
    out = []
    try:
        with connect(url) as conn:
            for table in gone_tables:
                out.append((f"table {table}", scalar(conn, _capped_count(_q(table)))))
            for column in gone_columns:
                table, col = column.rsplit(".", 1)
                rows = scalar(conn, _capped_count(_q(table), f"{corrections.q(col)} IS NOT NULL"))
                out.append((f"column {column}", rows))
    except WorkflowError:
        raise
    except Exception as exc:
        raise connection_error(exc, "the target database") from None
    return out


def _capped_count(table: str, where: str = "TRUE") -> str:
    return f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {where} LIMIT {COUNT_CAP + 1}) AS rows"


def rows_text(rows: int) -> str:
    return f"more than {COUNT_CAP} rows" if rows > COUNT_CAP else f"{rows} row(s)"


def hazards(sql: list[str]) -> list[str]:
    """Squawk's lock-safety findings on the plan (as migrate.apply shows them for files)."""
    if not sql:
        return []
    with tempfile.TemporaryDirectory(prefix="down-plan-") as tmp:
        path = Path(tmp) / "down_plan.sql"
        path.write_text("".join(stmt + ";\n" for stmt in sql))
        return [str(finding) for finding in safety.squawk([path])]
