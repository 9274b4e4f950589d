"""`inv migrate.down` against what a hostile user does (real PostgreSQL 15 clusters, the real Atlas):
a row committed while the down runs, names holding a dot, a type the down narrows, a recording
that Atlas committed before the down failed."""

from __future__ import annotations

import threading
import time

import pytest

from tests import helpers
from tests.conftest import atlas_binary, running_project

pytestmark = pytest.mark.integration

SECOND = "29990101000001_notes.sql"
THIRD = "29990101000002_more.sql"


@pytest.fixture
def project(tmp_path):
    """Local at the initial migration, torn down afterwards."""
    with running_project(tmp_path, apply=True) as p:
        yield p


def migrate(p, second: str, third: str | None = None):
    """SECOND (and THIRD) written and applied."""
    for name, text in ((SECOND, second), (THIRD, third)):
        if text is None:
            continue
        p.write(f"migrations/{name}", text)
        assert p.inv("migrate.hash").returncode == 0
        applied = p.inv("migrate.apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr


def sql(p, *statements: str) -> list[tuple]:
    return helpers.sql(p.env["DATABASE_URL"], *statements)


def state(p) -> tuple[str, list[tuple]]:
    return helpers.catalog(p.env["DATABASE_URL"]), sql(
        p, "SELECT version FROM atlas_schema_revisions.atlas_schema_revisions ORDER BY version"
    )


NOTES = 'CREATE TABLE "public"."notes" ("id" bigserial NOT NULL, "body" text NULL, PRIMARY KEY ("id"));\n'


def test_a_row_committed_while_the_down_waits_for_its_lock_refuses_the_down(project):
    """The preview counts an empty table; a writer's transaction holds the table; the down waits
    for it inside its own transaction; the writer commits a row; the down counts it and refuses."""
    import psycopg

    from tools.urls import libpq_url

    p = project
    migrate(p, NOTES)
    before = state(p)
    url = libpq_url(p.env["DATABASE_URL"], "x")
    result: dict = {}
    with psycopg.connect(url) as writer, psycopg.connect(url, autocommit=True) as watcher:
        writer.execute("INSERT INTO notes (body) VALUES ('written meanwhile')")  # uncommitted: the lock is held
        down = threading.Thread(
            target=lambda: result.update(
                proc=p.inv("migrate.down", "--steps", "1", extra_env={"TABLE_LOCK_TIMEOUT": "120s"})
            )
        )
        down.start()
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'public.notes'::regclass"
        deadline = time.monotonic() + 300
        while watcher.execute(waiting).fetchone() == (0,) and down.is_alive():
            assert time.monotonic() < deadline, "the down never waited for the writer's lock"
            time.sleep(0.1)
        writer.commit()  # the row is committed while the down waits, after its preview saw none
        down.join(600)
    proc = result["proc"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "data loss" not in proc.stdout  # the preview saw an empty table
    assert "rows were written where the plan deletes or rewrites data (table public.notes: 1 row(s))" in proc.stderr
    assert "--allow-destructive" in proc.stderr
    assert sql(p, "SELECT body FROM notes") == [("written meanwhile",)]
    assert state(p) == before


def test_names_holding_a_dot_are_counted_and_refused(project):
    third = (
        'ALTER TABLE "public"."notes" ADD COLUMN "legacy.id" text NULL;\n'
        'CREATE TABLE "public"."audit.log" ("id" bigint NOT NULL, PRIMARY KEY ("id"));\n'
    )
    p = project
    migrate(p, NOTES, third)
    sql(p, """INSERT INTO notes (body, "legacy.id") VALUES ('a', 'L-123'), ('b', NULL)""")
    sql(p, 'INSERT INTO "audit.log" VALUES (1)')
    before = state(p)
    proc = p.inv("migrate.down", "--steps", "1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'data loss: column public.notes."legacy.id" holds 1 row(s)' in proc.stdout
    assert 'data loss: table public."audit.log" holds 1 row(s)' in proc.stdout
    assert "error: the plan deletes or rewrites data (2 table(s)/column(s)" in proc.stderr
    assert state(p) == before


def test_a_narrowed_type_is_named_refused_then_fails_on_the_data_with_its_own_error(project):
    second = (
        'CREATE TABLE "public"."notes" ("id" bigserial NOT NULL, "amount" numeric(12,2) NULL, '
        '"label" character varying(200) NULL, PRIMARY KEY ("id"));\n'
    )
    third = (
        'ALTER TABLE "public"."notes" ALTER COLUMN "amount" TYPE numeric(14,4), '
        'ALTER COLUMN "label" TYPE character varying(300);\n'
    )
    p = project
    migrate(p, second, third)
    sql(p, f"INSERT INTO notes (amount, label) VALUES (1.2345, '{'x' * 250}'), (NULL, NULL)")
    before = state(p)
    refused = p.inv("migrate.down", "--steps", "1")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    out = refused.stdout
    assert "data loss: column public.notes.amount: numeric(14,4) -> numeric(12,2) on 1 row(s): values may be" in out
    assert "data loss: column public.notes.label: character varying(300) -> character varying(200) on 1 row(s)" in out
    assert state(p) == before

    failed = p.inv("migrate.down", "--steps", "1", "--allow-destructive")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "value too long for type character varying(200)" in failed.stderr
    assert "lock" not in failed.stderr.split("hint:", 1)[-1]  # the hint is about the rows, not a lock
    assert "do not fit what migrations/ up to 29990101000001 builds" in failed.stderr
    assert state(p) == before


def test_a_version_atlas_recorded_before_the_down_failed_is_put_back(project, tmp_path):
    """`atlas migrate set` (the real one) records the version, then its process fails: the plan
    rolls back and the revision table is put back, so that "nothing changed" is true."""
    third = 'ALTER TABLE "public"."notes" ADD COLUMN "priority" integer NULL;\n'
    p = project
    migrate(p, NOTES, third)
    wrapper, mark = tmp_path / "atlas-then-fail", tmp_path / "recorded-once"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1 $2" = "migrate set" ] && [ ! -e "{mark}" ]; then\n'
        f'  touch "{mark}"; "{atlas_binary()}" "$@" || exit $?\n'
        '  echo "cut short after recording" >&2; exit 1\n'
        "fi\n"
        f'exec "{atlas_binary()}" "$@"\n'
    )
    wrapper.chmod(0o755)
    before = state(p)
    proc = p.inv("migrate.down", "--steps", "1", "--allow-destructive", extra_env={"ATLAS_BIN": str(wrapper)})
    assert mark.exists()  # the real `atlas migrate set` ran and recorded the version
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: recording version 29990101000001 failed (" in proc.stderr
    assert "nothing changed" in proc.stderr
    assert state(p) == before


def test_an_interruption_after_atlas_recorded_the_version_puts_it_back(project, tmp_path):
    """SIGINT while `atlas migrate set` (the real one, already committed) has not returned: the
    plan rolls back, the version is put back, and the line says the target is unchanged."""
    import os
    import signal
    import subprocess
    import sys

    third = 'ALTER TABLE "public"."notes" ADD COLUMN "priority" integer NULL;\n'
    p = project
    migrate(p, NOTES, third)
    wrapper, mark = tmp_path / "atlas-then-wait", tmp_path / "recorded-once"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1 $2" = "migrate set" ] && [ ! -e "{mark}" ]; then\n'
        f'  "{atlas_binary()}" "$@" || exit $?\n'
        "  sleep 120 >/dev/null 2>&1 &\n"  # Atlas has returned; its caller waits on this script
        f"  trap 'kill $!; exit 130' INT; touch \"{mark}\"; wait; exit 1\n"
        "fi\n"
        f'exec "{atlas_binary()}" "$@"\n'
    )
    wrapper.chmod(0o755)
    before = state(p)
    env = {**os.environ, **p.env, "ATLAS_BIN": str(wrapper)}
    env.pop("PYTEST_CURRENT_TEST", None)
    argv = [sys.executable, "-m", "invoke", "migrate.down", "--steps", "1", "--allow-destructive"]
    with subprocess.Popen(argv, cwd=p.root, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        deadline = time.monotonic() + 300
        while not mark.exists():  # the version is recorded and Atlas's process has not returned
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, out + err
    assert "interrupted (SIGINT)" in err and "local is unchanged" in err, err
    assert state(p) == before
