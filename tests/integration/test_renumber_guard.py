"""`inv migrate.renumber` moves only a file nobody has: never one on main, never an applied one."""

from __future__ import annotations

import pytest

from tests import helpers
from tests.integration.test_workflow import psql

pytestmark = pytest.mark.integration


def add(p, name: str, table: str) -> None:
    (p.root / "migrations" / name).write_text(f'CREATE TABLE "public"."{table}" (id int);\n')
    assert p.inv("migrate.hash").returncode == 0


def snapshot(p) -> dict[str, str]:
    return helpers.migration_files(p.root)


def refused(p, name: str, fragment: str, extra_env=None) -> None:
    before = snapshot(p)
    proc = p.inv("migrate.renumber", "--file", name, extra_env=extra_env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")] and fragment in proc.stderr, proc.stderr
    assert snapshot(p) == before


def test_applied_or_merged_files_are_never_renumbered(local_project):
    p = local_project
    assert p.inv("db.up").returncode == 0
    add(p, "29990101000002_a.sql", "a")
    assert p.inv("migrate.apply").returncode == 0
    add(p, "29990101000003_b.sql", "b")
    refused(p, "29990101000002_a.sql", "29990101000002_a.sql is recorded as applied in local")

    # staging (another database) has b; local does not
    psql(p, "CREATE DATABASE staging_db")
    staging = {"STAGING_DATABASE_URL": p.env["DATABASE_URL"].replace("/app?", "/staging_db?")}
    assert p.inv("migrate.apply", "--env", "staging", "--yes", extra_env=staging).returncode == 0
    add(p, "29990101000004_c.sql", "c")
    refused(p, "29990101000003_b.sql", "29990101000003_b.sql is recorded as applied in staging", extra_env=staging)

    # on main: committed there, applied nowhere
    add(p, "29990101000001_d.sql", "d")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "x"], ["checkout", "-qb", "feature"]):
        assert p.run(git + args).returncode == 0
    refused(p, "29990101000001_d.sql", "29990101000001_d.sql is on main")

    # a file nobody has moves; an unreachable environment is named as not checked
    add(p, "29990101000000_e.sql", "e")
    moved = p.inv(
        "migrate.renumber",
        "--file",
        "29990101000000_e.sql",
        extra_env={**staging, "PRODUCTION_DATABASE_URL": "postgres://u:pw@127.0.0.1:9/db?sslmode=disable"},
    )
    assert moved.returncode == 0, moved.stderr
    assert "-> 29990101000005_e.sql" in moved.stdout
    assert "note: production not checked" in moved.stderr
    assert (
        psql(p, "SELECT count(*) FROM atlas_schema_revisions.atlas_schema_revisions WHERE version = '29990101000002'")
        == "1"
    )
