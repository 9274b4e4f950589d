"""Pre-conditions on a real PostgreSQL 15 and the real Atlas: `migrations/checks/<version>.sql`
runs before anything is applied, refuses naming the check, shows in --dry-run, and stays
invisible to Atlas (atlas.sum, validate)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests import helpers
from tests.conftest import atlas_binary, running_project

pytestmark = pytest.mark.integration

MARKER = "29990101000001_marker.sql"
NOT_NULL = "29990101000002_placed_at_not_null.sql"
CHECKS = """-- every order has been placed
SELECT NOT EXISTS (SELECT 1 FROM orders WHERE placed_at IS NULL);
-- customers exist at all
SELECT count(*) > 0 FROM customers;
"""


@pytest.fixture
def project(tmp_path):
    with running_project(tmp_path, apply=True) as p:
        yield p


def atlas(p, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [atlas_binary(), *args], cwd=p.root, env={**os.environ, **p.env}, capture_output=True, text=True
    )


def add_pending(p, checks: dict[str, str]) -> None:
    """Two pending files (a marker table, then SET NOT NULL) and the given checks files."""
    (p.root / "migrations" / MARKER).write_text('CREATE TABLE "public"."marker" (id int);\n')
    (p.root / "migrations" / NOT_NULL).write_text(
        'ALTER TABLE "public"."orders" ALTER COLUMN "placed_at" SET NOT NULL;\n'
    )
    (p.root / "migrations" / "checks").mkdir(exist_ok=True)
    for name, text in checks.items():
        (p.root / "migrations" / "checks" / name).write_text(text)
    hashed = atlas(p, "migrate", "hash", "--env", "sqlalchemy")
    assert hashed.returncode == 0, hashed.stderr


def sql(p, *statements: str):
    return helpers.sql(p.env["DATABASE_URL"], *statements)


def revisions(p) -> list[str]:
    rows = sql(p, "SELECT version FROM atlas_schema_revisions.atlas_schema_revisions ORDER BY version")
    return [r[0] for r in rows]


def place_an_order(p, placed: bool) -> None:
    sql(
        p,
        "INSERT INTO customers (email, full_name) VALUES ('a@example.com', 'A')",
        "INSERT INTO orders (customer_id, placed_at) SELECT id, " + ("now()" if placed else "NULL") + " FROM customers",
    )


def test_a_failing_check_refuses_the_whole_batch_then_a_passing_one_applies(project):
    p = project
    add_pending(p, {"29990101000002.sql": CHECKS})
    place_an_order(p, placed=False)
    before, versions = helpers.catalog(p.env["DATABASE_URL"]), revisions(p)

    refused = p.inv("migrate.apply")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: a pre-condition does not hold on local, nothing was applied: migrations/checks/29990101000002.sql "
        "check 1 (line 2): every order has been placed -> returned false, not true: fix the data (or the check) "
        "first; inv migrate.apply --env local --dry-run shows every check"
    ]
    # nothing of the batch ran, not even the file before the guarded one
    assert helpers.catalog(p.env["DATABASE_URL"]) == before and revisions(p) == versions

    dry = p.inv("migrate.apply", "--dry-run")
    assert dry.returncode == 1, dry.stderr  # the real apply would refuse: so does the preview
    assert (
        "pre-condition FAILED: migrations/checks/29990101000002.sql check 1 (line 2): every order has been placed "
        "-> returned false, not true" in dry.stdout
    )
    assert (
        "pre-condition passed: migrations/checks/29990101000002.sql check 2 (line 4): customers exist at all -> true"
        in dry.stdout
    )
    assert helpers.catalog(p.env["DATABASE_URL"]) == before and revisions(p) == versions

    sql(p, "UPDATE orders SET placed_at = now()")
    applied = p.inv("migrate.apply", "--allow-destructive")  # Atlas's MF104 (SET NOT NULL) still asks for it
    assert applied.returncode == 0, applied.stderr
    assert "pre-conditions: 2 check(s) passed before anything ran" in applied.stdout
    assert revisions(p)[-2:] == ["29990101000001", "29990101000002"]
    assert sql(p, "SELECT is_nullable FROM information_schema.columns WHERE column_name = 'placed_at'") == [("NO",)]


def test_checks_run_read_only_and_an_error_is_a_failure(project):
    p = project
    place_an_order(p, placed=True)
    add_pending(
        p,
        {
            "29990101000002.sql": "WITH gone AS (DELETE FROM orders RETURNING 1) SELECT count(*) = 0 FROM gone;\n"
            "SELECT missing_column IS NULL FROM orders;\n",
        },
    )
    orders = sql(p, "SELECT count(*) FROM orders")
    dry = p.inv("migrate.apply", "--dry-run")
    assert dry.returncode == 1, dry.stderr
    assert "SELECT count(*) = 0 FROM gone -> error: cannot execute SELECT in a read-only transaction" in dry.stdout
    assert "read-only transaction" in dry.stdout
    assert 'check 2 (line 2): SELECT missing_column IS NULL FROM orders -> error: column "missing_column"' in dry.stdout
    assert sql(p, "SELECT count(*) FROM orders") == orders
    refused = p.inv("migrate.apply")
    assert refused.returncode == 1 and "(2 of 2 check(s) failed)" in refused.stderr
    assert "marker" not in helpers.catalog(p.env["DATABASE_URL"])


def test_atlas_never_sees_the_checks(project):
    p = project
    add_pending(p, {"29990101000002.sql": CHECKS})
    total = (p.root / "migrations" / "atlas.sum").read_bytes()
    assert b"checks" not in total
    assert atlas(p, "migrate", "hash", "--env", "sqlalchemy").returncode == 0
    assert (p.root / "migrations" / "atlas.sum").read_bytes() == total
    assert atlas(p, "migrate", "validate", "--env", "sqlalchemy").returncode == 0
    validate = p.inv("migrate.validate")
    assert validate.returncode == 0, validate.stdout + validate.stderr
    status = atlas(p, "migrate", "status", "--env", "local", "--format", "{{ json . }}")
    assert status.returncode == 0 and "checks" not in status.stdout and "29990101000002" in status.stdout


def test_checks_for_an_unknown_version_are_refused_before_anything(project):
    p = project
    add_pending(p, {"29990101000009.sql": "SELECT true;\n"})
    before, versions = helpers.catalog(p.env["DATABASE_URL"]), revisions(p)
    for args in (("migrate.apply",), ("migrate.apply", "--dry-run")):
        proc = p.inv(*args)
        assert proc.returncode == 1
        assert proc.stderr.startswith(
            "error: migrations/checks/29990101000009.sql guards version 29990101000009, but no file of migrations/ "
            "has that version"
        ), proc.stderr
    assert helpers.catalog(p.env["DATABASE_URL"]) == before and revisions(p) == versions
    gate = p.inv("migrate.check", "--no-base")  # the CI gate fails on it too (and on the files the models lack: 2)
    assert gate.returncode != 0
    assert "error: migrations/checks/29990101000009.sql guards version 29990101000009" in gate.stdout


def test_a_database_with_nothing_applied_skips_the_checks(tmp_path):
    with running_project(tmp_path) as p:
        (p.root / "migrations" / "checks").mkdir()
        first = sorted(p.root.glob("migrations/*.sql"))[0].name.split("_")[0]
        (p.root / "migrations" / "checks" / f"{first}.sql").write_text("SELECT false;\n")
        applied = p.inv("migrate.apply")
        assert applied.returncode == 0, applied.stderr
        assert "no migration applied yet, so no data to guard: the 1 pre-condition check(s)" in applied.stderr
