"""The schema as a graph for diagrams: tables (and views) with their columns and keys, foreign
keys with their cardinality, enums; read from PostgreSQL's catalogs of a connected database.

Plain, frozen data in a stable order (schemas, tables and enums by name, columns by position,
foreign keys by table and name), so that the same schema always draws the same diagram.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tools.catalog import IGNORED_SCHEMAS

if TYPE_CHECKING:
    import psycopg

_NS = "n.nspname NOT IN ({}) AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'".format(
    ",".join(f"'{s}'" for s in IGNORED_SCHEMAS)
)
_NOT_EXT = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"
KINDS = {"r": "table", "p": "table", "f": "foreign table", "v": "view", "m": "materialized view"}

RELATIONS = f"""
    SELECT n.nspname, c.relname, c.relkind, obj_description(c.oid, 'pg_class')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r','p','f','v','m') AND NOT c.relispartition AND {_NS} AND {_NOT_EXT.format(oid="c.oid")}
      AND c.relname <> 'atlas_schema_revisions'"""
COLUMNS = f"""
    SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','f','v','m') AND {_NS}
    ORDER BY a.attnum"""
# Keys: constraints (p, u, f) and unique indexes that back no constraint (Atlas writes UNIQUE so).
KEYS = f"""
    SELECT n.nspname, c.relname, con.conname, con.contype,
           ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.i),
           rn.nspname, rc.relname,
           ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.i)
    FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class rc ON rc.oid = con.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
    WHERE con.contype IN ('p','u','f') AND {_NS}
    UNION ALL
    SELECT n.nspname, c.relname, ic.relname, 'u',
           ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, j)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.j),
           NULL, NULL, NULL
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE i.indisunique AND NOT i.indisprimary AND i.indpred IS NULL AND NOT (0 = ANY (i.indkey::int2[])) AND {_NS}
      AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)"""
ENUMS = f"""
    SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE {_NS} AND {_NOT_EXT.format(oid="t.oid")} GROUP BY 1, 2"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    keys: tuple[str, ...] = ()  # of PK, FK, UK


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    kind: str  # table, view, materialized view, foreign table
    columns: tuple[Column, ...]
    comment: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str  # schema.table of the referencing side
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    optional: bool  # a referencing column may be NULL: zero or one on the referenced side
    one_to_one: bool  # the referencing columns are unique: at most one row per referenced row


@dataclass(frozen=True)
class Enum:
    schema: str
    name: str
    labels: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Graph:
    tables: tuple[Table, ...]
    foreign_keys: tuple[ForeignKey, ...]
    enums: tuple[Enum, ...] = ()

    def table(self, qualified: str) -> Table | None:
        return next((t for t in self.tables if t.qualified == qualified), None)

    @property
    def schemas(self) -> list[str]:
        return sorted({t.schema for t in self.tables} | {e.schema for e in self.enums})


def read(conn: psycopg.Connection) -> Graph:
    """The graph of every user table, view and enum of the connected database."""
    columns: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}
    for schema, table, name, type_, not_null in conn.execute(COLUMNS).fetchall():
        columns.setdefault((schema, table), []).append((name, type_, bool(not_null)))
    keys: dict[tuple[str, str, str], set[str]] = {}
    unique_sets: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    fk_rows = []
    for schema, table, conname, contype, cols, rschema, rtable, rcols in conn.execute(KEYS).fetchall():
        marker = {"p": "PK", "u": "UK", "f": "FK"}[contype]
        for col in cols if contype != "u" or len(cols) == 1 else ():  # UK: unique on its own
            keys.setdefault((schema, table, col), set()).add(marker)
        if contype in ("p", "u"):
            unique_sets.setdefault((schema, table), []).append(tuple(cols))
        else:
            fk_rows.append((schema, table, conname, tuple(cols), f"{rschema}.{rtable}", tuple(rcols)))
    tables = []
    for schema, name, relkind, comment in conn.execute(RELATIONS).fetchall():
        cols = tuple(
            Column(c, t, nn, tuple(k for k in ("PK", "FK", "UK") if k in keys.get((schema, name, c), set())))
            for c, t, nn in columns.get((schema, name), [])
        )
        tables.append(Table(schema, name, KINDS[relkind], cols, comment))
    tables.sort(key=lambda t: (t.schema, t.name))
    not_null = {(s, t, c): nn for (s, t), cs in columns.items() for c, _, nn in cs}
    fks = [
        ForeignKey(
            conname,
            f"{schema}.{table}",
            cols,
            ref,
            rcols,
            optional=any(not not_null.get((schema, table, c), False) for c in cols),
            one_to_one=any(set(u) <= set(cols) for u in unique_sets.get((schema, table), [])),
        )
        for schema, table, conname, cols, ref, rcols in fk_rows
    ]
    fks.sort(key=lambda f: (f.table, f.name))
    enums = sorted((Enum(s, n, tuple(labels)) for s, n, labels in conn.execute(ENUMS).fetchall()), key=_enum_key)
    return Graph(tuple(tables), tuple(fks), tuple(enums))


def _enum_key(e: Enum) -> tuple[str, str]:
    return (e.schema, e.name)


def select(graph: Graph, schemas: tuple[str, ...] = (), tables: tuple[str, ...] = ()) -> Graph:
    """The part of the graph in `schemas` and/or naming `tables` (`name` or `schema.name`);
    foreign keys whose two ends stay. Nothing given: the whole graph."""
    if not schemas and not tables:
        return graph

    def wanted(schema: str, name: str) -> bool:
        if schemas and schema not in schemas:
            return False
        return not tables or name in tables or f"{schema}.{name}" in tables

    kept = tuple(t for t in graph.tables if wanted(t.schema, t.name))
    names = {t.qualified for t in kept}
    fks = tuple(f for f in graph.foreign_keys if f.table in names and f.ref_table in names)
    enums = tuple(e for e in graph.enums if not tables and (not schemas or e.schema in schemas))
    return replace(graph, tables=kept, foreign_keys=fks, enums=enums)


def unknown_names(graph: Graph, schemas: tuple[str, ...], tables: tuple[str, ...]) -> list[str]:
    """The schemas and tables a filter names that the graph does not hold."""
    have_tables = {t.name for t in graph.tables} | {t.qualified for t in graph.tables}
    return [f"schema {s}" for s in schemas if s not in graph.schemas] + [
        f"table {t}" for t in tables if t not in have_tables
    ]
