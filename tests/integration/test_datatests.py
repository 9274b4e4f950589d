"""Migration data tests (tools/datatests.py) on a real PostgreSQL 15 and the real Atlas: the
database before a version, the apply through the workflow, scratch databases dropped, and
`run()` (what `inv migrate.test` calls) failing by name when the backfill is broken."""

from __future__ import annotations

import os

import pytest

from tests import helpers
from tests.conftest import atlas_binary, make_project, require, throwaway_cluster
from tools.errors import WorkflowError

pytestmark = pytest.mark.integration

WIDEN = "20261128234632"
BACKFILL = "20261128234636"
BACKFILL_FILE = "migrations/20261128234636_backfill_order_item_line_total.sql"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A throw-away PostgreSQL cluster: the dev server of the project copies below."""
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    with throwaway_cluster(tmp_path_factory.mktemp("datatests")) as cluster:
        yield cluster


@pytest.fixture
def config(tmp_path, server):
    """A copy of the project whose dev database is on `server`."""
    from tools.config import Config

    project = make_project(tmp_path, "local")
    return Config.load(project.root, environ={**os.environ, **project.env, "DEV_DATABASE_URL": server.url("dev")})


def databases(server) -> set[str]:
    """The scratch databases on the server (tools/ownership.py names them)."""
    rows = helpers.sql(server.url("postgres"), "SELECT datname FROM pg_database WHERE datname LIKE '%scratch%'")
    return {row[0] for row in rows}


def test_the_database_is_at_the_version_before_until_apply(config, server):
    from tools.datatests import at_version

    before = databases(server)
    with at_version(config, BACKFILL) as migration:
        assert (migration.version, migration.previous) == (BACKFILL, WIDEN)
        assert migration.file == BACKFILL_FILE.split("/")[1]
        columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'order_items'"
        assert "line_total" not in {r[0] for r in migration.execute(columns)}
        revisions = "SELECT max(version) FROM atlas_schema_revisions.atlas_schema_revisions"
        assert migration.execute(revisions) == [(WIDEN,)]
        migration.apply()
        assert "line_total" in {r[0] for r in migration.execute(columns)}
        assert migration.execute(revisions) == [(BACKFILL,)]
        with pytest.raises(WorkflowError, match="is applied already"):
            migration.apply()
        name = migration.url.split("/")[-1].split("?")[0]
        assert name in databases(server)
    assert databases(server) == before, "the scratch database was left behind"


def test_the_scratch_database_is_dropped_when_the_test_fails(config, server):
    from tools.datatests import at_version

    before = databases(server)
    with pytest.raises(AssertionError), at_version(config, WIDEN) as migration:
        migration.execute("INSERT INTO customers (email, full_name) VALUES ('a@example.com', 'A')")
        raise AssertionError("the test failed")
    assert databases(server) == before


def test_the_first_file_starts_from_an_empty_database(config):
    from tools.datatests import at_version

    first = sorted(p.name for p in (config.root / "migrations").glob("*.sql"))[0]
    with at_version(config, first.split("_")[0]) as migration:
        assert migration.previous is None
        assert migration.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
        migration.apply()
        assert migration.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(4,)]


def test_an_unknown_version_is_refused(config):
    from tools.datatests import at_version

    with pytest.raises(WorkflowError, match="no migration with version '42' in migrations/"), at_version(config, "42"):
        pass


def test_apply_runs_the_files_pre_conditions_first(config):
    from tools.datatests import at_version

    (config.root / "migrations" / "checks").mkdir()
    (config.root / "migrations" / "checks" / f"{BACKFILL}.sql").write_text(
        "-- no order line yet\nSELECT count(*) = 0 FROM order_items;\n"
    )
    with at_version(config, BACKFILL) as migration:
        assert [str(r) for r in migration.apply()] == [
            f"passed: migrations/checks/{BACKFILL}.sql check 1 (line 2): no order line yet -> true"
        ]
    with at_version(config, BACKFILL) as migration:
        migration.execute("INSERT INTO customers (email, full_name) VALUES ('a@example.com', 'A')")
        migration.execute("INSERT INTO products (sku, name, price) VALUES ('s', 'S', 1)")
        migration.execute("INSERT INTO orders (customer_id) SELECT id FROM customers")
        migration.execute(
            "INSERT INTO order_items (order_id, product_id, unit_price) SELECT o.id, p.id, 1 FROM orders o, products p"
        )
        with pytest.raises(WorkflowError, match="a pre-condition does not hold on the scratch database"):
            migration.apply()
        assert not migration.applied
        assert migration.execute("SELECT max(version) FROM atlas_schema_revisions.atlas_schema_revisions") == [(WIDEN,)]


def test_run_passes_then_fails_by_name_when_the_backfill_is_broken(config):
    from tools import datatests, migrations

    report = datatests.run(config)
    assert report.ok, report.output
    assert report.failed == [] and report.passed >= 3
    assert report.lines()[-1].startswith(f"data tests ({datatests.TESTS}/): {report.passed} passed")
    report.verdict()

    path = config.root / BACKFILL_FILE
    path.write_text(path.read_text().replace('= "quantity" * "unit_price"', '= "unit_price"', 1))
    migrations.rehash(config)
    broken = datatests.run(config)
    assert not broken.ok
    assert [name.split(" - ")[0] for name in broken.failed] == [
        "tests/migrations/test_20261128234636_backfill_order_item_line_total.py::test_every_existing_line_gets_its_total"
    ]
    assert broken.lines()[0].startswith("data test failed: tests/migrations/test_20261128234636_")
    with pytest.raises(WorkflowError, match=r"1 migration data test\(s\) failed, first: tests/migrations/test_2026"):
        broken.verdict()


MARKED = """
import pytest


@pytest.mark.migration("20261128234632")
def test_version_from_the_marker(migration):
    assert (migration.version, migration.previous) == ("20261128234632", "20261124215410")


def test_no_version_anywhere(migration):
    pass
"""


def test_the_version_comes_from_a_marker_else_the_file_name(config):
    from tools import datatests

    (config.root / datatests.TESTS / "test_marked.py").write_text(MARKED)
    report = datatests.run(config, ("-k", "test_marked"))
    assert report.passed == 1, report.output
    assert [name.split(" - ")[0] for name in report.failed] == [
        "tests/migrations/test_marked.py::test_no_version_anywhere"
    ]
    assert "test_marked.py: name the file test_<version>.py, or mark the test" in report.output
