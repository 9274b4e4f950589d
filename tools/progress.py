"""Progress for steps that take more than a couple of seconds.

On a terminal: a rich spinner with the elapsed time. Elsewhere (CI logs): a line when the step
starts, a line every 15 seconds while it runs, and one with its duration when it ends.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

TICK = 15.0


@contextlib.contextmanager
def progress(log, label: str):
    start = time.monotonic()
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(f"{label}..."):
            yield
        log(f"{label}: done in {time.monotonic() - start:.1f}s")
        return
    log(f"{label}...")
    stop = threading.Event()

    def tick():
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
