"""The apply's table lock timeout reaches Atlas's session as a URL run-time parameter."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tools.apply import _atlas_with_table_lock_timeout
from tools.config import Config, Target
from tools.errors import WorkflowError
from tools.pg import validate_duration

URL = "postgres://app:pw-secret@db.example:5432/app?sslmode=require"


def config(url: str) -> Config:
    return Config(root=ROOT, values={"STAGING_DATABASE_URL": url}, env_names=("sqlalchemy", "local", "staging"))


def staging(url: str) -> Target:
    return Target("staging", url, "STAGING_DATABASE_URL", protected=False)


def test_timeout_is_added_in_milliseconds():
    env = _atlas_with_table_lock_timeout(config(URL), staging(URL), "2s").environ
    assert env["STAGING_DATABASE_URL"] == URL + "&lock_timeout=2000"


def test_a_lock_timeout_in_the_url_wins():
    url = URL + "&lock_timeout=250"
    assert _atlas_with_table_lock_timeout(config(url), staging(url), "5s").environ["STAGING_DATABASE_URL"] == url


def test_zero_waits_forever():
    assert _atlas_with_table_lock_timeout(config(URL), staging(URL), "0").environ["STAGING_DATABASE_URL"] == URL


@pytest.mark.parametrize("value", ["5", "-1s", "soon", "1.5s"])
def test_bad_durations_are_refused(value):
    with pytest.raises(WorkflowError, match="invalid table lock timeout"):
        validate_duration(value, allow_zero=True, what="table lock timeout")
