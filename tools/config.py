"""Configuration: the project's paths, `.env`, environment names and their URLs.

Rules (documented in .env.example):
- real environment variables win over `.env`;
- environment names live in atlas.hcl (`env "name" { ... }`);
- env `local` reads DATABASE_URL, env `x` reads X_DATABASE_URL; Atlas's dev database is
  DEV_DATABASE_URL;
- every URL that reaches the screen goes through `mask()`.

Stdlib only (plus python-dotenv): `inv migrate.status` must stay fast.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools.errors import WorkflowError
from tools.masking import MaskingWriter, known_secrets, mask
from tools.urls import address, atlas_url, database_key

ROOT = Path(__file__).resolve().parent.parent
ATLAS_HCL = "atlas.hcl"
GUIDE_ENV = "sqlalchemy"
DEFAULT_PROTECTED = ("production",)
STACKS = ("compose", "local")
DEV_VAR = "DEV_DATABASE_URL"

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
        resolved[key] = "".join(
            (lookup(a.name) or (a.default or "")) if isinstance(a, Variable) else a.resolve({})
            for a in parse_variables(raw)
        )
    return resolved


@contextlib.contextmanager
def masked_output(root: Path = ROOT) -> Iterator[Callable[[str], str]]:
    """Mask everything written to sys.stdout / sys.stderr meanwhile; yields the mask function."""
    try:
        values = load_dotenv_values(root)
    except Exception:  # an unreadable .env is reported by the task itself
        values = {}
    values.update(os.environ)
    secrets = known_secrets(values)

    def mask_fn(text: str) -> str:
        return mask(text, secrets)

    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = MaskingWriter(saved[0], mask_fn), MaskingWriter(saved[1], mask_fn)
    try:
        yield mask_fn
    finally:
        for writer in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                writer.flush()
        sys.stdout, sys.stderr = saved


@dataclass(frozen=True)
class Target:
    """One --env resolved once, at the task edge (Config.target); everything below takes it."""

    name: str  # the environment's name in atlas.hcl (Atlas's --env)
    url: str  # its URL, validated, in Atlas's form
    variable: str  # the variable that holds the URL
    protected: bool  # an apply or a baseline there asks for a typed confirmation (or --yes)


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
            raise WorkflowError(
                f"{variable}={raw!r} is not a port number",
                hint=f"set {variable} to a free port such as {DEFAULTS.get(variable, DEFAULT_DB_PORT)} in .env",
            )
        return int(raw)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default) or default

    # --- environments -------------------------------------------------------------------

    def check_env(self, env_name: str) -> str:
        if not env_name or env_name not in self.env_names:
            known = ", ".join(n for n in self.env_names if n != GUIDE_ENV)
            raise WorkflowError(
                f"unknown environment {env_name!r}", hint=f"use one of: {known} (defined in {ATLAS_HCL})"
            )
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

    def target(self, env_name: str) -> Target:
        """`env_name` resolved once: unknown, unset or invalid is an error here."""
        url = self.url_for(env_name)
        return Target(env_name, url, env_var_for(env_name), self.is_protected(env_name))

    def dev_url(self) -> str:
        value = self.get(DEV_VAR).strip()
        if not value:
            raise WorkflowError(
                "DEV_DATABASE_URL is not set", hint="run inv setup, or set it in .env (see .env.example)"
            )
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
                    f"{variable} and {other} name the same database ({where}), but the workflow drops and recreates "
                    "the dev database",
                    hint="point DEV_DATABASE_URL at an empty throw-away database (inv db.up provides one)",
                )
            env_name = variables[variable]
            if self.is_protected(env_name) or self.is_protected(other_env):
                protected, unprotected = (env_name, other_env) if self.is_protected(env_name) else (other_env, env_name)
                raise WorkflowError(
                    f"{variable} and {other} name the same database ({where}): an apply to {unprotected} would change "
                    f"{protected} without its confirmation",
                    hint="give each environment its own database in .env",
                )

    def stack_database(self) -> tuple[str, int, str] | None:
        """The database key of the stack's own `local` database (127.0.0.1:DB_PORT/POSTGRES_DB)."""
        port = self.get("DB_PORT", "5433").strip()
        if not port.isdigit():
            return None
        return database_key(f"postgres://127.0.0.1:{port}/{self.get('POSTGRES_DB', 'app')}")

    def is_protected(self, env_name: str | None) -> bool:
        raw = self.values.get("PROTECTED_ENVS")
        names = DEFAULT_PROTECTED if raw is None else tuple(n.strip() for n in raw.split(",") if n.strip())
        return env_name in names

    def secrets(self) -> tuple[str, ...]:
        """Every password we know of, to scrub from anything we print."""
        return known_secrets(self.values)

    def mask(self, text: str) -> str:
        return mask(text, self.secrets())

    # --- the child's environment ------------------------------------------------------

    def child_environ(self, **extra: str) -> dict[str, str]:
        """Environment for subprocesses: .env + real environment, URLs normalised for Atlas."""
        environ = dict(self.values)
        for key in [k for k in environ if k.endswith("DATABASE_URL") and environ[k]]:
            with contextlib.suppress(WorkflowError):  # validated where it is used
                environ[key] = atlas_url(environ[key], key)
        environ.setdefault("ATLAS_NO_UPDATE_NOTIFIER", "1")
        environ.update(extra)
        return environ

    # --- stack choice --------------------------------------------------------------------

    def stack_choice(self, docker_answers: Callable[[], bool]) -> tuple[str, str]:
        """(backend, why). `docker_answers` is a callable, only called when STACK is unset."""
        chosen = self.get("STACK").strip().lower()
        if chosen:
            if chosen not in STACKS:
                raise WorkflowError(
                    f"STACK={chosen!r} is not a known backend", hint="set STACK to compose or local, or unset it"
                )
            return chosen, f"STACK={chosen}"
        if shutil.which("docker") and docker_answers():
            return "compose", "a Docker engine answers (STACK unset)"
        return "local", "no Docker engine answers (STACK unset)"
