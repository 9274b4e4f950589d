"""`inv schema.dump`: the models as schema.sql (dumped by the stack: the app container, or the
host without Docker), written atomically when it changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tools.config import Config
from tools.console import Log, Report
from tools.errors import OutOfSync, WorkflowError
from tools.stack import Stack


@dataclass
class DumpReport(Report):
    path: Path
    changed: bool
    text: str = ""
    written: bool = True  # False: compared only (--check)

    def lines(self) -> list[str]:
        if self.written:
            return ["schema.sql updated" if self.changed else "schema.sql unchanged"]
        return [] if self.changed else ["schema.sql is up to date"]

    def verdict(self) -> None:
        if self.changed and not self.written:
            raise OutOfSync("schema.sql is stale against the models", hint="run inv schema.dump", prefix="")


def dump(config: Config, stack: Stack, log: Log, write: bool = True) -> DumpReport:
    return report_of(config, stack.dump_schema(log), write)


def report_of(config: Config, text: str, write: bool = True) -> DumpReport:
    """The report of a dump that printed `text` (schema.sql written when it changed and `write`)."""
    if not text.strip():
        raise WorkflowError("the schema dump printed nothing", hint="check that app/models defines tables")
    path = config.root / "schema.sql"
    old = path.read_text() if path.exists() else None
    changed = old != text
    if changed and write:
        tmp = path.with_suffix(".sql.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return DumpReport(path, changed, text, written=write)
