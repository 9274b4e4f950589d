"""The same workflow scenario through `inv`, on the Compose stack and on local clusters."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import atlas_binary, make_project, require

pytestmark = pytest.mark.e2e


def docker_ready() -> bool:
    from tools.compose_stack import docker_answers

    if not docker_answers():
        return False
    proc = subprocess.run(["docker", "compose", "version"], capture_output=True)
    return proc.returncode == 0


@pytest.fixture(params=["compose", "local"])
def project(request, tmp_path):
    backend = request.param
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    if backend == "compose":
        require(docker_ready(), "no Docker engine with the Compose plugin (run inv setup, or STACK=local)")
    else:
        from tools.errors import WorkflowError
        from tools.pgserver import find_bindir

        try:
            find_bindir()
            ok = True
        except WorkflowError:
            ok = False
        require(ok, "PostgreSQL server binaries are not installed")
    p = make_project(tmp_path, backend)
    yield p
    p.inv("db.down", "--volumes", timeout=300)


def test_workflow_scenario(project):
    p = project
    backend = p.env["STACK"]

    up = p.inv("db.up", timeout=900)
    assert up.returncode == 0, up.stderr
    assert f"backend: {backend}" in up.stdout
    assert "****@127.0.0.1" in up.stdout  # masked URLs

    again = p.inv("db.up")
    assert again.returncode == 0, again.stderr

    status = p.inv("db.status")
    assert status.returncode == 0 and "running" in status.stdout

    # the main job on a fresh copy: applies the committed initial migration to `local`
    dev = p.inv("dev")
    assert dev.returncode == 0, dev.stderr
    assert "local: in sync" in dev.stdout

    path = p.root / "app/models/catalog.py"
    path.write_text(
        path.read_text().replace(
            "    is_archived: Mapped[bool]",
            "    weight_grams: Mapped[int | None] = mapped_column(Integer)\n    is_archived: Mapped[bool]",
            1,
        )
    )
    diff = p.inv("migrate.diff", "--name", "add_weight")
    assert diff.returncode == 0, diff.stderr
    assert 'ADD COLUMN "weight_grams" integer NULL' in diff.stdout
    assert p.inv("migrate.status").returncode == 2
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0, applied.stderr
    assert p.inv("migrate.status").returncode == 0
    assert "no changes" in p.inv("migrate.diff", "--name", "nothing").stdout

    # data survives a restart without --volumes, and db.reset rebuilds from migrations
    assert p.inv("db.down").returncode == 0
    assert p.inv("db.up", timeout=900).returncode == 0
    assert p.inv("migrate.status").returncode == 0
    reset = p.inv("db.reset")
    assert reset.returncode == 0, reset.stderr
    assert f"{len(list((p.root / 'migrations').glob('*.sql')))} migration(s) applied" in reset.stdout
    refused = p.inv("db.reset", "--env", "staging")
    assert refused.returncode == 1 and "only resets the local database" in refused.stderr

    doctor = p.inv("doctor")
    stack_line = next(line for line in doctor.stdout.splitlines() if line.split()[1:2] == ["stack"])
    assert backend in stack_line
    if backend == "compose":
        assert f"Compose project {p.env['COMPOSE_PROJECT_NAME']}" in stack_line


def test_stack_down_is_a_clear_error(project):
    p = project
    proc = p.inv("migrate.status")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "inv db.up" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_data_made_with_another_password_is_explained(project):
    """A new .env over old data: db.up names the cause and the fix; the fix works."""
    p = project
    assert p.inv("db.up").returncode == 0
    other = {"POSTGRES_PASSWORD": "pw" + p.env["POSTGRES_PASSWORD"][::-1]}
    from tests.conftest import PASSWORDS

    PASSWORDS.add(other["POSTGRES_PASSWORD"])
    other["DATABASE_URL"] = p.env["DATABASE_URL"].replace(p.env["POSTGRES_PASSWORD"], other["POSTGRES_PASSWORD"])
    other["DEV_DATABASE_URL"] = p.env["DEV_DATABASE_URL"].replace(
        p.env["POSTGRES_PASSWORD"], other["POSTGRES_PASSWORD"]
    )
    proc = p.inv("db.up", extra_env=other)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "initialised with another password" in proc.stderr and "inv db.down --volumes" in proc.stderr
    assert p.inv("db.down", "--volumes", extra_env=other).returncode == 0
    again = p.inv("db.up", extra_env=other)
    assert again.returncode == 0, again.stderr
    assert p.inv("migrate.apply", extra_env=other).returncode == 0


def test_local_cluster_recovers_after_a_crash(tmp_path):
    """A killed server leaves a stale postmaster.pid: db.up starts it again, data intact."""
    from tools.errors import WorkflowError
    from tools.pgserver import find_bindir

    try:
        find_bindir()
        ok = True
    except WorkflowError:
        ok = False
    require(ok and atlas_binary() is not None, "PostgreSQL server binaries and Atlas are needed")
    p = make_project(tmp_path, "local")
    try:
        assert p.inv("db.up").returncode == 0
        assert p.inv("migrate.apply").returncode == 0
        pidfile = p.root / ".state/pg/db/postmaster.pid"
        pid = int(pidfile.read_text().splitlines()[0])
        import os
        import signal
        import time

        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.05)
        assert pidfile.exists()  # stale
        status = p.inv("db.status")
        assert "db      stopped" in status.stdout
        up = p.inv("db.up")
        assert up.returncode == 0, up.stderr
        assert p.inv("migrate.status").returncode == 0
    finally:
        p.inv("db.down", "--volumes")


def test_setup_no_docker_is_remembered(tmp_path):
    """`inv setup --no-docker` records STACK=local: later tasks (no STACK in the environment) use it."""
    import os
    import sys

    from dotenv import dotenv_values, set_key

    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    p = make_project(tmp_path, "local")
    set_key(str(p.root / ".env"), "STACK", "", quote_mode="never")
    env = {k: v for k, v in {**os.environ, **p.env}.items() if k != "STACK"}

    def inv(*args):
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=p.root,
            env=env,
            text=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=600,
        )

    try:
        setup = inv("setup", "--no-docker")
        assert setup.returncode == 0, setup.stderr
        assert dotenv_values(p.root / ".env")["STACK"] == "local"
        assert "stack backend local" in setup.stdout
        up = inv("db.up")
        assert up.returncode == 0, up.stderr
        status = inv("db.status")
        assert status.stdout.startswith("backend: local (STACK=local)"), status.stdout
    finally:
        inv("db.down", "--volumes")
