"""Independent checks of what Atlas produced, by PostgreSQL's catalogs (tools/catalog.py).

- verify: the database that migrations/ builds == the database schema.sql builds;
- drift:  a target's real schema == the schema its applied migrations build.

Both work in throw-away databases on the dev server, dropped afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools import catalog
from tools.config import Config, Target
from tools.console import Report
from tools.errors import OutOfSync
from tools.migrations import migration_files
from tools.scratch import execute_sql, history_snapshot, scratch_databases
from tools.status import status

# The previous tool's bookkeeping: not a difference (drop it once Alembic is gone for good).
ALEMBIC_TABLE = "alembic_version"


def is_alembic_bookkeeping(difference: catalog.Difference) -> bool:
    """The alembic_version table, its columns, constraints and indexes (in any schema), whatever
    their names: Alembic names its primary key alembic_version_pkc, PostgreSQL's default is
    alembic_version_pkey, a hand-made table may use any name. Columns and constraints are named
    schema.table.x; an index is named schema.index and carries its table as a field."""
    parts = difference.name.split(".")
    if difference.kind in ("table", "column", "constraint", "trigger", "policy"):
        return len(parts) >= 2 and parts[1] == ALEMBIC_TABLE
    if difference.kind == "index":
        if difference.field is None:  # on one side only: the side holds the index's fields
            fields = difference.left if difference.left is not None else difference.right
            return isinstance(fields, dict) and fields.get("table") == ALEMBIC_TABLE
        return difference.field == "table" and ALEMBIC_TABLE in (difference.left, difference.right)
    return False


@dataclass
class VerifyReport(Report):
    """`inv migrate.verify`: the catalogs of migrations/ against those of schema.sql."""

    differences: list

    def lines(self) -> list[str]:
        return [f"differs: {difference}" for difference in self.differences] or [
            "verified: migrations/ and schema.sql build identical catalogs"
        ]

    def verdict(self) -> None:
        if self.differences:
            raise OutOfSync(
                f"migrations/ and schema.sql build different databases ({len(self.differences)} difference(s))"
            )


@dataclass
class DriftReport(Report):
    """`inv migrate.drift`: an environment's catalogs against those its applied migrations build."""

    env: str
    differences: list

    def lines(self) -> list[str]:
        return [f"drift: {difference}" for difference in self.differences] or [
            f"{self.env}: no drift (its schema is what its applied migrations build)"
        ]

    def verdict(self) -> None:
        if self.differences:
            raise OutOfSync(f"{self.env} differs from its migrations in {len(self.differences)} place(s)")


def verify(config: Config, schema_sql: str | None = None) -> list[catalog.Difference]:
    """Differences between the database migrations/ builds and the one schema.sql builds."""
    schema_sql = schema_sql if schema_sql is not None else (config.root / "schema.sql").read_text()
    replayed = history_snapshot(config, len(migration_files(config)))
    with scratch_databases(config, "models") as (models,):
        execute_sql(models, schema_sql, "schema.sql")
        return catalog.diff(replayed, catalog.snapshot_url(models))


def drift(config: Config, target: Target, applied: int | None = None) -> list[catalog.Difference]:
    """Differences between the target's database and what its applied migrations build."""
    if applied is None:
        applied = status(config, target).applied
    differences = catalog.diff(
        history_snapshot(config, applied),
        catalog.snapshot_url(target.url),
        left_label="its migrations",
        right_label=f"the {target.name} database",
    )
    return [d for d in differences if not is_alembic_bookkeeping(d)]  # the previous tool's table
