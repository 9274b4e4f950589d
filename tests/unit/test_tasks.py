"""tasks.py: every task of `inv --list`, run as users run it (invoke's Program over tasks.ns), with
the tools/ operation it calls replaced by an autospec double: the call the flags imply, the exit
code (0, WorkflowError 1, OutOfSync 2, interruptions 130/143) and the lines printed.

Nothing here touches the network, Docker, PostgreSQL or a file outside tmp_path: the project
root is a tmp copy with its own .env and atlas.hcl, and every operation is a double.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest
from invoke import Program

import tasks
from tools import config as config_mod
from tools.apply import ApplyReport
from tools.atlaslint import LintReport
from tools.baseline import BaselineReport
from tools.check import CheckReport, ValidateReport
from tools.compose_stack import ComposeStack
from tools.config import Config
from tools.diff import DiffReport
from tools.doctor import Check, DoctorReport
from tools.down import DownReport
from tools.erd import ErdReport
from tools.errors import NotAdopted, OutOfSync, WorkflowError
from tools.prove import ProveReport
from tools.report import ChangeReport
from tools.schema import DumpReport
from tools.signals import Interrupted
from tools.status import AllStatusReport, StatusReport

REPO = Path(__file__).resolve().parents[2]
ENVIRON = {
    "DATABASE_URL": "postgres://app:localpw@localhost:5433/app?sslmode=disable",
    "DEV_DATABASE_URL": "postgres://app:localpw@localhost:5434/dev?sslmode=disable",
    "STAGING_DATABASE_URL": "postgres://app:stagingpw@staging.invalid:5432/app?sslmode=require",
    "PRODUCTION_DATABASE_URL": "postgres://app:prodpw@prod.invalid:5432/app?sslmode=require",
    "STACK": "compose",
}


@dataclass
class Run:
    """What one `inv ...` did: its exit code and what it printed."""

    code: int
    out: list[str]
    err: str


@dataclass
class Project:
    root: Path
    config: Config
    backend: mock.Mock
    get_stack: mock.Mock


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A tmp project root with .env and atlas.hcl; Config.load, require_dotenv and the edge's
    masking bound to it (not to the checkout's .env, nor to passwords in this process's
    environment); the stack (tools.stack.get_stack) an autospec double that starts nothing."""
    for key in list(os.environ):
        if "PASSWORD" in key.upper() or key.upper().endswith("URL"):
            monkeypatch.delenv(key)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in ENVIRON.items()))
    (tmp_path / "atlas.hcl").write_text((REPO / "atlas.hcl").read_text())
    config = Config.load(tmp_path, environ=dict(ENVIRON))
    real_require = config_mod.require_dotenv
    monkeypatch.setattr(tasks, "require_dotenv", lambda: real_require(tmp_path))
    monkeypatch.setattr(tasks, "masked_output", functools.partial(config_mod.masked_output, tmp_path))
    monkeypatch.setattr(Config, "load", classmethod(lambda cls, root=tmp_path, environ=None: config))
    backend = mock.create_autospec(ComposeStack, instance=True)
    backend.name, backend.why = "compose", "STACK=compose in .env"
    backend.psql_argv.return_value = (["psql", "--dbname", "app"], {"PGPASSWORD": "localpw"})
    with mock.patch("tools.stack.get_stack", autospec=True, return_value=backend) as get_stack:
        yield Project(tmp_path, config, backend, get_stack)


def inv(capsys, *argv: str) -> Run:
    """`inv <argv>` through invoke's Program over tasks.ns, as the `inv` command runs it."""
    capsys.readouterr()
    try:
        Program(namespace=tasks.ns, name="inv", binary="inv").run(["inv", *argv])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return Run(code, out.splitlines(), err)


def patch(target: str, **kwargs):
    """An autospec double of the operation at `target`, patched in its home module (tasks.py
    imports most of them inside the task body, so this is where it finds them)."""
    return mock.patch(target, autospec=True, **kwargs)


# --- each task: the call its flags imply, and what it prints -------------------------------------


def status_report(env="local", state="OK", pending=()):
    return StatusReport(env, state, "20240101000002", "", list(pending), 2, 2 + len(pending))


@dataclass
class Case:
    argv: tuple[str, ...]
    target: str  # the operation's home module attribute
    returns: object  # what the double returns
    call: Callable[[Project], mock._Call]  # the one call expected
    out: list[str]  # stdout, line by line
    code: int = 0
    err: list[str] = field(default_factory=list)  # stderr: the edge's one line when the verdict fails


def _apply_call(env, **flags):
    defaults = dict(
        yes=False, dry_run=False, allow_destructive=False, ignore_drift=False, lock_timeout="", table_lock_timeout=""
    )
    return lambda p: mock.call(p.config, p.config.target(env), tasks.log, **{**defaults, **flags})


def _down_call(env, **flags):
    defaults = dict(to="", steps="", dry_run=False, yes=False, allow_destructive=False, lock_timeout="")
    return lambda p: mock.call(p.config, p.config.target(env), tasks.log, **{**defaults, **flags})


CASES = [
    pytest.param(
        Case(
            ("doctor",),
            "tools.doctor.doctor",
            DoctorReport([Check(".env", True, "present, private (mode 600)")]),
            lambda p: mock.call(p.config),
            [f"ok  {'.env':<18} present, private (mode 600)"],
        ),
        id="doctor",
    ),
    pytest.param(
        Case(
            ("doctor",),
            "tools.doctor.doctor",
            DoctorReport([Check("atlas", False, "not found")]),
            lambda p: mock.call(p.config),
            [f"FAIL {'atlas':<18} not found"],
            code=1,
            err=["error: 1 check(s) failed: atlas"],
        ),
        id="doctor-failed-check-exit-1",
    ),
    pytest.param(
        Case(
            ("dev",),
            "tools.dev.dev",
            ["local: in sync"],
            lambda p: mock.call(p.config, p.backend, tasks.log),
            ["local: in sync"],
        ),
        id="dev",
    ),
    pytest.param(
        Case(
            ("db.status",),
            "tools.stack.state_lines",
            ["db: running"],
            lambda p: mock.call(p.config, p.backend),
            ["db: running"],
        ),
        id="db.status",
    ),
    pytest.param(
        Case(
            ("schema.dump",),
            "tools.schema.dump",
            DumpReport(Path("schema.sql"), True),
            lambda p: mock.call(p.config, p.backend, tasks.log, write=True),
            ["schema.sql updated"],
        ),
        id="schema.dump",
    ),
    pytest.param(
        Case(
            ("schema.dump", "--check"),
            "tools.schema.dump",
            DumpReport(Path("schema.sql"), False, written=False),
            lambda p: mock.call(p.config, p.backend, tasks.log, write=False),
            ["schema.sql is up to date"],
        ),
        id="schema.dump--check-fresh",
    ),
    pytest.param(
        Case(
            ("schema.dump", "--check"),
            "tools.schema.dump",
            DumpReport(Path("schema.sql"), True, written=False),
            lambda p: mock.call(p.config, p.backend, tasks.log, write=False),
            [],
            code=2,
            err=["schema.sql is stale against the models: run inv schema.dump"],
        ),
        id="schema.dump--check-stale-exit-2",
    ),
    pytest.param(
        Case(
            ("migrate.diff", "--name", "add_prefs"),
            "tools.diff.diff",
            DiffReport(
                files=[Path("migrations/20240101000003_add_prefs.sql")],
                statements=["ALTER TABLE users ADD COLUMN prefs jsonb"],
            ),
            lambda p: mock.call(p.config, p.backend, "add_prefs", tasks.log),
            ["new migration: migrations/20240101000003_add_prefs.sql", "  ALTER TABLE users ADD COLUMN prefs jsonb"],
        ),
        id="migrate.diff--name",
    ),
    pytest.param(
        Case(
            ("migrate.apply",),
            "tools.apply.apply",
            ApplyReport(
                "local", applied=["20240101000003_add_prefs.sql"], timings={"20240101000003_add_prefs.sql": (1, 12.0)}
            ),
            _apply_call("local"),
            ["applied 20240101000003_add_prefs.sql (1 statement(s), 12 ms)", "local: 1 migration(s) applied"],
        ),
        id="migrate.apply-default-local",
    ),
    pytest.param(
        Case(
            ("migrate.apply", "--env", "staging", "--dry-run", "--yes"),
            "tools.apply.apply",
            ApplyReport(
                "staging",
                pending=["20240101000003_add_prefs.sql"],
                dry_run=True,
                sql={"20240101000003_add_prefs.sql": ["ALTER TABLE users ADD COLUMN prefs jsonb"]},
            ),
            _apply_call("staging", yes=True, dry_run=True),
            [
                "staging: 1 pending file(s) (dry run, nothing applied):",
                "-- 20240101000003_add_prefs.sql",
                "ALTER TABLE users ADD COLUMN prefs jsonb;",
            ],
        ),
        id="migrate.apply--env-staging--dry-run--yes",
    ),
    pytest.param(
        Case(
            (
                "migrate.apply",
                "--env",
                "production",
                "--allow-destructive",
                "--ignore-drift",
                "--lock-timeout",
                "30s",
                "--table-lock-timeout",
                "0",
            ),
            "tools.apply.apply",
            ApplyReport("production"),
            _apply_call(
                "production", allow_destructive=True, ignore_drift=True, lock_timeout="30s", table_lock_timeout="0"
            ),
            ["production: already at the latest version, nothing to apply"],
        ),
        id="migrate.apply--allow-destructive--ignore-drift--lock-timeouts",
    ),
    pytest.param(
        Case(
            ("migrate.drift", "--env", "staging"),
            "tools.fidelity.drift",
            [],
            lambda p: mock.call(p.config, p.config.target("staging")),
            ["staging: no drift (its schema is what its applied migrations build)"],
        ),
        id="migrate.drift--env",
    ),
    pytest.param(
        Case(
            ("migrate.drift",),
            "tools.fidelity.drift",
            ["table users: column prefs missing"],
            lambda p: mock.call(p.config, p.config.target("local")),
            ["drift: table users: column prefs missing"],
            code=2,
            err=["error: local differs from its migrations in 1 place(s)"],
        ),
        id="migrate.drift-differs-exit-2",
    ),
    pytest.param(
        Case(
            (
                "migrate.baseline",
                "--env",
                "staging",
                "--version",
                "20240101000002",
                "--dry-run",
                "--yes",
                "--ignore-drift",
            ),
            "tools.baseline.baseline",
            BaselineReport("staging", "20240101000002", dry_run=True),
            lambda p: mock.call(
                p.config,
                p.config.target("staging"),
                tasks.log,
                version="20240101000002",
                yes=True,
                dry_run=True,
                ignore_drift=True,
            ),
            ["staging matches what migrations/ up to 20240101000002 builds (dry run, nothing recorded)"],
        ),
        id="migrate.baseline--all-flags",
    ),
    pytest.param(
        Case(
            ("migrate.baseline",),
            "tools.baseline.baseline",
            BaselineReport("local", "20240101000001", files=["20240101000001_init.sql"], done=True),
            lambda p: mock.call(
                p.config, p.config.target("local"), tasks.log, version="", yes=False, dry_run=False, ignore_drift=False
            ),
            ["local: baseline at 20240101000001: 1 migration(s) recorded as applied, none run"],
        ),
        id="migrate.baseline-default",
    ),
    pytest.param(
        Case(
            ("migrate.renumber", "--file", " 20230101000000_late.sql "),
            "tools.renumber.renumber",
            "20240101000003_late.sql",
            lambda p: mock.call(p.config, " 20230101000000_late.sql ", tasks.log),
            ["renumbered 20230101000000_late.sql -> 20240101000003_late.sql; atlas.sum updated"],
        ),
        id="migrate.renumber--file",
    ),
    pytest.param(
        Case(
            ("migrate.verify",),
            "tools.fidelity.verify",
            [],
            lambda p: mock.call(p.config),
            ["verified: migrations/ and schema.sql build identical catalogs"],
        ),
        id="migrate.verify",
    ),
    pytest.param(
        Case(
            ("migrate.verify",),
            "tools.fidelity.verify",
            ["index users_email: missing"],
            lambda p: mock.call(p.config),
            ["differs: index users_email: missing"],
            code=2,
            err=["error: migrations/ and schema.sql build different databases (1 difference(s))"],
        ),
        id="migrate.verify-differs-exit-2",
    ),
    pytest.param(
        Case(
            ("migrate.status",),
            "tools.status.status",
            status_report(),
            lambda p: mock.call(p.config, p.config.target("local")),
            ["local: in sync; current version 20240101000002; 2 applied, 0 pending of 2"],
        ),
        id="migrate.status",
    ),
    pytest.param(
        Case(
            ("migrate.status", "--env", "staging"),
            "tools.status.status",
            status_report("staging", "PENDING", ["20240101000003_add_prefs.sql"]),
            lambda p: mock.call(p.config, p.config.target("staging")),
            [
                "staging: PENDING; current version 20240101000002; 2 applied, 1 pending of 3",
                "  pending 20240101000003_add_prefs.sql",
            ],
            code=2,
        ),
        id="migrate.status--env-pending-exit-2",
    ),
    pytest.param(
        Case(
            ("migrate.status", "--all"),
            "tools.status.status_all",
            AllStatusReport(
                [
                    ("local", status_report()),
                    ("staging", None),
                    ("production", WorkflowError("connection refused", hint="is it up?")),
                ]
            ),
            lambda p: mock.call(p.config),
            [
                "local: in sync; current version 20240101000002; 2 applied, 0 pending of 2",
                "staging: not configured (STAGING_DATABASE_URL is not set)",
                "production: error: connection refused: is it up?",
            ],
            code=1,
        ),
        id="migrate.status--all-one-error-exit-1",
    ),
    pytest.param(
        Case(
            ("migrate.lint",),
            "tools.atlaslint.lint",
            LintReport(),
            lambda p: mock.call(p.config, latest=1, base=None),
            ["lint: no errors"],
        ),
        id="migrate.lint",
    ),
    pytest.param(
        Case(
            ("migrate.lint", "--latest", "3", "--base", "origin/main"),
            "tools.atlaslint.lint",
            LintReport(
                findings=[("20240101000003_x.sql", "DS103", "dropping non-virtual column")],
                errors=["20240101000003_x.sql: syntax error"],
            ),
            lambda p: mock.call(p.config, latest=3, base="origin/main"),
            ["20240101000003_x.sql: DS103: dropping non-virtual column", "20240101000003_x.sql: syntax error"],
            code=1,
            err=["error: lint found 1 error(s)"],
        ),
        id="migrate.lint--latest--base-errors-exit-1",
    ),
    pytest.param(
        Case(
            ("migrate.validate",),
            "tools.check.validate",
            ValidateReport(3),
            lambda p: mock.call(p.config),
            ["migrations valid (3 files)"],
        ),
        id="migrate.validate",
    ),
    pytest.param(
        Case(
            ("migrate.check",),
            "tools.check.check",
            CheckReport(),
            lambda p: mock.call(p.config, p.backend, tasks.log, base=None, no_base=False),
            ["in sync: schema.sql, migrations/ and atlas.sum match the models"],
        ),
        id="migrate.check",
    ),
    pytest.param(
        Case(
            ("migrate.check", "--base", "origin/main"),
            "tools.check.check",
            CheckReport(problems=[(2, "schema.sql is stale")]),
            lambda p: mock.call(p.config, p.backend, tasks.log, base="origin/main", no_base=False),
            ["out of sync: schema.sql is stale"],
            code=2,
        ),
        id="migrate.check--base-out-of-sync-exit-2",
    ),
    pytest.param(
        Case(
            ("migrate.check", "--no-base"),
            "tools.check.check",
            CheckReport(problems=[(1, "lint: 1 error")]),
            lambda p: mock.call(p.config, p.backend, tasks.log, base=None, no_base=True),
            ["error: lint: 1 error"],
            code=1,
        ),
        id="migrate.check--no-base-error-exit-1",
    ),
    pytest.param(
        Case(
            ("migrate.hash",),
            "tools.migrations.rehash",
            None,
            lambda p: mock.call(p.config),
            ["migrations/atlas.sum updated"],
        ),
        id="migrate.hash",
    ),
    pytest.param(
        Case(
            ("migrate.new", "--name", "backfill_totals"),
            "tools.migrations.new",
            Path("migrations/20240101000003_backfill_totals.sql"),
            lambda p: mock.call(p.config, "backfill_totals"),
            ["created migrations/20240101000003_backfill_totals.sql: write the SQL, then run inv migrate.hash"],
        ),
        id="migrate.new--name",
    ),
    pytest.param(
        Case(
            ("schema.erd", "--tables", "orders", "--output", "docs/orders"),
            "tools.erd.erd",
            ErdReport(["docs/orders.md", "docs/orders.svg"], ["docs/orders.md"], 1, 0, 0.5),
            lambda p: mock.call(
                p.config, p.backend, tasks.log, schemas="", tables="orders", output="docs/orders", force=False
            ),
            ["wrote docs/orders.md (1 table(s)/view(s), 0 foreign key(s), 0.5s)"],
        ),
        id="schema.erd--tables--output",
    ),
    pytest.param(
        Case(
            ("migrate.report", "--base", "origin/main", "--output", "report.md"),
            "tools.report.report",
            ChangeReport("origin/main", output=Path("report.md")),
            lambda p: mock.call(p.config, p.backend, tasks.log, base="origin/main", output="report.md", force=False),
            ["wrote report.md (0 new file(s))"],
        ),
        id="migrate.report--base--output",
    ),
    pytest.param(
        Case(
            ("migrate.down", "--steps", "1", "--dry-run"),
            "tools.down.down",
            DownReport("local", "2", "1", undone=["2_notes.sql"], statements=['DROP TABLE "t"'], dry_run=True),
            _down_call("local", steps="1", dry_run=True),
            [
                "local: down from 2 to 1 undoes 1 file(s): 2_notes.sql",
                "-- plan (Atlas's schema diff, verified on a scratch copy)",
                'DROP TABLE "t";',
                "local: dry run, nothing changed",
            ],
        ),
        id="migrate.down--steps--dry-run",
    ),
    pytest.param(
        Case(
            (
                "migrate.down",
                "--env",
                "staging",
                "--to",
                "1",
                "--yes",
                "--allow-destructive",
                "--lock-timeout",
                "30s",
            ),
            "tools.down.down",
            DownReport("staging", "2", "1", undone=["2_notes.sql"], statements=['DROP TABLE "t"'], done=True),
            _down_call("staging", to="1", yes=True, allow_destructive=True, lock_timeout="30s"),
            [
                "staging: down from 2 to 1 undoes 1 file(s): 2_notes.sql",
                "-- plan (Atlas's schema diff, verified on a scratch copy)",
                'DROP TABLE "t";',
                "staging: back at 1 (1 statement(s) in one transaction); its catalog equals what migrations/ up to 1 "
                "builds",
            ],
        ),
        id="migrate.down--all-flags",
    ),
    pytest.param(
        Case(
            ("migrate.down", "--steps", "1"),
            "tools.down.down",
            DownReport(
                "local",
                "2",
                "1",
                undone=["2_notes.sql"],
                statements=['DROP TABLE "t"'],
                losses=[("table public.t", 3)],
                refused=WorkflowError("the plan deletes data", hint="pass --allow-destructive"),
            ),
            _down_call("local", steps="1"),
            [
                "local: down from 2 to 1 undoes 1 file(s): 2_notes.sql",
                "-- plan (Atlas's schema diff, verified on a scratch copy)",
                'DROP TABLE "t";',
                "data loss: table public.t holds 3 row(s)",
            ],
            code=1,
            err=["error: the plan deletes data: pass --allow-destructive"],
        ),
        id="migrate.down-refused-data-loss-exit-1",
    ),
    pytest.param(
        Case(
            ("migrate.test",),
            "tools.prove.prove",
            ProveReport([("1_init.sql", None)]),
            lambda p: mock.call(p.config, tasks.log, since=""),
            [
                "ok 1_init.sql: up, down, up again: each build's catalog restored",
                "1 of 1 migration(s) go down and up again",
            ],
        ),
        id="migrate.test",
    ),
    pytest.param(
        Case(
            ("migrate.test", "--since", "main"),
            "tools.prove.prove",
            ProveReport([("2_view.sql", "a view stays")], since="main"),
            lambda p: mock.call(p.config, tasks.log, since="main"),
            ["FAILED 2_view.sql: a view stays", "0 of 1 migration(s) go down and up again"],
            code=1,
            err=[
                "error: 1 migration(s) cannot be undone by a computed plan: 2_view.sql: see the lines above: write "
                "those reverse changes by hand before you need them"
            ],
        ),
        id="migrate.test--since-failed-exit-1",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_each_task_calls_its_operation_once_and_prints_its_report(case, project, capsys):
    with patch(case.target, return_value=case.returns) as operation:
        run = inv(capsys, *case.argv)
    assert run.code == case.code, run.err
    operation.assert_called_once()
    assert operation.call_args == case.call(project)
    assert run.out == case.out
    assert run.err.splitlines() == case.err  # the operation is a double: only the edge's line, if any


def test_the_task_table_covers_every_task_of_inv_list():
    """A task added to the menu without a case here fails this test."""
    covered = {case.values[0].argv[0] for case in CASES} | {
        "setup",
        "bench",
        "db.up",
        "db.down",
        "db.reset",
        "db.psql",
    }  # their own tests below
    assert set(tasks.ns.task_names) == covered


# --- the stack's tasks and the others that do not call one operation ------------------------------


@pytest.mark.parametrize(
    "argv, call, out_of_docker",
    [
        pytest.param(("setup",), dict(docker=None, stop_compose=False), False, id="setup"),
        pytest.param(("setup", "--no-docker"), dict(docker=False, stop_compose=False), True, id="setup--no-docker"),
        pytest.param(
            ("setup", "--no-docker", "--stop-compose"),
            dict(docker=False, stop_compose=True),
            True,
            id="setup--no-docker--stop-compose",
        ),
    ],
)
def test_setup(argv, call, out_of_docker, project, capsys):
    (project.root / ".env").unlink()  # setup is the one task that runs without .env
    with patch("tools.setup.setup", return_value=project.config) as run_setup:
        run = inv(capsys, *argv)
    assert run.code == 0, run.err
    run_setup.assert_called_once_with(project.root, tasks.log, **call)
    project.get_stack.assert_called_once_with(project.config)
    assert run.out == ["setup complete: stack backend compose (STACK=compose in .env)"]


@pytest.mark.parametrize(
    "argv, expected_tail, code",
    [
        pytest.param(("bench",), ["--runs", "5"], 0, id="bench"),
        pytest.param(("bench", "--quick", "--runs", "2"), ["--runs", "2", "--quick"], 0, id="bench--quick--runs"),
        pytest.param(("bench",), ["--runs", "5"], 3, id="bench-exit-code-passed-through"),
    ],
)
def test_bench(argv, expected_tail, code, project, capsys):
    with patch("subprocess.call", return_value=code) as call:
        run = inv(capsys, *argv)
    assert run.code == code
    call.assert_called_once_with([sys.executable, str(project.root / "bench" / "run.py"), *expected_tail])


@pytest.mark.parametrize(
    "argv, services",
    [
        pytest.param(("db.up",), (), id="db.up"),
        pytest.param(("db.up", "--services", "db,dev-db"), ("db", "dev-db"), id="db.up--services"),
    ],
)
def test_db_up(argv, services, project, capsys):
    with patch(
        "tools.stack.state_lines", return_value=["db: running, postgres://app:localpw@localhost:5433/app"]
    ) as lines:
        run = inv(capsys, *argv)
    assert run.code == 0, run.err
    project.backend.up.assert_called_once_with(tasks.log, services)
    lines.assert_called_once_with(project.config, project.backend)
    assert run.out == ["db: running, postgres://app:****@localhost:5433/app"]  # masked by the edge


@pytest.mark.parametrize(
    "argv, volumes, out",
    [
        pytest.param(("db.down",), False, ["stack stopped (compose)"], id="db.down"),
        pytest.param(
            ("db.down", "--volumes"), True, ["stack stopped (compose); local data deleted"], id="db.down--volumes"
        ),
    ],
)
def test_db_down(argv, volumes, out, project, capsys):
    run = inv(capsys, *argv)
    assert run.code == 0, run.err
    project.backend.down.assert_called_once_with(tasks.log, volumes=volumes)
    assert run.out == out


@pytest.mark.parametrize(
    "argv, yes",
    [
        pytest.param(("db.reset",), False, id="db.reset"),
        pytest.param(("db.reset", "--yes"), True, id="db.reset--yes"),
    ],
)
def test_db_reset(argv, yes, project, capsys):
    with (
        patch("tools.reset.reset_local") as reset,
        patch("tools.apply.apply", return_value=ApplyReport("local")) as apply,
    ):
        run = inv(capsys, *argv)
    assert run.code == 0, run.err
    project.backend.up.assert_called_once_with(tasks.log, ("db",))
    reset.assert_called_once_with(project.config, yes=yes)
    apply.assert_called_once_with(project.config, project.config.target("local"), tasks.log)
    assert run.out == ["local: already at the latest version, nothing to apply"]
    assert "local database recreated" in run.err


def test_db_reset_refuses_another_environment_and_does_nothing(project, capsys):
    with patch("tools.reset.reset_local") as reset, patch("tools.apply.apply") as apply:
        run = inv(capsys, "db.reset", "--env", "staging")
    assert run.code == 1
    assert run.err.splitlines()[-1] == (
        "error: db.reset only resets the local database, not 'staging': use inv migrate.apply for other environments"
    )
    reset.assert_not_called()
    apply.assert_not_called()
    project.backend.up.assert_not_called()


@pytest.mark.parametrize(
    "argv, database, code",
    [
        pytest.param(("db.psql",), "local", 0, id="db.psql"),
        pytest.param(("db.psql", "--dev"), "dev", 0, id="db.psql--dev"),
        pytest.param(("db.psql",), "local", 2, id="db.psql-exit-code-passed-through"),
    ],
)
def test_db_psql(argv, database, code, project, capsys):
    with patch("subprocess.call", return_value=code) as call:
        run = inv(capsys, *argv)
    assert run.code == code
    project.backend.psql_argv.assert_called_once_with(database)
    call.assert_called_once_with(["psql", "--dbname", "app"], env={"PGPASSWORD": "localpw"})


# --- the edge: errors and interruptions, one line and their exit code ------------------------------

ERRORS = [
    pytest.param(
        WorkflowError("no such thing.", hint="do this"), 1, "error: no such thing: do this", id="WorkflowError-1"
    ),
    pytest.param(WorkflowError("busy", hint="wait", code=3), 3, "error: busy: wait", id="WorkflowError-own-code"),
    pytest.param(
        OutOfSync("schema.sql is stale", hint="run inv schema.dump"),
        2,
        "error: schema.sql is stale: run inv schema.dump",
        id="OutOfSync-2",
    ),
    pytest.param(
        NotAdopted("staging", ["tables"]),
        1,
        "error: staging holds objects (tables) but no Atlas migration history: if another tool (Alembic) "
        "built it, adopt it: inv migrate.baseline --env staging --dry-run, then without --dry-run",
        id="NotAdopted-1",
    ),
    pytest.param(
        KeyboardInterrupt(),
        130,
        "interrupted (SIGINT): nothing more was started; an apply in progress rolls back its current file",
        id="KeyboardInterrupt-130",
    ),
    pytest.param(
        Interrupted(signal.SIGTERM),
        143,
        "interrupted (SIGTERM): nothing more was started; an apply in progress rolls back its current file",
        id="SIGTERM-143",
    ),
    pytest.param(
        Interrupted(signal.SIGHUP, "migrations/ is unchanged"),
        129,
        "interrupted (SIGHUP): nothing more was started; migrations/ is unchanged",
        id="SIGHUP-129-note",
    ),
]

# One run per task family, each with its operation raising: the edge is the same for every task.
RAISERS = [
    pytest.param(("migrate.apply", "--env", "staging", "--yes"), "tools.apply.apply", id="migrate.apply"),
    pytest.param(("migrate.status",), "tools.status.status", id="migrate.status"),
    pytest.param(("schema.dump",), "tools.schema.dump", id="schema.dump"),
    pytest.param(("doctor",), "tools.doctor.doctor", id="doctor"),
    pytest.param(("migrate.new", "--name", "x"), "tools.migrations.new", id="migrate.new"),
]


@pytest.mark.parametrize("raised, code, line", ERRORS)
@pytest.mark.parametrize("argv, target", RAISERS)
def test_an_error_or_interruption_is_one_line_and_its_exit_code(argv, target, raised, code, line, project, capsys):
    with patch(target, side_effect=raised) as operation:
        run = inv(capsys, *argv)
    operation.assert_called_once()
    assert run.code == code
    assert run.out == []
    assert run.err.splitlines() == [line]  # one line, no traceback


def test_a_silent_out_of_sync_exits_2_without_a_line(project, capsys):
    with patch("tools.status.status", side_effect=OutOfSync("")):
        run = inv(capsys, "migrate.status")
    assert (run.code, run.out, run.err) == (2, [], "")


def test_an_unknown_environment_is_one_error_before_any_operation(project, capsys):
    with patch("tools.apply.apply") as apply:
        run = inv(capsys, "migrate.apply", "--env", "nowhere")
    assert run.code == 1
    assert run.err.startswith("error: ") and "nowhere" in run.err and len(run.err.splitlines()) == 1
    apply.assert_not_called()
    project.backend.up.assert_not_called()


def test_without_dotenv_every_task_but_setup_stops_before_its_operation(project, capsys):
    (project.root / ".env").unlink()
    with patch("tools.apply.apply") as apply:
        run = inv(capsys, "migrate.apply")
    assert run.code == 1
    assert run.err.splitlines() == [
        f"error: .env not found in {project.root.name}/: run inv setup (it writes .env from .env.example)"
    ]
    apply.assert_not_called()
    project.get_stack.assert_not_called()


def test_a_password_in_an_error_line_is_masked(project, capsys):
    failure = WorkflowError(f"cannot reach {ENVIRON['STAGING_DATABASE_URL']}", hint="stagingpw was refused")
    with patch("tools.apply.apply", side_effect=failure):
        run = inv(capsys, "migrate.apply", "--env", "staging")
    assert run.code == 1
    assert "stagingpw" not in run.err and run.err.startswith("error: cannot reach postgres://app:")
