"""Fidelity suite: each model change goes diff -> apply -> verify -> a second diff is a no-op.

Real PostgreSQL 15 (local clusters) and the real Atlas, through `inv`, in a temporary copy of
the project. "round-trip" scenarios must leave the database exactly equal to the models (by
catalogs); "refused" ones must stop with a line naming the object and write no file.
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import atlas_binary, make_project, require
from tests.fidelity.scenarios import HEADER, SCENARIOS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    p = make_project(tmp_path_factory.mktemp("fidelity"), "local")
    assert p.inv("db.up").returncode == 0
    yield p
    p.inv("db.down", "--volumes")


def reset(p) -> None:
    from tools import ownership
    from tools.config import Config

    shutil.rmtree(p.root / "migrations")
    (p.root / "migrations").mkdir()
    ownership.recreate(
        Config.load(p.root, environ=p.env), p.env["DATABASE_URL"], "DATABASE_URL", kind="local", confirmed=True
    )


def use_models(p, body: str) -> None:
    (p.root / "app/models/__init__.py").write_text(HEADER + body)


def migrations(p) -> list[str]:
    return sorted(x.name for x in (p.root / "migrations").glob("*.sql"))


def ok(proc, what):
    assert proc.returncode == 0, f"{what} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(project, scenario):
    p = project
    reset(p)
    use_models(p, scenario.before)
    ok(p.inv("migrate.diff", "--name", "before"), "diff (before)")
    ok(p.inv("migrate.apply"), "apply (before)")
    ok(p.inv("migrate.verify"), "verify (before)")

    use_models(p, scenario.after)
    files = migrations(p)
    diff = p.inv("migrate.diff", "--name", "change")
    if scenario.expect == "refused":
        assert diff.returncode == 1, diff.stdout
        assert "no file was written" in diff.stderr and "inv migrate.new" in diff.stderr
        assert migrations(p) == files
        again = p.inv("migrate.diff", "--name", "change")  # a refusal leaves no dirty dev database behind
        assert again.returncode == 1 and "no file was written" in again.stderr
        return
    ok(diff, "diff (after)")
    assert scenario.diff_says in diff.stdout, diff.stdout
    new = sorted(set(migrations(p)) - set(files))
    assert len(new) == 1, diff.stdout
    ok(p.inv("migrate.apply", "--allow-destructive"), "apply (after)")
    ok(p.inv("migrate.verify"), "verify (after)")
    ok(p.inv("migrate.drift"), "drift (after)")
    again = ok(p.inv("migrate.diff", "--name", "again"), "second diff")
    assert "no changes" in again.stdout, again.stdout
    assert migrations(p) == sorted(files + new)
