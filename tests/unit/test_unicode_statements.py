"""Statements of schema.sql are cut at the right place whatever Unicode the models hold."""

from __future__ import annotations

import pglast
import pytest

from tools.schema_statements import _text_of, desired_state_for_atlas, ignored_statements

TEXTS = ["Réservé ✓ 注文", "heureux ☺", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀", "plain"]


@pytest.mark.parametrize("text", TEXTS)
def test_each_statement_is_cut_whole(text):
    sql = (
        f"CREATE TYPE \"public\".\"mood\" AS ENUM ('{text}', 'b');\n\n"
        f'CREATE TABLE "t" (id int);\n\n'
        f"COMMENT ON TABLE \"t\" IS '{text}';\n\n"
        f"CREATE VIEW \"v\" AS SELECT '{text}' AS x;\n\n"
        f'CREATE SEQUENCE "s";\n'
    )
    texts = [_text_of(sql, raw) for raw in pglast.parse_sql(sql)]
    assert texts == [s.strip() + ";" for s in sql.split(";") if s.strip()]
    assert [st.kind for st in ignored_statements(sql)] == ["view", "sequence"]
    assert f"'{text}'" in ignored_statements(sql)[0].sql
    out = desired_state_for_atlas(sql)
    assert f"ENUM ('{text}', 'b');" in out and f"IS '{text}';" in out and "VIEW" not in out
