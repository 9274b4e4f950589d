"""On the Compose stack: exit statuses are true, and a failing model is a failed dump."""

from __future__ import annotations

import pytest

from tests.conftest import atlas_binary, make_project, require
from tests.e2e.test_backends import docker_ready

pytestmark = pytest.mark.e2e


def test_compose_exit_status_and_a_failing_model(tmp_path):
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    require(docker_ready(), "no Docker engine with the Compose plugin (run inv setup, or STACK=local)")
    p = make_project(tmp_path, "compose")
    try:
        up = p.inv("db.up", timeout=900)
        assert up.returncode == 0, up.stderr
        exec_ = p.run(["docker", "compose", "exec", "-T", "app", "sh", "-c", "exit 3"])
        assert exec_.returncode == 3, exec_.stderr

        schema = (p.root / "schema.sql").read_bytes()
        with open(p.root / "app/models/customers.py", "a") as f:
            f.write('\nprint("CREATE TABLE printed_by_a_model (x int);")\nraise RuntimeError("the model broke")\n')
        for args in (("schema.dump",), ("schema.dump", "--check")):
            proc = p.inv(*args)
            assert proc.returncode == 1, proc.stdout + proc.stderr
            assert "error: the models failed to load: RuntimeError: the model broke" in proc.stderr
            assert "app/models/customers.py, line" in proc.stderr
            assert (p.root / "schema.sql").read_bytes() == schema
    finally:
        p.inv("db.down", "--volumes", timeout=300)
