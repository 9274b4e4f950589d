"""tools/lintscope.py: only statements proven to create new objects shrink Atlas's lint window."""

from __future__ import annotations

import pytest

from tools.lintscope import creates_only, window

CREATIONS = [
    'CREATE TABLE "public"."t" ("id" integer NOT NULL, PRIMARY KEY ("id"));',
    "CREATE TABLE s.child (id int REFERENCES public.parent (id));",
    "CREATE SCHEMA reporting;",
    "CREATE TYPE mood AS ENUM ('sad', 'ok');",
    "CREATE TYPE pair AS (a int, b int);",
    "CREATE DOMAIN positive AS int CHECK (VALUE > 0);",
    "CREATE SEQUENCE seq_x;",
    "CREATE EXTENSION IF NOT EXISTS citext;",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
    "CREATE VIEW v AS SELECT 1 AS one;",
    "CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f();",
    "-- atlas:txmode none\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);",
]

OTHERS = [
    "ALTER TABLE t ADD COLUMN c int;",
    "ALTER TABLE t DROP COLUMN c;",
    "DROP TABLE t;",
    "CREATE INDEX i ON t (c);",
    "CREATE UNIQUE INDEX CONCURRENTLY i ON t (c);",
    "CREATE OR REPLACE VIEW v AS SELECT 2 AS one;",
    "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';",
    "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);",
    "CREATE TABLE c1 () INHERITS (p);",
    "ALTER TABLE t RENAME TO u;",
    "INSERT INTO t VALUES (1);",
    "COMMENT ON TABLE t IS 'x';",
    "CREATE TABLE ok (id int); ALTER TABLE old ADD COLUMN x int;",
    "this is not SQL",
]


@pytest.mark.parametrize("sql", CREATIONS)
def test_creations(sql):
    assert creates_only(sql)


@pytest.mark.parametrize("sql", OTHERS)
def test_anything_else_is_inspected(sql):
    assert not creates_only(sql)


def test_the_window_starts_at_the_first_file_that_is_not_a_creation(tmp_path):
    def files(*bodies):
        out = []
        for i, body in enumerate(bodies):
            path = tmp_path / f"{i}.sql"
            path.write_text(body)
            out.append(path)
        return out

    create, alter = CREATIONS[0], OTHERS[0]
    assert window(files(create, create, create)) == 1  # Atlas still runs them all as its base
    assert window(files(create, alter, create)) == 2
    assert window(files(alter, create, create)) == 3
    assert window([]) == 0
