"""tools/signals.py: SIGINT, SIGTERM and SIGHUP as one exception; children stopped and waited for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tools import signals
from tools.atlas import Result


@pytest.mark.parametrize(
    "sig, code",
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_each_signal_raises_once_with_its_code(sig, code):
    with pytest.raises(signals.Interrupted) as caught, signals.interruptible():
        os.kill(os.getpid(), sig)
        time.sleep(1)
    assert caught.value.signum == sig and signals.exit_code(caught.value) == code
    assert signals.line(caught.value).startswith(f"interrupted ({sig.name}): nothing more was started; ")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored


def test_a_second_signal_does_not_cut_the_cleanup_short():
    cleaned = False
    with pytest.raises(signals.Interrupted), signals.interruptible():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        finally:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            cleaned = True
    assert cleaned


def test_shielded_steps_finish_before_the_signal_raises():
    steps = []
    with pytest.raises(signals.Interrupted) as caught, signals.interruptible():
        with signals.shielded():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
            steps.append("renamed")
        steps.append("after")
    assert steps == ["renamed"] and caught.value.signum == signal.SIGHUP


def test_note_says_what_stays():
    with pytest.raises(signals.Interrupted) as caught, signals.note("outer"), signals.note("inner"):
        raise KeyboardInterrupt
    assert signals.line(caught.value).endswith("; inner")


def test_plain_keyboard_interrupt_is_sigint():
    assert signals.exit_code(KeyboardInterrupt()) == 130
    assert "(SIGINT)" in signals.line(KeyboardInterrupt())


TRAPS_SIGINT = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGINT, lambda *a: (print('rolled back'), sys.exit(1)))\n"
    "print('ready', flush=True)\ntime.sleep(30)\n"
)
IGNORES_SIGINT = (
    "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(30)\n"
)


def _child(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_stop_child_sends_sigint_and_waits():
    said = []
    out, _ = signals.stop_child(_child(TRAPS_SIGINT), "child", grace=5, say=said.append)
    assert "rolled back" in out and said == []


def test_stop_child_kills_only_after_the_grace_time():
    said = []
    proc = _child(IGNORES_SIGINT)
    start = time.monotonic()
    signals.stop_child(proc, "child", grace=0.5, say=said.append)  # announced at once: grace < QUIET
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - start >= 0.5
    assert said == ["waiting for child to stop (up to 0.5s)...", "child did not stop after 0.5s: killing it"]


@pytest.mark.parametrize(
    "code, stdout, stderr, interrupted",
    [
        (1, "", "", True),  # migrate diff after SIGINT says nothing
        (1, "", "Error: context canceled", True),
        (
            1,
            "  -- migrating version 2\n    pq: canceling statement due to user request\n",
            "Error: sql: no rows in result set",
            True,
        ),
        (1, "", "Error: pq: canceling statement due to lock timeout", False),
        (1, "", "Error: sql/migrate: read migration directory state: checksum mismatch", False),
        (-2, "", "", True),
        (-15, "", "", True),
    ],
    ids=[
        "silent",
        "context-canceled",
        "statement-canceled",
        "lock-timeout",
        "checksum",
        "killed-by-SIGINT",
        "killed-by-SIGTERM",
    ],
)
def test_atlas_interrupted_alone_is_told_from_a_failure(code, stdout, stderr, interrupted):
    result = Result(argv=["atlas", "migrate", "apply"], code=code, stdout=stdout, stderr=stderr)
    assert bool(result.canceled or result.killed_by) is interrupted
