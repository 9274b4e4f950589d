"""What `docker compose` prints on failure becomes one line naming the fix (no engine needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.compose_stack import ComposeStack
from tools.config import Config

ROOT_DUMMY = Path("/nonexistent")


def fail(stderr: str):
    config = Config(root=ROOT_DUMMY, values={"POSTGRES_PASSWORD": "s3cret"}, env_names=("local",))
    proc = subprocess.CompletedProcess(["docker"], 1, stdout="", stderr=stderr)
    return str(ComposeStack(config)._fail(proc, "docker compose up"))


@pytest.mark.parametrize(
    "stderr, expected",
    [
        (
            'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: no such host',
            "an image cannot be pulled",
        ),
        ("Error response from daemon: pull access denied for postgres, repository does not exist", "run inv setup"),
        (
            "Error response from daemon: driver failed programming external connectivity: Bind for 127.0.0.1:5433 "
            "failed: port is already allocated",
            "choose other ports in .env (DB_PORT / DEV_DB_PORT)",
        ),
        (
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            "no Docker engine answers",
        ),
        ("service db: error: password s3cret rejected", "password ****"),
    ],
)
def test_compose_failures_name_the_fix(stderr, expected):
    line = fail(stderr)
    assert expected in line
    assert "\n" not in line and "s3cret" not in line


@pytest.fixture(autouse=True)
def no_engine_asked(monkeypatch):
    """Unit tests never ask a real engine who holds a port (tests/e2e does)."""
    monkeypatch.setattr("tools.docker_setup.port_holders", lambda port: [])


TAKEN = (
    "Error response from daemon: driver failed programming external connectivity on endpoint x-db-1 (ab12): "
    "Bind for 127.0.0.1:5433 failed: port is already allocated"
)


@pytest.mark.parametrize(
    "holders, expected",
    [
        ([], ["port 5433 on 127.0.0.1 is taken by a process outside Docker", "ss -ltnp 'sport = :5433'"]),
        ([("pg-test", "", "")], ["taken by the container pg-test", "docker stop pg-test"]),
        (
            [("main-beb4aa-db-1", "main-beb4aa", "/srv/other checkout")],
            [
                "taken by main-beb4aa-db-1, Compose project main-beb4aa of the checkout /srv/other checkout",
                "cd '/srv/other checkout' && inv db.down",
            ],
        ),
    ],
)
def test_a_taken_port_names_who_holds_it_and_how_to_stop_it(monkeypatch, holders, expected):
    asked = []
    monkeypatch.setattr("tools.docker_setup.port_holders", lambda port: asked.append(port) or holders)
    line = fail(TAKEN)
    assert asked == [5433]
    assert all(part in line for part in expected), line
    assert "choose other ports in .env (DB_PORT / DEV_DB_PORT)" in line and "\n" not in line
