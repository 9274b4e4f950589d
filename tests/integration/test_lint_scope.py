"""Atlas's lint inspects only the pending files its analyzers can report on (tools/lintscope.py):
proven here against the real Atlas, and with every guard of the apply kept."""

from __future__ import annotations

import pytest

from tests.conftest import running_project
from tests.integration.test_apply_safety import add_files
from tests.unit.test_lintscope import CREATIONS

pytestmark = pytest.mark.integration

# The creations of the unit test, made to run on this project's schema (after its migrations).
RUNNABLE = [
    'CREATE TABLE "public"."t" ("id" integer NOT NULL, PRIMARY KEY ("id"));\n',
    "CREATE SCHEMA s;\nCREATE TABLE s.child (id int REFERENCES public.t (id));\n",
    "CREATE SCHEMA reporting;\n",
    "CREATE TYPE mood AS ENUM ('sad', 'ok');\n",
    "CREATE TYPE pair AS (a int, b int);\n",
    "CREATE DOMAIN positive AS int CHECK (VALUE > 0);\n",
    "CREATE SEQUENCE seq_x;\n",
    "CREATE EXTENSION IF NOT EXISTS citext;\n",
    "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n",
    "CREATE VIEW v AS SELECT 1 AS one;\n",
    "CREATE TRIGGER t BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION f();\n",
    "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("lintscope"), apply=True) as p:
        yield p


def remove(p, names: list[str]) -> None:
    for name in names:
        (p.root / "migrations" / name).unlink()
    add_files(p)  # re-hash


def atlas_lint(p, latest: int):
    from tools.atlaslint import lint
    from tools.config import Config

    return lint(Config.load(p.root, environ=p.env), latest=latest)


def test_atlas_reports_nothing_on_the_statements_counted_as_creations(project):
    from tools.lintscope import creates_only

    assert len(RUNNABLE) == len(CREATIONS) and all(map(creates_only, RUNNABLE))
    names = add_files(project, *RUNNABLE)
    try:
        report = atlas_lint(project, latest=len(names))  # every statement inspected
        assert report.findings == [] and report.errors == [], report.finding_lines()
    finally:
        remove(project, names)


def test_a_batch_is_still_refused_before_anything_runs_when_a_creation_does_not_run(project):
    p = project
    names = add_files(
        p,
        "CREATE TABLE ok_one (id int);\n",
        "CREATE TABLE broken (id int REFERENCES no_such_table (id));\n",
        "CREATE TABLE ok_two (id int);\n",
    )
    try:
        refused = p.inv("migrate.apply")
        assert refused.returncode == 1, refused.stdout
        assert "a pending migration does not run" in refused.stderr and names[1] in refused.stderr
        assert "nothing was applied" in refused.stderr
        status = p.inv("migrate.status")
        assert status.returncode == 2 and "3 pending" in status.stdout, status.stdout
    finally:
        remove(p, names)


def test_findings_in_a_later_file_are_still_reported_after_creations(project):
    p = project
    names = add_files(
        p,
        "CREATE TABLE fresh (id int);\n",
        'ALTER TABLE "public"."customers" DROP COLUMN "full_name";\n',
        "CREATE TABLE fresh_two (id int);\n",
    )
    try:
        dry = p.inv("migrate.apply", "--dry-run")
        assert "DS103" in dry.stdout and names[1] in dry.stdout, dry.stdout
    finally:
        remove(p, names)
