"""migrations/ holds regular files only: links and other kinds are refused, naming the entry."""

from __future__ import annotations

import pytest

from tools.config import Config
from tools.errors import WorkflowError
from tools.migrations import migration_files, regular_files_only


def project(tmp_path):
    root = tmp_path / "project"
    (root / "migrations").mkdir(parents=True)
    (root / "migrations" / "20260101000000_initial.sql").write_text("SELECT 1;\n")
    (root / "migrations" / "atlas.sum").write_text("h1:x\n")
    return Config(root=root, values={}, env_names=["local"])


def refused(config) -> str:
    with pytest.raises(WorkflowError) as err:
        regular_files_only(config)
    with pytest.raises(WorkflowError):
        migration_files(config)
    return str(err.value)


def test_regular_files_pass(tmp_path):
    config = project(tmp_path)
    regular_files_only(config)
    assert [p.name for p in migration_files(config)] == ["20260101000000_initial.sql"]


@pytest.mark.parametrize("name", ["20260102000000_linked.sql", "atlas.sum", "README"])
def test_a_link_is_refused_whatever_its_name(tmp_path, name):
    config = project(tmp_path)
    outside = tmp_path / "outside.sql"
    outside.write_text("DROP TABLE customers;\n")
    link = config.root / "migrations" / name
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    assert refused(config).startswith(f"migrations/{name} is a symbolic link (to {outside}): git stores only the link")


def test_a_directory_named_like_a_migration_is_refused(tmp_path):
    config = project(tmp_path)
    (config.root / "migrations" / "20260102000000_dir.sql").mkdir()
    assert refused(config).startswith("migrations/20260102000000_dir.sql is not a regular file")


def test_migrations_itself_a_link_is_refused(tmp_path):
    config = project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    (config.root / "migrations").rename(elsewhere)
    (config.root / "migrations").symlink_to(elsewhere)
    assert refused(config).startswith("migrations/ is a symbolic link (to ")
