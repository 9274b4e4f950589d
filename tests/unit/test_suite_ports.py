"""free_port() of the suite: a port the kernel calls free is free only until someone binds it, and
parallel workers (pytest-xdist) or another session on the machine asking meanwhile were handed the
same one (two clusters on one port: "could not bind", or a test talking to another test's server).
Ports 1 and 2 stand for the kernel's answers: it never offers them, so no real test can hold them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import conftest
from tests.conftest import ROOT

HOLD = """
import sys
from tests.conftest import free_port
print(free_port(), flush=True)
sys.stdin.read()  # hold it until the test lets go
"""


@pytest.fixture
def kernel(monkeypatch):
    """The kernel's "free port" answers, in order (tools.pgcluster.free_port binds port 0)."""
    answers: list[int] = []
    monkeypatch.setattr("tools.pgcluster.free_port", lambda *a, **k: answers.pop(0))
    yield answers
    conftest.release_ports([1, 2])


def test_a_port_handed_out_is_not_handed_out_again_before_it_is_bound(kernel):
    kernel.extend([1, 1, 2])
    assert conftest.free_port() == 1
    assert conftest.free_port() == 2


def test_a_port_another_process_holds_is_skipped_and_free_again_when_it_ends(kernel):
    patched = "import tools.pgcluster\ntools.pgcluster.free_port = lambda *a, **k: 1\n"
    other = subprocess.Popen(
        [sys.executable, "-c", patched + HOLD],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "1"
        kernel.extend([1, 2])
        assert conftest.free_port() == 2
    finally:
        other.communicate("", timeout=30)
    assert other.returncode == 0
    conftest.release_ports([2])
    kernel.extend([1])
    assert conftest.free_port() == 1
