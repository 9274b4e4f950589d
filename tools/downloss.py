"""What the plan of `inv migrate.down` would delete or rewrite: the tables and columns it drops
and the columns whose type it changes, with the rows that hold data in them.

Names are kept as (schema, table, column) values read from the catalogs, never as dotted
strings (a name may hold a dot: "audit.log", "legacy.id"), and quoted by psycopg.sql.Identifier.
The counts run twice: for the preview, and again on the plan's own connection inside its
transaction once the tables are locked, so that a row written meanwhile is not lost unseen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from tools.errors import WorkflowError
from tools.pg import connect, connection_error

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

COUNT_CAP = 1_000_000  # rows counted at most, per table or column the plan drops or rewrites

Table = tuple[str, str]  # (schema, table)
Column = tuple[str, str, str]  # (schema, table, column)

_TABLES = """
    SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'atlas_schema_revisions'"""
_COLUMNS = """
    SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      AND n.nspname <> 'atlas_schema_revisions'"""


@dataclass
class Layout:
    """The tables of a database and the type of each of their columns."""

    tables: set[Table] = field(default_factory=set)
    columns: dict[Column, str] = field(default_factory=dict)


def layout(conn: psycopg.Connection[tuple[Any, ...]]) -> Layout:
    tables = {(s, t) for s, t in conn.execute(_TABLES).fetchall()}
    columns = {(s, t, c): kind for s, t, c, kind in conn.execute(_COLUMNS).fetchall()}
    return Layout(tables, columns)


def layout_url(url: str) -> Layout:
    with connect(url) as conn:
        return layout(conn)


class Loss(NamedTuple):
    what: str  # "table public.notes", "column public.notes.priority"
    rows: int
    change: str = ""  # a type change: "numeric(14,4) -> numeric(12,2)"

    def line(self) -> str:
        if self.change:
            return f"data loss: {self.what}: {self.change} on {rows_text(self.rows)}: values may be rounded or rejected"
        return f"data loss: {self.what} holds {rows_text(self.rows)}"


@dataclass
class Risks:
    """What the plan drops or rewrites, from the layouts before and after it."""

    tables: list[Table]  # dropped
    columns: list[Column]  # dropped, of a table that stays
    changed: list[tuple[Column, str, str]]  # (column, type before, type after), of a column that stays

    @property
    def locked(self) -> list[Table]:
        """The tables to lock before counting: every one the plan drops, or drops or rewrites a column of."""
        return sorted(set(self.tables) | {c[:2] for c in self.columns} | {c[:2] for c, _, _ in self.changed})


def risks(before: Layout, after: Layout) -> Risks:
    return Risks(
        sorted(before.tables - after.tables),
        sorted(c for c in before.columns if c not in after.columns and c[:2] in after.tables),
        sorted(
            (c, kind, after.columns[c])
            for c, kind in before.columns.items()
            if c in after.columns and after.columns[c] != kind
        ),
    )


_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


def display(*parts: str) -> str:
    """A qualified name as a reader sees it: a part quoted only when it needs to be (a dot, a capital)."""
    return ".".join(p if _PLAIN.fullmatch(p) else '"' + p.replace('"', '""') + '"' for p in parts)


def _count(table: Table, column: str | None = None) -> sql.Composed:
    from psycopg import sql

    where = sql.SQL("{} IS NOT NULL").format(sql.Identifier(column)) if column else sql.SQL("TRUE")
    return sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT {}) AS rows").format(
        sql.Identifier(*table), where, sql.Literal(COUNT_CAP + 1)
    )


def count(conn: psycopg.Connection[tuple[Any, ...]], plan: Risks) -> list[Loss]:
    """The rows holding data in what `plan` drops or rewrites, counted up to COUNT_CAP + 1 (a
    preview must not scan a production table of a billion rows)."""

    def rows(query: sql.Composed) -> int:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0

    out = [Loss(f"table {display(*t)}", rows(_count(t))) for t in plan.tables]
    out += [Loss(f"column {display(*c)}", rows(_count(c[:2], c[2]))) for c in plan.columns]
    out += [Loss(f"column {display(*c)}", rows(_count(c[:2], c[2])), f"{a} -> {b}") for c, a, b in plan.changed]
    return out


def count_url(url: str, plan: Risks) -> list[Loss]:
    try:
        with connect(url) as conn:
            return count(conn, plan)
    except WorkflowError:
        raise
    except Exception as exc:
        raise connection_error(exc, "the target database") from None


def locks(conn: psycopg.Connection[tuple[Any, ...]], tables: list[Table]) -> list[str]:
    """The statements taking ACCESS EXCLUSIVE locks on `tables` (bounded by the transaction's lock_timeout)."""
    from psycopg import sql

    lock = sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE")
    return [lock.format(sql.Identifier(*table)).as_string(conn) for table in tables]


def rows_text(rows: int) -> str:
    return f"more than {COUNT_CAP} rows" if rows > COUNT_CAP else f"{rows} row(s)"
