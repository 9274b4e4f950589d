"""A private copy of migrations/ where a new migration is written, corrected and verified,
then published into migrations/ by renames: until then migrations/ and atlas.sum do not change.

The copy lives in the project directory (`.migrate-diff-<pid>-<random>/`, git-ignored), on the
same filesystem as migrations/, so that publishing is a rename per file: the new files first,
atlas.sum last. The renames run shielded from SIGINT/SIGTERM/SIGHUP (tools/signals.py); only a
SIGKILL between them can leave a new file with the old atlas.sum, which `atlas migrate validate`
(and so `inv migrate.check`) rejects. A copy left by a killed run is removed by the next one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools import signals, timings
from tools.errors import WorkflowError

PREFIX = ".migrate-diff-"
SUM = "atlas.sum"


@dataclass
class Staged:
    target: Path  # migrations/
    directory: Path  # the private copy
    snapshot: dict[str, bytes]  # migrations/ when copied: name -> content

    @property
    def url(self) -> str:
        """The copy as Atlas's --dir."""
        return f"file://{self.directory}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(root: Path) -> list[str]:
    """Remove the copies of runs that no longer exist (killed with SIGKILL, power loss)."""
    removed = []
    for path in root.glob(PREFIX + "*"):
        pid = path.name.removeprefix(PREFIX).split("-")[0]
        if path.is_dir() and pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _read(directory: Path) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@contextlib.contextmanager
def staged(root: Path, target: Path) -> Iterator[Staged]:
    """A copy of `target` (migrations/) in the project directory; removed on the way out."""
    work = root / f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    try:
        with timings.step("migrations/ staged"):
            clean_leftovers(root)
            work.mkdir()
            directory = work / target.name
            snapshot = _read(target)
            directory.mkdir()
            for name, content in snapshot.items():
                (directory / name).write_bytes(content)
        yield Staged(target=target, directory=directory, snapshot=snapshot)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def publish(staged: Staged, new: list[Path], also: tuple[tuple[Path, str], ...] = ()) -> list[Path]:
    """Move the new files, then atlas.sum, from the copy into migrations/ (renames, shielded).

    `also`: (path, text) pairs written (atomically) just before, e.g. schema.sql.
    Refuses when migrations/ changed since it was copied. Returns the files' new paths.
    """
    if _read(staged.target) != staged.snapshot:
        raise WorkflowError(
            "migrations/ changed while the diff ran (no file was written)", hint="run inv migrate.diff again"
        )
    staged.target.mkdir(exist_ok=True)
    tmps = []
    for path, text in also:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmps.append((tmp, path))
    published = []
    try:
        with signals.shielded():
            for tmp, path in tmps:
                os.replace(tmp, path)
            for path in new:
                published.append(staged.target / path.name)
                os.replace(path, published[-1])
            if new:
                os.replace(staged.directory / SUM, staged.target / SUM)
    except KeyboardInterrupt as exc:  # a signal that waited for the renames: they are done
        written = ", ".join(f"migrations/{p.name}" for p in published) or "nothing in migrations/"
        # the task edge prints it (signals.line); a plain KeyboardInterrupt carries it too
        exc.note = f"the diff was complete and is written ({written})"  # type: ignore[attr-defined]
        raise
    return published
