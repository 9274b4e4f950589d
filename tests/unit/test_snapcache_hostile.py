"""tools/snapcache.py attacked: every input of a result is in its key, and a cache that cannot be
written (a read-only .state, an entry removed by another run) is never an error."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.unit.test_snapcache import config  # noqa: F401 (the fixture)
from tools import snapcache


def test_the_key_follows_atlas_hcl(config):  # noqa: F811 (the fixture)
    base = snapcache.key(config, 2, "150018", purpose="lint 1")
    hcl = config.root / "atlas.hcl"
    original = hcl.read_text()
    hcl.write_text("lint {\n  data_depend {\n    error = true\n  }\n}\n" + original)
    assert snapcache.key(config, 2, "150018", purpose="lint 1") != base, "a lint rule turned into an error"
    hcl.write_text(original)
    assert snapcache.key(config, 2, "150018", purpose="lint 1") == base


def test_an_entry_removed_meanwhile_is_not_made_again(config, monkeypatch):  # noqa: F811 (the fixture)
    snapcache.store(config, "k", {"n": 1})
    path = snapcache.cache_dir(config) / "k.json"
    real = snapcache.json.loads

    def removed_after_reading(text):  # another run's clean-up, between the read and the touch
        path.unlink()
        return real(text)

    monkeypatch.setattr(snapcache.json, "loads", removed_after_reading)
    assert snapcache.load(config, "k") == {"n": 1}
    assert not path.exists(), "an empty entry was created"


READ = """
import sys
from pathlib import Path
from tools import snapcache
from tools.config import Config
config = Config.load(Path(sys.argv[1]), environ={"PATH": "/usr/bin:/bin"})
assert snapcache.load(config, "k") == {"n": 1}
snapcache.store(config, "other", {"n": 2})
print("ok")
"""


def test_a_read_only_cache_is_read_and_never_an_error(config):  # noqa: F811 (the fixture)
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespace for a read-only bind mount")
    snapcache.store(config, "k", {"n": 1})
    state = config.root / ".state"
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
    proc = subprocess.run(
        [unshare, "-rm", "sh", "-c", script, "sh", str(state), sys.executable, "-c", READ, str(config.root)],
        capture_output=True,
        text=True,
        cwd=snapcache.Path(snapcache.__file__).parents[1],
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-800:]
