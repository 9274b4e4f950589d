"""The workflow drops only databases it owns (tools/ownership.py), on real PostgreSQL 15 + real Atlas.

A dev URL at a database that holds data is refused before anything is dropped; an empty one is
used and marked; a target that is the dev database, or a protected environment that is another
environment's database, is refused; scratch databases of a killed run are dropped by the next
run, never a live run's nor an unmarked look-alike; two runs share one dev server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests import helpers
from tests.conftest import assert_no_secret, running_project

pytestmark = pytest.mark.integration

ROWS = 1000


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("ownership")) as p:
        yield p


sql = helpers.sql


def at(url: str, dbname: str, host: str | None = None) -> str:
    """`url` naming another database (and host spelling) on the same server."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    netloc = parts.netloc if host is None else parts.netloc.replace("127.0.0.1", host)
    return parts._replace(netloc=netloc, path="/" + dbname).geturl()


def server(p, which: str = "dev") -> str:
    return p.env["DEV_DATABASE_URL" if which == "dev" else "DATABASE_URL"]


def comment(p, dbname: str, which: str = "dev"):
    rows = sql(
        server(p, which),
        f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{dbname}'",
        dbname="postgres",
    )
    return rows[0][0] if rows else "ABSENT"


def databases(p, prefix: str, which: str = "dev") -> list[str]:
    return [
        r[0]
        for r in sql(
            server(p, which),
            f"SELECT datname FROM pg_database WHERE starts_with(datname, '{prefix}') ORDER BY 1",
            dbname="postgres",
        )
    ]


@pytest.fixture
def team_database(project):
    """A database on the dev server holding a table of 1,000 rows, made by someone else."""
    p, name = project, "teamdata"
    sql(server(p), f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"', dbname="postgres")
    sql(
        at(server(p), name),
        "CREATE TABLE orders (id int PRIMARY KEY, total numeric)",
        f"INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, {ROWS}) g",
    )
    yield at(server(p), name)
    sql(server(p), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dbname="postgres")


def one_error(proc) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.mark.parametrize(
    "args",
    [("migrate.diff", "--name", "x"), ("migrate.lint",), ("migrate.validate",), ("migrate.verify",)],
    ids=lambda a: a[0],
)
def test_dev_database_holding_data_is_refused_and_kept(project, team_database, args):
    p = project
    files = p.files()
    proc = p.inv(*args, extra_env={"DEV_DATABASE_URL": team_database})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    port = p.env["DEV_DB_PORT"]
    assert one_error(proc) == (
        f"error: DEV_DATABASE_URL points at 127.0.0.1:{port}/teamdata, which holds 1 table and the workflow "
        "did not create it; nothing was dropped or changed: point DEV_DATABASE_URL at an empty throw-away "
        "database (inv db.up provides one)"
    )
    assert sql(team_database, "SELECT count(*), sum(id) FROM orders") == [(ROWS, ROWS * (ROWS + 1) // 2)]
    assert comment(p, "teamdata") is None, "the database was marked"
    assert databases(p, "schemaflow_scratch_") == []
    assert p.files() == files


def test_empty_unmarked_dev_database_is_used_and_marked(project):
    p = project
    sql(server(p), 'DROP DATABASE IF EXISTS "blank"', 'CREATE DATABASE "blank"', dbname="postgres")
    dev = {"DEV_DATABASE_URL": at(server(p), "blank")}
    try:
        assert comment(p, "blank") is None
        first = p.inv("migrate.validate", extra_env=dev)
        assert first.returncode == 0, first.stderr
        assert comment(p, "blank").startswith(f"schemaflow:dev project={p.env['COMPOSE_PROJECT_NAME']} ")
        # Marked: what Atlas leaves behind there is the workflow's, and goes with the next use.
        sql(dev["DEV_DATABASE_URL"], "CREATE TABLE invoice_seq_leftover (id int)")
        second = p.inv("migrate.validate", extra_env=dev)
        assert second.returncode == 0, second.stderr
        assert sql(dev["DEV_DATABASE_URL"], "SELECT to_regclass('invoice_seq_leftover')") == [(None,)]
    finally:
        sql(server(p), 'DROP DATABASE IF EXISTS "blank" WITH (FORCE)', dbname="postgres")


def test_absent_dev_database_is_created_marked(project):
    p = project
    dev = {"DEV_DATABASE_URL": at(server(p), "devnew")}
    try:
        proc = p.inv("migrate.lint", extra_env=dev)
        assert proc.returncode == 0, proc.stderr
        assert comment(p, "devnew").startswith("schemaflow:dev ")
    finally:
        sql(server(p), 'DROP DATABASE IF EXISTS "devnew" WITH (FORCE)', dbname="postgres")


@pytest.mark.parametrize(
    "args",
    [
        ("migrate.apply", "--env", "staging"),
        ("migrate.drift", "--env", "staging"),
        ("migrate.baseline", "--env", "staging"),
        ("migrate.status", "--env", "staging"),
    ],
    ids=lambda a: a[0],
)
def test_target_that_is_the_dev_database_is_refused(project, args):
    p = project
    same = at(server(p), "dev", host="localhost")  # the dev database, spelled another way
    sql(p.env["DEV_DATABASE_URL"], "CREATE TABLE IF NOT EXISTS canary (id int)")
    proc = p.inv(*args, extra_env={"STAGING_DATABASE_URL": same})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert one_error(proc) == (
        "error: STAGING_DATABASE_URL and DEV_DATABASE_URL name the same database "
        f"(localhost:{p.env['DEV_DB_PORT']}/dev), "
        "but the workflow drops and recreates the dev database: point DEV_DATABASE_URL at an empty throw-away "
        "database (inv db.up provides one)"
    )
    assert sql(p.env["DEV_DATABASE_URL"], "SELECT to_regclass('canary') IS NOT NULL") == [(True,)]
    sql(p.env["DEV_DATABASE_URL"], "DROP TABLE canary")


def test_local_that_is_the_dev_database_is_refused(project):
    p = project
    proc = p.inv("migrate.apply", extra_env={"DATABASE_URL": p.env["DEV_DATABASE_URL"]})
    assert proc.returncode == 1
    assert "error: DATABASE_URL and DEV_DATABASE_URL name the same database" in one_error(proc)


@pytest.mark.parametrize("env", ["production", "local"])
def test_production_equal_to_local_is_refused_naming_both(project, env):
    p = project
    prod = {"PRODUCTION_DATABASE_URL": at(server(p, "local"), "app", host="localhost")}
    proc = p.inv("migrate.apply", "--env", env, "--yes", extra_env=prod)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    first, second = (
        ("PRODUCTION_DATABASE_URL", "DATABASE_URL")
        if env == "production"
        else ("DATABASE_URL", "PRODUCTION_DATABASE_URL")
    )
    assert one_error(proc) == (
        f"error: {first} and {second} name the same database ({'localhost' if env == 'production' else '127.0.0.1'}:"
        f"{p.env['DB_PORT']}/app): an apply to local would change production without its confirmation: "
        "give each environment its own database in .env"
    )


# --- scratch databases ----------------------------------------------------------------------------

RUN = """
import os, signal, sys, time
from tools import scratch_runs
from tools.config import Config
with scratch_runs.scratch(Config.load(), "replay", "models") as urls:
    print(" ".join(u.split("/")[-1].split("?")[0] for u in urls), flush=True)
    mode = sys.argv[1]
    if mode == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "wait":
        sys.stdin.readline()
    if mode == "sleep":
        time.sleep(60)
    if mode == "error":
        raise RuntimeError("a failing replay")
    if mode == "exit":
        raise SystemExit(3)
"""


def run_holding_scratch(p, mode: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, mode],
        cwd=p.root,
        env={**os.environ, **p.env},
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    names = proc.stdout.readline().split()
    assert len(names) == 2, proc.stderr.read() if proc.poll() is not None else "no names printed"
    return proc, names


def test_scratch_of_a_killed_run_is_dropped_by_the_next_run(project):
    p = project
    killed, names = run_holding_scratch(p, "killed")
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    assert databases(p, "schemaflow_scratch_") == sorted(names), "the killed run should leave its databases behind"
    assert all(comment(p, n).startswith("schemaflow:scratch ") for n in names)
    proc = p.inv("migrate.verify")
    assert proc.returncode == 0, proc.stderr
    assert databases(p, "schemaflow_scratch_") == []


def test_live_runs_and_unmarked_look_alikes_are_kept(project):
    p = project
    lookalike, forged = "schemaflow_scratch_deadbeef_replay", "schemaflow_scratch_0badf00d_models"
    sql(
        server(p),
        f'CREATE DATABASE "{lookalike}"',
        f'CREATE DATABASE "{forged}"',
        f'COMMENT ON DATABASE "{forged}" IS '
        "'schemaflow:scratch project=x run=12345678 (another run token than its name)'",
        dbname="postgres",
    )
    live, names = run_holding_scratch(p, "wait")
    try:
        proc = p.inv("migrate.verify")
        assert proc.returncode == 0, proc.stderr
        assert databases(p, "schemaflow_scratch_") == sorted([lookalike, forged, *names])
    finally:
        live.communicate("\n", timeout=30)
        sql(
            server(p),
            f'DROP DATABASE IF EXISTS "{lookalike}"',
            f'DROP DATABASE IF EXISTS "{forged}"',
            dbname="postgres",
        )
    assert live.returncode == 0
    assert databases(p, "schemaflow_scratch_") == [], "a run that ends drops its own databases"


def test_ctrl_c_drops_the_runs_scratch_databases(project):
    p = project
    proc, names = run_holding_scratch(p, "sleep")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    assert databases(p, "schemaflow_scratch_") == []


@pytest.mark.parametrize("mode,code", [("error", 1), ("exit", 3)])
def test_an_error_or_exit_drops_the_runs_scratch_databases(project, mode, code):
    p = project
    proc, names = run_holding_scratch(p, mode)
    proc.communicate(timeout=30)
    assert proc.returncode == code
    assert databases(p, "schemaflow_scratch_") == []


def test_two_runs_in_parallel_on_one_dev_server(project):
    p = project
    runs = [p.start(task) for task in ("migrate.verify", "migrate.verify", "migrate.validate")]
    results = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, results, strict=True):
        assert_no_secret(out + err)
        assert run.returncode == 0, err
    assert databases(p, "schemaflow_scratch_") == []


# --- db.reset ---------------------------------------------------------------------------------------


def test_reset_refuses_a_foreign_local_database_unless_confirmed(project):
    p = project
    name = "otherapp"
    sql(server(p, "local"), f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"', dbname="postgres")
    other = at(server(p, "local"), name)
    try:
        sql(other, "CREATE TABLE team_rows (id int)", f"INSERT INTO team_rows SELECT generate_series(1, {ROWS})")
        refused = p.inv("db.reset", extra_env={"DATABASE_URL": other})
        assert refused.returncode == 1
        port = p.env["DB_PORT"]
        assert one_error(refused) == (
            f"error: DATABASE_URL points at 127.0.0.1:{port}/otherapp, which is not the stack's database "
            f"(127.0.0.1:{port}/app) and holds 1 table; nothing was dropped: pass --yes to drop it anyway, "
            "or point DATABASE_URL at the stack's database"
        )
        assert sql(other, "SELECT count(*) FROM team_rows") == [(ROWS,)]
        confirmed = p.inv("db.reset", "--yes", extra_env={"DATABASE_URL": other})
        assert confirmed.returncode == 0, confirmed.stderr
        assert sql(other, "SELECT to_regclass('team_rows')") == [(None,)]
        assert comment(p, name, "local").startswith("schemaflow:local ")
        again = p.inv("db.reset", extra_env={"DATABASE_URL": other})  # made by db.reset: no question
        assert again.returncode == 0, again.stderr
    finally:
        sql(server(p, "local"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dbname="postgres")


def test_reset_of_the_stacks_own_database_asks_nothing(project):
    p = project
    assert p.inv("migrate.apply").returncode == 0
    proc = p.inv("db.reset")
    assert proc.returncode == 0, proc.stderr
    assert "local database recreated" in proc.stderr


def _reset_on_a_terminal(p, typed: str, extra: dict) -> subprocess.CompletedProcess:
    return p.inv_on_terminal("db.reset", typed=typed, extra_env=extra)


def test_reset_of_a_foreign_database_takes_its_typed_name_on_a_terminal(project):
    p = project
    name = "typedapp"
    sql(server(p, "local"), f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"', dbname="postgres")
    other = {"DATABASE_URL": at(server(p, "local"), name)}
    try:
        sql(
            other["DATABASE_URL"],
            "CREATE TABLE team_rows (id int)",
            f"INSERT INTO team_rows SELECT generate_series(1, {ROWS})",
        )
        wrong = _reset_on_a_terminal(p, "yes", other)
        assert wrong.returncode == 1, wrong.stderr
        assert f"Drop and recreate it? Type its name ({name}) to confirm:" in wrong.stdout
        assert one_error(wrong).startswith(
            f"error: not confirmed; nothing was dropped on 127.0.0.1:{p.env['DB_PORT']}/{name}"
        )
        assert sql(other["DATABASE_URL"], "SELECT count(*) FROM team_rows") == [(ROWS,)]
        right = _reset_on_a_terminal(p, name, other)
        assert right.returncode == 0, right.stderr
        assert sql(other["DATABASE_URL"], "SELECT to_regclass('team_rows')") == [(None,)]
    finally:
        sql(server(p, "local"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dbname="postgres")
