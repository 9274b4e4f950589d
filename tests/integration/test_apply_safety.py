"""Applies under pressure: concurrency, SIGKILL, dry runs, drift, destructive changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import helpers
from tests.conftest import assert_no_secret, atlas_binary, running_project

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path):
    with running_project(tmp_path) as p:
        yield p


def add_files(p, *bodies: str) -> list[str]:
    names = []
    for i, body in enumerate(bodies, start=1):
        name = f"{29990101000000 + i}_step{i}.sql"  # fixed width: ten files still sort in order
        (p.root / "migrations" / name).write_text(body)
        names.append(name)
    proc = subprocess.run(
        [atlas_binary(), "migrate", "hash", "--env", "sqlalchemy"],
        cwd=p.root,
        env={**os.environ, **p.env},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return names


def query(p, sql: str, dbname: str = "app"):
    return helpers.sql(p.env["DATABASE_URL"], sql, dbname=dbname)


def snapshot(p) -> str:
    return helpers.catalog(p.env["DATABASE_URL"])


def test_eight_concurrent_applies_apply_each_file_once(project):
    p = project
    names = add_files(
        p,
        *[f'CREATE TABLE "public"."t{i}" (id int);\nINSERT INTO "public"."t{i}" VALUES ({i});\n' for i in range(1, 5)],
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: p.inv("migrate.apply", "--lock-timeout", "180s"), range(8)))
    for r in results:
        assert r.returncode == 0, r.stderr
    applied = [line for r in results for line in r.stdout.splitlines() if line.startswith("applied ")]
    files = len(list((p.root / "migrations").glob("*.sql")))  # the project's own files + the 4 names
    assert len(applied) == files and all(any(name in line for line in applied) for name in names), applied
    rows = query(p, "SELECT version, count(*) FROM atlas_schema_revisions.atlas_schema_revisions GROUP BY version")
    assert all(count == 1 for _, count in rows) and len(rows) == files
    for i in range(1, 5):
        assert query(p, f'SELECT count(*) FROM "public"."t{i}"') == [(1,)]


def _wait_for(p, needle: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(needle in (q or "") for (q,) in query(p, "SELECT query FROM pg_stat_activity")):
            return
        time.sleep(0.05)
    raise AssertionError(f"{needle} never ran")


def test_sigkill_mid_file_leaves_no_partial_file(project):
    p = project
    assert p.inv("migrate.apply").returncode == 0
    add_files(
        p,
        'CREATE TABLE "public"."first_done" (id int);\n',
        'CREATE TABLE "public"."half_done" (id int);\nSELECT pg_sleep(3);\nCREATE TABLE "public"."never" (id int);\n',
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "migrate.apply"],
        cwd=p.root,
        env={**os.environ, **p.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for(p, "pg_sleep")
    os.killpg(proc.pid, signal.SIGKILL)  # between the two files' work: mid-way through the second
    proc.communicate(timeout=30)
    time.sleep(3.5)  # the server notices the dead client when the sleep ends, and rolls back
    tables = {t for (t,) in query(p, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert "first_done" in tables
    assert "half_done" not in tables and "never" not in tables
    versions = {v for (v,) in query(p, "SELECT version FROM atlas_schema_revisions.atlas_schema_revisions")}
    assert "29990101000001" in versions and "29990101000002" not in versions
    rerun = p.inv("migrate.apply", "--lock-timeout", "60s")
    assert rerun.returncode == 0, rerun.stderr
    assert "applied 29990101000002_step2.sql" in rerun.stdout
    assert {"half_done", "never"} <= {
        t for (t,) in query(p, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }


def test_dry_run_changes_nothing_not_even_the_revision_table(project):
    p = project
    before = snapshot(p)  # empty database: no revision table yet
    dry = p.inv("migrate.apply", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "pending file(s) (dry run, nothing applied)" in dry.stdout
    assert 'CREATE TABLE "public"."customers"' in dry.stdout
    assert snapshot(p) == before
    assert query(p, "SELECT count(*) FROM pg_namespace WHERE nspname = 'atlas_schema_revisions'") == [(0,)]


def test_drift_is_listed_and_blocks_apply(project):
    p = project
    assert p.inv("migrate.apply").returncode == 0
    assert p.inv("migrate.drift").returncode == 0
    query(p, 'ALTER TABLE "public"."customers" ADD COLUMN "hotfix" text')
    drift = p.inv("migrate.drift")
    assert drift.returncode == 2
    assert "drift: column public.customers.hotfix: only in the local database" in drift.stdout
    add_files(p, 'CREATE TABLE "public"."later" (id int);\n')
    refused = p.inv("migrate.apply")
    assert refused.returncode == 1 and "has drifted from its migrations" in refused.stderr
    assert p.inv("migrate.apply", "--ignore-drift").returncode == 0


def test_destructive_change_needs_allow_destructive(project):
    p = project
    assert p.inv("migrate.apply").returncode == 0
    query(p, "INSERT INTO customers (email, full_name) VALUES ('a@example.com', 'A')")
    add_files(p, 'ALTER TABLE "public"."customers" DROP COLUMN "full_name";\n')
    dry = p.inv("migrate.apply", "--dry-run")
    assert "destructive:" in dry.stdout and "DS103" in dry.stdout
    refused = p.inv("migrate.apply")
    assert refused.returncode == 1 and "destructive change(s) pending" in refused.stderr
    assert p.inv("migrate.apply", "--allow-destructive").returncode == 0
    assert query(p, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'full_name'") == [(0,)]


def test_lock_safety_findings_name_the_safe_alternative(project):
    p = project
    assert p.inv("migrate.apply").returncode == 0
    add_files(p, 'CREATE INDEX "ix_customers_full_name" ON "public"."customers" ("full_name");\n')
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0, applied.stderr
    assert "require-concurrent-index-creation" in applied.stderr and "concurrently" in applied.stderr.lower()


def test_failed_statement_names_file_and_statement(project):
    p = project
    assert p.inv("migrate.apply").returncode == 0
    query(p, "INSERT INTO customers (email, full_name) VALUES ('dup@example.com', 'A')")
    # runs on the empty dev database, fails on the target's data
    add_files(p, "INSERT INTO customers (email, full_name) VALUES ('dup@example.com', 'B');\n")
    failed = p.inv("migrate.apply")
    assert failed.returncode == 1
    assert "29990101000001_step1.sql failed at statement `INSERT INTO customers" in failed.stderr
    assert "duplicate key" in failed.stderr
    assert_no_secret(failed.stderr)


def test_statement_waiting_for_a_table_lock_gives_up_and_rolls_back(project):
    """An ALTER behind a long transaction stops after the table lock timeout instead of queueing
    every later query on the table; nothing of its file stays; the next apply runs it."""
    import psycopg

    from tools.urls import libpq_url

    p = project
    assert p.inv("migrate.apply").returncode == 0
    add_files(
        p,
        'CREATE TABLE "public"."before_lock" (id int);\n',
        'ALTER TABLE "public"."orders" ADD COLUMN "note" text NULL;\n',
    )
    holder = psycopg.connect(libpq_url(p.env["DATABASE_URL"], "x"))
    try:
        holder.execute("SELECT count(*) FROM orders")  # ACCESS SHARE until the transaction ends
        started = time.monotonic()
        blocked = p.inv("migrate.apply", "--table-lock-timeout", "1s")
        elapsed = time.monotonic() - started
        assert blocked.returncode == 1
        errors = [line for line in blocked.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(
            "error: 29990101000002_step2.sql waited more than 1s for a table lock"
        ), blocked.stderr
        assert "1 earlier file(s) applied" in blocked.stderr and "TABLE_LOCK_TIMEOUT" in blocked.stderr
        assert elapsed < 60  # gave up; did not wait for the holder
        columns = query(
            p, "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'"
        )
        assert columns == []
        assert query(p, "SELECT to_regclass('public.before_lock') IS NOT NULL") == [(True,)]
        status = p.inv("migrate.status")
        assert status.returncode == 2 and "pending 29990101000002_step2.sql" in status.stdout
    finally:
        holder.rollback()
        holder.close()
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0, applied.stderr
    assert query(
        p, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'"
    ) == [(1,)]


def test_concurrent_index_needs_the_txmode_header_and_is_stopped_before_the_batch(project):
    """A file that cannot run in a transaction is refused before any file of the batch runs;
    with Atlas's `-- atlas:txmode none` header the same index builds concurrently."""
    p = project
    assert p.inv("migrate.apply").returncode == 0
    index = 'CREATE INDEX CONCURRENTLY "ix_customers_full_name" ON "public"."customers" ("full_name");\n'
    add_files(p, 'CREATE TABLE "public"."first_of_batch" (id int);\n', index)
    refused = p.inv("migrate.apply")
    assert refused.returncode == 1
    assert "error: a pending migration does not run: 29990101000002_step2.sql" in refused.stderr
    assert "atlas:txmode none" in refused.stderr
    assert query(p, "SELECT to_regclass('public.first_of_batch')") == [(None,)]
    lint = p.inv("migrate.lint")
    assert lint.returncode == 1 and "cannot run as written" in lint.stdout

    add_files(p, 'CREATE TABLE "public"."first_of_batch" (id int);\n', "-- atlas:txmode none\n\n" + index)
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0, applied.stderr
    assert query(
        p, "SELECT indexdef LIKE '%full_name%' FROM pg_indexes WHERE indexname = 'ix_customers_full_name'"
    ) == [(True,)]


def _apply_on_a_terminal(p, typed: str, prod: dict) -> subprocess.CompletedProcess:
    """`migrate.apply --env production` with a pseudo-terminal on stdin, typing `typed`."""
    return p.inv_on_terminal("migrate.apply", "--env", "production", typed=typed, extra_env=prod)


def test_production_asks_on_a_terminal_listing_the_files(project):
    p = project
    query(p, 'CREATE DATABASE "prod"')  # production's own database: never local's (tools/config.py refuses that)
    prod = {"PRODUCTION_DATABASE_URL": p.env["DATABASE_URL"].replace("/app?", "/prod?")}
    assert p.inv("migrate.apply", "--env", "production", "--yes", extra_env=prod).returncode == 0
    names = add_files(p, 'CREATE TABLE "public"."typed_confirmation" (id int);\n')
    wrong = _apply_on_a_terminal(p, "prod", prod)
    assert wrong.returncode == 1, wrong.stderr
    assert f"  {names[0]}\nApply 1 file(s) on production? Type the environment name to confirm:" in wrong.stdout
    assert "not confirmed; nothing was applied on production" in wrong.stderr
    assert query(p, "SELECT to_regclass('public.typed_confirmation')", "prod") == [(None,)]
    right = _apply_on_a_terminal(p, "production", prod)
    assert right.returncode == 0, right.stderr
    assert f"applied {names[0]} (1 statement(s), " in right.stdout
    assert query(p, "SELECT to_regclass('public.typed_confirmation') IS NOT NULL", "prod") == [(True,)]


def test_status_of_every_environment(project):
    p = project
    same = {"STAGING_DATABASE_URL": p.env["DATABASE_URL"], "PRODUCTION_DATABASE_URL": ""}
    pending = p.inv("migrate.status", "--all", extra_env=same)
    assert pending.returncode == 2
    assert pending.stdout.splitlines()[0].startswith("local: PENDING")
    assert "staging: PENDING" in pending.stdout
    assert "production: not configured (PRODUCTION_DATABASE_URL is not set)" in pending.stdout
    assert p.inv("migrate.apply").returncode == 0
    synced = p.inv("migrate.status", "--all", extra_env=same)
    assert synced.returncode == 0 and "staging: in sync" in synced.stdout
    from tests.conftest import PASSWORDS

    PASSWORDS.add("pw-down-x")  # p.inv asserts that no known password is printed
    down = p.inv("migrate.status", "--all", extra_env={"STAGING_DATABASE_URL": "postgres://u:pw-down-x@127.0.0.1:1/db"})
    assert down.returncode == 1
    assert "staging: error: atlas migrate status: cannot reach the database" in down.stdout
    assert "check the host and port in STAGING_DATABASE_URL" in down.stdout
    assert "local: in sync" in down.stdout
