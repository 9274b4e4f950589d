"""Independent checks of what Atlas produced, by PostgreSQL's catalogs (tools/catalog.py).

- verify: the database that migrations/ builds == the database schema.sql builds;
- drift:  a target's real schema == the schema its applied migrations build.

Both work in throw-away databases on the dev server, dropped afterwards.
"""

from __future__ import annotations

from tools import pg
from tools.config import GUIDE_ENV, Config
from tools.errors import WorkflowError


def scratch_databases(config: Config, *labels: str):
    """Fresh databases next to the dev database; yields their URLs; drops them afterwards
    (tools/pg.py: unique per run, marked, dropped on error and Ctrl-C, leftovers of killed runs
    dropped by the next run)."""
    return pg.scratch(config, *labels)


def replay_migrations(config: Config, url: str, amount: int | None = None, directory=None) -> None:
    """Apply migrations/ (or `directory`, a staged copy; or its first `amount` files) to the
    empty database at `url`. An interruption (Atlas's "context canceled") stays one: it is
    not a failing file (tools/atlas.py)."""
    from tools.migrate import atlas_for, dir_args, regular_files_only

    regular_files_only(config)
    atlas = atlas_for(config)
    atlas.env = config.child_env(DATABASE_URL=url)
    args = ["migrate", "apply", "--env", GUIDE_ENV, *dir_args(directory)]
    if amount is not None:
        args.append(str(amount))
    try:
        atlas.run(*args)
    except WorkflowError as exc:
        raise WorkflowError(f"replaying migrations/ failed: {exc.message}", hint=exc.hint or "fix the failing migration file") from None


def execute_sql(url: str, sql: str, what: str) -> None:
    from tools.stack import _connect

    with _connect(url) as conn:
        try:
            conn.execute(sql)
        except Exception as exc:
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WorkflowError(f"{what} does not run on PostgreSQL: {line}", hint="fix the models (or the hand-written SQL)") from None


def verify(config: Config, schema_sql: str | None = None) -> list:
    """Differences between the database migrations/ builds and the one schema.sql builds."""
    from tools import catalog

    schema_sql = schema_sql if schema_sql is not None else (config.root / "schema.sql").read_text()
    with scratch_databases(config, "replay", "models") as (replayed, models):
        replay_migrations(config, replayed)
        execute_sql(models, schema_sql, "schema.sql")
        return catalog.diff(catalog.snapshot_url(replayed), catalog.snapshot_url(models))


def drift(config: Config, env: str, applied: int | None = None) -> list:
    """Differences between env's database and what its applied migrations build."""
    from tools import catalog
    from tools.migrate import status

    target = config.url_for(env)
    if applied is None:
        applied = status(config, env).applied
    with scratch_databases(config, "expected") as (expected,):
        if applied:
            replay_migrations(config, expected, amount=applied)
        differences = catalog.diff(catalog.snapshot_url(expected), catalog.snapshot_url(target),
                                   left_label="its migrations", right_label=f"the {env} database")
    from tools.baseline import is_alembic_bookkeeping

    return [d for d in differences if not is_alembic_bookkeeping(d)]  # the previous tool's table
