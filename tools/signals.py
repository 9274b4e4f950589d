"""Interruptions: SIGINT, SIGTERM and SIGHUP end a task the same way, with every cleanup run.

SIGTERM is what `timeout`, `docker stop`, systemd, Kubernetes and CI cancellation send, SIGHUP
what a closed terminal sends. Left to their defaults they kill the process on the spot: no
`finally` runs, scratch databases stay, a child goes on alone. For the duration of a task
(`interruptible()`, used by the task edge) each of the three raises `Interrupted` in the main
thread instead, so every context manager unwinds; the edge prints one line and exits 128+signum
(130, 143, 129).

Only the first signal raises: later ones, while the task unwinds (waiting for a child to roll
back, dropping scratch databases), are ignored, so that cleanup is not cut short. SIGKILL stays
the way to stop at once.

`stop_child` ends a child process on an interruption: it sends the child SIGINT, waits for it
(bounded, with a visible line) and kills it only after that. Stdlib only.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from tools.console import Log

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: How long a child may take to wind up after SIGINT before it is killed (an apply rolls back).
CHILD_GRACE = 60.0
#: How long before that wait is announced (Atlas rolls back in milliseconds).
QUIET = 2.0


class Interrupted(KeyboardInterrupt):
    """A task was interrupted by a signal (SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, signum: int = signal.SIGINT, note: str = "") -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.note = note


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def signum_of(exc: BaseException) -> int:
    return getattr(exc, "signum", signal.SIGINT)


def exit_code(exc: BaseException) -> int:
    """128 + the signal number, as a shell reports a process ended by that signal."""
    return 128 + signum_of(exc)


DEFAULT_NOTE = "an apply in progress rolls back its current file"


def line(exc: BaseException) -> str:
    """The one line the task edge prints for an interruption."""
    note = getattr(exc, "note", "") or DEFAULT_NOTE
    return f"interrupted ({signal_name(signum_of(exc))}): nothing more was started; {note}"


@contextlib.contextmanager
def note(text: str) -> Iterator[None]:
    """Say what an interruption inside this block leaves behind (printed by the task edge)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        if not isinstance(exc, Interrupted):
            raise Interrupted(signal.SIGINT, text) from None
        if not exc.note:
            exc.note = text
        raise


class _State:
    active = False  # inside interruptible()
    raised: int | None = None  # the signal that raised, once
    shield = 0  # depth of shielded() blocks
    pending: int | None = None  # a signal that arrived while shielded


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.raised is not None:
        return  # already unwinding: let the cleanup finish
    if _state.shield:
        _state.pending = _state.pending or signum
        return
    _state.raised = signum
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into `Interrupted` (once) while the block runs."""
    if threading.current_thread() is not threading.main_thread() or _state.active:
        yield
        return
    previous = {}
    _state.active, _state.raised, _state.pending, _state.shield = True, None, None, 0
    try:
        for signum in HANDLED:
            previous[signum] = signal.signal(signum, _handler)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
        _state.active = False


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A few steps that must not be cut in two (renames): a signal waits for the block's end."""
    _state.shield += 1
    try:
        yield
    finally:
        _state.shield -= 1
    if not _state.shield and _state.pending is not None and _state.raised is None:
        _state.raised, signum = _state.pending, _state.pending
        raise Interrupted(signum)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stop_child(proc: subprocess.Popen, what: str, grace: float = CHILD_GRACE, say: Log = log) -> tuple[str, str]:
    """After an interruption: SIGINT to the child, wait up to `grace` seconds, then SIGKILL.

    Returns what the child still wrote on stdout and stderr (when the Popen has pipes).
    SIGINT whatever the signal we got: it is the one signal every child we run (Atlas, whose
    v0.13.1 cancels its context on SIGINT only) winds up cleanly on.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    quiet = min(QUIET, grace)
    try:
        return _drain(proc, quiet)
    except subprocess.TimeoutExpired:
        pass
    say(f"waiting for {what} to stop (up to {grace:g}s)...")
    try:
        return _drain(proc, grace - quiet)
    except subprocess.TimeoutExpired:
        say(f"{what} did not stop after {grace:g}s: killing it")
        proc.kill()
        return _drain(proc, None)


def _drain(proc: subprocess.Popen, timeout: float | None) -> tuple[str, str]:
    if proc.stdout is None and proc.stderr is None:
        proc.wait(timeout=timeout)
        return "", ""
    out, err = proc.communicate(timeout=timeout)
    return out or "", err or ""
