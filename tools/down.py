"""`inv migrate.down`: bring a target back to an earlier version of migrations/.

Atlas v0.13.1 has no `migrate down` (its paid edition computes one from v0.21), so the plan is
computed here, never hand-written: the state to reach is what migrations/ up to the version
builds (replayed on a scratch database); the plan is Atlas's `schema diff` from the target to
it, completed with the corrections of migrate.diff (tools/corrections.py) and verified by
catalogs on a scratch copy of the target's state before the target is touched. Objects Atlas
does not see (views, functions, triggers, ...) and changes it cannot reverse (an enum value)
are refused, named. On the target the plan runs in one transaction, is verified by catalogs
again inside it, and the version is recorded with `atlas migrate set` before it commits: a
failure anywhere changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools import catalog, corrections, safety, signals
from tools.atlas import atlas_for
from tools.config import GUIDE_ENV, Config, Target
from tools.console import Log, Report, guard, progress
from tools.errors import NotAdopted, WorkflowError
from tools.fidelity import is_alembic_bookkeeping
from tools.migrations import check_versions, migration_files, statements_of, version_of
from tools.pg import apply_lock, connect, connection_error, dev_lock, duration_ms, scalar, validate_duration
from tools.scratch import replay_migrations, scratch_databases
from tools.status import StatusReport, out_of_order, status
from tools.urls import pgpass_line, without_password

if TYPE_CHECKING:
    import psycopg

REVISIONS = "atlas_schema_revisions"
SYNCED = "Schemas are synced, no changes to be made."
COUNT_CAP = 1_000_000  # rows counted at most, per table or column the plan drops
BY_HAND = "write the reverse change by hand as a new migration (inv migrate.new), then apply it"


@dataclass
class DownReport(Report):
    env: str
    current: str
    version: str  # the version to reach
    undone: list[str] = field(default_factory=list)  # the files whose changes the plan reverses
    statements: list[str] = field(default_factory=list)  # Atlas's plan
    corrections: list[str] = field(default_factory=list)  # what Atlas drops, added (tools/corrections.py)
    hazards: list[str] = field(default_factory=list)  # squawk's lock-safety findings on the plan
    losses: list[tuple[str, int]] = field(default_factory=list)  # (table or column dropped, rows it holds)
    dry_run: bool = False
    refused: WorkflowError | None = None
    done: bool = False
    after: StatusReport | None = None

    def preview(self) -> list[str]:
        """What the down does: the files it undoes, the plan, its hazards, the data it deletes."""
        out = [
            f"{self.env}: down from {self.current} to {self.version} undoes {len(self.undone)} file(s): "
            + ", ".join(self.undone),
            "-- plan (Atlas's schema diff, verified on a scratch copy)",
        ]
        out += [stmt.rstrip(";") + ";" for stmt in self.statements] or ["-- (no statement: the schemas are equal)"]
        if self.corrections:
            out += ["-- corrections (details Atlas v0.13.1 drops)"] + self.corrections
        out += [f"hazard: {finding}" for finding in self.hazards]
        return out + [f"data loss: {what} holds {rows_text(rows)}" for what, rows in self.losses if rows]

    def lines(self) -> list[str]:
        out = self.preview()
        if self.dry_run:
            out.append(f"{self.env}: dry run, nothing changed")
        if self.done:
            out.append(
                f"{self.env}: back at {self.version} ({len(self.statements) + len(self.corrections)} statement(s) in "
                f"one transaction); its catalog equals what migrations/ up to {self.version} builds"
            )
            out += self.after.lines() if self.after else []
        return out

    def verdict(self) -> None:
        if self.refused:
            raise self.refused


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


def _run_all(conn: psycopg.Connection[tuple[Any, ...]], sql: list[str], what: str, hint: str = BY_HAND) -> None:
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


def _left(snapshot: catalog.Snapshot, capped: catalog.Snapshot, version: str) -> list[catalog.Difference]:
    return catalog.diff(snapshot, capped, left_label="the plan's result", right_label=f"migrations/ up to {version}")


def verified(config: Config, copy_url: str, statements: list[str], capped: catalog.Snapshot, version: str) -> list[str]:
    """Run `statements` on the scratch copy at `copy_url`, add the corrections migrate.diff adds,
    and prove by catalogs that the copy then equals `capped`. Returns the corrections; refuses,
    naming every difference left (objects Atlas does not see, details nothing corrects)."""
    with connect(copy_url) as conn:
        with conn.transaction():
            _run_all(conn, statements, "the plan")
        snap = catalog.snapshot(conn)
        details = corrections.plan_details(snap, capped, _left(snap, capped, version))
        if not details.unfixable and details.after:
            with conn.transaction():
                _run_all(conn, details.after, "the corrections")
            snap = catalog.snapshot(conn)
        left = _left(snap, capped, version)
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


# --- migrate.down --------------------------------------------------------------------------


def _steps(steps: str | int) -> int:
    try:
        value = int(str(steps).strip() or "0")
    except ValueError:
        value = -1
    if value < 0:
        raise WorkflowError(f"invalid --steps {steps!r}", hint="pass a positive number of files, e.g. --steps 1")
    return value


def down(
    config: Config,
    target: Target,
    log: Log,
    to: str = "",
    steps: str | int = 0,
    dry_run: bool = False,
    yes: bool = False,
    allow_destructive: bool = False,
    lock_timeout: str = "",
    ask: Callable[[str], str] = input,
) -> DownReport:
    env, to, count = target.name, to.strip(), _steps(steps)
    if to and count:
        raise WorkflowError("--to and --steps contradict each other", hint="pass one of them")
    if not to and not count:
        raise WorkflowError("say where to go back to", hint="pass --to VERSION or --steps N (e.g. --steps 1)")
    lock_timeout = validate_duration(lock_timeout or config.get("ATLAS_LOCK_TIMEOUT", "10s"))
    table_timeout = validate_duration(
        config.get("TABLE_LOCK_TIMEOUT", "5s"), allow_zero=True, what="table lock timeout"
    )
    check_versions(config)
    files = migration_files(config)
    versions = [version_of(p) for p in files]
    if to and to not in versions:
        raise WorkflowError(
            f"no migration with version {to!r} in migrations/", hint="see the versions with inv migrate.status"
        )
    with apply_lock(target.url, env, lock_timeout, log):
        before = status(config, target)
        if before.skipped:
            raise out_of_order(before)
        if before.status not in ("OK", "PENDING"):
            raise WorkflowError(
                f"{env} is in state {before.status} (current version {before.current}); nothing was changed",
                hint="a previous apply failed part-way: fix the failing file and apply it first",
            )
        if not before.applied:
            snapshot = catalog.snapshot_url(target.url)
            if not catalog.is_empty(snapshot):
                raise NotAdopted(env, catalog.kinds(snapshot))
            raise WorkflowError(
                f"Atlas has applied no migration to {env}: there is nothing to go back from",
                hint=f"apply the migrations first: inv migrate.apply --env {env}",
            )
        if before.pending:
            raise WorkflowError(
                f"{env} has {len(before.pending)} pending file(s) ({before.pending[0]}): a down starts from a target "
                "with nothing pending; nothing was changed",
                hint=f"apply them first (inv migrate.apply --env {env}), or leave them pending and do not go down",
            )
        if before.current not in versions:
            raise WorkflowError(
                f"{env}'s current version {before.current} has no file in migrations/",
                hint="check out the branch that holds it",
            )
        now = versions.index(before.current) + 1
        upto = versions.index(to) + 1 if to else now - count
        if to and upto >= now:
            raise WorkflowError(
                f"version {to} is not below {env}'s current version {before.current}",
                hint=f"pick a version below {before.current} (inv migrate.status --env {env})",
            )
        if upto < 1:
            raise WorkflowError(
                f"--steps {count} goes beyond {env}'s history: {now} file(s) applied, and the first is where a down "
                "stops",
                hint=f"pass at most --steps {now - 1}" if now > 1 else "to start over locally: inv db.reset",
            )
        version = versions[upto - 1]
        report = DownReport(
            env, before.current, version, undone=[p.name for p in files[upto:now]][::-1], dry_run=dry_run
        )
        with progress(log, f"Computing and verifying the plan from {before.current} back to {version}"):
            plan = compute(config, target, now, upto, version)
        report.statements, report.corrections = plan.statements, plan.corrections
        report.losses = data_loss(target.url, plan.current, plan.capped)
        report.hazards = hazards(plan.sql)
        if dry_run:
            return report
        lost = [(what, rows) for what, rows in report.losses if rows]
        if lost and not allow_destructive:
            report.refused = WorkflowError(
                f"the plan deletes data ({len(lost)} table(s)/column(s) holding rows, first: {lost[0][0]}, "
                f"{rows_text(lost[0][1])}); nothing was changed",
                hint=f"back it up if needed, then pass --allow-destructive (inv migrate.down --env {env} ...)",
            )
            return report
        if target.protected and not yes:  # the question comes after the plan, not before it
            for line in report.preview():
                log(line)
        guard(target, yes, ask, action=f"go back to {version}", files=report.undone, undone="changed")
        with (
            signals.note(f"{env} is unchanged: the plan runs in one transaction, rolled back"),
            progress(log, f"Taking {env} back to {version}"),
        ):
            _execute(config, target, plan, version, before.current, table_timeout)
        report.done = True
    report.after = status(config, target)
    return report


def compute(config: Config, target: Target, now: int, upto: int, version: str) -> Plan:
    """The verified plan from the target (`now` files applied) to migrations/ up to `upto`.

    The target must be what its migrations build (no drift): a plan computed from a drifted
    schema would undo the drift too, or fail half-way."""
    with scratch_databases(config, "current", "capped") as (copy, capped_url):
        replay_migrations(config, copy, amount=now)
        replay_migrations(config, capped_url, amount=upto)
        current, capped = catalog.snapshot_url(copy), catalog.snapshot_url(capped_url)
        drift = [
            d
            for d in catalog.diff(
                current, catalog.snapshot_url(target.url), "its migrations", f"the {target.name} database"
            )
            if not is_alembic_bookkeeping(d)
        ]
        if drift:
            raise WorkflowError(
                f"{target.name} has drifted from its migrations ({len(drift)} difference(s), first: {drift[0]}); "
                "nothing was changed",
                hint=f"see inv migrate.drift --env {target.name}: a plan computed from a drifted schema would be wrong",
            )
        statements = schema_diff(config, target.url, capped_url)
        fixes = verified(config, copy, statements, capped, version)
    return Plan(statements, fixes, current, capped)


def _execute(config: Config, target: Target, plan: Plan, version: str, current: str, table_timeout: str) -> None:
    """The plan in one transaction on the target, its catalog compared with the capped build
    inside it, the version recorded by `atlas migrate set`, then the commit."""
    import psycopg

    env = target.name
    recorded = False
    try:
        with connect(target.url) as conn, conn.transaction():
            if table_timeout != "0":
                conn.execute(f"SET LOCAL lock_timeout = {duration_ms(table_timeout)}")
            _run_all(
                conn,
                plan.sql,
                f"the plan on {env} (rolled back, nothing changed)",
                hint="if a lock timed out, retry when the tables are quiet (pg_stat_activity) or raise "
                "TABLE_LOCK_TIMEOUT",
            )
            left = _left(catalog.snapshot(conn), plan.capped, version)
            if left:
                raise WorkflowError(
                    f"after the plan {env} differs from what migrations/ up to {version} builds ({len(left)} "
                    f"difference(s), first: {left[0]}); rolled back, nothing changed",
                    hint=f"see inv migrate.drift --env {env}",
                )
            try:
                record(config, env, version)
            except WorkflowError as exc:
                raise WorkflowError(
                    f"recording version {version} failed ({exc.message}); the plan was rolled back, nothing changed",
                    hint=exc.hint,
                ) from None
            recorded = True
    except WorkflowError:
        raise
    except (psycopg.Error, KeyboardInterrupt) as exc:
        if recorded:  # the commit itself failed or was cut short: put the recorded version back
            record(config, env, current)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise connection_error(exc, f"the {env} database") from None


def record(config: Config, env: str, version: str) -> None:
    """Atlas's revision table: the files up to `version` applied, the later ones pending."""
    atlas_for(config).run("migrate", "set", version, "--env", env)
