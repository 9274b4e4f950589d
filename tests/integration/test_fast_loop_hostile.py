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


def test_a_replay_of_files_changed_meanwhile_is_never_remembered_for_the_files_as_they_are(project, monkeypatch):
    """A branch switched while the drift check replays, then switched back (`git checkout` and back):
    the replay ran other bytes than its key was made of; remembered, it would hide drift until evicted."""
    import shutil

    from tools import catalog, scratch, snapcache

    config = config_of(project)
    files = sorted((project.root / "migrations").glob("*.sql"))
    last, original = files[-1], files[-1].read_text()
    real = scratch.replay_migrations

    def switched_meanwhile(*args, **kwargs):
        last.write_text(original + "CREATE TABLE from_another_branch (id int);\n")
        add_files(project)  # re-hash, as a checkout brings its atlas.sum
        try:
            return real(*args, **kwargs)
        finally:
            last.write_text(original)
            add_files(project)

    shutil.rmtree(snapcache.cache_dir(config), ignore_errors=True)
    monkeypatch.setattr(scratch, "replay_migrations", switched_meanwhile)
    scratch.history_snapshot(config, len(files))
    monkeypatch.undo()
    remembered = scratch.history_snapshot(config, len(files))
    shutil.rmtree(snapcache.cache_dir(config))
    fresh = scratch.history_snapshot(config, len(files))
    assert catalog.diff(fresh, remembered) == [], "a replay of other bytes remembered under this history's key"


def test_a_lint_of_files_changed_meanwhile_never_hides_a_finding_later(project, monkeypatch):
    """As above for Atlas's lint: a harmless file linted under the key of one Atlas reports on (MF101,
    which refuses an apply) would let that file through on every later apply."""
    import shutil

    from tools import atlaslint, snapcache

    names = add_files(project, UNIQUE)
    pending = project.root / "migrations" / names[0]
    real = atlaslint.fresh_dev

    def switched_meanwhile(config):
        pending.write_text("CREATE TABLE harmless (id int);\n")
        add_files(project)
        return real(config)

    try:
        shutil.rmtree(snapcache.cache_dir(config_of(project)), ignore_errors=True)
        monkeypatch.setattr(atlaslint, "fresh_dev", switched_meanwhile)
        atlaslint.lint(config_of(project), latest=1)
        monkeypatch.undo()
        pending.write_text(UNIQUE)  # switched back
        add_files(project)
        again = atlaslint.lint(config_of(project), latest=1)
        assert "MF101" in {code for _, code, _ in again.findings}, again.finding_lines()
    finally:
        remove(project, names)


def test_a_checkout_moved_with_its_dev_cluster_up_takes_it_down_and_up_again(tmp_path):
    """The dev cluster lives in /dev/shm under a hash of the checkout's path: a checkout moved
    (renamed) while it runs must still stop it (and free its RAM), and start again on DEV_DB_PORT."""
    import dataclasses

    from tests.conftest import make_project
    from tools.config import Config
    from tools.local_stack import LocalStack, throwaway_dir

    p = make_project(tmp_path / "before", "local")
    old_ram = throwaway_dir(p.root)
    if old_ram is None:
        pytest.skip("no writable /dev/shm: the dev cluster moves with .state")
    assert p.inv("db.up").returncode == 0
    # The target's cluster stopped first: its server, moved under its feet, is another matter.
    LocalStack(Config.load(p.root, environ=p.env)).clusters()["db"].stop()
    moved = dataclasses.replace(p, root=tmp_path / "after")
    p.root.rename(moved.root)
    try:
        down = moved.inv("db.down")
        assert down.returncode == 0, down.stderr
        assert not old_ram.exists(), "the moved checkout's dev cluster left running in RAM"
        up = moved.inv("db.up")
        assert up.returncode == 0, up.stderr
    finally:
        moved.inv("db.down", "--volumes")
        moved.root.rename(p.root)
        p.inv("db.down", "--volumes")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_apply_interrupted_while_atlas_lints_in_the_background(project, sig):
    """The lint runs on the dev database during the drift check: a signal then stops Atlas,
    leaves no statement running on the dev server and the dev database as it was."""
    import signal

    from tests.helpers import sql
    from tests.integration.test_fast_loop import user_objects
    from tests.integration.test_interruptions import atlas_processes, finish, interrupted_line, wait_for

    p = project
    dev = p.env["DEV_DATABASE_URL"]
    sleeping = "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(%' AND pid <> pg_backend_pid()"
    names = add_files(
        p, "CREATE TABLE linted (id int);\nSELECT pg_sleep(CASE WHEN current_database() = 'dev' THEN 30 ELSE 0 END);\n"
    )
    try:
        proc = p.start("migrate.apply", new_session=True)
        wait_for(lambda: sql(dev, sleeping, dbname="postgres"), proc, "Atlas's lint runs the file on the dev database")
        proc.send_signal(getattr(signal, sig))
        code, out, err = finish(proc)
        assert code == 128 + getattr(signal, sig), (code, out, err)
        interrupted_line(err, getattr(signal, sig))
        assert not atlas_processes(p.root), "atlas goes on alone"
        assert not sql(dev, sleeping, dbname="postgres"), "the file goes on running on the dev server"
        assert user_objects(dev) == 0, "the dev database is left dirty"
        assert not sql(
            dev, "SELECT datname FROM pg_database WHERE datname LIKE 'schemaflow_scratch_%'", dbname="postgres"
        )
        assert "linted" not in {r[0] for r in sql(p.env["DATABASE_URL"], "SELECT tablename FROM pg_tables")}
    finally:
        remove(p, names)


def _servers_of(datadir) -> list[int]:
    """Pids of PostgreSQL servers started on `datadir` (their command line names it)."""
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and b"-D" in argv and str(datadir).encode() in argv:
            found.append(int(entry.name))
    return found


def test_a_checkout_moved_with_its_target_cluster_up_stops_it(tmp_path):
    import dataclasses
    import os
    import signal

    from tests.conftest import make_project

    p = make_project(tmp_path / "before", "local")
    assert p.inv("db.up").returncode == 0
    old_datadir = p.root / ".state" / "pg" / "db"
    moved = dataclasses.replace(p, root=tmp_path / "after")
    p.root.rename(moved.root)
    try:
        moved.inv("db.down")
        assert not _servers_of(old_datadir), "the target's server left running, its pid file removed"
    finally:
        for pid in _servers_of(old_datadir):  # this test's own server, by its pid
            os.kill(pid, signal.SIGINT)
        moved.inv("db.down", "--volumes")
