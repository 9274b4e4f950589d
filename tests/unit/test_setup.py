"""A new .env: its own password, Compose project and free ports; an existing .env is never touched."""

from __future__ import annotations

import shutil
import socket

from dotenv import dotenv_values

from tests.conftest import ROOT
from tools.envfile import ensure_dotenv
from tools.pgcluster import free_port


def _checkout(tmp_path, name):
    root = tmp_path / name / "main"  # two clones with the same directory name
    root.mkdir(parents=True)
    shutil.copy(ROOT / ".env.example", root / ".env.example")
    return root


def test_each_new_env_gets_its_own_project_password_and_ports(tmp_path):
    logs = []
    a, b = _checkout(tmp_path, "a"), _checkout(tmp_path, "b")
    assert ensure_dotenv(a, logs.append) and ensure_dotenv(b, logs.append)
    va, vb = dotenv_values(a / ".env"), dotenv_values(b / ".env")
    assert va["COMPOSE_PROJECT_NAME"].startswith("main-") and vb["COMPOSE_PROJECT_NAME"].startswith("main-")
    assert va["COMPOSE_PROJECT_NAME"] != vb["COMPOSE_PROJECT_NAME"]
    assert len(va["POSTGRES_PASSWORD"]) == 32 and va["POSTGRES_PASSWORD"] != vb["POSTGRES_PASSWORD"]
    assert va["DB_PORT"] != va["DEV_DB_PORT"]
    assert va["POSTGRES_PASSWORD"] in va["DATABASE_URL"] and f":{va['DB_PORT']}/" in va["DATABASE_URL"]
    assert (a / ".env").stat().st_mode & 0o077 == 0
    assert not any(va["POSTGRES_PASSWORD"] in line for line in logs)


def test_existing_env_is_left_alone(tmp_path):
    root = _checkout(tmp_path, "a")
    (root / ".env").write_text("POSTGRES_PASSWORD=mine\n")
    assert ensure_dotenv(root, print) is False
    assert (root / ".env").read_text() == "POSTGRES_PASSWORD=mine\n"


def test_taken_port_is_replaced_by_a_free_one(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        taken = sock.getsockname()[1]
        port = free_port(taken)
        assert port != taken and port > taken
        assert free_port(taken, avoid={port}) not in (taken, port)


def test_ports_taken_once_the_engine_ran_move_in_a_new_env(tmp_path, monkeypatch):
    """setup writes a new .env before it starts the Docker engine; containers that come back
    with the engine (a stack of an older checkout) may then hold its ports: they move."""
    from tools import setup as setup_mod

    root = _checkout(tmp_path, "a")
    shutil.copy(ROOT / "atlas.hcl", root / "atlas.hcl")
    held = []

    def engine_starts(config, log):  # a container comes back on the new .env's DB_PORT
        if held:
            return
        sock = socket.socket()
        sock.bind(("127.0.0.1", int(dotenv_values(root / ".env")["DB_PORT"])))
        sock.listen(1)
        held.append(sock)

    monkeypatch.setattr(setup_mod, "ensure_atlas", lambda root, log: "/bin/true")
    monkeypatch.setattr(setup_mod.atlas_mod, "version", lambda binary: "v0.13.1")
    monkeypatch.setattr(setup_mod.compose_stack, "docker_answers", lambda: False)
    monkeypatch.setattr(setup_mod, "can_provision_docker", lambda: True)
    monkeypatch.setattr(setup_mod, "ensure_docker", engine_starts)
    monkeypatch.setattr(setup_mod.pgserver, "find_bindir", lambda: "/usr/lib/postgresql/15/bin")
    logs: list[str] = []
    try:
        setup_mod.setup(root, logs.append)
        before, after = held[0].getsockname()[1], dotenv_values(root / ".env")
        assert int(after["DB_PORT"]) != before and after["DB_PORT"] != after["DEV_DB_PORT"]
        assert f":{after['DB_PORT']}/" in after["DATABASE_URL"]
        assert f"port {before} on 127.0.0.1 was taken once the Docker engine ran: DB_PORT={after['DB_PORT']}" in logs
        # an existing .env is never changed: the second setup only reports
        (root / ".env").write_text(
            (root / ".env").read_text().replace(f"DB_PORT={after['DB_PORT']}", f"DB_PORT={before}", 1)
        )
        setup_mod.setup(root, logs.append)
        assert dotenv_values(root / ".env")["DB_PORT"] == str(before)
    finally:
        for sock in held:
            sock.close()
