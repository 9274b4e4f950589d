"""`inv migrate.baseline`: adopt a database that another tool (Alembic) built.

Atlas refuses to apply to a database that holds objects but no Atlas history ("not clean").
Adopting one means recording the migrations it already contains as applied without running
them (`atlas migrate set`). Done blindly, that hides every difference between the database and
the migrations (a default Alembic never set, a constraint with another name): the next diffs
and applies would then be computed against a schema the database does not have. So the
baseline first builds what migrations/ up to the version produces, in a throw-away database,
and compares catalogs with the target; it records the version only when they are equal.
Alembic's own bookkeeping table (`alembic_version`) is not a difference: drop it once Alembic
is gone for good.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tools import catalog, migrations
from tools.atlas import atlas_for
from tools.config import Config, Target
from tools.console import Log, Report, guard, progress
from tools.errors import OUT_OF_SYNC, OutOfSync, WorkflowError
from tools.fidelity import ALEMBIC_TABLE, drift
from tools.pg import apply_lock, connect, connection_error, scalar, validate_duration
from tools.status import StatusReport, status


@dataclass
class BaselineReport(Report):
    env: str
    version: str
    files: list[str] = field(default_factory=list)  # what is recorded as applied
    differences: list[catalog.Difference] = field(default_factory=list)
    alembic: bool = False  # the target holds alembic_version
    done: bool = False
    dry_run: bool = False
    after: StatusReport | None = None  # the status once recorded

    def lines(self) -> list[str]:
        out = [f"drift: {difference}" for difference in self.differences]
        if self.dry_run:
            verdict = "matches" if not self.differences else f"differs in {len(self.differences)} place(s) from"
            out.append(f"{self.env} {verdict} what migrations/ up to {self.version} builds (dry run, nothing recorded)")
        elif self.done:
            out.append(
                f"{self.env}: baseline at {self.version}: {len(self.files)} migration(s) recorded as applied, none run"
            )
            if self.differences:
                out.append(f"{self.env}: recorded despite {len(self.differences)} difference(s) (--ignore-drift)")
            out += self.after.lines() if self.after else []
        return out

    def verdict(self) -> None:
        if self.dry_run and self.differences:
            raise OutOfSync("")
        if not self.dry_run and not self.done:
            raise self.refusal()

    def refusal(self) -> WorkflowError:
        return WorkflowError(
            f"{self.env} differs from what migrations/ up to {self.version} builds in {len(self.differences)} "
            "place(s); no baseline recorded",
            hint=(
                "align the database, or pick the --version it matches, or pass --ignore-drift to record the "
                "baseline anyway"
            ),
            code=OUT_OF_SYNC,
        )


def atlas_revisions(url: str, env: str) -> int:
    """Versions recorded in Atlas's revision table (0 when it does not exist yet)."""
    try:
        with connect(url) as conn:
            if scalar(conn, "SELECT to_regclass('atlas_schema_revisions.atlas_schema_revisions')") is None:
                return 0
            return scalar(
                conn, "SELECT count(*) FROM atlas_schema_revisions.atlas_schema_revisions WHERE version ~ '^[0-9]'"
            )
    except Exception as exc:
        raise connection_error(exc, f"the {env} database") from None


def baseline(
    config: Config,
    target: Target,
    log: Log,
    version: str = "",
    yes: bool = False,
    dry_run: bool = False,
    ignore_drift: bool = False,
    ask: Callable[[str], str] = input,
) -> BaselineReport:
    env = target.name
    migrations.check_versions(config)
    files = migrations.migration_files(config)
    if not files:
        raise WorkflowError(
            "migrations/ is empty: there is nothing to baseline against",
            hint="create the initial migration first: inv migrate.diff --name initial",
        )
    versions = [migrations.version_of(p) for p in files]
    version = version.strip() or versions[0]
    if version not in versions:
        raise WorkflowError(
            f"no migration with version {version!r} in migrations/",
            hint=f"use one of the versions in migrations/, e.g. {versions[0]} (the first)",
        )
    upto = versions.index(version) + 1
    report = BaselineReport(env=env, version=version, files=[p.name for p in files[:upto]], dry_run=dry_run)
    lock_timeout = validate_duration(config.get("ATLAS_LOCK_TIMEOUT", "10s"))
    with apply_lock(target.url, env, lock_timeout, log):
        applied = atlas_revisions(target.url, env)  # not `atlas migrate status`: it refuses such a database
        if applied:
            raise WorkflowError(
                f"{env} already has {applied} migration(s) applied by Atlas: a baseline is only for a database Atlas "
                "has never migrated",
                hint=f"use inv migrate.apply --env {env}",
            )
        snapshot = catalog.snapshot_url(target.url)
        if catalog.is_empty(snapshot):
            raise WorkflowError(
                f"{env} is empty: there is nothing to baseline",
                hint=f"apply the migrations instead: inv migrate.apply --env {env}",
            )
        report.alembic = any(name.split(".")[-1] == ALEMBIC_TABLE for name in snapshot.get("table", {}))
        with progress(log, f"Comparing {env} with what the first {upto} migration(s) build"):
            report.differences = drift(config, target, applied=upto)  # alembic_version is left out
        if report.alembic:
            log(f"note: {ALEMBIC_TABLE} (Alembic's bookkeeping) is not compared; drop it once Alembic is gone for good")
        if dry_run:
            return report
        if report.differences and not ignore_drift:
            return report  # refused: its verdict lists the differences, then report.refusal()
        guard(
            target,
            yes,
            ask,
            action=f"record {len(report.files)} file(s) as applied without running them",
            files=report.files,
            undone="recorded",
        )
        atlas_for(config).run("migrate", "set", version, "--env", env)
        report.done = True
    report.after = status(config, target)
    return report
