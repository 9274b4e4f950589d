"""Where `--output` of schema.erd and migrate.report may write: the rules (pure), the marker, the
paths resolved on a real directory (symlinks), and the atomic write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import outputs
from tools.errors import WorkflowError
from tools.outputs import DIRECTORY, FOREIGN, MISSING, NO_PARENT, OWN

ROOT = Path("/checkout")
TASK = "migrate.report"


def refusal(raw: str, state: str = MISSING, force: bool = False, resolved: str | None = None) -> str:
    lexical = Path(os.path.normpath(ROOT / raw))
    problem = outputs.refusal(ROOT, raw, lexical, Path(resolved) if resolved else lexical, state, TASK, force)
    return str(problem) if problem else ""


@pytest.mark.parametrize(
    ("raw", "state", "says"),
    [
        ("README.md", OWN, "would overwrite README.md, a file the workflow owns"),
        ("./docs/../README.md", FOREIGN, "would overwrite README.md"),
        ("docs/schema.md", OWN, "would overwrite docs/schema.md"),
        ("docs/schema.svg", MISSING, "would overwrite docs/schema.svg"),
        ("schema.sql", FOREIGN, "would overwrite schema.sql"),
        ("atlas.hcl", FOREIGN, "would overwrite atlas.hcl"),
        ("migrations/atlas.sum", FOREIGN, "is inside migrations/"),
        ("migrations/20261129000009_report.sql", MISSING, "is inside migrations/"),
        ("migrations", DIRECTORY, "is inside migrations/"),
        (".git/config", FOREIGN, "is inside .git/"),
        ("docs/", MISSING, "is a directory"),
        ("docs", DIRECTORY, "is a directory"),
        ("docs/.md", MISSING, "has no file name"),
        (".", DIRECTORY, "is a directory"),
        ("notes/report.md", NO_PARENT, "the folder notes does not exist"),
        ("notes.md", FOREIGN, "exists and was not written by inv migrate.report: choose another name, or pass --force"),
    ],
)
def test_refused(raw, state, says):
    assert says in refusal(raw, state)


@pytest.mark.parametrize(("raw", "state"), [("report.md", MISSING), ("report.md", OWN), ("docs/.report.md", MISSING)])
def test_allowed(raw, state):
    assert refusal(raw, state) == ""


def test_force_overwrites_a_foreign_file_but_never_the_workflows_own():
    assert refusal("notes.md", FOREIGN, force=True) == ""
    assert "owns" in refusal("README.md", FOREIGN, force=True)
    assert "inside migrations/" in refusal("migrations/atlas.sum", FOREIGN, force=True)
    assert "directory" in refusal("docs", DIRECTORY, force=True)


def test_a_symlink_into_migrations_is_refused_by_where_it_leads():
    assert "inside migrations/" in refusal("out.md", MISSING, resolved="/checkout/migrations/out.md")
    assert "owns" in refusal("link.md", OWN, resolved="/checkout/README.md")


def test_the_marker_is_first_or_just_after_the_xml_declaration():
    md = outputs.marked("# Report\n", TASK)
    assert md.splitlines()[0] == "<!-- written by inv migrate.report -->" and outputs.is_own(md, TASK)
    svg = outputs.marked('<?xml version="1.0"?>\n<svg/>\n', "schema.erd")
    assert svg.splitlines()[:2] == ['<?xml version="1.0"?>', "<!-- written by inv schema.erd -->"]
    assert outputs.is_own(svg, "schema.erd") and not outputs.is_own(svg, TASK)
    assert not outputs.is_own("# Project\n<!-- written by inv migrate.report -->\n", TASK)
    assert not outputs.is_own("", TASK)


def test_target_on_a_real_checkout(tmp_path):
    (tmp_path / "migrations").mkdir()
    (tmp_path / "into").symlink_to(tmp_path / "migrations")
    (tmp_path / "notes.md").write_text("mine, by hand\n")
    (tmp_path / "old.md").write_text(outputs.marked("old\n", TASK))
    for raw, says in [("into/x.md", "inside migrations/"), ("notes.md", "--force"), ("migrations", "inside")]:
        with pytest.raises(WorkflowError, match=says):
            outputs.target(tmp_path, raw, TASK)
    assert outputs.target(tmp_path, "old.md", TASK) == (tmp_path / "old.md").resolve()
    assert outputs.target(tmp_path, "notes.md", TASK, force=True) == (tmp_path / "notes.md").resolve()
    with pytest.raises(WorkflowError, match=r"--output docs/orders \(docs/orders.md\): the folder docs does not"):
        outputs.target(tmp_path, "docs/orders.md", "schema.erd", shown="docs/orders")


def test_write_atomic_replaces_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    path.write_text("old\n")
    outputs.write_atomic(path, "new\n")
    assert path.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        outputs.write_atomic(path, "half\n")
    assert path.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
