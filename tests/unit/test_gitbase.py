"""The CI gate's base, on real (tiny, local) git repositories: order, commits, one-line errors."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tools import gitbase
from tools.errors import WorkflowError

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root, *args):
    proc = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def server(tmp_path):
    """main (3 commits) and master beside it; feature (2 commits) from main's first."""
    root = tmp_path / "server"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for i in range(3):
        git(root, "commit", "-q", "--allow-empty", "-m", f"main {i}")
    git(root, "branch", "master")
    git(root, "checkout", "-q", "-b", "feature", "HEAD~2")
    for i in range(2):
        git(root, "commit", "-q", "--allow-empty", "-m", f"feature {i}")
    git(root, "checkout", "-q", "main")
    return root


def clone(server, dest, *args):
    git(dest.parent, "clone", "-q", *args, f"file://{server}", str(dest))
    return dest


def test_resolution_order_and_one_commit_for_both_checks(server, tmp_path):
    root = clone(server, tmp_path / "c", "--branch", "feature")
    git(root, "branch", "main", "origin/main")
    git(root, "branch", "master", "origin/master")
    main_tip, fork = git(root, "rev-parse", "origin/main"), git(root, "rev-parse", "origin/main~2")
    seen = []
    for ref in (
        "refs/remotes/origin/HEAD",
        "refs/remotes/origin/main",
        "refs/remotes/origin/master",
        "refs/heads/main",
        None,
    ):
        base = gitbase.resolve(root, None, log=lambda m: None)
        seen.append(base.ref)
        assert base.merge_base == fork  # where feature left main, whichever names it
        assert base.tip == main_tip  # master and main point at the same commit here
        if ref:
            git(root, "update-ref", "--no-deref", "-d", ref)
    assert seen == ["origin/HEAD -> origin/main", "origin/main", "origin/master", "main", "master"]


def test_detached_head_and_an_explicit_base(server, tmp_path):
    root = clone(server, tmp_path / "c", "--branch", "feature")
    git(root, "checkout", "-q", "--detach", "HEAD")
    base = gitbase.resolve(root, "origin/main", log=lambda m: None)
    assert base.ref == "origin/main" and base.merge_base == git(root, "rev-parse", "origin/main~2")
    with pytest.raises(WorkflowError) as err:
        gitbase.resolve(root, "no-such-ref", log=lambda m: None)
    assert str(err.value).startswith("--base no-such-ref: no such branch, tag or commit in this repository")


def test_shallow_clone_fetches_the_base_and_deepens(server, tmp_path):
    root = clone(server, tmp_path / "c", "--depth", "1", "--branch", "feature")
    lines = []
    base = gitbase.resolve(root, None, log=lines.append)
    assert base.ref == "origin/main" and base.merge_base == git(server, "rev-parse", "main~2")
    assert lines[0] == "origin/main is not in this checkout: fetching it from origin"
    assert lines[1].startswith(
        "shallow clone: the merge base of HEAD and origin/main is not in it; fetching more history from origin"
    )


def test_shallow_clone_without_its_remote_names_the_fix(server, tmp_path):
    root = clone(server, tmp_path / "c", "--depth", "1", "--no-single-branch")
    git(root, "checkout", "-q", "feature")
    git(root, "remote", "set-url", "origin", f"file://{tmp_path}/gone")
    with pytest.raises(WorkflowError) as err:
        gitbase.resolve(root, None, log=lambda m: None)
    assert "fetching more history from origin failed" in str(err.value)
    assert str(err.value).endswith(
        "fetch-depth: 0 in the CI checkout), or pass --base REF naming a commit this clone has"
    )
    git(root, "remote", "remove", "origin")
    with pytest.raises(WorkflowError) as err:
        gitbase.resolve(root, "main", log=lambda m: None)
    assert "has no remote to fetch more from" in str(err.value)


def test_outside_git_and_without_git(tmp_path, monkeypatch):
    with pytest.raises(WorkflowError) as err:
        gitbase.resolve(tmp_path, None, log=lambda m: None)
    assert "not a git repository" in str(err.value) and "--no-base" in str(err.value)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WorkflowError) as err:
        gitbase.resolve(tmp_path, None, log=lambda m: None)
    assert str(err.value).startswith("git is not installed (not on PATH)") and "--no-base" in str(err.value)


def test_unrelated_histories(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "commit", "-q", "--allow-empty", "-m", "a")
    git(root, "checkout", "-q", "--orphan", "other")
    git(root, "commit", "-q", "--allow-empty", "-m", "b")
    with pytest.raises(WorkflowError) as err:
        gitbase.resolve(root, None, log=lambda m: None)
    assert str(err.value).startswith("HEAD and main have no commit in common")
