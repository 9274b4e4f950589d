"""`inv doctor`: check the tools, the stack and every environment; report what is used and why."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools import atlas as atlas_mod
from tools import compose_stack, docker_setup, pg, pgserver
from tools import stack as stack_mod
from tools.config import Config, env_var_for
from tools.console import Report
from tools.errors import WorkflowError


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
