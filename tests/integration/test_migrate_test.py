"""`inv migrate.test`: every migration goes up, down (the plan migrate.down computes) and up again
on scratch databases; a file whose down cannot be computed or does not restore the schema is named.

The failing files are real limits of Atlas v0.13.1's diff, not fakes: it cannot drop a value
from an enum (PostgreSQL cannot either), and it does not see views, so its plan leaves one behind.
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import require, running_project
from tests.integration.test_ci_gate import git

pytestmark = pytest.mark.integration

VIEW = "29990101000001_note_view.sql"
ENUM = "29990101000002_order_refunded.sql"


@pytest.fixture
def project(tmp_path):
    with running_project(tmp_path) as p:
        yield p


def own_files(p) -> list[str]:
    return sorted(x.name for x in (p.root / "migrations").glob("*.sql"))


def test_the_projects_migrations_go_down_and_up_again_and_broken_downs_are_named(project):
    p = project
    files = own_files(p)
    proved = p.inv("migrate.test")
    assert proved.returncode == 0, proved.stdout + proved.stderr
    for name in files:
        assert f"ok {name}: up, down, up again: each build's catalog restored" in proved.stdout
    assert f"{len(files)} of {len(files)} migration(s) go down and up again" in proved.stdout
    data = [ln for ln in proved.stdout.splitlines() if ln.startswith("data tests (tests/migrations/): ")]
    assert data and data[0].endswith(" passed") and not data[0].endswith(": 0 passed"), proved.stdout

    p.write(f"migrations/{VIEW}", 'CREATE VIEW "public"."active_customers" AS SELECT id FROM "public"."customers";\n')
    p.write(f"migrations/{ENUM}", 'ALTER TYPE "public"."order_status" ADD VALUE \'refunded\';\n')
    assert p.inv("migrate.hash").returncode == 0
    failed = p.inv("migrate.test")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    lines = failed.stdout.splitlines()
    assert f"ok {files[-1]}: up, down, up again: each build's catalog restored" in lines
    assert (
        f"FAILED {VIEW}: the plan does not return the schema to {files[-1].split('_', 1)[0]} (1 difference(s)): "
        "view public.active_customers: only in the plan's result" in lines
    ), failed.stdout
    assert f'FAILED {ENUM}: Atlas cannot compute the plan: dropping enum ("order_status") value is not supported' in (
        lines
    ), failed.stdout
    assert f"{len(files)} of {len(files) + 2} migration(s) go down and up again" in lines
    errors = [ln for ln in failed.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and f"{VIEW}, {ENUM}" in errors[0], failed.stderr


def test_check_proves_the_files_new_since_the_base(project):
    """A model change whose migration cannot be undone (an enum value): the CI gate names it, and
    it only: the files of the base branch are not proved again."""
    require(shutil.which("git") is not None, "git is not installed")
    p = project
    git(p.root, "init", "-q", "-b", "main")
    git(p.root, "add", "-A")
    git(p.root, "commit", "-qm", "start")
    git(p.root, "checkout", "-q", "-b", "feature")
    models = p.root / "app" / "models" / "orders.py"
    models.write_text(
        models.read_text().replace(
            '    cancelled = "cancelled"\n', '    cancelled = "cancelled"\n    refunded = "refunded"\n'
        )
    )
    made = p.inv("migrate.diff", "--name", "order_refunded")
    assert made.returncode == 0, made.stderr
    new = [name for name in own_files(p) if name.endswith("_order_refunded.sql")]
    assert len(new) == 1, made.stdout
    git(p.root, "add", "-A")
    git(p.root, "commit", "-qm", "refunded orders")

    gate = p.inv("migrate.check", "--base", "main")
    assert gate.returncode == 1, gate.stdout + gate.stderr
    errors = [ln for ln in gate.stdout.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: migrations/{new[0]} cannot be undone by a computed down plan (inv migrate.test): Atlas cannot "
        'compute the plan: dropping enum ("order_status") value is not supported'
    ], gate.stdout
    assert "in sync" not in gate.stdout
