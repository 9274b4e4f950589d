"""`inv doctor` checks every environment's URL: it parses, its database answers (bounded)."""

from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import running_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("doctor")) as p:
        yield p


def env_lines(proc) -> dict[str, str]:
    return {line.split()[2]: line for line in proc.stdout.splitlines() if line.split()[1:2] == ["env"]}


def test_set_environments_are_checked(project):
    p = project
    ok = p.inv("doctor", extra_env={"STAGING_DATABASE_URL": p.env["DATABASE_URL"]})
    lines = env_lines(ok)
    assert lines["local"].startswith("ok ") and "reachable" in lines["local"]
    assert (
        lines["staging"].startswith("ok ") and "STAGING_DATABASE_URL=postgres://app:****@127.0.0.1:" in lines["staging"]
    )
    assert lines["production"].startswith("ok ") and "PRODUCTION_DATABASE_URL not set" in lines["production"]
    assert "env" not in "".join(ln for ln in ok.stderr.splitlines() if ln.startswith("error:"))


@pytest.mark.parametrize(
    "variable, value, fragment",
    [
        ("STAGING_DATABASE_URL", "postgres://u:pw@h:99999/db", "STAGING_DATABASE_URL is not a valid URL"),
        ("STAGING_DATABASE_URL", "mysql://u:pw@h/db", "STAGING_DATABASE_URL must be a postgres:// URL"),
        (
            "PRODUCTION_DATABASE_URL",
            "postgres://u:pw@127.0.0.1:9/db?sslmode=disable",
            "is not reachable (connection refused)",
        ),
        ("PRODUCTION_DATABASE_URL", "SILENT", "timed out"),
        ("DATABASE_URL", "WRONGPW", "refused the password"),
    ],
    ids=["bad-port", "not-postgres", "refused", "silent-server", "wrong-password"],
)
def test_a_broken_set_environment_fails(project, variable, value, fragment):
    p = project
    if value == "WRONGPW":
        value = p.env["DATABASE_URL"].replace(p.env["POSTGRES_PASSWORD"], "wrongpassword")
    silent = socket.socket()  # accepts connections, never answers: the check must not hang
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    if value == "SILENT":
        value = f"postgres://u:pw@127.0.0.1:{silent.getsockname()[1]}/db?sslmode=disable"
    env = variable.removesuffix("DATABASE_URL").rstrip("_").lower() or "local"
    start = time.monotonic()
    proc = p.inv("doctor", extra_env={variable: value})
    assert time.monotonic() - start < 40
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = env_lines(proc)[env]
    assert line.startswith("FAIL") and fragment in line, proc.stdout
    assert f"env {env}" in proc.stderr.strip().splitlines()[-1]
    assert "pw@" not in proc.stdout and "wrongpassword" not in proc.stdout
    silent.close()
