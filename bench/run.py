"""Benchmarks of the workflow against its baselines, measured side by side in one run.

    inv bench            (or: .venv/bin/python bench/run.py [--quick])

Prints a table of medians and writes bench/results.md (machine, versions, date, figures).
Needs README command 1 done (the Atlas CLI; PostgreSQL server binaries for the local backend;
Docker for the Compose rows, which are skipped with a note when no engine answers).
Everything runs in temporary copies of the project on their own ports; nothing here touches
the project's own stack or files except bench/results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import make_project  # noqa: E402  (a project copy with its own ports)
from tools.atlas import find_binary  # noqa: E402  (after the sys.path insert above)
from tools.atlas import version as atlas_version  # noqa: E402  (after the sys.path insert above)

ROWS: list[tuple[str, str, float, str, float, str]] = []  # id, ours, ours_s, baseline, base_s, note


def timed(argv, cwd, env, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        samples.append(time.perf_counter() - start)
        if proc.returncode not in (0, 2):
            raise SystemExit(f"bench: {' '.join(map(str, argv[:4]))} failed: {proc.stderr.strip()[-300:]}")
    return statistics.median(samples)


def row(rid, ours, ours_s, base, base_s, note=""):
    ROWS.append((rid, ours, ours_s, base, base_s, note))
    ratio = ours_s / base_s if base_s else float("nan")
    print(
        f"{rid:<6} {ours:<44} {ours_s * 1000:9.0f} ms | {base:<40} {base_s * 1000:9.0f} ms | {ratio:5.2f}x {note}",
        flush=True,
    )


def inv(p, *args):
    return [sys.executable, "-m", "invoke", *args]


def env_of(p):
    return {**os.environ, **p.env}


def p1_p2(p, runs):
    env, atlas = env_of(p), find_binary()
    subprocess.run(inv(p, "db.up"), cwd=p.root, env=env, check=True, capture_output=True)
    subprocess.run(inv(p, "migrate.apply"), cwd=p.root, env=env, check=True, capture_output=True)
    ours = timed(inv(p, "migrate.status", "--env", "local"), p.root, env, runs)
    bare = timed([atlas, "migrate", "status", "--env", "local"], p.root, env, runs)
    row("P1", "inv migrate.status --env local", ours, "atlas migrate status --env local", bare)
    ours = timed(inv(p, "migrate.diff", "--name", "bench_noop"), p.root, env, runs)
    script = f"{sys.executable} tools/dump_schema.py > schema.sql && {atlas} migrate diff bench_noop --env sqlalchemy"
    bare = timed(["sh", "-c", script], p.root, env, runs)
    row(
        "P2",
        "inv migrate.diff (no model change)",
        ours,
        "dump + atlas migrate diff",
        bare,
        "ours also replays the history and builds the models in scratch databases and compares their catalogs",
    )


def generated_models(directory: Path, tables: int) -> str:
    name = f"bench_models_{tables}"
    lines = [
        "from sqlalchemy import Column, Enum, ForeignKey, Index, Integer, MetaData, String, Table, text",
        "metadata = MetaData(naming_convention={'pk': 'pk_%(table_name)s', 'ix': 'ix_%(table_name)s_%(column_0_name)s',"
        " 'uq': 'uq_%(table_name)s_%(column_0_name)s', 'fk': 'fk_%(table_name)s_%(column_0_name)s'})",
        "status = Enum('new', 'done', name='status')",
    ]
    for i in range(tables):
        fk = f", Column('parent_id', ForeignKey('t{i - 1}.id'), index=True)" if i else ""
        lines.append(
            f"t{i} = Table('t{i}', metadata, Column('id', Integer, primary_key=True), "
            f"Column('name', String(100), nullable=False, unique=True), Column('state', status, server_default='new'),"
            f" Column('n', Integer, server_default=text('0')){fk})"
        )
        lines.append(f"Index('ix_t{i}_name_state', t{i}.c.name, t{i}.c.state, postgresql_where=text('n > 0'))")
    (directory / f"{name}.py").write_text("\n".join(lines) + "\n")
    return name


def child_peak(argv, cwd, env, runs) -> tuple[float, float]:
    """(median seconds, peak RSS MiB) of a command, each sample in a fresh child."""
    samples, peaks = [], []
    for _ in range(runs):
        code = (
            "import resource, subprocess, sys, time; s=time.perf_counter(); "
            f"r=subprocess.run({argv!r}, cwd={str(cwd)!r}, capture_output=True); t=time.perf_counter()-s; "
            "assert r.returncode == 0, r.stderr[-500:]; "
            "print(t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        samples.append(float(out[0]))
        peaks.append(int(out[1]) / 1024)
    return statistics.median(samples), max(peaks)


ALEMBIC_COMPARE = """
import importlib, sys
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
metadata = importlib.import_module(sys.argv[1]).metadata
engine = create_engine(sys.argv[2])
with engine.connect() as conn:
    diff = compare_metadata(MigrationContext.configure(conn), metadata)
print(len(diff))
"""


def p3(p, runs, sizes):
    from tools.urls import libpq_url

    work = Path(tempfile.mkdtemp(prefix="bench-models-"))
    env = {**env_of(p), "PYTHONPATH": str(work)}
    (work / "alembic_compare.py").write_text(ALEMBIC_COMPARE)
    url = libpq_url(p.env["DEV_DATABASE_URL"], "DEV_DATABASE_URL").replace("postgresql://", "postgresql+psycopg://")
    subprocess.run(inv(p, "db.up"), cwd=p.root, env=env_of(p), check=True, capture_output=True)
    per_table = []
    for n in sizes:
        module = generated_models(work, n)
        ours, ours_mem = child_peak([sys.executable, "tools/dump_schema.py", module], ROOT, env, runs)
        base, base_mem = child_peak([sys.executable, str(work / "alembic_compare.py"), module, url], ROOT, env, runs)
        per_table.append(ours / n)
        row(
            f"P3-{n}",
            f"dump {n} tables (peak {ours_mem:.0f} MiB)",
            ours,
            f"alembic compare_metadata (peak {base_mem:.0f} MiB)",
            base,
        )
    shutil.rmtree(work, ignore_errors=True)
    return per_table


def p4(p, runs, files):
    """`files` small migrations applied to an empty database, three ways."""
    from tools import ownership
    from tools.config import Config
    from tools.urls import libpq_url

    env, atlas = env_of(p), find_binary()
    mig = p.root / "migrations"
    shutil.rmtree(mig)
    mig.mkdir()
    bodies = []
    for i in range(files):
        body = f'CREATE TABLE "public"."b{i}" ("id" integer NOT NULL, "v" text NULL, PRIMARY KEY ("id"));\n'
        (mig / f"{20000101000000 + i}_b{i}.sql").write_text(body)
        bodies.append(body)
    subprocess.run([atlas, "migrate", "hash", "--env", "sqlalchemy"], cwd=p.root, env=env, check=True)
    target = p.env["DATABASE_URL"]

    config = Config.load(p.root, environ=p.env)

    def fresh():  # the bench's own throw-away project: its local database
        ownership.recreate(config, target, "DATABASE_URL", kind="local", confirmed=True)

    def one(argv, extra=None):
        samples = []
        for _ in range(runs):
            fresh()
            start = time.perf_counter()
            subprocess.run(argv, cwd=p.root, env={**env, **(extra or {})}, check=True, capture_output=True)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    ours = one(inv(p, "migrate.apply"))
    bare = one([atlas, "migrate", "apply", "--env", "local"])
    concat = p.root / "all.sql"
    concat.write_text("".join(bodies))
    parts = libpq_url(target, "x")
    psql = one(["psql", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(concat), parts])
    row(
        "P4",
        f"inv migrate.apply ({files} files)",
        ours,
        "psql -1 -f (one file, the physical limit)",
        psql,
        f"bare atlas migrate apply: {bare * 1000:.0f} ms ({ours / bare:.2f}x); ours adds status calls and the "
        "emptiness check",
    )
    alembic_s = alembic_upgrade(p, files, target, runs, fresh)
    row(
        "P4-alembic", f"inv migrate.apply ({files} files)", ours, f"alembic upgrade head ({files} revisions)", alembic_s
    )

    # The same files pending on a database that already has history: every file is linted.
    samples, bare_samples = [], []
    for _ in range(runs):
        for samples_of, argv in (
            (samples, inv(p, "migrate.apply")),
            (bare_samples, [atlas, "migrate", "apply", "--env", "local"]),
        ):
            fresh()
            subprocess.run(
                [atlas, "migrate", "apply", "--env", "local", "1"], cwd=p.root, env=env, check=True, capture_output=True
            )
            start = time.perf_counter()
            subprocess.run(argv, cwd=p.root, env=env, check=True, capture_output=True)
            samples_of.append(time.perf_counter() - start)
    row(
        "P4-lint",
        f"inv migrate.apply ({files - 1} files, with history)",
        statistics.median(samples),
        f"atlas migrate apply (same {files - 1} files)",
        statistics.median(bare_samples),
        "every pending file linted (Atlas runs them all and inspects those that change existing objects; "
        "squawk) and drift checked before the apply",
    )


def p6(p, runs, history=50):
    """The everyday apply: one pending file on a database with `history` applied, against bare
    Atlas + squawk on that file (what a careful user runs by hand)."""
    from tools import ownership
    from tools.config import Config

    env, atlas = env_of(p), find_binary()
    mig = p.root / "migrations"
    shutil.rmtree(mig)
    mig.mkdir()
    for i in range(history + 1):
        body = f'CREATE TABLE "public"."h{i}" ("id" integer NOT NULL, "v" text NULL, PRIMARY KEY ("id"));\n'
        (mig / f"{20000101000000 + i}_h{i}.sql").write_text(body)
    last = mig / f"{20000101000000 + history}_h{history}.sql"
    last.write_text(f'ALTER TABLE "public"."h0" ADD COLUMN "note{history}" text NULL;\n')
    subprocess.run([atlas, "migrate", "hash", "--env", "sqlalchemy"], cwd=p.root, env=env, check=True)
    config = Config.load(p.root, environ=p.env)
    squawk = str(Path(sys.executable).parent / "squawk")
    bare = f"{atlas} migrate apply --env local && {{ {squawk} {last}; true; }}"
    samples: dict[str, list[float]] = {"ours": [], "bare": []}
    for _ in range(runs):
        for kind, argv in (("ours", inv(p, "migrate.apply")), ("bare", ["sh", "-c", bare])):
            ownership.recreate(config, p.env["DATABASE_URL"], "DATABASE_URL", kind="local", confirmed=True)
            subprocess.run(
                [atlas, "migrate", "apply", "--env", "local", str(history)],
                cwd=p.root,
                env=env,
                check=True,
                capture_output=True,
            )
            start = time.perf_counter()
            subprocess.run(argv, cwd=p.root, env=env, check=True, capture_output=True)
            samples[kind].append(time.perf_counter() - start)
    row(
        "P6",
        f"inv migrate.apply (1 file, {history} applied)",
        statistics.median(samples["ours"]),
        "atlas migrate apply + squawk on the file",
        statistics.median(samples["bare"]),
        "ours adds start-up, a status before and after, and the drift check and Atlas's lint, whose "
        "results for unchanged files are remembered (.state/cache); see `inv migrate.apply --timings`",
    )


def alembic_upgrade(p, files, target, runs, fresh) -> float:
    from tools.urls import libpq_url

    work = Path(tempfile.mkdtemp(prefix="bench-alembic-"))
    (work / "versions").mkdir()
    (work / "env.py").write_text(
        "from alembic import context\nfrom sqlalchemy import create_engine\n"
        "engine = create_engine(context.config.get_main_option('sqlalchemy.url'))\n"
        "with engine.connect() as conn:\n    context.configure(connection=conn, transaction_per_migration=True)\n"
        "    with context.begin_transaction():\n        context.run_migrations()\n"
    )
    (work / "script.py.mako").write_text("")
    prev = None
    for i in range(files):
        (work / "versions" / f"r{i:04d}.py").write_text(
            f"revision = 'r{i:04d}'\ndown_revision = {prev!r}\nbranch_labels = None\ndepends_on = None\n"
            "from alembic import op\n"
            f"def upgrade():\n    op.execute('CREATE TABLE b{i} (id integer PRIMARY KEY, v text)')\n"
        )
        prev = f"r{i:04d}"
    url = libpq_url(target, "x").replace("postgresql://", "postgresql+psycopg://")
    ini = work / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {work}\nsqlalchemy.url = {url.replace('%', '%%')}\n")
    samples = []
    for _ in range(runs):
        fresh()
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"], check=True, capture_output=True
        )
        samples.append(time.perf_counter() - start)
    shutil.rmtree(work, ignore_errors=True)
    return statistics.median(samples)


def p5(tmp: Path, runs):
    from tools.compose_stack import docker_answers

    for backend in ("local", "compose"):
        if backend == "compose" and not docker_answers():
            print("P5 compose: skipped (no Docker engine answers)")
            continue
        p = make_project(tmp / f"p5-{backend}", backend)
        env = env_of(p)
        try:
            subprocess.run(inv(p, "db.up"), cwd=p.root, env=env, check=True, capture_output=True)
            warm = timed(inv(p, "db.up"), p.root, env, runs)
            colds = []
            for _ in range(runs):
                subprocess.run(inv(p, "db.down"), cwd=p.root, env=env, check=True, capture_output=True)
                colds.append(timed(inv(p, "db.up"), p.root, env, 1))
            cold = statistics.median(colds)
            status = timed(inv(p, "db.status"), p.root, env, runs)
            row(
                f"P5-{backend}",
                f"inv db.up, already up ({backend})",
                warm,
                f"inv db.status ({backend})",
                status,
                f"from cold (stopped, images present): {cold * 1000:.0f} ms",
            )
        finally:
            subprocess.run(inv(p, "db.down", "--volumes"), cwd=p.root, env=env, capture_output=True)


def versions() -> list[str]:
    def first(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except Exception:
            return "n/a"

    import alembic
    import sqlalchemy

    return [
        f"Python {platform.python_version()}",
        f"Atlas {atlas_version(find_binary())}",
        first(["psql", "--version"]),
        f"SQLAlchemy {sqlalchemy.__version__}",
        f"Alembic {alembic.__version__}",
        first(["docker", "version", "--format", "Docker engine {{.Server.Version}}"]),
    ]


def write_results(path: Path, args, per_table) -> None:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `inv bench` on {dt.date.today().isoformat()}; medians of {args.runs} runs unless noted.",
        "",
        f"Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM.  ",
        "Versions: " + "; ".join(versions()) + ".",
        "",
        "| row | ours | median | baseline | median | ratio | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for rid, ours, ours_s, base, base_s, note in ROWS:
        lines.append(
            f"| {rid} | {ours} | {ours_s * 1000:.0f} ms | {base} | {base_s * 1000:.0f} ms | {ours_s / base_s:.2f}x | "
            f"{note} |"
        )
    if per_table:
        lines += [
            "",
            "Dump time per table: "
            + ", ".join(f"{t * 1000:.2f} ms" for t in per_table)
            + " (10, 100, 1,000 tables): constant or falling per table means the dump grows linearly; "
            "the fixed part is Python and SQLAlchemy start-up.",
        ]
    lines += [
        "",
        "## Reading the figures",
        "",
        "- P1: `inv migrate.status` costs the start-up of Python and invoke on top of Atlas (about 0.2 s); "
        "it imports neither SQLAlchemy nor psycopg. The ratio is above 1.2x because bare Atlas answers in "
        "under 0.1 s; the absolute overhead is what a user feels, and it is constant.",
        "- P2: `inv migrate.diff` does more than the bare pair on purpose: it replays the history and builds "
        "the models in scratch databases and compares their catalogs (the verification is the product). What "
        "does not depend on each other runs at the same time: the dump while the history replays, Atlas's diff "
        "while the models are built; `inv migrate.diff --timings` shows each step.",
        "- P4: on an empty database (a new environment, `db.reset`) `inv migrate.apply` checks that it is "
        "empty and skips the lint, which has nothing to protect there; what remains is start-up and the status "
        "calls around Atlas. Atlas runs each file in its own transaction and records it, which is why bare Atlas "
        "is slower than one `psql -1` transaction and than Alembic's single process.",
        "- P4-lint: with history, every pending file is linted and drift is checked before applying. Atlas's "
        "lint inspects the whole database after every statement it analyzes; its analyzers only report changes "
        "to existing objects, so it analyzes from the first file that makes one (tools/lintscope.py) and runs the "
        "files before it as plain SQL: a file that does not run still stops the batch before anything is "
        "applied. squawk reads every file.",
        "- P6: the everyday apply. Its floor is the start-up of Python and invoke (about 0.15 s) and two "
        "`atlas migrate status` calls (before: what is pending; after: the proof it landed; about 0.09 s "
        "each), against a bare apply of about 0.1 s: 1.5x of bare Atlas is out of reach for any wrapper that "
        "checks before and after. The drift check reads the target's catalogs every time and compares them "
        "with the history's, remembered after the first replay; Atlas's lint of an unchanged file too.",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer runs and smaller sizes (a smoke test)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated groups to run: p1p2,p3,p4,p6,p5 (default: all; results.md is "
        "then not written unless --out is given)",
    )
    args = ap.parse_args()
    if not find_binary():
        raise SystemExit("bench: the Atlas CLI is not installed: run scripts/bootstrap first")
    sizes, files = ((10, 100), 50) if args.quick else ((10, 100, 1000), 500)
    if args.quick:
        args.runs = min(args.runs, 2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    tmp.chmod(0o755)
    p = make_project(tmp / "main", "local")
    try:
        print(f"{'row':<6} {'ours':<44} {'median':>12} | {'baseline':<40} {'median':>12} | ratio")
        groups = {g.strip() for g in args.only.split(",") if g.strip()} or {"p1p2", "p3", "p4", "p6", "p5"}
        per_table: list[float] = []
        if "p1p2" in groups:
            p1_p2(p, args.runs)
        if "p3" in groups:
            per_table = p3(p, max(1, args.runs // 2), sizes)
        if "p4" in groups:
            p4(p, max(1, min(3, args.runs)), files)
        if "p6" in groups:
            p6(p, args.runs)
        if "p5" in groups:
            p5(tmp, max(1, min(3, args.runs)))
    finally:
        subprocess.run(inv(p, "db.down", "--volumes"), cwd=p.root, env=env_of(p), capture_output=True)
    if not args.only or "--out" in sys.argv:
        write_results(Path(args.out), args, per_table)
        print(f"wrote {args.out}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
