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
from urllib.parse import SplitResult, urlsplit, urlunsplit

from tools.errors import WorkflowError

ROOT = Path(__file__).resolve().parent.parent
ATLAS_HCL = "atlas.hcl"
GUIDE_ENV = "sqlalchemy"
DEFAULT_PROTECTED = ("production",)
POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
STACKS = ("compose", "local")

# The one home of each default that URLs, Compose (compose.yaml's ${VAR:-default}), the local
# clusters and setup share: a variable missing or empty in .env resolves to these everywhere.
DEFAULT_DB_PORT = 5433
DEFAULT_DEV_DB_PORT = 5434
DEFAULTS = {
    "POSTGRES_USER": "app",
    "POSTGRES_DB": "app",
    "DB_PORT": str(DEFAULT_DB_PORT),
    "DEV_DB_PORT": str(DEFAULT_DEV_DB_PORT),
}


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


def require_dotenv(root: Path = ROOT) -> Path:
    """Every task but `setup` works from the checkout's .env: without it, the Compose project,
    password and ports would fall back to values that name someone else's containers or servers."""
    path = root / ".env"
    if not path.is_file():
        raise WorkflowError(f".env not found in {root.name}/", hint="run inv setup (it writes .env from .env.example)")
    return path


def load_dotenv_values(root: Path = ROOT, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The .env file's values, ${VAR} and ${VAR:-default} expanded as Docker Compose does: the
    real environment wins, an empty value counts as unset, and DEFAULTS fill what is missing."""
    path = root / ".env"
    if not path.is_file():
        return {}
    from dotenv import dotenv_values
    from dotenv.variables import Variable, parse_variables

    environ = dict(os.environ if environ is None else environ)
    resolved: dict[str, str] = {}

    def lookup(name: str) -> str:
        value = environ[name] if name in environ else resolved.get(name, "")
        return value or DEFAULTS.get(name, "")

    for key, raw in dotenv_values(path, interpolate=False).items():
        if raw is None:
            continue
        resolved[key] = "".join((lookup(a.name) or (a.default or "")) if isinstance(a, Variable) else a.resolve({})
                                for a in parse_variables(raw))
    return resolved


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
    if port is None and parts.netloc.endswith(":"):
        raise WorkflowError(f"{variable} has an empty port (host:/db)",
                            hint="set DB_PORT / DEV_DB_PORT in .env (empty means the default), or write the port in the URL")
    if not parts.path.strip("/"):
        raise WorkflowError(f"{variable} names no database", hint="add /dbname after the host:port in the URL")
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
    defaulted: set[str] = field(default_factory=set)  # DEFAULTS keys missing or empty in .env and the environment

    @classmethod
    def load(cls, root: Path = ROOT, environ: dict[str, str] | None = None) -> Config:
        environ = dict(os.environ if environ is None else environ)
        values = load_dotenv_values(root, environ)
        values.update({k: v for k, v in environ.items()})
        defaulted = set()
        for key, default in DEFAULTS.items():  # missing or empty: the default Compose uses too
            if not (values.get(key) or "").strip():
                values[key] = default
                defaulted.add(key)
        return cls(root=root, values=values, env_names=read_env_names(root), defaulted=defaulted)

    def port(self, variable: str) -> int:
        """DB_PORT / DEV_DB_PORT, resolved (empty or missing: the default)."""
        raw = self.get(variable, DEFAULTS.get(variable, "")).strip()
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise WorkflowError(f"{variable}={raw!r} is not a port number",
                                hint=f"set {variable} to a free port such as {DEFAULTS.get(variable, DEFAULT_DB_PORT)} in .env")
        return int(raw)

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
        return atlas_url(value, variable)

    def dev_url(self) -> str:
        value = self.get("DEV_DATABASE_URL").strip()
        if not value:
            raise WorkflowError("DEV_DATABASE_URL is not set", hint="run inv setup, or set it in .env (see .env.example)")
        return atlas_url(value, "DEV_DATABASE_URL")

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
