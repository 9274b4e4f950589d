"""One home for each default; URLs with an empty part refused; .env required."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.config import DEFAULTS, Config, require_dotenv
from tools.errors import WorkflowError
from tools.urls import parse_url

ROOT = Path(__file__).resolve().parents[2]
OLD_URL = "DATABASE_URL=postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@127.0.0.1:${DB_PORT}/${POSTGRES_DB}?sslmode=disable\n"
NEW_URL = "DATABASE_URL=postgres://${POSTGRES_USER:-app}:${POSTGRES_PASSWORD}@127.0.0.1:${DB_PORT:-5433}/${POSTGRES_DB:-app}?sslmode=disable\n"


def load(tmp_path: Path, dotenv: str, environ: dict | None = None) -> Config:
    (tmp_path / "atlas.hcl").write_text('env "local" {\n}\n')
    (tmp_path / ".env").write_text(dotenv)
    return Config.load(tmp_path, environ=environ or {})


@pytest.mark.parametrize(
    "dotenv",
    [
        "POSTGRES_PASSWORD=pw\n" + OLD_URL,
        "POSTGRES_PASSWORD=pw\nDB_PORT=\n" + OLD_URL,
        "POSTGRES_PASSWORD=pw\nDB_PORT=\n" + NEW_URL,
        "POSTGRES_PASSWORD=pw\n" + NEW_URL,
        "POSTGRES_PASSWORD=pw\nDB_PORT=  \nPOSTGRES_USER=\n" + OLD_URL,
    ],
    ids=["missing", "empty", "empty-example", "missing-example", "blank-user"],
)
def test_missing_or_empty_port_resolves_to_the_default(tmp_path, dotenv):
    config = load(tmp_path, dotenv)
    assert config.url_for("local") == "postgres://app:pw@127.0.0.1:5433/app?sslmode=disable"
    assert config.port("DB_PORT") == 5433 and config.port("DEV_DB_PORT") == 5434


def test_recorded_and_real_ports_win(tmp_path):
    assert (
        load(tmp_path, "POSTGRES_PASSWORD=pw\nDB_PORT=5544\n" + NEW_URL)
        .url_for("local")
        .endswith(":5544/app?sslmode=disable")
    )
    config = load(tmp_path, "POSTGRES_PASSWORD=pw\nDB_PORT=5544\n" + NEW_URL, environ={"DB_PORT": "6001"})
    assert config.port("DB_PORT") == 6001 and ":6001/app" in config.url_for("local")  # as Compose interpolates


@pytest.mark.parametrize(
    "value,fragment",
    [
        ("postgres://u:p@h:/db", "DATABASE_URL has an empty port (host:/db)"),
        ("postgres://u:p@:5432/db", "DATABASE_URL has no host"),
        ("postgres://u:p@h:5432/", "DATABASE_URL names no database"),
    ],
    ids=["empty-port", "empty-host", "empty-db"],
)
def test_url_with_an_empty_part_is_refused(value, fragment):
    with pytest.raises(WorkflowError) as err:
        parse_url(value, "DATABASE_URL")
    assert str(err.value).startswith(fragment) and ":p@" not in str(err.value)


def test_a_url_without_a_port_keeps_libpqs_default():
    assert parse_url("postgres://u:p@db.example.com/app", "X").port is None


def test_compose_and_env_example_use_the_same_defaults():
    compose = (ROOT / "compose.yaml").read_text()
    example = (ROOT / ".env.example").read_text()
    for variable, default in DEFAULTS.items():
        for found in re.findall(r"\$\{" + variable + r":-([^}]*)\}", compose + example):
            assert found == default, f"{variable} defaults to {found} somewhere, {default} in tools/config.py"
    assert (
        f"${{DB_PORT:-{DEFAULTS['DB_PORT']}}}" in compose and f"${{DEV_DB_PORT:-{DEFAULTS['DEV_DB_PORT']}}}" in compose
    )
    assert (
        f"${{DB_PORT:-{DEFAULTS['DB_PORT']}}}" in example and f"${{DEV_DB_PORT:-{DEFAULTS['DEV_DB_PORT']}}}" in example
    )


def test_env_example_resolves_to_the_defaults(tmp_path):
    text = (ROOT / ".env.example").read_text().replace("POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=pw\n")
    config = load(tmp_path, text)
    assert config.url_for("local") == "postgres://app:pw@127.0.0.1:5433/app?sslmode=disable"
    assert config.dev_url() == "postgres://app:pw@127.0.0.1:5434/dev?sslmode=disable"


def test_dotenv_is_required(tmp_path):
    with pytest.raises(WorkflowError) as err:
        require_dotenv(tmp_path)
    assert str(err.value) == f".env not found in {tmp_path.name}/: run inv setup (it writes .env from .env.example)"
    (tmp_path / ".env").write_text("")
    assert require_dotenv(tmp_path) == tmp_path / ".env"
