"""`inv migrate.down`: back to an earlier version with a computed, verified plan, and forward again.

The issue's scenario on a copy of the project (real PostgreSQL 15 clusters, the real Atlas):
three migrations applied to local, rows in them; a down by one step previews and refuses the
data loss, then with --allow-destructive returns local to the version-2 catalog; status shows
the third file pending and migrate.apply brings it back.
"""

from __future__ import annotations

import pytest

from tests import helpers
from tests.conftest import running_project

pytestmark = pytest.mark.integration

SECOND = "29990101000001_notes.sql"
THIRD = "29990101000002_note_priority.sql"
FILES = {
    SECOND: 'CREATE TABLE "public"."notes" ("id" bigserial NOT NULL, "body" text NOT NULL, '
    'CONSTRAINT "pk_notes" PRIMARY KEY ("id"));\n',
    THIRD: 'ALTER TABLE "public"."notes" ADD COLUMN "priority" integer NULL;\n',
}


@pytest.fixture
def project(tmp_path):
    """Local at version 3 (the initial migration, SECOND, THIRD) with rows; the catalogs of
    versions 2 and 3 as local had them."""
    with running_project(tmp_path, apply=True) as p:
        catalogs = {}
        for name, text in FILES.items():
            p.write(f"migrations/{name}", text)
            assert p.inv("migrate.hash").returncode == 0
            applied = p.inv("migrate.apply")
            assert applied.returncode == 0, applied.stderr
            catalogs[name] = helpers.catalog(p.env["DATABASE_URL"])
        sql(p, "INSERT INTO notes (body, priority) VALUES ('call back', 1), ('ship it', 2), ('later', NULL)")
        p.catalogs = catalogs
        yield p


def sql(p, *statements: str) -> list[tuple]:
    return helpers.sql(p.env["DATABASE_URL"], *statements)


def revisions(p) -> list[tuple]:
    return sql(p, "SELECT version FROM atlas_schema_revisions.atlas_schema_revisions ORDER BY version")


def test_down_one_step_refuses_the_data_loss_then_goes_back_and_apply_comes_forward(project):
    p = project
    at_three, versions_at_three = helpers.catalog(p.env["DATABASE_URL"]), revisions(p)
    assert at_three == p.catalogs[THIRD]

    refused = p.inv("migrate.down", "--env", "local", "--steps", "1")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"local: down from 29990101000002 to 29990101000001 undoes 1 file(s): {THIRD}" in refused.stdout
    assert 'ALTER TABLE "public"."notes" DROP COLUMN "priority";' in refused.stdout  # the preview
    assert "data loss: column public.notes.priority holds 2 row(s)" in refused.stdout
    assert "hazard: " in refused.stdout and "ban-drop-column" in refused.stdout
    assert "error: the plan deletes or rewrites data" in refused.stderr and "--allow-destructive" in refused.stderr
    assert helpers.catalog(p.env["DATABASE_URL"]) == at_three and revisions(p) == versions_at_three

    dry = p.inv("migrate.down", "--steps", "1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "local: dry run, nothing changed" in dry.stdout
    assert helpers.catalog(p.env["DATABASE_URL"]) == at_three and revisions(p) == versions_at_three

    done = p.inv("migrate.down", "--env", "local", "--steps", "1", "--allow-destructive")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "local: back at 29990101000001" in done.stdout
    assert helpers.catalog(p.env["DATABASE_URL"]) == p.catalogs[SECOND]  # the version-2 catalog
    assert sql(p, "SELECT count(*) FROM notes") == [(3,)]  # the table it keeps keeps its rows

    status = p.inv("migrate.status")
    assert status.returncode == 2
    total = len(list((p.root / "migrations").glob("*.sql")))
    assert f"local: PENDING; current version 29990101000001; {total - 1} applied, 1 pending of {total}" in status.stdout
    assert f"  pending {THIRD}" in status.stdout

    forward = p.inv("migrate.apply")
    assert forward.returncode == 0, forward.stderr
    assert f"applied {THIRD}" in forward.stdout
    assert helpers.catalog(p.env["DATABASE_URL"]) == at_three
    assert [v for (v,) in revisions(p)] == [v for (v,) in versions_at_three]


def test_down_to_a_version_drops_what_came_after(project):
    p = project
    initial = sorted(x.name for x in (p.root / "migrations").glob("*.sql"))[-3].split("_", 1)[0]  # before SECOND
    done = p.inv("migrate.down", "--to", initial, "--allow-destructive")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"undoes 2 file(s): {THIRD}, {SECOND}" in done.stdout
    assert 'DROP TABLE "public"."notes";' in done.stdout
    assert "data loss: table public.notes holds 3 row(s)" in done.stdout
    assert sql(p, "SELECT to_regclass('public.notes')") == [(None,)]
    assert [v for (v,) in revisions(p)][-1] == initial  # the versions up to it


def test_a_plan_that_fails_on_the_target_changes_nothing(project):
    """A lock held on the table: the plan's statement times out; the transaction and the recorded
    version stay as they were."""
    import psycopg

    from tools.urls import libpq_url

    p = project
    before, versions = helpers.catalog(p.env["DATABASE_URL"]), revisions(p)
    with psycopg.connect(libpq_url(p.env["DATABASE_URL"], "x")) as holder:
        holder.execute("LOCK TABLE notes IN ACCESS SHARE MODE")  # held until the end of the block
        proc = p.inv("migrate.down", "--steps", "1", "--allow-destructive", extra_env={"TABLE_LOCK_TIMEOUT": "500ms"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: the plan on local (rolled back, nothing changed) fails at" in proc.stderr
    assert "lock timeout" in proc.stderr
    assert helpers.catalog(p.env["DATABASE_URL"]) == before and revisions(p) == versions


def test_a_protected_environment_sees_the_plan_then_types_its_name(project):
    p = project
    helpers.sql(p.env["DATABASE_URL"], 'CREATE DATABASE "prod"', dbname="postgres")  # never local's own database
    prod_url = p.env["DATABASE_URL"].replace("/app?", "/prod?")
    prod = {"PRODUCTION_DATABASE_URL": prod_url}
    assert p.inv("migrate.apply", "--env", "production", "--yes", extra_env=prod).returncode == 0
    at_three = helpers.catalog(prod_url)
    args = ("migrate.down", "--env", "production", "--steps", "1")

    no_terminal = p.inv(*args, extra_env=prod)
    assert no_terminal.returncode == 1
    assert "error: production is a protected environment and there is no terminal to confirm" in no_terminal.stderr
    assert 'ALTER TABLE "public"."notes" DROP COLUMN "priority";' in no_terminal.stderr  # the plan came first
    wrong = p.inv_on_terminal(*args, typed="prod", extra_env=prod)
    assert wrong.returncode == 1
    assert f"  {THIRD}\nGo back to 29990101000001 on production? Type the environment name" in wrong.stdout
    assert "not confirmed; nothing was changed on production" in wrong.stderr
    assert helpers.catalog(prod_url) == at_three

    right = p.inv_on_terminal(*args, typed="production", extra_env=prod)
    assert right.returncode == 0, right.stderr
    assert "production: back at 29990101000001" in right.stdout
    assert helpers.catalog(prod_url) == p.catalogs[SECOND]


def test_a_plan_that_cannot_restore_the_schema_is_refused_naming_what_stays(project):
    """Atlas v0.13.1 does not see views: its plan would leave this one behind. Refused before the
    target is touched, naming the view."""
    p = project
    p.write(
        "migrations/29990101000003_note_view.sql", 'CREATE VIEW "public"."note_bodies" AS SELECT body FROM notes;\n'
    )
    assert p.inv("migrate.hash").returncode == 0
    assert p.inv("migrate.apply").returncode == 0
    before, versions = helpers.catalog(p.env["DATABASE_URL"]), revisions(p)
    refused = p.inv("migrate.down", "--steps", "1", "--allow-destructive")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert (
        "error: the plan does not return the schema to 29990101000002 (1 difference(s)): view public.note_bodies: "
        "only in the plan's result"
    ) in refused.stderr
    assert "inv migrate.new" in refused.stderr
    assert helpers.catalog(p.env["DATABASE_URL"]) == before and revisions(p) == versions


def _atlas_lock_key() -> int:
    """The advisory lock Atlas's migrate commands take (FNV-1 32 of its name, sql/postgres Lock)."""
    key = 2166136261
    for byte in b"atlas_migrate_execute":
        key = (key * 16777619) & 0xFFFFFFFF
        key ^= byte
    return key


def test_a_version_that_cannot_be_recorded_rolls_the_plan_back(project):
    """Atlas's own migrate lock held elsewhere: `atlas migrate set` fails after the plan ran in the
    open transaction; the schema and the revision table stay as they were."""
    import psycopg

    from tools.urls import libpq_url

    p = project
    before, versions = helpers.catalog(p.env["DATABASE_URL"]), revisions(p)
    with psycopg.connect(libpq_url(p.env["DATABASE_URL"], "x"), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (_atlas_lock_key(),))
        proc = p.inv("migrate.down", "--steps", "1", "--allow-destructive")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: recording version 29990101000001 failed (" in proc.stderr
    assert "the plan was rolled back, nothing changed" in proc.stderr
    assert helpers.catalog(p.env["DATABASE_URL"]) == before and revisions(p) == versions
