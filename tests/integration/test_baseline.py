"""Adopting a database another tool built: compare first, record only what is really there.

A legacy database is built from the models with SQLAlchemy's create_all plus Alembic's
bookkeeping table (what a project managed by Alembic autogenerate has), on a real PostgreSQL 15,
then adopted with the real Atlas.
"""

from __future__ import annotations

import sys

import pytest

from tests import helpers
from tests.conftest import atlas_binary, running_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("baseline")) as p:
        yield p


run_sql = helpers.sql


@pytest.fixture
def legacy(project, request):
    """A database on the project's cluster, exposed as env `staging`; `build` fills it like Alembic."""
    name = "legacy_" + request.node.name.split("[")[0][-30:].lower()
    run_sql(project.env["DATABASE_URL"], f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    url = project.env["DATABASE_URL"].replace("/app?", f"/{name}?")
    yield url, {"STAGING_DATABASE_URL": url}
    run_sql(project.env["DATABASE_URL"], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


LIKE_ALEMBIC = """
import sys
from sqlalchemy import create_engine, text
import app.models
from app.models.base import Base

engine = create_engine(sys.argv[1].replace("postgres://", "postgresql+psycopg://"))
Base.metadata.create_all(engine)
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                      "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
    conn.execute(text("INSERT INTO alembic_version VALUES ('ae1027a6acf')"))
"""


def newest(project) -> tuple[str, int]:
    """The newest version of the project's migrations/ and the number of files up to it: the
    models create_all builds are what every file together builds."""
    files = sorted(path.name for path in (project.root / "migrations").glob("*.sql"))
    return files[-1].split("_", 1)[0], len(files)


def build_like_alembic(project, url: str) -> None:
    proc = project.run([sys.executable, "-c", LIKE_ALEMBIC, url])
    assert proc.returncode == 0, proc.stderr


def revisions(url: str) -> int:
    exists = run_sql(url, "SELECT to_regclass('atlas_schema_revisions.atlas_schema_revisions') IS NOT NULL")[0][0]
    return run_sql(url, "SELECT count(*) FROM atlas_schema_revisions.atlas_schema_revisions")[0][0] if exists else 0


def test_matching_database_is_adopted_then_migrates_normally(project, legacy):
    p, (url, env) = project, legacy
    build_like_alembic(p, url)
    refused = p.inv("migrate.apply", "--env", "staging", extra_env=env)
    assert refused.returncode == 1
    assert "holds objects (" in refused.stderr and "inv migrate.baseline --env staging" in refused.stderr
    assert revisions(url) == 0
    # The guide's bare command fails too, but leaves Atlas's (empty) revision table behind.
    bare = p.run([atlas_binary(), "migrate", "apply", "--env", "staging"], extra_env=env)
    assert bare.returncode == 1 and "not clean" in bare.stderr

    version, files = newest(p)
    dry = p.inv("migrate.baseline", "--env", "staging", "--version", version, "--dry-run", extra_env=env)
    assert dry.returncode == 0, dry.stderr
    assert "staging matches what migrations/ up to" in dry.stdout and "nothing recorded" in dry.stdout
    assert "alembic_version (Alembic's bookkeeping) is not compared" in dry.stderr
    assert revisions(url) == 0

    done = p.inv("migrate.baseline", "--env", "staging", "--version", version, extra_env=env)
    assert done.returncode == 0, done.stderr
    assert f"{files} migration(s) recorded as applied, none run" in done.stdout
    assert "staging: in sync" in done.stdout
    assert revisions(url) == files
    assert p.inv("migrate.drift", "--env", "staging", extra_env=env).returncode == 0  # alembic_version is not drift

    again = p.inv("migrate.baseline", "--env", "staging", "--version", version, extra_env=env)
    assert again.returncode == 1 and f"already has {files} migration(s) applied by Atlas" in again.stderr

    new = p.root / "migrations" / "29990101000000_add_note.sql"
    new.write_text('ALTER TABLE "public"."orders" ADD COLUMN "note" text NULL;\n')
    try:
        assert p.inv("migrate.hash").returncode == 0
        applied = p.inv("migrate.apply", "--env", "staging", extra_env=env)
        assert applied.returncode == 0, applied.stderr
        assert "applied 29990101000000_add_note.sql" in applied.stdout
    finally:
        new.unlink()
        p.inv("migrate.hash")


def test_differing_database_is_refused_with_every_difference(project, legacy):
    p, (url, env) = project, legacy
    build_like_alembic(p, url)
    run_sql(url, "ALTER TABLE customers ALTER COLUMN is_active DROP DEFAULT")  # e.g. a default Alembic never set
    version, files = newest(p)
    proc = p.inv("migrate.baseline", "--env", "staging", "--version", version, extra_env=env)
    assert proc.returncode == 2
    assert "drift: column public.customers.is_active: default true != (none)" in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 1 and "differs from what migrations/ up to" in errors[0] and "no baseline recorded" in errors[0]
    )
    assert revisions(url) == 0

    forced = p.inv("migrate.baseline", "--env", "staging", "--version", version, "--ignore-drift", extra_env=env)
    assert forced.returncode == 0, forced.stderr
    assert "recorded despite 1 difference(s) (--ignore-drift)" in forced.stdout
    assert revisions(url) == files


@pytest.mark.parametrize("case", ["empty", "unknown-version", "production-no-tty"])
def test_bad_baselines_change_nothing(project, legacy, case):
    p, (url, env) = project, legacy
    args = ["migrate.baseline", "--env", "staging"]
    if case == "empty":
        expected = "staging is empty: there is nothing to baseline"
    elif case == "unknown-version":
        build_like_alembic(p, url)
        args += ["--version", "42"]
        expected = "no migration with version '42' in migrations/"
    else:
        build_like_alembic(p, url)
        env = {"PRODUCTION_DATABASE_URL": url}
        args = ["migrate.baseline", "--env", "production", "--version", newest(p)[0]]
        expected = "production is a protected environment and there is no terminal"
    proc = p.inv(*args, extra_env=env)
    assert proc.returncode == 1
    assert expected in proc.stderr and proc.stderr.count("error:") == 1
    assert revisions(url) == 0
    if case == "production-no-tty":
        confirmed = p.inv(*args, "--yes", extra_env=env)
        assert confirmed.returncode == 0, confirmed.stderr
        assert revisions(url) == newest(p)[1]
