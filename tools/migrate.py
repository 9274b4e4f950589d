"""The migration workflow over Atlas: diff, apply, status, lint, validate, hash, new.

Each function takes a Config (and a stack when it needs one), does one job, and returns a
small report that tasks.py prints. Failures raise WorkflowError.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tools.atlas import JSON, Atlas
from tools.config import GUIDE_ENV, Config
from tools.errors import WorkflowError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
FILE_RE = re.compile(r"^(?P<version>\d+)(?:_(?P<name>.*))?\.sql$")

# Exit codes of the tasks (documented in README.md).
OK, ERROR, OUT_OF_SYNC = 0, 1, 2


def migrations_dir(config: Config) -> Path:
    return config.root / "migrations"


def migration_files(config: Config) -> list[Path]:
    directory = migrations_dir(config)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if FILE_RE.match(p.name))


def version_of(path: Path) -> str:
    return FILE_RE.match(path.name).group("version")


def statements_of(text: str) -> list[str]:
    """The SQL statements of a migration file, for display (comments dropped)."""
    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("--"))
    try:
        import pglast

        return [s.strip() for s in pglast.split(body) if s.strip()]
    except Exception:  # not parseable: show it as it is
        return [body.strip()] if body.strip() else []


def validate_name(config: Config, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise WorkflowError("a migration name is required", hint="pass --name, e.g. --name add_user_preferences")
    if not NAME_RE.match(name):
        raise WorkflowError(f"invalid migration name {name!r}", hint="use lower-case letters, digits and underscores (max 60), starting with a letter, e.g. add_user_preferences")
    for path in migration_files(config):
        if FILE_RE.match(path.name).group("name") == name:
            raise WorkflowError(f"a migration named {name!r} exists already ({path.name})", hint="choose another name")
    return name


def atlas_for(config: Config) -> Atlas:
    return Atlas(config.root, config.child_env(), mask=config.mask)


def all_env_urls(config: Config) -> tuple[str, ...]:
    urls = []
    for env_name in config.env_names:
        try:
            urls.append(config.url_for(env_name))
        except WorkflowError:
            pass
    return tuple(urls)


# --- schema.sql --------------------------------------------------------------------------------

@dataclass
class DumpReport:
    path: Path
    changed: bool


def dump(config: Config, stack, log, write: bool = True) -> DumpReport:
    text = stack.dump_schema(log)
    if not text.strip():
        raise WorkflowError("the schema dump printed nothing", hint="check that app/models defines tables")
    path = config.root / "schema.sql"
    old = path.read_text() if path.exists() else None
    changed = old != text
    if changed and write:
        tmp = path.with_suffix(".sql.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return DumpReport(path, changed)


# --- diff ------------------------------------------------------------------------------------

@dataclass
class DiffReport:
    files: list[Path] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    schema_changed: bool = False
    lint: list[str] = field(default_factory=list)
    renumbered: list[str] = field(default_factory=list)


def fresh_dev(config: Config) -> str:
    from tools.stack import recreate_database

    dev = config.dev_url()
    recreate_database(dev, protect=all_env_urls(config))
    return dev


def diff(config: Config, stack, name: str, log) -> DiffReport:
    name = validate_name(config, name)
    stack.up(log, ("dev-db", "app") if stack.name == "compose" else ("dev-db",))
    report = DiffReport(schema_changed=dump(config, stack, log).changed)
    fresh_dev(config)
    before = {p.name for p in migration_files(config)}
    atlas = atlas_for(config)
    try:
        atlas.run("migrate", "diff", name, "--env", GUIDE_ENV)
    finally:
        fresh_dev(config)  # Atlas leaves what it could not carry behind: never reuse it
    new = [p for p in migration_files(config) if p.name not in before]
    if not new:
        return report
    new, report.renumbered = ensure_increasing(config, before, new)
    if report.renumbered:
        atlas.run("migrate", "hash", "--env", GUIDE_ENV)
    report.files = new
    for path in new:
        report.statements += statements_of(path.read_text())
    report.lint = lint(config, latest=len(new)).lines()
    return report


def ensure_increasing(config: Config, before: set[str], new: list[Path]) -> tuple[list[Path], list[str]]:
    """Give each new file a version above every existing one (clock skew, two diffs a second)."""
    newest = max((int(FILE_RE.match(n).group("version")) for n in before), default=0)
    out, renamed = [], []
    for path in sorted(new):
        version = int(version_of(path))
        if version <= newest:
            rest = FILE_RE.match(path.name).group("name")
            version = newest + 1
            target = path.with_name(f"{version}_{rest}.sql" if rest else f"{version}.sql")
            path.rename(target)
            renamed.append(f"{path.name} -> {target.name}")
            path = target
        newest = version
        out.append(path)
    return out, renamed


# --- status / apply -----------------------------------------------------------------------------

@dataclass
class StatusReport:
    env: str
    status: str
    current: str
    next: str
    pending: list[str]
    applied: int
    available: int

    @property
    def code(self) -> int:
        return {"OK": OK, "PENDING": OUT_OF_SYNC}.get(self.status, ERROR)


def status(config: Config, env: str) -> StatusReport:
    config.url_for(env)
    data = atlas_for(config).run("migrate", "status", "--env", env, "--format", JSON).json() or {}
    return StatusReport(
        env=env,
        status=data.get("Status", "UNKNOWN"),
        current=data.get("Current", ""),
        next=data.get("Next", ""),
        pending=[f["Name"] for f in data.get("Pending") or []],
        applied=len(data.get("Applied") or []),
        available=len(data.get("Available") or []),
    )


@dataclass
class ApplyReport:
    env: str
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    dry_run: bool = False
    after: StatusReport | None = None


def guard(config: Config, env: str, yes: bool, ask) -> None:
    """Protected environments need a typed confirmation, or --yes; no TTY and no --yes refuses."""
    if env == "local" or not config.is_protected(env) or yes:
        return
    if not sys.stdin.isatty():
        raise WorkflowError(f"{env} is a protected environment and there is no terminal to confirm", hint="pass --yes to apply without asking (e.g. in CI)")
    answer = ask(f"Apply to {env}? Type the environment name to confirm: ")
    if (answer or "").strip() != env:
        raise WorkflowError(f"not confirmed; nothing was applied to {env}", hint=f"type {env} exactly to confirm")


def apply(config: Config, env: str, log, yes: bool = False, dry_run: bool = False, ask=input) -> ApplyReport:
    config.url_for(env)
    before = status(config, env)
    report = ApplyReport(env=env, pending=before.pending, dry_run=dry_run)
    if before.status not in ("OK", "PENDING"):
        raise WorkflowError(f"{env} is in state {before.status} (current version {before.current})", hint="a previous apply failed part-way: fix the failing file, then run inv migrate.apply again")
    if not before.pending:
        report.after = before
        return report
    if dry_run:
        return report
    guard(config, env, yes, ask)
    log(f"applying {len(before.pending)} migration(s) to {env}...")
    result = atlas_for(config).run("migrate", "apply", "--env", env, "--format", JSON, check=False)
    data = _json_or_none(result)
    if data:
        report.applied = [f["Name"] for f in data.get("Applied") or [] if not f.get("Error")]
    if result.code != 0:
        failed = _apply_failure(data)
        if failed:
            raise WorkflowError(failed, hint=f"fix the file, then run inv migrate.apply --env {env} again (that file was rolled back)")
        from tools.atlas import map_error

        raise map_error(result)
    report.after = status(config, env)
    return report


def _json_or_none(result):
    try:
        return result.json()
    except Exception:
        return None


def _apply_failure(data) -> str | None:
    if not data:
        return None
    for f in data.get("Applied") or []:
        err = f.get("Error")
        if err:
            stmt = " ".join((err.get("Stmt") or "").split())
            text = (err.get("Text") or "").strip()
            return f"{f.get('Name')} failed at statement `{stmt[:120]}`: {text}"
    return None


# --- lint / validate / hash / new ----------------------------------------------------------

@dataclass
class LintReport:
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # (file, code, text)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{f}: {c + ': ' if c else ''}{t}" for f, c, t in self.findings] + self.errors


def lint(config: Config, latest: int = 1, base: str | None = None) -> LintReport:
    args = ["migrate", "lint", "--env", GUIDE_ENV, "--format", JSON]
    args += ["--git-base", base] if base else ["--latest", str(latest)]
    fresh_dev(config)
    try:
        result = atlas_for(config).run(*args, check=False)
    finally:
        fresh_dev(config)
    data = _json_or_none(result)
    if data is None:
        if result.code != 0:
            from tools.atlas import map_error

            raise map_error(result)
        return LintReport()
    report = LintReport()
    for f in data.get("Files") or []:
        for r in f.get("Reports") or []:
            for d in r.get("Diagnostics") or []:
                report.findings.append((f.get("Name", "?"), d.get("Code", ""), d.get("Text", "")))
        if f.get("Error"):
            report.errors.append(f"{f.get('Name', '?')}: {f['Error']}")
    for step in data.get("Steps") or []:
        if step.get("Error"):
            report.errors.append(f"{step.get('Name')}: {step['Error']}")
    return report


def validate(config: Config) -> None:
    fresh_dev(config)
    try:
        atlas_for(config).run("migrate", "validate", "--env", GUIDE_ENV)
    finally:
        fresh_dev(config)


def rehash(config: Config) -> None:
    atlas_for(config).run("migrate", "hash", "--env", GUIDE_ENV)


def new(config: Config, name: str) -> Path:
    name = validate_name(config, name)
    before = {p.name for p in migration_files(config)}
    atlas = atlas_for(config)
    atlas.run("migrate", "new", name, "--env", GUIDE_ENV)
    created = [p for p in migration_files(config) if p.name not in before]
    if not created:
        raise WorkflowError("atlas migrate new created no file", hint="run atlas migrate new by hand to see why")
    files, renamed = ensure_increasing(config, before, created)
    if renamed:
        atlas.run("migrate", "hash", "--env", GUIDE_ENV)
    return files[0]


# --- the CI gate ------------------------------------------------------------------------------

@dataclass
class CheckReport:
    problems: list[tuple[int, str]] = field(default_factory=list)  # (exit code, one line)

    @property
    def code(self) -> int:
        return max((c for c, _ in self.problems), default=OK)


def default_base(config: Config) -> str | None:
    """The merge base with main (or origin/main), when this is a git checkout that has one."""
    import subprocess

    for ref in ("origin/main", "main"):
        proc = subprocess.run(["git", "merge-base", "HEAD", ref], cwd=config.root, capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return None


def check(config: Config, stack, log, base: str | None = None) -> CheckReport:
    """Prove migrations/ is in sync with the models, using only a throw-away dev database."""
    import shutil
    import tempfile

    report = CheckReport()
    stack.up(log, ("dev-db", "app") if stack.name == "compose" else ("dev-db",))
    fresh = stack.dump_schema(log)
    committed = (config.root / "schema.sql").read_text() if (config.root / "schema.sql").exists() else ""
    if fresh != committed:
        report.problems.append((OUT_OF_SYNC, "schema.sql is stale against the models: run inv schema.dump (or inv migrate.diff --name <change>)"))
    atlas = atlas_for(config)
    try:
        validate(config)
    except WorkflowError as exc:
        report.problems.append((ERROR, f"migrations/ is not valid: {exc}"))
        return report
    with tempfile.TemporaryDirectory(prefix="migrate-check-") as tmp:
        tmp_dir, desired = Path(tmp) / "migrations", Path(tmp) / "schema.sql"
        shutil.copytree(migrations_dir(config), tmp_dir)
        desired.write_text(fresh)
        fresh_dev(config)
        try:
            atlas.run("migrate", "diff", "pending_model_changes", "--env", GUIDE_ENV,
                      "--dir", f"file://{tmp_dir}", "--to", f"file://{desired}")
        finally:
            fresh_dev(config)
        extra = sorted(p.name for p in tmp_dir.glob("*.sql") if not (migrations_dir(config) / p.name).exists())
        if extra:
            stmts = statements_of((tmp_dir / extra[0]).read_text())
            first = " ".join(stmts[0].split())[:100] if stmts else ""
            report.problems.append((OUT_OF_SYNC, f"the models need a migration that does not exist yet ({len(stmts)} statement(s), first: {first}): run inv migrate.diff --name <change>"))
    base = base or default_base(config)
    if base:
        findings = lint(config, base=base)
        for line in findings.errors:
            report.problems.append((ERROR, f"lint: {line}"))
    return report
