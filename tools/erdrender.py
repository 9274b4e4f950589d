"""Entity-relationship diagrams of a schema graph (tools/schemagraph.py), as text: Mermaid
`erDiagram` (rendered by GitHub and GitLab) and Graphviz DOT (drawn to SVG by tools/erd.py).

Pure and deterministic: the same graph gives the same bytes. `marks` flags what a change did,
for the change report: {"schema.table" or "schema.table.column": "added" | "dropped" | "changed"}.
"""

from __future__ import annotations

import html
import re

from tools.schemagraph import Column, Enum, ForeignKey, Graph, Table

Marks = dict[str, str]

# format_type() spellings shortened to what reviewers write (and Mermaid's type token accepts).
SHORT_TYPES = (
    ("character varying", "varchar"),
    ("timestamp with time zone", "timestamptz"),
    ("timestamp without time zone", "timestamp"),
    ("time with time zone", "timetz"),
    ("time without time zone", "time"),
    ("double precision", "float8"),
    ("bit varying", "varbit"),
    ("character", "char"),
)
_MERMAID_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_()\[\]-]*")
_NOT_WORD = re.compile(r"[^A-Za-z0-9_()\[\]-]")
SIGNS = {"added": "+", "dropped": "-", "changed": "~"}
FILL = {"added": "#d8f5d8", "dropped": "#f8d4d4", "changed": "#fff1b8"}
HEAD = {"table": "#dfe6f3", "view": "#e8e1f3", "materialized view": "#e8e1f3", "foreign table": "#e6e6e6"}
FONT = "Arimo"  # bundled with graphviz-pure: the same text metrics, so the same layout, everywhere


def short_type(type_: str) -> str:
    for long, short in SHORT_TYPES:
        if type_ == long or type_.startswith(long + "(") or type_.startswith(long + "["):
            return short + type_[len(long) :]
    return type_


# --- Mermaid ---------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """A Mermaid quoted string: no double quotes, percent signs or line breaks inside."""
    return '"' + re.sub(r'["%\r\n\v\b\\]', "'", text) + '"'


def _word(text: str) -> str:
    word = _NOT_WORD.sub("_", text)
    return word if _MERMAID_WORD.fullmatch(word) else "_" + word


def _entity(table: Table) -> str:
    return _quote(table.qualified if table.kind == "table" else f"{table.qualified} ({table.kind})")


def _mermaid_column(table: Table, column: Column, marks: Marks) -> str:
    kind = short_type(column.type)
    token = kind if _word(kind) == kind else _word(kind.split("(")[0])
    notes = [] if token == kind else [kind]
    if _word(column.name) != column.name:
        notes.append(column.name)
    notes.append("not null" if column.not_null else "null")
    mark = marks.get(f"{table.qualified}.{column.name}")
    if mark:
        notes.append(f"{SIGNS[mark]} {mark}")
    keys = f" {','.join(column.keys)}" if column.keys else ""
    return f"        {token} {_word(column.name)}{keys} {_quote(', '.join(notes))}"


def _cardinality(fk: ForeignKey) -> str:
    """Mermaid's crow's foot: the referencing side (many, or zero/one when unique), then the
    referenced side (exactly one, or zero/one when a referencing column may be NULL)."""
    return ("|o" if fk.one_to_one else "}o") + "--" + ("o|" if fk.optional else "||")


def mermaid(graph: Graph, marks: Marks | None = None) -> str:
    marks = marks or {}
    names = {t.qualified: _entity(t) for t in graph.tables}
    out = ["erDiagram"]
    for schema in graph.schemas:
        out.append(f"    %% schema {schema}")
        for table in (t for t in graph.tables if t.schema == schema):
            out.append(f"    {names[table.qualified]} {{")
            out += [_mermaid_column(table, c, marks) for c in table.columns]
            if table.qualified in marks:
                out.append(f'        mark {_word(marks[table.qualified])} "{SIGNS[marks[table.qualified]]} table"')
            out.append("    }")
        for enum in (e for e in graph.enums if e.schema == schema):
            out.append(f"    {_quote(enum.qualified + ' (enum)')} {{")
            out += [f"        enum {_word(label)} {_quote(label)}" for label in enum.labels]
            out.append("    }")
    for fk in graph.foreign_keys:
        if fk.table in names and fk.ref_table in names:
            columns = f"{', '.join(fk.columns)} -> {', '.join(fk.ref_columns)}"
            line = f"    {names[fk.table]} {_cardinality(fk)} {names[fk.ref_table]} : {_quote(columns)}"
            out.append(line)
    return "\n".join(out) + "\n"


# --- Graphviz DOT ------------------------------------------------------------------------------


def _id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cell(text: str, mark: str | None = None, **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    body = html.escape(text) or " "
    if mark == "dropped":
        body = f"<s>{body}</s>"
    fill = f' bgcolor="{FILL[mark]}"' if mark else ""
    return f'<td align="left"{fill}{extra}>{body}</td>'


def _dot_table(table: Table, marks: Marks) -> str:
    mark = marks.get(table.qualified)
    title = table.name if table.kind == "table" else f"{table.name} ({table.kind})"
    title = html.escape(f"{SIGNS[mark]} {title}" if mark else title)
    head = FILL[mark] if mark else HEAD.get(table.kind, HEAD["table"])
    rows = [f'<tr><td colspan="4" bgcolor="{head}"><b>{title}</b></td></tr>']
    for i, column in enumerate(table.columns):
        cmark = marks.get(f"{table.qualified}.{column.name}") or ("dropped" if mark == "dropped" else None)
        rows.append(
            "<tr>"
            + _cell(",".join(column.keys), cmark, port=f"c{i}w")
            + _cell(column.name, cmark)
            + _cell(short_type(column.type), cmark)
            + _cell("" if column.not_null else "null", cmark, port=f"c{i}e")
            + "</tr>"
        )
    label = '<table border="0" cellborder="1" cellspacing="0" cellpadding="3">' + "".join(rows) + "</table>"
    return f"    {_id(table.qualified)} [label=<{label}>];"


def _dot_enum(enum: Enum) -> str:
    rows = [f'<tr><td bgcolor="#eeeeee"><b>{html.escape(enum.name)} (enum)</b></td></tr>']
    rows += [f'<tr><td align="left">{html.escape(label) or " "}</td></tr>' for label in enum.labels]
    label = '<table border="0" cellborder="1" cellspacing="0" cellpadding="3">' + "".join(rows) + "</table>"
    return f"    {_id(enum.qualified)} [label=<{label}>];"


def _port(table: Table, column: str, side: str) -> str:
    """A column's row, on its outer cell at `side` (e or w): the line does not cross the row.
    The referencing table is ranked left of the one it references (rankdir=LR)."""
    index = next((i for i, c in enumerate(table.columns) if c.name == column), None)
    return f":c{index}{side}:{side}" if index is not None else ""


def dot(graph: Graph, marks: Marks | None = None, title: str = "schema") -> str:
    marks = marks or {}
    out = [
        f"digraph {_id(title)} {{",
        f'    graph [rankdir=LR, fontname="{FONT}", fontsize=12, nodesep=0.4, ranksep=1.0];',
        f'    node [shape=plain, fontname="{FONT}", fontsize=10];',
        f'    edge [fontname="{FONT}", fontsize=9, dir=both, arrowsize=0.8, color="#555555"];',
    ]
    for schema in graph.schemas:
        out.append(f"  subgraph {_id('cluster_' + schema)} {{")
        out.append(f'    label={_id("schema " + schema)}; style=rounded; color="#999999";')
        out += [_dot_table(t, marks) for t in graph.tables if t.schema == schema]
        out += [_dot_enum(e) for e in graph.enums if e.schema == schema]
        out.append("  }")
    for fk in graph.foreign_keys:
        child, parent = graph.table(fk.table), graph.table(fk.ref_table)
        if child is None or parent is None:
            continue
        tail = "teeodot" if fk.one_to_one else "crowodot"
        head = "teeodot" if fk.optional else "teetee"
        out.append(
            f"    {_id(fk.table)}{_port(child, fk.columns[0], 'e')} -> {_id(fk.ref_table)}"
            f"{_port(parent, fk.ref_columns[0], 'w')}"
            f" [arrowtail={tail}, arrowhead={head}, tooltip={_id(fk.name)}];"
        )
    out.append("}")
    return "\n".join(out) + "\n"


def markdown(graph: Graph, svg_name: str = "schema.svg") -> str:
    """docs/schema.md: the Mermaid diagram with a line of counts, and the SVG linked."""
    kinds = [t.kind for t in graph.tables]
    tables, views = kinds.count("table"), len(kinds) - kinds.count("table")
    counts = f"{tables} table(s), {views} view(s), {len(graph.foreign_keys)} foreign key(s), {len(graph.enums)} enum(s)"
    return (
        "<!-- Generated by `inv schema.erd` from schema.sql, read from PostgreSQL's catalogs. Do not edit: "
        "inv migrate.diff refreshes it and inv migrate.check fails when it is stale. -->\n"
        "# Schema\n\n"
        f"{counts} in schema(s) {', '.join(graph.schemas) or '(none)'}. "
        f"The same diagram drawn by Graphviz: [{svg_name}]({svg_name}).\n\n"
        "Keys: PK primary key, FK foreign key, UK unique. A foreign key's line reads from the referencing table: "
        "`}o--||` many to exactly one, `}o--o|` many to zero or one (a nullable column), `|o--||` one to one.\n\n"
        "```mermaid\n" + mermaid(graph) + "```\n"
    )
