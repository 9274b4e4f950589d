"""`inv setup` and `inv doctor`: provision what the workflow needs, and report on it."""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools import atlas as atlas_mod
from tools import compose_stack, docker_images, docker_setup, pg, pgcluster, pgserver
from tools import stack as stack_mod
from tools.config import DEFAULT_DB_PORT, DEFAULT_DEV_DB_PORT, Config, env_var_for
from tools.console import Log, Report, progress
from tools.errors import WorkflowError


def ensure_dotenv(root: Path, log: Log) -> bool:
    """Create .env from .env.example. Never touches an existing .env.

    A new .env gets a random password, its own Compose project name and free host ports: the
    local database's data is initialised with that password, so a checkout with a new .env
    must never pick up the containers and volume of another checkout (Compose would otherwise
    name both after the directory, e.g. two clones called `main`).
    """
    env_file, example = root / ".env", root / ".env.example"
    if env_file.exists():
        return False
    from dotenv import set_key

    text = example.read_text()
    env_file.write_text(text)
    env_file.chmod(0o600)

    values = {"POSTGRES_PASSWORD": secrets.token_hex(16), "COMPOSE_PROJECT_NAME": project_name(root)}
    taken: set[int] = set()
    for key, default in (("DB_PORT", DEFAULT_DB_PORT), ("DEV_DB_PORT", DEFAULT_DEV_DB_PORT)):
        port = pgcluster.free_port(default, avoid=taken)
        taken.add(port)
        if port != default:
            values[key] = str(port)
            log(f"port {default} on 127.0.0.1 is in use: {key}={port}")
    for key, value in values.items():
        set_key(str(env_file), key, value, quote_mode="never")
    log(
        "created .env from .env.example with a random POSTGRES_PASSWORD "
        f"(Compose project {values['COMPOSE_PROJECT_NAME']})"
    )
    return True


def project_name(root: Path) -> str:
    """A Compose project name of its own: the directory's name plus a random suffix."""
    import re

    base = re.sub(r"[^a-z0-9_-]+", "-", root.resolve().name.lower()).strip("-_") or "shop"
    return f"{base[:40]}-{secrets.token_hex(3)}"


def record(root: Path, values: dict[str, str], log: Log) -> None:
    from dotenv import set_key

    for key, value in values.items():
        set_key(str(root / ".env"), key, value, quote_mode="never")
        log(f"recorded {key}={value} in .env")


def ensure_atlas(root: Path, log: Log) -> str:
    found = atlas_mod.find_binary()
    if found:
        return found
    return str(atlas_mod.build_pinned(root / "tools" / "atlas-cli", atlas_mod.venv_bin() / "atlas", log))


def can_provision_docker() -> bool:
    return os.geteuid() == 0 and Path("/etc/debian_version").exists()


def ensure_docker(config: Config, log: Log) -> None:

    if not docker_setup.engine_ok():
        docker_setup.ensure_engine(log, state_dir=config.root / ".state")
    docker_setup.ensure_compose(log)
    extra = docker_images.ensure_images(config.root, config.values, log)
    if extra:
        record(config.root, extra, log)
        config.values.update(extra)

    stack = compose_stack.ComposeStack(config)

    with progress(log, "Building the app image (docker compose build app)"):
        proc = stack._run("build", "app", timeout=1800)
    if proc.returncode != 0:
        raise stack._fail(proc, "docker compose build app")


def refuse_orphan_containers(root: Path) -> None:
    """A new .env gets a new password, ports and Compose project: with containers of this
    checkout still there (their .env deleted), a second stack would be built beside them."""

    found = docker_setup.checkout_containers(root)
    if not found:
        return
    project = next(iter(found))
    names = ", ".join(n for names in found.values() for n in names)
    raise WorkflowError(
        f".env is missing but this checkout has containers of Compose project {project} ({names}); no new .env written",
        hint="adopt them: restore their .env "
        f"(or write one with COMPOSE_PROJECT_NAME={project} and their POSTGRES_PASSWORD), "
        f"or remove them with their data: docker compose -p {project} down --volumes; then run inv setup again",
    )


def tighten_dotenv(root: Path, log: Log) -> None:
    """.env holds the database password: readable by its owner only."""
    env_file = root / ".env"
    if env_file.is_file() and env_file.stat().st_mode & 0o077:
        env_file.chmod(0o600)
        log(".env was readable by other users: made it private (chmod 600)")


def stop_checkout_stack(config: Config, log: Log, stop: bool) -> None:
    """`setup --no-docker` while this checkout's Compose stack runs: the local clusters would
    want the same ports. Stop it only when asked (`stop`)."""

    running = docker_setup.checkout_containers(config.root, running_only=True)
    if not running:
        return
    projects = ", ".join(running)
    if not stop:
        raise WorkflowError(
            f"this checkout's Compose stack ({projects}) is running; the local backend would need its ports",
            hint="stop it first (inv db.down), or pass --stop-compose to stop it (its data volume is kept)",
        )

    stack = compose_stack.ComposeStack(config)
    for project in running:
        proc = stack._run("-p", project, "down", "--remove-orphans", timeout=300)
        if proc.returncode != 0:
            raise stack._fail(proc, f"docker compose -p {project} down")
        log(f"stopped this checkout's Compose stack ({project}); its data volume is kept")


def setup(root: Path, log: Log, docker: bool | None = None, stop_compose: bool = False) -> Config:
    if stop_compose and docker is not False:
        raise WorkflowError(
            "--stop-compose only goes with --no-docker", hint="run inv setup --no-docker --stop-compose"
        )
    if not (root / ".env").exists():
        refuse_orphan_containers(root)
    tighten_dotenv(root, log)
    ensure_dotenv(root, log)
    if docker is False:
        stop_checkout_stack(Config.load(root), log, stop_compose)
        from dotenv import dotenv_values

        if (dotenv_values(root / ".env").get("STACK") or "").strip().lower() != "local":
            record(root, {"STACK": "local"}, log)  # every later task uses the same backend
    config = Config.load(root)
    binary = ensure_atlas(root, log)
    log(f"atlas: {binary} ({atlas_mod.version(binary)})")
    stack_pref = config.get("STACK").strip().lower()
    want_docker = docker if docker is not None else stack_pref != "local"
    if want_docker:
        if compose_stack.docker_answers() or can_provision_docker():
            ensure_docker(config, log)
        elif stack_pref == "compose":
            raise WorkflowError("STACK=compose but no Docker engine answers", hint="start Docker, or set STACK=local")
        else:
            log("no Docker engine and no way to install one here: the local backend (PostgreSQL clusters) will be used")
    if not want_docker or not _docker_ok():
        log(f"PostgreSQL server binaries: {pgserver.find_bindir()}")
    return Config.load(root)


def _docker_ok() -> bool:

    return compose_stack.docker_answers()


# --- doctor ---------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # ok, but worth fixing


@dataclass
class DoctorReport(Report):
    checks: list[Check]
    mask: Callable[[str], str] = str

    def lines(self) -> list[str]:
        return [
            f"{('warn' if check.warning else 'ok ') if check.ok else 'FAIL'} {check.name:<18} {self.mask(check.detail)}"
            for check in self.checks
        ]

    def verdict(self) -> None:
        failed = [check.name for check in self.checks if not check.ok]
        if failed:
            raise WorkflowError(f"{len(failed)} check(s) failed: {', '.join(failed)}")


def _tool_version(argv: list[str]) -> str | None:
    if not shutil.which(argv[0]):
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if out.returncode == 0 and lines else None


def dotenv_check(root: Path) -> Check:
    env_file = root / ".env"
    if not env_file.exists():
        return Check(".env", False, "missing: run inv setup (or copy .env.example)")
    mode = env_file.stat().st_mode & 0o777
    if mode & 0o077:
        return Check(
            ".env",
            True,
            f"readable by other users (mode {mode:o}) although it holds the password: chmod 600 .env, or run inv setup",
            warning=True,
        )
    return Check(".env", True, f"present, private (mode {mode:o})")


def ports_check(config: Config) -> Check:
    """The host ports as resolved (a missing or empty variable takes the default Compose uses)."""
    from urllib.parse import urlsplit

    parts = []
    try:
        for variable in ("DB_PORT", "DEV_DB_PORT"):
            parts.append(f"{variable}={config.port(variable)}" + (" (default)" if variable in config.defaulted else ""))
    except WorkflowError as exc:
        return Check("ports", False, str(exc))
    for variable in ("DATABASE_URL", "DEV_DATABASE_URL"):
        try:
            port = urlsplit(config.get(variable)).port if config.get(variable) else None
        except ValueError:
            port = None
        if port:
            parts.append(f"{variable} -> {port}")
    return Check("ports", True, ", ".join(parts))


def _compose_check() -> Check:

    try:
        problem = docker_setup.compose_problem()
    except WorkflowError as exc:
        problem = str(exc)
    if problem:
        return Check(
            "docker compose", False, f"{problem}: run inv setup (it installs the static Compose binary as the plugin)"
        )
    version = _tool_version(["docker", "compose", "version", "--short"])
    return Check("docker compose", True, f"{version} (a failing command exits non-zero)")


REACH_TIMEOUT = 8.0


def doctor(config: Config) -> DoctorReport:
    checks = [Check("python", True, f"{platform.python_version()} ({sys.executable})")]
    try:
        binary = atlas_mod.require_binary()
        checks.append(Check("atlas", True, f"{atlas_mod.version(binary)} ({binary})"))
    except WorkflowError as exc:
        checks.append(Check("atlas", False, str(exc)))
    engine = compose_stack.docker_answers()
    checks.append(
        Check("docker engine", engine, "answers" if engine else "not answering (the local backend works without it)")
    )
    checks.append(_compose_check() if engine else Check("docker compose", True, "not needed without an engine"))
    try:
        checks.append(Check("postgres binaries", True, str(pgserver.find_bindir())))
    except WorkflowError as exc:
        checks.append(Check("postgres binaries", bool(engine), str(exc)))
    checks.append(dotenv_check(config.root))
    checks.append(ports_check(config))
    try:
        stack = stack_mod.get_stack(config)
        detail = f"{stack.name} ({stack.why})"
        if stack.name == "compose":
            project = config.get("COMPOSE_PROJECT_NAME").strip()
            detail += (
                f", Compose project {project}"
                if project
                else f", Compose project {config.root.name}"
                " (the directory's name: set COMPOSE_PROJECT_NAME in .env so no other checkout shares it)"
            )
        checks.append(Check("stack", True, detail))
    except WorkflowError as exc:
        checks.append(Check("stack", False, str(exc)))
    try:
        dev = config.dev_url()
        why = reachable_within(dev)
        checks.append(
            Check("dev database", why is None, f"{config.mask(dev)}" + (f" - {why}" if why else " - reachable"))
        )
    except WorkflowError as exc:
        checks.append(Check("dev database", False, str(exc)))
    checks += env_checks(config)
    return DoctorReport(checks, config.mask)


def env_checks(config: Config) -> list[Check]:
    """Every environment of atlas.hcl: its URL parses and its database answers. An unset URL
    fails for `local` only (the other environments are optional on a developer's machine)."""
    checks = []
    for env in config.env_names:
        if env == "sqlalchemy":
            continue
        variable = env_var_for(env)
        if not config.get(variable).strip():
            checks.append(Check(f"env {env}", env != "local", f"{variable} not set"))
            continue
        try:
            url = config.url_for(env)
        except WorkflowError as exc:  # names the variable only: a URL that does not parse is never shown
            checks.append(Check(f"env {env}", False, str(exc)))
            continue
        why = reachable_within(url)
        checks.append(
            Check(
                f"env {env}", why is None, f"{variable}={config.mask(url)}" + (f" - {why}" if why else " - reachable")
            )
        )
    return checks


def reachable_within(url: str, timeout: float = REACH_TIMEOUT) -> str | None:
    """tools.pg.reachable, bounded: a host that never answers (name resolution included)
    costs at most `timeout` seconds."""
    import threading

    result: list = []
    thread = threading.Thread(target=lambda: result.append(pg.reachable(url)), daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        return f"no answer within {timeout:.0f}s"
    return result[0]
