"""tools/dump_schema.py: deterministic, complete, and the committed schema.sql is current."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def dump(seed: str, module: str = "app.models") -> str:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    proc = subprocess.run(
        [sys.executable, "tools/dump_schema.py", module], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout


def test_deterministic_across_hash_seeds():
    outputs = {dump(seed) for seed in ("0", "1", "2", "12345")}
    assert len(outputs) == 1


def test_committed_schema_sql_matches_the_models():
    assert (ROOT / "schema.sql").read_text() == dump("0"), "schema.sql is stale: run inv schema.dump"


def test_no_paths_or_timestamps():
    text = dump("0")
    assert str(ROOT) not in text
    assert "2026" not in text and "2025" not in text


@pytest.mark.parametrize(
    "fragment",
    [
        "CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled')",
        "CONSTRAINT pk_customers PRIMARY KEY (id)",
        "CONSTRAINT uq_customers_email UNIQUE (email)",
        "CONSTRAINT ck_order_items_quantity_positive CHECK (quantity > 0)",
        "CREATE INDEX ix_orders_open ON orders (created_at) WHERE status = 'pending'",
        "REFERENCES customers (id) ON DELETE RESTRICT",
        "created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL",
        "COMMENT ON COLUMN customers.email IS 'Login and contact address'",
    ],
    ids=["enum", "pk", "unique", "check", "partial-index", "fk", "server-default", "comment"],
)
def test_declared_objects_are_dumped(fragment):
    assert fragment in dump("0")


def test_schemas_sequences_and_ddl_events(tmp_path):
    (tmp_path / "multi_models.py").write_text(
        "from sqlalchemy import Column, DDL, ForeignKey, Integer, MetaData, Sequence, Table, event\n"
        "metadata = MetaData()\n"
        "seq = Sequence('invoice_seq', start=1000, metadata=metadata, schema='billing')\n"
        "users = Table('users', metadata, Column('id', Integer, primary_key=True))\n"
        "inv = Table('invoices', metadata, Column('id', Integer, seq, primary_key=True),\n"
        "            Column('user_id', ForeignKey('users.id')), schema='billing')\n"
        "event.listen(metadata, 'after_create', DDL('CREATE VIEW billing.v AS SELECT id FROM billing.invoices'))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    text = subprocess.run(
        [sys.executable, "tools/dump_schema.py", "multi_models"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert text.index("CREATE SCHEMA IF NOT EXISTS billing") < text.index("CREATE TABLE billing.invoices")
    assert "CREATE SEQUENCE billing.invoice_seq START WITH 1000" in text
    assert "CREATE VIEW billing.v AS SELECT id FROM billing.invoices" in text


def test_import_error_is_reported():
    proc = subprocess.run(
        [sys.executable, "tools/dump_schema.py", "no_such_models"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "No module named 'no_such_models'" in proc.stderr
