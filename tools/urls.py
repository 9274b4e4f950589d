"""PostgreSQL URLs: validation (the error names the variable, never the URL), the forms Atlas
and libpq want, and which database a URL names (for telling two apart, and printing safely).

Stdlib only: `inv migrate.status` must stay fast.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit, urlunsplit

from tools.errors import WorkflowError

POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
# One machine, spelled several ways: a unix socket counts as localhost (the same server when
# the port matches, which is how libpq names the socket file).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

_NOT_USERINFO = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:%]")  # RFC 3986 userinfo
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def parse_url(value: str, variable: str) -> SplitResult:
    """Validate a PostgreSQL URL; the error names the variable, never the URL (it holds a password)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise WorkflowError(
            f"{variable} is not a valid URL", hint="use postgres://user:password@host:5432/dbname?sslmode=disable"
        ) from None
    if parts.scheme not in POSTGRES_SCHEMES:
        raise WorkflowError(
            f"{variable} must be a postgres:// URL (got scheme {parts.scheme or 'none'!r})",
            hint="use postgres://user:password@host:5432/dbname?sslmode=disable",
        )
    userinfo = parts.netloc.rpartition("@")[0]
    if (
        re.search(r"\s", value.strip())
        or parts.netloc.count("@") > 1
        or _NOT_USERINFO.search(userinfo)
        or _BAD_ESCAPE.search(userinfo)
    ):
        # libpq splits at the first `@`, Atlas (Go) at the last; Go refuses spaces, quotes and
        # non-ASCII there; libpq refuses a `%` that starts no escape. Say so here, by name only.
        raise WorkflowError(
            f"{variable} is not a valid URL: it holds a character that must be percent-encoded",
            hint='percent-encode the user and password (space %20, " %22, % %25, @ %40, / %2F, non-ASCII as its '
            "UTF-8 bytes, as urllib.parse.quote(password, safe='') does)",
        )
    if not parts.hostname:
        raise WorkflowError(
            f"{variable} has no host", hint="use postgres://user:password@host:5432/dbname?sslmode=disable"
        )
    if port is None and parts.netloc.endswith(":"):
        raise WorkflowError(
            f"{variable} has an empty port (host:/db)",
            hint="set DB_PORT / DEV_DB_PORT in .env (empty means the default), or write the port in the URL",
        )
    if not parts.path.strip("/"):
        raise WorkflowError(f"{variable} names no database", hint="add /dbname after the host:port in the URL")
    if "search_path" in parts.query.lower():
        raise WorkflowError(
            f"{variable} sets search_path, which would switch Atlas to schema scope",
            hint=(
                "remove search_path from the URL: this project works at database scope (see atlas.hcl), so models "
                "may use several schemas"
            ),
        )
    return parts


def atlas_url(value: str, variable: str) -> str:
    """The URL as Atlas wants it: scheme `postgres`, the rest untouched."""
    parts = parse_url(value, variable)
    return urlunsplit(("postgres",) + tuple(parts)[1:])


def libpq_url(value: str, variable: str) -> str:
    """The URL as libpq/psycopg want it (postgresql://)."""
    parts = parse_url(value, variable)
    return urlunsplit(("postgresql",) + tuple(parts)[1:])


def database_key(value: str) -> tuple[str, int, str] | None:
    """(host, port, database) that a URL names, for telling two URLs apart; None if unparsable.

    localhost, 127.0.0.1, ::1 and a unix socket directory are one host ("localhost"); the port
    defaults to 5432; libpq's host/port/dbname query parameters win over the URL's parts.
    """
    try:
        parts = urlsplit(value.strip())
        host, port, dbname = unquote(parts.hostname or ""), parts.port, unquote(parts.path.strip("/"))
    except ValueError:
        return None
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or host
    dbname = query.get("dbname") or dbname
    try:
        port = int(query["port"]) if "port" in query else (port or 5432)
    except ValueError:
        return None
    if not host or not dbname:
        return None
    host = host.lower().strip("[]")
    if host in LOCAL_HOSTS or host.startswith("/"):
        host = "localhost"
    return host, port, dbname


def address(value: str) -> str:
    """host:port/database of a URL, without user or password: safe to print."""
    try:
        parts = urlsplit(value.strip())
        host = unquote(parts.hostname or "") or "?"
        port = parts.port or 5432
    except ValueError:
        return "(an invalid URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}/{unquote(parts.path.strip('/'))}"


def without_password(value: str) -> tuple[str, str | None]:
    """The URL without its password, and the password (None when it has none)."""
    parts = urlsplit(value)
    if parts.password is None:
        return value, None
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = (parts.username or "") + "@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def pgpass_line(value: str) -> str | None:
    """The line of a libpq password file (host:port:database:user:password) for a URL with a password."""
    parts = urlsplit(value)
    if parts.password is None:
        return None
    fields = [
        parts.hostname or "*",
        str(parts.port or 5432),
        unquote(parts.path.strip("/")) or "*",
        unquote(parts.username or "") or "*",
        unquote(parts.password),
    ]
    return ":".join(map(_pgpass_field, fields))
