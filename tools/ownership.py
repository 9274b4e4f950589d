"""What the workflow may drop on a PostgreSQL server, and the proof that it owns it.

The workflow drops and recreates databases: the dev database around every diff, lint and
validate, scratch databases for verify and drift, the `local` database on db.reset. A URL
variable pointing at the wrong database (a copied staging URL, a wrong port) must never make
it drop a team's data. So every database it creates carries a mark, a `COMMENT ON DATABASE`
naming the workflow, the database's role and the project:

    schemaflow:dev project=shop ...        the dev database (DEV_DATABASE_URL)
    schemaflow:scratch project=shop run=ab12cd34 ...   one run's scratch database
    schemaflow:local project=shop ...      a local database db.reset recreated

and a database is dropped only when it carries the mark of its role, or holds no user object
at all (it is then marked first: the Compose dev-db's empty `dev` database on first use). One
that holds objects and no mark is refused in one line; nothing is dropped or changed.

Scratch databases (one run's, and the leftovers of runs that are gone) are tools/scratch_runs.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard
from urllib.parse import unquote, urlsplit, urlunsplit

from tools import timings
from tools.config import Config
from tools.errors import WorkflowError
from tools.pg import connect, connection_error
from tools.urls import address

if TYPE_CHECKING:
    import psycopg
    import psycopg.sql

WORKFLOW = "schemaflow"
KINDS = ("dev", "scratch", "local")
_MARK_RE = re.compile(rf"^{WORKFLOW}:(?P<kind>[a-z]+)(?: project=(?P<project>\S+))?(?: run=(?P<run>[0-9a-f]+))?")
FIX_DEV = "point DEV_DATABASE_URL at an empty throw-away database (inv db.up provides one)"


@dataclass(frozen=True)
class Mark:
    kind: str
    project: str = ""
    run: str = ""

    def text(self) -> str:
        run = f" run={self.run}" if self.run else ""
        return (
            f"{WORKFLOW}:{self.kind} project={self.project}{run} "
            "(made by the migration workflow, which drops and recreates it: keep no data here)"
        )


def parse_mark(comment: str | None) -> Mark | None:
    match = _MARK_RE.match(comment or "")
    if not match or match["kind"] not in KINDS:
        return None
    return Mark(match["kind"], match["project"] or "", match["run"] or "")


def owned(mark: Mark | None, kind: str) -> TypeGuard[Mark]:
    """The workflow made this database for `kind` (and may drop it whatever it holds)."""
    return mark is not None and mark.kind == kind


def project_of(config: Config) -> str:
    """The project a mark names: the Compose project, else the project directory's name."""
    name = config.get("COMPOSE_PROJECT_NAME").strip() or config.root.name
    return re.sub(r"\s+", "_", name) or "project"


def dbname_of(url: str) -> str:
    return unquote(urlsplit(url).path.strip("/"))


def url_with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


# --- what a database holds ---------------------------------------------------------------------

_USER_NS = "n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> 'information_schema'"
_NOT_EXT = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"
_INVENTORY = f"""
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                      WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'type' END, count(*)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r','p','v','m','S','f','c') AND {_USER_NS} AND {_NOT_EXT.format(oid="c.oid")}
  AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                       AND d.objid = c.oid AND d.deptype IN ('a','i')))
GROUP BY 1
UNION ALL
SELECT 'function', count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_USER_NS} AND {_NOT_EXT.format(oid="p.oid")}
UNION ALL
SELECT 'type', count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e','d','r') AND {_USER_NS} AND {_NOT_EXT.format(oid="t.oid")}
UNION ALL
SELECT 'schema', count(*) FROM pg_namespace n
WHERE {_USER_NS} AND n.nspname <> 'public' AND {_NOT_EXT.format(oid="n.oid")}
UNION ALL
SELECT 'extension', count(*) FROM pg_extension WHERE extname <> 'plpgsql'
UNION ALL
SELECT 'large object', count(*) FROM pg_largeobject_metadata
"""
_ORDER = (
    "table",
    "view",
    "materialized view",
    "foreign table",
    "sequence",
    "function",
    "type",
    "schema",
    "extension",
    "large object",
)


def describe(counts: dict[str, int]) -> str:
    """{'table': 12, 'view': 1} -> '12 tables, 1 view' (empty string: nothing)."""
    return ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind in _ORDER if (n := counts.get(kind, 0)))


def inventory(url: str, variable: str) -> str:
    """The user objects of the database at `url`, in words ('' when it holds none)."""
    try:
        with connect(url) as conn:
            counts: dict[str, int] = {}
            for kind, n in conn.execute(_INVENTORY).fetchall():
                counts[kind] = counts.get(kind, 0) + n
    except Exception as exc:
        raise connection_error(exc, f"the database {variable} names ({address(url)})") from None
    return describe(counts)


# --- claiming, recreating -----------------------------------------------------------------


def _sql(template: str, name: str, comment: str | None = None) -> psycopg.sql.Composed:
    from psycopg import sql

    args: dict[str, sql.Composable] = {"db": sql.Identifier(name)}
    if comment is not None:
        args["comment"] = sql.Literal(comment)
    return sql.SQL(template).format(**args)


SYSTEM_DATABASES = ("postgres", "template0", "template1")


def _mark_of(conn: psycopg.Connection, name: str, variable: str = "", url: str = "") -> tuple[bool, Mark | None]:
    """(exists, its mark) of database `name`, asked on the server's maintenance connection.
    The server's own databases (postgres, templates) are never the workflow's: refused."""
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database'), datistemplate FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    if name in SYSTEM_DATABASES or (row and row[1]):
        raise WorkflowError(
            f"{variable or 'the URL'} points at {address(url) if url else name}, a database the PostgreSQL server "
            "itself uses; nothing was dropped or changed",
            hint=FIX_DEV
            if variable == "DEV_DATABASE_URL"
            else f"point {variable or 'the URL'} at a database of its own",
        )
    return (row is not None, parse_mark(row[0]) if row else None)


def _create(conn: psycopg.Connection, name: str, mark: Mark) -> None:
    conn.execute(_sql("CREATE DATABASE {db}", name))
    conn.execute(_sql("COMMENT ON DATABASE {db} IS {comment}", name, mark.text()))


def refusal(variable: str, url: str, holds: str, mark: Mark | None, fix: str) -> WorkflowError:
    made = f"the workflow marked it as a {mark.kind} database" if mark else "the workflow did not create it"
    return WorkflowError(
        f"{variable} points at {address(url)}, which holds {holds} and {made}; nothing was dropped or changed", hint=fix
    )


def _prove(conn: psycopg.Connection, url: str, variable: str, kind: str, fix: str) -> tuple[bool, Mark | None]:
    """(exists, mark) once the database at `url` is proven droppable for `kind`; else refuse."""
    exists, mark = _mark_of(conn, dbname_of(url), variable, url)
    if exists and not owned(mark, kind):
        holds = inventory(url, variable)
        if holds:
            raise refusal(variable, url, holds, mark, fix)
    return exists, mark


def claim(config: Config, url: str, variable: str = "DEV_DATABASE_URL", kind: str = "dev", fix: str = FIX_DEV) -> None:
    """Make sure the database at `url` exists and is the workflow's (`kind`), without dropping it.

    Absent: created with the mark. Marked for `kind`: nothing to do. Empty: marked. Anything
    else (objects and no mark, or another role's mark) is refused and left as it was.
    """
    name = dbname_of(url)
    try:
        with connect(url, dbname="postgres") as conn:
            exists, mark = _prove(conn, url, variable, kind, fix)
            if not exists:
                _create(conn, name, Mark(kind, project_of(config)))
            elif not owned(mark, kind):
                conn.execute(_sql("COMMENT ON DATABASE {db} IS {comment}", name, Mark(kind, project_of(config)).text()))
    except WorkflowError:
        raise
    except Exception as exc:
        raise connection_error(exc, f"the server {variable} names") from None


@timings.timed("dev database recreated")
def recreate(
    config: Config,
    url: str,
    variable: str = "DEV_DATABASE_URL",
    kind: str = "dev",
    confirmed: bool = False,
    fix: str = FIX_DEV,
) -> None:
    """Drop and create the database at `url`, with the mark of `kind`; only when it is the
    workflow's (marked for `kind`) or empty, or the caller has the user's word (`confirmed`)."""
    name = dbname_of(url)
    try:
        with connect(url, dbname="postgres") as conn:
            exists = _mark_of(conn, name, variable, url)[0] if confirmed else _prove(conn, url, variable, kind, fix)[0]
            if exists:
                conn.execute(_sql("DROP DATABASE IF EXISTS {db} WITH (FORCE)", name))
            _create(conn, name, Mark(kind, project_of(config)))
    except WorkflowError:
        raise
    except Exception as exc:
        raise connection_error(exc, f"the server {variable} names") from None


def state(url: str, variable: str) -> tuple[Mark | None, str]:
    """(mark, what it holds) of the database at `url`; (None, '') when it does not exist."""
    try:
        with connect(url, dbname="postgres") as conn:
            exists, mark = _mark_of(conn, dbname_of(url), variable, url)
    except WorkflowError:
        raise
    except Exception as exc:
        raise connection_error(exc, f"the server {variable} names") from None
    return (mark, inventory(url, variable)) if exists else (None, "")
