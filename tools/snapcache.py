"""What the first N migration files build, remembered: the catalog snapshot of a replay (and
Atlas's lint report of the newest of them), kept in .state/cache/ under a key of everything the
result depends on.

The drift check of every apply, `migrate.verify` and `migrate.diff` each need "the catalogs of
the history replayed into an empty database". On a history of hundreds of files that replay is
most of an everyday apply's time, and its result changes only when its inputs do. The key is a
SHA-256 of:
- the name and the bytes of each of the first N files, in order (any edit, rename or reorder
  changes it);
- the PostgreSQL server that replays them (its full version number: catalogs read differently
  across versions);
- the Atlas binary that runs them (its path, size and modification time), and atlas.hcl (its
  lint rules decide which findings are errors; its environments, how files are applied);
- the code that reads the catalogs (tools/catalog.py) and this file's format;
- what is remembered (a replay's catalogs, or a lint of the newest K files).
A cache entry that cannot be read is a miss; one that cannot be written is skipped. Nothing else
is remembered: the target's own catalogs are read every time, so drift is always seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from tools import catalog
from tools.atlas import find_binary
from tools.config import ATLAS_HCL, Config
from tools.migrations import migration_files

FORMAT = "1"
KEEP = 32  # entries kept (the newest); a few KB to a few MB each


def cache_dir(config: Config) -> Path:
    return config.root / ".state" / "cache" / "replays"


def key(
    config: Config, amount: int, server_version: str, directory: Path | None = None, purpose: str = "replay"
) -> str | None:
    """The key of `purpose` (a replay, or e.g. `lint 1`) over the first `amount` files of
    migrations/ (or of `directory`, a staged copy); None when there are fewer files than that."""
    files = migration_files(config, directory)[:amount]
    if len(files) < amount:
        return None
    digest = hashlib.sha256()
    binary = find_binary(config.child_environ()) or ""
    try:
        stat = os.stat(binary)
        atlas = f"{binary}:{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        atlas = binary
    catalog_code = hashlib.sha256(Path(catalog.__file__).read_bytes()).hexdigest()
    try:
        project = hashlib.sha256((config.root / ATLAS_HCL).read_bytes()).hexdigest()
    except OSError:
        project = ""
    for part in (FORMAT, purpose, server_version, atlas, project, catalog_code, str(amount)):
        digest.update(part.encode() + b"\0")
    for path in files:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def load(config: Config, name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    path = cache_dir(config) / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("snapshot"), dict):
        return None
    with contextlib.suppress(OSError):  # read-only, or removed meanwhile: never made again empty
        os.utime(path)  # the newest-used entries are the ones kept
    return data["snapshot"]


def store(config: Config, name: str | None, snapshot: dict[str, Any]) -> None:
    """Remember `snapshot` under `name` (atomically); only what JSON gives back exactly is kept."""
    if not name:
        return
    text = json.dumps({"format": FORMAT, "snapshot": snapshot}, sort_keys=True)
    if json.loads(text)["snapshot"] != snapshot:
        return  # something that does not survive JSON (a tuple): never compare against a changed copy
    folder = cache_dir(config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text)
        tmp.replace(folder / f"{name}.json")
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
        for left in folder.glob(".*.tmp"):  # a run killed while writing; no write takes an hour
            if time.time() - left.stat().st_mtime > 3600:
                left.unlink(missing_ok=True)
    except OSError:
        return
