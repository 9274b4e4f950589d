"""schema.sql's statements of the kinds Atlas v0.13.1 ignores, and schema.sql as Atlas should read it.

Atlas silently ignores some object kinds in a SQL schema (views, functions, triggers,
standalone sequences, extensions, domains, composite types, policies, row-level security).
This module finds their statements in schema.sql with a real PostgreSQL parser (pglast);
tools/corrections.py turns them into the SQL a migration lacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pglast

# Kinds Atlas ignores in a SQL schema: copied from schema.sql into the migration.
# "before": tables may depend on them; "after": they depend on tables.
BEFORE_KINDS = ("extension", "domain", "composite", "sequence")
AFTER_KINDS = ("function", "view", "trigger", "policy")
IGNORED_KINDS = BEFORE_KINDS + AFTER_KINDS


@dataclass
class Statement:
    kind: str
    name: str  # qualified as in catalog snapshots (functions: "schema.name(" prefix)
    sql: str


def _names(nodes: Iterable[pglast.ast.String] | None) -> list[str]:
    return [n.sval for n in nodes or () if n.sval is not None]


def _rel(rv: pglast.ast.RangeVar | None) -> str:
    """schema.name of the relation a statement names (the parser always fills it in)."""
    assert rv is not None and rv.relname is not None
    return _qual(rv.schemaname, rv.relname)


def _qual(schema: str | None, name: str) -> str:
    return f"{schema or 'public'}.{name}"


def ignored_statements(schema_sql: str) -> list[Statement]:
    """The statements of schema.sql that create objects of kinds Atlas ignores, in file order."""
    import pglast
    from pglast import ast, enums

    out = []
    for raw in pglast.parse_sql(schema_sql):
        stmt = raw.stmt
        sql = _text_of(schema_sql, raw)
        if isinstance(stmt, ast.CreateExtensionStmt):
            out.append(Statement("extension", stmt.extname or "", sql))
        elif isinstance(stmt, ast.CreateSeqStmt):
            out.append(Statement("sequence", _rel(stmt.sequence), sql))
        elif isinstance(stmt, ast.ViewStmt):
            out.append(Statement("view", _rel(stmt.view), sql))
        elif isinstance(stmt, ast.CreateTableAsStmt) and stmt.objtype == enums.ObjectType.OBJECT_MATVIEW:
            out.append(Statement("view", _rel(stmt.into.rel if stmt.into else None), sql))
        elif isinstance(stmt, ast.CreateFunctionStmt):
            parts = _names(stmt.funcname)
            out.append(Statement("function", _qual(*(parts if len(parts) == 2 else [None, parts[-1]])) + "(", sql))
        elif isinstance(stmt, ast.CreateTrigStmt):
            out.append(Statement("trigger", f"{_rel(stmt.relation)}.{stmt.trigname}", sql))
        elif isinstance(stmt, ast.CreateDomainStmt):
            parts = _names(stmt.domainname)
            out.append(Statement("domain", _qual(*(parts if len(parts) == 2 else [None, parts[-1]])), sql))
        elif isinstance(stmt, ast.CompositeTypeStmt):
            out.append(Statement("composite", _rel(stmt.typevar), sql))
        elif isinstance(stmt, ast.CreatePolicyStmt):
            out.append(Statement("policy", f"{_rel(stmt.table)}.{stmt.policy_name}", sql))
        elif (
            isinstance(stmt, ast.AlterTableStmt)
            and stmt.cmds
            and all(
                c.subtype in (enums.AlterTableType.AT_EnableRowSecurity, enums.AlterTableType.AT_ForceRowSecurity)
                for c in stmt.cmds
            )
        ):
            out.append(Statement("rls", _rel(stmt.relation), sql))
    return out


IDEMPOTENT_TAG = "$workflow$"


def idempotent(schema_sql_statement: str) -> str:
    """The same CREATE, harmless when the object exists already.

    Atlas loads the desired state and replays the migration directory in one dev database
    without removing what it does not know, so statements it ignores must tolerate each other.
    """
    import pglast
    from pglast import ast
    from pglast.stream import RawStream

    (raw,) = pglast.parse_sql(schema_sql_statement)
    stmt = raw.stmt
    if isinstance(stmt, (ast.CreateSeqStmt, ast.CreateExtensionStmt)):
        if not stmt.if_not_exists:
            stmt.if_not_exists = True
            return RawStream()(stmt) + ";"
        return schema_sql_statement
    if isinstance(stmt, (ast.CreateDomainStmt, ast.CompositeTypeStmt)):
        body = schema_sql_statement.rstrip().rstrip(";")
        return f"DO {IDEMPOTENT_TAG} BEGIN {body}; EXCEPTION WHEN duplicate_object THEN NULL; END {IDEMPOTENT_TAG};"
    return schema_sql_statement


def desired_state_for_atlas(schema_sql: str) -> str:
    """schema.sql as Atlas should read it: without the kinds it ignores that depend on tables
    (we carry those ourselves), and with the ones tables may depend on made idempotent."""
    import pglast

    ignored = {st.sql: st for st in ignored_statements(schema_sql)}
    out = []
    for raw in pglast.parse_sql(schema_sql):
        sql = _text_of(schema_sql, raw)
        st = ignored.get(sql)
        if st is None:
            out.append(sql)
        elif st.kind in BEFORE_KINDS:
            out.append(idempotent(sql))
    return "\n\n".join(out) + "\n"


def _text_of(schema_sql: str, raw: pglast.ast.RawStmt) -> str:
    """The text of one statement of `schema_sql`, as pglast.parse_sql located it.

    pglast turns the parser's byte offsets into character offsets (of the str it was given),
    so slice the str: slicing its UTF-8 bytes cuts a multi-byte character in two as soon as a
    comment or an enum label holds non-ASCII text (and UnicodeDecodeError follows).
    """
    start = raw.stmt_location or 0
    chunk = schema_sql[start : start + raw.stmt_len] if raw.stmt_len else schema_sql[start:]
    return chunk.strip().rstrip(";").strip() + ";"
