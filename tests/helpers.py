"""What the tests share: SQL on a database, its catalog snapshot, a project's migration files."""

from __future__ import annotations

import json
from pathlib import Path


def sql(url: str, *statements: str, params=None, dbname: str | None = None) -> list[tuple]:
    """Run `statements` (autocommit) on the database at `url`, or on `dbname` of its server;
    the rows of the last one ([] when it returns none)."""
    import psycopg

    from tools.urls import libpq_url

    rows: list[tuple] = []
    with psycopg.connect(
        libpq_url(url, "the test's URL"), autocommit=True, **({"dbname": dbname} if dbname else {})
    ) as conn:
        for statement in statements:
            cur = conn.execute(statement, params)
            rows = cur.fetchall() if cur.description else []
    return rows


def catalog(url: str) -> str:
    """The catalog snapshot of the database at `url` (tools/catalog.py), as comparable text."""
    from tools.catalog import snapshot_url

    return json.dumps(snapshot_url(url), sort_keys=True)


def migration_files(root: Path) -> dict[str, str]:
    """migrations/ of a project: file name -> text (a pre-conditions file as checks/<name>)."""
    folder = root / "migrations"
    return {
        path.relative_to(folder).as_posix(): path.read_text() for path in sorted(folder.rglob("*")) if path.is_file()
    }


def git(root: Path, *args: str) -> None:
    """git in `root` with a throw-away identity (a test's own repository); fails the test on error."""
    import subprocess

    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=60,
    )
