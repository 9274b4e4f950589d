"""`inv setup`: provision what the workflow needs (.env, Atlas, Docker or the local clusters' binaries)."""

from __future__ import annotations

import os
from pathlib import Path

from tools import atlas as atlas_mod
from tools import compose_stack, docker_images, docker_setup, pgserver
from tools.config import Config
from tools.console import Log, progress
from tools.envfile import ensure_dotenv, move_taken_ports, record, tighten_dotenv
from tools.errors import WorkflowError


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
    created = ensure_dotenv(root, log)
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
            if created:
                move_taken_ports(root, log)
        elif stack_pref == "compose":
            raise WorkflowError("STACK=compose but no Docker engine answers", hint="start Docker, or set STACK=local")
        else:
            log("no Docker engine and no way to install one here: the local backend (PostgreSQL clusters) will be used")
    if not want_docker or not _docker_ok():
        log(f"PostgreSQL server binaries: {pgserver.find_bindir()}")
    return Config.load(root)


def _docker_ok() -> bool:

    return compose_stack.docker_answers()
