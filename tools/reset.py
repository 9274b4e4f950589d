"""`inv db.reset`: drop and recreate the `local` database, asking first when it is not
plainly the stack's own (tools/ownership.py decides what is the workflow's)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tools.config import Config
from tools.errors import WorkflowError
from tools.ownership import dbname_of, owned, recreate, state
from tools.urls import address, database_key


def only_local(env: str) -> None:
    """db.reset resets the `local` database and nothing else."""
    if env != "local":
        raise WorkflowError(
            f"db.reset only resets the local database, not {env!r}", hint="use inv migrate.apply for other environments"
        )


def reset_local(
    config: Config, yes: bool = False, ask: Callable[[str], str] = input, isatty: Callable[[], bool] | None = None
) -> None:
    """Drop and recreate the `local` database. Without asking only when it is the stack's own
    (127.0.0.1:DB_PORT/POSTGRES_DB), one db.reset made, or empty; else --yes or a typed
    confirmation on a terminal (no terminal and no --yes refuses, nothing dropped)."""
    url, variable = config.url_for("local"), "DATABASE_URL"
    if not yes and database_key(url) != config.stack_database():
        mark, holds = state(url, variable)
        if holds and not owned(mark, "local"):
            stack = address(f"postgres://127.0.0.1:{config.get('DB_PORT', '5433')}/{config.get('POSTGRES_DB', 'app')}")
            what = f"{variable} points at {address(url)}, which is not the stack's database ({stack}) and holds {holds}"
            if not (isatty or sys.stdin.isatty)():
                raise WorkflowError(
                    f"{what}; nothing was dropped",
                    hint="pass --yes to drop it anyway, or point DATABASE_URL at the stack's database",
                )
            name = dbname_of(url)
            answer = ask(f"{what}. Drop and recreate it? Type its name ({name}) to confirm: ")
            if (answer or "").strip() != name:
                raise WorkflowError(
                    f"not confirmed; nothing was dropped on {address(url)}", hint=f"type {name} exactly to confirm"
                )
    recreate(config, url, variable, kind="local", confirmed=True)
