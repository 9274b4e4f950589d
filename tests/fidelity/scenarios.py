"""Model changes, each a before/after pair of model modules (the body after HEADER).

Shared by the scenario suite (tests/fidelity/test_scenarios.py) and the comparison with
Alembic autogenerate (scripts/fidelity_report.py).
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER = """\
import enum
from sqlalchemy import (DDL, BigInteger, Boolean, CheckConstraint, Column, Computed, DateTime, Enum,
    ForeignKey, ForeignKeyConstraint, Identity, Index, Integer, MetaData, Numeric, PrimaryKeyConstraint,
    Sequence, String, Table, Text, UniqueConstraint, event, func, text)
from sqlalchemy.dialects.postgresql import ARRAY, CITEXT, INET, JSONB, UUID

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})
"""

USERS = """
users = Table("users", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(200), nullable=False),
    {extra})
"""


def users(*extra: str) -> str:
    return USERS.format(extra=",\n    ".join(extra) if extra else "")


@dataclass(frozen=True)
class Scenario:
    id: str
    before: str
    after: str
    # "round-trip": the workflow must make the database equal to the models;
    # "refused": migrate.diff must refuse with a line naming the object, writing no file.
    expect: str = "round-trip"
    note: str = ""
    # a line migrate.diff must print (e.g. the rename hint)
    diff_says: str = ""


ORDERS = """
orders = Table("orders", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id"{fk}), nullable=False))
"""

VIEW = """
event.listen(metadata, "after_create", DDL("CREATE VIEW active_users AS SELECT id, email FROM users WHERE id > {n}"))
"""

TRIGGER = '''
event.listen(users, "after_create", DDL("""CREATE FUNCTION touch_email() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.email := lower(NEW.email); RETURN NEW; END $$"""))
event.listen(users, "after_create", DDL("CREATE TRIGGER users_touch_email BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION touch_email()"))
'''

SCENARIOS = [
    Scenario("add-column", users(), users('Column("name", String(50))')),
    Scenario(
        "drop-column", users('Column("name", String(50))'), users(), note="destructive: apply needs --allow-destructive"
    ),
    Scenario(
        "rename-column",
        users('Column("name", String(50))'),
        users('Column("full_name", String(50))'),
        note=(
            "generated as drop + add: data loss, blocked by the apply guard; the diff prints the RENAME that keeps "
            "the data"
        ),
        diff_says="possible rename: column public.users.name -> full_name",
    ),
    Scenario("add-table", users(), users() + ORDERS.format(fk="")),
    Scenario("drop-table", users() + ORDERS.format(fk=""), users()),
    Scenario(
        "rename-table",
        users() + ORDERS.format(fk=""),
        users() + ORDERS.format(fk="").replace('"orders"', '"purchases"'),
        note="the diff prints the RENAME that keeps the data",
        diff_says="possible rename: table public.orders -> purchases",
    ),
    Scenario("type-widen-varchar", users('Column("name", String(50))'), users('Column("name", String(200))')),
    Scenario("type-narrow-varchar", users('Column("name", String(200))'), users('Column("name", String(50))')),
    Scenario("varchar-to-text", users('Column("name", String(50))'), users('Column("name", Text)')),
    Scenario("int-to-bigint", users('Column("score", Integer)'), users('Column("score", BigInteger)')),
    Scenario("set-not-null", users('Column("name", String(50))'), users('Column("name", String(50), nullable=False)')),
    Scenario("drop-not-null", users('Column("name", String(50), nullable=False)'), users('Column("name", String(50))')),
    Scenario(
        "server-default-add",
        users('Column("active", Boolean)'),
        users('Column("active", Boolean, server_default=text("true"))'),
    ),
    Scenario(
        "server-default-change",
        users('Column("score", Integer, server_default=text("0"))'),
        users('Column("score", Integer, server_default=text("10"))'),
    ),
    Scenario(
        "server-default-drop",
        users('Column("score", Integer, server_default=text("0"))'),
        users('Column("score", Integer)'),
    ),
    Scenario(
        "server-default-function",
        users(),
        users('Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False)'),
    ),
    Scenario(
        "enum-new-type",
        users(),
        users('Column("role", Enum("admin", "member", name="user_role"), nullable=False, server_default="member")'),
    ),
    Scenario(
        "enum-add-value",
        users('Column("role", Enum("admin", "member", name="user_role"))'),
        users('Column("role", Enum("admin", "member", "guest", name="user_role"))'),
    ),
    Scenario(
        "enum-on-new-column",
        users('Column("role", Enum("admin", "member", name="user_role"))'),
        users(
            'Column("role", Enum("admin", "member", name="user_role"))',
            'Column("previous_role", Enum("admin", "member", name="user_role"))',
        ),
    ),
    Scenario(
        "check-add",
        users('Column("age", Integer)'),
        users('Column("age", Integer)', 'CheckConstraint("age >= 0", name="age_positive")'),
    ),
    Scenario(
        "check-change",
        users('Column("age", Integer)', 'CheckConstraint("age >= 0", name="age_positive")'),
        users('Column("age", Integer)', 'CheckConstraint("age >= 18", name="age_positive")'),
    ),
    Scenario(
        "unique-add",
        users(),
        users('UniqueConstraint("email")'),
        note="Atlas writes a unique index; corrected to the UNIQUE constraint",
    ),
    Scenario(
        "unique-multi-column",
        users('Column("tenant", Integer)'),
        users('Column("tenant", Integer)', 'UniqueConstraint("tenant", "email")'),
    ),
    Scenario("unique-drop", users('UniqueConstraint("email")'), users()),
    Scenario(
        "composite-primary-key",
        users(),
        users()
        + """
memberships = Table("memberships", metadata,
    Column("user_id", ForeignKey("users.id"), primary_key=True),
    Column("group_id", Integer, primary_key=True))
""",
    ),
    Scenario(
        "primary-key-rename",
        users('PrimaryKeyConstraint("id", name="users_pk_old")').replace(
            'Column("id", Integer, primary_key=True)', 'Column("id", Integer)'
        ),
        users(),
        note="Atlas drops PK names; corrected with RENAME CONSTRAINT",
    ),
    Scenario(
        "fk-on-delete-update",
        users() + ORDERS.format(fk=""),
        users()
        + ORDERS.format(fk=', ondelete="CASCADE", onupdate="SET NULL"').replace("nullable=False", "nullable=True"),
    ),
    Scenario(
        "fk-deferrable",
        users(),
        users() + ORDERS.format(fk=', deferrable=True, initially="DEFERRED"'),
        note="Atlas drops DEFERRABLE; corrected",
    ),
    Scenario(
        "fk-deferrable-toggle",
        users() + ORDERS.format(fk=""),
        users() + ORDERS.format(fk=', deferrable=True, initially="DEFERRED"'),
        note="Atlas sees no change; corrected with ALTER CONSTRAINT",
    ),
    Scenario("fk-self-referencing", users(), users('Column("manager_id", ForeignKey("users.id"))')),
    Scenario(
        "fk-circular",
        users(),
        users(
            'Column("best_order_id", Integer)',
            'ForeignKeyConstraint(["best_order_id"], ["orders.id"], use_alter=True, name="fk_users_best_order")',
        )
        + ORDERS.format(fk=""),
    ),
    Scenario(
        "index-partial",
        users('Column("active", Boolean)'),
        users('Column("active", Boolean)', 'Index("ix_users_active_email", "email", postgresql_where=text("active"))'),
    ),
    Scenario("index-expression", users(), users('Index("ix_users_lower_email", func.lower(text("email")))')),
    Scenario("index-unique", users(), users('Index("ix_users_email", "email", unique=True)')),
    Scenario(
        "index-include-nulls-not-distinct",
        users('Column("name", String(50))'),
        users(
            'Column("name", String(50))',
            'Index("ix_users_email_incl", "email", unique=True, postgresql_include=["name"], '
            "postgresql_nulls_not_distinct=True)",
        ),
    ),
    Scenario(
        "identity-always",
        users(),
        users()
        + """
events = Table("events", metadata, Column("id", BigInteger, Identity(always=True), primary_key=True), Column("kind", Text))
""",
    ),
    Scenario(
        "identity-by-default",
        users(),
        users()
        + """
events = Table("events", metadata, Column("id", BigInteger, Identity(always=False, start=100), primary_key=True), Column("kind", Text))
""",
    ),
    Scenario(
        "computed-column",
        users(),
        users('Column("email_domain", Text, Computed("split_part(email, \'@\', 2)", persisted=True))'),
    ),
    Scenario(
        "comments", users(), users('Column("name", String(50), comment="display name")', 'comment="people who log in"')
    ),
    Scenario(
        "jsonb-array-uuid-inet",
        users(),
        users(
            'Column("prefs", JSONB, server_default=text("\'{}\'::jsonb"))',
            'Column("tags", ARRAY(Text))',
            'Column("external_id", UUID(as_uuid=True))',
            'Column("last_ip", INET)',
        ),
    ),
    Scenario(
        "several-schemas",
        users(),
        users()
        + """
invoices = Table("invoices", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("total", Numeric(12, 2), nullable=False),
    schema="billing")
""",
    ),
    Scenario("view", users(), users() + VIEW.format(n=0), note="Atlas ignores views; copied from schema.sql"),
    Scenario(
        "view-changed",
        users() + VIEW.format(n=0),
        users() + VIEW.format(n=10),
        expect="refused",
        note="a view changed: refused, write it by hand",
    ),
    Scenario(
        "standalone-sequence",
        users(),
        users()
        + """
invoice_seq = Sequence("invoice_number_seq", start=1000, metadata=metadata)
bills = Table("bills", metadata, Column("id", Integer, primary_key=True),
    Column("number", BigInteger, invoice_seq, server_default=invoice_seq.next_value(), nullable=False))
""",
        note="Atlas ignores the sequence; it is created and the default pointed at it",
    ),
    Scenario(
        "sequence-start-changed",
        users()
        + """
invoice_seq = Sequence("invoice_number_seq", start=1000, metadata=metadata)
""",
        users()
        + """
invoice_seq = Sequence("invoice_number_seq", start=5000, increment=10, metadata=metadata)
""",
        note="Atlas ignores sequences; corrected with ALTER SEQUENCE",
    ),
    Scenario(
        "trigger-and-function",
        users(),
        users() + TRIGGER,
        note="Atlas ignores functions and triggers; copied from schema.sql",
    ),
    Scenario(
        "extension-citext",
        users(),
        users()
        + """
event.listen(metadata, "before_create", DDL("CREATE EXTENSION IF NOT EXISTS citext"))
handles = Table("handles", metadata, Column("id", Integer, primary_key=True), Column("handle", CITEXT, nullable=False, unique=True))
""",
        note="Atlas ignores extensions; CREATE EXTENSION is put first",
    ),
]
