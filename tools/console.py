"""What the user sees while a task runs: progress for long steps, and the typed confirmation.

Progress, for steps that take more than a couple of seconds: on a terminal, a rich spinner with
the elapsed time; elsewhere (CI logs), a line when the step starts, a line every 15 seconds
while it runs, and one with its duration when it ends.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from tools.config import Target
from tools.errors import WorkflowError

# What a step reports its progress through: print, a list's append, a no-op.
Log = Callable[[str], None]

TICK = 15.0


class Report:
    """What an operation returns to the menu: the lines a task prints (stdout, masked by the
    task edge), then its verdict: the error kind it ends in, if any (tasks.py `show`)."""

    def lines(self) -> list[str]:
        return []

    def verdict(self) -> None:
        """Raise the error this report ends in (OutOfSync, WorkflowError); nothing on success."""


@contextlib.contextmanager
def progress(log: Log, label: str) -> Iterator[None]:
    start = time.monotonic()
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(f"{label}..."):
            yield
        log(f"{label}: done in {time.monotonic() - start:.1f}s")
        return
    log(f"{label}...")
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(TICK):
            log(f"  still {label[:1].lower() + label[1:]} ({time.monotonic() - start:.0f}s)")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    elapsed = time.monotonic() - start
    if elapsed > 2:
        log(f"{label}: done in {elapsed:.1f}s")


def guard(
    target: Target,
    yes: bool,
    ask: Callable[[str], str],
    isatty: Callable[[], bool] | None = None,
    action: str = "",
    files: Sequence[str] = (),
    undone: str = "applied",
) -> None:
    """Protected environments need a typed confirmation, or --yes; no TTY and no --yes refuses.

    The question names what is about to happen (`action`, e.g. "apply 2 file(s)") and the files.
    """
    env = target.name
    if env == "local" or not target.protected or yes:
        return
    if not (isatty or sys.stdin.isatty)():
        raise WorkflowError(
            f"{env} is a protected environment and there is no terminal to confirm",
            hint="pass --yes to go ahead without asking (e.g. in CI)",
        )
    listing = "".join(f"  {name}\n" for name in files)
    answer = ask(f"{listing}{(action or 'apply').capitalize()} on {env}? Type the environment name to confirm: ")
    if (answer or "").strip() != env:
        raise WorkflowError(f"not confirmed; nothing was {undone} on {env}", hint=f"type {env} exactly to confirm")
