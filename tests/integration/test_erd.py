"""`inv schema.erd` on real PostgreSQL: the project's own models against the golden file, the
same bytes twice, an SVG that is well-formed XML naming every table and foreign key; several
schemas, views and enums; the filter; `migrate.diff` refreshes the diagrams and `migrate.check`
fails when they are stale."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import running_project

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "schema.md"
TABLES = ("customers", "order_items", "orders", "products")
SVG = "{http://www.w3.org/2000/svg}"


def svg_titles(path: Path) -> list[str]:
    root = ET.parse(path).getroot()  # well-formed XML, or this raises
    return [t.text or "" for t in root.iter(f"{SVG}title")]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("erd")) as p:
        yield p


def test_the_models_diagram_is_the_golden_one_and_deterministic(project):
    p = project
    first = p.inv("schema.erd")
    assert first.returncode == 0, first.stderr
    assert "diagrams unchanged" in first.stdout  # the committed files are fresh
    md, svg = (p.root / "docs/schema.md").read_text(), (p.root / "docs/schema.svg").read_text()
    assert md == GOLDEN.read_text()
    for rel in ("docs/schema.md", "docs/schema.svg"):
        (p.root / rel).unlink()
    start = time.monotonic()
    again = p.inv("schema.erd")
    elapsed = time.monotonic() - start
    assert again.returncode == 0, again.stderr
    assert (p.root / "docs/schema.md").read_text() == md and (p.root / "docs/schema.svg").read_text() == svg
    assert elapsed < 5, f"schema.erd took {elapsed:.1f}s with a warm stack"
    titles = svg_titles(p.root / "docs/schema.svg")
    assert {f"public.{t}" for t in TABLES} <= set(titles)
    edges = sorted(t.split(":")[0] + "->" + t.split("->")[1].split(":")[0] for t in titles if "->" in t)
    assert edges == [
        "public.order_items->public.orders",
        "public.order_items->public.products",
        "public.orders->public.customers",
    ]


def test_schemas_views_and_enums_and_the_filter(project):
    p = project
    schema = p.root / "schema.sql"
    original = schema.read_text()
    schema.write_text(
        original + "\nCREATE SCHEMA billing;\n"
        "CREATE TABLE billing.invoices (id bigint PRIMARY KEY, order_id bigint UNIQUE REFERENCES orders (id));\n"
        "CREATE VIEW open_orders AS SELECT id, customer_id FROM orders WHERE status = 'pending';\n"
    )
    try:
        refused = p.inv("schema.erd", "--schema", "billing")
        assert refused.returncode == 1 and "needs --output" in refused.stderr
        unknown = p.inv("schema.erd", "--tables", "nope", "--output", "docs/part")
        assert unknown.returncode == 1 and "no table nope" in unknown.stderr
        done = p.inv("schema.erd", "--schema", "billing,public", "--output", "docs/all")
        assert done.returncode == 0, done.stderr
        md = (p.root / "docs/all.md").read_text()
        assert '"billing.invoices" |o--o| "public.orders"' in md
        assert '"public.open_orders (view)" {' in md and '"public.order_status (enum)" {' in md
        assert "[all.svg](all.svg)" in md
        titles = svg_titles(p.root / "docs/all.svg")
        assert "billing.invoices" in titles and "cluster_billing" in titles
        part = p.inv("schema.erd", "--tables", "billing.invoices,orders", "--output", "docs/part")
        assert part.returncode == 0, part.stderr
        md = (p.root / "docs/part.md").read_text()
        assert '"public.customers"' not in md and '"billing.invoices" |o--o| "public.orders"' in md
    finally:
        schema.write_text(original)


def test_diff_refreshes_the_diagrams_and_check_fails_when_they_are_stale(project):
    p = project
    models = p.root / "app/models/customers.py"
    models.write_text(
        models.read_text().replace(
            "    is_active: Mapped[bool]",
            "    nickname: Mapped[str | None] = mapped_column(String(40))\n    is_active: Mapped[bool]",
        )
    )
    diff = p.inv("migrate.diff", "--name", "add_nickname")
    assert diff.returncode == 0, diff.stderr
    assert "docs/schema.md updated" in diff.stdout and "docs/schema.svg updated" in diff.stdout
    assert "README.md updated" in diff.stdout and "nickname" in (p.root / "README.md").read_text()
    assert 'varchar(40) nickname "null"' in (p.root / "docs/schema.md").read_text()
    assert (p.root / "docs/schema.md").read_text() != GOLDEN.read_text()
    check = p.inv("migrate.check", "--no-base")
    assert check.returncode == 0, check.stdout + check.stderr

    svg = p.root / "docs/schema.svg"
    svg.write_text(svg.read_text().replace("nickname", "nick"))
    stale = p.inv("migrate.check", "--no-base")
    assert stale.returncode == 2, stale.stdout + stale.stderr
    assert "docs/schema.svg is stale against the models: run inv schema.erd" in stale.stdout
    assert "docs/schema.md" not in stale.stdout
