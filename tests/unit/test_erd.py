"""The ERD renderers (tools/erdrender.py) on hand-made graphs: the Mermaid is a well-formed
`erDiagram` (checked line by line against its grammar), the DOT names every table and foreign key,
both are deterministic; the filter, and the marks a change report puts on the diagram."""

from __future__ import annotations

import re

import pytest

from tools import catalog, erdrender, report, schemagraph
from tools.schemagraph import Column, Enum, ForeignKey, Graph, Table

GRAPH = Graph(
    tables=(
        Table(
            "billing",
            "invoices",
            "table",
            (Column("id", "bigint", True, ("PK",)), Column("order_id", "bigint", False, ("FK", "UK"))),
        ),
        Table(
            "public",
            "customers",
            "table",
            (Column("id", "bigint", True, ("PK",)), Column("e mail", "character varying(320)", True, ("UK",))),
        ),
        Table("public", "open_orders", "view", (Column("id", "bigint", False),)),
        Table(
            "public",
            "orders",
            "table",
            (
                Column("id", "bigint", True, ("PK",)),
                Column("customer_id", "bigint", True, ("FK",)),
                Column("total", "numeric(12,2)", True),
                Column("placed_at", "timestamp with time zone", False),
                Column("tags", "text[]", False),
            ),
        ),
    ),
    foreign_keys=(
        ForeignKey("fk_invoices_order", "billing.invoices", ("order_id",), "public.orders", ("id",), True, True),
        ForeignKey("fk_orders_customer", "public.orders", ("customer_id",), "public.customers", ("id",), False, False),
    ),
    enums=(Enum("public", "order_status", ("pending", "on hold")),),
)

# Mermaid erDiagram's grammar, as far as these diagrams use it (mermaid.js erDiagram.jison).
NAME = r'"[^"%\r\n\v\b\\]+"'
WORD = r"[A-Za-z_][A-Za-z0-9_()\[\]-]*"
ATTRIBUTE = re.compile(rf"^        {WORD} {WORD}( (PK|FK|UK)(,(PK|FK|UK))*)?( {NAME})?$")
ENTITY = re.compile(rf"^    ({NAME}) \{{$")
RELATION = re.compile(rf"^    ({NAME}) (\|o|\|\||\}}o|\}}\|)--(o\||\|\||o\{{|\|\{{) ({NAME}) : {NAME}$")


def parse_mermaid(text: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    """Entities with their attribute lines, relations (left, cardinality, right); fails on any
    line the grammar does not allow."""
    lines = text.splitlines()
    assert lines[0] == "erDiagram"
    entities: dict[str, list[str]] = {}
    relations = []
    current = None
    for line in lines[1:]:
        if current is not None:
            if line == "    }":
                current = None
            else:
                assert ATTRIBUTE.match(line), f"not an attribute: {line!r}"
                entities[current].append(line.split()[1])
        elif m := ENTITY.match(line):
            current = m.group(1).strip('"')
            entities[current] = []
        elif m := RELATION.match(line):
            relations.append((m.group(1).strip('"'), m.group(2) + "--" + m.group(3), m.group(4).strip('"')))
        else:
            assert line.startswith("    %% "), f"not erDiagram syntax: {line!r}"
    assert current is None, "an entity is not closed"
    return entities, relations


def test_mermaid_is_an_er_diagram_with_every_table_column_and_foreign_key():
    entities, relations = parse_mermaid(erdrender.mermaid(GRAPH))
    assert set(entities) == {
        "billing.invoices",
        "public.customers",
        "public.open_orders (view)",
        "public.orders",
        "public.order_status (enum)",
    }
    assert entities["public.orders"] == ["id", "customer_id", "total", "placed_at", "tags"]
    assert entities["public.customers"] == ["id", "e_mail"]  # the real name is in the comment
    assert relations == [
        ("billing.invoices", "|o--o|", "public.orders"),  # unique and nullable: zero or one each way
        ("public.orders", "}o--||", "public.customers"),  # many to exactly one
    ]


def test_mermaid_keeps_exact_types_and_nullability_in_comments():
    text = erdrender.mermaid(GRAPH)
    assert '        numeric total "numeric(12,2), not null"' in text
    assert '        timestamptz placed_at "null"' in text
    assert '        varchar(320) e_mail UK "e mail, not null"' in text
    assert '        enum on_hold "on hold"' in text


def test_dot_draws_clusters_per_schema_and_an_edge_per_foreign_key():
    text = erdrender.dot(GRAPH)
    assert text == erdrender.dot(GRAPH)  # deterministic
    assert 'subgraph "cluster_billing"' in text and 'subgraph "cluster_public"' in text
    edges = [line for line in text.splitlines() if " -> " in line]
    assert edges == [
        '    "billing.invoices":c1e:e -> "public.orders":c0w:w'
        ' [arrowtail=teeodot, arrowhead=teeodot, tooltip="fk_invoices_order"];',
        '    "public.orders":c1e:e -> "public.customers":c0w:w'
        ' [arrowtail=crowodot, arrowhead=teetee, tooltip="fk_orders_customer"];',
    ]


def test_html_in_names_is_escaped_in_the_dot_labels():
    graph = Graph((Table("public", "a<b>", "table", (Column("x&y", "text", False),)),), ())
    text = erdrender.dot(graph)
    assert "a&lt;b&gt;" in text and "x&amp;y" in text and "<b>a<b></b>" not in text


@pytest.mark.parametrize(
    "schemas, tables, kept, fks",
    [
        ((), (), 4, 2),
        (("billing",), (), 1, 0),
        ((), ("orders", "public.customers"), 2, 1),
        (("public",), ("invoices",), 0, 0),
    ],
    ids=["all", "one-schema", "tables-by-name-or-qualified", "schema-and-table-disagree"],
)
def test_select(schemas, tables, kept, fks):
    part = schemagraph.select(GRAPH, schemas, tables)
    assert (len(part.tables), len(part.foreign_keys)) == (kept, fks)


def test_unknown_names_in_a_filter_are_named():
    assert schemagraph.unknown_names(GRAPH, ("sales",), ("orders", "nope")) == ["schema sales", "table nope"]


def test_marks_of_a_change():
    before = {"column": {"public.customers.is_active": {"type": "boolean"}}, "index": {}, "table": {}}
    after = {
        "column": {"public.customers.nick": {"type": "text"}},
        "index": {"public.ix_orders_placed_at": {"table": "orders", "definition": "CREATE INDEX ..."}},
        "table": {"public.notes": {"kind": "r"}},
    }
    marks, other = report.marks_of(catalog.diff(before, after, "before", "after"), (before, after))
    assert marks == {
        "public.notes": "added",
        "public.customers.is_active": "dropped",
        "public.customers": "changed",
        "public.customers.nick": "added",
        "public.orders": "changed",
    }
    assert other == ["index public.ix_orders_placed_at: added (public.orders)"]
    changed = {"index": {"public.ix_orders_open": {"table": "orders", "definition": "CREATE INDEX ... WHERE x"}}}
    old = {"index": {"public.ix_orders_open": {"table": "orders", "definition": "CREATE INDEX ... WHERE y"}}}
    assert report.marks_of(catalog.diff(old, changed), (old, changed)) == (
        {"public.orders": "changed"},
        ["index public.ix_orders_open: changed (public.orders)"],
    )
    text = erdrender.mermaid(schemagraph.select(GRAPH, tables=("public.customers",)), marks)
    assert 'mark changed "~ table"' in text
