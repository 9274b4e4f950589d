"""git, for the CI gate: which commit this checkout is compared with, resolved once.

`migrate.check` lints the migration files this branch adds and refuses files versioned below
the base branch's newest. Both need the base: `--base REF`, else the first of CANDIDATES that
exists. The base is resolved once to two commits: its tip (whose newest migration the order
check compares with) and the merge base with HEAD (files added since are "new" for lint).

CI systems check out shallow, single-branch, detached clones: a missing base branch is fetched
from the remote, a merge base beyond the shallow boundary is fetched with `git fetch --deepen`
(bounded, each step printed); when that cannot be done the error names the fix. Nothing here
ever skips a check in silence: the caller decides, on `--no-base`, what not to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tools.console import Log
from tools.errors import WorkflowError

CANDIDATES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")
DEEPEN_STEPS = ("--deepen=50", "--deepen=500", "--unshallow")
LOCAL_TIMEOUT = 30  # seconds for a local git command
FETCH_TIMEOUT = 300  # seconds for one fetch from the remote

SHALLOW_FIX = (
    "check out the full history (fetch-depth: 0 in the CI checkout), or pass --base REF naming a commit this clone has"
)
NO_HISTORY_FIX = (
    "run it in a git checkout, or pass --no-base to check without history "
    "(lint of new files and the order check are then not run)"
)


@dataclass(frozen=True)
class Base:
    ref: str  # as the user or CANDIDATES named it (origin/HEAD shows what it points at)
    tip: str  # the commit the ref points at: the order check compares with its newest migration
    merge_base: str  # where HEAD left it: files added since are new (lint)

    def describe(self) -> str:
        return f"{self.ref} (tip {self.tip[:10]}, merge base {self.merge_base[:10]})"


def _run(root: Path, *args: str, timeout: float = LOCAL_TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        return subprocess.run(
            ["git", *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise WorkflowError(f"git {args[0]} did not finish within {timeout:.0f}s", hint=SHALLOW_FIX) from None


def _first_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    return (lines or [f"exit status {proc.returncode}"])[0].removeprefix("fatal: ")


def require_repository(root: Path) -> None:
    """git on PATH and `root` inside a work tree it can read, else one line naming the fix."""
    if not shutil.which("git"):
        raise WorkflowError(
            "git is not installed (not on PATH), so the files this branch adds cannot be found",
            hint=(
                "install git, or pass --no-base to check without history (lint of new files and the order check are "
                "then not run)"
            ),
        )
    proc = _run(root, "rev-parse", "--is-inside-work-tree")
    if proc.returncode == 0 and proc.stdout.strip() == "true":
        return
    if "not a git repository" in proc.stderr:
        raise WorkflowError(
            "this copy of the project is not a git repository, so the files this branch adds cannot be found",
            hint=NO_HISTORY_FIX,
        )
    raise WorkflowError(f"git cannot read this repository: {_first_line(proc)}", hint=NO_HISTORY_FIX)


def commit_of(root: Path, ref: str) -> str | None:
    """The commit `ref` names in this repository, or None."""
    if not ref or ref.startswith("-"):
        return None
    proc = _run(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def require_commit(root: Path, ref: str) -> str:
    commit = commit_of(root, ref)
    if not commit:
        raise WorkflowError(
            f"--base {ref}: no such branch, tag or commit in this repository",
            hint="name one that exists (git branch -a), or fetch it first (git fetch origin <branch>)",
        )
    return commit


def first_candidate(root: Path) -> tuple[str, str] | None:
    """(name, commit) of the first of CANDIDATES this repository has, without fetching."""
    for ref in CANDIDATES:
        commit = commit_of(root, ref)
        if commit:
            if ref.endswith("/HEAD"):
                named = _run(root, "rev-parse", "--abbrev-ref", ref).stdout.strip()
                ref = f"{ref} -> {named}" if named and named != ref else ref
            return ref, commit
    return None


def is_shallow(root: Path) -> bool:
    return _run(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"


def _remotes(root: Path) -> list[str]:
    return _run(root, "remote").stdout.split()


def _remote_for(root: Path, ref: str = "") -> str | None:
    remotes = _remotes(root)
    head = ref.split("/", 1)[0] if "/" in ref else ""
    if head in remotes:
        return head
    return "origin" if "origin" in remotes else (remotes[0] if remotes else None)


def merge_base(root: Path, tip: str) -> str | None:
    proc = _run(root, "merge-base", "HEAD", tip)
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def _fetch_branch(root: Path, remote: str, branch: str, log: Log) -> str:
    """Fetch `branch` of `remote` into refs/remotes/<remote>/<branch>; its name, or None."""
    log(f"{remote}/{branch} is not in this checkout: fetching it from {remote}")
    args = ["fetch", "--no-tags", "--quiet"] + (["--depth=1"] if is_shallow(root) else [])
    proc = _run(root, *args, remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}", timeout=FETCH_TIMEOUT)
    if proc.returncode != 0:
        raise WorkflowError(
            f"{remote}/{branch} is not in this checkout and fetching it from {remote} failed ({_first_line(proc)})",
            hint=SHALLOW_FIX,
        )
    return f"{remote}/{branch}"


def _remote_default_branch(root: Path, remote: str) -> str:
    proc = _run(root, "ls-remote", "--symref", remote, "HEAD", timeout=FETCH_TIMEOUT)
    if proc.returncode != 0:
        raise WorkflowError(
            f"no base branch in this checkout ({', '.join(CANDIDATES)}) and {remote} cannot be asked for its "
            f"default branch ({_first_line(proc)})",
            hint=SHALLOW_FIX,
        )
    for line in proc.stdout.splitlines():
        if line.startswith("ref: refs/heads/") and line.rstrip().endswith("HEAD"):
            return line.split()[1].removeprefix("refs/heads/")
    raise WorkflowError(
        f"no base branch in this checkout ({', '.join(CANDIDATES)}) and {remote} names no default branch",
        hint="pass --base REF (the branch this one merges into)",
    )


def _deepen(root: Path, ref: str, tip: str, log: Log) -> str | None:
    """Fetch more history until the merge base of HEAD and `tip` is in the clone (bounded)."""
    remote = _remote_for(root, ref)
    if not remote:
        raise WorkflowError(
            f"this shallow clone does not reach the merge base of HEAD and {ref}, and it has no remote to fetch more "
            "from",
            hint=SHALLOW_FIX,
        )
    for step in DEEPEN_STEPS:
        log(
            f"shallow clone: the merge base of HEAD and {ref} is not in it; fetching more history from {remote} (git "
            f"fetch {step})"
        )
        proc = _run(root, "fetch", "--no-tags", "--quiet", step, remote, timeout=FETCH_TIMEOUT)
        if proc.returncode != 0:
            raise WorkflowError(
                f"this shallow clone does not reach the merge base of HEAD and {ref}, and fetching more history "
                f"from {remote} failed ({_first_line(proc)})",
                hint=SHALLOW_FIX,
            )
        found = merge_base(root, tip)
        if found or not is_shallow(root):
            return found
    return None


def resolve(root: Path, ref: str | None, log: Log) -> Base:
    """The base of this checkout: `ref` (--base), else the first of CANDIDATES; fetched or
    deepened from the remote when a CI checkout lacks it. Raises WorkflowError, one line."""
    require_repository(root)
    if ref is not None and not ref.strip():
        raise WorkflowError("--base is empty", hint="name a branch, tag or commit, e.g. --base origin/main")
    if ref:
        ref = ref.strip()
        tip = commit_of(root, ref)
        remote = _remote_for(root, ref)
        if not tip and remote and ref.startswith(f"{remote}/") and ref != f"{remote}/HEAD":
            tip = commit_of(root, _fetch_branch(root, remote, ref.removeprefix(f"{remote}/"), log))
        tip = tip or require_commit(root, ref)
    else:
        found = first_candidate(root)
        if not found:
            remote = _remote_for(root)
            if not remote:
                raise WorkflowError(
                    f"no base branch to compare with: none of {', '.join(CANDIDATES)} exists in this repository",
                    hint="pass --base REF (the branch this one merges into), or --no-base to check without history",
                )
            fetched = _fetch_branch(root, remote, _remote_default_branch(root, remote), log)
            found = (fetched, require_commit(root, fetched))
        ref, tip = found
    common = merge_base(root, tip)
    if not common and is_shallow(root):
        common = _deepen(root, ref, tip, log)
    if not common:
        raise WorkflowError(
            f"HEAD and {ref} have no commit in common", hint="pass --base REF naming the branch this one merges into"
        )
    return Base(ref=ref, tip=tip, merge_base=common)


def files_at(root: Path, commit: str, directory: str = "migrations") -> list[str]:
    """The names of the files in `directory` at `commit`."""
    proc = _run(root, "ls-tree", "--name-only", commit, "--", f"{directory}/")
    if proc.returncode != 0:
        raise WorkflowError(f"git cannot list {directory}/ at {commit[:10]}: {_first_line(proc)}", hint=SHALLOW_FIX)
    return [Path(line).name for line in proc.stdout.splitlines() if line.strip()]
