"""No password reaches the screen, whatever it holds, through any command that prints URLs or errors.

A role with each nasty password is made on the project's cluster; each command runs with a URL
the server accepts (percent-encoded), with the raw URL pointing at a closed port, and with a
wrong password, and nothing printed may hold the password in any form.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

import pytest

from tests import helpers
from tests.conftest import PASSWORDS, running_project

pytestmark = pytest.mark.integration

NASTY = {
    "raw-percent": "Secr3t%zzTop",
    "space": "pa ss",
    "quote": 'pa"ss',
    "at-signs": "p@ss@word",
    "encoded-looking": "%41%42",
    "non-ascii": "Ünï",
}
PASSWORDS.update(NASTY.values())


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("masking")) as p:
        yield p


def sql(p, *statements):
    helpers.sql(p.env["DATABASE_URL"], *statements)


def forms(pw: str) -> list[str]:
    return [pw, quote(pw, safe=""), pw.replace('"', '\\"')]


COMMANDS = [
    ("migrate.status", "--env", "staging"),
    ("migrate.status", "--all"),
    ("migrate.apply", "--env", "staging", "--yes"),
    ("migrate.apply", "--env", "production", "--yes"),
    ("migrate.baseline", "--env", "staging", "--dry-run"),
    ("migrate.status",),
    ("migrate.apply",),
    ("doctor",),
    ("db.status",),
]


@pytest.mark.parametrize("pw", NASTY.values(), ids=NASTY.keys())
def test_no_password_in_any_output(project, pw):
    p = project
    role = "nasty_" + secrets.token_hex(3)
    port = p.env["DB_PORT"]
    literal = pw.replace("'", "''")
    sql(p, f"CREATE ROLE {role} LOGIN PASSWORD '{literal}'", f'CREATE DATABASE "{role}" OWNER {role}')
    try:
        right = f"postgres://{role}:{quote(pw, safe='')}@127.0.0.1:{port}/{role}?sslmode=disable"
        variants = {
            "right": {
                "STAGING_DATABASE_URL": right,
                "PRODUCTION_DATABASE_URL": f"postgres://{role}:{pw}@127.0.0.1:9/{role}?sslmode=disable",
            },
            "raw-unreachable": {
                "STAGING_DATABASE_URL": f"postgres://{role}:{pw}@127.0.0.1:9/{role}?sslmode=disable",
                "DATABASE_URL": f"postgres://{role}:{pw}@127.0.0.1:9/app?sslmode=disable",
            },
            "wrong-password": {
                "STAGING_DATABASE_URL": right.replace(quote(pw, safe=""), quote(pw + "x", safe="")),
                "DATABASE_URL": f"postgres://{role}:{quote(pw, safe='')}@127.0.0.1:{port}/app?sslmode=disable",
            },
        }
        PASSWORDS.add(pw + "x")
        codes = {}
        for variant, env in variants.items():
            for args in COMMANDS:
                proc = p.inv(*args, extra_env=env)  # asserts that no PASSWORDS entry appears
                out = proc.stdout + proc.stderr
                for form in forms(pw) + forms(pw + "x"):
                    assert form not in out, (variant, args, out)
                assert "Traceback" not in out, (variant, args, out)
                codes[variant, args] = proc.returncode
        # The right URL works (so the masked lines are the real ones), the broken ones fail.
        assert codes["right", ("migrate.apply", "--env", "staging", "--yes")] == 0
        assert codes["right", ("migrate.status", "--env", "staging")] in (0, 2)  # pending before the apply
        assert codes["raw-unreachable", ("migrate.status", "--env", "staging")] != 0
        assert codes["wrong-password", ("migrate.status", "--env", "staging")] != 0
    finally:
        sql(p, f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)', f"DROP ROLE IF EXISTS {role}")
