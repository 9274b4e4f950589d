"""The inner loop's speed-ups keep every guarantee: `--timings` tells where the time went, the
dev cluster of the local backend lives in RAM, the dev database is left clean, and a diff's
checks on copies of one replayed history give the same verified file."""

from __future__ import annotations

import re

import pytest

from tests.conftest import running_project
from tests.helpers import sql
from tests.integration.test_workflow import add_nickname

pytestmark = pytest.mark.integration

STEP = re.compile(r"^  (?P<label>.+?)\s+(?P<ms>\d+) ms\s+[\d.]+%(?: x(?P<count>\d+))?$")


def steps(stderr: str) -> tuple[int, dict[str, tuple[int, int]]]:
    lines = stderr.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("timings: "))
    total = int(re.match(r"timings: (\d+) ms in all", lines[head]).group(1))
    out = {}
    for ln in lines[head + 1 :]:
        m = STEP.match(ln)
        if m:
            out[m["label"]] = (int(m["ms"]), int(m["count"] or 1))
    return total, out


def user_objects(url: str) -> int:
    from tools.ownership import _INVENTORY

    return sum(n for _, n in sql(url, _INVENTORY))


def test_diff_timings_name_every_step_and_add_up(tmp_path):
    with running_project(tmp_path, apply=True) as p:
        add_nickname(p)
        diff = p.inv("migrate.diff", "--name", "add_nickname", "--timings")
        assert diff.returncode == 0, diff.stderr
        assert "new migration: " in diff.stdout
        total, found = steps(diff.stderr)
        for label in (
            "start-up (interpreter, invoke, imports)",
            "schema dump (host)",
            "atlas migrate diff",
            "atlas migrate apply",
            "atlas migrate lint",
            "dev database recreated",
            "scratch databases created",
            "models built and read (schema.sql, catalogs, graph)",
            "other (Python between the steps)",
        ):
            assert label in found, (label, diff.stderr)
        assert abs(sum(ms for ms, _ in found.values()) - total) <= len(found), diff.stderr
        # one replay of the history; the checks of the new file run on copies of it
        assert found["scratch databases created"][1] == 2, diff.stderr
        # the dev database is left clean (the guide's plain atlas commands need it so)
        assert user_objects(p.env["DEV_DATABASE_URL"]) == 0
        assert not sql(
            p.env["DEV_DATABASE_URL"], "SELECT datname FROM pg_database WHERE datname LIKE 'schemaflow_scratch_%'"
        )

        again = p.inv("migrate.diff", "--name", "again", extra_env={"SCHEMAFLOW_TIMINGS": "1"})
        assert again.returncode == 0 and "no changes" in again.stdout, again.stderr
        assert steps(again.stderr)[0] > 0
        quiet = p.inv("migrate.status")
        assert "timings:" not in quiet.stderr + quiet.stdout


def test_the_dev_cluster_lives_in_ram_and_an_old_one_on_disk_is_retired(tmp_path):
    from tools.config import Config
    from tools.local_stack import LocalStack, throwaway_dir
    from tools.pgcluster import Cluster

    with running_project(tmp_path) as p:
        ram = throwaway_dir(p.root)
        if ram is None:  # no writable /dev/shm: the dev cluster stays on disk
            assert (p.root / ".state/pg/dev/PG_VERSION").exists()
            return
        assert (ram / "PG_VERSION").exists(), "the dev cluster is not in RAM"
        assert not (p.root / ".state/pg/dev").exists()
        assert p.inv("db.down").returncode == 0
        assert not ram.parent.exists(), "db.down leaves its folder in /dev/shm"

        # an older version's dev cluster on disk, running on DEV_DB_PORT: db.up retires it
        stack = LocalStack(Config.load(p.root, environ=p.env))
        old = Cluster(p.root / ".state/pg/dev", int(p.env["DEV_DB_PORT"]), "app", p.env["POSTGRES_PASSWORD"])
        old.start()
        try:
            up = p.inv("db.up")
            assert up.returncode == 0, up.stderr
            assert not (p.root / ".state/pg/dev").exists() and not old.running()
            assert stack.clusters()["dev-db"].running()
            diff = p.inv("migrate.diff", "--name", "noop")
            assert diff.returncode == 0 and "no changes" in diff.stdout, diff.stderr
        finally:
            old.destroy()


def test_a_remembered_history_never_hides_drift_and_an_edited_file_is_replayed_again(tmp_path):
    with running_project(tmp_path, apply=True) as p:
        first = p.inv("migrate.drift", "--env", "local", extra_env={"SCHEMAFLOW_TIMINGS": "1"})
        assert first.returncode == 0, first.stderr
        assert "atlas migrate apply" in steps(first.stderr)[1], "the first drift check replays the history"
        second = p.inv("migrate.drift", "--env", "local", extra_env={"SCHEMAFLOW_TIMINGS": "1"})
        assert second.returncode == 0 and "atlas migrate apply" not in steps(second.stderr)[1], second.stderr

        sql(p.env["DATABASE_URL"], "ALTER TABLE customers ADD COLUMN sneaky int")  # by hand, on the target
        drifted = p.inv("migrate.drift", "--env", "local")
        assert drifted.returncode == 2 and "sneaky" in drifted.stdout, drifted.stdout
        sql(p.env["DATABASE_URL"], "ALTER TABLE customers DROP COLUMN sneaky")

        # an applied file edited afterwards: its history is replayed again (and differs from the target)
        oldest = sorted((p.root / "migrations").glob("*.sql"))[0]
        oldest.write_text(oldest.read_text() + "\nCREATE TABLE edited_later (id int);\n")
        assert p.inv("migrate.hash").returncode == 0
        edited = p.inv("migrate.drift", "--env", "local", extra_env={"SCHEMAFLOW_TIMINGS": "1"})
        assert "atlas migrate apply" in steps(edited.stderr)[1], edited.stderr
        assert edited.returncode == 2 and "edited_later" in edited.stdout, edited.stdout


def test_a_first_migration_written_twice_from_a_remembered_empty_history(tmp_path):
    """An empty history's catalogs are remembered too; the next first diff must not replay '0' files."""
    from tests.conftest import make_project

    p = make_project(tmp_path, "local", migrations=False)
    try:
        assert p.inv("db.up").returncode == 0
        for attempt in ("first", "again"):
            diff = p.inv("migrate.diff", "--name", "initial")
            assert diff.returncode == 0, (attempt, diff.stderr)
            assert "new migration: " in diff.stdout, (attempt, diff.stdout)
            for path in (p.root / "migrations").iterdir():
                path.unlink()
    finally:
        p.inv("db.down", "--volumes")
