"""A schema comparator that reads PostgreSQL's catalogs directly (not through Atlas).

`snapshot(conn)` describes every user object of a database as plain data, keyed by kind and
qualified name, with nothing that differs between two equal databases (no OIDs, no column
order, no extension versions). `diff(a, b)` lists what differs, one readable line each.
Atlas's revision schema and the system schemas are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tools import timings

if TYPE_CHECKING:
    import psycopg


# kind -> qualified name -> the object's fields (plain data: str, bool, int, lists of them).
Snapshot = dict[str, dict[str, Any]]

IGNORED_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "atlas_schema_revisions")
_NS = (
    "n.nspname NOT IN ('pg_catalog','information_schema','pg_toast','atlas_schema_revisions')"
    " AND n.nspname NOT LIKE 'pg_temp_%%' AND n.nspname NOT LIKE 'pg_toast_temp_%%'"
)
# Objects that belong to an extension are the extension's business.
_NOT_EXT = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"

QUERIES = {
    "schema": f"""
        SELECT n.nspname, obj_description(n.oid, 'pg_namespace')
        FROM pg_namespace n WHERE {_NS}""",
    "table": f"""
        SELECT n.nspname || '.' || c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
               obj_description(c.oid, 'pg_class')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r','p','f') AND {_NS} AND {_NOT_EXT.format(oid="c.oid")}
          AND c.relname <> 'atlas_schema_revisions'""",
    "column": f"""
        SELECT n.nspname || '.' || c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
               a.attidentity, CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
               CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,
               col_description(c.oid, a.attnum)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','f','c') AND {_NS}
          AND {_NOT_EXT.format(oid="c.oid")} AND c.relname <> 'atlas_schema_revisions'
          AND (c.relkind <> 'c' OR NOT EXISTS (SELECT 1 FROM pg_type ct WHERE ct.typrelid = c.oid
                                               AND {_NOT_EXT.format(oid="ct.oid").replace("NOT EXISTS", "EXISTS")}))""",
    "constraint": f"""
        SELECT n.nspname || '.' || coalesce(c.relname, ty.typname) || '.' || con.conname, con.contype,
               pg_get_constraintdef(con.oid), obj_description(con.oid, 'pg_constraint')
        FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
        LEFT JOIN pg_class c ON c.oid = con.conrelid LEFT JOIN pg_type ty ON ty.oid = con.contypid
        WHERE {_NS} AND coalesce(c.relname, '') <> 'atlas_schema_revisions'
          AND {_NOT_EXT.format(oid="coalesce(c.oid, ty.oid)")}""",
    "index": f"""
        SELECT n.nspname || '.' || ic.relname, tc.relname, pg_get_indexdef(i.indexrelid),
               EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid),
               obj_description(ic.oid, 'pg_class')
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE {_NS} AND tc.relname <> 'atlas_schema_revisions' AND {_NOT_EXT.format(oid="tc.oid")}""",
    "enum": f"""
        SELECT n.nspname || '.' || t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {_NS} AND {_NOT_EXT.format(oid="t.oid")} GROUP BY 1""",
    "sequence": f"""
        SELECT n.nspname || '.' || c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
               s.seqmax, s.seqcycle,
               (SELECT tn.nspname || '.' || tc.relname || '.' || ta.attname FROM pg_depend d
                  JOIN pg_class tc ON tc.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                  JOIN pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid
                 WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                   AND d.deptype IN ('a','i') LIMIT 1)
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_NS} AND {_NOT_EXT.format(oid="c.oid")} AND c.relname <> 'atlas_schema_revisions_id_seq'""",
    "view": f"""
        SELECT n.nspname || '.' || c.relname, c.relkind, pg_get_viewdef(c.oid), obj_description(c.oid, 'pg_class')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v','m') AND {_NS} AND {_NOT_EXT.format(oid="c.oid")}""",
    "function": f"""
        SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               pg_get_functiondef(p.oid), obj_description(p.oid, 'pg_proc')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prokind IN ('f','p','w') AND {_NS} AND {_NOT_EXT.format(oid="p.oid")}""",
    "trigger": f"""
        SELECT n.nspname || '.' || c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {_NS}""",
    "extension": """
        SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname <> 'plpgsql'""",
    "domain": f"""
        SELECT n.nspname || '.' || t.typname, format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
               (SELECT array_agg(con.conname || ' ' || pg_get_constraintdef(con.oid) ORDER BY con.conname)
                  FROM pg_constraint con WHERE con.contypid = t.oid)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND {_NS} AND {_NOT_EXT.format(oid="t.oid")}""",
    "composite": f"""
        SELECT n.nspname || '.' || t.typname,
               (SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                  FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
        FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'c' AND c.relkind = 'c' AND {_NS} AND {_NOT_EXT.format(oid="t.oid")}""",
    "policy": f"""
        SELECT n.nspname || '.' || c.relname || '.' || p.polname, p.polcmd, p.polpermissive,
               (SELECT array_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END ORDER BY 1)
                FROM unnest(p.polroles) r),
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_NS}""",
}

FIELDS = {
    "schema": ("comment",),
    "table": ("kind", "persistence", "row_security", "force_row_security", "comment"),
    "column": ("type", "not_null", "default", "identity", "generated", "collation", "comment"),
    "constraint": ("type", "definition", "comment"),
    "index": ("table", "definition", "backs_constraint", "comment"),
    "enum": ("labels",),
    "sequence": ("type", "start", "increment", "min", "max", "cycle", "owned_by"),
    "view": ("kind", "definition", "comment"),
    "function": ("definition", "comment"),
    "trigger": ("definition", "enabled"),
    "extension": ("schema",),
    "domain": ("base_type", "not_null", "default", "constraints"),
    "composite": ("attributes",),
    "policy": ("command", "permissive", "roles", "using", "with_check"),
}
KINDS = tuple(FIELDS)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _normalise(kind: str, field: str, value: Any) -> Any:
    if isinstance(value, str) and field == "definition" and kind == "view":
        return " ".join(value.split())
    return value


def snapshot(conn: psycopg.Connection) -> Snapshot:
    """Every user object of the connected database: {kind: {qualified name: {field: value}}}.

    The queries go in one round trip (psycopg's pipeline mode), not one each."""
    snap = {}
    with conn.pipeline():
        cursors = [(kind, conn.execute(sql.replace("%%", "%"))) for kind, sql in QUERIES.items()]
        results = [(kind, cursor.fetchall()) for kind, cursor in cursors]
    for kind, rows in results:
        objects = {}
        for row in rows:
            name, values = row[0], row[1:]
            objects[name] = {f: _normalise(kind, f, _plain(v)) for f, v in zip(FIELDS[kind], values, strict=False)}
        if kind == "schema":
            objects = {k: v for k, v in objects.items() if k not in IGNORED_SCHEMAS}
        snap[kind] = dict(sorted(objects.items()))
    return snap


@timings.timed("catalogs read")
def snapshot_url(url: str) -> Snapshot:
    import psycopg

    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        return snapshot(conn)


@dataclass(frozen=True)
class Difference:
    kind: str
    name: str
    field: str | None  # None: the whole object is on one side only
    # A snapshot's value: the object's fields (a dict) when `field` is None, else that field's value.
    left: Any  # value in the first snapshot (e.g. the database migrations/ builds)
    right: Any  # value in the second (e.g. the database schema.sql builds)
    left_label: str = "migrations"
    right_label: str = "models"

    def __str__(self) -> str:
        if self.field is None:
            side = self.left_label if self.left is not None else self.right_label
            return f"{self.kind} {self.name}: only in {side}"
        return f"{self.kind} {self.name}: {self.field} {_show(self.left)} != {_show(self.right)}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = " ".join(str(value).split()) if isinstance(value, str) else str(value)
    return text if len(text) <= 160 else text[:157] + "..."


def diff(a: Snapshot, b: Snapshot, left_label: str = "migrations", right_label: str = "models") -> list[Difference]:
    """What differs between two snapshots, kind by kind, in a stable order."""
    out = []
    for kind in KINDS:
        left, right = a.get(kind, {}), b.get(kind, {})
        for name in sorted(set(left) | set(right)):
            if name not in right:
                out.append(Difference(kind, name, None, left[name], None, left_label, right_label))
            elif name not in left:
                out.append(Difference(kind, name, None, None, right[name], left_label, right_label))
            else:
                for field in FIELDS[kind]:
                    if left[name].get(field) != right[name].get(field):
                        out.append(
                            Difference(
                                kind,
                                name,
                                field,
                                left[name].get(field),
                                right[name].get(field),
                                left_label,
                                right_label,
                            )
                        )
    return out


def is_empty(snapshot: Snapshot) -> bool:
    """No object at all besides the `public` schema."""
    return not any(names for kind, names in snapshot.items() if kind != "schema") and set(
        snapshot.get("schema", {})
    ) <= {"public"}


def kinds(snapshot: Snapshot) -> list[str]:
    """The kinds of object a snapshot holds (schemas aside), sorted."""
    return sorted({kind for kind, names in snapshot.items() if names and kind != "schema"})


# --- renames that Atlas writes as a drop and an add ---------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(snapshot: Snapshot, table: str) -> dict[str, tuple[Any, ...]]:
    prefix = table + "."
    return {
        name[len(prefix) :]: (c.get("type"), c.get("not_null"))
        for name, c in snapshot.get("column", {}).items()
        if name.startswith(prefix) and "." not in name[len(prefix) :]
    }


def possible_renames(before: Snapshot, after: Snapshot) -> list[str]:
    """Tables and columns that vanish while one of the same shape appears (catalog snapshots).

    Atlas (like Alembic) cannot tell a rename from a drop and an add: the generated migration
    loses the data. Each hint names the one statement that keeps it.
    """
    hints = []
    old_tables, new_tables = set(before.get("table", {})), set(after.get("table", {}))
    dropped, added = sorted(old_tables - new_tables), sorted(new_tables - old_tables)
    for old in dropped:
        same = [
            new
            for new in added
            if new.split(".")[0] == old.split(".")[0] and _columns(after, new) == _columns(before, old)
        ]
        if len(same) == 1:
            schema, old_name = old.split(".", 1)
            new_name = same[0].split(".", 1)[1]
            hints.append(
                f"table {old} -> {new_name}: if it is a rename, use ALTER TABLE {_q(schema)}.{_q(old_name)} RENAME "
                f"TO {_q(new_name)}"
            )
    for table in sorted(old_tables & new_tables):
        old_cols, new_cols = _columns(before, table), _columns(after, table)
        gone = {c: shape for c, shape in old_cols.items() if c not in new_cols}
        came = {c: shape for c, shape in new_cols.items() if c not in old_cols}
        for col, shape in sorted(gone.items()):
            same = [c for c, other in came.items() if other == shape]
            if len(same) == 1 and sum(1 for other in gone.values() if other == shape) == 1:
                schema, name = table.split(".", 1)
                hints.append(
                    f"column {table}.{col} -> {same[0]}: if it is a rename, use ALTER TABLE {_q(schema)}.{_q(name)} "
                    f"RENAME COLUMN {_q(col)} TO {_q(same[0])}"
                )
    return hints
