"""`inv migrate.status`: where an environment stands against migrations/ (Atlas's JSON, plus
the files Atlas would silently never run).

Imports neither SQLAlchemy nor psycopg: `inv migrate.status` must stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools.atlas import JSON, atlas_for
from tools.config import GUIDE_ENV, Config, Target, env_var_for
from tools.console import Report
from tools.errors import ERROR, OK, OUT_OF_SYNC, WorkflowError, exit_with
from tools.migrations import FILE_RE, regular_files_only, version_of


@dataclass
class StatusReport(Report):
    env: str
    status: str
    current: str
    next: str
    pending: list[str]
    applied: int
    available: int
    skipped: list[str] = field(default_factory=list)  # below the current version, never applied

    @property
    def code(self) -> int:
        return {"OK": OK, "PENDING": OUT_OF_SYNC}.get(self.status, ERROR)

    def lines(self) -> list[str]:
        word = {"OK": "in sync", "PENDING": "PENDING"}.get(self.status, self.status)
        current = self.current if self.current and self.current[:1].isdigit() else "none"
        return (
            [
                f"{self.env}: {word}; current version {current}; "
                f"{self.applied} applied, {len(self.pending)} pending of {self.available}"
            ]
            + [f"  pending {name}" for name in self.pending]
            + [
                f"  never run {name}: its version is below the current one (inv migrate.renumber --file {name})"
                for name in self.skipped
            ]
        )

    def verdict(self) -> None:
        exit_with(self.code)


@dataclass
class AllStatusReport(Report):
    """`inv migrate.status --all`: each environment's status, its error, or None if unset."""

    results: list[tuple[str, StatusReport | WorkflowError | None]] = field(default_factory=list)

    @property
    def code(self) -> int:
        code = OK
        for _, result in self.results:
            if isinstance(result, WorkflowError):
                code = ERROR
            elif result is not None:
                code = code or result.code
        return code

    def lines(self) -> list[str]:
        out = []
        for name, result in self.results:
            if result is None:
                out.append(f"{name}: not configured ({env_var_for(name)} is not set)")
            elif isinstance(result, WorkflowError):
                out.append(f"{name}: error: {result}")
            else:
                out += result.lines()
        return out

    def verdict(self) -> None:
        exit_with(self.code)


def status_all(config: Config) -> AllStatusReport:
    """Every environment of atlas.hcl but the guide's: its status, its error, or None if unset."""
    out: list[tuple[str, StatusReport | WorkflowError | None]] = []
    for env in config.env_names:
        if env == GUIDE_ENV:
            continue
        if not config.get(env_var_for(env)).strip():
            out.append((env, None))
            continue
        try:
            out.append((env, status(config, config.target(env))))
        except WorkflowError as exc:
            out.append((env, exc))
    return AllStatusReport(out)


def status(config: Config, target: Target) -> StatusReport:
    env = target.name
    regular_files_only(config)
    data = atlas_for(config).run("migrate", "status", "--env", env, "--format", JSON).json() or {}
    return status_of(env, data)


def status_of(env: str, data: dict) -> StatusReport:
    """The report of Atlas's `migrate status` JSON for `env`."""
    report = StatusReport(
        env=env,
        status=data.get("Status", "UNKNOWN"),
        current=data.get("Current", ""),
        next=data.get("Next", ""),
        pending=[f["Name"] for f in data.get("Pending") or []],
        applied=len(data.get("Applied") or []),
        available=len(data.get("Available") or []),
    )
    # Atlas v0.13.1 only runs files above the current version: a file merged in with a lower
    # version (two branches) is never applied, and Atlas reports "in sync". Say so.
    if report.current[:1].isdigit():
        recorded = {r.get("Version") for r in data.get("Applied") or []}
        below = [Path(f["Name"]) for f in data.get("Available") or [] if FILE_RE.match(f["Name"])]
        report.skipped = [
            p.name for p in below if version_of(p) not in recorded and int(version_of(p)) < int(report.current)
        ]
    if report.skipped:
        report.status = "OUT_OF_ORDER"
    return report


def require_settled(report: StatusReport) -> None:
    """Before an apply or a down: no file below the current version, no file left half-applied."""
    if report.skipped:
        raise out_of_order(report)
    if report.status not in ("OK", "PENDING"):
        raise WorkflowError(
            f"{report.env} is in state {report.status} (current version {report.current}); nothing was changed",
            hint="a previous apply failed part-way: fix the failing file, then run inv migrate.apply again",
        )


def out_of_order(report: StatusReport) -> WorkflowError:
    return WorkflowError(
        f"{report.env}: {len(report.skipped)} file(s) have a version below the current one ({report.current}) and "
        "would never run: " + ", ".join(report.skipped),
        hint="give them a version above the newest: inv migrate.renumber --file <name> (for each), then apply",
    )
