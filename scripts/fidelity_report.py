"""Compare this workflow with Alembic autogenerate on the fidelity scenarios; write docs/fidelity.md.

    .venv/bin/python scripts/fidelity_report.py [--only ID ...]

For every scenario of tests/fidelity/scenarios.py, both tools start from a database that
holds the "before" models and must bring it to the "after" models:
- this workflow: `inv migrate.diff` + `inv migrate.apply --allow-destructive` in a temporary
  copy of the project (local PostgreSQL clusters, the real Atlas);
- Alembic: `produce_migrations()` against that database, every operation executed.
The result is compared, by PostgreSQL's catalogs (tools/catalog.py), with a database built
by `metadata.create_all()` of the "after" models. Outcomes: "round-trips" (no difference),
"N residual differences", "refused loudly" (stopped with a message, nothing applied), or
"fails" (an error while generating or applying).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import make_project  # noqa: E402
from tests.fidelity.scenarios import HEADER, SCENARIOS  # noqa: E402
from tools import catalog  # noqa: E402
from tools.urls import libpq_url  # noqa: E402


def load(body: str):
    module = types.ModuleType("scenario_models")
    exec(compile(HEADER + body, "scenario_models", "exec"), module.__dict__)
    return module.metadata


def sa_url(url: str) -> str:
    return libpq_url(url, "url").replace("postgresql://", "postgresql+psycopg://")


def recreate(p, url: str) -> None:
    """Drop and create a database of this script's own throw-away project (tools/ownership.py)."""
    from tools import ownership
    from tools.config import Config

    ownership.recreate(Config.load(p.root, environ=p.env), url, "DATABASE_URL", kind="local", confirmed=True)


def fresh(p, name: str) -> str:
    url = p.env["DATABASE_URL"].replace("/app?", f"/{name}?")
    recreate(p, url)
    return url


def expected_snapshot(p, scenario) -> dict:
    from sqlalchemy import create_engine, text

    url = fresh(p, "expected")
    engine = create_engine(sa_url(url))
    metadata = load(scenario.after)
    with engine.begin() as conn:  # create_all() does not create schemas; the dump does
        for schema in sorted({t.schema for t in metadata.tables.values() if t.schema}):
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    metadata.create_all(engine)
    engine.dispose()
    return catalog.snapshot_url(url)


def outcome(differences) -> str:
    return "round-trips" if not differences else f"{len(differences)} residual difference(s)"


def run_alembic(p, scenario, expected) -> tuple[str, str]:
    from alembic.autogenerate import produce_migrations
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from alembic.operations.ops import ModifyTableOps
    from sqlalchemy import create_engine

    url = fresh(p, "alembic")
    engine = create_engine(sa_url(url))
    try:
        load(scenario.before).create_all(engine)
        with engine.begin() as conn:
            mc = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            script = produce_migrations(mc, load(scenario.after))
            ops = Operations(mc)
            count = 0
            for op in script.upgrade_ops.ops:
                for sub in op.ops if isinstance(op, ModifyTableOps) else [op]:
                    ops.invoke(sub)
                    count += 1
    except Exception as exc:  # noqa: BLE001 - the outcome is the point
        return "fails", " ".join(str(exc).split())[:140]
    finally:
        engine.dispose()
    differences = catalog.diff(catalog.snapshot_url(url), expected, "alembic", "models")
    detail = "; ".join(str(d) for d in differences[:2]) or f"{count} operation(s)"
    return outcome(differences), detail


def run_ours(p, scenario, expected) -> tuple[str, str]:
    shutil.rmtree(p.root / "migrations")
    (p.root / "migrations").mkdir()
    recreate(p, p.env["DATABASE_URL"])
    models = p.root / "app/models/__init__.py"
    models.write_text(HEADER + scenario.before)
    for args in (("migrate.diff", "--name", "before"), ("migrate.apply",)):
        proc = p.inv(*args)
        if proc.returncode:
            return "fails", f"before state: {proc.stderr.strip().splitlines()[-1][:140]}"
    models.write_text(HEADER + scenario.after)
    diff = p.inv("migrate.diff", "--name", "change")
    if diff.returncode:
        lines = [ln.strip() for ln in diff.stderr.splitlines() if ln.strip()]
        return "refused loudly", (lines[1] if len(lines) > 1 else lines[0])[:140]
    apply = p.inv("migrate.apply", "--allow-destructive")
    if apply.returncode:
        return "fails", apply.stderr.strip().splitlines()[-1][:140]
    differences = catalog.diff(catalog.snapshot_url(p.env["DATABASE_URL"]), expected, "ours", "models")
    corrected = sum(1 for ln in diff.stdout.splitlines() if "statement(s) added where Atlas falls short" in ln)
    detail = "; ".join(str(d) for d in differences[:2]) or (
        "with corrections to Atlas's output" if corrected else "Atlas's output as is"
    )
    return outcome(differences), detail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="scenario ids")
    ap.add_argument("--out", default=str(ROOT / "docs" / "fidelity.md"))
    args = ap.parse_args()
    scenarios = [s for s in SCENARIOS if not args.only or s.id in args.only]
    tmp = Path(tempfile.mkdtemp(prefix="fidelity-report-"))
    tmp.chmod(0o755)
    p = make_project(tmp, "local")
    rows = []
    try:
        assert p.inv("db.up").returncode == 0, "the local stack did not start"
        for s in scenarios:
            expected = expected_snapshot(p, s)
            ours = run_ours(p, s, expected)
            theirs = run_alembic(p, s, expected)
            rows.append((s, ours, theirs))
            print(f"{s.id:<34} ours: {ours[0]:<28} alembic: {theirs[0]}", flush=True)
    finally:
        p.inv("db.down", "--volumes")
        shutil.rmtree(tmp, ignore_errors=True)

    def count(results, label):
        return sum(1 for r in results if r[0] == label)

    ours_all, theirs_all = [r[1] for r in rows], [r[2] for r in rows]
    lines = [
        "# Fidelity: this workflow vs Alembic autogenerate",
        "",
        f"Generated by `scripts/fidelity_report.py` on {dt.date.today().isoformat()} over the {len(rows)} scenarios of "
        "`tests/fidelity/scenarios.py`. Each tool starts from a database holding the *before* models and must bring "
        "it to the *after* models; the result is compared by PostgreSQL's catalogs with `create_all()` of the *after* "
        "models. The same scenarios run in CI as `tests/fidelity/test_scenarios.py`.",
        "",
        "| outcome | this workflow (Atlas + corrections) | Alembic autogenerate |",
        "|---|---|---|",
    ]
    for label in ("round-trips", "refused loudly", "fails"):
        lines.append(f"| {label} | {count(ours_all, label)} | {count(theirs_all, label)} |")
    lines.append(
        f"| residual differences (silent) | {sum(1 for r in ours_all if 'residual' in r[0])} | "
        f"{sum(1 for r in theirs_all if 'residual' in r[0])} |"
    )
    lines += [
        "",
        "A *refusal* is deliberate: the workflow stops before writing a file and names the object and the way "
        "forward (a hand-written migration) instead of shipping a migration that silently misses it. "
        "*Residual differences* are the dangerous outcome: exit 0 and a database that differs from the models.",
        "",
        "Renames are generated by both tools as a drop and an add: the schema round-trips, the data does not. "
        "The apply guard (`inv migrate.apply`) stops such a migration until `--allow-destructive`.",
        "",
        "| scenario | this workflow | detail | Alembic autogenerate | detail | note |",
        "|---|---|---|---|---|---|",
    ]
    for s, ours, theirs in rows:
        esc = lambda t: t.replace("|", "\\|")  # noqa: E731
        lines.append(f"| {s.id} | {ours[0]} | {esc(ours[1])} | {theirs[0]} | {esc(theirs[1])} | {esc(s.note)} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
