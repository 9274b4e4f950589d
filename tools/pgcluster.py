"""PostgreSQL clusters from the machine's server binaries (no Docker).

Used by the `local` stack backend and by the integration tests. As root, the server runs as
the `postgres` system user (initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.errors import WorkflowError

SEARCH_DIRS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew, Intel
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)
INSTALL_HINT = "install the PostgreSQL 15 server (Debian/Ubuntu: apt-get install postgresql-15; macOS: brew install postgresql@15) or use Docker (STACK=compose)"


def _version_key(path: str) -> tuple:
    digits = "".join(ch if ch.isdigit() else " " for ch in path).split()
    return tuple(int(d) for d in digits)


def find_bindir(environ: dict[str, str] | None = None) -> Path:
    """The directory holding initdb/pg_ctl/postgres: PG_BINDIR, PATH, pg_config, usual places."""
    environ = os.environ if environ is None else environ
    if environ.get("PG_BINDIR"):
        cand = Path(environ["PG_BINDIR"])
        if (cand / "initdb").exists():
            return cand
        raise WorkflowError(f"PG_BINDIR has no initdb", hint=INSTALL_HINT)
    initdb = shutil.which("initdb", path=environ.get("PATH"))
    if initdb:
        return Path(initdb).resolve().parent
    pg_config = shutil.which("pg_config", path=environ.get("PATH"))
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    found = []
    for pattern in SEARCH_DIRS:
        found += [p for p in glob.glob(pattern) if os.path.exists(os.path.join(p, "initdb"))]
    if found:
        preferred = [p for p in found if "15" in p]
        return Path(sorted(preferred or found, key=_version_key)[-1])
    raise WorkflowError("no PostgreSQL server binaries (initdb, pg_ctl) found", hint=INSTALL_HINT)


def _as_server_user() -> list[str]:
    """argv prefix that runs a server binary as a non-root user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise WorkflowError("running as root but there is no 'postgres' user to run the server", hint="create one (useradd postgres) or run as a normal user") from None
    runner = shutil.which("runuser") or shutil.which("setpriv")
    if runner and runner.endswith("runuser"):
        return [runner, "-u", "postgres", "--"]
    if runner:
        return [runner, "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
    return ["su", "postgres", "-s", "/bin/sh", "-c", '"$0" "$@"']


def _chown_for_server(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class Cluster:
    """One cluster: a data directory, a port, a superuser and its password."""

    datadir: Path
    port: int
    user: str = "postgres"
    password: str = ""
    bindir: Path | None = None

    def __post_init__(self) -> None:
        self.datadir = Path(self.datadir)
        if self.bindir is None:
            self.bindir = find_bindir()

    @property
    def logfile(self) -> Path:
        return self.datadir.parent / f"{self.datadir.name}.log"

    def _run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(_as_server_user() + argv, capture_output=True, text=True, timeout=timeout, cwd="/")

    @property
    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialised:
            return
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        _chown_for_server(self.datadir.parent)
        if _as_server_user() and self._run(["test", "-w", str(self.datadir.parent)], timeout=10).returncode != 0:
            raise WorkflowError(
                f"the postgres user cannot reach {self.datadir.parent} (a parent directory is private to root)",
                hint="keep the project in a directory other users can traverse (chmod o+x on its parents)",
            )
        with tempfile.NamedTemporaryFile("w", dir=self.datadir.parent, delete=False) as fh:
            fh.write(self.password or "postgres")
            pwfile = Path(fh.name)
        _chown_for_server(pwfile)
        try:
            proc = self._run([
                str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            ], timeout=120)
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            shutil.rmtree(self.datadir, ignore_errors=True)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise WorkflowError(f"initdb failed for {self.datadir.name}: {tail[0]}", hint=INSTALL_HINT)

    def pid(self) -> int | None:
        """The postmaster's pid when it runs (a stale postmaster.pid counts as not running)."""
        pidfile = self.datadir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # stale: the server died; postgres clears the file on its next start
        except PermissionError:
            pass
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"postgres" not in cmdline.read_bytes():
            # The pid was reused by another program: the file is stale and would block a start.
            pidfile.unlink(missing_ok=True)
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout: float = 30) -> None:
        if self.running():
            return
        self.init()
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off"
        proc = self._run([
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile), "-o", opts,
            "-w", "-t", str(int(timeout)), "start",
        ], timeout=timeout + 10)
        if proc.returncode != 0:
            log = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
            if "could not bind" in log.splitlines()[-5:].__str__() or "Address already in use" in log[-2000:]:
                raise WorkflowError(f"port {self.port} on 127.0.0.1 is taken by another program", hint="stop it, or choose another port in .env (DB_PORT / DEV_DB_PORT)")
            last = [l for l in log.strip().splitlines() if l][-1:] or [proc.stderr.strip()]
            raise WorkflowError(f"PostgreSQL cluster {self.datadir.name} did not start: {last[0]}", hint=f"see {self.logfile}")

    def stop(self, timeout: float = 30) -> None:
        if not self.running():
            return
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"], timeout=timeout + 10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.logfile.unlink(missing_ok=True)

    def url(self, dbname: str = "postgres") -> str:
        auth = f"{self.user}:{self.password}@" if self.password else f"{self.user}@"
        return f"postgres://{auth}127.0.0.1:{self.port}/{dbname}?sslmode=disable"


def free_port(preferred: int = 0, avoid: set[int] = frozenset()) -> int:
    """A port nothing listens on at 127.0.0.1: `preferred` or the next free one above it
    (skipping `avoid`); any free one when `preferred` is 0."""
    import socket

    candidates = range(preferred, preferred + 200) if preferred else [0]
    for port in candidates:
        if port in avoid:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise WorkflowError(f"no free port on 127.0.0.1 between {preferred} and {preferred + 199}", hint="set DB_PORT and DEV_DB_PORT in .env")


def wait_ready(connect, timeout: float = 30, what: str = "database", log=None) -> None:
    """Call `connect()` until it works; bounded, with one visible line if it takes a while."""
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            connect()
            return
        except Exception as exc:  # noqa: BLE001 - any connection failure means "not yet"
            if time.monotonic() > deadline:
                raise WorkflowError(f"{what} not ready after {timeout:.0f}s: {type(exc).__name__}", hint="see inv db.status") from None
            if log and not told:
                log(f"waiting for {what} (up to {timeout:.0f}s)...")
                told = True
            time.sleep(0.2)
