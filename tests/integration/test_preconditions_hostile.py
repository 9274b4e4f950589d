"""Hostile pre-conditions on a real PostgreSQL 15 and the real Atlas: a check calling a VOLATILE
function (a replication slot, pg_terminate_backend, a user function that kills backends) is
refused before any check runs, dry run included; a dry run whose checks failed exits 1; a
checks file that is not UTF-8 is one line; plain checks still pass."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import running_project
from tests.integration.test_preconditions import add_pending, place_an_order, revisions, sql
from tools.urls import libpq_url

pytestmark = pytest.mark.integration

CHECK = "migrations/checks/29990101000002.sql"
OTHERS = "FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()"
SLOT = "SELECT (pg_create_physical_replication_slot('hostile_slot', true)).slot_name IS NOT NULL;\n"
TERMINATE = f"SELECT coalesce(bool_and(pg_terminate_backend(pid)), true) {OTHERS};\n"
PLAIN = "SELECT NOT EXISTS (SELECT 1 FROM orders WHERE placed_at IS NULL);\nSELECT count(*) = 0 FROM marker_free;\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("hostile"), apply=True) as p:
        place_an_order(p, placed=True)
        sql(p, "CREATE TABLE marker_free (id int)")
        yield p


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_replication_slot_check_is_refused_and_creates_no_slot(project):
    p = project
    add_pending(p, {"29990101000002.sql": SLOT})
    dry = p.inv("migrate.apply", "--dry-run")
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert errors(dry) == [
        f"error: {CHECK} check 1 (line 1): {SLOT.strip()[:-1]} calls pg_create_physical_replication_slot(), a VOLATILE "
        "function: a check may have no effect, so none was run: a check may call only STABLE or IMMUTABLE "
        "functions; move the call into a migration (or drop it)"
    ]
    assert sql(p, "SELECT slot_name FROM pg_replication_slots") == []
    check = p.inv("migrate.check", "--no-base")  # no target there: the name list refuses it
    assert check.returncode != 0 and "calls pg_create_physical_replication_slot(), a VOLATILE" in check.stdout, (
        check.stdout + check.stderr
    )


def test_terminating_checks_are_refused_and_kill_no_backend(project):
    p = project
    versions = revisions(p)
    with psycopg.connect(libpq_url(p.env["DATABASE_URL"], "x"), autocommit=True) as other:
        add_pending(p, {"29990101000002.sql": TERMINATE})
        applied = p.inv("migrate.apply")
        assert applied.returncode == 1 and "calls pg_terminate_backend(), a VOLATILE" in applied.stderr
        # a function of the target's own that kills: only the catalog lookup (pg_proc) sees it
        kill = f"SELECT coalesce(bool_and(pg_terminate_backend(pid)), true) {OTHERS}"
        sql(p, f"CREATE FUNCTION kick() RETURNS boolean LANGUAGE sql VOLATILE AS $$ {kill} $$")
        add_pending(p, {"29990101000002.sql": "-- kick everyone\nSELECT public.kick();\n"})
        for args in (("--dry-run",), ()):
            refused = p.inv("migrate.apply", *args)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert errors(refused)[0].startswith(
                f"error: {CHECK} check 1 (line 2): kick everyone calls kick(), a VOLATILE function"
            )
        assert other.execute("SELECT 1").fetchone() == (1,)  # still connected
    sql(p, "DROP FUNCTION kick()")
    assert revisions(p) == versions


def test_a_checks_file_that_is_not_utf8_is_one_line(project):
    p = project
    add_pending(p, {"29990101000002.sql": SLOT})
    (p.root / CHECK).write_bytes(b"\xff\xfe SELECT true;\n")
    dry = p.inv("migrate.apply", "--dry-run")
    assert dry.returncode == 1 and "Traceback" not in dry.stderr, dry.stderr
    assert errors(dry) == [
        f"error: {CHECK} is not UTF-8 text (byte 0: invalid start byte): save it as UTF-8 "
        "(e.g. iconv -f latin1 -t utf-8), then run the task again"
    ]
    check = p.inv("migrate.check", "--no-base")
    assert check.returncode != 0 and "Traceback" not in check.stderr, check.stderr
    assert f"error: {CHECK} is not UTF-8 text (byte 0: invalid start byte)" in check.stdout


def test_plain_checks_pass_and_a_failed_one_fails_the_dry_run(project):
    p = project
    add_pending(p, {"29990101000002.sql": PLAIN})
    dry = p.inv("migrate.apply", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.count("pre-condition passed") == 2
    sql(p, "INSERT INTO marker_free VALUES (1)")
    dry = p.inv("migrate.apply", "--dry-run")
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert "pre-condition FAILED: " + CHECK + " check 2 (line 2)" in dry.stdout
    assert errors(dry) == [
        f"error: a pre-condition does not hold on local, the apply would refuse (dry run): {CHECK} check 2 (line 2): "
        "SELECT count(*) = 0 FROM marker_free -> returned false, not true: fix the data (or the check) first; "
        "every check's result is listed above"
    ]
