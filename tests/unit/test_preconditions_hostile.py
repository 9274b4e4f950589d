"""Pre-conditions against hostile checks (tools/preconditions.py, pure parts): volatile functions
with effects outside the read-only transaction are refused by name, a file that is not UTF-8 is
one line, and a dry run whose checks failed ends in exit 1. On PostgreSQL:
tests/integration/test_preconditions_hostile.py."""

from __future__ import annotations

import pytest

from tests.unit.test_preconditions import V2, project
from tools import preconditions
from tools.apply import ApplyReport
from tools.errors import WorkflowError
from tools.preconditions import Check, Result, parse

F = "migrations/checks/1.sql"


@pytest.mark.parametrize(
    "sql, function",
    [
        (
            "SELECT (pg_create_physical_replication_slot('hostile_slot', true)).slot_name IS NOT NULL;",
            "pg_create_physical_replication_slot",
        ),
        (
            "SELECT coalesce(bool_and(pg_terminate_backend(pid)), true) FROM pg_stat_activity WHERE pid <> 1;",
            "pg_terminate_backend",
        ),
        ("SELECT pg_catalog.pg_reload_conf();", "pg_reload_conf"),
        ("WITH x AS (SELECT pg_advisory_lock(1)) SELECT true FROM x;", "pg_advisory_lock"),
        ("SELECT EXISTS (SELECT set_config('work_mem', '1GB', false));", "set_config"),
        ("SELECT true FROM (SELECT 1) t, LATERAL lo_import('/etc/passwd');", "lo_import"),
        ("SELECT count(*) = 0 FROM dblink('x', 'y') AS t(a int);", "dblink"),
        ('SELECT "PG_CANCEL_BACKEND"(1);', "pg_cancel_backend"),
    ],
)
def test_a_check_calling_a_known_volatile_function_is_refused_by_name(sql, function):
    with pytest.raises(WorkflowError) as err:
        parse(f"-- fine\nSELECT true;\n{sql}\n", F)
    assert str(err.value).startswith(f"{F} check 2 (line 3): ")
    assert f"calls {function}(), a VOLATILE function" in str(err.value)


def test_plain_checks_keep_their_function_names_for_the_catalog_lookup():
    checks = parse(
        "SELECT NOT EXISTS (SELECT 1 FROM t WHERE c IS NULL);\n"
        "SELECT count(*) = 0 FROM t;\n"
        "WITH a AS (SELECT now() AS n) SELECT coalesce(bool_and(n <= now()), true) FROM a, public.mine(1);\n",
        F,
    )
    assert [c.functions for c in checks] == [(), ("count",), ("bool_and", "mine", "now")]


def test_a_checks_file_that_is_not_utf8_is_one_line(tmp_path):
    config = project(tmp_path, {})
    (config.root / "migrations" / "checks" / f"{V2}.sql").write_bytes(b"\xff\xfe SELECT true;\n")
    with pytest.raises(WorkflowError) as err:
        preconditions.load(config)
    assert str(err.value) == (
        f"migrations/checks/{V2}.sql is not UTF-8 text (byte 0: invalid start byte): save it as UTF-8 "
        "(e.g. iconv -f latin1 -t utf-8), then run the task again"
    )


def test_a_dry_run_with_a_failed_check_ends_in_an_error_naming_it():
    check = Check(F, 1, 2, "every order is placed", "SELECT false;")
    failed = ApplyReport(
        env="staging", pending=["1_a.sql"], dry_run=True, checks=[Result(check, False, "returned false, not true")]
    )
    with pytest.raises(WorkflowError) as err:
        failed.verdict()
    assert str(err.value).startswith(
        f"a pre-condition does not hold on staging, the apply would refuse (dry run): {F} check 1 (line 2): "
        "every order is placed -> returned false, not true"
    )
    assert "pre-condition FAILED" in "\n".join(failed.lines())
    ApplyReport(env="staging", pending=["1_a.sql"], dry_run=True, checks=[Result(check, True, "true")]).verdict()
    ApplyReport(env="staging", pending=["1_a.sql"], dry_run=True).verdict()
