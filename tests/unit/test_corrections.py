"""Corrections planned from catalog differences, and the desired state handed to Atlas."""

from __future__ import annotations

from tools.catalog import Difference, diff
from tools.corrections import plan_details, plan_ignored
from tools.schema_statements import desired_state_for_atlas, idempotent, ignored_statements


def snap(**kinds):
    return {
        k: kinds.get(k, {})
        for k in (
            "schema",
            "table",
            "column",
            "constraint",
            "index",
            "enum",
            "sequence",
            "view",
            "function",
            "trigger",
            "extension",
            "domain",
            "composite",
            "policy",
        )
    }


def test_primary_key_rename():
    replayed = snap(
        constraint={"public.users.users_pkey": {"type": "p", "definition": "PRIMARY KEY (id)", "comment": None}},
        index={"public.users_pkey": {"table": "users", "definition": "x", "backs_constraint": True, "comment": None}},
    )
    models = snap(
        constraint={"public.users.pk_users": {"type": "p", "definition": "PRIMARY KEY (id)", "comment": None}},
        index={"public.pk_users": {"table": "users", "definition": "y", "backs_constraint": True, "comment": None}},
    )
    plan = plan_details(replayed, models, diff(replayed, models))
    assert plan.after == ['ALTER TABLE "public"."users" RENAME CONSTRAINT "users_pkey" TO "pk_users";']
    assert plan.unfixable == []


def test_unique_index_becomes_the_declared_constraint():
    idx = {
        "table": "users",
        "definition": "CREATE UNIQUE INDEX uq_users_email ON public.users USING btree (email)",
        "comment": None,
    }
    replayed = snap(index={"public.uq_users_email": {**idx, "backs_constraint": False}})
    models = snap(
        constraint={"public.users.uq_users_email": {"type": "u", "definition": "UNIQUE (email)", "comment": None}},
        index={"public.uq_users_email": {**idx, "backs_constraint": True}},
    )
    plan = plan_details(replayed, models, diff(replayed, models))
    assert plan.after == [
        'ALTER TABLE "public"."users" ADD CONSTRAINT "uq_users_email" UNIQUE USING INDEX "uq_users_email";'
    ]


def test_fk_deferrability_and_check_change():
    fk = "FOREIGN KEY (user_id) REFERENCES users(id)"
    replayed = snap(
        constraint={
            "public.orders.fk": {"type": "f", "definition": fk, "comment": None},
            "public.users.ck_age": {"type": "c", "definition": "CHECK ((age >= 0))", "comment": None},
        }
    )
    models = snap(
        constraint={
            "public.orders.fk": {"type": "f", "definition": fk + " DEFERRABLE INITIALLY DEFERRED", "comment": None},
            "public.users.ck_age": {"type": "c", "definition": "CHECK ((age >= 18))", "comment": None},
        }
    )
    plan = plan_details(replayed, models, diff(replayed, models))
    assert plan.after == [
        'ALTER TABLE "public"."orders" ALTER CONSTRAINT "fk" DEFERRABLE INITIALLY DEFERRED;',
        'ALTER TABLE "public"."users" DROP CONSTRAINT "ck_age";',
        'ALTER TABLE "public"."users" ADD CONSTRAINT "ck_age" CHECK ((age >= 18));',
    ]


def test_unknown_difference_is_unfixable():
    d = Difference("column", "public.users.email", "collation", None, "C")
    plan = plan_details(snap(), snap(), [d])
    assert plan.after == [] and plan.unfixable == [str(d)]


SCHEMA = """CREATE EXTENSION IF NOT EXISTS citext;
CREATE SEQUENCE invoice_seq START WITH 1000;
CREATE TABLE t (id int DEFAULT nextval('invoice_seq'));
CREATE VIEW v AS SELECT id FROM t;
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
"""


def test_ignored_statements_are_found_by_the_parser():
    kinds = [(s.kind, s.name) for s in ignored_statements(SCHEMA)]
    assert kinds == [
        ("extension", "citext"),
        ("sequence", "public.invoice_seq"),
        ("view", "public.v"),
        ("domain", "public.positive"),
    ]


def test_desired_state_drops_dependants_and_makes_dependencies_idempotent():
    text = desired_state_for_atlas(SCHEMA)
    assert "CREATE VIEW" not in text
    assert "CREATE SEQUENCE IF NOT EXISTS invoice_seq" in text
    assert "CREATE TABLE t" in text
    assert "EXCEPTION WHEN duplicate_object" in text


def test_idempotent_leaves_other_statements_alone():
    assert idempotent("CREATE VIEW v AS SELECT 1;") == "CREATE VIEW v AS SELECT 1;"


def test_plan_ignored_copies_missing_and_refuses_changed():
    models = snap(
        view={"public.v": {"kind": "v", "definition": "SELECT 2", "comment": None}},
        sequence={"public.invoice_seq": {"start": 1000, "owned_by": None}},
        extension={"citext": {"schema": "public"}},
        domain={"public.positive": {}},
    )
    history = snap(view={"public.v": {"kind": "v", "definition": "SELECT 1", "comment": None}})
    plan = plan_ignored(history, models, SCHEMA)
    assert plan.before[0] == "CREATE EXTENSION IF NOT EXISTS citext;"
    assert any("invoice_seq" in s for s in plan.before)
    assert len(plan.unfixable) == 1 and plan.unfixable[0].startswith("view public.v changed in the models")
