"""PostgreSQL clusters from the machine's server binaries (no Docker; found by tools/pgserver.py).

Used by the `local` stack backend and by the integration tests. As root, the server runs as
the `postgres` system user (initdb refuses root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Set
from dataclasses import dataclass
from pathlib import Path

from tools.console import Log
from tools.errors import WorkflowError
from tools.pgserver import INSTALL_HINT, _as_server_user, _chown_for_server, _same_dir, find_bindir, process_datadir


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
        written = lines[1].strip() if len(lines) > 1 else ""
        if written and os.path.exists(written) and not _same_dir(written, self.datadir):
            return None, pid  # a pid file written by another cluster
        # (a path that no longer exists: the checkout was moved while its server ran; the
        # process's working directory, which follows the move, decides below)
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
