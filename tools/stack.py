"""The database stack: Docker Compose, or local PostgreSQL clusters when there is no Docker.

Both backends serve the same two databases on 127.0.0.1 with the same credentials (.env):
the dev database (Atlas's throw-away scratch space, DEV_DB_PORT) and the `local` target
(DB_PORT). `STACK=compose|local` chooses; unset means Compose when a Docker engine answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from tools.config import Config, libpq_url
from tools.errors import WorkflowError

SERVICES = ("dev-db", "db", "app")
UP_TIMEOUT = 180
APP_IMAGE_INPUTS = ("Dockerfile", "requirements-app.txt")  # what the app image is built from


@dataclass
class ServiceState:
    name: str
    state: str
    detail: str = ""


def docker_answers(timeout: float = 5) -> bool:
    """A Docker engine answers `docker info`."""
    from tools.docker_setup import engine_ok

    return engine_ok(timeout)


def app_image(config: Config) -> str:
    """The app image's tag: APP_IMAGE, else one named after what it is built from (Dockerfile,
    requirements-app.txt, PYTHON_IMAGE), so checkouts whose dependencies differ never share it."""
    import hashlib

    chosen = config.get("APP_IMAGE").strip()
    if chosen:
        return chosen
    digest = hashlib.sha256(config.get("PYTHON_IMAGE").strip().encode() + b"\0")
    for name in APP_IMAGE_INPUTS:
        path = config.root / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return f"schemaflow-app:{digest.hexdigest()[:12]}"


def get_stack(config: Config, backend: str | None = None):
    name, why = (backend, "requested") if backend else config.stack_choice(docker_answers)
    return (ComposeStack if name == "compose" else LocalStack)(config, why)


def _port(config: Config, variable: str, default: int | None = None) -> int:
    """A host port variable, resolved with the defaults of tools.config (the ones Compose uses)."""
    return config.port(variable)


# --- databases on a running server ---------------------------------------------------------

def _connect(url: str, dbname: str | None = None, timeout: int = 5):
    import psycopg

    kwargs = {"connect_timeout": timeout, "autocommit": True}
    if dbname:
        kwargs["dbname"] = dbname
    return psycopg.connect(libpq_url(url, "database URL"), **kwargs)


def connection_error(exc: Exception, what: str) -> WorkflowError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if "password authentication failed" in low:
        return WorkflowError(f"{what}: the server refused the password", hint="check the user and password in the URL (.env)")
    if "no password supplied" in low:
        return WorkflowError(f"{what}: the server wants a password and the URL has none",
                             hint="set POSTGRES_PASSWORD in .env (an empty one leaves the URLs without a password)")
    if "does not exist" in low:
        return WorkflowError(f"{what}: {text}", hint="create it, or fix the database name in the URL")
    import psycopg

    if isinstance(exc, psycopg.Error) and not isinstance(exc, psycopg.OperationalError):
        return WorkflowError(f"{what}: {text}")
    reason = "connection refused" if "refused" in low else ("timed out" if "timeout" in low or "timed out" in low else text[:120])
    return WorkflowError(f"{what} is not reachable ({reason})", hint="start the stack with inv db.up, or check the URL's host and port in .env")


def ensure_database(url: str, what: str) -> None:
    import psycopg

    parts = urlsplit(url)
    dbname = parts.path.strip("/")
    try:
        with _connect(url, dbname="postgres") as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None:
                try:
                    conn.execute(f'CREATE DATABASE "{dbname}"')
                except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    pass  # created meanwhile by a concurrent run
    except Exception as exc:
        raise connection_error(exc, what) from None


def require_password(config: Config) -> str:
    """Both backends need POSTGRES_PASSWORD, running or not: name it when it is empty."""
    password = config.get("POSTGRES_PASSWORD")
    if not password:
        raise WorkflowError("POSTGRES_PASSWORD is not set (empty)", hint="set it in .env (inv setup writes a random one into a new .env)")
    return password


def check_stored_password(config: Config, storage: str) -> None:
    """The local target keeps the password it was initialised with; .env may have a newer one."""
    user, password = config.get("POSTGRES_USER", "app"), config.get("POSTGRES_PASSWORD")
    url = f"postgres://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{_port(config, 'DB_PORT')}/postgres?sslmode=disable"
    try:
        _connect(url).close()
    except Exception as exc:
        if "password authentication failed" in str(exc).lower():
            raise WorkflowError(
                f"the local database refused POSTGRES_PASSWORD from .env: {storage} was initialised with another password",
                hint="put that password back in .env, or discard the local data with inv db.down --volumes") from None
        raise connection_error(exc, "the local database") from None


DEV_LOCK_KEY = 0x5C4E_3A12
_dev_lock_depth = 0


class dev_lock:
    """One user of the dev database at a time (it is dropped and recreated around each use).

    Re-entrant within a process; waits at most `timeout` seconds for other processes.
    """

    def __init__(self, url: str, timeout: float = 600, log=None):
        self.url, self.timeout, self.log = url, timeout, log
        self.conn = None

    def __enter__(self):
        global _dev_lock_depth
        _dev_lock_depth += 1
        if _dev_lock_depth > 1:
            return self
        import psycopg

        try:
            self.conn = _connect(self.url, dbname="postgres")
            if not self.conn.execute("SELECT pg_try_advisory_lock(%s)", (DEV_LOCK_KEY,)).fetchone()[0]:
                if self.log:
                    self.log(f"the dev database is in use by another run: waiting up to {self.timeout:.0f}s...")
                self.conn.execute(f"SET lock_timeout = {int(self.timeout * 1000)}")
                self.conn.execute("SELECT pg_advisory_lock(%s)", (DEV_LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            self._release()
            raise WorkflowError(f"the dev database stayed in use for {self.timeout:.0f}s", hint="wait for the other diff/lint/apply to finish") from None
        except Exception as exc:
            self._release()
            raise connection_error(exc, "the dev database") from None
        return self

    def _release(self):
        global _dev_lock_depth
        _dev_lock_depth -= 1
        if _dev_lock_depth == 0 and self.conn is not None:
            self.conn.close()
            self.conn = None

    def __exit__(self, *exc):
        self._release()
        return False


def reachable(url: str) -> str | None:
    """None when the database answers, else a one-line reason."""
    try:
        with _connect(url, timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except WorkflowError as exc:
        return str(exc)
    except Exception as exc:
        return str(connection_error(exc, "database"))


DUMP_HEADER = "-- Generated by tools/dump_schema.py"
DUMP_HINT = "fix the error in app/models/ (the lines above show where)"


def dump_on_host(root: Path, log=None, timeout: float = 120) -> str:
    try:
        proc = subprocess.run([sys.executable, str(root / "tools" / "dump_schema.py")], cwd=root,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise WorkflowError(f"the schema dump did not finish within {timeout:.0f}s", hint="check app/models/ for work done at import time") from None
    return dump_result(proc, log)


def dump_result(proc: subprocess.CompletedProcess, log=None) -> str:
    """The schema a dump printed, or the error it shows: success is read from the exit status
    AND from the text (a Compose that discards exit statuses must not turn a failure into SQL)."""
    if proc.returncode == 0 and (proc.stdout or "").startswith(DUMP_HEADER):
        return proc.stdout
    raise dump_error(proc.stderr or "", log, printed=bool((proc.stdout or "").strip()))


def dump_error(stderr: str, log=None, printed: bool = False) -> WorkflowError:
    """One line naming the models' error; the user's traceback (trimmed by dump_schema.py) is
    logged above it."""
    lines = [l.rstrip() for l in stderr.splitlines() if l.strip()]
    if not lines:
        what = "printed something other than a schema" if printed else "printed nothing"
        return WorkflowError(f"the schema dump failed: it {what}, and no error", hint="run python tools/dump_schema.py to see what it does")
    if log is not None:
        shown = lines[:-1][-40:]
        for line in shown:
            log(line)
    return WorkflowError(f"the models failed to load: {lines[-1].strip()}", hint=DUMP_HINT if log is not None else
                         "fix the error in app/models/ (run python tools/dump_schema.py to see the traceback)")


# --- Compose --------------------------------------------------------------------------------

class ComposeStack:
    name = "compose"

    def __init__(self, config: Config, why: str = ""):
        self.config = config
        self.why = why
        self.root = config.root

    def argv(self, *args: str) -> list[str]:
        docker = shutil.which("docker") or "docker"
        return [docker, "compose", "--project-directory", str(self.root), "-f", str(self.root / "compose.yaml"), *args]

    def _run(self, *args: str, timeout: float = 300, capture: bool = True) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self.argv(*args), cwd=self.root, env=self.config.child_env(APP_IMAGE=app_image(self.config)), capture_output=capture,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise WorkflowError("the docker CLI is not installed", hint="install Docker, or use the local backend (STACK=local)") from None
        except subprocess.TimeoutExpired:
            raise WorkflowError(f"docker compose {args[0]} did not finish within {timeout:.0f}s", hint="see docker compose logs") from None

    def _fail(self, proc: subprocess.CompletedProcess, what: str) -> WorkflowError:
        lines = [l.strip() for l in (proc.stderr or "").splitlines() + (proc.stdout or "").splitlines() if l.strip()]
        errors = [l for l in lines if "error" in l.lower() or "required" in l.lower()]
        line = self.config.mask((errors or lines or ["no output"])[-1])
        if "cannot connect to the docker daemon" in line.lower():
            return WorkflowError("no Docker engine answers", hint="start Docker (or run inv setup), or use the local backend: STACK=local")
        if any(mark in line.lower() for mark in ("registry", "pull access denied", "manifest unknown", "failed to resolve reference")):
            return WorkflowError(f"{what}: an image cannot be pulled ({line})",
                                 hint="run inv setup (it builds local stand-ins and records them in .env), or set POSTGRES_IMAGE / PYTHON_IMAGE")
        if "port is already allocated" in line.lower() or "address already in use" in line.lower():
            return WorkflowError(f"{what}: a port is taken ({line})", hint="free it, or choose other ports in .env (DB_PORT / DEV_DB_PORT)")
        return WorkflowError(f"{what} failed: {line}", hint="see docker compose logs")

    def up(self, log, services: tuple[str, ...] = ()) -> None:
        require_password(self.config)
        self._start(log, services)
        if "db" in (services or SERVICES):
            check_stored_password(self.config, "its Docker volume (db-data)")

    def _start(self, log, services: tuple[str, ...]) -> None:
        states = {s.name: s.state for s in self.states()}
        if any(state == "no Docker engine" for state in states.values()):
            raise WorkflowError("no Docker engine answers", hint="start Docker (or run inv setup), or use the local backend: STACK=local")
        if all(states.get(name, "").startswith("running") and "unhealthy" not in states.get(name, "") and "starting" not in states.get(name, "")
               for name in services or SERVICES):
            return  # already up and healthy: nothing to wait for
        from tools.progress import progress

        with progress(log, f"Starting {', '.join(services or SERVICES)} with docker compose (waits until healthy, up to {UP_TIMEOUT}s)"):
            proc = self._run("up", "--detach", "--wait", "--wait-timeout", str(UP_TIMEOUT), *services, timeout=UP_TIMEOUT + 600)
        if proc.returncode != 0:
            raise self._fail(proc, "docker compose up")
        # Compose can exit 0 although a container failed to start (e.g. a taken port): check.
        states = {s.name: s.state for s in self.states()}
        down = [name for name in services or SERVICES if not states.get(name, "").startswith("running")]
        if down:
            proc.returncode = 1
            raise self._fail(proc, f"docker compose up ({', '.join(down)} not running)")

    def down(self, log, volumes: bool = False) -> None:
        proc = self._run("down", "--remove-orphans", *(["--volumes"] if volumes else []))
        if proc.returncode != 0:
            raise self._fail(proc, "docker compose down")

    def states(self) -> list[ServiceState]:
        proc = self._run("ps", "--all", "--format", "json", timeout=60)
        if proc.returncode != 0:
            if not docker_answers():
                return [ServiceState(s, "no Docker engine") for s in SERVICES]
            raise self._fail(proc, "docker compose ps")
        text = proc.stdout.strip()
        rows = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
        found = {r.get("Service"): r for r in rows}
        out = []
        for service in SERVICES:
            row = found.get(service)
            if not row:
                out.append(ServiceState(service, "not created"))
                continue
            health = row.get("Health") or ""
            out.append(ServiceState(service, row.get("State", "?") + (f" ({health})" if health else ""), row.get("Image", "")))
        return out

    def dump_schema(self, log) -> str:
        states = {s.name: s.state for s in self.states()}
        if not states.get("app", "").startswith("running"):
            self.up(log, ("app",))
        proc = self._run("exec", "-T", "app", "python", "tools/dump_schema.py", timeout=300)
        return dump_result(proc, log)

    def psql_argv(self, target: str) -> tuple[list[str], dict[str, str]]:
        service, url = ("dev-db", self.config.dev_url()) if target == "dev" else ("db", self.config.url_for("local"))
        parts = urlsplit(url)
        return self.argv("exec", service, "psql", "-U", parts.username or "postgres", "-d", parts.path.strip("/")), self.config.child_env(APP_IMAGE=app_image(self.config))


# --- local clusters -------------------------------------------------------------------------

class LocalStack:
    name = "local"

    def __init__(self, config: Config, why: str = ""):
        self.config = config
        self.why = why
        self.root = config.root
        self.state_dir = self.root / ".state" / "pg"

    def clusters(self):
        from tools.pgcluster import Cluster

        user = self.config.get("POSTGRES_USER", "app")
        password = require_password(self.config)
        return {
            "dev-db": Cluster(self.state_dir / "dev", _port(self.config, "DEV_DB_PORT"), user, password),
            "db": Cluster(self.state_dir / "db", _port(self.config, "DB_PORT"), user, password),
        }

    def up(self, log, services: tuple[str, ...] = ()) -> None:
        clusters = self.clusters()
        wanted = [s for s in (services or tuple(clusters)) if s in clusters]
        started = time.monotonic()
        for name in wanted:
            cluster = clusters[name]
            if cluster.running():
                continue
            log(f"starting local PostgreSQL cluster {name} on 127.0.0.1:{cluster.port}...")
            cluster.start(log=log)
        if "db" in wanted:
            check_stored_password(self.config, "its cluster (.state/pg/db)")
            ensure_database(self.config.url_for("local"), "the local database")
        if "dev-db" in wanted:
            try:
                ensure_database(self.config.dev_url(), "the dev database")
            except WorkflowError as exc:
                if "refused the password" not in exc.message or urlsplit(self.config.dev_url()).port != clusters["dev-db"].port:
                    raise
                # Throw-away by design: made with an earlier password, it is simply made again.
                log("the dev cluster was made with another password: recreating it (it holds nothing)")
                clusters["dev-db"].destroy(log=log)
                clusters["dev-db"].start(log=log)
                ensure_database(self.config.dev_url(), "the dev database")
        if time.monotonic() - started > 2:
            log(f"local clusters ready in {time.monotonic() - started:.1f}s")

    def down(self, log, volumes: bool = False) -> None:
        clusters = self.clusters()
        clusters["db"].stop(log=log)
        clusters["dev-db"].destroy(log=log)  # throw-away by design
        if volumes:
            clusters["db"].destroy(log=log)

    def states(self) -> list[ServiceState]:
        out = []
        for name, cluster in self.clusters().items():
            pid, stale = cluster.read_pidfile()
            if pid is not None:
                out.append(ServiceState(name, "running", f"pid {pid}, 127.0.0.1:{cluster.port}"))
            elif stale is not None:
                out.append(ServiceState(name, "stopped (stale pid file)",
                                        f"postmaster.pid names pid {stale}, not this cluster's server: inv db.up replaces it"))
            else:
                out.append(ServiceState(name, "stopped" if cluster.initialised else "not created"))
        out.append(ServiceState("app", "host", f"schema dump runs with {Path(sys.executable).name} on the host"))
        return out

    def dump_schema(self, log) -> str:
        return dump_on_host(self.root, log)

    def psql_argv(self, target: str) -> tuple[list[str], dict[str, str]]:
        url = self.config.dev_url() if target == "dev" else self.config.url_for("local")
        psql = shutil.which("psql")
        if not psql:
            raise WorkflowError("psql is not installed", hint="install the PostgreSQL client (apt-get install postgresql-client)")
        parts = urlsplit(url)
        env = self.config.child_env(PGPASSWORD=parts.password or "", PGSSLMODE="disable")
        return [psql, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U", parts.username or "postgres", parts.path.strip("/")], env
