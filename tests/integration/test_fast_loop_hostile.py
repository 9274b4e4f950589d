"""The remembered replays and lints (tools/snapcache.py) attacked: an entry must never stand for
something other than what a fresh run would give, on the real PostgreSQL and the real Atlas."""

from __future__ import annotations

import pytest

from tests.conftest import running_project
from tests.integration.test_apply_safety import add_files

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("snapcache"), apply=True) as p:
        yield p


def config_of(p):
    from tools.config import Config

    return Config.load(p.root, environ=p.env)


def entries(p) -> set[str]:
    from tools import snapcache

    return {path.name for path in snapcache.cache_dir(config_of(p)).glob("*.json")}


def remove(p, names: list[str]) -> None:
    for name in names:
        (p.root / "migrations" / name).unlink()
    add_files(p)  # re-hash


UNIQUE = "CREATE UNIQUE INDEX customers_full_name_key ON customers (full_name);\n"  # Atlas: MF101, a warning


def test_a_lint_with_findings_is_remembered(project):
    from tools.atlaslint import lint

    names = add_files(project, UNIQUE)
    try:
        before = entries(project)
        first = lint(config_of(project), latest=1)
        assert first.findings and not first.errors, first.finding_lines()
        assert entries(project) - before, "a lint with findings (warnings only) is never remembered"
        assert lint(config_of(project), latest=1) == first
    finally:
        remove(project, names)


def test_a_remembered_lint_does_not_hide_a_rule_turned_into_an_error_in_atlas_hcl(project):
    from tools.atlaslint import lint

    names = add_files(project, UNIQUE)
    hcl = project.root / "atlas.hcl"
    original = hcl.read_text()
    try:
        assert not lint(config_of(project), latest=1).errors
        hcl.write_text("lint {\n  data_depend {\n    error = true\n  }\n}\n" + original)
        again = lint(config_of(project), latest=1)
        assert again.errors == ["29990101000001_step1.sql: data dependent changes detected"], again.errors
    finally:
        hcl.write_text(original)
        remove(project, names)
