"""The machine's PostgreSQL server programs (no Docker): where they are, the user they run as,
and which data directory a running server serves. tools/pgcluster.py builds clusters on them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

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
