"""Every mistake a user can make: one clear line, a non-zero exit, nothing changed.

Runs against a real PostgreSQL 15 (local clusters) and the real Atlas. Each row asserts the
message, the exit code, that no project file changed and that the target's catalog is
byte-identical before and after.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import helpers
from tests.conftest import ROOT, assert_no_secret, atlas_binary, make_project, require, running_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with running_project(tmp_path_factory.mktemp("badinput"), apply=True) as p:
        yield p


def catalog(p) -> str:
    return helpers.catalog(p.env["DATABASE_URL"])


def all_files(p) -> dict[str, bytes]:
    out = {}
    for path in sorted(p.root.rglob("*")):
        rel = path.relative_to(p.root)
        if path.is_file() and rel.parts[0] not in (".state",) and "__pycache__" not in rel.parts:
            out[str(rel)] = path.read_bytes()
    return out


@dataclass
class Case:
    id: str
    args: tuple[str, ...]
    fragment: str
    code: int = 1
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable | None = None  # (project) -> undo callable


def url(p, **parts) -> str:
    base = p.env["DATABASE_URL"]
    for old, new in parts.items():
        base = base.replace(old, new)
    return base


def with_file(rel: str, text: str, hash_after: bool = False):
    def setup(p):
        path = p.root / rel
        existed = path.read_bytes() if path.exists() else None
        sum_before = (p.root / "migrations/atlas.sum").read_bytes()
        path.write_text(text)
        if hash_after:
            assert (
                subprocess.run(
                    [atlas_binary(), "migrate", "hash", "--env", "sqlalchemy"],
                    cwd=p.root,
                    env={**os.environ, **p.env},
                    capture_output=True,
                ).returncode
                == 0
            )

        def undo():
            if existed is None:
                path.unlink()
            else:
                path.write_bytes(existed)
            (p.root / "migrations/atlas.sum").write_bytes(sum_before)

        return undo

    return setup


def append_to(rel: str, text: str):
    def setup(p):
        path = p.root / rel
        before = path.read_bytes()
        path.write_bytes(before + text.encode())
        return lambda: path.write_bytes(before)

    return setup


def newest_migration(p) -> str:
    return sorted(x.name for x in (p.root / "migrations").glob("*.sql"))[-1]


def tamper_sum(p):
    path = p.root / "migrations" / newest_migration(p)
    before = path.read_bytes()
    path.write_bytes(before + b"\n-- edited after hashing\n")
    return lambda: path.write_bytes(before)


def duplicate_version(p):
    name = newest_migration(p)
    version = name.split("_", 1)[0]
    return with_file(f"migrations/{version}_duplicate.sql", "SELECT 1;\n", hash_after=True)(p)


def taken_port(p):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]
    p._taken = port
    return sock.close


_sql = helpers.sql


def database(name: str, rows: int = 0):
    """Another database on the local server (with a table of `rows` rows); undo checks they survived."""

    def setup(p):
        _sql(p.env["DATABASE_URL"], f'CREATE DATABASE "{name}"', dbname="postgres")
        if rows:
            _sql(
                url(p, **{"/app?": f"/{name}?"}),
                "CREATE TABLE team_rows (id int)",
                f"INSERT INTO team_rows SELECT generate_series(1, {rows})",
            )

        def undo():
            try:
                if rows:
                    assert _sql(url(p, **{"/app?": f"/{name}?"}), "SELECT count(*) FROM team_rows") == [(rows,)], (
                        "rows were lost"
                    )
            finally:
                _sql(p.env["DATABASE_URL"], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dbname="postgres")

        return undo

    return setup


def both(*setups):
    def setup(p):
        undos = [s(p) for s in setups]
        return lambda: [u() for u in reversed(undos)]

    return setup


M = "migrations/29991231235959_{}.sql"
CASES = [
    Case(
        "unknown-env-apply",
        ("migrate.apply", "--env", "prod"),
        "unknown environment 'prod': use one of: local, staging, production",
    ),
    Case("unknown-env-status", ("migrate.status", "--env", "qa"), "unknown environment 'qa'"),
    Case("unset-url", ("migrate.apply", "--env", "staging"), "STAGING_DATABASE_URL is not set"),
    Case(
        "mysql-url",
        ("migrate.apply", "--env", "staging"),
        "STAGING_DATABASE_URL must be a postgres:// URL",
        env={"STAGING_DATABASE_URL": "mysql://u:p@h/db"},
    ),
    Case(
        "url-no-host",
        ("migrate.status", "--env", "staging"),
        "STAGING_DATABASE_URL has no host",
        env={"STAGING_DATABASE_URL": "postgres://u:p@/db"},
    ),
    Case(
        "url-bad-port",
        ("migrate.status", "--env", "staging"),
        "STAGING_DATABASE_URL is not a valid URL",
        env={"STAGING_DATABASE_URL": "postgres://u:p@h:99999/db"},
    ),
    Case(
        "url-no-db",
        ("migrate.status", "--env", "staging"),
        "STAGING_DATABASE_URL names no database",
        env={"STAGING_DATABASE_URL": "postgres://u:p@h:5432"},
    ),
    Case(
        "unreachable",
        ("migrate.status", "--env", "staging"),
        "cannot reach the database",
        env={"STAGING_DATABASE_URL": "postgres://u:secretpw@127.0.0.1:9/db?sslmode=disable"},
    ),
    Case("wrong-password", ("migrate.status",), "the database refused the password", env={"DATABASE_URL": "WRONGPW"}),
    Case("no-such-database", ("migrate.status",), "does not exist", env={"DATABASE_URL": "NODB"}),
    Case(
        "no-docker",
        ("migrate.diff", "--name", "x"),
        "no Docker engine answers",
        env={"STACK": "compose", "DOCKER_HOST": "unix:///nonexistent.sock"},
    ),
    Case(
        "no-docker-up",
        ("db.up",),
        "no Docker engine answers",
        env={"STACK": "compose", "DOCKER_HOST": "unix:///nonexistent.sock"},
    ),
    Case("unknown-stack", ("db.status",), "STACK='kube' is not a known backend", env={"STACK": "kube"}),
    Case("name-empty", ("migrate.diff", "--name", ""), "a migration name is required"),
    Case("name-space", ("migrate.diff", "--name", "add column"), "invalid migration name 'add column'"),
    Case("name-slash", ("migrate.diff", "--name", "a/b"), "invalid migration name 'a/b'"),
    Case("name-quote", ("migrate.diff", "--name", "it's"), 'invalid migration name "it\'s"'),
    Case("name-case", ("migrate.diff", "--name", "Add-Col"), "invalid migration name 'Add-Col'"),
    Case("name-exists", ("migrate.diff", "--name", "initial"), "a migration named 'initial' exists already"),
    Case("new-bad-name", ("migrate.new", "--name", "x;rm"), "invalid migration name 'x;rm'"),
    Case(
        "stale-schema",
        ("migrate.check", "--no-base"),
        "schema.sql is stale against the models",
        code=2,
        setup=append_to("schema.sql", "\n-- edited by hand\n"),
    ),
    Case("tampered-sum", ("migrate.apply",), "atlas.sum does not match the migration files", setup=tamper_sum),
    Case(
        "tampered-sum-validate", ("migrate.validate",), "atlas.sum does not match the migration files", setup=tamper_sum
    ),
    Case(
        "broken-sql",
        ("migrate.apply",),
        "a pending migration does not run: 29991231235959_broken.sql: executing statement: pq: syntax error at or "
        'near "TABLEE"',
        setup=with_file(
            M.format("broken"), 'CREATE TABLE "public"."ok_table" (id int);\nALTER TABLEE oops;\n', hash_after=True
        ),
    ),
    Case("duplicate-version", ("migrate.validate",), "_duplicate.sql share version", setup=duplicate_version),
    Case("duplicate-version-apply", ("migrate.apply",), "_duplicate.sql share version", setup=duplicate_version),
    Case(
        "models-import-error",
        ("migrate.diff", "--name", "x"),
        "the models failed to load",
        setup=append_to("app/models/__init__.py", "\nimport no_such_module_here\n"),
    ),
    Case(
        "bad-lock-timeout",
        ("migrate.apply", "--lock-timeout", "soon"),
        "invalid lock timeout 'soon'",
        setup=with_file(M.format("pending"), "SELECT 1;\n", hash_after=True),
    ),
    Case("renumber-no-file", ("migrate.renumber",), "which file? pass --file"),
    Case(
        "renumber-unknown-file",
        ("migrate.renumber", "--file", "nope.sql"),
        "no migration file 'nope.sql' in migrations/",
    ),
    Case(
        "renumber-path-escape",
        ("migrate.renumber", "--file", "../schema.sql"),
        "no migration file '../schema.sql' in migrations/",
    ),
    Case(
        "renumber-absolute",
        ("migrate.renumber", "--file", "/tmp/20260101000000_x.sql"),
        "no migration file '/tmp/20260101000000_x.sql'",
        setup=lambda p: (
            Path("/tmp/20260101000000_x.sql").write_text("SELECT 1;\n"),
            lambda: Path("/tmp/20260101000000_x.sql").unlink(),
        )[1],
    ),
    Case(
        "bad-table-lock-timeout",
        ("migrate.apply",),
        "invalid table lock timeout 'soon'",
        env={"TABLE_LOCK_TIMEOUT": "soon"},
        setup=with_file(M.format("pending"), "SELECT 1;\n", hash_after=True),
    ),
    Case(
        "production-no-tty",
        ("migrate.apply", "--env", "production"),
        "production is a protected environment and there is no terminal",
        env={"PRODUCTION_DATABASE_URL": "DB:prodcopy"},
        setup=both(database("prodcopy"), with_file(M.format("pending"), "SELECT 1;\n", hash_after=True)),
    ),
    Case(
        "destructive",
        ("migrate.apply",),
        "destructive change(s) pending",
        setup=with_file(
            M.format("drop"), 'ALTER TABLE "public"."customers" DROP COLUMN "full_name";\n', hash_after=True
        ),
    ),
    Case(
        "narrowing",
        ("migrate.apply",),
        "narrows character varying(320) to varchar(10)",
        setup=with_file(
            M.format("narrow"),
            'ALTER TABLE "public"."customers" ALTER COLUMN "email" TYPE varchar(10);\n',
            hash_after=True,
        ),
    ),
    Case("reset-other-env", ("db.reset", "--env", "staging"), "db.reset only resets the local database"),
    Case("bad-port-var", ("db.up",), "DB_PORT='abc' is not a port number", env={"DB_PORT": "abc"}),
    Case(
        "dev-is-target",
        ("migrate.diff", "--name", "x"),
        "DEV_DATABASE_URL and DATABASE_URL name the same database",
        env={"DEV_DATABASE_URL": "SELF"},
    ),
    Case(
        "atlas-bin-missing",
        ("migrate.status",),
        "ATLAS_BIN=/nonexistent/atlas is not an executable",
        env={"ATLAS_BIN": "/nonexistent/atlas"},
    ),
    Case("unknown-flag", ("migrate.apply", "--bogus"), "No idea what '--bogus' is"),
    Case("no-password", ("db.up",), "POSTGRES_PASSWORD is not set", env={"POSTGRES_PASSWORD": ""}),
    Case(
        "url-empty-port",
        ("migrate.status", "--env", "staging"),
        "STAGING_DATABASE_URL has an empty port (host:/db)",
        env={"STAGING_DATABASE_URL": "postgres://u:p@127.0.0.1:/db?sslmode=disable"},
    ),
    Case(
        "no-dotenv-down",
        ("db.down", "--volumes"),
        ".env not found in project/: run inv setup",
        setup=lambda p: _hide_dotenv(p),
    ),
    Case(
        "no-dotenv-status", ("db.status",), ".env not found in project/: run inv setup", setup=lambda p: _hide_dotenv(p)
    ),
    Case(
        "models-print-then-raise",
        ("schema.dump",),
        "the models failed to load: RuntimeError: the model broke",
        setup=append_to(
            "app/models/customers.py",
            '\nprint("CREATE TABLE printed (x int);")\nraise RuntimeError("the model broke")\n',
        ),
    ),
    Case(
        "models-print-then-raise-check",
        ("schema.dump", "--check"),
        "the models failed to load: RuntimeError: the model broke",
        setup=append_to(
            "app/models/customers.py",
            '\nprint("CREATE TABLE printed (x int);")\nraise RuntimeError("the model broke")\n',
        ),
    ),
    Case(
        "doctor-url-does-not-parse",
        ("doctor",),
        "env staging",
        env={"STAGING_DATABASE_URL": "postgres://u:pw@h:99999/db"},
    ),
    Case(
        "doctor-unreachable",
        ("doctor",),
        "env production",
        env={"PRODUCTION_DATABASE_URL": "postgres://u:pw@127.0.0.1:9/db?sslmode=disable"},
    ),
    Case(
        "renumber-applied",
        ("migrate.renumber", "--file", "20261124215410_initial.sql"),
        "20261124215410_initial.sql is recorded as applied in local",
        setup=with_file(M.format("newer"), "SELECT 1;\n", hash_after=True),
    ),
    Case(
        "password-with-space",
        ("migrate.status", "--env", "staging"),
        "STAGING_DATABASE_URL is not a valid URL: it holds a character that must be percent-encoded",
        env={"STAGING_DATABASE_URL": "postgres://u:pa ss@127.0.0.1:9/db?sslmode=disable"},
    ),
    Case(
        "password-with-raw-at",
        ("migrate.apply", "--env", "staging"),
        "STAGING_DATABASE_URL is not a valid URL: it holds a character that must be percent-encoded",
        env={"STAGING_DATABASE_URL": "postgres://u:p@ss@word@127.0.0.1:9/db?sslmode=disable"},
    ),
    *[
        Case(
            f"dev-holds-data-{task.split('.')[1]}",
            (task, *args),
            "DEV_DATABASE_URL points at 127.0.0.1:",
            env={"DEV_DATABASE_URL": "DB:teamdata"},
            setup=database("teamdata", rows=1000),
        )
        for task, *args in (
            ("migrate.diff", "--name", "x"),
            ("migrate.lint",),
            ("migrate.validate",),
            ("migrate.verify",),
        )
    ],
    Case(
        "target-is-dev",
        ("migrate.apply", "--env", "staging"),
        "STAGING_DATABASE_URL and DEV_DATABASE_URL name the same database",
        env={"STAGING_DATABASE_URL": "DEV"},
    ),
    Case(
        "target-is-dev-drift",
        ("migrate.drift", "--env", "staging"),
        "STAGING_DATABASE_URL and DEV_DATABASE_URL name the same database",
        env={"STAGING_DATABASE_URL": "DEV"},
    ),
    Case(
        "production-is-local",
        ("migrate.apply", "--env", "production", "--yes"),
        "PRODUCTION_DATABASE_URL and DATABASE_URL name the same database",
        env={"PRODUCTION_DATABASE_URL": "SELF"},
    ),
    Case(
        "reset-foreign-database",
        ("db.reset",),
        "which is not the stack's database",
        env={"DATABASE_URL": "DB:teamdata"},
        setup=database("teamdata", rows=1000),
    ),
    Case(
        "dev-is-maintenance-db",
        ("migrate.lint",),
        "a database the PostgreSQL server itself uses",
        env={"DEV_DATABASE_URL": "DB:postgres"},
    ),
]

from tests.integration.test_ci_gate import as_git_repository  # noqa: E402


def linked_migration(p):
    """migrations/ gains a symbolic link to a file outside the repository."""
    outside = p.root.parent / "outside.sql"
    outside.write_text('CREATE TABLE "public"."never_reviewed" (id int);\n')
    link = p.root / "migrations" / "29991231235959_linked.sql"
    link.symlink_to(outside)

    def undo():
        link.unlink()
        outside.unlink()

    return undo


LINKED = "migrations/29991231235959_linked.sql is a symbolic link (to "
CASES += [
    Case(
        "check-not-a-git-repository",
        ("migrate.check",),
        "not a git repository, so the files this branch adds cannot be found: run it in a git checkout, or pass "
        "--no-base",
    ),
    Case(
        "check-without-git",
        ("migrate.check",),
        "git is not installed (not on PATH)",
        env={"PATH": str(Path(sys.executable).parent)},
    ),
    Case(
        "check-base-and-no-base",
        ("migrate.check", "--base", "main", "--no-base"),
        "--base and --no-base contradict each other",
    ),
    Case(
        "check-unknown-base",
        ("migrate.check", "--base", "no-such-ref"),
        "--base no-such-ref: no such branch, tag or commit in this repository",
        setup=as_git_repository("main"),
    ),
    Case(
        "lint-unknown-base",
        ("migrate.lint", "--base", "no-such-ref"),
        "--base no-such-ref: no such branch, tag or commit in this repository",
        setup=as_git_repository("main"),
    ),
    Case(
        "check-no-base-branch",
        ("migrate.check",),
        "no base branch to compare with: none of origin/HEAD, origin/main, origin/master, main, master exists",
        setup=as_git_repository("develop"),
    ),
    Case("symlink-diff", ("migrate.diff", "--name", "x"), LINKED, setup=linked_migration),
    Case("symlink-hash", ("migrate.hash",), LINKED, setup=linked_migration),
    Case("symlink-apply", ("migrate.apply",), LINKED, setup=linked_migration),
    Case("symlink-check", ("migrate.check",), LINKED, setup=linked_migration),
    Case("symlink-validate", ("migrate.validate",), LINKED, setup=linked_migration),
    Case("symlink-status", ("migrate.status",), LINKED, setup=linked_migration),
    Case("symlink-verify", ("migrate.verify",), LINKED, setup=linked_migration),
    Case(
        "report-unknown-base",
        ("migrate.report", "--base", "no-such-ref", "--output", "report.md"),
        "--base no-such-ref: no such branch, tag or commit in this repository",
        setup=as_git_repository("main"),
    ),
    Case("report-not-a-git-repository", ("migrate.report",), "not a git repository"),
    Case(
        "erd-part-without-output",
        ("schema.erd", "--tables", "orders"),
        "a diagram of part of the schema needs --output",
    ),
    Case(
        "erd-unknown-table",
        ("schema.erd", "--tables", "orders,nope", "--output", "docs/part"),
        "schema.sql has no table nope",
    ),
]


# --- inv migrate.down (the module's project: the initial migration applied to local) ---------


# The module's project applies every file of the checkout's migrations/.
_FILES = sorted(x.name for x in (ROOT / "migrations").glob("*.sql"))
NEWEST = _FILES[-1].split("_", 1)[0]


def drifted_second_file(p):
    """A second file applied to local, then a column added to its table by hand (drift)."""
    undo_file = with_file(M.format("second"), 'CREATE TABLE "public"."second_step" (id int);\n', hash_after=True)(p)
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0, applied.stderr
    _sql(p.env["DATABASE_URL"], 'ALTER TABLE "public"."second_step" ADD COLUMN "by_hand" int')

    def undo():
        _sql(
            p.env["DATABASE_URL"],
            'DROP TABLE "public"."second_step"',
            "DELETE FROM atlas_schema_revisions.atlas_schema_revisions WHERE version = '29991231235959'",
        )
        undo_file()

    return undo


CASES += [
    Case(
        "down-to-and-steps",
        ("migrate.down", "--to", NEWEST, "--steps", "1"),
        "--to and --steps contradict each other",
    ),
    Case("down-neither", ("migrate.down",), "say where to go back to: pass --to VERSION or --steps N"),
    Case("down-bad-steps", ("migrate.down", "--steps", "two"), "invalid --steps 'two'"),
    Case("down-unknown-version", ("migrate.down", "--to", "123"), "no migration with version '123' in migrations/"),
    Case(
        "down-to-current",
        ("migrate.down", "--to", NEWEST),
        f"version {NEWEST} is not below local's current version {NEWEST}",
    ),
    Case(
        "down-beyond-history",
        ("migrate.down", "--steps", str(len(_FILES) + 1)),
        f"--steps {len(_FILES) + 1} goes beyond local's history: {len(_FILES)} file(s) applied",
    ),
    Case(
        "down-pending",
        ("migrate.down", "--steps", "1"),
        "local has 1 pending file(s) (29991231235959_pending.sql): a down starts from a target with nothing pending",
        setup=with_file(M.format("pending"), 'CREATE TABLE "public"."never_applied" (id int);\n', hash_after=True),
    ),
    Case(
        "down-drift",
        ("migrate.down", "--steps", "1"),
        "local has drifted from its migrations (1 difference(s), first: column public.second_step.by_hand: only in "
        "the local database)",
        setup=drifted_second_file,
    ),
    Case(
        "down-not-managed",
        ("migrate.down", "--steps", "1"),
        "local holds objects (column, table) but no Atlas migration history",
        env={"DATABASE_URL": "DB:down_unmanaged"},
        setup=database("down_unmanaged", rows=3),
    ),
    Case(
        "down-never-migrated",
        ("migrate.down", "--steps", "1"),
        "Atlas has applied no migration to local: there is nothing to go back from",
        env={"DATABASE_URL": "DB:down_empty"},
        setup=database("down_empty"),
    ),
    Case(
        "test-unknown-since",
        ("migrate.test", "--since", "no-such-ref"),
        "--since no-such-ref: no such branch, tag or commit in this repository",
        setup=as_git_repository("main"),
    ),
    Case(
        "test-since-not-a-git-repository",
        ("migrate.test", "--since", "main"),
        "this copy of the project is not a git repository, so the files new since main cannot be found",
    ),
]


def checks_file(name: str | Callable, text: str):
    """migrations/checks/ with one file (`name`, or name(p)): the pre-conditions of a migration."""

    def setup(p):
        directory = p.root / "migrations" / "checks"
        directory.mkdir()
        (directory / (name(p) if callable(name) else name)).write_text(text)
        return lambda: shutil.rmtree(directory)

    return setup


def newest_checks(p) -> str:
    return newest_migration(p).split("_", 1)[0] + ".sql"


UNKNOWN_CHECKS = (
    "migrations/checks/29990101000000.sql guards version 29990101000000, but no file of migrations/ has that version"
)
CASES += [
    Case(
        "checks-unknown-version",
        ("migrate.apply",),
        UNKNOWN_CHECKS,
        setup=checks_file("29990101000000.sql", "SELECT true;\n"),
    ),
    Case(
        "checks-unknown-version-dry-run",
        ("migrate.apply", "--dry-run"),
        UNKNOWN_CHECKS,
        setup=checks_file("29990101000000.sql", "SELECT true;\n"),
    ),
    Case(
        "checks-not-a-select",
        ("migrate.apply",),
        "line 2: a check must be a SELECT, not DELETE",
        setup=checks_file(newest_checks, "SELECT true;\nDELETE FROM customers;\n"),
    ),
    Case(
        "checks-misnamed",
        ("migrate.apply",),
        "migrations/checks/notes.txt is not named <version>.sql",
        setup=checks_file("notes.txt", "SELECT true;\n"),
    ),
    Case(
        "checks-fail",
        ("migrate.apply",),
        "a pre-condition does not hold on local, nothing was applied: migrations/checks/29991231235959.sql check 1 "
        "(line 2): never -> returned false, not true",
        setup=both(
            with_file(M.format("guarded"), 'CREATE TABLE "public"."guarded" (id int);\n', hash_after=True),
            checks_file("29991231235959.sql", "-- never\nSELECT false;\n"),
        ),
    ),
]


def _hide_dotenv(p):
    (p.root / ".env").rename(p.root / ".env.hidden")
    return lambda: (p.root / ".env.hidden").rename(p.root / ".env")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(project, case):
    p = project
    env = dict(case.env)
    for key, value in env.items():
        if value == "SELF":
            env[key] = p.env["DATABASE_URL"]
        elif value == "WRONGPW":
            env[key] = url(p, **{p.env["POSTGRES_PASSWORD"]: "wrongpassword"})
        elif value == "NODB":
            env[key] = url(p, **{"/app?": "/nosuchdb?"})
        elif value == "DEV":
            env[key] = p.env["DEV_DATABASE_URL"]
        elif value.startswith("DB:"):
            env[key] = url(p, **{"/app?": f"/{value[3:]}?"})
    undo = case.setup(p) if case.setup else None
    try:
        files_before, catalog_before = all_files(p), catalog(p)
        proc = p.inv(*case.args, extra_env=env)
        assert proc.returncode == case.code, proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr + proc.stdout
        errors = [
            ln
            for ln in proc.stderr.splitlines() + proc.stdout.splitlines()
            if ln.startswith(("error:", "out of sync:", "No idea"))
        ]
        assert len(errors) >= 1, proc.stderr
        assert case.fragment in "\n".join(errors), proc.stderr + proc.stdout
        if case.code == 1 and case.id != "unknown-flag":
            assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1
        assert all_files(p) == files_before, "a file changed"
        assert catalog(p) == catalog_before, "the database changed"
    finally:
        if undo:
            undo()


def test_taken_port_is_named(tmp_path):
    require(atlas_binary() is not None, "the Atlas CLI is not installed")
    p = make_project(tmp_path, "local")
    sock = socket.socket()
    sock.bind(("127.0.0.1", int(p.env["DB_PORT"])))
    sock.listen(1)
    try:
        proc = p.inv("db.up")
        assert proc.returncode == 1
        assert f"port {p.env['DB_PORT']} on 127.0.0.1 is taken" in proc.stderr
    finally:
        sock.close()
        p.inv("db.down", "--volumes")


def test_ctrl_c_during_apply_leaves_no_partial_file(project):
    """SIGINT while a slow file runs: exit 130, the file rolled back, a rerun completes."""
    p = project
    undo = with_file(
        M.format("slow"), 'CREATE TABLE "public"."slow_marker" (id int);\nSELECT pg_sleep(5);\n', hash_after=True
    )(p)
    try:
        env = {**os.environ, **p.env}
        proc = subprocess.Popen(
            [sys.executable, "-m", "invoke", "migrate.apply"],
            cwd=p.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "pg_sleep" not in _activity(p):
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert_no_secret(out + err)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        assert "slow_marker" not in catalog(p)
        rerun = p.inv("migrate.apply")
        assert rerun.returncode == 0, rerun.stderr
        assert "slow_marker" in catalog(p)
    finally:
        undo()
        _drop(p, "slow_marker")


def _activity(p) -> str:
    import psycopg

    from tools.urls import libpq_url

    with psycopg.connect(libpq_url(p.env["DATABASE_URL"], "x"), autocommit=True) as conn:
        return " ".join(r[0] or "" for r in conn.execute("SELECT query FROM pg_stat_activity").fetchall())


def _drop(p, table: str) -> None:
    import psycopg

    from tools.urls import libpq_url

    with psycopg.connect(libpq_url(p.env["DATABASE_URL"], "x"), autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        conn.execute("DELETE FROM atlas_schema_revisions.atlas_schema_revisions WHERE version = '29991231235959'")
