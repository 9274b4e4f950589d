"""`inv migrate.renumber`: move a file merged in below the newest version above it, only when
nobody has it yet (not on main, recorded as applied nowhere reachable).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tools.config import GUIDE_ENV, Config, env_var_for
from tools.console import Log
from tools.errors import WorkflowError
from tools.migrations import (
    FILE_RE,
    check_versions,
    ensure_increasing,
    migration_files,
    migrations_dir,
    rehash,
    version_of,
)
from tools.pg import connect, connection_error, scalar


def renumber(config: Config, name: str, log: Log = lambda line: None) -> str:
    """Move one file above every other version (a file merged in below the newest), re-hash.

    Only a file nobody has yet: never one on main (others have it, and may have applied it)
    nor one any reachable environment records as applied (it would run again under its new
    version, and status counts would no longer add up)."""
    if not name.strip():
        raise WorkflowError("which file? pass --file", hint="e.g. inv migrate.renumber --file 20260101000000_add_x.sql")
    check_versions(config)
    path = migrations_dir(config) / name.strip()
    if "/" in name or not FILE_RE.match(path.name) or not path.is_file():
        raise WorkflowError(
            f"no migration file {name!r} in migrations/",
            hint="name a file of migrations/, e.g. 20260101000000_add_x.sql",
        )
    others = {p.name for p in migration_files(config) if p != path}
    newest = max((int(version_of(Path(n))) for n in others), default=0)
    if int(version_of(path)) > newest:
        raise WorkflowError(f"{path.name} is already the newest migration", hint="nothing to renumber")
    ref = main_ref_holding(config, path.name)
    if ref:
        raise WorkflowError(
            f"{path.name} is on {ref}: others have it and may have applied it, so its version is history",
            hint=(
                "leave it as it is; to change the schema further, add a new migration (inv migrate.diff or inv "
                "migrate.new)"
            ),
        )
    for env, versions in recorded_versions_by_env(config, log):
        if version_of(path) in versions:
            raise WorkflowError(
                f"{path.name} is recorded as applied in {env}: under a new version it would run again there",
                hint=(
                    "leave it as it is; to change the schema further, add a new migration (inv migrate.diff or inv "
                    "migrate.new)"
                ),
            )
    (moved,), _ = ensure_increasing(config, others, [path])
    rehash(config)
    return moved.name


def main_ref_holding(config: Config, name: str) -> str | None:
    """The main branch (origin/main, else main) when it holds migrations/`name`; None when it
    does not, or when there is no git or no such branch."""
    for ref in ("origin/main", "main"):
        try:
            proc = subprocess.run(
                ["git", "ls-tree", "--name-only", ref, "migrations/"],
                cwd=config.root,
                capture_output=True,
                text=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode == 0:
            return ref if name in {Path(line).name for line in proc.stdout.splitlines()} else None
    return None


def recorded_versions_by_env(config: Config, log: Log) -> list[tuple[str, set[str]]]:
    """The versions each reachable environment records in Atlas's revision table (read
    directly, so that a changed atlas.sum does not hide them). Unset environments are skipped;
    unreachable ones too, with a note."""
    out = []
    for env in config.env_names:
        if env == GUIDE_ENV or not config.get(env_var_for(env)).strip():
            continue
        try:
            url = config.url_for(env)
        except WorkflowError as exc:
            log(f"note: {env} not checked: {exc}")
            continue
        try:
            with connect(url, timeout=5) as conn:
                if scalar(conn, "SELECT to_regclass('atlas_schema_revisions.atlas_schema_revisions')") is None:
                    versions = set()
                else:
                    versions = {
                        row[0]
                        for row in conn.execute("SELECT version FROM atlas_schema_revisions.atlas_schema_revisions")
                    }
        except Exception as exc:
            log(f"note: {env} not checked: {connection_error(exc, f'the {env} database')}")
            continue
        out.append((env, versions))
    return out
