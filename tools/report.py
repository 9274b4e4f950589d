"""`inv migrate.report`: what a reviewer needs to approve the migrations a branch adds, in
Markdown (what a CI job posts as a pull-request comment).

Per new file: its statements, what is destructive (the apply guard's verdict: Atlas's lint and
the type changes), the lock findings (squawk). Then the rename hints and a Mermaid diagram of
just the tables the change touches, before and after, changed parts marked. Before and after
are real databases: migrations/ replayed without and with the new files, read by catalogs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools import atlaslint, catalog, erdrender, gitbase, outputs, safety, schemagraph
from tools.config import Config
from tools.console import Log, Report
from tools.migrations import migration_files, regular_files_only, statements_of
from tools.pg import connect
from tools.scratch import replay_migrations, scratch_databases
from tools.stack import Stack

# Catalog kinds that belong to a table (their name is schema.table.x; an index carries its table).
TABLE_PARTS = ("constraint", "trigger", "policy")
TASK = "migrate.report"  # the marker of the files --output writes


@dataclass
class FileReport:
    name: str
    statements: list[str]
    findings: list[safety.Finding] = field(default_factory=list)


@dataclass
class ChangeReport(Report):
    base: str
    files: list[FileReport] = field(default_factory=list)
    renames: list[str] = field(default_factory=list)
    before: str = ""  # Mermaid of the touched tables
    after: str = ""
    other: list[str] = field(default_factory=list)  # changes the diagram does not show
    output: Path | None = None

    def markdown(self) -> list[str]:
        out = [f"## Migrations: {len(self.files)} new file(s) against {self.base}", ""]
        if not self.files:
            return out + ["No new migration file: nothing to review."]
        for f in self.files:
            out += [f"### `migrations/{f.name}`", "", f"{len(f.statements)} statement(s):", "", "```sql"]
            out += [s.strip() for s in f.statements] + ["```", ""]
            blocking = [x for x in f.findings if x.blocking]
            locks = [x for x in f.findings if not x.blocking and x.source == "squawk"]
            rest = [x for x in f.findings if not x.blocking and x.source != "squawk"]
            if blocking:
                out += ["**Destructive**: `inv migrate.apply` stops this file unless `--allow-destructive`:", ""]
                out += [_item(x) for x in blocking] + [""]
            else:
                out += ["**Destructive**: nothing (the apply guard lets this file through).", ""]
            if locks:
                out += ["**Locks** (advisory; the safe alternative follows each):", ""]
                out += [_item(x) for x in locks] + [""]
            if rest:
                out += ["**Other findings**:", ""] + [_item(x) for x in rest] + [""]
        if self.renames:
            out += ["### Possible renames", "", "Written as a drop and an add, which loses the data:", ""]
            out += [f"- {hint}" for hint in self.renames] + [""]
        if self.before or self.after:
            out += ["### Tables touched", "", "Marked in the comments: `+ added`, `- dropped`, `~ changed`.", ""]
            out += ["Before:", "", "```mermaid", self.before.rstrip(), "```", ""] if self.before else []
            out += ["After:", "", "```mermaid", self.after.rstrip(), "```", ""] if self.after else []
        if self.other:
            out += ["Also changed:", ""] + [f"- {line}" for line in self.other] + [""]
        return out

    def lines(self) -> list[str]:
        if self.output:
            return [f"wrote {self.output} ({len(self.files)} new file(s))"]
        return self.markdown()


def _item(finding: safety.Finding) -> str:
    where = finding.file.partition(":")[2]
    return f"- {'line ' + where + ': ' if where else ''}[{finding.source} {finding.code}] {finding.text}"


def marks_of(
    differences: list[catalog.Difference], snapshots: tuple[catalog.Snapshot, ...] = ()
) -> tuple[erdrender.Marks, list[str]]:
    """What the catalog differences mark on the diagram, and the lines it cannot show. An index
    is named schema.index: its table is read from the snapshots (before, after)."""
    marks: erdrender.Marks = {}
    other: list[str] = []

    def state(d: catalog.Difference) -> str:
        return "added" if d.left is None and d.field is None else "dropped" if d.field is None else "changed"

    def index_table(d: catalog.Difference) -> str:
        schema = d.name.split(".")[0]
        found = [s["index"][d.name] for s in snapshots if d.name in s.get("index", {})]
        found += [f for f in (d.left, d.right) if isinstance(f, dict)]
        return f"{schema}.{found[-1].get('table')}" if found else d.name

    for d in differences:
        parts = d.name.split(".")
        if d.kind == "table":
            marks[d.name] = state(d)
        elif d.kind == "column" and len(parts) >= 3:
            marks[d.name] = state(d)
            marks.setdefault(".".join(parts[:2]), "changed")
        elif d.kind == "index" or (d.kind in TABLE_PARTS and len(parts) >= 3):
            table = index_table(d) if d.kind == "index" else ".".join(parts[:2])
            marks.setdefault(table, "changed")
            other.append(f"{d.kind} {d.name}: {state(d)} ({table})")
        else:
            other.append(f"{d.kind} {d.name}: {state(d)}")
    return marks, other


def report(
    config: Config, stack: Stack, log: Log, base: str | None = None, output: str = "", force: bool = False
) -> ChangeReport:
    target = outputs.target(config.root, output.strip(), TASK, force) if output.strip() else None
    regular_files_only(config)
    resolved = gitbase.resolve(config.root, base, log)
    log(f"base: {resolved.describe()}")
    known = set(gitbase.files_at(config.root, resolved.merge_base))
    files = migration_files(config)
    new = [p for p in files if p.name not in known]
    result = ChangeReport(resolved.ref, output=target)
    if new:
        stack.up(log, ("dev-db",))
        _fill(config, result, files, new, resolved.merge_base)
    if result.output:
        outputs.write_atomic(result.output, outputs.marked("\n".join(result.markdown()).rstrip() + "\n", TASK))
    return result


def _fill(config: Config, result: ChangeReport, files: list[Path], new: list[Path], merge_base: str) -> None:
    newest = files[-len(new) :] == new  # else Atlas lints what git says is new since the merge base
    lint = atlaslint.lint(config, latest=len(new)) if newest else atlaslint.lint(config, base=merge_base)
    findings = safety.atlas_findings(lint) + safety.type_change_findings(new, None) + safety.squawk(new)
    for path in new:
        mine = [f for f in findings if f.file.partition(":")[0] == path.name]
        result.files.append(FileReport(path.name, statements_of(path.read_text()), mine))
    first = files.index(new[0])
    with scratch_databases(config, "before", "after") as (before, after):
        if first:
            replay_migrations(config, before, amount=first)
        replay_migrations(config, after)
        snaps = catalog.snapshot_url(before), catalog.snapshot_url(after)
        with connect(before) as conn:
            g_before = schemagraph.read(conn)
        with connect(after) as conn:
            g_after = schemagraph.read(conn)
    result.renames = catalog.possible_renames(*snaps)
    marks, result.other = marks_of(catalog.diff(*snaps, left_label="before", right_label="after"), snaps)
    for graph, attr in ((g_before, "before"), (g_after, "after")):
        touched = tuple(t.qualified for t in graph.tables if t.qualified in marks)
        if touched:
            setattr(result, attr, erdrender.mermaid(schemagraph.select(graph, tables=touched), marks))
