"""The menu: `inv --list`. Each task reads its arguments, calls tools/, prints the result.

Exit codes: 0 success / in sync, 1 error, 2 out of sync (pending migrations, stale schema.sql,
models that need a migration), 130/143/129 interrupted (SIGINT/SIGTERM/SIGHUP). See README.md.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from typing import Never, cast

from invoke import Collection, Exit, Task, task

from tools import migrations, signals, status, timings
from tools.config import Config, masked_output, require_dotenv
from tools.errors import WorkflowError

# Above: what `inv --list` and `inv migrate.status` need. Every other operation (and the stack)
# is imported inside the task that runs it: loading all of tools/ costs about 40 ms more on
# each start (measured with python -X importtime), on the two commands called most often.


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def echo(lines) -> None:
    for line in lines:
        print(line)


def show(report) -> None:
    """Print a report's lines, then end as it says (tools.console.Report: OutOfSync is exit 2)."""
    echo(report.lines())
    report.verdict()


def edge(fn):
    """Turn WorkflowError / SIGINT, SIGTERM, SIGHUP into one line and a non-zero exit (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        timings.reset()
        try:
            return masked(*args, **kwargs)
        finally:
            if timings.enabled(bool(kwargs.get("timings"))):
                for line in timings.lines():
                    log(line)

    def masked(*args, **kwargs):
        with masked_output() as mask:  # every line printed, errors included, has its passwords masked
            try:
                with signals.interruptible():
                    return fn(*args, **kwargs)
            except WorkflowError as exc:
                line = exc.line()
                raise Exit(mask(line) if line else None, code=exc.code) from None
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
    from tools.stack import get_stack

    return get_stack(config)


# --- top level -------------------------------------------------------------------------------


@task(
    help={
        "no_docker": "Do not install or use Docker: use local PostgreSQL clusters (records STACK=local in .env)",
        "stop_compose": "With --no-docker: stop this checkout's running Compose stack first (its data volume is kept)",
    }
)
@edge
def setup(c, no_docker=False, stop_compose=False) -> None:
    """Provision this machine: .env, the Atlas CLI, Docker + images (or local PostgreSQL)."""
    from tools.setup import setup as run_setup

    config = run_setup(Config.load().root, log, docker=False if no_docker else None, stop_compose=stop_compose)
    backend = _stack(config)
    print(f"setup complete: stack backend {backend.name} ({backend.why})")


@task
@edge
def doctor(c) -> None:
    """Check tools, stack and environments; print what is used and why (URLs masked)."""
    from tools.doctor import doctor as run_doctor

    show(run_doctor(_config()))


@task
@edge
def dev(c) -> None:
    """The main job: stack up, dump the models, initial migration if none, apply to local, status."""
    from tools import dev as main_job

    config = _config()
    echo(main_job.dev(config, _stack(config), log))


@task(help={"quick": "Fewer runs and smaller sizes (a smoke run)", "runs": "Runs per measurement (median)"})
@edge
def bench(c, quick=False, runs=5) -> Never:
    """Benchmark the workflow against bare Atlas, psql and Alembic; write bench/results.md."""
    argv = [sys.executable, str(_config().root / "bench" / "run.py"), "--runs", str(runs)] + (
        ["--quick"] if quick else []
    )
    raise Exit(code=subprocess.call(argv))


# --- db -------------------------------------------------------------------------------------


@task(help={"services": "Comma-separated services to start (default: all)"})
@edge
def db_up(c, services="") -> None:
    """Start the database stack and wait until it is healthy; print what runs where."""
    from tools.stack import state_lines

    config = _config()
    backend = _stack(config)
    backend.up(log, tuple(s for s in services.split(",") if s))
    echo(state_lines(config, backend))


@task(help={"volumes": "Also delete the local database's data (irreversible)"})
@edge
def db_down(c, volumes=False) -> None:
    """Stop the stack (the local database's data survives unless --volumes)."""
    backend = _stack(_config())
    backend.down(log, volumes=volumes)
    print(f"stack stopped ({backend.name}){'; local data deleted' if volumes else ''}")


@task
@edge
def db_status(c) -> None:
    """Show the backend in use and why, each service's state and its (masked) URL."""
    from tools.stack import state_lines

    config = _config()
    echo(state_lines(config, _stack(config)))


@task(
    help={
        "env": "Only local (db.reset never touches another environment)",
        "yes": "Do not ask, even when DATABASE_URL is not the stack's own database and holds data",
    }
)
@edge
def db_reset(c, env="local", yes=False) -> None:
    """Drop and recreate the local database, then apply every migration."""
    from tools import apply, reset

    config = _config()
    reset.only_local(env)
    _stack(config).up(log, ("db",))
    reset.reset_local(config, yes=yes)
    log("local database recreated")
    show(apply.apply(config, config.target("local"), log))


@task(help={"dev": "Open the dev database instead of the local one"})
@edge
def db_psql(c, dev=False) -> Never:
    """Open psql on the local database (or the dev database with --dev)."""
    argv, environ = _stack(_config()).psql_argv("dev" if dev else "local")
    raise Exit(code=subprocess.call(argv, env=environ))


# --- schema ------------------------------------------------------------------------------------


@task(help={"check": "Do not write: exit 2 if schema.sql is stale against the models"})
@edge
def schema_dump(c, check=False) -> None:
    """Dump the models to schema.sql (in the app container, or on the host without Docker)."""
    from tools import schema

    config = _config()
    show(schema.dump(config, _stack(config), log, write=not check))


@task(
    help={
        "schema": "Only these PostgreSQL schemas (comma-separated)",
        "tables": "Only these tables (comma-separated, name or schema.name)",
        "output": "With --schema/--tables: the files to write, without suffix (e.g. docs/orders)",
        "force": "Overwrite an existing --output file this task did not write (never one the workflow owns)",
    }
)
@edge
def schema_erd(c, schema="", tables="", output="", force=False) -> None:
    """Draw schema.sql as an ERD: docs/schema.md (Mermaid) and docs/schema.svg (Graphviz)."""
    from tools import erd

    config = _config()
    show(erd.erd(config, _stack(config), log, schemas=schema, tables=tables, output=output, force=force))


# --- migrate ---------------------------------------------------------------------------------


@task(
    help={
        "name": "Name of the migration, e.g. add_user_preferences (snake_case)",
        "timings": "After the output, print where the time went, step by step (any task: SCHEMAFLOW_TIMINGS=1)",
    }
)
@edge
def migrate_diff(c, name="", timings=False) -> None:
    """Dump the models, diff them against migrations/ with Atlas, write the new migration."""
    from tools import diff

    config = _config()
    show(diff.diff(config, _stack(config), name, log))


@task(
    help={
        "env": "Environment from atlas.hcl (default: local)",
        "yes": "Do not ask for confirmation on a protected environment (CI)",
        "dry_run": "Print the pending files, their SQL and the lint report; change nothing",
        "allow_destructive": "Apply even when lint finds destructive changes (drops, narrowing, ...)",
        "ignore_drift": "Apply even when the target differs from what its applied migrations build",
        "lock_timeout": "How long to wait for the apply lock held by a concurrent apply (default 10s)",
        "table_lock_timeout": "How long a statement may wait for a table lock before the file is rolled back "
        "(default TABLE_LOCK_TIMEOUT or 5s; 0 waits forever)",
        "timings": "After the output, print where the time went, step by step (any task: SCHEMAFLOW_TIMINGS=1)",
    }
)
@edge
def migrate_apply(
    c,
    env="local",
    yes=False,
    dry_run=False,
    allow_destructive=False,
    ignore_drift=False,
    lock_timeout="",
    table_lock_timeout="",
    timings=False,
) -> None:
    """Apply pending migrations: drift check, lint, confirmation for protected envs, apply, status."""
    from tools import apply

    config = _config()
    target = config.target(env)
    _stack(config).up(log, ("dev-db",))
    flags = {"yes": yes, "dry_run": dry_run, "allow_destructive": allow_destructive, "ignore_drift": ignore_drift}
    show(apply.apply(config, target, log, **flags, lock_timeout=lock_timeout, table_lock_timeout=table_lock_timeout))


@task(help={"env": "Environment from atlas.hcl (default: local)"})
@edge
def migrate_drift(c, env="local") -> None:
    """Compare an environment's real schema with what its applied migrations build; exit 2 on drift."""
    from tools import fidelity

    config = _config()
    target = config.target(env)
    _stack(config).up(log, ("dev-db",))
    show(fidelity.DriftReport(env, fidelity.drift(config, target)))


@task(
    help={
        "env": "Environment from atlas.hcl whose existing database to adopt (default: local)",
        "version": "The newest migration the database already contains (default: the first file)",
        "yes": "Do not ask for confirmation on a protected environment (CI)",
        "dry_run": "Compare and report; record nothing",
        "ignore_drift": "Record the baseline even though the database differs from those migrations",
    }
)
@edge
def migrate_baseline(c, env="local", version="", yes=False, dry_run=False, ignore_drift=False) -> None:
    """Adopt a database built by another tool (Alembic): compare, then record migrations as applied."""
    from tools import baseline

    config = _config()
    target = config.target(env)
    _stack(config).up(log, ("dev-db",))
    show(baseline.baseline(config, target, log, version=version, yes=yes, dry_run=dry_run, ignore_drift=ignore_drift))


@task(
    help={
        "env": "Environment from atlas.hcl (default: local)",
        "to": "The version to go back to (a file of migrations/, below the current version)",
        "steps": "Go back this many files instead of --to",
        "dry_run": "Print the plan, its hazards and the data it would delete; change nothing",
        "yes": "Do not ask for confirmation on a protected environment (CI)",
        "allow_destructive": "Go back even when the plan drops tables or columns that hold rows",
        "lock_timeout": "How long to wait for the apply lock held by a concurrent apply (default 10s)",
    }
)
@edge
def migrate_down(
    c, env="local", to="", steps="", dry_run=False, yes=False, allow_destructive=False, lock_timeout=""
) -> None:
    """Go back to an earlier version: computed, verified plan in one transaction; later files pending."""
    from tools import down

    config = _config()
    target = config.target(env)
    _stack(config).up(log, ("dev-db",))
    flags = {"dry_run": dry_run, "yes": yes, "allow_destructive": allow_destructive, "lock_timeout": lock_timeout}
    show(down.down(config, target, log, to=to, steps=steps, **flags))


@task(help={"since": "Only the files new since this git ref (default: every file of migrations/)"})
@edge
def migrate_test(c, since="") -> None:
    """Prove each migration goes up, down (computed plan) and up again on scratch databases."""
    from tools import prove

    config = _config()
    _stack(config).up(log, ("dev-db",))
    show(prove.prove(config, log, since=since))


@task(help={"file": "The migration file (name in migrations/) to move above the newest version"})
@edge
def migrate_renumber(c, file="") -> None:
    """Give a file merged in below the newest version a version above it (re-hashes atlas.sum)."""
    from tools import renumber

    moved = renumber.renumber(_config(), file, log)
    print(f"renumbered {file.strip()} -> {moved}; atlas.sum updated")


@task
@edge
def migrate_verify(c) -> None:
    """Build the schema from migrations/ and from schema.sql, compare catalogs; exit 2 on difference."""
    from tools import fidelity

    config = _config()
    _stack(config).up(log, ("dev-db",))
    show(fidelity.VerifyReport(fidelity.verify(config)))


@task(
    help={
        "env": "Environment from atlas.hcl (default: local)",
        "all": "Every environment of atlas.hcl, from local to production (unset ones are listed as such)",
    }
)
@edge
def migrate_status(c, env="local", all=False) -> None:
    """Show the migration status of an environment; exit 2 while files are pending."""
    config = _config()
    show(status.status_all(config) if all else status.status(config, config.target(env)))


@task(help={"latest": "Lint the latest N files (default 1)", "base": "Lint files new since this git ref instead"})
@edge
def migrate_lint(c, latest=1, base="") -> None:
    """Lint migration files with Atlas on the dev database; exit 1 on findings that are errors."""
    from tools import atlaslint

    config = _config()
    _stack(config).up(log, ("dev-db",))
    show(atlaslint.lint(config, latest=int(latest), base=base or None))


@task
@edge
def migrate_validate(c) -> None:
    """Check atlas.sum and replay every migration on the dev database."""
    from tools import check

    config = _config()
    _stack(config).up(log, ("dev-db",))
    show(check.validate(config))


@task(
    help={
        "base": "The branch this one merges into (default: origin/HEAD, origin/main, origin/master, main, master)",
        "no_base": "Check without git history: lint of new files and the order check are not run (and listed)",
    }
)
@edge
def migrate_check(c, base="", no_base=False) -> None:
    """CI gate: schema.sql fresh, no missing migration, migrations/ verified, lint clean. Exit 0/1/2."""
    from tools import check

    config = _config()
    show(check.check(config, _stack(config), log, base=base or None, no_base=no_base))


@task(
    help={
        "base": "The branch this one merges into (default: origin/HEAD, origin/main, origin/master, main, master)",
        "output": "Write the Markdown to this file (e.g. for a pull-request comment) instead of printing it",
        "force": "Overwrite an existing --output file this task did not write (never one the workflow owns)",
    }
)
@edge
def migrate_report(c, base="", output="", force=False) -> None:
    """Change report of the migrations this branch adds: statements, destructive, locks, renames, diagram."""
    from tools import report

    config = _config()
    show(report.report(config, _stack(config), log, base=base or None, output=output, force=force))


@task
@edge
def migrate_hash(c) -> None:
    """Recompute migrations/atlas.sum after a hand edit."""
    migrations.rehash(_config())
    print("migrations/atlas.sum updated")


@task(help={"name": "Name of the migration, e.g. backfill_totals (snake_case)"})
@edge
def migrate_new(c, name="") -> None:
    """Create an empty migration file to write by hand (then inv migrate.hash)."""
    path = migrations.new(_config(), name)
    print(f"created migrations/{path.name}: write the SQL, then run inv migrate.hash")


# --- the menu --------------------------------------------------------------------------------


def _rename(fn, name):
    fn.__name__ = name
    return fn


db_ns = Collection("db")
for t, n in ((db_up, "up"), (db_down, "down"), (db_status, "status"), (db_reset, "reset"), (db_psql, "psql")):
    db_ns.add_task(cast(Task, t), name=n)  # invoke types @task as a bare Callable; it is a Task
schema_ns = Collection("schema")
schema_ns.add_task(schema_dump, name="dump")
schema_ns.add_task(cast(Task, schema_erd), name="erd")  # as above
migrate_ns = Collection("migrate")
for t, n in (
    (migrate_diff, "diff"),
    (migrate_apply, "apply"),
    (migrate_down, "down"),
    (migrate_test, "test"),
    (migrate_status, "status"),
    (migrate_lint, "lint"),
    (migrate_validate, "validate"),
    (migrate_check, "check"),
    (migrate_drift, "drift"),
    (migrate_baseline, "baseline"),
    (migrate_renumber, "renumber"),
    (migrate_verify, "verify"),
    (migrate_report, "report"),
    (migrate_hash, "hash"),
    (migrate_new, "new"),
):
    migrate_ns.add_task(cast(Task, t), name=n)  # as above

ns = Collection(setup, doctor, dev, bench, db_ns, schema_ns, migrate_ns)
