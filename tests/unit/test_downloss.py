"""tools/downloss.py: what a down drops or rewrites, from structured names (a name may hold a dot)."""

from __future__ import annotations

from tools import downloss
from tools.downloss import Layout, Loss


def test_dotted_names_are_never_split():
    before = Layout(
        {("public", "customers"), ("public", "audit.log")},
        {
            ("public", "customers", "id"): "bigint",
            ("public", "customers", "legacy.id"): "text",
            ("public", "audit.log", "at"): "timestamp with time zone",
        },
    )
    after = Layout({("public", "customers")}, {("public", "customers", "id"): "bigint"})
    risks = downloss.risks(before, after)
    assert risks.tables == [("public", "audit.log")]
    assert risks.columns == [("public", "customers", "legacy.id")]  # its table stays: a column dropped
    assert risks.changed == []
    assert risks.locked == [("public", "audit.log"), ("public", "customers")]
    count = downloss._count(("public", "audit.log"), "legacy.id").as_string(None)
    assert 'FROM "public"."audit.log" WHERE "legacy.id" IS NOT NULL' in count


def test_a_type_the_plan_changes_is_a_risk_named_with_both_types():
    before = Layout({("public", "t")}, {("public", "t", "amount"): "numeric(14,4)", ("public", "t", "n"): "integer"})
    after = Layout({("public", "t")}, {("public", "t", "amount"): "numeric(12,2)", ("public", "t", "n"): "integer"})
    risks = downloss.risks(before, after)
    assert risks.changed == [(("public", "t", "amount"), "numeric(14,4)", "numeric(12,2)")]
    assert risks.locked == [("public", "t")]
    loss = Loss(f"column {downloss.display('public', 't', 'amount')}", 3, "numeric(14,4) -> numeric(12,2)")
    assert loss.line() == (
        "data loss: column public.t.amount: numeric(14,4) -> numeric(12,2) on 3 row(s): values may be rounded or "
        "rejected"
    )


def test_a_name_is_quoted_for_display_only_when_it_needs_it():
    assert downloss.display("public", "notes", "priority") == "public.notes.priority"
    assert downloss.display("public", "audit.log") == 'public."audit.log"'
    assert downloss.display("public", "Customers", "legacy.id") == 'public."Customers"."legacy.id"'
    assert Loss("table public.notes", 2).line() == "data loss: table public.notes holds 2 row(s)"
