"""`inv migrate.diff`: the models' change as a new migration, written, corrected and verified
by catalogs in a staged copy of migrations/, then published with schema.sql (tools/staging.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools import catalog, corrections, erd, signals, staging
from tools.atlas import atlas_for
from tools.config import GUIDE_ENV, Config
from tools.console import Log, Report
from tools.errors import WorkflowError
from tools.migrations import (
    check_versions,
    dir_args,
    ensure_increasing,
    migration_files,
    migrations_dir,
    new_file,
    rehash,
    statements_of,
    validate_name,
)
from tools.pg import dev_lock
from tools.safety import lint
from tools.schema import dump
from tools.scratch import desired_state, execute_sql, fresh_dev, replay_migrations, scratch_databases
from tools.stack import Stack


@dataclass
class DiffReport(Report):
    files: list[Path] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    schema_changed: bool = False
    lint: list[str] = field(default_factory=list)
    renumbered: list[str] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)
    renames: list[str] = field(default_factory=list)  # drops + adds that look like renames
    diagrams: list[str] = field(default_factory=list)  # docs/schema.md, .svg refreshed (tools/erd.py)

    def lines(self) -> list[str]:
        out = ["schema.sql updated from the models"] if self.schema_changed else []
        out += [f"{path} updated (the diagram of the schema)" for path in self.diagrams]
        if not self.files:
            return out + ["no changes: the migrations already match the models"]
        out += [
            f"renumbered {renamed} (its version was not above the newest existing one)" for renamed in self.renumbered
        ]
        out += [f"new migration: migrations/{path.name}" for path in self.files]
        if self.corrections:
            out.append(
                f"  ({len(self.corrections)} statement(s) added where Atlas falls short; see the comments in the file)"
            )
        out += ["  " + stmt.replace("\n", "\n  ") for stmt in self.statements]
        out += [f"lint: {finding}" for finding in self.lint]
        return out + [
            f"possible rename: {hint} (Atlas wrote a drop and an add, which loses the data; "
            f"edit the file, then inv migrate.hash and inv migrate.verify)"
            for hint in self.renames
        ]


def diff(config: Config, stack: Stack, name: str, log: Log) -> DiffReport:
    name = validate_name(config, name)
    check_versions(config)
    stack.up(log, ("dev-db", "app") if stack.name == "compose" else ("dev-db",))
    with signals.note("migrations/, atlas.sum and schema.sql are unchanged"), dev_lock(config.dev_url(), log=log):
        return _diff(config, stack, name, log)


def _diff(config: Config, stack: Stack, name: str, log: Log) -> DiffReport:
    """Atomic: Atlas writes, we correct, verify and lint in a staged copy of migrations/; only
    the finished file and its atlas.sum are moved into migrations/, with schema.sql
    (tools/staging.py). Interrupted or failed before that, all three stay as they were."""
    dumped = dump(config, stack, log, write=False)
    report = DiffReport(schema_changed=dumped.changed)
    with staging.staged(config.root, migrations_dir(config)) as work:
        new = _write_staged(config, name, dumped.text, work.directory, report, log)
        schema = ((config.root / "schema.sql", dumped.text),) if report.schema_changed else ()
        diagrams = erd.refreshed(config, dumped.text)  # docs/schema.md and .svg, when they changed
        report.diagrams = [path.relative_to(config.root).as_posix() for path, _ in diagrams]
        report.files = staging.publish(work, new, also=schema + diagrams)
    return report


def _write_staged(
    config: Config, name: str, schema_sql: str, directory: Path, report: DiffReport, log: Log
) -> list[Path]:
    """Atlas's diff into `directory`, renumbered, corrected and verified, then linted."""
    fresh_dev(config)
    history = [p.name for p in migration_files(config, directory)]
    try:
        with desired_state(schema_sql) as desired:
            atlas_for(config).run("migrate", "diff", name, "--env", GUIDE_ENV, *dir_args(directory), "--to", desired)
    finally:
        fresh_dev(config)  # Atlas leaves what it could not carry behind: never reuse it
    new = [p for p in migration_files(config, directory) if p.name not in history]
    if new:
        new, report.renumbered = ensure_increasing(config, set(history), new)
        if report.renumbered:
            rehash(config, directory)
    new, report.corrections, report.renames = correct(config, name, history, new, schema_sql, log, directory=directory)
    for path in new:
        report.statements += statements_of(path.read_text())
    if new:
        report.lint = lint(config, latest=len(new), directory=directory).finding_lines()
    return new


def correct(
    config: Config,
    name: str,
    history: list[str],
    new: list[Path],
    schema_sql: str,
    log: Log,
    directory: Path | None = None,
) -> tuple[list[Path], list[str], list[str]]:
    """Make the new migration build exactly what schema.sql builds, by catalogs; else refuse.

    Adds what Atlas leaves out (objects of kinds it ignores, primary-key names, UNIQUE
    constraints, deferrability, declared sequences) under a comment, re-hashes atlas.sum and
    verifies again. Returns the new files, the corrective statements it added, and the drops +
    adds that look like renames (catalog.possible_renames). Works on `directory` (a staged copy
    of migrations/, see _diff) when given.
    """
    with scratch_databases(config, "history", "models", "replay", "verify") as (hist, models, replay, check):
        if history:
            replay_migrations(config, hist, amount=len(history), directory=directory)
        execute_sql(models, schema_sql, "schema.sql")
        h_snap, m_snap = catalog.snapshot_url(hist), catalog.snapshot_url(models)
        ignored = corrections.plan_ignored(h_snap, m_snap, schema_sql)
        if ignored.unfixable:
            raise WorkflowError(
                "the models have changes no migration can be generated for (no file was written):\n  "
                + "\n  ".join(ignored.unfixable),
                hint="see the lines above",
            )
        added: list[str] = []
        if not ignored.empty:
            new = new or [new_file(config, name, directory)]
            _add(
                new[-1], ignored.before, ignored.after, "Atlas ignores these object kinds in schema.sql: copied from it"
            )
            added += ignored.before + ignored.after
            rehash(config, directory)
        if new:
            replay_migrations(config, replay, directory=directory)
            r_snap = catalog.snapshot_url(replay)
        else:
            r_snap = h_snap
        details = corrections.plan_details(r_snap, m_snap, catalog.diff(r_snap, m_snap))
        if details.unfixable:
            raise WorkflowError(
                "the generated migration would not build what the models declare (no file was written):\n  "
                + "\n  ".join(details.unfixable),
                hint="write the change by hand: inv migrate.new, then inv migrate.hash",
            )
        if not details.empty:
            new = new or [new_file(config, name, directory)]
            _add(
                new[-1],
                [],
                details.after,
                "Corrections: Atlas v0.13.1 drops these details; they make the database match the models exactly",
            )
            added += details.after
            rehash(config, directory)
        if not new:
            return [], [], []
        replay_migrations(config, check, directory=directory)
        left = catalog.diff(catalog.snapshot_url(check), m_snap)
        if left:
            raise WorkflowError(
                "after corrections the migrations still differ from the models (no file was written):\n  "
                + "\n  ".join(map(str, left)),
                hint="write the change by hand: inv migrate.new, then inv migrate.hash",
            )
    return new, added, catalog.possible_renames(h_snap, m_snap)


def _add(path: Path, before: list[str], after: list[str], why: str) -> None:
    text = path.read_text()
    head = corrections.render(why + " (before Atlas's statements: the tables may depend on them)", before)
    tail = corrections.render(why, after)
    if tail and text and not text.endswith("\n"):
        text += "\n"
    path.write_text(head + text + tail)
