"""setup and doctor in a checkout's every state: leftover containers, a running Compose stack,
a world-readable .env, the app image tag, Alembic's primary key under any name."""

from __future__ import annotations

import subprocess
from pathlib import Path
from unittest import mock

import pytest

from tools import doctor, envfile
from tools import setup as setup_mod
from tools.catalog import Difference
from tools.compose_stack import app_image
from tools.config import Config
from tools.errors import WorkflowError
from tools.fidelity import is_alembic_bookkeeping

ROOT = Path(__file__).resolve().parents[2]


def test_container_query_filters_on_this_checkouts_working_dir(tmp_path):
    from tools import docker_setup

    out = subprocess.CompletedProcess(
        [], 0, stdout="shop-1a2b3c\tshop-1a2b3c-db-1\nshop-1a2b3c\tshop-1a2b3c-app-1\n", stderr=""
    )
    with (
        mock.patch.object(docker_setup.shutil, "which", return_value="/usr/bin/docker"),
        mock.patch.object(docker_setup.subprocess, "run", return_value=out) as run,
    ):
        found = docker_setup.checkout_containers(tmp_path, running_only=True)
    assert found == {"shop-1a2b3c": ["shop-1a2b3c-app-1", "shop-1a2b3c-db-1"]}
    argv = run.call_args.args[0]
    assert f"label=com.docker.compose.project.working_dir={tmp_path.resolve()}" in argv
    assert "status=running" in argv and "--all" in argv


def test_no_docker_means_no_containers(tmp_path):
    from tools import docker_setup

    with mock.patch.object(docker_setup.shutil, "which", return_value=None):
        assert docker_setup.checkout_containers(tmp_path) == {}


def test_new_dotenv_is_refused_while_containers_of_the_checkout_exist(tmp_path):
    with (
        mock.patch("tools.docker_setup.checkout_containers", return_value={"shop-1a2b3c": ["shop-1a2b3c-db-1"]}),
        pytest.raises(WorkflowError) as err,
    ):
        setup_mod.setup(tmp_path, lambda m: None)
    text = str(err.value)
    assert text.startswith(".env is missing but this checkout has containers of Compose project shop-1a2b3c")
    assert "COMPOSE_PROJECT_NAME=shop-1a2b3c" in text and "docker compose -p shop-1a2b3c down --volumes" in text
    assert not (tmp_path / ".env").exists()


def test_no_docker_setup_stops_while_the_checkouts_stack_runs(tmp_path):
    config = Config(root=tmp_path, values={})
    with (
        mock.patch("tools.docker_setup.checkout_containers", return_value={"shop-1a2b3c": ["shop-1a2b3c-db-1"]}),
        pytest.raises(WorkflowError) as err,
    ):
        setup_mod.stop_checkout_stack(config, lambda m: None, stop=False)
    assert "this checkout's Compose stack (shop-1a2b3c) is running" in str(err.value) and "--stop-compose" in str(
        err.value
    )


def test_no_docker_setup_stops_the_stack_when_asked(tmp_path):
    config = Config(root=tmp_path, values={"POSTGRES_PASSWORD": "pw"})
    done = subprocess.CompletedProcess([], 0, stdout="", stderr="")
    lines = []
    with (
        mock.patch("tools.docker_setup.checkout_containers", return_value={"shop-1a2b3c": ["shop-1a2b3c-db-1"]}),
        mock.patch("tools.compose_stack.ComposeStack._run", return_value=done) as run,
    ):
        setup_mod.stop_checkout_stack(config, lines.append, stop=True)
    assert run.call_args.args == ("-p", "shop-1a2b3c", "down", "--remove-orphans")
    assert lines == ["stopped this checkout's Compose stack (shop-1a2b3c); its data volume is kept"]


def test_setup_tightens_a_world_readable_dotenv_and_doctor_warns(tmp_path):
    env = tmp_path / ".env"
    env.write_text("POSTGRES_PASSWORD=pw\n")
    env.chmod(0o644)
    check = doctor.dotenv_check(tmp_path)
    assert check.ok and check.warning and "readable by other users (mode 644)" in check.detail
    lines = []
    envfile.tighten_dotenv(tmp_path, lines.append)
    assert env.stat().st_mode & 0o777 == 0o600 and len(lines) == 1
    check = doctor.dotenv_check(tmp_path)
    assert check.ok and not check.warning


def test_doctor_shows_the_resolved_ports(tmp_path):
    (tmp_path / "atlas.hcl").write_text('env "local" {\n}\n')
    (tmp_path / ".env").write_text("DB_PORT=\nDEV_DB_PORT=6001\nDATABASE_URL=postgres://u:p@127.0.0.1:${DB_PORT}/app\n")
    check = doctor.ports_check(Config.load(tmp_path, environ={}))
    assert check.ok
    assert check.detail == "DB_PORT=5433 (default), DEV_DB_PORT=6001, DATABASE_URL -> 5433"


def test_empty_password_is_named_whatever_the_stack_state():
    from tools.compose_stack import ComposeStack
    from tools.stack_common import ServiceState

    stack = ComposeStack(Config(root=ROOT, values={"POSTGRES_PASSWORD": ""}))
    running = [ServiceState(s, "running (healthy)") for s in ("dev-db", "db", "app")]
    with mock.patch.object(ComposeStack, "states", return_value=running), pytest.raises(WorkflowError) as err:
        stack.up(lambda m: None)
    assert str(err.value).startswith("POSTGRES_PASSWORD is not set (empty)")


def _copy(tmp_path: Path, name: str, requirements: str) -> Config:
    root = tmp_path / name
    root.mkdir()
    (root / "Dockerfile").write_bytes((ROOT / "Dockerfile").read_bytes())
    (root / "requirements-app.txt").write_text(requirements)
    return Config(root=root, values={})


def test_app_image_tag_follows_what_the_image_is_built_from(tmp_path):
    a = _copy(tmp_path, "a", "sqlalchemy==2.0.30\n")
    b = _copy(tmp_path, "b", "sqlalchemy==2.0.36\n")
    c = _copy(tmp_path, "c", "sqlalchemy==2.0.30\n")
    assert app_image(a) != app_image(b) and app_image(a) == app_image(c)
    assert app_image(a).startswith("schemaflow-app:")
    assert app_image(Config(root=a.root, values={"PYTHON_IMAGE": "other:3.11"})) != app_image(a)
    assert app_image(Config(root=a.root, values={"APP_IMAGE": "mine:1"})) == "mine:1"


def test_compose_passes_the_app_image_tag(tmp_path):
    from tools.compose_stack import ComposeStack

    config = _copy(tmp_path, "a", "x\n")
    with mock.patch("tools.compose_stack.subprocess.run") as run:
        ComposeStack(config)._run("build", "app")
    assert run.call_args.kwargs["env"]["APP_IMAGE"] == app_image(config)


@pytest.mark.parametrize(
    "difference",
    [
        Difference("index", "public.alembic_version_pkey", None, None, {"table": "alembic_version", "definition": "x"}),
        Difference("index", "legacy.alembic_version_pkc", None, None, {"table": "alembic_version", "definition": "x"}),
        Difference("constraint", "public.alembic_version.alembic_version_pkey", None, None, {"type": "p"}),
        Difference("constraint", "public.alembic_version.my_pk", None, None, {"type": "p"}),
        Difference("table", "public.alembic_version", None, None, {"kind": "r"}),
        Difference("column", "public.alembic_version.version_num", None, None, {"type": "varchar(32)"}),
    ],
    ids=["pkey-index", "pkc-index-other-schema", "pkey-constraint", "any-name-constraint", "table", "column"],
)
def test_alembic_bookkeeping_whatever_the_names(difference):
    assert is_alembic_bookkeeping(difference)


@pytest.mark.parametrize(
    "difference",
    [
        Difference("index", "public.alembic_version_pkey", None, None, {"table": "orders", "definition": "x"}),
        Difference("index", "public.orders_pkey", None, {"table": "orders"}, None),
        Difference("constraint", "public.orders.alembic_version_pkc", None, None, {"type": "p"}),
        Difference("table", "public.alembic_versions", None, None, {"kind": "r"}),
    ],
    ids=["index-named-like-it-on-another-table", "other-index", "constraint-of-another-table", "similar-table"],
)
def test_other_objects_are_compared(difference):
    assert not is_alembic_bookkeeping(difference)


def test_stop_compose_without_no_docker_is_refused_before_anything(tmp_path):
    from tools.errors import WorkflowError
    from tools.setup import setup

    with pytest.raises(WorkflowError, match="--stop-compose only goes with --no-docker"):
        setup(tmp_path, lambda line: None, docker=None, stop_compose=True)
    assert list(tmp_path.iterdir()) == []  # no .env written, nothing done
