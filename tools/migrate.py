"""The migration workflow over Atlas: diff, apply, status, lint, validate, hash, new.

Each function takes a Config (and a stack when it needs one), does one job, and returns a
small report that tasks.py prints. Failures raise WorkflowError.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tools import pg
from tools.atlas import JSON, Atlas
from tools.config import GUIDE_ENV, Config, atlas_url, env_var_for
from tools.errors import WorkflowError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
FILE_RE = re.compile(r"^(?P<version>\d+)(?:_(?P<name>.*))?\.sql$")

# Exit codes of the tasks (documented in README.md).
OK, ERROR, OUT_OF_SYNC = 0, 1, 2


def migrations_dir(config: Config) -> Path:
    return config.root / "migrations"


def migration_files(config: Config, directory: Path | None = None) -> list[Path]:
    """The migration files of migrations/ (or of `directory`, a staged copy of it)."""
    directory = directory or migrations_dir(config)
    regular_files_only(config)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if FILE_RE.match(p.name))


def regular_files_only(config: Config) -> None:
    """migrations/ holds regular files only: git stores a symbolic link as the link, so the SQL
    it points to (outside the repository, perhaps) was never reviewed; Atlas would follow it."""
    import os

    directory = migrations_dir(config)
    if directory.is_symlink() or (directory.exists() and directory.resolve() != config.root.resolve() / "migrations"):
        raise WorkflowError(f"migrations/ is a symbolic link (to {os.path.realpath(directory)}), not a directory of this repository",
                            hint="make migrations/ a real directory holding the files themselves")
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path.is_symlink():
            raise WorkflowError(f"migrations/{path.name} is a symbolic link (to {os.readlink(path)}): git stores only the link, "
                                f"so the SQL it points to was never reviewed",
                                hint="replace the link with a copy of the file (and review it), or remove it; nothing was done")
        if (FILE_RE.match(path.name) or path.name == "atlas.sum") and not path.is_file():
            raise WorkflowError(f"migrations/{path.name} is not a regular file", hint="migrations/ holds regular files only: remove or replace it")


def check_versions(config: Config) -> None:
    """Atlas accepts two files with one version, then never applies the second: refuse that."""
    seen: dict[str, str] = {}
    for path in migration_files(config):
        version = version_of(path)
        if version in seen:
            raise WorkflowError(f"migrations {seen[version]} and {path.name} share version {version}, so Atlas would never apply one of them",
                                hint="rename one with a version above the newest file, then run inv migrate.hash")
        seen[version] = path.name


def version_of(path: Path) -> str:
    return FILE_RE.match(path.name).group("version")


def statements_of(text: str) -> list[str]:
    """The SQL statements of a migration file, for display (comments dropped)."""
    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("--"))
    try:
        import pglast

        return [s.strip() for s in pglast.split(body) if s.strip()]
    except Exception:  # not parseable: show it as it is
        return [body.strip()] if body.strip() else []


def validate_name(config: Config, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise WorkflowError("a migration name is required", hint="pass --name, e.g. --name add_user_preferences")
    if not NAME_RE.match(name):
        raise WorkflowError(f"invalid migration name {name!r}", hint="use lower-case letters, digits and underscores (max 60), starting with a letter, e.g. add_user_preferences")
    for path in migration_files(config):
        if FILE_RE.match(path.name).group("name") == name:
            raise WorkflowError(f"a migration named {name!r} exists already ({path.name})", hint="choose another name")
    return name


def dir_args(directory: Path | None) -> list[str]:
    """Atlas's --dir for a staged copy of migrations/ (none: atlas.hcl's migrations/)."""
    return ["--dir", f"file://{directory}"] if directory else []


def atlas_for(config: Config) -> Atlas:
    return Atlas(config.root, config.child_env(), mask=config.mask)


# --- schema.sql --------------------------------------------------------------------------------

@dataclass
class DumpReport:
    path: Path
    changed: bool
    text: str = ""


def dump(config: Config, stack, log, write: bool = True) -> DumpReport:
    text = stack.dump_schema(log)
    if not text.strip():
        raise WorkflowError("the schema dump printed nothing", hint="check that app/models defines tables")
    path = config.root / "schema.sql"
    old = path.read_text() if path.exists() else None
    changed = old != text
    if changed and write:
        tmp = path.with_suffix(".sql.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return DumpReport(path, changed, text)


# --- diff ------------------------------------------------------------------------------------

@dataclass
class DiffReport:
    files: list[Path] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    schema_changed: bool = False
    lint: list[str] = field(default_factory=list)
    renumbered: list[str] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)
    renames: list[str] = field(default_factory=list)  # drops + adds that look like renames


def fresh_dev(config: Config) -> str:
    """Drop and recreate the dev database, once proven the workflow's (callers hold dev_lock).

    config.dev_url() refuses an environment's database; pg.recreate refuses a database that
    holds objects the workflow did not make (tools/pg.py).
    """
    dev = config.dev_url()
    pg.recreate(config, dev)
    return dev


def using_dev(fn):
    """Run `fn` holding the dev database's lock: concurrent runs must not share it."""
    import functools

    @functools.wraps(fn)
    def wrapper(config, *args, **kwargs):
        from tools.stack import dev_lock

        with dev_lock(config.dev_url()):
            return fn(config, *args, **kwargs)

    return wrapper


def diff(config: Config, stack, name: str, log) -> DiffReport:
    from tools import signals
    from tools.stack import dev_lock

    name = validate_name(config, name)
    check_versions(config)
    stack.up(log, ("dev-db", "app") if stack.name == "compose" else ("dev-db",))
    with signals.note("migrations/, atlas.sum and schema.sql are unchanged"), dev_lock(config.dev_url(), log=log):
        return _diff(config, stack, name, log)


def _diff(config: Config, stack, name: str, log) -> DiffReport:
    """Atomic: Atlas writes, we correct, verify and lint in a staged copy of migrations/; only
    the finished file and its atlas.sum are moved into migrations/, with schema.sql
    (tools/staging.py). Interrupted or failed before that, all three stay as they were."""
    from tools import staging

    dumped = dump(config, stack, log, write=False)
    report = DiffReport(schema_changed=dumped.changed)
    with staging.staged(config.root, migrations_dir(config)) as work:
        new = _write_staged(config, name, dumped.text, work.directory, report, log)
        schema = ((config.root / "schema.sql", dumped.text),) if report.schema_changed else ()
        report.files = staging.publish(work, new, also=schema)
    return report


def _write_staged(config: Config, name: str, schema_sql: str, directory: Path, report: DiffReport, log) -> list[Path]:
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
        report.lint = lint(config, latest=len(new), directory=directory).lines()
    return new


@contextlib.contextmanager
def desired_state(schema_sql: str):
    """A file:// URL of schema.sql as Atlas should read it (see corrections.desired_state_for_atlas)."""
    import tempfile

    from tools.corrections import desired_state_for_atlas

    with tempfile.TemporaryDirectory(prefix="desired-") as tmp:
        path = Path(tmp) / "schema.sql"
        path.write_text(desired_state_for_atlas(schema_sql))
        yield f"file://{path}"


def correct(config: Config, name: str, history: list[str], new: list[Path], schema_sql: str, log,
            directory: Path | None = None) -> tuple[list[Path], list[str], list[str]]:
    """Make the new migration build exactly what schema.sql builds, by catalogs; else refuse.

    Adds what Atlas leaves out (objects of kinds it ignores, primary-key names, UNIQUE
    constraints, deferrability, declared sequences) under a comment, re-hashes atlas.sum and
    verifies again. Returns the new files, the corrective statements it added, and the drops +
    adds that look like renames (safety.possible_renames). Works on `directory` (a staged copy
    of migrations/, see _diff) when given.
    """
    from tools import catalog, corrections, fidelity
    from tools.safety import possible_renames

    with fidelity.scratch_databases(config, "history", "models", "replay", "verify") as (hist, models, replay, check):
        if history:
            fidelity.replay_migrations(config, hist, amount=len(history), directory=directory)
        fidelity.execute_sql(models, schema_sql, "schema.sql")
        h_snap, m_snap = catalog.snapshot_url(hist), catalog.snapshot_url(models)
        ignored = corrections.plan_ignored(h_snap, m_snap, schema_sql)
        if ignored.unfixable:
            raise WorkflowError("the models have changes no migration can be generated for (no file was written):\n  "
                                + "\n  ".join(ignored.unfixable), hint="see the lines above")
        added: list[str] = []
        if not ignored.empty:
            new = new or [new_file(config, name, directory)]
            _add(new[-1], ignored.before, ignored.after, "Atlas ignores these object kinds in schema.sql: copied from it")
            added += ignored.before + ignored.after
            rehash(config, directory)
        if new:
            fidelity.replay_migrations(config, replay, directory=directory)
            r_snap = catalog.snapshot_url(replay)
        else:
            r_snap = h_snap
        details = corrections.plan_details(r_snap, m_snap, catalog.diff(r_snap, m_snap))
        if details.unfixable:
            raise WorkflowError("the generated migration would not build what the models declare (no file was written):\n  "
                                + "\n  ".join(details.unfixable), hint="write the change by hand: inv migrate.new, then inv migrate.hash")
        if not details.empty:
            new = new or [new_file(config, name, directory)]
            _add(new[-1], [], details.after, "Corrections: Atlas v0.13.1 drops these details; they make the database match the models exactly")
            added += details.after
            rehash(config, directory)
        if not new:
            return [], [], []
        fidelity.replay_migrations(config, check, directory=directory)
        left = catalog.diff(catalog.snapshot_url(check), m_snap)
        if left:
            raise WorkflowError("after corrections the migrations still differ from the models (no file was written):\n  "
                                + "\n  ".join(map(str, left)), hint="write the change by hand: inv migrate.new, then inv migrate.hash")
    return new, added, possible_renames(h_snap, m_snap)


def new_file(config: Config, name: str, directory: Path | None = None) -> Path:
    """An empty migration file with a version above every existing one."""
    before = {p.name for p in migration_files(config, directory)}
    atlas_for(config).run("migrate", "new", name, "--env", GUIDE_ENV, *dir_args(directory))
    created = [p for p in migration_files(config, directory) if p.name not in before]
    files, _ = ensure_increasing(config, before, created)
    return files[0]


def _add(path: Path, before: list[str], after: list[str], why: str) -> None:
    from tools.corrections import render

    text = path.read_text()
    head = render(why + " (before Atlas's statements: the tables may depend on them)", before)
    tail = render(why, after)
    if tail and text and not text.endswith("\n"):
        text += "\n"
    path.write_text(head + text + tail)


def ensure_increasing(config: Config, before: set[str], new: list[Path]) -> tuple[list[Path], list[str]]:
    """Give each new file a version above every existing one (clock skew, two diffs a second)."""
    newest = max((int(FILE_RE.match(n).group("version")) for n in before), default=0)
    out, renamed = [], []
    for path in sorted(new):
        version = int(version_of(path))
        if version <= newest:
            rest = FILE_RE.match(path.name).group("name")
            version = newest + 1
            target = path.with_name(f"{version}_{rest}.sql" if rest else f"{version}.sql")
            path.rename(target)
            renamed.append(f"{path.name} -> {target.name}")
            path = target
        newest = version
        out.append(path)
    return out, renamed


# --- status / apply -----------------------------------------------------------------------------

@dataclass
class StatusReport:
    env: str
    status: str
    current: str
    next: str
    pending: list[str]
    applied: int
    available: int
    skipped: list[str] = field(default_factory=list)  # below the current version, never applied

    @property
    def code(self) -> int:
        return {"OK": OK, "PENDING": OUT_OF_SYNC}.get(self.status, ERROR)


def status_all(config: Config) -> list[tuple[str, StatusReport | WorkflowError | None]]:
    """Every environment of atlas.hcl but the guide's: its status, its error, or None if unset."""
    out = []
    for env in config.env_names:
        if env == GUIDE_ENV:
            continue
        if not config.get(env_var_for(env)).strip():
            out.append((env, None))
            continue
        try:
            out.append((env, status(config, env)))
        except WorkflowError as exc:
            out.append((env, exc))
    return out


def status(config: Config, env: str) -> StatusReport:
    config.url_for(env)
    regular_files_only(config)
    data = atlas_for(config).run("migrate", "status", "--env", env, "--format", JSON).json() or {}
    report = StatusReport(
        env=env,
        status=data.get("Status", "UNKNOWN"),
        current=data.get("Current", ""),
        next=data.get("Next", ""),
        pending=[f["Name"] for f in data.get("Pending") or []],
        applied=len(data.get("Applied") or []),
        available=len(data.get("Available") or []),
    )
    # Atlas v0.13.1 only runs files above the current version: a file merged in with a lower
    # version (two branches) is never applied, and Atlas reports "in sync". Say so.
    if report.current[:1].isdigit():
        recorded = {r.get("Version") for r in data.get("Applied") or []}
        below = [Path(f["Name"]) for f in data.get("Available") or [] if FILE_RE.match(f["Name"])]
        report.skipped = [p.name for p in below if version_of(p) not in recorded and int(version_of(p)) < int(report.current)]
    if report.skipped:
        report.status = "OUT_OF_ORDER"
    return report


def out_of_order(report: StatusReport) -> WorkflowError:
    return WorkflowError(
        f"{report.env}: {len(report.skipped)} file(s) have a version below the current one ({report.current}) and would never run: "
        + ", ".join(report.skipped),
        hint="give them a version above the newest: inv migrate.renumber --file <name> (for each), then apply")


def renumber(config: Config, name: str, log=lambda line: None) -> str:
    """Move one file above every other version (a file merged in below the newest), re-hash.

    Only a file nobody has yet: never one on main (others have it, and may have applied it)
    nor one any reachable environment records as applied (it would run again under its new
    version, and status counts would no longer add up)."""
    if not name.strip():
        raise WorkflowError("which file? pass --file", hint="e.g. inv migrate.renumber --file 20260101000000_add_x.sql")
    check_versions(config)
    path = migrations_dir(config) / name.strip()
    if "/" in name or not FILE_RE.match(path.name) or not path.is_file():
        raise WorkflowError(f"no migration file {name!r} in migrations/", hint="name a file of migrations/, e.g. 20260101000000_add_x.sql")
    others = {p.name for p in migration_files(config) if p != path}
    newest = max((int(version_of(Path(n))) for n in others), default=0)
    if int(version_of(path)) > newest:
        raise WorkflowError(f"{path.name} is already the newest migration", hint="nothing to renumber")
    ref = main_ref_holding(config, path.name)
    if ref:
        raise WorkflowError(f"{path.name} is on {ref}: others have it and may have applied it, so its version is history",
                            hint="leave it as it is; to change the schema further, add a new migration (inv migrate.diff or inv migrate.new)")
    for env, versions in recorded_versions_by_env(config, log):
        if version_of(path) in versions:
            raise WorkflowError(f"{path.name} is recorded as applied in {env}: under a new version it would run again there",
                                hint="leave it as it is; to change the schema further, add a new migration (inv migrate.diff or inv migrate.new)")
    (moved,), _ = ensure_increasing(config, others, [path])
    rehash(config)
    return moved.name


def main_ref_holding(config: Config, name: str) -> str | None:
    """The main branch (origin/main, else main) when it holds migrations/`name`; None when it
    does not, or when there is no git or no such branch."""
    import subprocess

    for ref in ("origin/main", "main"):
        try:
            proc = subprocess.run(["git", "ls-tree", "--name-only", ref, "migrations/"], cwd=config.root,
                                  capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode == 0:
            return ref if name in {Path(line).name for line in proc.stdout.splitlines()} else None
    return None


def recorded_versions_by_env(config: Config, log) -> list[tuple[str, set[str]]]:
    """The versions each reachable environment records in Atlas's revision table (read
    directly, so that a changed atlas.sum does not hide them). Unset environments are skipped;
    unreachable ones too, with a note."""
    from tools.stack import _connect, connection_error

    out = []
    for env in config.env_names:
        if env == GUIDE_ENV or not config.get(env_var_for(env)).strip():
            continue
        try:
            url = config.url_for(env)
        except WorkflowError as exc:
            log(f"note: {env} not checked: {exc}")
            continue
        try:
            with _connect(url, timeout=5) as conn:
                if conn.execute("SELECT to_regclass('atlas_schema_revisions.atlas_schema_revisions')").fetchone()[0] is None:
                    versions = set()
                else:
                    versions = {row[0] for row in conn.execute("SELECT version FROM atlas_schema_revisions.atlas_schema_revisions")}
        except Exception as exc:
            log(f"note: {env} not checked: {connection_error(exc, f'the {env} database')}")
            continue
        out.append((env, versions))
    return out


@dataclass
class ApplyReport:
    env: str
    applied: list[str] = field(default_factory=list)
    timings: dict[str, tuple[int, float | None]] = field(default_factory=dict)  # name -> (statements, ms)
    pending: list[str] = field(default_factory=list)
    dry_run: bool = False
    after: StatusReport | None = None
    safety: object | None = None
    drift: list = field(default_factory=list)


def guard(config: Config, env: str, yes: bool, ask, isatty=None, action: str = "", files: list[str] = (),
          undone: str = "applied") -> None:
    """Protected environments need a typed confirmation, or --yes; no TTY and no --yes refuses.

    The question names what is about to happen (`action`, e.g. "apply 2 file(s)") and the files.
    """
    if env == "local" or not config.is_protected(env) or yes:
        return
    if not (isatty or sys.stdin.isatty)():
        raise WorkflowError(f"{env} is a protected environment and there is no terminal to confirm", hint="pass --yes to go ahead without asking (e.g. in CI)")
    listing = "".join(f"  {name}\n" for name in files)
    answer = ask(f"{listing}{(action or 'apply').capitalize()} on {env}? Type the environment name to confirm: ")
    if (answer or "").strip() != env:
        raise WorkflowError(f"not confirmed; nothing was {undone} on {env}", hint=f"type {env} exactly to confirm")


def apply(config: Config, env: str, log, yes: bool = False, dry_run: bool = False, ask=input,
          allow_destructive: bool = False, ignore_drift: bool = False, lock_timeout: str = "",
          check_drift: bool = True, table_lock_timeout: str = "") -> ApplyReport:
    """Status -> drift check -> lint (Atlas + squawk) -> confirm -> apply -> status."""
    target = config.url_for(env)
    lock_timeout = validate_duration(lock_timeout or config.get("ATLAS_LOCK_TIMEOUT", "10s"))
    table_timeout = validate_duration(table_lock_timeout or config.get("TABLE_LOCK_TIMEOUT", "5s"), allow_zero=True, what="table lock timeout")
    check_versions(config)
    with apply_lock(target, env, lock_timeout, log):
        return _apply(config, env, target, log, yes, dry_run, ask, allow_destructive, ignore_drift, lock_timeout, check_drift, table_timeout)


APPLY_LOCK_KEY = 0x5C4E_3A11  # our own advisory lock, taken on top of Atlas's, around the whole apply


class apply_lock:
    """Serialise whole applies (status, drift check, lint, apply) on one database.

    Atlas takes its own advisory lock around executing files; this one also covers our checks,
    so that a concurrent apply never sees another one half-way. Waits at most `timeout`.
    """

    def __init__(self, url: str, env: str, timeout: str, log):
        self.url, self.env, self.timeout, self.log = url, env, timeout, log
        self.conn = None

    def __enter__(self):
        from tools.stack import _connect, connection_error

        try:
            self.conn = _connect(self.url)
        except Exception as exc:
            raise connection_error(exc, f"the {self.env} database") from None
        import psycopg

        if self.conn.execute("SELECT pg_try_advisory_lock(%s)", (APPLY_LOCK_KEY,)).fetchone()[0]:
            return self
        self.log(f"another apply is running on {self.env}: waiting up to {self.timeout} for it...")
        try:
            self.conn.execute(f"SET lock_timeout = {duration_ms(self.timeout)}")
            self.conn.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            self.conn.close()
            raise WorkflowError(f"another apply is still running on {self.env} after {self.timeout}", hint="wait for it to finish, or pass a longer --lock-timeout") from None
        return self

    def __exit__(self, *exc):
        if self.conn is not None:
            self.conn.close()  # ends the session: releases the lock
        return False


def _apply(config, env, target, log, yes, dry_run, ask, allow_destructive, ignore_drift, lock_timeout, check_drift, table_timeout) -> ApplyReport:
    from tools import safety

    before = status(config, env)
    report = ApplyReport(env=env, pending=before.pending, dry_run=dry_run)
    if before.skipped:
        raise out_of_order(before)
    if before.status not in ("OK", "PENDING"):
        raise WorkflowError(f"{env} is in state {before.status} (current version {before.current})", hint="a previous apply failed part-way: fix the failing file, then run inv migrate.apply again")
    if not before.pending:
        report.after = before
        return report
    if check_drift and before.applied:
        from tools import fidelity

        report.drift = fidelity.drift(config, env, applied=before.applied)
        if report.drift and not (ignore_drift or dry_run):
            first = str(report.drift[0])
            raise WorkflowError(f"{env} has drifted from its migrations ({len(report.drift)} difference(s), first: {first})", hint=f"see inv migrate.drift --env {env}; pass --ignore-drift to apply anyway")
    if before.applied or dry_run:
        report.safety = safety.analyze(config, before.pending, target_url=target)
    else:
        # Nothing applied yet and nothing there: no file can lose data or hold a lock on a table
        # anyone uses. Linting 500 files there only costs time (most of a first deploy);
        # --dry-run and inv migrate.lint still lint them.
        from tools.baseline import is_empty, unmanaged
        from tools.catalog import snapshot_url

        snapshot = snapshot_url(target)
        if not is_empty(snapshot):
            raise unmanaged(env, snapshot)
        report.safety = safety.SafetyReport()
        log(f"{env} has no migration applied yet (an empty database): nothing to lose, so the pending files are not linted")
    broken = report.safety.failing
    if broken and not dry_run:
        raise WorkflowError(f"a pending migration does not run: {broken[0].file}: {broken[0].text}", hint="fix the file, then run inv migrate.hash (nothing was applied)")
    if dry_run:
        return report
    if report.safety.blocking and not allow_destructive:
        first = report.safety.blocking[0]
        raise WorkflowError(f"{len(report.safety.blocking)} destructive change(s) pending, first: {first}", hint=f"review them (inv migrate.apply --env {env} --dry-run), then pass --allow-destructive")
    for finding in report.safety.advisory:
        log(f"lock safety: {finding}")
    guard(config, env, yes, ask, action=f"apply {len(before.pending)} file(s)", files=before.pending)
    from tools.progress import progress

    with progress(log, f"Applying {len(before.pending)} migration(s) to {env}"):
        try:
            result = _atlas_with_table_lock_timeout(config, env, target, table_timeout).run(
                "migrate", "apply", "--env", env, "--lock-timeout", lock_timeout, "--format", JSON, check=False)
        except KeyboardInterrupt as exc:
            raise interrupted_apply(exc, env) from None
    data = _json_or_none(result)
    if data:
        ran = [f for f in data.get("Applied") or [] if not f.get("Error")]
        report.applied = [f["Name"] for f in ran]
        report.timings = {f["Name"]: (len(f.get("Applied") or []), _file_ms(f)) for f in ran}
    if result.code != 0:
        failed = _apply_failure(data)
        if failed and "due to lock timeout" in failed:
            earlier = f" ({len(report.applied)} earlier file(s) applied)" if report.applied else ""
            raise WorkflowError(
                f"{failed.split(' failed at ')[0]} waited more than {table_timeout} for a table lock held by another transaction; "
                f"that file was rolled back{earlier}",
                hint=f"retry when the table is quiet (see pg_stat_activity), or raise TABLE_LOCK_TIMEOUT / --table-lock-timeout")
        if failed:
            raise WorkflowError(failed, hint=f"fix the file, then run inv migrate.apply --env {env} again (that file was rolled back)")
        from tools.atlas import map_error

        raise map_error(result)
    report.after = status(config, env)
    return report


def interrupted_apply(exc: KeyboardInterrupt, env: str) -> KeyboardInterrupt:
    """The interruption of an apply (Atlas stopped and waited for, see Atlas.run), saying what stays."""
    from tools.signals import Interrupted, signum_of

    data = _json_or_none(exc.result) if getattr(exc, "result", None) else None
    files = (data or {}).get("Applied") or []
    done = [f["Name"] for f in files if not f.get("Error")]
    rolled = [f["Name"] for f in files if f.get("Error")]
    note = "whole files were applied and recorded, none half"
    if data is not None:
        note += f": {len(done)} file(s) applied" + (f" (last {done[-1]})" if done else "")
        note += f", {rolled[0]} rolled back" if rolled else ""
    out = exc if isinstance(exc, Interrupted) else Interrupted(signum_of(exc))
    out.note = f"{note}; see inv migrate.status --env {env}"
    return out


def duration_ms(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)", value).groups()
    return int(number) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


def validate_duration(value: str, allow_zero: bool = False, what: str = "lock timeout") -> str:
    if allow_zero and value.strip() == "0":
        return "0"
    if not re.fullmatch(r"\d+(ms|s|m|h)", value.strip()):
        raise WorkflowError(f"invalid {what} {value!r}", hint="use a duration such as 10s, 500ms or 2m" + (" (0: wait forever)" if allow_zero else ""))
    return value.strip()


def _atlas_with_table_lock_timeout(config: Config, env: str, target: str, table_timeout: str):
    """Atlas whose session gives up on a table lock after `table_timeout`, instead of queueing every query.

    An ALTER TABLE that waits behind a long transaction blocks all later readers of the table
    while it waits: on a busy production database that is an outage. lib/pq (Atlas's driver)
    sends unknown URL parameters as run-time settings, so `lock_timeout` in the URL applies to
    every statement of the apply. A lock_timeout already in the URL wins.
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if table_timeout == "0":
        return atlas_for(config)
    parts = urlsplit(atlas_url(target, env_var_for(env)))
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "lock_timeout" for key, _ in query):
        return atlas_for(config)
    url = urlunsplit(parts._replace(query=urlencode([*query, ("lock_timeout", str(duration_ms(table_timeout)))])))
    return Atlas(config.root, config.child_env(**{env_var_for(env): url}), mask=config.mask)


def _file_ms(entry: dict) -> float | None:
    """Milliseconds between Atlas's Start and End (RFC 3339 with nanoseconds) of one file."""
    from datetime import datetime

    try:
        start, end = (datetime.fromisoformat(entry[key]) for key in ("Start", "End"))
    except (KeyError, TypeError, ValueError):
        return None
    return (end - start).total_seconds() * 1000


def _json_or_none(result):
    try:
        return result.json()
    except Exception:
        return None


def _apply_failure(data) -> str | None:
    if not data:
        return None
    for f in data.get("Applied") or []:
        err = f.get("Error")
        if err:
            stmt = " ".join((err.get("Stmt") or "").split())
            text = (err.get("Text") or "").strip()
            return f"{f.get('Name')} failed at statement `{stmt[:120]}`: {text}"
    return None


# --- lint / validate / hash / new ----------------------------------------------------------

@dataclass
class LintReport:
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # (file, code, text)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{f}: {c + ': ' if c else ''}{t}" for f, c, t in self.findings] + self.errors


@using_dev
def lint(config: Config, latest: int = 1, base: str | None = None, directory: Path | None = None) -> LintReport:
    regular_files_only(config)
    args = ["migrate", "lint", "--env", GUIDE_ENV, "--format", JSON, *dir_args(directory)]
    if base:
        from tools import gitbase

        gitbase.require_repository(config.root)
        base = gitbase.require_commit(config.root, base)  # Atlas runs `git diff <base> HEAD` itself: a commit, never a guess
    args += ["--git-base", base] if base else ["--latest", str(latest)]
    fresh_dev(config)
    try:
        result = atlas_for(config).run(*args, check=False)
    finally:
        fresh_dev(config)
    data = _json_or_none(result)
    if data is None:
        if result.code != 0:
            from tools.atlas import map_error

            raise map_error(result)
        return LintReport()
    report = LintReport()
    for f in data.get("Files") or []:
        for r in f.get("Reports") or []:
            for d in r.get("Diagnostics") or []:
                report.findings.append((f.get("Name", "?"), d.get("Code", ""), d.get("Text", "")))
        if f.get("Error"):
            report.errors.append(f"{f.get('Name', '?')}: {f['Error']}")
    for step in data.get("Steps") or []:
        if step.get("Error"):
            report.errors.append(f"{step.get('Name')}: {step['Error']}")
    from tools.safety import FAILING_ATLAS

    failing = {name for name, code, _ in report.findings if code in FAILING_ATLAS}
    report.errors += [f"{name}: cannot run as written (see {', '.join(FAILING_ATLAS)} above)" for name in sorted(failing)
                      if not any(e.startswith(f"{name}: ") for e in report.errors)]
    return report


@using_dev
def validate(config: Config) -> None:
    check_versions(config)
    fresh_dev(config)
    try:
        atlas_for(config).run("migrate", "validate", "--env", GUIDE_ENV)
    finally:
        fresh_dev(config)


def rehash(config: Config, directory: Path | None = None) -> None:
    regular_files_only(config)
    atlas_for(config).run("migrate", "hash", "--env", GUIDE_ENV, *dir_args(directory))


def new(config: Config, name: str) -> Path:
    path = new_file(config, validate_name(config, name))
    rehash(config)
    return path


# --- the CI gate ------------------------------------------------------------------------------

# What migrate.check cannot do without git history (--no-base says so, and they are listed).
HISTORY_CHECKS = ("lint of the migration files this branch adds",
                  "the order check (a file versioned below the base branch's newest would never run where it is applied)")


@dataclass
class CheckReport:
    problems: list[tuple[int, str]] = field(default_factory=list)  # (exit code, one line)
    base: object | None = None  # gitbase.Base, None with --no-base
    not_run: list[str] = field(default_factory=list)  # checks skipped on request (--no-base)

    @property
    def code(self) -> int:
        return max((c for c, _ in self.problems), default=OK)


def default_base(config: Config) -> str | None:
    """The merge base with the base branch (gitbase.CANDIDATES) in this checkout, or None.

    Never fetches: migrate.check resolves its base with gitbase.resolve, which does."""
    import shutil

    from tools import gitbase

    if not shutil.which("git"):
        return None
    found = gitbase.first_candidate(config.root)
    return gitbase.merge_base(config.root, found[1]) if found else None


def check(config: Config, stack, log, base: str | None = None, no_base: bool = False) -> CheckReport:
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
        from tools import gitbase

        report.base = gitbase.resolve(config.root, base, log)
        log(f"base: {report.base.describe()}")
    stack.up(log, ("dev-db", "app") if stack.name == "compose" else ("dev-db",))
    from tools.stack import dev_lock

    with dev_lock(config.dev_url(), log=log):
        return _check(config, stack, log, report)


def _check(config: Config, stack, log, report: CheckReport) -> CheckReport:
    import shutil
    import tempfile

    fresh = stack.dump_schema(log)
    committed = (config.root / "schema.sql").read_text() if (config.root / "schema.sql").exists() else ""
    if fresh != committed:
        report.problems.append((OUT_OF_SYNC, "schema.sql is stale against the models: run inv schema.dump (or inv migrate.diff --name <change>)"))
    atlas = atlas_for(config)
    try:
        validate(config)
    except WorkflowError as exc:
        report.problems.append((ERROR, f"migrations/ is not valid: {exc}"))
        return report
    with tempfile.TemporaryDirectory(prefix="migrate-check-") as tmp:
        tmp_dir = Path(tmp) / "migrations"
        shutil.copytree(migrations_dir(config), tmp_dir)
        fresh_dev(config)
        try:
            with desired_state(fresh) as desired:
                atlas.run("migrate", "diff", "pending_model_changes", "--env", GUIDE_ENV,
                          "--dir", f"file://{tmp_dir}", "--to", desired)
        finally:
            fresh_dev(config)
        extra = sorted(p.name for p in tmp_dir.glob("*.sql") if not (migrations_dir(config) / p.name).exists())
        if extra:
            stmts = statements_of((tmp_dir / extra[0]).read_text())
            first = " ".join(stmts[0].split())[:100] if stmts else ""
            report.problems.append((OUT_OF_SYNC, f"the models need a migration that does not exist yet ({len(stmts)} statement(s), first: {first}): run inv migrate.diff --name <change>"))
    report.problems += verified(config, fresh)
    if report.base is None:
        return report
    for name, ref, newest in below_newest(config, report.base.tip, label=report.base.ref):
        report.problems.append((ERROR, f"migrations/{name} is below the newest migration of {ref} ({newest}): where that is applied it would never run: "
                                       f"inv migrate.renumber --file {name}"))
    for line in lint(config, base=report.base.merge_base).errors:
        report.problems.append((ERROR, f"lint: {line}"))
    return report


def verified(config: Config, schema_sql: str) -> list[tuple[int, str]]:
    """The catalog verification (fidelity.verify), once: Atlas's own checks pass a file whose
    primary-key name or UNIQUE constraint it dropped; the catalogs do not."""
    from tools import fidelity

    try:
        differences = fidelity.verify(config, schema_sql)
    except WorkflowError as exc:
        return [(ERROR, f"migrations/ could not be verified: {exc}")]
    if not differences:
        return []
    return [(OUT_OF_SYNC, f"migrations/ builds a different database than schema.sql ({len(differences)} difference(s), first: "
                          f"{differences[0]}): see inv migrate.verify; correct the file by hand (then inv migrate.hash), "
                          f"or remove it and run inv migrate.diff again")]


def below_newest(config: Config, ref: str | None = None, label: str | None = None) -> list[tuple[str, str, str]]:
    """Files this checkout adds whose version is below the newest one of `ref` (a commit or a
    ref; default: the first of gitbase.CANDIDATES): merged in after newer files were applied,
    Atlas skips them."""
    from tools import gitbase

    if ref is None:
        found = gitbase.first_candidate(config.root)
        if not found:
            return []
        label, ref = found
    theirs = {name for name in gitbase.files_at(config.root, ref) if FILE_RE.match(name)}
    if not theirs:
        return []
    newest = max(theirs, key=lambda n: int(version_of(Path(n))))
    return [(p.name, label or ref, version_of(Path(newest))) for p in migration_files(config)
            if p.name not in theirs and int(version_of(p)) < int(version_of(Path(newest)))]
