"""tools/children.py: a child runs while the caller works, is never stopped by its own output,
is killed at its timeout, and does not outlive a failing block."""

from __future__ import annotations

import sys
import time

import pytest

from tools.children import Child, ChildTimeout


def test_a_child_runs_while_the_caller_works():
    start = time.monotonic()
    with Child([sys.executable, "-c", "import time; time.sleep(0.5); print('done')"], "sleeper") as child:
        time.sleep(0.5)  # the caller's own work
        result = child.wait()
    assert result.returncode == 0 and result.stdout.strip() == "done"
    assert time.monotonic() - start < 0.95, "the two half-seconds overlapped"


def test_output_larger_than_a_pipe_does_not_stop_the_child():
    code = "import sys; sys.stdout.write('x' * 2_000_000); sys.stderr.write('e' * 200_000)"
    with Child([sys.executable, "-c", code], "big printer") as child:
        deadline = time.monotonic() + 30
        while child.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # nobody reads: with pipes the child would block here forever
        assert child.proc.poll() == 0
        result = child.wait()
    assert len(result.stdout) == 2_000_000 and len(result.stderr) == 200_000


def test_a_child_past_its_timeout_is_killed():
    with Child([sys.executable, "-c", "import time; time.sleep(30)"], "slow", timeout=0.5) as child:
        with pytest.raises(ChildTimeout):
            child.wait()
        assert child.proc.poll() is not None


def test_a_failing_block_stops_its_child():
    with pytest.raises(RuntimeError), Child([sys.executable, "-c", "import time; time.sleep(30)"], "orphan") as child:
        raise RuntimeError("the caller failed")
    assert child.proc.poll() is not None, "the child outlived the block that started it"
