"""`--output` of `inv schema.erd` and `inv migrate.report` against hostile paths (real PostgreSQL,
Atlas and git): README.md, migrations/atlas.sum, a new file in migrations/, a directory, the
committed diagram and a foreign file are refused with one line and left as they were; the task's
own earlier output is overwritten, and --force overwrites a foreign file."""

from __future__ import annotations

import pytest

from tests.conftest import running_project
from tests.helpers import git

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("outputs")) as p:
        git(p.root, "init", "-q", "-b", "main")
        git(p.root, "add", "-A")
        git(p.root, "commit", "-q", "-m", "main")
        yield p


def refused(p, *args: str) -> str:
    """Run the task; it must fail with one error line, no traceback."""
    proc = p.inv(*args)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_the_workflows_files_and_directories_are_refused(project):
    p = project
    p.write("README.md", "# The project\n")
    before = {rel: (p.root / rel).read_bytes() for rel in ("README.md", "migrations/atlas.sum", "docs/schema.md")}
    listing = sorted(x.name for x in (p.root / "migrations").iterdir())

    assert "a file the workflow owns" in refused(p, "schema.erd", "--tables", "orders", "--output", "README")
    assert "a file the workflow owns" in refused(p, "schema.erd", "--tables", "orders", "--output", "./docs/schema.md")
    assert "a file the workflow owns" in refused(p, "migrate.report", "--output", "docs/schema.md")
    assert "is inside migrations/" in refused(p, "migrate.report", "--output", "migrations/atlas.sum")
    assert "is inside migrations/" in refused(p, "migrate.report", "--output", "migrations/20261129000009_report.sql")
    assert "is inside migrations/" in refused(p, "migrate.report", "--output", "migrations", "--force")
    assert "is a directory" in refused(p, "migrate.report", "--output", "docs")
    assert "is a directory" in refused(p, "schema.erd", "--tables", "orders", "--output", "docs/")
    assert "does not exist" in refused(p, "migrate.report", "--output", "nowhere/report.md")

    assert {rel: (p.root / rel).read_bytes() for rel in before} == before
    assert sorted(x.name for x in (p.root / "migrations").iterdir()) == listing
    assert not (p.root / "docs/.md").exists() and not (p.root / "docs/.svg").exists()
    assert not (p.root / "nowhere").exists()
    assert p.inv("migrate.validate").returncode == 0


def test_own_output_is_overwritten_and_a_foreign_file_only_with_force(project):
    p = project
    first = p.inv("migrate.report", "--output", "report.md")
    assert first.returncode == 0, first.stderr
    text = (p.root / "report.md").read_text()
    assert text.startswith("<!-- written by inv migrate.report -->\n## Migrations: 0 new file(s)")
    again = p.inv("migrate.report", "--output", "report.md")
    assert again.returncode == 0, again.stderr

    drawn = p.inv("schema.erd", "--tables", "orders", "--output", "docs/orders")
    assert drawn.returncode == 0, drawn.stderr
    svg = (p.root / "docs/orders.svg").read_text().splitlines()
    assert svg[0].startswith("<?xml") and svg[1] == "<!-- written by inv schema.erd -->"
    redrawn = p.inv("schema.erd", "--tables", "orders,customers", "--output", "docs/orders")
    assert redrawn.returncode == 0, redrawn.stderr
    assert '"public.customers"' in (p.root / "docs/orders.md").read_text()

    p.write("notes.md", "written by hand\n")
    assert "--force" in refused(p, "migrate.report", "--output", "notes.md")
    assert "--force" in refused(p, "schema.erd", "--tables", "orders", "--output", "report")  # report.md: not erd's
    assert (p.root / "notes.md").read_text() == "written by hand\n"
    forced = p.inv("migrate.report", "--output", "notes.md", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (p.root / "notes.md").read_text().startswith("<!-- written by inv migrate.report -->")
