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
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path

from tools.console import Log
from tools.errors import WorkflowError

SEARCH_DIRS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew, Intel
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)
INSTALL_HINT = (
    "install the PostgreSQL 15 server (Debian/Ubuntu: apt-get install postgresql-15; "
    "macOS: brew install postgresql@15) or use Docker (STACK=compose)"
)


def _version_key(path: str) -> tuple:
    digits = "".join(ch if ch.isdigit() else " " for ch in path).split()
    return tuple(int(d) for d in digits)


def find_bindir(environ: Mapping[str, str] | None = None) -> Path:
    """The directory holding initdb/pg_ctl/postgres: PG_BINDIR, PATH, pg_config, usual places."""
    environ = os.environ if environ is None else environ
    if environ.get("PG_BINDIR"):
        cand = Path(environ["PG_BINDIR"])
        if (cand / "initdb").exists():
            return cand
        raise WorkflowError("PG_BINDIR has no initdb", hint=INSTALL_HINT)
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
        raise WorkflowError(
            "running as root but there is no 'postgres' user to run the server",
            hint="create one (useradd postgres) or run as a normal user",
        ) from None
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


def _same_dir(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b) or os.path.samefile(a, b)
    except OSError:
        return False


def process_datadir(pid: int) -> str | None:
    """The data directory a running postmaster serves: '' when the process is not a PostgreSQL
    server at all, None when it cannot be inspected (no /proc, or no permission).

    A postmaster runs with its data directory as working directory, and pg_ctl starts it with
    `-D <datadir>`; either identifies the cluster.
    """
    proc = Path(f"/proc/{pid}")
    try:
        argv = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
    except FileNotFoundError:
        return None if not Path("/proc/self").exists() else ""
    except OSError:
        return None
    if not argv or os.path.basename(argv[0].split()[0]) not in ("postgres", "postmaster"):
        return ""
    try:
        return os.readlink(proc / "cwd")
    except OSError:
        pass
    for i, arg in enumerate(argv):
        if arg == "-D" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("-D") and len(arg) > 2:
            return arg[2:]
    return None


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

    def _tool(self, name: str) -> str:
        """The path of one of the server's programs (initdb, pg_ctl)."""
        assert self.bindir is not None  # set by __post_init__
        return str(self.bindir / name)

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
            proc = self._run(
                [
                    self._tool("initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    self.user,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            shutil.rmtree(self.datadir, ignore_errors=True)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise WorkflowError(f"initdb failed for {self.datadir.name}: {tail[0]}", hint=INSTALL_HINT)

    @property
    def pidfile(self) -> Path:
        return self.datadir / "postmaster.pid"

    def pid(self) -> int | None:
        """The postmaster's pid when this cluster's server runs.

        postmaster.pid is trusted only when its process is a postmaster of *this* data
        directory: after a crash the pid may have been reused by any program, another
        PostgreSQL server included, and signalling it would stop someone else's server.
        Anything else is stale (see `stale_pid`), which counts as not running.
        """
        return self.read_pidfile()[0]

    def stale_pid(self) -> int | None:
        """The pid of a postmaster.pid that is not this cluster's running server, else None."""
        pid, stale = self.read_pidfile()
        return stale if pid is None else None

    def read_pidfile(self) -> tuple[int | None, int | None]:
        """(trusted pid, stale pid): at most one of them is set."""
        try:
            lines = self.pidfile.read_text().splitlines()
            pid = int(lines[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None, None
        except PermissionError:
            return self._pid_from_pg_ctl(), None
        if pid <= 0:
            return None, pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None, pid  # the server died
        except PermissionError:
            pass  # alive, owned by another user (e.g. we are not root and it is not ours)
        if len(lines) > 1 and lines[1].strip() and not _same_dir(lines[1].strip(), self.datadir):
            return None, pid  # a pid file written by another cluster
        serves = process_datadir(pid)
        if serves is None:
            return (pid, None) if self._pid_from_pg_ctl() == pid else (None, pid)
        return (pid, None) if serves and _same_dir(serves, self.datadir) else (None, pid)

    def _pid_from_pg_ctl(self) -> int | None:
        """Where the process cannot be inspected: what `pg_ctl status` says."""
        try:
            proc = self._run([self._tool("pg_ctl"), "status", "-D", str(self.datadir)], timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        import re

        found = re.search(r"server is running \(PID: (\d+)\)", proc.stdout or "")
        return int(found.group(1)) if proc.returncode == 0 and found else None

    def clear_stale_pidfile(self, log: Log | None = None) -> None:
        """Remove a stale postmaster.pid (so a start works), saying so once."""
        stale = self.stale_pid()
        if stale is None:
            return
        if log:
            log(
                f"{self.datadir.name}: postmaster.pid names pid {stale}, which is not this cluster's server "
                f"(left by a crash): removed it"
            )
        self.pidfile.unlink(missing_ok=True)

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout: float = 30, log: Log | None = None) -> None:
        if self.running():
            return
        self.init()
        self.clear_stale_pidfile(log)
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off"
        proc = self._run(
            [
                self._tool("pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-o",
                opts,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            timeout=timeout + 10,
        )
        if proc.returncode != 0:
            text = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
            if "could not bind" in text.splitlines()[-5:].__str__() or "Address already in use" in text[-2000:]:
                raise WorkflowError(
                    f"port {self.port} on 127.0.0.1 is taken by another program",
                    hint="stop it, or choose another port in .env (DB_PORT / DEV_DB_PORT)",
                )
            last = [ln for ln in text.strip().splitlines() if ln][-1:] or [proc.stderr.strip()]
            raise WorkflowError(
                f"PostgreSQL cluster {self.datadir.name} did not start: {last[0]}", hint=f"see {self.logfile}"
            )

    def stop(self, timeout: float = 30, log: Log | None = None) -> None:
        """Stop this cluster's server; a stale pid file is removed, never signalled (pg_ctl stop
        would send the signal to whatever process has that pid now)."""
        if not self.running():
            self.clear_stale_pidfile(log)
            return
        self._run(
            [self._tool("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"],
            timeout=timeout + 10,
        )

    def destroy(self, log: Log | None = None) -> None:
        self.stop(log=log)
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.logfile.unlink(missing_ok=True)

    def url(self, dbname: str = "postgres") -> str:
        auth = f"{self.user}:{self.password}@" if self.password else f"{self.user}@"
        return f"postgres://{auth}127.0.0.1:{self.port}/{dbname}?sslmode=disable"


def free_port(preferred: int = 0, avoid: Set[int] = frozenset()) -> int:
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
    raise WorkflowError(
        f"no free port on 127.0.0.1 between {preferred} and {preferred + 199}",
        hint="set DB_PORT and DEV_DB_PORT in .env",
    )


def wait_ready(
    connect: Callable[[], object], timeout: float = 30, what: str = "database", log: Log | None = None
) -> None:
    """Call `connect()` until it works; bounded, with one visible line if it takes a while."""
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            connect()
            return
        except Exception as exc:  # noqa: BLE001 - any connection failure means "not yet"
            if time.monotonic() > deadline:
                raise WorkflowError(
                    f"{what} not ready after {timeout:.0f}s: {type(exc).__name__}", hint="see inv db.status"
                ) from None
            if log and not told:
                log(f"waiting for {what} (up to {timeout:.0f}s)...")
                told = True
            time.sleep(0.2)
