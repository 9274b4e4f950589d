"""`inv migrate.test`: prove that every migration can be undone by the plan migrate.down computes.

For each file V, on scratch databases: build migrations/ up to V-1, and up to V (V-1 then V);
compute the down plan from V to V-1 and run it (tools/downplan.py: Atlas's diff, the corrections,
the catalog verification against the V-1 build); then apply V again and compare catalogs with
the V build. A rollback nobody ever ran is the one that fails when it is needed (Liquibase's
update-testing-rollback runs update, rollback, update for the same reason). Then the migration
data tests of tests/migrations/ run (tools/datatests.py): a schema that comes back is not yet
data that survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools import catalog, datatests, gitbase
from tools.atlas import atlas_for
from tools.config import GUIDE_ENV, Config
from tools.console import Log, Report, progress
from tools.downplan import REVISIONS, schema_diff, verified
from tools.errors import WorkflowError
from tools.migrations import check_versions, migration_files, version_of
from tools.pg import connect
from tools.scratch import replay_migrations, scratch_databases


@dataclass
class ProveReport(Report):
    results: list[tuple[str, str | None]] = field(default_factory=list)  # (file, None or why it fails)
    since: str = ""
    data: datatests.DataTestsReport | None = None  # the migration data tests, when they ran

    @property
    def failed(self) -> list[tuple[str, str]]:
        return [(name, why) for name, why in self.results if why is not None]

    def lines(self) -> list[str]:
        if not self.results:
            none = f"no migration file {'new since ' + self.since if self.since else 'in migrations/'} to prove"
            return [none, *self._data_lines()]
        out = [
            f"ok {name}: up, down, up again: each build's catalog restored" if why is None else f"FAILED {name}: {why}"
            for name, why in self.results
        ]
        ok = len(self.results) - len(self.failed)
        return out + [f"{ok} of {len(self.results)} migration(s) go down and up again"] + self._data_lines()

    def _data_lines(self) -> list[str]:
        return self.data.lines() if self.data is not None else []

    def verdict(self) -> None:
        if self.failed:
            also = "; migration data tests failed too" if self.data is not None and not self.data.ok else ""
            raise WorkflowError(
                f"{len(self.failed)} migration(s) cannot be undone by a computed plan: "
                + ", ".join(name for name, _ in self.failed)
                + also,
                hint="see the lines above: write those reverse changes by hand before you need them",
            )
        if self.data is not None:
            self.data.verdict()


def files_new_since(config: Config, ref: str) -> list[Path]:
    """The migration files that are not in migrations/ at git `ref`."""
    try:
        gitbase.require_repository(config.root)
    except WorkflowError as exc:
        raise WorkflowError(
            exc.message.split(", so ")[0] + f", so the files new since {ref} cannot be found",
            hint="run it in a git checkout, or without --since (every file of migrations/)",
        ) from None
    commit = gitbase.commit_of(config.root, ref)
    if commit is None:
        raise WorkflowError(
            f"--since {ref}: no such branch, tag or commit in this repository",
            hint="name one that exists (git branch -a), or fetch it first (git fetch origin <branch>)",
        )
    theirs = set(gitbase.files_at(config.root, commit))
    return [p for p in migration_files(config) if p.name not in theirs]


def prove(config: Config, log: Log, since: str = "") -> ProveReport:
    check_versions(config)
    chosen = files_new_since(config, since.strip()) if since.strip() else migration_files(config)
    report = ProveReport(since=since.strip())
    for path in chosen:
        with progress(log, f"Up, down and up again: {path.name}"):
            report.results.append((path.name, round_trip(config, path)))
    with progress(log, f"Migration data tests ({datatests.TESTS}/)"):
        report.data = datatests.run(config)
    return report


def round_trip(config: Config, path: Path) -> str | None:
    """None when `path` goes up, down and up again with each build's catalog restored; else why not."""
    files = migration_files(config)
    index = [p.name for p in files].index(path.name) + 1
    earlier = version_of(files[index - 2]) if index > 1 else ""
    label = earlier or "an empty database"
    try:
        with scratch_databases(config, "before", "work") as (before, work):
            if index > 1:
                replay_migrations(config, before, amount=index - 1)
            replay_migrations(config, work, amount=index)
            below, built = catalog.snapshot_url(before), catalog.snapshot_url(work)
            statements = schema_diff(config, work, before)
            verified(config, work, statements, below, label)
            _forget(config, work, earlier)
            replay_migrations(config, work, amount=1)
            left = catalog.diff(catalog.snapshot_url(work), built, "after up, down, up", f"the {path.name} build")
            if left:
                return f"applied again after the down, it builds another schema: {left[0]}"
    except WorkflowError as exc:
        return exc.message
    return None


def _forget(config: Config, url: str, version: str) -> None:
    """Record only the files up to `version` as applied on the scratch database at `url` (none: `version` empty)."""
    if version:
        atlas = atlas_for(config)
        atlas.environ = config.child_environ(DATABASE_URL=url)
        atlas.run("migrate", "set", version, "--env", GUIDE_ENV)
        return
    with connect(url) as conn:
        conn.execute(f"DELETE FROM {REVISIONS}.{REVISIONS}")
