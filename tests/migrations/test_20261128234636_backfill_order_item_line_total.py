"""20261128234636 (hand-written): order_items.line_total added, filled with quantity * unit_price
for every existing line, then made NOT NULL."""

from __future__ import annotations

from decimal import Decimal

LINES = [(1, Decimal("0.01")), (3, Decimal("19.99")), (7, Decimal("0.00")), (1000, Decimal("99999.99"))]


def place_orders(migration, orders: int) -> None:
    """`orders` orders of one customer, each with the lines of LINES (one product per line)."""
    migration.execute("INSERT INTO customers (email, full_name) VALUES ('buyer@example.com', 'Buyer')")
    migration.execute(
        "INSERT INTO products (sku, name, price) VALUES (:sku, :name, :price)",
        [{"sku": f"sku-{n}", "name": f"Product {n}", "price": price} for n, (_, price) in enumerate(LINES)],
    )
    migration.execute(
        "INSERT INTO orders (customer_id, status) SELECT c.id, 'paid' FROM customers c, generate_series(1, :n)",
        {"n": orders},
    )
    migration.execute(
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price) "
        "SELECT o.id, p.id, :quantity, p.price FROM orders o, products p WHERE p.sku = :sku",
        [{"quantity": quantity, "sku": f"sku-{n}"} for n, (quantity, _) in enumerate(LINES)],
    )


def test_every_existing_line_gets_its_total(migration):
    place_orders(migration, orders=500)
    before = migration.execute("SELECT id, order_id, product_id, quantity, unit_price FROM order_items ORDER BY id")
    assert len(before) == 500 * len(LINES)

    migration.apply()

    rows = migration.execute(
        "SELECT id, order_id, product_id, quantity, unit_price, line_total FROM order_items ORDER BY id"
    )
    assert [row[:5] for row in rows] == before  # nothing else changed
    wrong = [row for row in rows if row.line_total != row.quantity * row.unit_price]
    assert not wrong, f"{len(wrong)} line(s) with a wrong total, first: {wrong[0]}"
    assert {row.line_total for row in rows} == {
        Decimal("0.01"),
        Decimal("59.97"),
        Decimal("0.00"),
        Decimal("99999990.00"),
    }


def test_the_column_is_not_null_afterwards(migration):
    migration.apply()  # on no rows at all
    assert migration.execute(
        "SELECT data_type, numeric_precision, numeric_scale, is_nullable FROM information_schema.columns "
        "WHERE table_name = 'order_items' AND column_name = 'line_total'"
    ) == [("numeric", 12, 2, "NO")]
