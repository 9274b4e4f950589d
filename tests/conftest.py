"""Shared fixtures: prerequisites (skip locally, fail under CI=true), temporary project copies."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _ignored_by_git() -> list[str]:
    """The name patterns of .gitignore (caches, virtualenvs, .nox's interpreters: over a GB)."""
    path = ROOT / ".gitignore"
    lines = path.read_text().splitlines() if path.exists() else []
    return [
        ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#") and "/" not in ln.strip("/")
    ]


# A project copy holds what git would ship, never the checkout's caches: copying .nox (the
# virtualenvs of `nox -s unit`, about 1.2 GB) into every test's copy filled the disk in CI.
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", ".state", ".nox", "bench", *_ignored_by_git())

# Every password a test hands to the workflow; no captured output may contain one.
PASSWORDS: set[str] = set()


def pytest_configure(config):
    """A private base temp directory per run (unless --basetemp is given).

    pytest's default, /tmp/pytest-of-<user>/pytest-N, is shared by every session of the user: a
    second session started meanwhile deletes all but the newest three and resets the folder to
    mode 0700, which takes the data directories from under the PostgreSQL clusters (run as the
    `postgres` user) of a run still going.
    """
    if config.option.basetemp:
        return
    config.option.basetemp = config._private_basetemp = tempfile.mkdtemp(prefix="shop-tests-")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """`inv migrate.test` runs tests/migrations with pytest on the project's dev server: there, the
    few data tests run in its one process, as before the suite ran in parallel (pyproject's -n)."""
    from tools.datatests import ON_DEV

    if os.environ.get(ON_DEV) and getattr(config.option, "numprocesses", None) is not None:
        config.option.numprocesses = 0


# The order the tests are handed to xdist's workers: the slowest folders first, so that a long test
# never starts last while the other workers sit idle (the fidelity scenarios alone are a third of
# the time). Within a folder, pytest's order (module fixtures are set up once per worker).
SLOW_FIRST = ("fidelity", "e2e", "integration", "migrations", "unit")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        parts = Path(str(item.path)).resolve().relative_to(ROOT).parts
        folder = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
        return SLOW_FIRST.index(folder) if folder in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)


def pytest_sessionfinish(session, exitstatus):
    """Remove the private base temp directory of a run that passed (a failed one is kept to read)."""
    path = getattr(session.config, "_private_basetemp", None)
    if path and exitstatus == 0:
        shutil.rmtree(path, ignore_errors=True)
    elif path:
        print(f"\ntest files kept in {path}", file=sys.stderr)


def require(condition: bool, reason: str) -> None:
    """Skip a test whose prerequisite is missing, except under CI=true where that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def atlas_binary() -> str | None:
    from tools.atlas import find_binary

    return find_binary()


@contextlib.contextmanager
def throwaway_cluster(base: Path):
    """A PostgreSQL cluster of its own under `base` (its own port and password), destroyed
    afterwards. The server runs as the `postgres` user when the tests run as root: it must reach
    the folder."""
    from tools.errors import WorkflowError
    from tools.pgcluster import Cluster
    from tools.pgserver import find_bindir

    try:
        find_bindir()
    except WorkflowError:
        require(False, "PostgreSQL server binaries are not installed")
    base.mkdir(parents=True, exist_ok=True)
    for parent in [base, *base.parents]:
        if parent == Path(tempfile.gettempdir()):
            break
        parent.chmod(parent.stat().st_mode | 0o111)
    password = "pw" + secrets.token_hex(8)
    PASSWORDS.add(password)
    cluster = Cluster(base / "data", free_port(), "postgres", password)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


# Ports handed out by free_port(), each held as a lock on a file of PORT_LOCKS for the life of the
# process: the kernel's "free port" is free until someone binds it, and a parallel worker (or another
# test session) asking meanwhile is handed the same one.
PORT_LOCKS = Path(tempfile.gettempdir()) / f"shop-tests-ports-{os.getuid()}"
_held_ports: dict[int, int] = {}  # port -> the descriptor holding its lock


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1, never handed out twice on this machine while the
    process that got it lives (every pytest process, xdist's workers included, takes its own)."""
    from tools.pgcluster import free_port as fp

    for _ in range(100):
        port = fp()
        if reserve_port(port):
            return port
    raise RuntimeError(f"no free port could be reserved: see {PORT_LOCKS}")


def reserve_port(port: int) -> bool:
    """Take `port` for this process (False when this or another live process holds it)."""
    import fcntl

    if port in _held_ports:
        return False
    while True:
        PORT_LOCKS.mkdir(mode=0o700, exist_ok=True)
        path = PORT_LOCKS / str(port)
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        except FileNotFoundError:  # the folder was removed meanwhile by a process ending
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            _held_ports[port] = fd
            return True
        os.close(fd)  # its holder removed the file between our open and our lock: take the new one


def release_ports(ports: Iterable[int] | None = None) -> None:
    """Give back this process's ports, or those of `ports` (the kernel also drops the locks of a
    process that dies)."""
    for port in list(_held_ports if ports is None else ports):
        fd = _held_ports.pop(port, None)
        if fd is None:
            continue
        with contextlib.suppress(OSError):
            os.unlink(PORT_LOCKS / str(port))  # while still holding it: a waiter re-checks the inode
        os.close(fd)
    with contextlib.suppress(OSError):
        PORT_LOCKS.rmdir()  # the last one out (fails while other processes hold ports)


def pytest_unconfigure(config):
    release_ports()


def assert_no_secret(text: str) -> None:
    for pw in PASSWORDS:
        assert pw not in text, "a password appeared in the output"


@dataclass
class Project:
    """A temporary copy of the project, with its own .env, ports and backend."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def inv(
        self, *args: str, input: str | None = None, timeout: float = 900, extra_env: dict | None = None
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env, **(extra_env or {})}
        env.pop("PYTEST_CURRENT_TEST", None)
        proc = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=env,
            text=True,
            capture_output=True,
            input=input,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        assert_no_secret(proc.stdout + proc.stderr)
        return proc

    def start(self, *args: str, new_session: bool = False) -> subprocess.Popen:
        """`inv ARGS` running in the background, output captured (in its own session when
        `new_session`, so that a whole-group signal reaches only it and its children)."""
        env = {**os.environ, **self.env}
        env.pop("PYTEST_CURRENT_TEST", None)
        return subprocess.Popen(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=env,
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=new_session,
        )

    def inv_on_terminal(self, *args: str, typed: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        """`inv ARGS` with a pseudo-terminal on stdin (a typed confirmation), typing `typed`."""
        master, slave = os.openpty()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "invoke", *args],
                cwd=self.root,
                env={**os.environ, **self.env, **(extra_env or {})},
                stdin=slave,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            os.write(master, (typed + "\n").encode())
            out, err = proc.communicate(timeout=300)
        finally:
            os.close(slave)
            os.close(master)
        assert_no_secret(out + err)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def run(self, argv: list[str], timeout: float = 300, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env, **(extra_env or {})}
        proc = subprocess.run(
            argv, cwd=self.root, env=env, text=True, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        assert_no_secret(proc.stdout + proc.stderr)
        return proc

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def files(self) -> dict[str, str]:
        """Every file of the copy that the workflow may write, for before/after comparisons."""
        out = {}
        for rel in ("schema.sql",):
            p = self.root / rel
            out[rel] = p.read_text() if p.exists() else ""
        for p in sorted((self.root / "migrations").rglob("*")):
            if p.is_file():  # checks/ holds the pre-conditions files
                out[p.relative_to(self.root).as_posix()] = p.read_text()
        return out


def make_project(tmp_path: Path, stack: str, migrations: bool = True) -> Project:
    # The server runs as the `postgres` user when tests run as root: it must reach the copy.
    tmp_path.mkdir(parents=True, exist_ok=True)
    for parent in [tmp_path, *tmp_path.parents]:
        if parent == Path(tempfile.gettempdir()):
            break
        parent.chmod(parent.stat().st_mode | 0o111)
    root = tmp_path / "project"
    shutil.copytree(ROOT, root, ignore=COPY_IGNORE)
    if not migrations:
        shutil.rmtree(root / "migrations")
        (root / "migrations").mkdir()
    password = "pw" + secrets.token_hex(12)
    PASSWORDS.add(password)
    env = {
        "STACK": stack,
        "POSTGRES_USER": "app",
        "POSTGRES_PASSWORD": password,
        "POSTGRES_DB": "app",
        "DB_PORT": str(free_port()),
        "DEV_DB_PORT": str(free_port()),
        "STAGING_DATABASE_URL": "",
        "PRODUCTION_DATABASE_URL": "",
        "DATABASE_URL": "",
        "DEV_DATABASE_URL": "",
        "ATLAS_NO_UPDATE_NOTIFIER": "1",
        "COMPOSE_PROJECT_NAME": "shoptest" + secrets.token_hex(4),
    }
    env["DATABASE_URL"] = f"postgres://app:{password}@127.0.0.1:{env['DB_PORT']}/app?sslmode=disable"
    env["DEV_DATABASE_URL"] = f"postgres://app:{password}@127.0.0.1:{env['DEV_DB_PORT']}/dev?sslmode=disable"
    if (ROOT / ".env").exists():  # keep the machine's image choices (recorded by inv setup)
        from dotenv import dotenv_values

        for key in ("POSTGRES_IMAGE", "PYTHON_IMAGE"):
            value = dotenv_values(ROOT / ".env").get(key)
            if value:
                env[key] = value
    (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return Project(root=root, env=env)


@contextlib.contextmanager
def running_project(path: Path, apply: bool = False):
    """A project copy on local clusters, stack up (and migrated if `apply`), torn down afterwards."""
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    p = make_project(path, "local")
    up = p.inv("db.up")
    assert up.returncode == 0, up.stderr
    if apply:
        applied = p.inv("migrate.apply")
        assert applied.returncode == 0, applied.stderr
    try:
        yield p
    finally:
        p.inv("db.down", "--volumes")


@pytest.fixture
def local_project(tmp_path):
    """A project copy on the local backend (PostgreSQL clusters), torn down afterwards."""
    from tools.errors import WorkflowError
    from tools.pgserver import find_bindir

    try:
        find_bindir()
        have_pg = True
    except WorkflowError:
        have_pg = False
    require(have_pg, "PostgreSQL server binaries are not installed")
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    project = make_project(tmp_path, "local")
    yield project
    project.inv("db.down", "--volumes", timeout=120)
