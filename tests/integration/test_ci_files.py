"""The files teams drop in to run the gate: the GitHub Actions workflow passes actionlint (and
actionlint catches a broken one), the pre-commit hook passes on the project and fails on a
stale schema.sql, run by pre-commit itself on a temporary repository. Offline.

actionlint is built by scripts/bootstrap (tools/actionlint-cli/go.mod); pre-commit comes from
requirements-dev.txt. Locally a missing one skips with the reason; under CI=true it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_project, require
from tests.helpers import git

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "migrations.yml"


def tool(name: str) -> str | None:
    pinned = Path(sys.prefix) / "bin" / name
    return str(pinned) if pinned.exists() else shutil.which(name)


def actionlint() -> str:
    found = tool("actionlint")
    require(found is not None, "actionlint is not installed (scripts/bootstrap builds it with Go)")
    assert found
    return found


def test_the_workflow_passes_actionlint():
    proc = subprocess.run([actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_fails_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    stepz: 1"))
    proc = subprocess.run([actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "stepz" in proc.stdout


def test_pre_commit_hook_passes_on_the_project_and_fails_on_a_stale_schema_sql(tmp_path):
    pre_commit = tool("pre-commit")
    require(pre_commit is not None, "pre-commit is not installed (pip install -r requirements-dev.txt)")
    assert pre_commit
    p = make_project(tmp_path / "copy", "local")
    (p.root / ".venv").symlink_to(sys.prefix)  # the hook runs .venv/bin/inv, as in a checkout
    git(p.root, "init", "-q", "-b", "main")
    git(p.root, "add", "-A")
    git(p.root, "commit", "-q", "-m", "project")
    env = {"PRE_COMMIT_HOME": str(tmp_path / "cache"), "PATH": os.environ["PATH"]}

    def run(*args: str) -> subprocess.CompletedProcess:
        return p.run([pre_commit, *args, "--all-files", "--color", "never"], extra_env=env)

    for args in (("run",), ("try-repo", str(p.root), "schema-dump-check")):  # the config, then the manifest
        proc = run(*args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Passed" in proc.stdout

    schema = p.root / "schema.sql"
    schema.write_text(schema.read_text().replace("VARCHAR(320)", "VARCHAR(321)"))
    git(p.root, "commit", "-q", "-am", "stale")
    for args in (("run",), ("try-repo", str(p.root), "schema-dump-check")):
        proc = run(*args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Failed" in proc.stdout and "schema.sql is stale" in proc.stdout
