"""The Compose backend of the stack: dev-db, db and app containers (`docker compose`).

It serves the dev database and the `local` target on 127.0.0.1 with the credentials of .env
and runs the schema dump in the app container.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from urllib.parse import urlsplit

from tools import console, docker_setup, timings
from tools.config import Config
from tools.console import Log
from tools.dump_runner import DumpRun
from tools.errors import WorkflowError
from tools.stack_common import ServiceState, check_stored_password, require_password

SERVICES = ("dev-db", "db", "app")
UP_TIMEOUT = 180
APP_IMAGE_INPUTS = ("Dockerfile", "requirements-app.txt")  # what the app image is built from


def docker_answers(timeout: float = 5) -> bool:
    """A Docker engine answers `docker info`."""
    return docker_setup.engine_ok(timeout)


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


class ComposeStack:
    name = "compose"

    def __init__(self, config: Config, why: str = "") -> None:
        self.config = config
        self.why = why
        self.root = config.root

    def argv(self, *args: str) -> list[str]:
        docker = shutil.which("docker") or "docker"
        return [docker, "compose", "--project-directory", str(self.root), "-f", str(self.root / "compose.yaml"), *args]

    def _run(self, *args: str, timeout: float = 300, capture: bool = True) -> subprocess.CompletedProcess:
        try:
            with timings.step(f"docker compose {args[0]}"):
                return subprocess.run(
                    self.argv(*args),
                    cwd=self.root,
                    env=self.config.child_environ(APP_IMAGE=app_image(self.config)),
                    capture_output=capture,
                    text=True,
                    timeout=timeout,
                    stdin=subprocess.DEVNULL,
                )
        except FileNotFoundError:
            raise WorkflowError(
                "the docker CLI is not installed", hint="install Docker, or use the local backend (STACK=local)"
            ) from None
        except subprocess.TimeoutExpired:
            raise WorkflowError(
                f"docker compose {args[0]} did not finish within {timeout:.0f}s", hint="see docker compose logs"
            ) from None

    def _fail(self, proc: subprocess.CompletedProcess, what: str) -> WorkflowError:
        lines = [ln.strip() for ln in (proc.stderr or "").splitlines() + (proc.stdout or "").splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower() or "required" in ln.lower()]
        line = self.config.mask((errors or lines or ["no output"])[-1])
        if "cannot connect to the docker daemon" in line.lower():
            return WorkflowError(
                "no Docker engine answers",
                hint="start Docker (or run inv setup), or use the local backend: STACK=local",
            )
        if any(
            mark in line.lower()
            for mark in ("registry", "pull access denied", "manifest unknown", "failed to resolve reference")
        ):
            return WorkflowError(
                f"{what}: an image cannot be pulled ({line})",
                hint=(
                    "run inv setup (it builds local stand-ins and records them in .env), or set POSTGRES_IMAGE / "
                    "PYTHON_IMAGE"
                ),
            )
        if "port is already allocated" in line.lower() or "address already in use" in line.lower():
            return self._port_taken(line, what)
        return WorkflowError(f"{what} failed: {line}", hint="see docker compose logs")

    def _port_taken(self, line: str, what: str) -> WorkflowError:
        """Name who holds the port: another checkout's stack (and how to stop it) or a process."""
        other_ports = "or choose other ports in .env (DB_PORT / DEV_DB_PORT)"
        found = re.search(r"(?:[\d.]+|\[[0-9a-f:]*\]|localhost):(\d+)", line)
        if not found:
            return WorkflowError(f"{what}: a port is taken ({line})", hint=f"free it, {other_ports}")
        port = int(found.group(1))
        holders = docker_setup.port_holders(port)
        if not holders:
            return WorkflowError(
                f"{what}: port {port} on 127.0.0.1 is taken by a process outside Docker",
                hint=f"stop it (ss -ltnp 'sport = :{port}' names it), {other_ports}",
            )
        name, project, workdir = holders[0]
        if not project:
            return WorkflowError(
                f"{what}: port {port} on 127.0.0.1 is taken by the container {name}",
                hint=f"stop it (docker stop {name}), {other_ports}",
            )
        where = f" of the checkout {workdir}" if workdir else ""
        stop = f"cd {shlex.quote(workdir)} && inv db.down" if workdir else f"docker compose -p {project} stop"
        return WorkflowError(
            f"{what}: port {port} on 127.0.0.1 is taken by {name}, Compose project {project}{where}",
            hint=f"stop that stack ({stop}), {other_ports}",
        )

    def up(self, log: Log, services: tuple[str, ...] = ()) -> None:
        require_password(self.config)
        self._start(log, services)
        if "db" in (services or SERVICES):
            check_stored_password(self.config, "its Docker volume (db-data)")

    def _start(self, log: Log, services: tuple[str, ...]) -> None:
        states = {s.name: s.state for s in self.states()}
        if any(state == "no Docker engine" for state in states.values()):
            raise WorkflowError(
                "no Docker engine answers",
                hint="start Docker (or run inv setup), or use the local backend: STACK=local",
            )
        if all(
            states.get(name, "").startswith("running")
            and "unhealthy" not in states.get(name, "")
            and "starting" not in states.get(name, "")
            for name in services or SERVICES
        ):
            return  # already up and healthy: nothing to wait for
        with console.progress(
            log,
            f"Starting {', '.join(services or SERVICES)} with docker compose (waits until healthy, up to "
            f"{UP_TIMEOUT}s)",
        ):
            proc = self._run(
                "up", "--detach", "--wait", "--wait-timeout", str(UP_TIMEOUT), *services, timeout=UP_TIMEOUT + 600
            )
        if proc.returncode != 0:
            raise self._fail(proc, "docker compose up")
        # Compose can exit 0 although a container failed to start (e.g. a taken port): check.
        states = {s.name: s.state for s in self.states()}
        down = [name for name in services or SERVICES if not states.get(name, "").startswith("running")]
        if down:
            proc.returncode = 1
            raise self._fail(proc, f"docker compose up ({', '.join(down)} not running)")

    def down(self, log: Log, volumes: bool = False) -> None:
        proc = self._run("down", "--remove-orphans", *(["--volumes"] if volumes else []))
        if proc.returncode != 0:
            raise self._fail(proc, "docker compose down")

    def states(self) -> list[ServiceState]:
        found = self._containers()
        if found is None:
            proc = self._run("ps", "--all", "--format", "json", timeout=60)
            if proc.returncode != 0:
                if not docker_answers():
                    return [ServiceState(s, "no Docker engine") for s in SERVICES]
                raise self._fail(proc, "docker compose ps")
            text = proc.stdout.strip()
            rows = (
                json.loads(text) if text.startswith("[") else [json.loads(ln) for ln in text.splitlines() if ln.strip()]
            )
            found = {r.get("Service"): r for r in rows}
        out = []
        for service in SERVICES:
            row = found.get(service)
            if not row:
                out.append(ServiceState(service, "not created"))
                continue
            health = row.get("Health") or ""
            out.append(
                ServiceState(service, row.get("State", "?") + (f" ({health})" if health else ""), row.get("Image", ""))
            )
        return out

    def _containers(self) -> dict[str, dict[str, str]] | None:
        """{service: its row as `docker compose ps` gives it}, read with `docker ps` and the
        labels Compose puts on its containers: the same answer in a tenth of the time (Compose's
        CLI loads the whole project first; about 100 ms against 10). None when that cannot be
        asked (no project name, no engine): the caller asks Compose."""
        project = self.config.get("COMPOSE_PROJECT_NAME").strip()
        docker = shutil.which("docker")
        if not project or not docker:
            return None
        with timings.step("docker ps"):
            try:
                proc = subprocess.run(
                    [
                        docker,
                        "ps",
                        "--all",
                        "--no-trunc",
                        "--format",
                        "{{json .}}",
                        "--filter",
                        f"label=com.docker.compose.project={project}",
                        "--filter",
                        "label=com.docker.compose.oneoff=False",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    stdin=subprocess.DEVNULL,
                )
            except (OSError, subprocess.TimeoutExpired):
                return None
        if proc.returncode != 0:
            return None
        found: dict[str, dict[str, str]] = {}
        for line in proc.stdout.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            labels = dict(item.partition("=")[::2] for item in (row.get("Labels") or "").split(",") if item)
            service = labels.get("com.docker.compose.service")
            if service:
                found[service] = {
                    "ID": row.get("ID", ""),
                    "State": row.get("State", "?"),
                    "Health": _health(row.get("Status") or ""),
                    "Image": row.get("Image", ""),
                }
        return found

    def dump_schema(self, log: Log) -> str:
        with self.start_dump(log) as running:
            return running.text()

    def start_dump(self, log: Log) -> DumpRun:
        """The dump started in the app container, in the background (DumpRun.text() waits for it).

        Run with `docker exec` on the container `docker ps` found (the same container, working
        directory and environment as `docker compose exec -T app`, without Compose's start-up of
        about 100 ms); with Compose itself when that cannot be asked."""
        states = {s.name: s.state for s in self.states()}
        if not states.get("app", "").startswith("running"):
            self.up(log, ("app",))
        app = (self._containers() or {}).get("app", {})
        docker = shutil.which("docker")
        if docker and app.get("ID") and app.get("State") == "running":
            argv = [docker, "exec", app["ID"], "python", "tools/dump_schema.py"]
        else:
            argv = self.argv("exec", "-T", "app", "python", "tools/dump_schema.py")
        env = self.config.child_environ(APP_IMAGE=app_image(self.config))
        return DumpRun(argv, "compose", self.root, env, log, timeout=300)

    def psql_argv(self, target: str) -> tuple[list[str], dict[str, str]]:
        service, url = ("dev-db", self.config.dev_url()) if target == "dev" else ("db", self.config.url_for("local"))
        parts = urlsplit(url)
        return self.argv(
            "exec", service, "psql", "-U", parts.username or "postgres", "-d", parts.path.strip("/")
        ), self.config.child_environ(APP_IMAGE=app_image(self.config))


def _health(status: str) -> str:
    """The health in `docker ps`'s Status text ("Up 2 minutes (healthy)"), as Compose names it."""
    for text, health in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"), ("(health: starting)", "starting")):
        if text in status:
            return health
    return ""
