"""setup facing this checkout's containers on a real Docker engine (labels as Compose sets them).

The containers are made with `docker create` / `docker run` and Compose's labels, which is all
setup looks at: no stack is built.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

import pytest

from tests.conftest import atlas_binary, make_project, require

pytestmark = pytest.mark.e2e


def _image() -> str | None:
    out = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
    ).stdout.split()
    return next((i for i in out if i.startswith(("schemaflow-local/postgres", "postgres:"))), None)


@pytest.fixture
def containers():
    from tools.compose_stack import docker_answers

    require(docker_answers(), "no Docker engine answers (run inv setup)")
    image = _image()
    require(image is not None, "no PostgreSQL image (run inv setup)")
    made = []

    def make(root, project: str, running: bool, publish: int | None = None) -> str:
        name = f"{project}-db-1"
        labels = {
            "com.docker.compose.project": project,
            "com.docker.compose.project.working_dir": str(root.resolve()),
            "com.docker.compose.service": "db",
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.container-number": "1",
            "com.docker.compose.version": "2",
            "com.docker.compose.config-hash": "0",
        }
        argv = ["docker", "run", "-d", "--init"] if running else ["docker", "create"]
        if publish is not None:
            argv += ["-p", f"127.0.0.1:{publish}:5432"]
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        proc = subprocess.run(
            argv + ["--name", name, "--entrypoint", "sleep", image, "300"], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        made.append(name)
        return name

    yield make
    for name in made:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def _exists(name: str) -> bool:
    return subprocess.run(["docker", "inspect", name], capture_output=True).returncode == 0


def test_setup_writes_no_new_dotenv_beside_this_checkouts_containers(tmp_path, containers):
    p = make_project(tmp_path, "local")
    (p.root / ".env").unlink()
    project = "shoptest" + secrets.token_hex(4)
    name = containers(p.root, project, running=False)
    proc = p.inv("setup", "--no-docker")
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and f"containers of Compose project {project} ({name})" in errors[0]
    assert f"docker compose -p {project} down --volumes" in errors[0]
    assert not (p.root / ".env").exists() and _exists(name)


def test_no_docker_setup_stops_for_the_running_stack_or_stops_it_on_request(tmp_path, containers):
    require(atlas_binary() is not None, "the Atlas CLI is not installed (run inv setup)")
    p = make_project(tmp_path, "local")
    (p.root / ".env").write_text((p.root / ".env").read_text().replace("STACK=local\n", "STACK=\n"))
    name = containers(p.root, p.env["COMPOSE_PROJECT_NAME"], running=True)
    env = {"STACK": ""}
    refused = p.inv("setup", "--no-docker", extra_env=env)
    assert refused.returncode == 1
    assert f"this checkout's Compose stack ({p.env['COMPOSE_PROJECT_NAME']}) is running" in refused.stderr
    assert "STACK=local" not in (p.root / ".env").read_text() and _exists(name)
    done = p.inv("setup", "--no-docker", "--stop-compose", extra_env=env)
    assert done.returncode == 0, done.stderr
    assert f"stopped this checkout's Compose stack ({p.env['COMPOSE_PROJECT_NAME']})" in done.stderr
    assert not _exists(name) and "STACK=local" in (p.root / ".env").read_text()


def test_a_port_held_by_another_checkouts_stack_is_named_with_the_way_to_stop_it(tmp_path, containers):
    """The daemon's own refusal, on a real engine: the line names the other stack and its checkout."""
    from tests.conftest import free_port
    from tools.compose_stack import ComposeStack
    from tools.config import Config

    other = tmp_path / "other checkout"
    other.mkdir()
    port = free_port()
    project = "shoptest" + secrets.token_hex(4)
    name = containers(other, project, running=True, publish=port)
    image = _image()
    refused = subprocess.run(
        ["docker", "run", "--rm", "-d", "-p", f"127.0.0.1:{port}:5432", "--entrypoint", "true", image],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "port is already allocated" in refused.stderr, refused.stderr
    config = Config(root=tmp_path, values={"POSTGRES_PASSWORD": "x"}, env_names=("local",))
    line = str(ComposeStack(config)._fail(refused, "docker compose up"))
    assert f"port {port} on 127.0.0.1 is taken by {name}, Compose project {project} of the checkout" in line
    assert f"cd '{other.resolve()}' && inv db.down" in line


def test_the_stack_never_comes_back_with_the_engine(tmp_path):
    """A stack restarted by the engine holds its ports against the next checkout (or CI run)."""
    import json

    require(shutil.which("docker") is not None, "no docker CLI (run inv setup)")
    p = make_project(tmp_path, "local")
    proc = subprocess.run(
        ["docker", "compose", "--project-directory", str(p.root), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, **p.env},
        cwd=p.root,
    )
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    assert set(services) == {"dev-db", "db", "app"}
    assert {name: s.get("restart", "no") for name, s in services.items()} == dict.fromkeys(services, "no")
