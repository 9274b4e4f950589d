"""Config rules: variable names, URL validation, masking, precedence, stack choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.config import Config, env_var_for
from tools.errors import WorkflowError
from tools.masking import mask

HCL = 'env "sqlalchemy" {\n}\nenv "local" {\n}\nenv "staging" {\n}\nenv "production" {\n}\nenv "qa-eu" {\n}\n'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "atlas.hcl").write_text(HCL)
    return tmp_path


def load(root: Path, environ: dict | None = None, dotenv: str = "") -> Config:
    if dotenv:
        (root / ".env").write_text(dotenv)
    return Config.load(root, environ=environ or {})


@pytest.mark.parametrize(
    "env,var",
    [
        ("local", "DATABASE_URL"),
        ("sqlalchemy", "DATABASE_URL"),
        ("staging", "STAGING_DATABASE_URL"),
        ("production", "PRODUCTION_DATABASE_URL"),
        ("qa-eu", "QA_EU_DATABASE_URL"),
    ],
    ids=lambda v: v,
)
def test_env_variable_rule(env, var):
    assert env_var_for(env) == var


def test_env_names_come_from_atlas_hcl(root):
    assert load(root).env_names == ["sqlalchemy", "local", "staging", "production", "qa-eu"]


def test_unknown_env_names_the_known_ones(root):
    with pytest.raises(WorkflowError) as err:
        load(root).url_for("prod")
    assert "unknown environment 'prod'" in str(err.value)
    assert "local, staging, production, qa-eu" in str(err.value)


def test_unset_variable_is_named(root):
    with pytest.raises(WorkflowError) as err:
        load(root).url_for("staging")
    assert str(err.value).startswith("STAGING_DATABASE_URL is not set")


@pytest.mark.parametrize(
    "value,fragment",
    [
        ("mysql://u:p@h/db", "must be a postgres:// URL"),
        ("not a url", "must be a postgres:// URL"),
        ("postgres://u:p@/db", "has no host"),
        ("postgres://u:p@h:5432", "names no database"),
        ("postgres://u:p@h:99999/db", "not a valid URL"),
        ("postgres://u:p@h/db?search_path=public", "sets search_path, which would switch Atlas to schema scope"),
    ],
    ids=["mysql", "garbage", "no-host", "no-db", "bad-port", "schema-scope"],
)
def test_malformed_urls_are_rejected_without_echoing_them(root, value, fragment):
    with pytest.raises(WorkflowError) as err:
        load(root, {"STAGING_DATABASE_URL": value}).url_for("staging")
    assert fragment in str(err.value)
    assert ":p@" not in str(err.value)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_urls_are_normalised_for_atlas(root, scheme):
    url = load(root, {"STAGING_DATABASE_URL": f"{scheme}://u:secret@h:5432/db?sslmode=disable"}).url_for("staging")
    assert url == "postgres://u:secret@h:5432/db?sslmode=disable"


def test_real_environment_wins_over_dotenv(root):
    config = load(
        root, {"DATABASE_URL": "postgres://real@h/db"}, dotenv="DATABASE_URL=postgres://file@h/db\nDB_PORT=7\n"
    )
    assert config.url_for("local") == "postgres://real@h/db"
    assert config.get("DB_PORT") == "7"


def test_dotenv_interpolates(root):
    config = load(root, dotenv="POSTGRES_PASSWORD=s3cr3t\nDATABASE_URL=postgres://app:${POSTGRES_PASSWORD}@h/db\n")
    assert config.url_for("local") == "postgres://app:s3cr3t@h/db"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("postgres://app:hunter22@127.0.0.1:5433/app", "postgres://app:****@127.0.0.1:5433/app"),
        ("dial postgres://u:p%40ss@h/db failed", "dial postgres://u:****@h/db failed"),
        ("postgres://nopass@h/db", "postgres://nopass@h/db"),
        (
            "two: postgres://a:x1@h/d and postgresql://b:y2@h/d",
            "two: postgres://a:****@h/d and postgresql://b:****@h/d",
        ),
    ],
    ids=["plain", "encoded", "no-password", "two-urls"],
)
def test_mask(text, expected):
    assert mask(text) == expected


def test_mask_scrubs_known_secrets_anywhere(root):
    config = load(root, {"POSTGRES_PASSWORD": "topsecret", "STAGING_DATABASE_URL": "postgres://u:stagepw@h/db"})
    assert config.mask("pw topsecret and stagepw") == "pw **** and ****"


def test_child_env_carries_normalised_urls(root):
    env = load(root, {"DATABASE_URL": "postgresql://u:p@h/db"}).child_environ()
    assert env["DATABASE_URL"] == "postgres://u:p@h/db"
    assert env["ATLAS_NO_UPDATE_NOTIFIER"] == "1"


@pytest.mark.parametrize(
    "raw,env,protected",
    [
        (None, "production", True),
        (None, "staging", False),
        ("staging,production", "staging", True),
        ("", "production", False),
    ],
    ids=["default-prod", "default-staging", "configured", "none"],
)
def test_protected_envs(root, raw, env, protected):
    environ = {} if raw is None else {"PROTECTED_ENVS": raw}
    assert load(root, environ).is_protected(env) is protected


@pytest.mark.parametrize(
    "stack,docker,expected",
    [
        ("", True, "compose"),
        ("", False, "local"),
        ("local", True, "local"),
        ("compose", False, "compose"),
    ],
    ids=["auto-docker", "auto-no-docker", "forced-local", "forced-compose"],
)
def test_stack_choice(root, monkeypatch, stack, docker, expected):
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: "/usr/bin/docker")
    name, why = load(root, {"STACK": stack}).stack_choice(lambda: docker)
    assert name == expected and why


def test_unknown_stack_is_an_error(root):
    with pytest.raises(WorkflowError, match="STACK='kube'"):
        load(root, {"STACK": "kube"}).stack_choice(lambda: True)
