"""The menu: `inv --list`. Each task reads its arguments, calls tools/, prints the result.

Exit codes: 0 success / in sync, 1 error, 2 out of sync (pending migrations, stale schema.sql,
models that need a migration), 130/143/129 interrupted (SIGINT/SIGTERM/SIGHUP). See README.md.
"""

from __future__ import annotations

import functools
import sys

from invoke import Collection, Exit, task

from tools import apply, baseline, check, diff, fidelity, migrations, ownership, renumber, safety, schema, signals, status
from tools.config import Config, env_var_for, masked_output, require_dotenv
from tools.errors import OUT_OF_SYNC, WorkflowError
from tools.setup import doctor as run_doctor, setup as run_setup
from tools.stack import get_stack


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def edge(fn):
    """Turn WorkflowError / SIGINT, SIGTERM, SIGHUP into one line and a non-zero exit (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with masked_output() as mask:  # every line printed, errors included, has its passwords masked
            try:
                with signals.interruptible():
                    return fn(*args, **kwargs)
            except WorkflowError as exc:
                raise Exit(mask(f"error: {exc}"), code=exc.code) from None
            except KeyboardInterrupt as exc:
                raise Exit(mask(signals.line(exc)), code=signals.exit_code(exc)) from None
            except Exit as exc:
                raise Exit(mask(exc.message) if isinstance(exc.message, str) else exc.message, code=exc.code) from None

    return wrapper


def _config() -> Config:
    """The configuration of every task but setup: it requires the checkout's .env."""
    require_dotenv()
    return Config.load()


def _stack(config: Config):
    return get_stack(config)


# --- top level -------------------------------------------------------------------------------

@task(help={"no_docker": "Do not install or use Docker: use local PostgreSQL clusters (records STACK=local in .env)",
            "stop_compose": "With --no-docker: stop this checkout's running Compose stack first (its data volume is kept)"})
@edge
def setup(c, no_docker=False, stop_compose=False):
    """Provision this machine: .env, the Atlas CLI, Docker + images (or local PostgreSQL)."""
    config = run_setup(Config.load().root, log, docker=False if no_docker else None, stop_compose=stop_compose)
    stack = _stack(config)
    print(f"setup complete: stack backend {stack.name} ({stack.why})")


@task
@edge
def doctor(c):
    """Check tools, stack and environments; print what is used and why (URLs masked)."""
    config = _config()
    failed = []
    for item in run_doctor(config):
        failed += [] if item.ok else [item.name]
        print(f"{('warn' if item.warning else 'ok ') if item.ok else 'FAIL'} {item.name:<18} {config.mask(item.detail)}")
    if failed:
        raise Exit(f"error: {len(failed)} check(s) failed: {', '.join(failed)}", code=1)


@task
@edge
def dev(c):
    """The main job: stack up, dump the models, initial migration if none, apply to local, status."""
    config = _config()
    stack = _stack(config)
    stack.up(log)
    if not migrations.migration_files(config):
        _print_diff(diff.diff(config, stack, "initial", log), config)
    report = apply.apply(config, "local", log)
    _print_apply(report)
    st = status.status(config, "local")
    _print_status(st)
    if st.code:
        raise Exit(code=st.code)


@task(help={"quick": "Fewer runs and smaller sizes (a smoke run)", "runs": "Runs per measurement (median)"})
@edge
def bench(c, quick=False, runs=5):
    """Benchmark the workflow against bare Atlas, psql and Alembic; write bench/results.md."""
    import subprocess

    argv = [sys.executable, str(_config().root / "bench" / "run.py"), "--runs", str(runs)] + (["--quick"] if quick else [])
    raise Exit(code=subprocess.call(argv))


# --- db -------------------------------------------------------------------------------------

@task(help={"services": "Comma-separated services to start (default: all)"})
@edge
def db_up(c, services=""):
    """Start the database stack and wait until it is healthy; print what runs where."""
    config = _config()
    stack = _stack(config)
    stack.up(log, tuple(s for s in services.split(",") if s))
    _print_states(config, stack)


@task(help={"volumes": "Also delete the local database's data (irreversible)"})
@edge
def db_down(c, volumes=False):
    """Stop the stack (the local database's data survives unless --volumes)."""
    config = _config()
    stack = _stack(config)
    stack.down(log, volumes=volumes)
    print(f"stack stopped ({stack.name}){'; local data deleted' if volumes else ''}")


@task
@edge
def db_status(c):
    """Show the backend in use and why, each service's state and its (masked) URL."""
    config = _config()
    stack = _stack(config)
    _print_states(config, stack)


@task(help={"env": "Only local (db.reset never touches another environment)",
            "yes": "Do not ask, even when DATABASE_URL is not the stack's own database and holds data"})
@edge
def db_reset(c, env="local", yes=False):
    """Drop and recreate the local database, then apply every migration."""
    config = _config()
    if env != "local":
        raise WorkflowError(f"db.reset only resets the local database, not {env!r}", hint="use inv migrate.apply for other environments")
    _stack(config).up(log, ("db",))
    ownership.reset_local(config, yes=yes)
    log("local database recreated")
    _print_apply(apply.apply(config, "local", log))


@task(help={"dev": "Open the dev database instead of the local one"})
@edge
def db_psql(c, dev=False):
    """Open psql on the local database (or the dev database with --dev)."""
    config = _config()
    argv, env = _stack(config).psql_argv("dev" if dev else "local")
    import subprocess

    raise Exit(code=subprocess.call(argv, env=env))


# --- schema ------------------------------------------------------------------------------------

@task(help={"check": "Do not write: exit 2 if schema.sql is stale against the models"})
@edge
def schema_dump(c, check=False):
    """Dump the models to schema.sql (in the app container, or on the host without Docker)."""
    config = _config()
    report = schema.dump(config, _stack(config), log, write=not check)
    if check and report.changed:
        raise Exit("schema.sql is stale against the models: run inv schema.dump", code=OUT_OF_SYNC)
    print(("schema.sql updated" if report.changed else "schema.sql unchanged") if not check else "schema.sql is up to date")


# --- migrate ---------------------------------------------------------------------------------

@task(help={"name": "Name of the migration, e.g. add_user_preferences (snake_case)"})
@edge
def migrate_diff(c, name=""):
    """Dump the models, diff them against migrations/ with Atlas, write the new migration."""
    config = _config()
    _print_diff(diff.diff(config, _stack(config), name, log), config)


@task(help={
    "env": "Environment from atlas.hcl (default: local)",
    "yes": "Do not ask for confirmation on a protected environment (CI)",
    "dry_run": "Print the pending files, their SQL and the lint report; change nothing",
    "allow_destructive": "Apply even when lint finds destructive changes (drops, narrowing, ...)",
    "ignore_drift": "Apply even when the target differs from what its applied migrations build",
    "lock_timeout": "How long to wait for the apply lock held by a concurrent apply (default 10s)",
    "table_lock_timeout": "How long a statement may wait for a table lock before the file is rolled back "
                        "(default TABLE_LOCK_TIMEOUT or 5s; 0 waits forever)",
})
@edge
def migrate_apply(c, env="local", yes=False, dry_run=False, allow_destructive=False, ignore_drift=False, lock_timeout="",
                  table_lock_timeout=""):
    """Apply pending migrations: drift check, lint, confirmation for protected envs, apply, status."""
    config = _config()
    config.url_for(env)
    _stack(config).up(log, ("dev-db",))
    report = apply.apply(config, env, log, yes=yes, dry_run=dry_run, allow_destructive=allow_destructive,
                           ignore_drift=ignore_drift, lock_timeout=lock_timeout, table_lock_timeout=table_lock_timeout)
    if dry_run:
        _print_dry_run(config, report)
        return
    _print_apply(report)


@task(help={"env": "Environment from atlas.hcl (default: local)"})
@edge
def migrate_drift(c, env="local"):
    """Compare an environment's real schema with what its applied migrations build; exit 2 on drift."""
    config = _config()
    config.url_for(env)
    _stack(config).up(log, ("dev-db",))
    differences = fidelity.drift(config, env)
    for difference in differences:
        print(f"drift: {difference}")
    if differences:
        raise Exit(f"error: {env} differs from its migrations in {len(differences)} place(s)", code=2)
    print(f"{env}: no drift (its schema is what its applied migrations build)")


@task(help={
    "env": "Environment from atlas.hcl whose existing database to adopt (default: local)",
    "version": "The newest migration the database already contains (default: the first file)",
    "yes": "Do not ask for confirmation on a protected environment (CI)",
    "dry_run": "Compare and report; record nothing",
    "ignore_drift": "Record the baseline even though the database differs from those migrations",
})
@edge
def migrate_baseline(c, env="local", version="", yes=False, dry_run=False, ignore_drift=False):
    """Adopt a database built by another tool (Alembic): compare, then record migrations as applied."""
    config = _config()
    config.url_for(env)
    _stack(config).up(log, ("dev-db",))
    report = baseline.baseline(config, env, log, version=version, yes=yes, dry_run=dry_run, ignore_drift=ignore_drift)
    for difference in report.differences:
        print(f"drift: {difference}")
    if report.alembic:
        log(f"note: {fidelity.ALEMBIC_TABLE} (Alembic's bookkeeping) is not compared; drop it once Alembic is gone for good")
    if dry_run:
        verdict = "matches" if not report.differences else f"differs in {len(report.differences)} place(s) from"
        print(f"{env} {verdict} what migrations/ up to {report.version} builds (dry run, nothing recorded)")
        if report.differences:
            raise Exit(code=2)
        return
    if not report.done:
        raise report.refusal()
    print(f"{env}: baseline at {report.version}: {len(report.files)} migration(s) recorded as applied, none run")
    if report.differences:
        print(f"{env}: recorded despite {len(report.differences)} difference(s) (--ignore-drift)")
    _print_status(status.status(config, env))


@task(help={"file": "The migration file (name in migrations/) to move above the newest version"})
@edge
def migrate_renumber(c, file=""):
    """Give a file merged in below the newest version a version above it (re-hashes atlas.sum)."""
    moved = renumber.renumber(_config(), file, log)
    print(f"renumbered {file.strip()} -> {moved}; atlas.sum updated")


@task
@edge
def migrate_verify(c):
    """Build the schema from migrations/ and from schema.sql, compare catalogs; exit 2 on difference."""
    config = _config()
    _stack(config).up(log, ("dev-db",))
    differences = fidelity.verify(config)
    for difference in differences:
        print(f"differs: {difference}")
    if differences:
        raise Exit(f"error: migrations/ and schema.sql build different databases ({len(differences)} difference(s))", code=2)
    print("verified: migrations/ and schema.sql build identical catalogs")


@task(help={"env": "Environment from atlas.hcl (default: local)",
            "all": "Every environment of atlas.hcl, from local to production (unset ones are listed as such)"})
@edge
def migrate_status(c, env="local", all=False):
    """Show the migration status of an environment; exit 2 while files are pending."""
    config = _config()
    if not all:
        report = status.status(config, env)
        _print_status(report)
        if report.code:
            raise Exit(code=report.code)
        return
    code = 0
    for name, result in status.status_all(config):
        if result is None:
            print(f"{name}: not configured ({env_var_for(name)} is not set)")
        elif isinstance(result, WorkflowError):
            print(f"{name}: error: {result}")
            code = 1
        else:
            _print_status(result)
            code = code or result.code
    if code:
        raise Exit(code=code)


@task(help={"latest": "Lint the latest N files (default 1)", "base": "Lint files new since this git ref instead"})
@edge
def migrate_lint(c, latest=1, base=""):
    """Lint migration files with Atlas on the dev database; exit 1 on findings that are errors."""
    config = _config()
    _stack(config).up(log, ("dev-db",))
    report = safety.lint(config, latest=int(latest), base=base or None)
    for line in report.lines():
        print(line)
    if report.errors:
        raise Exit(f"error: lint found {len(report.errors)} error(s)", code=1)
    print("lint: no errors" + (f" ({len(report.findings)} finding(s))" if report.findings else ""))


@task
@edge
def migrate_validate(c):
    """Check atlas.sum and replay every migration on the dev database."""
    config = _config()
    _stack(config).up(log, ("dev-db",))
    check.validate(config)
    print(f"migrations valid ({len(migrations.migration_files(config))} files)")


@task(help={"base": "The branch this one merges into (default: origin/HEAD, origin/main, origin/master, main, master)",
            "no_base": "Check without git history: lint of new files and the order check are not run (and listed)"})
@edge
def migrate_check(c, base="", no_base=False):
    """CI gate: schema.sql fresh, no missing migration, migrations/ verified, lint clean. Exit 0/1/2."""
    config = _config()
    report = check.check(config, _stack(config), log, base=base or None, no_base=no_base)
    _print_check(report)
    if report.code:
        raise Exit(code=report.code)


@task
@edge
def migrate_hash(c):
    """Recompute migrations/atlas.sum after a hand edit."""
    migrations.rehash(_config())
    print("migrations/atlas.sum updated")


@task(help={"name": "Name of the migration, e.g. backfill_totals (snake_case)"})
@edge
def migrate_new(c, name=""):
    """Create an empty migration file to write by hand (then inv migrate.hash)."""
    path = migrations.new(_config(), name)
    print(f"created migrations/{path.name}: write the SQL, then run inv migrate.hash")


# --- printing -----------------------------------------------------------------------------------

def _print_check(report) -> None:
    for code, line in report.problems:
        print(f"{'out of sync' if code == OUT_OF_SYNC else 'error'}: {line}")
    for what in report.not_run:
        print(f"not run (--no-base, no git history): {what}")
    if not report.code:
        print("in sync: schema.sql, migrations/ and atlas.sum match the models"
              + (f" ({len(report.not_run)} check(s) not run, listed above)" if report.not_run else ""))


def _print_states(config: Config, stack) -> None:
    print(f"backend: {stack.name} ({stack.why})")
    urls = {}
    for key, getter in (("dev-db", config.dev_url), ("db", lambda: config.url_for("local"))):
        try:
            urls[key] = config.mask(getter())
        except WorkflowError as exc:
            urls[key] = str(exc)
    for state in stack.states():
        url = urls.get(state.name, "")
        print(f"  {state.name:<7} {state.state:<22} {url or state.detail}")


def _print_diff(report, config: Config) -> None:
    if report.schema_changed:
        print("schema.sql updated from the models")
    if not report.files:
        print("no changes: the migrations already match the models")
        return
    for renamed in report.renumbered:
        print(f"renumbered {renamed} (its version was not above the newest existing one)")
    for path in report.files:
        print(f"new migration: migrations/{path.name}")
    if report.corrections:
        print(f"  ({len(report.corrections)} statement(s) added where Atlas falls short; see the comments in the file)")
    for stmt in report.statements:
        print("  " + stmt.replace("\n", "\n  "))
    for finding in report.lint:
        print(f"lint: {finding}")
    for hint in report.renames:
        print(f"possible rename: {hint} (Atlas wrote a drop and an add, which loses the data; "
              f"edit the file, then inv migrate.hash and inv migrate.verify)")


def _print_apply(report) -> None:
    if report.applied:
        for name in report.applied:
            statements, ms = report.timings.get(name, (None, None))
            detail = ", ".join(part for part in (f"{statements} statement(s)" if statements is not None else "",
                                                 f"{ms:.0f} ms" if ms is not None else "") if part)
            print(f"applied {name}" + (f" ({detail})" if detail else ""))
        print(f"{report.env}: {len(report.applied)} migration(s) applied")
    elif not report.pending:
        print(f"{report.env}: already at the latest version, nothing to apply")
    if report.after:
        _print_status(report.after)


def _print_dry_run(config: Config, report) -> None:
    if not report.pending:
        print(f"{report.env}: nothing pending (dry run, nothing changed)")
        return
    print(f"{report.env}: {len(report.pending)} pending file(s) (dry run, nothing applied):")
    for name in report.pending:
        print(f"-- {name}")
        for stmt in migrations.statements_of((migrations.migrations_dir(config) / name).read_text()):
            print(stmt + ";")
    for difference in report.drift:
        print(f"drift: {difference}")
    if report.safety:
        for finding in report.safety.blocking:
            print(f"destructive: {finding}")
        for finding in report.safety.advisory:
            print(f"lock safety: {finding}")


def _print_status(report) -> None:
    word = {"OK": "in sync", "PENDING": "PENDING"}.get(report.status, report.status)
    current = report.current if report.current and report.current[:1].isdigit() else "none"
    print(f"{report.env}: {word}; current version {current}; "
          f"{report.applied} applied, {len(report.pending)} pending of {report.available}")
    for name in report.pending:
        print(f"  pending {name}")
    for name in report.skipped:
        print(f"  never run {name}: its version is below the current one (inv migrate.renumber --file {name})")


# --- the menu --------------------------------------------------------------------------------

def _rename(fn, name):
    fn.__name__ = name
    return fn


db_ns = Collection("db")
for t, n in ((db_up, "up"), (db_down, "down"), (db_status, "status"), (db_reset, "reset"), (db_psql, "psql")):
    db_ns.add_task(t, name=n)
schema_ns = Collection("schema")
schema_ns.add_task(schema_dump, name="dump")
migrate_ns = Collection("migrate")
for t, n in ((migrate_diff, "diff"), (migrate_apply, "apply"), (migrate_status, "status"), (migrate_lint, "lint"),
             (migrate_validate, "validate"), (migrate_check, "check"),
             (migrate_drift, "drift"), (migrate_baseline, "baseline"), (migrate_renumber, "renumber"), (migrate_verify, "verify"), (migrate_hash, "hash"), (migrate_new, "new")):
    migrate_ns.add_task(t, name=n)

ns = Collection(setup, doctor, dev, bench, db_ns, schema_ns, migrate_ns)
