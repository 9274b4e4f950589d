"""The workflow on a real PostgreSQL 15 (local clusters) and the real Atlas, through `inv`."""

from __future__ import annotations

import re
import sys

import pytest

pytestmark = pytest.mark.integration

ADD_COLUMN = (
    "    is_active: Mapped[bool]",
    "    nickname: Mapped[str | None] = mapped_column(String(50))\n    is_active: Mapped[bool]",
)


def add_nickname(project):
    path = project.root / "app/models/customers.py"
    text = path.read_text()
    assert ADD_COLUMN[0] in text
    path.write_text(text.replace(ADD_COLUMN[0], ADD_COLUMN[1], 1))


def psql(project, sql: str, url_var: str = "DATABASE_URL") -> str:
    import psycopg

    from tools.urls import libpq_url

    with psycopg.connect(libpq_url(project.env[url_var], url_var), autocommit=True) as conn:
        cur = conn.execute(sql)
        rows = cur.fetchall() if cur.description else []
    return "\n".join("|".join(str(v) for v in row) for row in rows)


def test_diff_apply_status_cycle(local_project):
    p = local_project
    assert p.inv("db.up").returncode == 0
    first = p.inv("migrate.apply", "--env", "local")
    assert first.returncode == 0, first.stderr
    assert "migration(s) applied" in first.stdout
    assert p.inv("migrate.status").returncode == 0

    add_nickname(p)
    before = set(p.files())
    diff = p.inv("migrate.diff", "--name", "add_nickname")
    assert diff.returncode == 0, diff.stderr
    new = sorted(set(p.files()) - before)
    assert len(new) == 1 and new[0].endswith("_add_nickname.sql")
    sql = p.files()[new[0]]
    assert 'ADD COLUMN "nickname" character varying(50) NULL' in sql
    assert "nickname" in p.files()["schema.sql"]
    assert "new migration: " + new[0] in diff.stdout

    pending = p.inv("migrate.status", "--env", "local")
    assert pending.returncode == 2, pending.stdout
    assert "PENDING" in pending.stdout and new[0].split("/")[1] in pending.stdout

    applied = p.inv("migrate.apply", "--env", "local")
    assert applied.returncode == 0, applied.stderr
    assert "applied " + new[0].split("/")[1] in applied.stdout
    assert (
        psql(
            p,
            "SELECT data_type FROM information_schema.columns WHERE table_name='customers' AND column_name='nickname'",
        )
        == "character varying"
    )

    synced = p.inv("migrate.status", "--env", "local")
    assert synced.returncode == 0 and "in sync" in synced.stdout

    files = p.files()
    again = p.inv("migrate.diff", "--name", "nothing_new")
    assert again.returncode == 0 and "no changes" in again.stdout
    assert p.files() == files

    check = p.inv("migrate.check", "--no-base")  # a copy without git history
    assert check.returncode == 0, check.stdout + check.stderr


def test_initial_migration_from_empty_directory(tmp_path):
    from tests.conftest import atlas_binary, make_project, require

    require(atlas_binary() is not None, "the Atlas CLI is not installed")
    p = make_project(tmp_path, "local", migrations=False)
    try:
        dev = p.inv("dev")
        assert dev.returncode == 0, dev.stderr
        assert re.search(r"new migration: migrations/\d{14}_initial\.sql", dev.stdout)
        assert "local: in sync" in dev.stdout
        assert (p.root / "migrations/atlas.sum").exists()
    finally:
        p.inv("db.down", "--volumes")


def test_staging_uses_its_own_variable(local_project):
    p = local_project
    assert p.inv("db.up").returncode == 0
    unset = p.inv("migrate.apply", "--env", "staging")
    assert unset.returncode == 1
    assert unset.stderr.strip().splitlines() == [
        "error: STAGING_DATABASE_URL is not set, so environment 'staging' has no database: set STAGING_DATABASE_URL "
        "in the environment or in .env (see .env.example)"
    ]

    psql(p, "CREATE DATABASE staging_copy")
    staging_url = p.env["DATABASE_URL"].replace("/app?", "/staging_copy?")
    applied = p.inv("migrate.apply", "--env", "staging", extra_env={"STAGING_DATABASE_URL": staging_url})
    assert applied.returncode == 0, applied.stderr
    files = len(list((p.root / "migrations").glob("*.sql")))
    assert f"staging: {files} migration(s) applied" in applied.stdout
    assert psql(p, "SELECT count(*) FROM pg_tables WHERE schemaname='public'", "DATABASE_URL") == "0"


def test_production_refuses_without_tty_or_yes(local_project):
    p = local_project
    assert p.inv("db.up").returncode == 0
    psql(p, "CREATE DATABASE prod_copy")
    prod = {"PRODUCTION_DATABASE_URL": p.env["DATABASE_URL"].replace("/app?", "/prod_copy?")}
    refused = p.inv("migrate.apply", "--env", "production", extra_env=prod)
    assert refused.returncode == 1
    assert "protected environment" in refused.stderr and "--yes" in refused.stderr
    assert p.inv("migrate.status", "--env", "production", extra_env=prod).returncode == 2
    assert p.inv("migrate.apply", "--env", "production", "--yes", extra_env=prod).returncode == 0


def test_guide_commands_work_verbatim(local_project):
    """The Atlas guide's plain commands, with the environment the README activates."""
    p = local_project
    assert p.inv("db.up").returncode == 0
    from tools.atlas import find_binary

    atlas = find_binary()
    add_nickname(p)
    dump = p.run([sys.executable, "tools/dump_schema.py"])
    assert dump.returncode == 0
    (p.root / "schema.sql").write_text(dump.stdout)
    diff = p.run([atlas, "migrate", "diff", "add_user_preferences", "--env", "sqlalchemy"])
    assert diff.returncode == 0, diff.stderr
    assert any(f.endswith("_add_user_preferences.sql") for f in p.files())
    for cmd in (["migrate", "hash", "--env", "sqlalchemy"], ["migrate", "validate", "--env", "sqlalchemy"]):
        proc = p.run([atlas, *cmd])
        assert proc.returncode == 0, proc.stderr
    apply = p.run([atlas, "migrate", "apply", "--env", "sqlalchemy", "--url", p.env["DATABASE_URL"]])
    assert apply.returncode == 0, apply.stderr
    status = p.run([atlas, "migrate", "status", "--env", "sqlalchemy"])
    assert "Migration Status: OK" in status.stdout


@pytest.mark.parametrize(
    "name,message",
    [
        ("", "a migration name is required"),
        ("add column", "invalid migration name 'add column'"),
        ("../evil", "invalid migration name '../evil'"),
        ("it's", 'invalid migration name "it\'s"'),
        ("initial", "a migration named 'initial' exists already"),
    ],
    ids=["empty", "space", "slash", "quote", "existing"],
)
def test_bad_migration_names_change_nothing(local_project, name, message):
    p = local_project
    before = p.files()
    proc = p.inv("migrate.diff", "--name", name)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]  # one line
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert p.files() == before


def test_two_diffs_in_one_second_get_distinct_increasing_versions(local_project):
    """Atlas names files by the second; the second file must not shadow or be skipped."""
    p = local_project
    assert p.inv("db.up").returncode == 0
    add_nickname(p)
    assert p.inv("migrate.diff", "--name", "first").returncode == 0
    path = p.root / "app/models/customers.py"
    path.write_text(
        path.read_text().replace(
            "    is_active: Mapped[bool]",
            "    motto: Mapped[str | None] = mapped_column(String(80))\n    is_active: Mapped[bool]",
            1,
        )
    )
    # Same second as far as Atlas is concerned: freeze the newest version in the future.
    newest = sorted((p.root / "migrations").glob("*_first.sql"))[0]
    future = newest.with_name("29991231235959_first.sql")
    newest.rename(future)
    assert p.run([atlas_path(), "migrate", "hash", "--env", "sqlalchemy"]).returncode == 0
    second = p.inv("migrate.diff", "--name", "second")
    assert second.returncode == 0, second.stderr
    versions = sorted(f.name for f in (p.root / "migrations").glob("*.sql"))
    assert versions[-2:] == ["29991231235959_first.sql", "29991231235960_second.sql"], versions
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0, applied.stderr
    assert (
        "applied 29991231235959_first.sql" in applied.stdout and "applied 29991231235960_second.sql" in applied.stdout
    )
    cols = psql(
        p,
        "SELECT column_name FROM information_schema.columns WHERE table_name='customers' AND column_name IN "
        "('nickname','motto') ORDER BY 1",
    )
    assert cols == "motto\nnickname"


def test_back_to_back_diffs_apply_both(local_project):
    p = local_project
    assert p.inv("db.up").returncode == 0
    add_nickname(p)
    first = p.inv("migrate.diff", "--name", "first")
    path = p.root / "app/models/customers.py"
    path.write_text(
        path.read_text().replace(
            "    is_active: Mapped[bool]",
            "    motto: Mapped[str | None] = mapped_column(String(80))\n    is_active: Mapped[bool]",
            1,
        )
    )
    second = p.inv("migrate.diff", "--name", "second")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    versions = [f.name.split("_")[0] for f in sorted((p.root / "migrations").glob("*.sql"))]
    assert versions == sorted(set(versions)), versions
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0 and applied.stdout.count("applied 2") == len(versions), applied.stdout


def test_declared_constraint_names_work_on_the_migrated_database(local_project):
    """ON CONFLICT ON CONSTRAINT needs the UNIQUE constraint, not just a unique index."""
    p = local_project
    assert p.inv("db.up").returncode == 0
    assert p.inv("migrate.apply").returncode == 0
    psql(
        p,
        "INSERT INTO customers (email, full_name) VALUES ('a@example.com', 'A') "
        "ON CONFLICT ON CONSTRAINT uq_customers_email DO NOTHING",
    )
    psql(
        p,
        "INSERT INTO customers (email, full_name) VALUES ('a@example.com', 'B') "
        "ON CONFLICT ON CONSTRAINT uq_customers_email DO UPDATE SET full_name = excluded.full_name",
    )
    assert psql(p, "SELECT full_name FROM customers") == "B"
    assert (
        psql(
            p,
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE contype = 'p' "
            "AND nspname = 'public' ORDER BY 1",
        )
        == "pk_customers\npk_order_items\npk_orders\npk_products"
    )
    verify = p.inv("migrate.verify")
    assert verify.returncode == 0 and "identical catalogs" in verify.stdout


def atlas_path() -> str:
    from tools.atlas import find_binary

    return find_binary()


def test_verify_catches_a_hand_edited_column_type(local_project):
    p = local_project
    assert p.inv("db.up").returncode == 0
    ok = p.inv("migrate.verify")
    assert ok.returncode == 0 and "identical catalogs" in ok.stdout
    initial = sorted((p.root / "migrations").glob("*_initial.sql"))[0]
    initial.write_text(initial.read_text().replace('"email" character varying(320)', '"email" text', 1))
    assert p.inv("migrate.hash").returncode == 0
    bad = p.inv("migrate.verify")
    assert bad.returncode == 2
    assert "differs: column public.customers.email: type text != character varying(320)" in bad.stdout


def test_rename_hint_followed_keeps_the_data(local_project):
    """A renamed column: the diff names the rename; following the hint keeps the rows' values."""
    p = local_project
    assert p.inv("db.up").returncode == 0
    assert p.inv("migrate.apply").returncode == 0
    psql(p, "INSERT INTO customers (email, full_name) VALUES ('ada@example.com', 'Ada Lovelace')")
    models = p.root / "app/models/customers.py"
    models.write_text(models.read_text().replace("full_name: Mapped[str]", "display_name: Mapped[str]"))
    diff = p.inv("migrate.diff", "--name", "rename_full_name")
    assert diff.returncode == 0, diff.stderr
    statement = 'ALTER TABLE "public"."customers" RENAME COLUMN "full_name" TO "display_name"'
    assert (
        f"possible rename: column public.customers.full_name -> display_name: if it is a rename, use {statement}"
        in diff.stdout
    )
    blocked = p.inv("migrate.apply")
    assert blocked.returncode == 1 and "destructive change(s) pending" in blocked.stderr

    new = next(p.root.glob("migrations/*_rename_full_name.sql"))
    new.write_text(statement + ";\n")
    assert p.inv("migrate.hash").returncode == 0
    verify = p.inv("migrate.verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0, applied.stderr
    assert psql(p, "SELECT display_name FROM customers") == "Ada Lovelace"
    assert p.inv("migrate.check", "--no-base").returncode == 0  # a copy without git history


def _hash(p):
    assert p.inv("migrate.hash").returncode == 0


def test_file_merged_in_below_the_current_version_is_never_silently_skipped(local_project):
    """Atlas v0.13.1 skips a file whose version is below the current one and says "in sync"."""
    p = local_project
    assert p.inv("db.up").returncode == 0
    (p.root / "migrations/29990101000003_later.sql").write_text('CREATE TABLE "public"."later" (id int);\n')
    _hash(p)
    assert p.inv("migrate.apply").returncode == 0
    late = "29990101000002_merged_late.sql"
    (p.root / "migrations" / late).write_text('CREATE TABLE "public"."merged_late" (id int);\n')
    _hash(p)

    status = p.inv("migrate.status")
    assert status.returncode == 1
    assert (
        f"never run {late}: its version is below the current one (inv migrate.renumber --file {late})" in status.stdout
    )
    refused = p.inv("migrate.apply")
    assert refused.returncode == 1
    assert f"would never run: {late}: give them a version above the newest" in refused.stderr
    assert psql(p, "SELECT to_regclass('public.merged_late') IS NULL") == "True"

    renumbered = p.inv("migrate.renumber", "--file", late)
    assert renumbered.returncode == 0, renumbered.stderr
    assert "-> 29990101000004_merged_late.sql" in renumbered.stdout
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0, applied.stderr
    assert "applied 29990101000004_merged_late.sql" in applied.stdout
    assert p.inv("migrate.status").returncode == 0
    bad = p.inv("migrate.renumber", "--file", "29990101000004_merged_late.sql")
    assert bad.returncode == 1 and "already the newest migration" in bad.stderr


def test_check_flags_a_branch_file_below_main_newest(local_project):
    p = local_project
    assert p.inv("db.up").returncode == 0

    def git(*args):
        proc = p.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args])
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "start")
    git("checkout", "-q", "-b", "feature")
    (p.root / "migrations/29990101000002_feature.sql").write_text('CREATE TABLE "public"."feature_t" (id int);\n')
    _hash(p)
    git("add", "-A")
    git("commit", "-qm", "feature file")
    git("checkout", "-q", "main")
    (p.root / "migrations/29990101000003_main.sql").write_text('CREATE TABLE "public"."main_t" (id int);\n')
    _hash(p)
    git("add", "-A")
    git("commit", "-qm", "main file")
    git("checkout", "-q", "feature")
    git("merge", "-q", "-X", "theirs", "main", "-m", "merge main")  # atlas.sum conflicts: take main's, re-hash
    _hash(p)
    check = p.inv("migrate.check")
    assert check.returncode != 0  # 2: the models also lack these tables; the line below is the point
    assert (
        "migrations/29990101000002_feature.sql is below the newest migration of main (29990101000003): "
        "where that is applied it would never run: inv migrate.renumber --file 29990101000002_feature.sql"
    ) in check.stdout + check.stderr
