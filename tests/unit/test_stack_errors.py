"""What `docker compose` prints on failure becomes one line naming the fix (no engine needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.config import Config
from tools.stack import ComposeStack

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
