"""Where a task's time goes: `inv migrate.diff --timings` (or SCHEMAFLOW_TIMINGS=1 for any task)
prints one line per step after the task's own output, on stderr.

Steps nest: a step's time is its own, without the steps it contains (an Atlas run inside a
replay counts once, under `atlas ...`), so the lines add up to the whole run. What no step covers
(Python between the steps) is the `other` line; `start-up` is the time from the process's start
to the first line of tasks.py (the interpreter, invoke, imports).

Recording is always on (a clock read per step); printing is what the switch turns on.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

ENV_SWITCH = "SCHEMAFLOW_TIMINGS"

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class _Totals:
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    startup: float | None = None
    stack: list[list[float]] = field(default_factory=list)  # per open step: [start, time of its children]

    def add(self, label: str, seconds: float) -> None:
        if label not in self.seconds:
            self.order.append(label)
            self.seconds[label] = 0.0
            self.counts[label] = 0
        self.seconds[label] += seconds
        self.counts[label] += 1


_totals = _Totals()


def reset() -> None:
    """Start a new record (a task starts one; tests too)."""
    global _totals
    _totals = _Totals(startup=process_age())


def process_age() -> float | None:
    """Seconds since this process started (Linux: /proc), or None where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22 of proc(5): starttime, in clock ticks since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def step(label: str) -> Iterator[None]:
    """Time the block under `label` (its own time: nested steps are subtracted)."""
    frame = [time.perf_counter(), 0.0]
    _totals.stack.append(frame)
    try:
        yield
    finally:
        _totals.stack.pop()
        spent = time.perf_counter() - frame[0]
        _totals.add(label, spent - frame[1])
        if _totals.stack:
            _totals.stack[-1][1] += spent


def timed(label: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator form of `step`."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            with step(label):
                return fn(*args, **kwargs)

        return inner

    return wrap


def enabled(flag: bool = False) -> bool:
    return flag or os.environ.get(ENV_SWITCH, "").strip().lower() in ("1", "true", "yes", "on")


def lines() -> list[str]:
    """The table: one line per step in the order first seen, with its count and share."""
    total = time.perf_counter() - _totals.started
    rows: list[tuple[str, float, int]] = []
    if _totals.startup is not None:
        rows.append(("start-up (interpreter, invoke, imports)", _totals.startup, 1))
        total += _totals.startup
    rows += [(label, _totals.seconds[label], _totals.counts[label]) for label in _totals.order]
    covered = sum(seconds for _, seconds, _ in rows)
    rows.append(("other (Python between the steps)", max(0.0, total - covered), 1))
    width = max(len(label) for label, _, _ in rows)
    out = [f"timings: {total * 1000:.0f} ms in all"]
    for label, seconds, count in rows:
        times = f" x{count}" if count > 1 else ""
        share = 100 * seconds / total if total else 0.0
        out.append(f"  {label.ljust(width)} {seconds * 1000:8.0f} ms {share:5.1f}%{times}")
    return out
