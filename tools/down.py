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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tools import catalog, signals
from tools.config import Config, Target
from tools.console import Log, Report, guard, progress
from tools.downloss import Loss, count_url, layout_url, rows_text
from tools.downplan import Plan, hazards, schema_diff, verified
from tools.downrun import execute
from tools.errors import NotAdopted, WorkflowError
from tools.fidelity import is_alembic_bookkeeping
from tools.migrations import check_versions, migration_files, version_of
from tools.pg import apply_lock, validate_duration
from tools.scratch import replay_migrations, scratch_databases
from tools.status import StatusReport, require_settled, status


@dataclass
class DownReport(Report):
    env: str
    current: str
    version: str  # the version to reach
    undone: list[str] = field(default_factory=list)  # the files whose changes the plan reverses
    statements: list[str] = field(default_factory=list)  # Atlas's plan
    corrections: list[str] = field(default_factory=list)  # what Atlas drops, added (tools/corrections.py)
    hazards: list[str] = field(default_factory=list)  # squawk's lock-safety findings on the plan
    losses: list[Loss] = field(default_factory=list)  # what the plan drops or rewrites, with its rows
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
        return out + [Loss(*loss).line() for loss in self.losses if loss[1]]  # (what, rows) tuples too

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
    report = DownReport(env, "", to)
    with _interrupt_note(env, report), apply_lock(target.url, env, lock_timeout, log):
        before = status(config, target)
        require_settled(before)
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
        report.current, report.version, report.dry_run = before.current, version, dry_run
        report.undone = [p.name for p in files[upto:now]][::-1]
        with progress(log, f"Computing and verifying the plan from {before.current} back to {version}"):
            plan = compute(config, target, now, upto, version)
        report.statements, report.corrections = plan.statements, plan.corrections
        report.losses = count_url(target.url, plan.risks)
        report.hazards = hazards(plan.sql)
        if dry_run:
            return report
        lost = [loss for loss in report.losses if loss.rows]
        if lost and not allow_destructive:
            report.refused = WorkflowError(
                f"the plan deletes or rewrites data ({len(lost)} table(s)/column(s) holding rows, first: "
                f"{lost[0].what}, {rows_text(lost[0].rows)}); nothing was changed",
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
            report.losses = execute(config, target, plan, version, before.current, table_timeout, allow_destructive)
        report.done = True
    with _interrupt_note(env, report):
        report.after = status(config, target)
    return report


@contextlib.contextmanager
def _interrupt_note(env: str, report: DownReport) -> Iterator[None]:
    """What an interruption leaves behind, as true at that point: nothing changed until the
    down committed, then the version it reached (printed by the task edge)."""
    try:
        yield
    except KeyboardInterrupt:
        done = f"the down completed: {env} is at version {report.version}"
        with signals.note(done if report.done else f"{env} is unchanged: the down changed nothing"):
            raise


def compute(config: Config, target: Target, now: int, upto: int, version: str) -> Plan:
    """The verified plan from the target (`now` files applied) to migrations/ up to `upto`.

    The target must be what its migrations build (no drift): a plan computed from a drifted
    schema would undo the drift too, or fail half-way."""
    with scratch_databases(config, "current", "capped") as (copy, capped_url):
        replay_migrations(config, copy, amount=now)
        replay_migrations(config, capped_url, amount=upto)
        current, capped = catalog.snapshot_url(copy), catalog.snapshot_url(capped_url)
        layouts = layout_url(copy), layout_url(capped_url)
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
    return Plan(statements, fixes, current, capped, *layouts)
