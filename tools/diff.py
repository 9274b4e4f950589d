"""`inv migrate.diff`: the models' change as a new migration, written, corrected and verified
by catalogs in a staged copy of migrations/, then published with schema.sql (tools/staging.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools import catalog, corrections, erd, schema, schemagraph, signals, snapcache, staging, timings
from tools.atlas import atlas_for
from tools.atlaslint import lint_started
from tools.config import GUIDE_ENV, Config
from tools.console import Log, Report
from tools.dump_runner import DumpRun
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
from tools.pg import connect, dev_lock, server_version
from tools.scratch import (
    desired_state,
    execute_sql,
    fresh_dev,
    replay_migrations,
    replay_started,
    scratch_databases,
    tidy_dev,
)
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
    with signals.note("migrations/, atlas.sum and schema.sql are unchanged"), stack.start_dump(log) as dumping:
        stack.up(log, ("dev-db", "app") if stack.name == "compose" else ("dev-db",))
        with dev_lock(config.dev_url(), log=log):
            return _diff(config, stack, name, log, dumping)


def _diff(config: Config, stack: Stack, name: str, log: Log, dumping: DumpRun) -> DiffReport:
    """Atomic: Atlas writes, we correct, verify and lint in a staged copy of migrations/; only
    the finished file and its atlas.sum are moved into migrations/, with schema.sql
    (tools/staging.py). Interrupted or failed before that, all three stay as they were.

    What does not depend on each other runs at the same time: the schema dump (a child
    process) while the history is replayed into a scratch database; Atlas's diff while the
    models' database is built; Atlas's lint while the result is verified. The history is
    replayed once; the checks of a new file run on copies of that database."""
    with staging.staged(config.root, migrations_dir(config)) as work:
        history = [p.name for p in migration_files(config, work.directory)]
        with scratch_databases(config, "history", "models") as (hist, models):
            replayed, hist_built = _history(config, hist, len(history), work.directory)
            dumped = schema.report_of(config, dumping.text(), write=False)
            report = DiffReport(schema_changed=dumped.changed)
            run = _Run(config, name, log, work.directory, history, dumped.text, hist, models, hist_built=hist_built)
            new, graph = run.atlas_diff(replayed)
            run.write(new, report)
        files = ((config.root / "schema.sql", dumped.text),) if report.schema_changed else ()
        diagrams = erd.refreshed(config, graph)  # docs/schema.md and .svg, when they changed
        report.diagrams = [path.relative_to(config.root).as_posix() for path, _ in diagrams]
        report.files = staging.publish(work, run.new, also=files + diagrams)
    return report


def _history(config: Config, url: str, amount: int, directory: Path) -> tuple[catalog.Snapshot | WorkflowError, bool]:
    """The history's catalogs: remembered (tools/snapcache.py), else replayed into `url`
    (and remembered); and whether `url` holds the replayed history."""
    remembered = snapcache.key(config, amount, server_version(config.dev_url()), directory)
    cached = snapcache.load(config, remembered)
    if cached is not None:
        fresh_dev(config)  # as _replay_history does meanwhile
        return cached, False
    replayed = _replay_history(config, url, amount, directory)
    if not isinstance(replayed, WorkflowError):
        snapcache.store(config, remembered, replayed)
    return replayed, True


def _replay_history(config: Config, url: str, amount: int, directory: Path) -> catalog.Snapshot | WorkflowError:
    """The catalogs of the history replayed into `url`; a failure is returned, not raised:
    the dump's error, then Atlas's own about the same files, come first (_Run.atlas_diff)."""
    with replay_started(config, url, amount=amount, directory=directory) if amount else _nothing() as replaying:
        fresh_dev(config)  # meanwhile: Atlas's diff needs it (a refusal here is raised at once)
        _warm_up()
        try:
            if replaying:
                replaying.wait()
            return catalog.snapshot_url(url)
        except WorkflowError as exc:
            return exc


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield None


@timings.timed("imports while the history replays")
def _warm_up() -> None:
    """Import what the next steps need while a child works (pglast for the desired state,
    about 40 ms): the wait costs nothing then."""
    import pglast  # noqa: F401


@dataclass
class _Run:
    """One diff's state, from Atlas's output to the verified, linted file."""

    config: Config
    name: str
    log: Log
    directory: Path
    history: list[str]
    schema_sql: str
    hist: str  # scratch database: the history replayed
    models: str  # scratch database: schema.sql built
    hist_built: bool = True  # False: `hist` is empty, the history's catalogs came from tools/snapcache.py
    new: list[Path] = field(default_factory=list)
    lint: list[str] = field(default_factory=list)
    h_snap: catalog.Snapshot = field(default_factory=dict)  # the history's catalogs
    m_snap: catalog.Snapshot = field(default_factory=dict)  # the models' catalogs

    def atlas_diff(self, replayed: catalog.Snapshot | WorkflowError) -> tuple[list[Path], schemagraph.Graph]:
        """Atlas's diff into the staged directory (in the background) while the models'
        database is built and read: the new files, and the graph of the models."""
        config = self.config
        built: tuple[catalog.Snapshot, schemagraph.Graph] | WorkflowError
        with desired_state(self.schema_sql) as desired:
            args = ("migrate", "diff", self.name, "--env", GUIDE_ENV, *dir_args(self.directory), "--to", desired)
            try:
                with atlas_for(config).start(*args) as running:
                    built = _build_models(self.models, self.schema_sql)
                    running.wait()
            except BaseException:
                fresh_dev(config)  # Atlas leaves what it could not carry behind: never reuse it
                raise
        if isinstance(replayed, WorkflowError):
            raise replayed
        if isinstance(built, WorkflowError):
            raise built
        self.h_snap, (self.m_snap, graph) = replayed, built
        new = [p for p in migration_files(config, self.directory) if p.name not in self.history]
        if not new:
            tidy_dev(config)
        return new, graph

    def write(self, new: list[Path], report: DiffReport) -> None:
        """Renumber, correct and verify Atlas's new files, then lint them (into `report`)."""
        config = self.config
        if new:
            new, report.renumbered = ensure_increasing(config, set(self.history), new)
            if report.renumbered:
                rehash(config, self.directory)
        self.new = new
        report.corrections = self.correct()
        report.lint = self.lint
        report.renames = catalog.possible_renames(self.h_snap, self.m_snap) if self.new else []
        for path in self.new:
            report.statements += statements_of(path.read_text())

    def correct(self) -> list[str]:
        """Make the new migration build exactly what schema.sql builds, by catalogs; else refuse.

        Adds what Atlas leaves out (objects of kinds it ignores, primary-key names, UNIQUE
        constraints, deferrability, declared sequences) under a comment, re-hashes atlas.sum and
        verifies again, on copies of the replayed history. Returns the statements it added.
        """
        config, directory, h_snap, m_snap = self.config, self.directory, self.h_snap, self.m_snap
        ignored = corrections.plan_ignored(h_snap, m_snap, self.schema_sql)
        if ignored.unfixable:
            raise WorkflowError(
                "the models have changes no migration can be generated for (no file was written):\n  "
                + "\n  ".join(ignored.unfixable),
                hint="see the lines above",
            )
        added: list[str] = []
        if not ignored.empty:
            self.new = self.new or [new_file(config, self.name, directory)]
            _add(
                self.new[-1],
                ignored.before,
                ignored.after,
                "Atlas ignores these object kinds in schema.sql: copied from it",
            )
            added += ignored.before + ignored.after
            rehash(config, directory)
        if not self.new:
            details = corrections.plan_details(h_snap, m_snap, catalog.diff(h_snap, m_snap))
            self._refuse_unfixable(details)
            if details.empty:
                return []
        if not self.hist_built and self.history:  # its catalogs were remembered (tools/snapcache.py): build it
            replay_migrations(config, self.hist, amount=len(self.history), directory=directory)
        self.hist_built = True
        with scratch_databases(config, "replay", "verify", template=self.hist) as (replay, check):
            r_snap = h_snap
            if self.new:
                replay_migrations(config, replay, directory=directory)
                r_snap = catalog.snapshot_url(replay)
            details = corrections.plan_details(r_snap, m_snap, catalog.diff(r_snap, m_snap))
            self._refuse_unfixable(details)
            if not details.empty:
                self.new = self.new or [new_file(config, self.name, directory)]
                _add(
                    self.new[-1],
                    [],
                    details.after,
                    "Corrections: Atlas v0.13.1 drops these details; they make the database match the models exactly",
                )
                added += details.after
                rehash(config, directory)
            with lint_started(config, latest=len(self.new), directory=directory) as linted:
                replay_migrations(config, check, directory=directory)
                left = catalog.diff(catalog.snapshot_url(check), m_snap)
                if left:
                    raise WorkflowError(
                        "after corrections the migrations still differ from the models (no file was written):\n  "
                        + "\n  ".join(map(str, left)),
                        hint="write the change by hand: inv migrate.new, then inv migrate.hash",
                    )
                self.lint = linted().finding_lines()
        return added

    @staticmethod
    def _refuse_unfixable(details: corrections.Plan) -> None:
        if details.unfixable:
            raise WorkflowError(
                "the generated migration would not build what the models declare (no file was written):\n  "
                + "\n  ".join(details.unfixable),
                hint="write the change by hand: inv migrate.new, then inv migrate.hash",
            )


@timings.timed("models built and read (schema.sql, catalogs, graph)")
def _build_models(url: str, schema_sql: str) -> tuple[catalog.Snapshot, schemagraph.Graph] | WorkflowError:
    """schema.sql built in the scratch database `url`: its catalogs and its graph (for the
    diagrams); a failure is returned, not raised (Atlas's error about the same SQL comes first)."""
    try:
        execute_sql(url, schema_sql, "schema.sql")
        with connect(url) as conn:
            return catalog.snapshot(conn), schemagraph.read(conn)
    except WorkflowError as exc:
        return exc


def _add(path: Path, before: list[str], after: list[str], why: str) -> None:
    text = path.read_text()
    head = corrections.render(why + " (before Atlas's statements: the tables may depend on them)", before)
    tail = corrections.render(why, after)
    if tail and text and not text.endswith("\n"):
        text += "\n"
    path.write_text(head + text + tail)
