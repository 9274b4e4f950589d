"""The migrations directory: its files, their versions and names, atlas.sum, new files.

Atlas's `--dir` is migrations/ (atlas.hcl) unless a staged copy is named (tools/staging.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from tools.atlas import atlas_for
from tools.config import GUIDE_ENV, Config
from tools.errors import WorkflowError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
FILE_RE = re.compile(r"^(?P<version>\d+)(?:_(?P<name>.*))?\.sql$")


CHECKS = "checks"  # migrations/checks/<version>.sql: the pre-conditions of a file (tools/preconditions.py)


def migrations_dir(config: Config) -> Path:
    return config.root / "migrations"


def checks_dir(config: Config) -> Path:
    """migrations/checks/: a subdirectory, because Atlas reads every top-level `*.sql` of
    migrations/ as a migration (and hashes it into atlas.sum), never a subdirectory."""
    return migrations_dir(config) / CHECKS


def migration_files(config: Config, directory: Path | None = None) -> list[Path]:
    """The migration files of migrations/ (or of `directory`, a staged copy of it)."""
    directory = directory or migrations_dir(config)
    regular_files_only(config)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if FILE_RE.match(p.name))


def regular_files_only(config: Config) -> None:
    """migrations/ holds regular files only: git stores a symbolic link as the link, so the SQL
    it points to (outside the repository, perhaps) was never reviewed; Atlas would follow it.
    The one subdirectory allowed, migrations/checks/ (pre-conditions), holds regular files only too."""
    import os

    directory = migrations_dir(config)
    if directory.is_symlink() or (directory.exists() and directory.resolve() != config.root.resolve() / "migrations"):
        raise WorkflowError(
            f"migrations/ is a symbolic link (to {os.path.realpath(directory)}), not a directory of this repository",
            hint="make migrations/ a real directory holding the files themselves",
        )
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path.is_symlink():
            raise WorkflowError(
                f"migrations/{path.name} is a symbolic link (to {os.readlink(path)}): git stores only the link, "
                f"so the SQL it points to was never reviewed",
                hint="replace the link with a copy of the file (and review it), or remove it; nothing was done",
            )
        if (FILE_RE.match(path.name) or path.name == "atlas.sum") and not path.is_file():
            raise WorkflowError(
                f"migrations/{path.name} is not a regular file",
                hint="migrations/ holds regular files only: remove or replace it",
            )
    checks = checks_dir(config)
    if not checks.is_dir():
        return
    for path in sorted(checks.iterdir()):
        if path.is_symlink():
            raise WorkflowError(
                f"migrations/{CHECKS}/{path.name} is a symbolic link (to {os.readlink(path)}): git stores only the "
                "link, so the SQL it points to was never reviewed",
                hint="replace the link with a copy of the file (and review it), or remove it; nothing was done",
            )
        if not path.is_file():
            raise WorkflowError(
                f"migrations/{CHECKS}/{path.name} is not a regular file",
                hint=f"migrations/{CHECKS}/ holds regular files only: remove or replace it",
            )


def check_versions(config: Config) -> None:
    """Atlas accepts two files with one version, then never applies the second: refuse that."""
    seen: dict[str, str] = {}
    for path in migration_files(config):
        version = version_of(path)
        if version in seen:
            raise WorkflowError(
                f"migrations {seen[version]} and {path.name} share version {version}, so Atlas would never apply one "
                "of them",
                hint="rename one with a version above the newest file, then run inv migrate.hash",
            )
        seen[version] = path.name


def _file_match(name: str) -> re.Match[str]:
    match = FILE_RE.match(name)
    if match is None:
        raise WorkflowError(
            f"migrations/{name} is not named <version>_<name>.sql", hint="rename it, then run inv migrate.hash"
        )
    return match


def version_of(path: Path) -> str:
    return _file_match(path.name).group("version")


def statements_of(text: str) -> list[str]:
    """The SQL statements of a migration file, for display (comments dropped)."""
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("--"))
    try:
        import pglast

        return [s.strip() for s in pglast.split(body) if s.strip()]
    except Exception:  # not parseable: show it as it is
        return [body.strip()] if body.strip() else []


def validate_name(config: Config, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise WorkflowError("a migration name is required", hint="pass --name, e.g. --name add_user_preferences")
    if not NAME_RE.match(name):
        raise WorkflowError(
            f"invalid migration name {name!r}",
            hint=(
                "use lower-case letters, digits and underscores (max 60), starting with a letter, e.g. "
                "add_user_preferences"
            ),
        )
    for path in migration_files(config):
        if _file_match(path.name).group("name") == name:
            raise WorkflowError(f"a migration named {name!r} exists already ({path.name})", hint="choose another name")
    return name


def dir_args(directory: Path | None) -> list[str]:
    """Atlas's --dir for a staged copy of migrations/ (none: atlas.hcl's migrations/)."""
    return ["--dir", f"file://{directory}"] if directory else []


def new_file(config: Config, name: str, directory: Path | None = None) -> Path:
    """An empty migration file with a version above every existing one."""
    before = {p.name for p in migration_files(config, directory)}
    atlas_for(config).run("migrate", "new", name, "--env", GUIDE_ENV, *dir_args(directory))
    created = [p for p in migration_files(config, directory) if p.name not in before]
    files, _ = ensure_increasing(config, before, created)
    return files[0]


def ensure_increasing(config: Config, before: set[str], new: list[Path]) -> tuple[list[Path], list[str]]:
    """Give each new file a version above every existing one (clock skew, two diffs a second)."""
    newest = max((int(_file_match(n).group("version")) for n in before), default=0)
    out, renamed = [], []
    for path in sorted(new):
        version = int(version_of(path))
        if version <= newest:
            rest = _file_match(path.name).group("name")
            version = newest + 1
            target = path.with_name(f"{version}_{rest}.sql" if rest else f"{version}.sql")
            path.rename(target)
            renamed.append(f"{path.name} -> {target.name}")
            path = target
        newest = version
        out.append(path)
    return out, renamed


def rehash(config: Config, directory: Path | None = None) -> None:
    regular_files_only(config)
    atlas_for(config).run("migrate", "hash", "--env", GUIDE_ENV, *dir_args(directory))


def new(config: Config, name: str) -> Path:
    path = new_file(config, validate_name(config, name))
    rehash(config)
    return path
