"""The suite runs in parallel (pyproject's addopts: pytest-xdist); `inv migrate.test`, which runs
tests/migrations with pytest on the project's dev server, keeps running them in one process."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def collect(**env: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/unit/test_progress.py", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_suite_runs_on_workers_and_the_data_tests_of_migrate_test_in_one_process():
    from tools.datatests import ON_DEV

    assert "workers [" in collect()
    assert "workers [" not in collect(**{ON_DEV: "1"})
