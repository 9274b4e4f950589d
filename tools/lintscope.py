"""Which pending files Atlas's analyzers can report on, so that its lint inspects only those.

Atlas v0.13.1's `migrate lint` runs the files before its window (`--latest N`) as plain SQL, then
inspects the whole database after every statement of the window (its DevLoader.LoadChanges): on a
batch of hundreds of files over a large schema that inspection is nearly all of the apply's time.
Its analyzers (destructive DS*, data-dependent MF*, backward-incompatible BC*, constraint drops
CD*, PostgreSQL PG*) report only changes to objects that existed before the statement: drops,
renames, columns, indexes, constraints and types of existing tables. A statement that creates a
new table, type, schema, sequence, extension, function, view or trigger gives none of them
anything to report.

So the window starts at the first pending file that holds any other statement; the files before
it are still run by Atlas (as its base: a file that does not run is still an error before
anything is applied), and squawk and our own checks still read every file. Unknown or
unparseable statements count as "other": the window only ever shrinks for files proven to be
pure creations.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def creates_only(sql: str) -> bool:
    """Every statement of `sql` creates a new object no analyzer of Atlas reports on."""
    import pglast
    from pglast import ast

    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return False
    for raw in statements:
        stmt = raw.stmt
        if isinstance(stmt, ast.CreateStmt):
            # PARTITION OF / INHERITS change an existing table's family: not a pure creation.
            if stmt.partbound is not None or stmt.inhRelations:
                return False
        elif isinstance(stmt, ast.ViewStmt | ast.CreateFunctionStmt):
            if stmt.replace:  # OR REPLACE may change an existing one
                return False
        elif not isinstance(
            stmt,
            ast.CreateSchemaStmt
            | ast.CreateEnumStmt
            | ast.CompositeTypeStmt
            | ast.CreateDomainStmt
            | ast.CreateSeqStmt
            | ast.CreateExtensionStmt
            | ast.CreateTrigStmt,
        ):
            return False
    return True


def window(files: Sequence[Path]) -> int:
    """How many of the newest `files` (pending, in order) Atlas's lint must inspect: from the
    first that is not a pure creation to the end; at least 1, so Atlas still runs them all."""
    for index, path in enumerate(files):
        if not creates_only(path.read_text()):
            return len(files) - index
    return 1 if files else 0
