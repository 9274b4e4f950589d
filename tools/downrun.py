"""The plan of `inv migrate.down` on the target: one transaction that locks the tables the plan
drops or rewrites, counts their rows again (a row written since the preview refuses the down
unless --allow-destructive), runs the plan, compares the catalog with what migrations/ up to
the version builds, records the version with `atlas migrate set`, then commits.

`atlas migrate set` runs on its own connection and commits on its own: when anything fails or
is interrupted once it has started, Atlas's revision table is read again on a fresh connection
and a version it moved is put back, so that "nothing changed" is true when it is said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools import catalog, signals
from tools.atlas import atlas_for
from tools.config import Config, Target
from tools.downloss import Loss, count, locks, rows_text
from tools.downplan import REVISIONS, Plan, left_over, run_all
from tools.errors import WorkflowError
from tools.pg import connect, connection_error, duration_ms

if TYPE_CHECKING:
    import psycopg

LOCK_HINT = "retry when the tables are quiet (pg_stat_activity) or raise TABLE_LOCK_TIMEOUT"


def execute(
    config: Config, target: Target, plan: Plan, version: str, current: str, table_timeout: str, destructive: bool
) -> list[Loss]:
    """The plan in one transaction on the target; returns the data loss counted inside it."""
    import psycopg

    env, recording, committed = target.name, False, False
    before: list[str] = []
    try:
        with connect(target.url) as conn:
            with conn.transaction():
                if table_timeout != "0":
                    conn.execute(f"SET LOCAL lock_timeout = {duration_ms(table_timeout)}")
                losses = _recount(conn, plan, env, destructive)
                run_all(
                    conn,
                    plan.sql,
                    f"the plan on {env} (rolled back, nothing changed)",
                    hint=f"the rows of {env} do not fit what migrations/ up to {version} builds: change them, or "
                    "write the reverse change by hand as a new migration (inv migrate.new)",
                    lock_hint="a lock timed out: " + LOCK_HINT,
                )
                left = left_over(catalog.snapshot(conn), plan.capped, version)
                if left:
                    raise WorkflowError(
                        f"after the plan {env} differs from what migrations/ up to {version} builds ({len(left)} "
                        f"difference(s), first: {left[0]}); rolled back, nothing changed",
                        hint=f"see inv migrate.drift --env {env}",
                    )
                before, recording = revisions(target.url), True
                try:
                    record(config, env, version)
                except WorkflowError as exc:
                    raise WorkflowError(
                        f"recording version {version} failed ({exc.message}); the plan was rolled back, nothing "
                        "changed",
                        hint=exc.hint,
                    ) from None
            committed = True
        return losses
    except (WorkflowError, psycopg.Error, KeyboardInterrupt) as exc:
        if committed:  # the down is done; only closing the connection failed or was cut short
            if isinstance(exc, KeyboardInterrupt):
                note = f"the down completed: {env} is at version {version}"
                raise signals.Interrupted(signals.signum_of(exc), note) from None
            return losses
        if recording:
            _put_back(config, target, before, version, current, exc)
        if isinstance(exc, WorkflowError | KeyboardInterrupt):
            raise
        raise connection_error(exc, f"the {env} database") from None


def _recount(conn: psycopg.Connection[tuple[Any, ...]], plan: Plan, env: str, destructive: bool) -> list[Loss]:
    """Lock what the plan drops or rewrites, then count its rows again: the preview's count is
    outside this transaction, and a row committed since then must not be lost unseen."""
    risks = plan.risks
    what = f"the plan on {env} (rolled back, nothing changed)"
    run_all(conn, locks(conn, risks.locked), what, hint=LOCK_HINT, lock_hint="a lock timed out: " + LOCK_HINT)
    losses = count(conn, risks)
    lost = [loss for loss in losses if loss.rows]
    if lost and not destructive:
        raise WorkflowError(
            f"since the preview, rows were written where the plan deletes or rewrites data ({lost[0].what}: "
            f"{rows_text(lost[0].rows)}); rolled back, nothing changed",
            hint=f"back it up if needed, then pass --allow-destructive (inv migrate.down --env {env} ...)",
        )
    return losses


def revisions(url: str) -> list[str]:
    """The versions in Atlas's revision table, read on a connection of their own."""
    with connect(url) as conn:
        return [row[0] for row in conn.execute(f"SELECT version FROM {REVISIONS}.{REVISIONS} ORDER BY version")]


def _put_back(
    config: Config, target: Target, before: list[str], version: str, current: str, exc: BaseException
) -> None:
    """Atlas's revision table as it was before `record` started: `atlas migrate set` may have
    committed before the failure or the interruption."""
    env = target.name
    try:
        if revisions(target.url) != before:
            record(config, env, current)
            if revisions(target.url) == before:
                return
            why = "it still differs after atlas migrate set"
        else:
            return
    except Exception as again:  # the put-back's own failure is what the message names
        why = str(again).strip().splitlines()[0] if str(again).strip() else type(again).__name__
    state = (
        f"{env}'s schema was rolled back and is still at {current}, but Atlas's revision table may say {version} "
        f"and putting it back failed ({why})"
    )
    fix = f"atlas migrate set {current} --env {env} (then inv migrate.status --env {env})"
    if isinstance(exc, KeyboardInterrupt):
        raise signals.Interrupted(signals.signum_of(exc), f"{state}; fix it with {fix}") from None
    raise WorkflowError(state, hint=f"fix it: {fix}") from None


def record(config: Config, env: str, version: str) -> None:
    """Atlas's revision table: the files up to `version` applied, the later ones pending."""
    atlas_for(config).run("migrate", "set", version, "--env", env)
