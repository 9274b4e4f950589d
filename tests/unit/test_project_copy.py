"""The suite's project copies leave out what git ignores: caches and virtualenvs (.nox alone holds
about 1.2 GB after `nox -s unit`, and every integration test makes a copy)."""

from __future__ import annotations

from tests.conftest import COPY_IGNORE, ROOT


def test_a_project_copy_leaves_out_caches_and_virtualenvs():
    names = [".nox", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__", ".state", ".env", ".git"]
    kept = ["app", "tools", "migrations", "schema.sql", "atlas.hcl", "docs", "tests", ".env.example", ".github"]
    ignored = COPY_IGNORE(str(ROOT), names + kept)
    assert ignored == set(names)
