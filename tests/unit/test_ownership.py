"""Which database is which (tools/config.py) and the workflow's mark (tools/ownership.py): pure logic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import ownership, scratch_runs
from tools.config import Config
from tools.errors import WorkflowError
from tools.urls import address, database_key

HCL = 'env "sqlalchemy" {\n}\nenv "local" {\n}\nenv "staging" {\n}\nenv "production" {\n}\n'
LOCAL = "postgres://app:pw@127.0.0.1:5433/app?sslmode=disable"
DEV = "postgres://app:pw@127.0.0.1:5434/dev?sslmode=disable"


def config(tmp_path: Path, **values: str) -> Config:
    (tmp_path / "atlas.hcl").write_text(HCL)
    base = {"DATABASE_URL": LOCAL, "DEV_DATABASE_URL": DEV}
    return Config.load(tmp_path, environ={**base, **values})


@pytest.mark.parametrize(
    "a,b",
    [
        ("postgres://u@localhost/db", "postgres://v:x@127.0.0.1:5432/db"),
        ("postgres://u@[::1]:5432/db", "postgresql://u@localhost/db?sslmode=disable"),
        ("postgres://u@%2Fvar%2Frun%2Fpostgresql/db", "postgres://u@localhost:5432/db"),
        ("postgres://u@localhost/other?host=/tmp&dbname=db", "postgres://u@127.0.0.1/db"),
        ("postgres://u@db.example.com/db", "postgres://u@DB.example.com:5432/db"),
    ],
    ids=["localhost-ipv4-default-port", "ipv6-loopback", "unix-socket", "query-host-and-dbname", "host-case"],
)
def test_same_database_spelled_differently(a, b):
    assert database_key(a) == database_key(b) is not None


@pytest.mark.parametrize(
    "a,b",
    [
        ("postgres://u@localhost:5433/db", "postgres://u@localhost:5434/db"),
        ("postgres://u@localhost/db", "postgres://u@localhost/db2"),
        ("postgres://u@10.0.0.1/db", "postgres://u@localhost/db"),
    ],
    ids=["port", "name", "host"],
)
def test_different_databases(a, b):
    assert database_key(a) != database_key(b)


def test_unparsable_urls_name_nothing():
    assert (
        database_key("") is None
        and database_key("postgres://u@h:99999/db") is None
        and database_key("postgres://u@h") is None
    )


def test_address_has_no_credentials():
    assert address("postgres://user:secret@127.0.0.1:5434/dev?sslmode=disable") == "127.0.0.1:5434/dev"
    assert address("postgres://u@[::1]/x") == "[::1]:5432/x"


@pytest.mark.parametrize("variable,env", [("DATABASE_URL", "local"), ("STAGING_DATABASE_URL", "staging")])
def test_a_target_at_the_dev_database_is_refused(tmp_path, variable, env):
    c = config(tmp_path, **{variable: DEV.replace("127.0.0.1", "localhost")})
    with pytest.raises(WorkflowError) as err:
        c.url_for(env)
    assert str(err.value) == (
        f"{variable} and DEV_DATABASE_URL name the same database (localhost:5434/dev), but the workflow drops "
        "and recreates the dev database: point DEV_DATABASE_URL at an empty throw-away database (inv db.up provides "
        "one)"
    )
    with pytest.raises(WorkflowError, match=f"DEV_DATABASE_URL and {variable} name the same database"):
        c.dev_url()


def test_production_equal_to_local_names_both(tmp_path):
    c = config(tmp_path, PRODUCTION_DATABASE_URL=LOCAL.replace("127.0.0.1", "localhost"))
    with pytest.raises(WorkflowError) as err:
        c.url_for("production")
    assert str(err.value).startswith(
        "PRODUCTION_DATABASE_URL and DATABASE_URL name the same database (localhost:5433/app): "
        "an apply to local would change production without its confirmation"
    )
    with pytest.raises(WorkflowError, match="DATABASE_URL and PRODUCTION_DATABASE_URL name the same database"):
        c.url_for("local")


def test_unprotected_environments_may_share_and_bad_neighbours_do_not_matter(tmp_path):
    c = config(tmp_path, STAGING_DATABASE_URL=LOCAL, PRODUCTION_DATABASE_URL="mysql://nonsense")
    assert c.url_for("staging") == LOCAL and c.url_for("local") == LOCAL
    assert c.dev_url() == DEV


def test_protected_envs_setting_decides(tmp_path):
    c = config(tmp_path, STAGING_DATABASE_URL=LOCAL, PROTECTED_ENVS="staging")
    with pytest.raises(WorkflowError, match="would change staging without its confirmation"):
        c.url_for("staging")


def test_stack_database(tmp_path):
    c = config(tmp_path, DB_PORT="6000", POSTGRES_DB="shop")
    assert c.stack_database() == database_key("postgres://localhost:6000/shop")
    assert config(tmp_path, DB_PORT="x").stack_database() is None


@pytest.mark.parametrize(
    "mark",
    [ownership.Mark("dev", "shop"), ownership.Mark("scratch", "shop", "0a1b2c3d"), ownership.Mark("local", "a-b_c")],
)
def test_mark_round_trip(mark):
    assert ownership.parse_mark(mark.text()) == mark
    assert mark.text().startswith("schemaflow:")


@pytest.mark.parametrize(
    "comment", [None, "", "production database", "schemaflow:prod project=x", "see schemaflow:dev"]
)
def test_other_comments_are_no_mark(comment):
    assert ownership.parse_mark(comment) is None


def test_run_key_fits_an_int4():
    assert scratch_runs.run_key("00000001") == 1
    assert scratch_runs.run_key("ffffffff") == -1
    assert -(2**31) <= scratch_runs.run_key("80000000") < 2**31


def test_describe():
    assert ownership.describe({"view": 1, "table": 12}) == "12 tables, 1 view"
    assert ownership.describe({"table": 0, "function": 2}) == "2 functions"
    assert ownership.describe({}) == ""


def test_project_name(tmp_path):
    assert ownership.project_of(config(tmp_path, COMPOSE_PROJECT_NAME="shop1")) == "shop1"
    assert ownership.project_of(config(tmp_path)) == tmp_path.name


def test_scratch_names_carry_the_prefix_and_run():
    assert scratch_runs.scratch_name("0a1b2c3d", "replay") == "schemaflow_scratch_0a1b2c3d_replay"


def test_owned_takes_the_mark_of_the_role():
    assert ownership.owned(ownership.Mark("dev", "p"), "dev")
    assert not ownership.owned(ownership.Mark("local", "p"), "dev")  # db.reset's local database is never a dev database
    assert not ownership.owned(None, "dev")
