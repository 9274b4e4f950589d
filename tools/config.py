"""Configuration: the project's paths, `.env`, environment names, URLs and masking.

Rules (documented in .env.example):
- real environment variables win over `.env`;
- environment names live in atlas.hcl (`env "name" { ... }`);
- env `local` reads DATABASE_URL, env `x` reads X_DATABASE_URL; Atlas's dev database is
  DEV_DATABASE_URL;
- every URL that reaches the screen goes through `mask()`.

Stdlib only (plus python-dotenv): `inv migrate.status` must stay fast.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit, urlunsplit

from tools.errors import WorkflowError

ROOT = Path(__file__).resolve().parent.parent
ATLAS_HCL = "atlas.hcl"
GUIDE_ENV = "sqlalchemy"
DEFAULT_PROTECTED = ("production",)
POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
STACKS = ("compose", "local")
DEV_VAR = "DEV_DATABASE_URL"
# One machine, spelled several ways: a unix socket counts as localhost (the same server when
# the port matches, which is how libpq names the socket file).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def env_var_for(env_name: str) -> str:
    """The variable holding the URL of `env_name`: local -> DATABASE_URL, x -> X_DATABASE_URL."""
    if env_name in ("local", GUIDE_ENV):
        return "DATABASE_URL"
    return re.sub(r"[^A-Z0-9]", "_", env_name.upper()) + "_DATABASE_URL"


def read_env_names(root: Path = ROOT) -> list[str]:
    """The `env "name"` blocks of atlas.hcl, in file order."""
    path = root / ATLAS_HCL
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise WorkflowError(f"{ATLAS_HCL} not found in {root.name}/", hint="run the task from the project") from None
    return re.findall(r'(?m)^\s*env\s+"([^"]+)"\s*\{', text)


def load_dotenv_values(root: Path = ROOT) -> dict[str, str]:
    path = root / ".env"
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path, interpolate=True).items() if v is not None}


def parse_url(value: str, variable: str) -> SplitResult:
    """Validate a PostgreSQL URL; the error names the variable, never the URL (it holds a password)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise WorkflowError(f"{variable} is not a valid URL", hint="use postgres://user:password@host:5432/dbname?sslmode=disable") from None
    if parts.scheme not in POSTGRES_SCHEMES:
        raise WorkflowError(
            f"{variable} must be a postgres:// URL (got scheme {parts.scheme or 'none'!r})",
            hint="use postgres://user:password@host:5432/dbname?sslmode=disable",
        )
    if not parts.hostname:
        raise WorkflowError(f"{variable} has no host", hint="use postgres://user:password@host:5432/dbname?sslmode=disable")
    if not parts.path.strip("/"):
        raise WorkflowError(f"{variable} names no database", hint="add /dbname after the host:port in the URL")
    del port
    if "search_path" in parts.query.lower():
        raise WorkflowError(
            f"{variable} sets search_path, which would switch Atlas to schema scope",
            hint="remove search_path from the URL: this project works at database scope (see atlas.hcl), so models may use several schemas",
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


_URL_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)@")


def mask(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Hide the password of every URL in `text`, and any of the given secret strings."""
    out = _URL_PASSWORD.sub(lambda m: m.group("pre") + "****@", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "****")
    return out


@dataclass
class Config:
    root: Path
    values: dict[str, str]
    env_names: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path = ROOT, environ: dict[str, str] | None = None) -> Config:
        environ = dict(os.environ if environ is None else environ)
        values = load_dotenv_values(root)
        values.update({k: v for k, v in environ.items()})
        return cls(root=root, values=values, env_names=read_env_names(root))

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default) or default

    # --- environments -------------------------------------------------------------------

    def check_env(self, env_name: str) -> str:
        if not env_name or env_name not in self.env_names:
            known = ", ".join(n for n in self.env_names if n != GUIDE_ENV)
            raise WorkflowError(f"unknown environment {env_name!r}", hint=f"use one of: {known} (defined in {ATLAS_HCL})")
        return env_name

    def url_for(self, env_name: str) -> str:
        """The URL of `env_name` (validated, Atlas form); a clear error when unset."""
        self.check_env(env_name)
        variable = env_var_for(env_name)
        value = self.get(variable).strip()
        if not value:
            raise WorkflowError(
                f"{variable} is not set, so environment {env_name!r} has no database",
                hint=f"set {variable} in the environment or in .env (see .env.example)",
            )
        url = atlas_url(value, variable)
        self.check_distinct(variable)
        return url

    def dev_url(self) -> str:
        value = self.get(DEV_VAR).strip()
        if not value:
            raise WorkflowError("DEV_DATABASE_URL is not set", hint="run inv setup, or set it in .env (see .env.example)")
        url = atlas_url(value, DEV_VAR)
        self.check_distinct(DEV_VAR)
        return url

    # --- which database is which (pure: no connection) -------------------------------------

    def url_variables(self) -> dict[str, str | None]:
        """Every URL variable the workflow reads -> the environment it serves (None: the dev database)."""
        out: dict[str, str | None] = {DEV_VAR: None}
        for name in self.env_names:
            if name != GUIDE_ENV:
                out.setdefault(env_var_for(name), name)
        return out

    def check_distinct(self, variable: str) -> None:
        """Refuse `variable` when it names the same database as the dev database or, for a
        protected environment's database, as another environment.

        The dev database is dropped and recreated around every diff: a target there is wiped by
        the next one. A protected environment equal to another one would be changed by an
        unconfirmed apply to that other one.
        """
        variables = self.url_variables()
        key = database_key(self.get(variable))
        if key is None or variable not in variables:
            return
        for other, other_env in variables.items():
            if other == variable or database_key(self.get(other)) != key:
                continue
            where = address(self.get(variable))
            if DEV_VAR in (variable, other):
                raise WorkflowError(
                    f"{variable} and {other} name the same database ({where}), but the workflow drops and recreates the dev database",
                    hint="point DEV_DATABASE_URL at an empty throw-away database (inv db.up provides one)")
            env = variables[variable]
            if self.is_protected(env) or self.is_protected(other_env):
                protected, unprotected = (env, other_env) if self.is_protected(env) else (other_env, env)
                raise WorkflowError(
                    f"{variable} and {other} name the same database ({where}): an apply to {unprotected} would change "
                    f"{protected} without its confirmation",
                    hint="give each environment its own database in .env")

    def stack_database(self) -> tuple[str, int, str] | None:
        """The database key of the stack's own `local` database (127.0.0.1:DB_PORT/POSTGRES_DB)."""
        port = self.get("DB_PORT", "5433").strip()
        if not port.isdigit():
            return None
        return database_key(f"postgres://127.0.0.1:{port}/{self.get('POSTGRES_DB', 'app')}")

    def is_protected(self, env_name: str) -> bool:
        raw = self.values.get("PROTECTED_ENVS")
        names = DEFAULT_PROTECTED if raw is None else tuple(n.strip() for n in raw.split(",") if n.strip())
        return env_name in names

    def secrets(self) -> tuple[str, ...]:
        """Every password we know of, to scrub from anything we print."""
        found = {self.get("POSTGRES_PASSWORD")}
        for key, value in self.values.items():
            if key.endswith("DATABASE_URL") and value:
                try:
                    found.add(urlsplit(value).password or "")
                except ValueError:
                    pass
        return tuple(sorted(s for s in found if s))

    def mask(self, text: str) -> str:
        return mask(text, self.secrets())

    # --- the child's environment ------------------------------------------------------

    def child_env(self, **extra: str) -> dict[str, str]:
        """Environment for subprocesses: .env + real environment, URLs normalised for Atlas."""
        env = dict(self.values)
        for key in [k for k in env if k.endswith("DATABASE_URL") and env[k]]:
            try:
                env[key] = atlas_url(env[key], key)
            except WorkflowError:
                pass  # validated where it is used
        env.setdefault("ATLAS_NO_UPDATE_NOTIFIER", "1")
        env.update(extra)
        return env

    # --- stack choice --------------------------------------------------------------------

    def stack_choice(self, docker_answers) -> tuple[str, str]:
        """(backend, why). `docker_answers` is a callable, only called when STACK is unset."""
        chosen = self.get("STACK").strip().lower()
        if chosen:
            if chosen not in STACKS:
                raise WorkflowError(f"STACK={chosen!r} is not a known backend", hint="set STACK to compose or local, or unset it")
            return chosen, f"STACK={chosen}"
        if shutil.which("docker") and docker_answers():
            return "compose", "a Docker engine answers (STACK unset)"
        return "local", "no Docker engine answers (STACK unset)"
