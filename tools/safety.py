"""Before an apply: what the pending files would do that a user should know first.

Two linters, one report:
- Atlas's `migrate lint` (tools/atlaslint.py: destructive changes DS*, data-dependent changes
  MF*, backward incompatible changes BC*), replayed on the dev database;
- squawk (https://squawkhq.com), the field's linter for lock safety: index builds without
  CONCURRENTLY, table-rewriting type changes, constraints added without NOT VALID, ...

Findings that lose data or fail on existing rows block the apply unless --allow-destructive;
lock findings are reported with their safe alternative and do not block.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools import lintscope, signals, timings
from tools.atlaslint import FAILING_ATLAS, LintReport, lint_started
from tools.config import Config
from tools.console import Log
from tools.errors import WorkflowError
from tools.migrations import migration_files, migrations_dir
from tools.pg import connect, dev_lock

# Atlas analyzers whose findings mean data loss or a statement that fails on existing data.
BLOCKING_ATLAS = ("DS", "MF")
# squawk rules that mean data loss.
BLOCKING_SQUAWK = {"ban-drop-column", "ban-drop-table", "ban-drop-database", "ban-truncate-cascade"}
# squawk rules about style rather than safety: not reported.
SQUAWK_EXCLUDE = (
    "prefer-identity",
    "prefer-text-field",
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-robust-stmts",
    "require-statement-timeout",
    "require-lock-timeout",
    "prefer-timestamptz",
    "ban-char-field",
    "require-timeout-settings",
    # Atlas's BC analyzers report renames of tables and columns; constraint renames are ours.
    "renaming-object",
)


@dataclass
class Finding:
    file: str
    source: str  # atlas | squawk
    code: str
    text: str
    blocking: bool

    def __str__(self) -> str:
        return f"{self.file}: [{self.source} {self.code}] {self.text}"


@dataclass
class SafetyReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def failing(self) -> list[Finding]:
        """Files that would fail part-way through a batch: stop before applying any."""
        return [f for f in self.findings if f.code in ("error", "syntax", *FAILING_ATLAS)]

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def advisory(self) -> list[Finding]:
        return [f for f in self.findings if not f.blocking]


# --- Atlas's lint: tools/atlaslint.py; squawk ----------------------------------------------------


def squawk_binary() -> str | None:
    return shutil.which("squawk") or (
        str(Path(sys.prefix) / "bin" / "squawk") if (Path(sys.prefix) / "bin" / "squawk").exists() else None
    )


@timings.timed("squawk")
def squawk(files: list[Path]) -> list[Finding]:
    if not files:
        return []
    binary = squawk_binary()
    if not binary:
        raise WorkflowError(
            "squawk (the lock-safety linter) is not installed", hint="run scripts/bootstrap (pip install squawk-cli)"
        )
    argv = [
        binary,
        "--reporter",
        "json",
        "--pg-version",
        "15",
        "--assume-in-transaction",
        "--exclude",
        ",".join(SQUAWK_EXCLUDE),
        *map(str, files),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    try:
        rows = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        raise WorkflowError(f"squawk failed: {(proc.stderr or proc.stdout).strip()[:200]}") from None
    out = []
    for row in rows:
        help_text = row.get("help") or ""
        text = (row.get("message") or "").strip() + (f" Instead: {help_text.strip()}" if help_text else "")
        name = Path(row.get("file", "?")).name
        rule = row.get("rule_name", "?")
        out.append(Finding(f"{name}:{int(row.get('line', 0)) + 1}", "squawk", rule, text, rule in BLOCKING_SQUAWK))
    return out


def atlas_findings(lint_report: LintReport) -> list[Finding]:
    out = []
    for file, code, text in lint_report.findings:
        out.append(Finding(file, "atlas", code or "?", text, code.startswith(BLOCKING_ATLAS)))
    with_findings = {f for f, _, _ in lint_report.findings}
    for line in lint_report.errors:
        file, _, text = line.partition(": ")
        if file not in with_findings:  # else a summary of the findings listed above
            out.append(Finding(file, "atlas", "error", text.strip(), True))
    return out


def analyze(config: Config, pending: list[str], target_url: str | None = None, log: Log | None = None) -> SafetyReport:
    """Lint the pending files (the newest len(pending) files of migrations/) with both linters."""
    with analysis_started(config, pending, target_url, log) as finish:
        return finish()


@contextlib.contextmanager
def analysis_started(
    config: Config, pending: list[str], target_url: str | None = None, log: Log | None = None
) -> Iterator[Callable[[], SafetyReport]]:
    """`analyze` with Atlas's lint started at once on the dev database: the block does other
    work (the drift check) meanwhile, and calls what it yields for the report. Atlas inspects
    only the files its analyzers can report on (tools/lintscope.py); it still runs them all."""
    if not pending:
        yield SafetyReport
        return
    files = [migrations_dir(config) / name for name in pending]
    newest = [p.name for p in migration_files(config)][-len(pending) :]
    with (
        dev_lock(config.dev_url()),
        lint_started(config, latest=lintscope.window(files)) if newest == list(pending) else _no_lint() as linted,
    ):

        def finish() -> SafetyReport:
            report = SafetyReport()
            if linted is not None:
                report.findings += atlas_findings(linted())
            report.findings += type_change_findings(files, target_url, log)
            report.findings += squawk(files)
            return report

        yield finish


@contextlib.contextmanager
def _no_lint() -> Iterator[None]:
    yield None


# --- type changes, judged against the target's current column types -----------------------------

_ALIASES = {
    "varchar": "character varying",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "float8": "double precision",
    "float4": "real",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "decimal": "numeric",
    "char": "character",
    "bpchar": "character",
}
_INT_RANK = {"smallint": 1, "integer": 2, "bigint": 3}


def _split_type(text: str) -> tuple[str, tuple[int, ...]]:
    text = text.strip().lower().replace("pg_catalog.", "").replace('"', "")
    base, _, args = text.partition("(")
    base = _ALIASES.get(base.strip(), base.strip())
    nums = tuple(int(a) for a in args.rstrip(")").replace(" ", "").split(",") if a.strip().isdigit()) if args else ()
    return base, nums


def narrowing(old: str, new: str) -> str | None:
    """None when `old` -> `new` keeps every value; else why it may not."""
    (ob, oa), (nb, na) = _split_type(old), _split_type(new)
    if (ob, oa) == (nb, na):
        return None
    if ob in _INT_RANK and nb in _INT_RANK:
        return None if _INT_RANK[nb] >= _INT_RANK[ob] else f"narrows {old} to {new}: values may not fit"
    if ob == nb == "character varying":
        if not na or (oa and na[0] >= oa[0]):
            return None
        return f"narrows {old} to {new}: longer values fail"
    if ob in ("character varying", "character") and nb == "text":
        return None
    if ob == nb == "numeric":
        if not na:
            return None
        if oa and len(oa) == len(na) == 2 and na[1] >= oa[1] and na[0] - na[1] >= oa[0] - oa[1]:
            return None
        return f"narrows {old} to {new}: values may be rounded or not fit"
    return f"changes {old} to {new}: existing values may fail to convert or lose information"


def type_change_findings(files: list[Path], target_url: str | None, log: Log | None = None) -> list[Finding]:
    """Destructive type changes and DROP TYPE in the files, judged against the target's columns.
    When those cannot be read, type changes are not judged, and that is said (on `log`, else
    stderr)."""
    import pglast
    from pglast import ast, enums
    from pglast.stream import RawStream

    current: dict[tuple[str, str, str], str] = {}
    if target_url:
        try:
            with connect(target_url) as conn:
                rows = conn.execute(
                    "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
                    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = "
                    "c.relnamespace "
                    "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p') "
                    "AND n.nspname NOT IN ('pg_catalog','information_schema')"
                ).fetchall()
            current = {(r[0], r[1], r[2]): r[3] for r in rows}
        except Exception as exc:
            current = {}
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            (log or signals.log)(
                f"note: the target's column types could not be read ({reason}): "
                "type changes in the pending files were not checked for narrowing"
            )
    out = []
    for path in files:
        try:
            stmts = pglast.parse_sql(path.read_text())
        except pglast.parser.ParseError as exc:
            out.append(Finding(path.name, "sql", "syntax", f"does not parse: {exc}", True))
            continue
        for raw in stmts:
            stmt = raw.stmt
            if isinstance(stmt, ast.DropStmt) and stmt.removeType == enums.ObjectType.OBJECT_TYPE:
                out.append(
                    Finding(
                        path.name, "sql", "drop-type", "drops a type (enum values or a composite type are lost)", True
                    )
                )
            if not isinstance(stmt, ast.AlterTableStmt) or stmt.relation is None:
                continue
            schema, table = stmt.relation.schemaname or "public", stmt.relation.relname or ""
            for cmd in stmt.cmds or ():
                if getattr(cmd, "subtype", None) != enums.AlterTableType.AT_AlterColumnType:
                    continue
                old = current.get((schema, table, cmd.name))
                if not old:
                    continue
                why = narrowing(old, RawStream()(cmd.def_.typeName))
                if why:
                    out.append(
                        Finding(path.name, "sql", "type-narrowing", f"column {schema}.{table}.{cmd.name} {why}", True)
                    )
    return out
