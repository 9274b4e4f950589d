"""`inv schema.erd`: the entity-relationship diagram of schema.sql, as docs/schema.md (Mermaid,
rendered by GitHub and GitLab) and docs/schema.svg (Graphviz).

The diagram is read from PostgreSQL's catalogs of a scratch database built from schema.sql, so
views, enums, several schemas and what the corrections add are all in it. The SVG is drawn by
graphviz-pure (pinned in requirements-dev.txt): a port of Graphviz's `dot` shipped as a wheel,
with its fonts, that writes the same bytes on every machine; a system Graphviz would not (its
fonts and version vary), and `migrate.check` compares the committed files byte for byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools import erdrender, outputs, schemagraph, timings
from tools.config import Config
from tools.console import Log, Report
from tools.errors import OUT_OF_SYNC, WorkflowError
from tools.pg import connect
from tools.scratch import execute_sql, scratch_databases
from tools.stack import Stack

RENDERER = "graphviz-pure"
# README.md may embed the Mermaid diagram between these lines: kept fresh with docs/schema.md.
README_MARKS = ("<!-- schema.erd: begin (inv schema.erd writes what follows) -->", "<!-- schema.erd: end -->")
RENDER_TIMEOUT = 60  # seconds


def renderer() -> str:
    """The pinned renderer of this environment first (same bytes), else one on PATH."""
    pinned = Path(sys.prefix) / "bin" / RENDERER
    found = str(pinned) if pinned.exists() else shutil.which(RENDERER)
    if not found:
        raise WorkflowError(
            f"{RENDERER} (the Graphviz renderer of the diagrams) is not installed",
            hint="run scripts/bootstrap (pip install -r requirements-dev.txt)",
        )
    return found


@timings.timed("diagram drawn (graphviz)")
def svg(dot_text: str) -> str:
    try:
        proc = subprocess.run(
            [renderer(), "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=RENDER_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise WorkflowError(f"{RENDERER} did not finish within {RENDER_TIMEOUT}s") from None
    if proc.returncode:
        raise WorkflowError(f"{RENDERER} failed: {(proc.stderr or proc.stdout).strip()[:200]}")
    return proc.stdout


def graph_of(config: Config, schema_sql: str) -> schemagraph.Graph:
    """The graph of the database `schema_sql` builds (a scratch database, dropped afterwards)."""
    with scratch_databases(config, "erd") as (url,):
        execute_sql(url, schema_sql, "schema.sql")
        with connect(url) as conn:
            return schemagraph.read(conn)


def documents(graph: schemagraph.Graph, base: str = "docs/schema", root: Path | None = None) -> dict[str, str]:
    """{relative path: text} of the Markdown and the SVG of `graph`; with `root`, also its
    README.md when that embeds the diagram between README_MARKS."""
    name = Path(base).name
    docs = {
        f"{base}.md": erdrender.markdown(graph, svg_name=f"{name}.svg"),
        f"{base}.svg": svg(erdrender.dot(graph, title=name)),
    }
    readme = _read(root / "README.md") if root else None
    begin, end = README_MARKS
    if readme and begin in readme and end in readme.split(begin, 1)[1]:
        head, rest = readme.split(begin, 1)
        docs["README.md"] = head + begin + "\n```mermaid\n" + erdrender.mermaid(graph) + "```\n" + end
        docs["README.md"] += rest.split(end, 1)[1]
    return docs


def stale(config: Config, schema_sql: str) -> list[str]:
    """The committed diagrams (docs/schema.md, .svg, README.md's copy) that differ from what `schema_sql` draws."""
    expected = documents(graph_of(config, schema_sql), root=config.root)
    return [rel for rel, text in expected.items() if _read(config.root / rel) != text]


def stale_problem(config: Config, schema_sql: str) -> list[tuple[int, str]]:
    """For migrate.check: one out-of-sync line when the committed diagrams are stale."""
    paths = stale(config, schema_sql)
    if not paths:
        return []
    return [
        (
            OUT_OF_SYNC,
            f"{', '.join(paths)} {'is' if len(paths) == 1 else 'are'} stale against the models: run inv schema.erd "
            "(after inv schema.dump if schema.sql is stale too; inv migrate.diff refreshes both)",
        )
    ]


@timings.timed("diagrams compared")
def refreshed(config: Config, graph: schemagraph.Graph) -> tuple[tuple[Path, str], ...]:
    """For migrate.diff: (path, text) of the diagrams that differ from what `graph` (read from a
    database schema.sql built) draws."""
    (config.root / "docs").mkdir(exist_ok=True)
    expected = documents(graph, root=config.root)
    return tuple((config.root / rel, text) for rel, text in expected.items() if _read(config.root / rel) != text)


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def write(root: Path, docs: dict[str, str]) -> list[str]:
    """Write the files that changed (each atomically); their relative paths."""
    changed = []
    for rel, text in docs.items():
        path = root / rel
        if _read(path) == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        outputs.write_atomic(path, text)
        changed.append(rel)
    return changed


@dataclass
class ErdReport(Report):
    files: list[str]
    changed: list[str] = field(default_factory=list)
    tables: int = 0
    foreign_keys: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        what = f"{self.tables} table(s)/view(s), {self.foreign_keys} foreign key(s)"
        if not self.changed:
            return [f"diagrams unchanged: {', '.join(self.files)} ({what})"]
        return [f"wrote {rel} ({what}, {self.seconds:.1f}s)" for rel in self.changed]


def erd(
    config: Config, stack: Stack, log: Log, schemas: str = "", tables: str = "", output: str = "", force: bool = False
) -> ErdReport:
    """Draw schema.sql (or the part --schema / --tables name) into Markdown + SVG."""
    start = time.monotonic()
    wanted_schemas = tuple(s.strip() for s in schemas.split(",") if s.strip())
    wanted_tables = tuple(t.strip() for t in tables.split(",") if t.strip())
    base = output.strip().removesuffix(".md").removesuffix(".svg") or "docs/schema"
    if (wanted_schemas or wanted_tables) and base == "docs/schema":
        raise WorkflowError(
            "a diagram of part of the schema needs --output (docs/schema.md and .svg draw all of it)",
            hint="e.g. inv schema.erd --tables orders,order_items --output docs/orders",
        )
    if output.strip():  # every file --output names may be written, before anything is
        for suffix in ("", ".md", ".svg") if output.strip().endswith(("/", os.sep)) else (".md", ".svg"):
            outputs.target(config.root, base + suffix, "schema.erd", force, shown=output.strip())
    path = config.root / "schema.sql"
    if not path.exists():
        raise WorkflowError("schema.sql does not exist", hint="run inv schema.dump")
    stack.up(log, ("dev-db",))
    graph = graph_of(config, path.read_text())
    unknown = schemagraph.unknown_names(graph, wanted_schemas, wanted_tables)
    if unknown:
        raise WorkflowError(f"schema.sql has no {', '.join(unknown)}", hint="see docs/schema.md for the names")
    graph = schemagraph.select(graph, wanted_schemas, wanted_tables)
    docs = documents(graph, base, root=config.root if base == "docs/schema" else None)
    if output.strip():
        docs = {rel: outputs.marked(text, "schema.erd") for rel, text in docs.items()}
    changed = write(config.root, docs)
    return ErdReport(list(docs), changed, len(graph.tables), len(graph.foreign_keys), time.monotonic() - start)
