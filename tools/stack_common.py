"""What both stack backends (tools/compose_stack.py, tools/local_stack.py) share: a service's
state, the host ports, and the password checks of the databases they serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from tools import pg
from tools.config import Config
from tools.errors import WorkflowError


@dataclass
class ServiceState:
    name: str
    state: str
    detail: str = ""


def _port(config: Config, variable: str, default: int | None = None) -> int:
    """A host port variable, resolved with the defaults of tools.config (the ones Compose uses)."""
    return config.port(variable)


def require_password(config: Config) -> str:
    """Both backends need POSTGRES_PASSWORD, running or not: name it when it is empty."""
    password = config.get("POSTGRES_PASSWORD")
    if not password:
        raise WorkflowError(
            "POSTGRES_PASSWORD is not set (empty)",
            hint="set it in .env (inv setup writes a random one into a new .env)",
        )
    return password


def check_stored_password(config: Config, storage: str) -> None:
    """The local target keeps the password it was initialised with; .env may have a newer one."""
    user, password = config.get("POSTGRES_USER", "app"), config.get("POSTGRES_PASSWORD")
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    url = f"postgres://{credentials}@127.0.0.1:{_port(config, 'DB_PORT')}/postgres?sslmode=disable"
    try:
        pg.connect(url).close()
    except Exception as exc:
        if "password authentication failed" in str(exc).lower():
            raise WorkflowError(
                f"the local database refused POSTGRES_PASSWORD from .env: {storage} was initialised with another "
                "password",
                hint="put that password back in .env, or discard the local data with inv db.down --volumes",
            ) from None
        raise pg.connection_error(exc, "the local database") from None
