"""20261128234632: customers.full_name widens from 200 to 300 characters, keeping every row as it was."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

NAMES = ["Ada Lovelace", "Zoë Ünal-Øberg", "  spaces kept  ", "x" * 200, "名前", ""]


def test_every_customer_is_kept_as_it_was(migration):
    customers = migration.table("customers")
    rows = [{"email": f"c{i}@example.com", "full_name": name} for i, name in enumerate(NAMES)]
    rows += [
        {"email": f"bulk{i}@example.com", "full_name": f"Customer {i}", "is_active": i % 3 != 0} for i in range(2000)
    ]
    with migration.connect() as conn:
        conn.execute(insert(customers), rows)
        before = conn.execute(select(customers).order_by(customers.c.id)).all()
    with pytest.raises(Exception, match="value too long"):
        migration.execute(
            "INSERT INTO customers (email, full_name) VALUES ('long@example.com', :name)", {"name": "y" * 201}
        )

    migration.apply()

    with migration.connect() as conn:
        after = conn.execute(select(migration.table("customers")).order_by(customers.c.id)).all()
    assert after == before
    assert migration.execute(
        "SELECT character_maximum_length, is_nullable FROM information_schema.columns "
        "WHERE table_name = 'customers' AND column_name = 'full_name'"
    ) == [(300, "NO")]
    migration.execute(
        "INSERT INTO customers (email, full_name) VALUES ('long@example.com', :name)", {"name": "y" * 300}
    )
