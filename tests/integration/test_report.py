"""`inv migrate.report` on a branch with a destructive change and an index on an existing table
(real git, PostgreSQL and Atlas): the Markdown names both, with the diagram of the touched
tables, and equals the golden file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import running_project
from tests.helpers import git

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report_destructive_index.md"
CHANGE = (
    'ALTER TABLE "public"."customers" DROP COLUMN "is_active";\n'
    'CREATE INDEX "ix_orders_placed_at" ON "public"."orders" ("placed_at");\n'
)


def test_report_names_the_destructive_change_and_the_index(tmp_path):
    with running_project(tmp_path) as p:
        git(p.root, "init", "-q", "-b", "main")
        git(p.root, "add", "-A")
        git(p.root, "commit", "-q", "-m", "main")
        git(p.root, "checkout", "-q", "-b", "feature")
        p.write("migrations/29990101000001_review_me.sql", CHANGE)
        assert p.inv("migrate.hash").returncode == 0
        git(p.root, "add", "-A")
        git(p.root, "commit", "-q", "-m", "feature")

        proc = p.inv("migrate.report", "--base", "main", "--output", "report.md")
        assert proc.returncode == 0, proc.stderr
        text = (p.root / "report.md").read_text()
        if os.environ.get("UPDATE_GOLDEN"):
            GOLDEN.write_text(text)
        assert "DROP COLUMN" in text and "--allow-destructive" in text
        assert "ix_orders_placed_at" in text and "require-concurrent-index-creation" in text
        assert '"public.customers"' in text and "- dropped" in text
        assert text == GOLDEN.read_text()

        printed = p.inv("migrate.report", "--base", "main")
        assert printed.returncode == 0, printed.stderr
        marker, _, body = text.partition("\n")  # the file starts with the marker of migrate.report's own files
        assert marker == "<!-- written by inv migrate.report -->" and printed.stdout.rstrip() + "\n" == body
