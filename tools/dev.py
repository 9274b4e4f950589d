"""`inv dev`, the main job: stack up, the models dumped, the initial migration if there is none,
applied to local, its status."""

from __future__ import annotations

from collections.abc import Iterator

from tools.apply import apply
from tools.config import Config
from tools.console import Log
from tools.diff import diff
from tools.migrations import migration_files
from tools.stack import Stack
from tools.status import status


def dev(config: Config, stack: Stack, log: Log) -> Iterator[str]:
    """The lines to print, each step's as it ends (between the steps' progress on stderr); ends
    like `inv migrate.status` (exit 2 while files are pending)."""
    stack.up(log)
    if not migration_files(config):
        yield from diff(config, stack, "initial", log).lines()
    local = config.target("local")
    yield from apply(config, local, log).lines()
    report = status(config, local)
    yield from report.lines()
    report.verdict()
