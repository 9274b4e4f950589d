"""Pre-conditions of a migration file: `migrations/checks/<version>.sql` holds SELECTs that must
each return true on the target before the file `<version>_*.sql` runs (e.g. no NULL left before
a SET NOT NULL).

Why a subdirectory, not `migrations/<version>.checks.sql` beside the file: Atlas (v0.13.1's
`LocalDir.Files`, `fs.Glob(dir, "*.sql")`) reads every top-level `*.sql` of migrations/ as a
migration and hashes it into atlas.sum; it never looks into a subdirectory, so the checks stay
out of Atlas's plan and atlas.sum stays valid.

A check passes when it returns exactly one row whose first column is true. It runs on the
target, read-only (its own READ ONLY transaction, rolled back), with a statement timeout; false,
NULL, no row, an error or the timeout is a failure, named by the check's comment (the `--` lines
right above it) or its SQL.

A check may call only functions that are not VOLATILE: READ ONLY does not stop a function with
effects outside the transaction (pg_terminate_backend, pg_create_physical_replication_slot,
pg_reload_conf, pg_advisory_lock, set_config, dblink, lo_*). Two layers: `parse` refuses the
well-known ones by name (so `inv migrate.check` refuses them without a database), and `run` looks
every called function up in the target's pg_proc and refuses the whole batch, running no check,
if any overload of a called name (in any schema) is VOLATILE. Operators are not looked up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tools.config import Config
from tools.errors import WorkflowError
from tools.migrations import CHECKS, checks_dir, migration_files, regular_files_only, version_of
from tools.pg import connect, connection_error

if TYPE_CHECKING:
    import pglast
    import psycopg

TIMEOUT_MS = 60_000  # one check; a scan longer than a minute belongs in a data migration, not a guard
# Volatile functions with effects outside a read-only transaction, refused by name (no database needed).
DENIED = re.compile(
    r"pg_(terminate|cancel)_backend|pg_(create|drop|copy)_\w*replication_slot|pg_replication_\w+|pg_reload_conf"
    r"|pg_rotate_logfile|pg_switch_wal|pg_promote|pg_(try_)?advisory\w*|pg_logical_\w+|pg_stat_reset\w*|pg_sleep\w*"
    r"|pg_file_\w+|pg_notify|set_config|nextval|setval|dblink\w*|lo_\w+|pg_backup_\w+|pg_log_backend_memory_contexts"
)


@dataclass(frozen=True)
class Check:
    file: str  # migrations/checks/<version>.sql
    number: int  # 1-based, in the file's order
    line: int  # where its SQL starts
    name: str  # its comment, else its SQL on one line
    sql: str
    functions: tuple[str, ...] = ()  # the names of the functions it calls, lower case, without schema

    def __str__(self) -> str:
        return f"{self.file} check {self.number} (line {self.line}): {self.name}"


@dataclass(frozen=True)
class Result:
    check: Check
    ok: bool
    detail: str  # "true", "returned false", "error: ..."

    def __str__(self) -> str:
        return f"{'passed' if self.ok else 'FAILED'}: {self.check} -> {self.detail}"


def parse(text: str, file: str) -> list[Check]:
    """The checks of one file: every statement must be a plain SELECT (pglast, PostgreSQL's own parser)."""
    import pglast
    from pglast import ast

    try:
        statements = pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        raise WorkflowError(
            f"{file} is not valid SQL: {exc}", hint="each check is one SELECT returning true, ending with ;"
        ) from None
    checks = []
    previous = 0  # where the text after the previous statement starts: its comments name the next check
    for number, statement in enumerate(statements, 1):
        start = statement.stmt_location or 0  # pglast: character offsets of the first token
        end = start + statement.stmt_len if statement.stmt_len else len(text)
        before, previous = text[previous:start], end
        comments = _comment_above(before)
        sql = text[start:end].strip()
        line = text[:start].count("\n") + 1
        node = statement.stmt
        if not isinstance(node, ast.SelectStmt) or node.intoClause is not None:
            kind = (
                "SELECT INTO" if isinstance(node, ast.SelectStmt) else type(node).__name__.removesuffix("Stmt").upper()
            )
            raise WorkflowError(
                f"{file} line {line}: a check must be a SELECT, not {kind}",
                hint="checks only read: one SELECT per check, returning true when the migration may run",
            )
        name = " ".join(c for c in comments if c) or " ".join(sql.split())
        check = Check(file, number, line, name if len(name) <= 100 else name[:97] + "...", sql, _functions(node))
        for function in check.functions:
            if DENIED.fullmatch(function):
                raise _volatile(check, function)
        checks.append(check)
    if not checks:
        raise WorkflowError(
            f"{file} holds no check", hint="write one SELECT per check returning true, or remove the file"
        )
    return checks


def _functions(node: pglast.ast.Node) -> tuple[str, ...]:
    """Every function the statement calls (all FuncCall nodes: subqueries, CTEs, FROM included)."""
    from pglast import ast
    from pglast.visitors import Visitor

    names: list[str] = []

    class Calls(Visitor):
        def visit_FuncCall(self, ancestors: object, call: ast.FuncCall) -> None:
            names.append((call.funcname or ())[-1].sval.lower())

    Calls()(node)
    return tuple(dict.fromkeys(names))


def _volatile(check: Check, function: str) -> WorkflowError:
    return WorkflowError(
        f"{check} calls {function}(), a VOLATILE function: a check may have no effect, so none was run",
        hint="a check may call only STABLE or IMMUTABLE functions; move the call into a migration (or drop it)",
    )


def _comment_above(text: str) -> list[str]:
    """The `--` lines right above a statement (a blank line ends them: a file's header is no check's name)."""
    lines = text.split("\n")
    lines.pop()  # the start of the statement's own line: empty, or its indentation
    out: list[str] = []
    for line in reversed(lines):
        if not line.strip().startswith("--"):
            break
        out.insert(0, line.strip().removeprefix("--").strip())
    return out


def load(config: Config) -> dict[str, list[Check]]:
    """Every checks file of migrations/checks/, by version; a file naming no migration is an error."""
    regular_files_only(config)
    directory = checks_dir(config)
    if not directory.is_dir():
        return {}
    versions = {version_of(path): path.name for path in migration_files(config)}
    out: dict[str, list[Check]] = {}
    for path in sorted(directory.iterdir()):
        rel = f"migrations/{CHECKS}/{path.name}"
        version = path.name.removesuffix(".sql")
        if not path.name.endswith(".sql") or not version.isdigit():
            raise WorkflowError(
                f"{rel} is not named <version>.sql",
                hint=f"name it after the version of the migration it guards, e.g. migrations/{CHECKS}/"
                f"{next(iter(versions), '20240101000000')}.sql",
            )
        if version not in versions:
            raise WorkflowError(
                f"{rel} guards version {version}, but no file of migrations/ has that version",
                hint="rename it after the version of the migration it guards (inv migrate.status lists them), "
                "or remove it",
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise WorkflowError(
                f"{rel} is not UTF-8 text (byte {exc.start}: {exc.reason})",
                hint="save it as UTF-8 (e.g. iconv -f latin1 -t utf-8), then run the task again",
            ) from None
        out[version] = parse(text, rel)
    return out


def for_files(config: Config, names: list[str]) -> list[Check]:
    """The checks of the migration files `names` (e.g. the pending ones), in the files' order."""
    checks = load(config)
    return [check for name in names for check in checks.get(version_of(Path(name)), [])]


def run(url: str, checks: list[Check], what: str = "the target") -> list[Result]:
    """Run each check on the database at `url`, read-only, one query each."""
    if not checks:
        return []
    import psycopg

    results = []
    try:
        conn = connect(url)
    except psycopg.Error as exc:
        raise connection_error(exc, what) from None
    with conn:
        _refuse_volatile(conn, checks)
        for check in checks:
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute("SET TRANSACTION READ ONLY")
                    conn.execute(f"SET LOCAL statement_timeout = {TIMEOUT_MS}")
                    rows = conn.execute(check.sql).fetchmany(2)
            except psycopg.Error as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                results.append(Result(check, False, f"error: {message}"))
                continue
            results.append(Result(check, *_verdict(rows)))
    return results


def _refuse_volatile(conn: psycopg.Connection, checks: list[Check]) -> None:
    """Refuse the batch, before any check runs, if one calls a name with a VOLATILE overload in pg_proc."""
    names = sorted({function for check in checks for function in check.functions})
    if not names:
        return
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION READ ONLY")
        rows = conn.execute(
            "SELECT DISTINCT lower(proname) FROM pg_catalog.pg_proc"
            " WHERE provolatile = 'v' AND lower(proname) = ANY(%s)",
            [names],
        ).fetchall()
    volatile = {row[0] for row in rows}
    for check in checks:
        for function in check.functions:
            if function in volatile:
                raise _volatile(check, function)


def _verdict(rows: list[tuple[object, ...]]) -> tuple[bool, str]:
    if not rows:
        return False, "returned no row"
    if len(rows) > 1:
        return False, "returned more than one row"
    value = rows[0][0] if rows[0] else None
    if value is True:
        return True, "true"
    shown = "NULL" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)
    return False, f"returned {shown}, not true"


def refusal(results: list[Result], env: str) -> WorkflowError | None:
    """The one-line refusal naming the first failed check (None: all passed)."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    more = f" ({len(failed)} of {len(results)} check(s) failed)" if len(failed) > 1 else ""
    return WorkflowError(
        f"a pre-condition does not hold on {env}, nothing was applied: {failed[0].check} -> {failed[0].detail}{more}",
        hint=f"fix the data (or the check) first; inv migrate.apply --env {env} --dry-run shows every check",
    )
