"""The database stack: Docker Compose, or local PostgreSQL clusters when there is no Docker.

Both backends serve the same two databases on 127.0.0.1 with the same credentials (.env):
the dev database (Atlas's throw-away scratch space, DEV_DB_PORT) and the `local` target
(DB_PORT). `STACK=compose|local` chooses; unset means Compose when a Docker engine answers.
"""

from __future__ import annotations

from collections.abc import Iterator

from tools.compose_stack import ComposeStack, docker_answers
from tools.config import Config
from tools.errors import WorkflowError
from tools.local_stack import LocalStack


def get_stack(config: Config, backend: str | None = None) -> Stack:
    name, why = (backend, "requested") if backend else config.stack_choice(docker_answers)
    return (ComposeStack if name == "compose" else LocalStack)(config, why)


def state_lines(config: Config, stack: Stack) -> Iterator[str]:
    """What runs where: the backend and why, each service's state and its (masked) URL."""
    yield f"backend: {stack.name} ({stack.why})"
    urls = {}
    for key, getter in (("dev-db", config.dev_url), ("db", lambda: config.url_for("local"))):
        try:
            urls[key] = config.mask(getter())
        except WorkflowError as exc:
            urls[key] = str(exc)
    for state in stack.states():
        url = urls.get(state.name, "")
        yield f"  {state.name:<7} {state.state:<22} {url or state.detail}"


# The backend get_stack chooses: Compose containers or local PostgreSQL clusters.
Stack = ComposeStack | LocalStack
