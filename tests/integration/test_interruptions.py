"""SIGINT, SIGTERM and SIGHUP during migrate.diff and migrate.apply (real PostgreSQL, real Atlas).

- diff: whatever the signal and wherever it lands, migrations/, atlas.sum and schema.sql stay
  byte-identical, scratch databases and the staged copy are removed, the exit is 128+signum
  with one line, and migrate.check still reports the missing migration;
- apply: the signal reaches Atlas (SIGINT), which rolls back the file it runs and is waited
  for; only whole files are applied and recorded, no atlas process is left, a second apply
  completes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests import helpers
from tests.conftest import assert_no_secret, running_project

pytestmark = pytest.mark.integration

ADD_COLUMN = (
    "    is_active: Mapped[bool]",
    "    nickname: Mapped[str | None] = mapped_column(String(50))\n    is_active: Mapped[bool]",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("interruptions"), apply=True) as p:
        yield p


def sql(p, query: str, params=None, url_var: str = "DATABASE_URL", dbname: str | None = None) -> list[tuple]:
    return helpers.sql(p.env[url_var], query, params=params, dbname=dbname)


def start(p, *args: str) -> subprocess.Popen:
    """`inv ARGS` in its own session (so a whole-group signal reaches only it and its children)."""
    return p.start(*args, new_session=True)


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 60.0):
    """Poll `condition` until it returns something true (fails if `proc` ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"inv ended (exit {proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def finish(proc: subprocess.Popen, timeout: float = 90) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert_no_secret(out + err)
    return proc.returncode, out, err


def atlas_processes(root: Path) -> list[int]:
    """Atlas processes working in the project copy (their cwd is its root)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "exe")).name == "atlas" and Path(os.readlink(entry / "cwd")) == root:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def snapshot(p) -> dict[str, bytes]:
    out = {"schema.sql": (p.root / "schema.sql").read_bytes()}
    for path in sorted((p.root / "migrations").iterdir()):
        out[f"migrations/{path.name}"] = path.read_bytes()
    return out


def interrupted_line(err: str, sig: signal.Signals) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    assert lines[0].startswith(f"interrupted ({sig.name}): nothing more was started; "), err
    assert err.rstrip().endswith(lines[0]), err  # the last line
    return lines[0]


# --- diff -----------------------------------------------------------------------------------


def staged_file(p):
    """Atlas's new file, just written (in the staged copy; in migrations/ before the diff was atomic)."""
    return lambda: list(p.root.glob(".migrate-diff-*/migrations/*_x.sql")) + list(p.root.glob("migrations/*_x.sql"))


def scratch_databases(p):
    from tools.scratch_runs import SCRATCH_PREFIX

    return lambda: [
        r[0]
        for r in sql(
            p,
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
            (SCRATCH_PREFIX,),
            url_var="DEV_DATABASE_URL",
            dbname="postgres",
        )
    ]


def replaying(p):
    """Scratch databases exist and Atlas runs: a replay into one of them."""
    return lambda: scratch_databases(p)() and atlas_processes(p.root)


@pytest.fixture
def model_change(project):
    for name in scratch_databases(project)():  # a failed test must not fool the next one's polls
        sql(project, f'DROP DATABASE "{name}" WITH (FORCE)', url_var="DEV_DATABASE_URL", dbname="postgres")
    path = project.root / "app/models/customers.py"
    original = path.read_text()
    assert ADD_COLUMN[0] in original
    path.write_text(original.replace(ADD_COLUMN[0], ADD_COLUMN[1], 1))
    files = set((project.root / "migrations").iterdir())
    schema = (project.root / "schema.sql").read_bytes()
    yield project
    path.write_text(original)
    extra = set((project.root / "migrations").iterdir()) - files
    for leftover in extra:  # a failed test must not leave its migration to the next one
        leftover.unlink()
    if extra:
        assert project.inv("migrate.hash").returncode == 0
    (project.root / "schema.sql").write_bytes(schema)


@pytest.mark.parametrize(
    "sig, when",
    [
        (signal.SIGINT, "file"),
        (signal.SIGTERM, "file"),
        (signal.SIGHUP, "file"),
        (signal.SIGTERM, "scratch"),
        (signal.SIGINT, "scratch"),
    ],
    ids=lambda v: v.name if isinstance(v, signal.Signals) else v,
)
def test_diff_interrupted_leaves_nothing(model_change, sig, when):
    p = model_change
    before = snapshot(p)
    proc = start(p, "migrate.diff", "--name", "x")
    # "file": Atlas has just written the uncorrected file (in the staged copy);
    # "scratch": the corrections are being verified (a replay into a scratch database).
    wait_for(staged_file(p) if when == "file" else replaying(p), proc, f"the diff reached {when}")
    proc.send_signal(sig)
    code, out, err = finish(proc)
    assert code == 128 + sig, (code, out, err)
    line = interrupted_line(err, sig)
    assert line.endswith("migrations/, atlas.sum and schema.sql are unchanged"), line
    assert snapshot(p) == before
    assert not list(p.root.glob(".migrate-diff-*")), "the staged copy was left behind"
    assert scratch_databases(p)() == [], "scratch databases were left behind"
    assert not atlas_processes(p.root)


def test_diff_interrupted_still_fails_the_gate(model_change):
    p = model_change
    proc = start(p, "migrate.diff", "--name", "x")
    wait_for(staged_file(p), proc, "Atlas wrote the file")
    proc.send_signal(signal.SIGINT)
    assert finish(proc)[0] == 130
    check = p.inv("migrate.check", "--no-base")  # the copy is no git checkout
    assert check.returncode == 2, check.stdout + check.stderr
    assert "the models need a migration that does not exist yet" in check.stdout


def test_diff_ctrl_c_on_a_terminal(model_change):
    """A terminal's Ctrl-C signals the whole process group: Atlas gets SIGINT too."""
    p = model_change
    before = snapshot(p)
    proc = start(p, "migrate.diff", "--name", "x")
    wait_for(replaying(p), proc, "the corrections are verified")
    os.killpg(proc.pid, signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130, (code, out, err)
    interrupted_line(err, signal.SIGINT)
    assert snapshot(p) == before
    assert scratch_databases(p)() == []


def test_stale_staged_copy_of_a_killed_run_is_removed(model_change):
    p = model_change
    before = snapshot(p)
    proc = start(p, "migrate.diff", "--name", "x")
    wait_for(staged_file(p), proc, "Atlas wrote the file")
    os.killpg(proc.pid, signal.SIGKILL)  # nothing can clean up after this one
    proc.communicate()
    left = list(p.root.glob(".migrate-diff-*"))
    assert left and snapshot(p) == before
    done = p.inv("migrate.diff", "--name", "x")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any(path.exists() for path in left)
    new = [path for path in (p.root / "migrations").glob("*_x.sql")]
    assert len(new) == 1 and "nickname" in new[0].read_text()
    # put the project back as the other tests expect it
    new[0].unlink()
    assert p.inv("migrate.hash").returncode == 0
    (p.root / "schema.sql").write_bytes(before["schema.sql"])


# --- apply ----------------------------------------------------------------------------------

# Sleeps on the target only (its database is `app`), not where lint and drift replay it.
SLOW = (
    "CREATE TABLE slow_a (id int);\nSELECT pg_sleep(CASE WHEN current_database() = 'app' THEN 3 ELSE 0 END);\n"
    "CREATE TABLE slow_b (id int);\n"
)
FAST = "CREATE TABLE fast_one (id int);\n"
# Waits before anything else while the test holds advisory lock 4242 on the target.
WAITS = "SELECT pg_advisory_xact_lock(4242);\nCREATE TABLE after_lock (id int);\n"


@pytest.fixture
def pending(project):
    """Adds pending files (name -> SQL) above the newest version; removes them afterwards."""
    p = project
    added: list[Path] = []

    def add(*bodies: str) -> list[str]:
        newest = max(int(path.name.split("_")[0]) for path in (p.root / "migrations").glob("*.sql"))
        for i, body in enumerate(bodies, start=1):
            path = p.root / "migrations" / f"{newest + i}_step{i}.sql"
            path.write_text(body)
            added.append(path)
        assert p.inv("migrate.hash").returncode == 0
        return [path.name for path in added]

    yield add
    for path in added:
        path.unlink(missing_ok=True)
    assert p.inv("migrate.hash").returncode == 0
    sql(p, "DROP TABLE IF EXISTS fast_one, slow_a, slow_b, after_lock")
    sql(
        p,
        "DELETE FROM atlas_schema_revisions.atlas_schema_revisions WHERE version = ANY(%s)",
        ([path.name.split("_")[0] for path in added],),
    )


def recorded(p) -> list[str]:
    return [
        r[0]
        for r in sql(
            p,
            "SELECT version FROM atlas_schema_revisions.atlas_schema_revisions WHERE applied = total ORDER BY version",
        )
    ]


def tables(p) -> set[str]:
    return {r[0] for r in sql(p, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def running(p, needle: str):
    return lambda: sql(
        p,
        "SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid() AND state = 'active'",
        (f"%{needle}%",),
    )


@pytest.mark.parametrize(
    "sig, group",
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    ids=["SIGTERM", "SIGINT", "SIGINT-to-group"],
)
def test_apply_interrupted_inside_a_long_file(project, pending, sig, group):
    p = project
    fast, slow = pending(FAST, SLOW)
    before = recorded(p)
    proc = start(p, "migrate.apply")
    wait_for(running(p, "pg_sleep"), proc, "the long statement runs")
    (os.killpg if group else os.kill)(proc.pid, sig)
    code, out, err = finish(proc)
    assert code == 128 + sig, (code, out, err)
    line = interrupted_line(err, sig)
    assert "whole files were applied and recorded, none half: 1 file(s) applied" in line, line
    assert f"{slow} rolled back" in line, line
    assert not atlas_processes(p.root), "atlas goes on alone"
    assert not running(p, "pg_sleep")(), "the long statement goes on on the server"
    assert recorded(p) == before + [fast.split("_")[0]]
    assert "fast_one" in tables(p) and not {"slow_a", "slow_b"} & tables(p)
    again = p.inv("migrate.apply")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {"slow_a", "slow_b"} <= tables(p)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_apply_interrupted_between_files(project, pending, sig):
    """The second file waits for a lock in its first statement: a signal then leaves the first
    file applied and recorded and nothing of the second."""
    import psycopg

    from tools.urls import libpq_url

    p = project
    fast, waits = pending(FAST, WAITS)
    before = recorded(p)
    with psycopg.connect(libpq_url(p.env["DATABASE_URL"], "DATABASE_URL")) as holder:
        holder.execute("SELECT pg_advisory_lock(4242)")
        proc = start(p, "migrate.apply")
        wait_for(running(p, "pg_advisory_xact_lock(4242)"), proc, "the second file waits for its lock")
        proc.send_signal(sig)
        code, out, err = finish(proc)
    assert code == 128 + sig, (code, out, err)
    line = interrupted_line(err, sig)
    assert "1 file(s) applied" in line and f"{waits} rolled back" in line, line
    assert not atlas_processes(p.root)
    assert recorded(p) == before + [fast.split("_")[0]]
    assert "after_lock" not in tables(p)
    again = p.inv("migrate.apply")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "after_lock" in tables(p)


def test_replay_canceled_in_atlas_alone_is_an_interruption(model_change):
    """SIGINT to Atlas only (not to inv) during a replay: exit 130, not "fix the failing file"."""
    p = model_change
    before = snapshot(p)
    proc = start(p, "migrate.diff", "--name", "x")
    pids = wait_for(replaying(p), proc, "a replay runs")
    for pid in pids:
        os.kill(pid, signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130, (code, out, err)
    interrupted_line(err, signal.SIGINT)
    assert "fix the failing migration file" not in err
    assert snapshot(p) == before
