"""Child processes started now and waited for later, so that a task does other work meanwhile:
`inv migrate.diff` replays the history while the schema dump runs, and builds the models'
database while Atlas diffs.

The child writes into temporary files, not pipes: a child that prints more than a pipe holds
(a large schema dump) would otherwise stop until it is read. An interruption while waiting ends
the child the way `signals.stop_child` does (SIGINT, a bounded wait, then SIGKILL); so does
leaving the `with` block on an error, so no child outlives the step that started it.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from tools import signals, timings


class ChildTimeout(Exception):
    """The child ran longer than its timeout (it was killed)."""


class Child:
    def __init__(
        self,
        argv: Sequence[str],
        what: str,
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
        label: str | None = None,
    ) -> None:
        self.what, self.label = what, label or what
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self._out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this call; _close() closes it
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - as above
        self.result: subprocess.CompletedProcess[str] | None = None
        try:
            with signals.shielded():  # a signal now waits until the child is known
                self.proc = subprocess.Popen(
                    list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err
                )
        except BaseException:
            self._close()
            raise

    def __enter__(self) -> Child:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self.stop()
        self._close()

    def wait(self) -> subprocess.CompletedProcess[str]:
        """Wait for the child (within its timeout); its exit code and output."""
        if self.result is not None:
            return self.result
        with timings.step(self.label):
            try:
                _wait(self.proc, max(0.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close()
                raise ChildTimeout(f"{self.what} did not finish within {self.timeout:.0f}s") from None
            except KeyboardInterrupt:
                self.stop()
                raise
        self.result = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, *self._read())
        self._close()
        return self.result

    def output_so_far(self) -> tuple[str, str]:
        """stdout and stderr as written until now (after `stop`: everything)."""
        return self._read()

    def stop(self) -> None:
        """End the child if it still runs (SIGINT, bounded wait, SIGKILL) and wait for it."""
        if self.proc.poll() is None:
            signals.stop_child(self.proc, self.what)

    def _read(self) -> tuple[str, str]:
        out = []
        for f in (self._out, self._err):
            if f.closed:
                out.append("")
                continue
            f.seek(0)
            out.append(f.read().decode(errors="replace"))
        return out[0], out[1]

    def _close(self) -> None:
        for f in (self._out, self._err):
            if not f.closed:
                f.close()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Popen.wait(timeout), woken the moment the child ends: Popen polls with sleeps of up to
    50 ms when given a timeout, which a task that waits for a dozen children pays a dozen times.
    Linux's pidfd turns the wait into one select(); elsewhere, Popen.wait."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        proc.wait(timeout=timeout)
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready and proc.poll() is None:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        proc.wait()
    finally:
        os.close(fd)
