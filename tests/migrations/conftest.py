"""Migration data tests (README, "Data tests"): `tests/migrations/test_<version>.py` holds the
tests of the migration file with that version. The `migration` fixture hands each test a
scratch database at the version before it (tools/datatests.py: insert rows, `apply()`, read).

Where the databases live: under `inv migrate.test` (tools.datatests.run), beside the project's
dev database; in the normal test suite, on a throw-away PostgreSQL cluster started once per
run. Either way every scratch database is dropped when its test ends, failed or not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import atlas_binary, require, throwaway_cluster

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.path)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def data_tests_config(tmp_path_factory):
    """The project's configuration, its dev database on the dev server of `inv migrate.test`
    (tools.datatests.ON_DEV) or on a cluster of this run."""
    from tools.config import Config
    from tools.datatests import ON_DEV

    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    if os.environ.get(ON_DEV):
        yield Config.load(ROOT)
        return
    with throwaway_cluster(tmp_path_factory.mktemp("data-tests")) as cluster:
        yield Config.load(ROOT, environ={**os.environ, "DEV_DATABASE_URL": cluster.url("dev")})


@pytest.fixture
def migration(request, data_tests_config):
    """A scratch database at the version before this test's migration (tools.datatests.MigrationUnderTest):
    the version comes from `@pytest.mark.migration("<version>")`, else from the file name."""
    from tools.datatests import at_version, version_from_test_file

    marker = request.node.get_closest_marker("migration")
    version = str(marker.args[0]) if marker else version_from_test_file(request.path.name)
    if not version:
        pytest.fail(
            f"{request.path.name}: name the file test_<version>.py, or mark the test "
            "@pytest.mark.migration('<version>')",
            pytrace=False,
        )
    with at_version(data_tests_config, version) as under_test:
        yield under_test
