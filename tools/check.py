"""`inv migrate.check` (the CI gate) and `inv migrate.validate`: migrations/ in sync with the
models, proven on a throw-away dev database only.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tools import erd, fidelity, gitbase, preconditions, prove
from tools.atlas import atlas_for
from tools.atlaslint import lint
from tools.config import GUIDE_ENV, Config
from tools.console import Log, Report
from tools.errors import ERROR, OK, OUT_OF_SYNC, WorkflowError, exit_with
from tools.migrations import (
    FILE_RE,
    check_versions,
    migration_files,
    migrations_dir,
    regular_files_only,
    statements_of,
    version_of,
)
from tools.pg import dev_lock
from tools.scratch import desired_state, fresh_dev, using_dev
from tools.stack import Stack


@dataclass
class ValidateReport(Report):
    files: int

    def lines(self) -> list[str]:
        return [f"migrations valid ({self.files} files)"]


@using_dev
def validate(config: Config) -> ValidateReport:
    check_versions(config)
    fresh_dev(config)
    try:
        atlas_for(config).run("migrate", "validate", "--env", GUIDE_ENV)
    finally:
        fresh_dev(config)
    return ValidateReport(len(migration_files(config)))


# What migrate.check cannot do without git history (--no-base says so, and they are listed).
HISTORY_CHECKS = (
    "lint of the migration files this branch adds",
    "the order check (a file versioned below the base branch's newest would never run where it is applied)",
)


@dataclass
class CheckReport(Report):
    problems: list[tuple[int, str]] = field(default_factory=list)  # (exit code, one line)
    base: gitbase.Base | None = None  # None with --no-base
    not_run: list[str] = field(default_factory=list)  # checks skipped on request (--no-base)

    @property
    def code(self) -> int:
        return max((c for c, _ in self.problems), default=OK)

    def lines(self) -> list[str]:
        out = [f"{'out of sync' if code == OUT_OF_SYNC else 'error'}: {line}" for code, line in self.problems]
        out += [f"not run (--no-base, no git history): {what}" for what in self.not_run]
        if not self.code:
            out.append(
                "in sync: schema.sql, migrations/ and atlas.sum match the models"
                + (f" ({len(self.not_run)} check(s) not run, listed above)" if self.not_run else "")
            )
        return out

    def verdict(self) -> None:
        exit_with(self.code)


def default_base(config: Config) -> str | None:
    """The merge base with the base branch (gitbase.CANDIDATES) in this checkout, or None.

    Never fetches: migrate.check resolves its base with gitbase.resolve, which does."""
    if not shutil.which("git"):
        return None
    found = gitbase.first_candidate(config.root)
    return gitbase.merge_base(config.root, found[1]) if found else None


def check(config: Config, stack: Stack, log: Log, base: str | None = None, no_base: bool = False) -> CheckReport:
    """Prove migrations/ is in sync with the models, using only a throw-away dev database.

    The base (--base, else origin/HEAD, origin/main, origin/master, main, master) is resolved
    once, before anything starts; without git history the gate fails unless `no_base`, and then
    the report lists what it did not run."""
    regular_files_only(config)
    report = CheckReport()
    if no_base:
        if base:
            raise WorkflowError("--base and --no-base contradict each other", hint="pass one of them")
        report.not_run = list(HISTORY_CHECKS)
    else:
        report.base = gitbase.resolve(config.root, base, log)
        log(f"base: {report.base.describe()}")
    stack.up(log, ("dev-db", "app") if stack.name == "compose" else ("dev-db",))
    with dev_lock(config.dev_url(), log=log):
        return _check(config, stack, log, report)


def _check(config: Config, stack: Stack, log: Log, report: CheckReport) -> CheckReport:
    fresh = stack.dump_schema(log)
    committed = (config.root / "schema.sql").read_text() if (config.root / "schema.sql").exists() else ""
    if fresh != committed:
        report.problems.append(
            (
                OUT_OF_SYNC,
                "schema.sql is stale against the models: run inv schema.dump (or inv migrate.diff --name <change>)",
            )
        )
    report.problems += erd.stale_problem(config, fresh)
    atlas = atlas_for(config)
    try:
        validate(config)
    except WorkflowError as exc:
        report.problems.append((ERROR, f"migrations/ is not valid: {exc}"))
        return report
    try:
        preconditions.load(config)
    except WorkflowError as exc:
        report.problems.append((ERROR, str(exc)))
    with tempfile.TemporaryDirectory(prefix="migrate-check-") as tmp:
        tmp_dir = Path(tmp) / "migrations"
        shutil.copytree(migrations_dir(config), tmp_dir)
        fresh_dev(config)
        try:
            with desired_state(fresh) as desired:
                atlas.run(
                    "migrate",
                    "diff",
                    "pending_model_changes",
                    "--env",
                    GUIDE_ENV,
                    "--dir",
                    f"file://{tmp_dir}",
                    "--to",
                    desired,
                )
        finally:
            fresh_dev(config)
        extra = sorted(p.name for p in tmp_dir.glob("*.sql") if not (migrations_dir(config) / p.name).exists())
        if extra:
            stmts = statements_of((tmp_dir / extra[0]).read_text())
            first = " ".join(stmts[0].split())[:100] if stmts else ""
            report.problems.append(
                (
                    OUT_OF_SYNC,
                    f"the models need a migration that does not exist yet ({len(stmts)} statement(s), first: "
                    f"{first}): run inv migrate.diff --name <change>",
                )
            )
    report.problems += verified(config, fresh)
    if report.base is None:
        return report
    for name, ref, newest in below_newest(config, report.base.tip, label=report.base.ref):
        report.problems.append(
            (
                ERROR,
                f"migrations/{name} is below the newest migration of {ref} ({newest}): where that is applied it "
                "would never run: "
                f"inv migrate.renumber --file {name}",
            )
        )
    for line in lint(config, base=report.base.merge_base).errors:
        report.problems.append((ERROR, f"lint: {line}"))
    for path in prove.files_new_since(config, report.base.merge_base):  # inv migrate.test on the new files
        why = prove.round_trip(config, path)
        if why:
            report.problems.append(
                (ERROR, f"migrations/{path.name} cannot be undone by a computed down plan (inv migrate.test): {why}")
            )
    return report


def verified(config: Config, schema_sql: str) -> list[tuple[int, str]]:
    """The catalog verification (fidelity.verify), once: Atlas's own checks pass a file whose
    primary-key name or UNIQUE constraint it dropped; the catalogs do not."""
    try:
        differences = fidelity.verify(config, schema_sql)
    except WorkflowError as exc:
        return [(ERROR, f"migrations/ could not be verified: {exc}")]
    if not differences:
        return []
    return [
        (
            OUT_OF_SYNC,
            f"migrations/ builds a different database than schema.sql ({len(differences)} difference(s), first: "
            f"{differences[0]}): see inv migrate.verify; correct the file by hand (then inv migrate.hash), "
            f"or remove it and run inv migrate.diff again",
        )
    ]


def below_newest(config: Config, ref: str | None = None, label: str | None = None) -> list[tuple[str, str, str]]:
    """Files this checkout adds whose version is below the newest one of `ref` (a commit or a
    ref; default: the first of gitbase.CANDIDATES): merged in after newer files were applied,
    Atlas skips them."""
    if ref is None:
        found = gitbase.first_candidate(config.root)
        if not found:
            return []
        label, ref = found
    theirs = {name for name in gitbase.files_at(config.root, ref) if FILE_RE.match(name)}
    if not theirs:
        return []
    newest = max(theirs, key=lambda n: int(version_of(Path(n))))
    return [
        (p.name, label or ref, version_of(Path(newest)))
        for p in migration_files(config)
        if p.name not in theirs and int(version_of(p)) < int(version_of(Path(newest)))
    ]
