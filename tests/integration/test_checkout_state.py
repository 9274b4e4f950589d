"""Commands act only on what is theirs: stale pid files, default ports, a missing .env.

Real PostgreSQL 15 clusters (the local backend) and the real Atlas.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, atlas_binary, make_project, require, throwaway_cluster

pytestmark = pytest.mark.integration


def _answers(url: str) -> bool:
    import psycopg

    from tools.urls import libpq_url

    try:
        with psycopg.connect(libpq_url(url, "x"), connect_timeout=5) as conn:
            return conn.execute("SELECT 1").fetchone()[0] == 1
    except psycopg.Error:
        return False


@pytest.fixture
def other_server(tmp_path):
    """Another PostgreSQL server (another data directory, another port), like a neighbour's."""
    with throwaway_cluster(tmp_path / "other") as cluster:
        yield cluster


def test_a_pid_file_naming_another_clusters_postmaster_is_stale(tmp_path, other_server):
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    p = make_project(tmp_path / "p", "local")
    other_pid = other_server.pid()
    assert other_pid and _answers(other_server.url())
    up = p.inv("db.up")
    assert up.returncode == 0, up.stderr
    try:
        assert p.inv("db.down").returncode == 0
        # After a crash: the project's cluster is stopped and its pid file names another postmaster.
        pidfile = p.root / ".state/pg/db/postmaster.pid"
        pidfile.write_text(f"{other_pid}\n")
        os.chmod(pidfile, 0o600)

        status = p.inv("db.status")
        assert status.returncode == 0, status.stderr
        db_line = [ln for ln in status.stdout.splitlines() if ln.strip().startswith("db ")][0]
        assert "running" not in db_line and "stale pid file" in db_line

        down = p.inv("db.down")
        assert down.returncode == 0, down.stderr
        assert f"postmaster.pid names pid {other_pid}, which is not this cluster's server" in down.stderr
        assert other_server.pid() == other_pid and _answers(other_server.url()), "db.down stopped another server"

        pidfile.write_text(
            f"{other_pid}\n{other_server.datadir}\n"
        )  # a copied pid file: its data directory says so too
        up = p.inv("db.up")
        assert up.returncode == 0, up.stderr
        assert f"names pid {other_pid}" in up.stderr
        assert _answers(p.env["DATABASE_URL"])
        status = p.inv("db.status")
        db_line = [ln for ln in status.stdout.splitlines() if ln.strip().startswith("db ")][0]
        assert "running" in db_line
        assert _answers(other_server.url())
    finally:
        p.inv("db.down", "--volumes")
    assert not _answers(p.env["DATABASE_URL"])
    assert other_server.pid() == other_pid and _answers(other_server.url()), "the other server must keep running"


def test_a_live_non_postgres_pid_is_stale(tmp_path):
    """A pid reused by an unrelated program: not running, and never signalled."""
    from tools.pgcluster import Cluster

    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        datadir = tmp_path / "data"
        datadir.mkdir()
        (datadir / "postmaster.pid").write_text(f"{sleeper.pid}\n{datadir}\n")
        cluster = Cluster(datadir, 1)
        assert cluster.pid() is None and cluster.stale_pid() == sleeper.pid
        lines = []
        cluster.stop(log=lines.append)
        assert sleeper.poll() is None, "stop signalled an unrelated process"
        assert not (datadir / "postmaster.pid").exists() and len(lines) == 1
    finally:
        sleeper.kill()
        sleeper.wait()


# --- ports: a missing or empty DB_PORT resolves to the default Compose and the clusters use ---

DOTENV_VARIANTS = {
    "no-port-old-example": "DATABASE_URL=postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@127.0.0.1:${DB_PORT}/${POSTGRES_DB}?sslmode=disable\n"
    "DEV_DATABASE_URL=postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@127.0.0.1:${DEV_DB_PORT}/dev?sslmode=disable\n",
    "empty-port": "DB_PORT=\nDEV_DB_PORT=\n"
    "DATABASE_URL=postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@127.0.0.1:${DB_PORT}/${POSTGRES_DB}?sslmode=disable\n"
    "DEV_DATABASE_URL=postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@127.0.0.1:${DEV_DB_PORT}/dev?sslmode=disable\n",
    "empty-port-example": "DB_PORT=\nDEV_DB_PORT=\n"
    "DATABASE_URL=postgres://${POSTGRES_USER:-app}:${POSTGRES_PASSWORD}@127.0.0.1:${DB_PORT:-5433}/${POSTGRES_DB:-app}?sslmode=disable\n"
    "DEV_DATABASE_URL=postgres://${POSTGRES_USER:-app}:${POSTGRES_PASSWORD}@127.0.0.1:${DEV_DB_PORT:-5434}/dev?sslmode=disable\n",
}

# Run inside a private network namespace, where 127.0.0.1's ports are ours alone: a decoy
# server on 5432 (where a URL with an empty port would lead libpq and Atlas), then `inv dev` and
# `inv migrate.apply` of a project whose .env has no usable DB_PORT / DEV_DB_PORT.
IN_NAMESPACE = textwrap.dedent("""
    import json, subprocess, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from tools.pgcluster import Cluster
    project, password = Path(sys.argv[2]), sys.argv[3]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    decoy = Cluster(project.parent / "decoy" / "data", 5432, "app", password)
    decoy.start()
    out = {}
    try:
        for args in (["dev"], ["migrate.apply"], ["db.status"]):
            proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=project, capture_output=True, text=True, timeout=600)
            out[args[0]] = [proc.returncode, proc.stdout, proc.stderr]
        import psycopg
        with psycopg.connect(f"postgresql://app:{password}@127.0.0.1:5432/postgres", autocommit=True) as conn:
            out["decoy_databases"] = sorted(r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname NOT IN ('postgres','template0','template1')"))
            out["decoy_tables"] = sorted(r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    finally:
        subprocess.run([sys.executable, "-m", "invoke", "db.down", "--volumes"], cwd=project, capture_output=True, timeout=120)
        decoy.destroy()
    print(json.dumps(out))
""")


@pytest.mark.parametrize("variant", sorted(DOTENV_VARIANTS))
def test_missing_or_empty_port_reaches_the_default_never_5432(tmp_path, variant):
    import json
    import shutil

    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    require(
        os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"),
        "needs root, unshare and ip for a private network namespace",
    )
    p = make_project(tmp_path, "local")
    password = p.env["POSTGRES_PASSWORD"]
    (p.root / ".env").write_text(
        f"STACK=local\nPOSTGRES_USER=app\nPOSTGRES_PASSWORD={password}\nPOSTGRES_DB=app\n"
        f"COMPOSE_PROJECT_NAME={p.env['COMPOSE_PROJECT_NAME']}\n" + DOTENV_VARIANTS[variant]
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_PORT", "DATABASE_URL")) and not k.startswith("POSTGRES_")
    }
    env["ATLAS_NO_UPDATE_NOTIFIER"] = "1"
    proc = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", IN_NAMESPACE, str(ROOT), str(p.root), password],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for task in ("dev", "migrate.apply"):
        code, stdout, stderr = out[task]
        assert code == 0, stderr
        assert password not in stdout + stderr
    assert "127.0.0.1:5433" in out["db.status"][1] and "127.0.0.1:5434" in out["db.status"][1]
    assert ":5432" not in out["db.status"][1]
    assert out["decoy_databases"] == [] and out["decoy_tables"] == [], "the server on 5432 was touched"


# --- .env is required ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("db.status",), ("db.down", "--volumes"), ("migrate.status",), ("doctor",), ("dev",)], ids=lambda a: a[0]
)
def test_every_task_but_setup_requires_dotenv(tmp_path, args):
    p = make_project(tmp_path, "local")
    (p.root / ".env").unlink()
    proc = p.inv(*args)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == ["error: .env not found in project/: run inv setup (it writes .env from .env.example)"], (
        proc.stderr
    )
    assert "stack stopped" not in proc.stdout


# --- baseline: alembic_version's primary key under PostgreSQL's default name ------------------

LIKE_ALEMBIC_DEFAULT_PKEY = """
import sys
from sqlalchemy import create_engine, text
import app.models
from app.models.base import Base

engine = create_engine(sys.argv[1].replace("postgres://", "postgresql+psycopg://"))
Base.metadata.create_all(engine)
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))  # alembic_version_pkey
    conn.execute(text("INSERT INTO alembic_version VALUES ('ae1027a6acf')"))
"""


def test_baseline_exempts_alembic_version_whatever_its_primary_key_is_called(tmp_path):
    import psycopg

    from tests.conftest import running_project
    from tools.urls import libpq_url

    with running_project(tmp_path) as p:
        with psycopg.connect(libpq_url(p.env["DATABASE_URL"], "x"), autocommit=True) as conn:
            conn.execute('CREATE DATABASE "legacy_pkey"')
        url = p.env["DATABASE_URL"].replace("/app?", "/legacy_pkey?")
        built = p.run([sys.executable, "-c", LIKE_ALEMBIC_DEFAULT_PKEY, url])
        assert built.returncode == 0, built.stderr
        with psycopg.connect(libpq_url(url, "x")) as conn:
            assert (
                conn.execute(
                    "SELECT conname FROM pg_constraint WHERE conrelid = 'alembic_version'::regclass"
                ).fetchone()[0]
                == "alembic_version_pkey"
            )
        from tests.integration.test_baseline import newest

        version, _ = newest(p)  # the models build what every file of migrations/ builds
        dry = p.inv(
            "migrate.baseline",
            "--env",
            "staging",
            "--version",
            version,
            "--dry-run",
            extra_env={"STAGING_DATABASE_URL": url},
        )
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "drift:" not in dry.stdout and "staging matches what migrations/ up to" in dry.stdout
