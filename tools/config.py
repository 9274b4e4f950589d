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

import contextlib
import functools
import os
import re
import shutil
import sys
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


_NOT_USERINFO = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:%]")  # RFC 3986 userinfo
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


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
    userinfo = parts.netloc.rpartition("@")[0]
    if re.search(r"\s", value.strip()) or parts.netloc.count("@") > 1 or _NOT_USERINFO.search(userinfo) or _BAD_ESCAPE.search(userinfo):
        # libpq splits at the first `@`, Atlas (Go) at the last; Go refuses spaces, quotes and
        # non-ASCII there; libpq refuses a `%` that starts no escape. Say so here, by name only.
        raise WorkflowError(f"{variable} is not a valid URL: it holds a character that must be percent-encoded",
                            hint="percent-encode the user and password (space %20, \" %22, % %25, @ %40, / %2F, non-ASCII as its "
                                 "UTF-8 bytes, as urllib.parse.quote(password, safe='') does)")
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


# --- masking -------------------------------------------------------------------------------
# One function, `mask`, for every line the workflow prints (tasks.py applies it to all output).
# Two layers:
# 1. URL passwords, whatever they hold: in `scheme://user:PASSWORD@host/db` the password is all
#    from after `user:` up to the LAST `@` before the host (the last `@` followed by
#    `host[:port]/` or `?`, else the last `@`) and before the next URL on the line (raw `%`, spaces,
#    quotes, `@`, Atlas's `\"` escaping, percent-encoded or not). Over-masking is preferred to
#    a leak. Also `password=...` in libpq conninfo text.
# 2. Every known password value verbatim (raw, percent-decoded, percent-encoded, escaped):
#    values of 4 characters or more wherever they appear, unless all digits; shorter values and
#    numbers only where they stand alone (not inside a longer word or number), and numbers of
#    fewer than 4 digits not at all, so that a tiny password does not blank every `1` or `ab`
#    of unrelated text, nor a numeric one the digits of versions (layer 1 still masks them in URLs).

MASK = "****"
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
_USERINFO = re.compile(r'[^:/@\s"\\]*:')
_PORT_LIKE = re.compile(r"\d{1,5}(?:[/?]|$)")
_HOST_THEN_PATH = re.compile(r"""[^\s/?#@"'\\]+[/?]""")
_CONNINFO_PASSWORD = re.compile(r"""(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'"]+)""")
SHORT_SECRET = 4


def _url_password_spans(line: str) -> list[tuple[int, int]]:
    """(start, end) of the password of every URL on one line."""
    starts = [m.end() for m in _SCHEME.finditer(line)]
    scheme_starts = [m.start() for m in _SCHEME.finditer(line)]
    spans = []
    for i, after_scheme in enumerate(starts):
        limit = scheme_starts[i + 1] if i + 1 < len(starts) else len(line)
        user = _USERINFO.match(line, after_scheme, limit)
        if not user or _PORT_LIKE.match(line, user.end(), limit):
            continue  # no user:password, or `host:port/...`
        ats = [i for i in range(user.end(), limit) if line[i] == "@"]
        # The host is the one followed by /dbname (or ?options): an address later in the text
        # (user@example.com) is not it. Without such a host, the last `@`.
        hosted = [i for i in ats if _HOST_THEN_PATH.match(line, i + 1, limit)]
        if ats:
            spans.append((user.end(), (hosted or ats)[-1]))
    return spans


def url_password(value: str) -> str:
    """The password of a URL as written (raw, even when the URL does not parse), or ''."""
    spans = _url_password_spans(value.strip())
    return value.strip()[spans[0][0]:spans[0][1]] if spans else ""


def secret_forms(secret: str) -> set[str]:
    """The ways a password can reach the screen: raw, percent-decoded and -encoded, escaped."""
    from urllib.parse import quote, quote_plus, unquote

    forms = {secret, unquote(secret), secret.replace('"', '\\"'), secret.replace("\\", "\\\\").replace('"', '\\"')}
    for form in list(forms):
        encoded = quote(form, safe="")
        forms |= {encoded, quote_plus(form, safe=""), re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
    return {f for f in forms if f}


@functools.lru_cache(maxsize=64)
def _secret_patterns(secrets: tuple[str, ...]) -> re.Pattern | None:
    alternatives = []
    for form in sorted({f for s in secrets if s for f in secret_forms(s)}, key=len, reverse=True):
        if len(form) >= SHORT_SECRET and not form.isdigit():
            alternatives.append(re.escape(form))
        elif len(form) >= SHORT_SECRET or not form.isdigit():  # a number only where it stands alone
            alternatives.append(r"(?<![^\W_])" + re.escape(form) + r"(?![^\W_])")
    return re.compile("|".join(alternatives)) if alternatives else None


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


def mask(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Hide the password of every URL in `text`, and every form of the given secret strings."""
    lines = text.splitlines(keepends=True)
    out = []
    for line in lines:
        pos, parts = 0, []
        for start, end in _url_password_spans(line):
            parts += [line[pos:start], MASK]
            pos = end
        parts.append(line[pos:])
        out.append("".join(parts))
    masked = _CONNINFO_PASSWORD.sub(lambda m: m.group(1) + MASK, "".join(out))
    pattern = _secret_patterns(tuple(sorted(set(secrets))))
    return pattern.sub(MASK, masked) if pattern else masked


def known_secrets(values: dict[str, str]) -> tuple[str, ...]:
    """Every password in `values` (environment + .env): *PASSWORD* variables and the password of
    every *_URL variable, parseable or not."""
    found = set()
    for key, value in values.items():
        if not value:
            continue
        if "PASSWORD" in key.upper():
            found.add(value)
        if key.upper().endswith("URL"):
            found.add(url_password(value))
    return tuple(sorted(s for s in found if s))


class MaskingWriter:
    """A text stream that masks what goes through it, one whole line at a time."""

    def __init__(self, stream, mask_fn):
        self._stream, self._mask, self._pending = stream, mask_fn, ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            done, _, self._pending = self._pending.rpartition("\n")
            self._stream.write(self._mask(done + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._mask(self._pending))
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def masked_output(root: Path = ROOT):
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
            try:
                writer.flush()
            except Exception:
                pass
        sys.stdout, sys.stderr = saved


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
        return known_secrets(self.values)

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
