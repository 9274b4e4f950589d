"""Where a task's `--output` may write (`schema.erd`, `migrate.report`), and the write itself.

A task writes only a file that is its own: not inside migrations/ or .git/ (symlinks resolved),
not a file the workflow owns (schema.sql, the committed diagrams, README.md, atlas.hcl, .env),
not a directory or a name without a stem, in a folder that exists, and not an existing file some
other hand wrote, unless `--force`. Its own files carry a marker line (an HTML/XML comment) first,
after the XML declaration in an SVG, so it may overwrite them. Writes are atomic: a temporary file
in the same folder, then a rename.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tools.errors import WorkflowError

# Files the workflow writes or reads as its own (relative to the checkout), and folders in full.
OWNED_FILES = ("schema.sql", "docs/schema.md", "docs/schema.svg", "README.md", "atlas.hcl", ".env")
OWNED_DIRS = ("migrations", ".git")
HEAD = 4096  # bytes read from an existing file to find the marker
# What the filesystem says about a target: see state_of().
MISSING, OWN, FOREIGN, DIRECTORY, NO_PARENT = "missing", "own", "foreign", "directory", "no-parent"


def marker(task: str) -> str:
    """The first line of a file `inv <task>` wrote (a comment in Markdown and in SVG alike)."""
    return f"<!-- written by inv {task} -->"


def marked(text: str, task: str) -> str:
    """`text` with the marker first (after an XML declaration, which must stay first)."""
    if text.startswith("<?xml"):
        declaration, _, rest = text.partition("\n")
        return f"{declaration}\n{marker(task)}\n{rest}"
    return f"{marker(task)}\n{text}"


def is_own(head: str, task: str) -> bool:
    """Whether a file starting with `head` carries the marker of `task` where marked() puts it."""
    lines = head.splitlines()
    if lines and lines[0].startswith("<?xml"):
        lines = lines[1:]
    return bool(lines) and lines[0].strip() == marker(task)


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def refusal(
    root: Path, raw: str, lexical: Path, resolved: Path, state: str, task: str, force: bool = False
) -> WorkflowError | None:
    """Why `--output` may not write the file `raw` names (None: it may). Pure: `lexical` is the
    path normalised without the filesystem, `resolved` with symlinks followed, `state` one of
    MISSING, OWN, FOREIGN, DIRECTORY, NO_PARENT; `root` the checkout (resolved); `task` the writer."""
    for path in (lexical, resolved):
        rel = _relative(path, root)
        if rel is None:
            continue
        top = rel.split("/", 1)[0]
        if top in OWNED_DIRS:
            return WorkflowError(
                f"--output {raw} is inside {top}/, which only the workflow writes",
                hint="write it elsewhere, e.g. report.md",
            )
        if rel in OWNED_FILES:
            return WorkflowError(
                f"--output {raw} would overwrite {rel}, a file the workflow owns", hint="choose another name"
            )
    name = raw.replace(os.sep, "/").rsplit("/", 1)[-1]
    if raw.endswith(("/", os.sep)) or state == DIRECTORY:
        return WorkflowError(f"--output {raw} is a directory", hint="name a file in it, e.g. docs/orders.md")
    if name in (".", "..") or not (name.rpartition(".")[0] if "." in name else name):
        return WorkflowError(f"--output {raw} has no file name", hint="name a file, e.g. docs/orders.md")
    if state == NO_PARENT:
        return WorkflowError(
            f"--output {raw}: the folder {_relative(resolved.parent, root) or resolved.parent} does not exist",
            hint="create it first (mkdir -p) or choose another folder",
        )
    if state == FOREIGN and not force:
        return WorkflowError(
            f"--output {raw} exists and was not written by inv {task}",
            hint="choose another name, or pass --force to overwrite it",
        )
    return None


def state_of(path: Path, task: str) -> str:
    """MISSING, OWN (it carries the marker of `task`), FOREIGN, DIRECTORY or NO_PARENT."""
    if path.is_dir():
        return DIRECTORY
    if not path.parent.is_dir():
        return NO_PARENT
    if not path.exists():
        return MISSING
    try:
        with path.open("rb") as f:
            head = f.read(HEAD).decode("utf-8", errors="replace")
    except OSError:
        return FOREIGN
    return OWN if is_own(head, task) else FOREIGN


def target(root: Path, raw: str, task: str, force: bool = False, shown: str | None = None) -> Path:
    """The path `--output raw` (relative to the checkout `root`) names, once it may be written."""
    root = root.resolve()
    lexical = Path(os.path.normpath(root / raw))
    resolved = (root / raw).resolve()
    problem = refusal(root, raw, lexical, resolved, state_of(resolved, task), task, force)
    if problem:
        if shown is not None and shown != raw:
            problem.message = problem.message.replace(f"--output {raw}", f"--output {shown} ({raw})", 1)
        raise problem
    return resolved


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename, so an
    interrupted write leaves the old file (and no temporary one)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
