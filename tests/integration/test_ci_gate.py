"""The CI gate in the checkouts CI systems make, on real git repositories, PostgreSQL and Atlas.

A feature branch adds a file versioned below main's newest (it would never run where main is
deployed) and a destructive pair (a column added, then dropped: the models end as they began,
so only the history shows it). `inv migrate.check` must fail on those in every checkout, or say
in one line why it cannot look; it never says "in sync" with exit 0 because a base was missing.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import Project, atlas_binary, free_port, make_project, require

pytestmark = pytest.mark.integration

BELOW = "29990101000002_add_note.sql"
MAIN_NEWEST = "29990101000003"
FILES = {
    "main": {f"{MAIN_NEWEST}_main_noop.sql": "SELECT 1;\n"},
    "feature": {
        BELOW: 'ALTER TABLE "public"."customers" ADD COLUMN "note" text NULL;\n',
        "29990101000004_drop_note.sql": 'ALTER TABLE "public"."customers" DROP COLUMN "note";\n',
    },
}


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "protocol.file.allow=always",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def build_history(p: Project, default: str) -> None:
    """`default` with the project and one newer file; `feature` from it with the bad files."""
    git(p.root, "init", "-q", "-b", default)
    git(p.root, "add", "-A")
    git(p.root, "commit", "-qm", "start")
    for branch in ("main", "feature"):
        if branch == "feature":
            git(p.root, "checkout", "-q", "-b", "feature")
        for name, text in FILES[branch].items():
            p.write(f"migrations/{name}", text)
        assert p.inv("migrate.hash").returncode == 0
        git(p.root, "add", "-A")
        git(p.root, "commit", "-qm", f"{branch} files")


def reachable_by_postgres(path: Path) -> None:
    """The clusters run as `postgres` when tests run as root: it must reach the checkout."""
    for parent in [path, *path.parents]:
        if parent == Path(tempfile.gettempdir()):
            break
        parent.chmod(parent.stat().st_mode | 0o111)


def with_env(root: Path, like: Project) -> Project:
    """A Project for a checkout made by git (no .env: it is ignored), on ports of its own."""
    env = dict(
        like.env,
        DB_PORT=str(free_port()),
        DEV_DB_PORT=str(free_port()),
        COMPOSE_PROJECT_NAME="gate" + secrets.token_hex(4),
    )
    password = env["POSTGRES_PASSWORD"]
    env["DATABASE_URL"] = f"postgres://app:{password}@127.0.0.1:{env['DB_PORT']}/app?sslmode=disable"
    env["DEV_DATABASE_URL"] = f"postgres://app:{password}@127.0.0.1:{env['DEV_DB_PORT']}/dev?sslmode=disable"
    (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    reachable_by_postgres(root)
    return Project(root=root, env=env)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """The "server" repository: main checked out (its HEAD is main), feature beside it."""
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    require(shutil.which("git") is not None, "git is not installed")
    p = make_project(tmp_path_factory.mktemp("origin"), "local")
    build_history(p, "main")
    git(p.root, "checkout", "-q", "main")
    return p


@pytest.fixture
def checkouts(tmp_path):
    made = []

    def clone(origin: Project, name: str, *args: str) -> Project:
        dest = tmp_path / name
        git(tmp_path, "clone", "-q", *args, f"file://{origin.root}", str(dest))
        made.append(with_env(dest, origin))
        return made[-1]

    clone.made = made
    yield clone
    for p in made:
        p.inv("db.down", "--volumes", timeout=120)


def check(p: Project, *args: str):
    proc = p.inv("migrate.check", *args)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def assert_fails_on_the_real_problems(proc, base: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "in sync" not in proc.stdout
    assert f"base: {base} (tip " in proc.stderr, proc.stderr
    assert (
        f"error: migrations/{BELOW} is below the newest migration of {base} ({MAIN_NEWEST}): "
        f"where that is applied it would never run: inv migrate.renumber --file {BELOW}"
    ) in proc.stdout, out
    lint = [ln for ln in proc.stdout.splitlines() if ln.startswith("error: lint: ")]
    assert lint and any("29990101000004_drop_note.sql" in ln and "destructive" in ln for ln in lint), out


def one_error_line(proc) -> str:
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith(("error:", "out of sync:"))]
    assert len(errors) == 1, proc.stdout + proc.stderr
    assert proc.returncode == 1
    return errors[0]


def test_full_clone_detached_head_and_an_unknown_base(origin, checkouts):
    p = checkouts(origin, "full", "--branch", "feature")
    assert_fails_on_the_real_problems(check(p), "origin/HEAD -> origin/main")
    git(p.root, "checkout", "-q", "--detach", "HEAD")  # what CI systems check out
    assert_fails_on_the_real_problems(check(p), "origin/HEAD -> origin/main")
    assert_fails_on_the_real_problems(check(p, "--base", "origin/main"), "origin/main")
    line = one_error_line(check(p, "--base", "no-such-branch"))
    assert line.startswith("error: --base no-such-branch: no such branch, tag or commit in this repository"), line


def test_shallow_clone_deepens_from_its_origin(origin, checkouts):
    p = checkouts(origin, "shallow", "--depth", "1", "--branch", "feature")
    assert git(p.root, "rev-parse", "--is-shallow-repository").strip() == "true"
    proc = check(p)
    assert "origin/main is not in this checkout: fetching it from origin" in proc.stderr, proc.stderr
    assert (
        "shallow clone: the merge base of HEAD and origin/main is not in it; fetching more history from origin (git "
        "fetch --deepen=50)" in proc.stderr
    )
    assert_fails_on_the_real_problems(proc, "origin/main")


def test_shallow_clone_without_a_reachable_origin_names_the_fix(origin, checkouts, tmp_path):
    p = checkouts(origin, "shallow", "--depth", "1", "--branch", "feature")
    git(p.root, "remote", "set-url", "origin", f"file://{tmp_path}/gone")
    line = one_error_line(check(p))
    assert "fetch-depth: 0 in the CI checkout" in line and "--base REF" in line, line
    # main fetched, but not deep enough: the same line, for the merge base
    p2 = checkouts(origin, "shallow2", "--depth", "1", "--no-single-branch")
    git(p2.root, "checkout", "-q", "feature")
    git(p2.root, "remote", "set-url", "origin", f"file://{tmp_path}/gone")
    line = one_error_line(check(p2))
    assert line.startswith(
        "error: this shallow clone does not reach the merge base of HEAD and origin/HEAD -> origin/main, "
        "and fetching more history from origin failed"
    ), line
    assert "fetch-depth: 0 in the CI checkout" in line


def test_a_repository_whose_default_branch_is_master(tmp_path):
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    p = make_project(tmp_path, "local")
    build_history(p, "master")
    try:
        assert_fails_on_the_real_problems(check(p), "master")
    finally:
        p.inv("db.down", "--volumes", timeout=120)


def test_a_copy_that_is_not_a_git_repository(origin, tmp_path):
    """`git archive` of the branch: no history. Exit 1 naming --no-base; with it, the rest runs
    and the skipped checks are listed; the catalog verification still catches an uncorrected file."""
    dest = tmp_path / "archive"
    dest.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "feature"], cwd=origin.root, capture_output=True, timeout=60
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    p = with_env(dest, origin)
    try:
        line = one_error_line(check(p))
        assert line == (
            "error: this copy of the project is not a git repository, so the files this branch adds cannot be found: "
            "run it in a git "
            "checkout, or pass --no-base to check without history (lint of new files and the order check are then "
            "not run)"
        ), line
        ok = check(p, "--no-base")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "not run (--no-base, no git history): lint of the migration files this branch adds" in ok.stdout
        assert "not run (--no-base, no git history): the order check" in ok.stdout
        assert ok.stdout.rstrip().endswith("(2 check(s) not run, listed above)"), ok.stdout

        # An uncorrected file (Atlas's output without the corrections) passes Atlas's own checks
        initial = next((p.root / "migrations").glob("*_initial.sql"))
        text = initial.read_text()
        initial.write_text(text[: text.index("-- Corrections:")])
        assert p.inv("migrate.hash").returncode == 0
        bad = check(p, "--no-base")
        assert bad.returncode == 2, bad.stdout + bad.stderr
        assert "in sync" not in bad.stdout
        assert "out of sync: migrations/ builds a different database than schema.sql (" in bad.stdout, bad.stdout
    finally:
        p.inv("db.down", "--volumes", timeout=120)


# --- a setup for rows of the bad-input table (tests/integration/test_bad_input.py) -----------


def as_git_repository(branch: str):
    """Make the project a git repository on `branch` (no remote); undone by removing .git."""

    def setup(p):
        git(p.root, "init", "-q", "-b", branch)
        git(p.root, "add", "-A")
        git(p.root, "commit", "-qm", "start")
        return lambda: shutil.rmtree(p.root / ".git")

    return setup
