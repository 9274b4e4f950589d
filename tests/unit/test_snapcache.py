"""tools/snapcache.py: the key changes with every input of a replay; a bad entry is a miss."""

from __future__ import annotations

import json

import pytest

from tools import snapcache
from tools.config import Config


@pytest.fixture
def config(tmp_path):
    import shutil

    from tests.conftest import ROOT

    shutil.copy(ROOT / "atlas.hcl", tmp_path / "atlas.hcl")
    (tmp_path / "migrations").mkdir()
    for i in range(3):
        (tmp_path / "migrations" / f"2026010100000{i}_m{i}.sql").write_text(f"CREATE TABLE t{i} (id int);\n")
    return Config.load(tmp_path, environ={"PATH": "/usr/bin:/bin"})


def test_the_key_follows_every_input(config):
    base = snapcache.key(config, 2, "150018")
    assert base and base == snapcache.key(config, 2, "150018")
    assert snapcache.key(config, 3, "150018") != base  # another amount
    assert snapcache.key(config, 2, "160004") != base  # another server
    assert snapcache.key(config, 2, "150018", purpose="lint 1") != base  # another purpose
    assert snapcache.key(config, 4, "150018") is None  # fewer files than asked for
    third = config.root / "migrations" / "20260101000002_m2.sql"
    third.write_text("CREATE TABLE changed (id int);\n")
    assert snapcache.key(config, 2, "150018") == base, "a file after the first two does not count"
    first = config.root / "migrations" / "20260101000000_m0.sql"
    first.write_text("CREATE TABLE t0 (id bigint);\n")
    assert snapcache.key(config, 2, "150018") != base  # an edit
    first.write_text("CREATE TABLE t0 (id int);\n")
    assert snapcache.key(config, 2, "150018") == base
    first.rename(first.with_name("20260101000000_renamed.sql"))
    assert snapcache.key(config, 2, "150018") != base  # a rename


def test_store_load_and_bad_entries(config):
    name = snapcache.key(config, 1, "150018")
    snap = {"table": {"public.t0": {"kind": "r", "columns": ["id"]}}}
    assert snapcache.load(config, name) is None
    snapcache.store(config, name, snap)
    assert snapcache.load(config, name) == snap
    (snapcache.cache_dir(config) / f"{name}.json").write_text("{not json")
    assert snapcache.load(config, name) is None
    (snapcache.cache_dir(config) / f"{name}.json").write_text(json.dumps({"format": "0", "snapshot": snap}))
    assert snapcache.load(config, name) is None, "another format is a miss"
    snapcache.store(config, name, snap)
    snapcache.store(config, name, {"table": {"x": {"pair": (1, 2)}}})  # JSON gives a tuple back as a list
    assert snapcache.load(config, name) == snap, "a snapshot JSON does not give back exactly is not kept"
    assert snapcache.load(config, None) is None


def test_only_the_newest_entries_are_kept(config, monkeypatch):
    monkeypatch.setattr(snapcache, "KEEP", 3)
    for i in range(6):
        snapcache.store(config, f"k{i}", {"n": i})
    assert len(list(snapcache.cache_dir(config).glob("*.json"))) == 3


def test_a_write_left_by_a_killed_run_is_cleaned_once_old(config):
    import os
    import time

    folder = snapcache.cache_dir(config)
    folder.mkdir(parents=True)
    old, fresh = folder / ".k.1.tmp", folder / ".k.2.tmp"
    old.write_text("{")
    fresh.write_text("{")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    snapcache.store(config, "k", {"n": 1})
    assert not old.exists() and fresh.exists(), "an hour-old partial write is removed; one being written stays"
