""".env for `inv setup`: created from .env.example (a random password, a Compose project and free
ports of its own), values recorded in it, kept private.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from tools import pgcluster
from tools.config import DEFAULT_DB_PORT, DEFAULT_DEV_DB_PORT
from tools.console import Log


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


def move_taken_ports(root: Path, log: Log) -> None:
    """Ports of a .env written in this run, checked again once the Docker engine runs.

    The ports were free when the .env was written, before setup started the engine; containers
    that restart with the engine (stacks made before this project set `restart: "no"`, or any
    other) may hold them now. Such a port moves to the next free one, said in one line."""
    from dotenv import dotenv_values, set_key

    env_file = root / ".env"
    values = dotenv_values(env_file)
    keys = (("DB_PORT", DEFAULT_DB_PORT), ("DEV_DB_PORT", DEFAULT_DEV_DB_PORT))
    ports = {key: int(values.get(key) or default) for key, default in keys}
    taken = set(ports.values())
    for key, port in ports.items():
        if pgcluster.free_port(port, avoid=frozenset(taken - {port})) == port:
            continue
        moved = pgcluster.free_port(port, avoid=frozenset(taken))
        taken.add(moved)
        set_key(str(env_file), key, str(moved), quote_mode="never")
        log(f"port {port} on 127.0.0.1 was taken once the Docker engine ran: {key}={moved}")


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


def tighten_dotenv(root: Path, log: Log) -> None:
    """.env holds the database password: readable by its owner only."""
    env_file = root / ".env"
    if env_file.is_file() and env_file.stat().st_mode & 0o077:
        env_file.chmod(0o600)
        log(".env was readable by other users: made it private (chmod 600)")
