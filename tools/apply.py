"""`inv migrate.apply`: status -> drift check -> lint (Atlas + squawk) -> confirm -> apply ->
status, under one advisory lock per target database; Atlas's JSON read for what ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tools import catalog, preconditions, safety
from tools.atlas import JSON, Atlas, atlas_for, json_or_none, map_error
from tools.config import Config, Target
from tools.console import Log, Report, guard, progress
from tools.errors import NotAdopted, WorkflowError
from tools.fidelity import drift
from tools.migrations import check_versions, migrations_dir, statements_of
from tools.pg import apply_lock, duration_ms, validate_duration
from tools.signals import Interrupted, signum_of
from tools.status import StatusReport, require_settled, status


@dataclass
class ApplyReport(Report):
    env: str
    applied: list[str] = field(default_factory=list)
    timings: dict[str, tuple[int, float | None]] = field(default_factory=dict)  # name -> (statements, ms)
    pending: list[str] = field(default_factory=list)
    dry_run: bool = False
    after: StatusReport | None = None
    safety: safety.SafetyReport | None = None
    drift: list[catalog.Difference] = field(default_factory=list)
    sql: dict[str, list[str]] = field(default_factory=dict)  # dry run: name -> its statements
    checks: list[preconditions.Result] = field(default_factory=list)  # the pending files' pre-conditions

    def lines(self) -> list[str]:
        if self.dry_run:
            return self._dry_run_lines()
        out = []
        if self.applied:
            for name in self.applied:
                statements, ms = self.timings.get(name, (None, None))
                detail = ", ".join(
                    part
                    for part in (
                        f"{statements} statement(s)" if statements is not None else "",
                        f"{ms:.0f} ms" if ms is not None else "",
                    )
                    if part
                )
                out.append(f"applied {name}" + (f" ({detail})" if detail else ""))
            if self.checks:
                out.append(f"pre-conditions: {len(self.checks)} check(s) passed before anything ran")
            out.append(f"{self.env}: {len(self.applied)} migration(s) applied")
        elif not self.pending:
            out.append(f"{self.env}: already at the latest version, nothing to apply")
        return out + (self.after.lines() if self.after else [])

    def verdict(self) -> None:
        """A dry run whose pre-conditions failed ends in exit 1: the real apply would refuse."""
        refused = preconditions.refusal(self.checks, self.env) if self.dry_run else None
        if refused:
            raise WorkflowError(
                refused.message.replace("nothing was applied", "the apply would refuse (dry run)"),
                hint="fix the data (or the check) first; every check's result is listed above",
            )

    def _dry_run_lines(self) -> list[str]:
        if not self.pending:
            return [f"{self.env}: nothing pending (dry run, nothing changed)"]
        out = [f"{self.env}: {len(self.pending)} pending file(s) (dry run, nothing applied):"]
        for name in self.pending:
            out += [f"-- {name}"] + [stmt + ";" for stmt in self.sql.get(name, [])]
        out += [f"drift: {difference}" for difference in self.drift]
        out += [f"pre-condition {result}" for result in self.checks]
        if self.safety:
            out += [f"destructive: {finding}" for finding in self.safety.blocking]
            out += [f"lock safety: {finding}" for finding in self.safety.advisory]
        return out


def apply(
    config: Config,
    target: Target,
    log: Log,
    yes: bool = False,
    dry_run: bool = False,
    ask: Callable[[str], str] = input,
    allow_destructive: bool = False,
    ignore_drift: bool = False,
    lock_timeout: str = "",
    check_drift: bool = True,
    table_lock_timeout: str = "",
) -> ApplyReport:
    """Status -> drift check -> lint (Atlas + squawk) -> confirm -> apply -> status."""
    lock_timeout = validate_duration(lock_timeout or config.get("ATLAS_LOCK_TIMEOUT", "10s"))
    table_timeout = validate_duration(
        table_lock_timeout or config.get("TABLE_LOCK_TIMEOUT", "5s"), allow_zero=True, what="table lock timeout"
    )
    check_versions(config)
    preconditions.load(config)  # a checks file that names no migration, or is not a SELECT: refused before anything
    with apply_lock(target.url, target.name, lock_timeout, log):
        return _apply(
            config,
            target,
            log,
            yes,
            dry_run,
            ask,
            allow_destructive,
            ignore_drift,
            lock_timeout,
            check_drift,
            table_timeout,
        )


def _apply(
    config: Config,
    target: Target,
    log: Log,
    yes: bool,
    dry_run: bool,
    ask: Callable[[str], str],
    allow_destructive: bool,
    ignore_drift: bool,
    lock_timeout: str,
    check_drift: bool,
    table_timeout: str,
) -> ApplyReport:
    env = target.name
    before = status(config, target)
    report = ApplyReport(env=env, pending=before.pending, dry_run=dry_run)
    require_settled(before)
    if not before.pending:
        report.after = before
        return report
    report.checks = _preconditions(config, target, before, log)
    refused = None if dry_run else preconditions.refusal(report.checks, env)
    if refused:
        raise refused
    if before.applied or dry_run:
        # Atlas's lint runs on the dev database while the drift check replays on a scratch one.
        with safety.analysis_started(config, before.pending, target_url=target.url, log=log) as analysis:
            _check_drift(config, target, before, report, check_drift, ignore_drift or dry_run)
            report.safety = analysis()
    else:
        # Nothing applied yet and nothing there: no file can lose data or hold a lock on a table
        # anyone uses. Linting 500 files there only costs time (most of a first deploy);
        # --dry-run and inv migrate.lint still lint them.
        snapshot = catalog.snapshot_url(target.url)
        if not catalog.is_empty(snapshot):
            raise NotAdopted(env, catalog.kinds(snapshot))
        report.safety = safety.SafetyReport()
        log(
            f"{env} has no migration applied yet (an empty database): "
            "nothing to lose, so the pending files are not linted"
        )
    broken = report.safety.failing
    if broken and not dry_run:
        raise WorkflowError(
            f"a pending migration does not run: {broken[0].file}: {broken[0].text}",
            hint="fix the file, then run inv migrate.hash (nothing was applied)",
        )
    if dry_run:
        report.sql = {name: statements_of((migrations_dir(config) / name).read_text()) for name in before.pending}
        return report
    if report.safety.blocking and not allow_destructive:
        destructive = report.safety.blocking[0]
        raise WorkflowError(
            f"{len(report.safety.blocking)} destructive change(s) pending, first: {destructive}",
            hint=f"review them (inv migrate.apply --env {env} --dry-run), then pass --allow-destructive",
        )
    for finding in report.safety.advisory:
        log(f"lock safety: {finding}")
    guard(target, yes, ask, action=f"apply {len(before.pending)} file(s)", files=before.pending)
    with progress(log, f"Applying {len(before.pending)} migration(s) to {env}"):
        try:
            result = _atlas_with_table_lock_timeout(config, target, table_timeout).run(
                "migrate", "apply", "--env", env, "--lock-timeout", lock_timeout, "--format", JSON, check=False
            )
        except KeyboardInterrupt as exc:
            raise interrupted_apply(exc, env) from None
    data = json_or_none(result)
    if data:
        ran = [f for f in data.get("Applied") or [] if not f.get("Error")]
        report.applied = [f["Name"] for f in ran]
        report.timings = {f["Name"]: (len(f.get("Applied") or []), _file_ms(f)) for f in ran}
    if result.code != 0:
        failed = _apply_failure(data)
        if failed and "due to lock timeout" in failed:
            earlier = f" ({len(report.applied)} earlier file(s) applied)" if report.applied else ""
            raise WorkflowError(
                f"{failed.split(' failed at ')[0]} waited more than {table_timeout} for a table lock "
                "held by another transaction; "
                f"that file was rolled back{earlier}",
                hint=(
                    "retry when the table is quiet (see pg_stat_activity), or raise TABLE_LOCK_TIMEOUT / "
                    "--table-lock-timeout"
                ),
            )
        if failed:
            raise WorkflowError(
                failed, hint=f"fix the file, then run inv migrate.apply --env {env} again (that file was rolled back)"
            )
        raise map_error(result)
    report.after = status(config, target)
    return report


def _check_drift(
    config: Config, target: Target, before: StatusReport, report: ApplyReport, check: bool, tolerate: bool
) -> None:
    """The target compared with what its applied migrations build; drift refuses the apply
    unless `tolerate` (--ignore-drift, a dry run)."""
    if not (check and before.applied):
        return
    report.drift = drift(config, target, applied=before.applied)
    if report.drift and not tolerate:
        first = str(report.drift[0])
        raise WorkflowError(
            f"{target.name} has drifted from its migrations ({len(report.drift)} difference(s), first: {first})",
            hint=f"see inv migrate.drift --env {target.name}; pass --ignore-drift to apply anyway",
        )


def _preconditions(config: Config, target: Target, before: StatusReport, log: Log) -> list[preconditions.Result]:
    """Run the pre-conditions of every pending file on the target, before any file runs (read-only)."""
    checks = preconditions.for_files(config, before.pending)
    if checks and not before.applied:
        log(
            f"{target.name} has no migration applied yet, so no data to guard: "
            f"the {len(checks)} pre-condition check(s) of the pending files are skipped"
        )
        return []
    return preconditions.run(target.url, checks, target.name)


def interrupted_apply(exc: KeyboardInterrupt, env: str) -> KeyboardInterrupt:
    """The interruption of an apply (Atlas stopped and waited for, see Atlas.run), saying what stays."""
    result = getattr(exc, "result", None)
    data = json_or_none(result) if result else None
    files = (data or {}).get("Applied") or []
    done = [f["Name"] for f in files if not f.get("Error")]
    rolled = [f["Name"] for f in files if f.get("Error")]
    note = "whole files were applied and recorded, none half"
    if data is not None:
        note += f": {len(done)} file(s) applied" + (f" (last {done[-1]})" if done else "")
        note += f", {rolled[0]} rolled back" if rolled else ""
    out = exc if isinstance(exc, Interrupted) else Interrupted(signum_of(exc))
    out.note = f"{note}; see inv migrate.status --env {env}"
    return out


def _atlas_with_table_lock_timeout(config: Config, target: Target, table_timeout: str) -> Atlas:
    """Atlas whose session gives up on a table lock after `table_timeout`, instead of queueing every query.

    An ALTER TABLE that waits behind a long transaction blocks all later readers of the table
    while it waits: on a busy production database that is an outage. lib/pq (Atlas's driver)
    sends unknown URL parameters as run-time settings, so `lock_timeout` in the URL applies to
    every statement of the apply. A lock_timeout already in the URL wins.
    """
    if table_timeout == "0":
        return atlas_for(config)
    parts = urlsplit(target.url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "lock_timeout" for key, _ in query):
        return atlas_for(config)
    url = urlunsplit(parts._replace(query=urlencode([*query, ("lock_timeout", str(duration_ms(table_timeout)))])))
    return Atlas(config.root, config.child_environ(**{target.variable: url}), mask=config.mask)


def _file_ms(entry: dict) -> float | None:
    """Milliseconds between Atlas's Start and End (RFC 3339 with nanoseconds) of one file."""
    try:
        start, end = (datetime.fromisoformat(entry[key]) for key in ("Start", "End"))
    except (KeyError, TypeError, ValueError):
        return None
    return (end - start).total_seconds() * 1000


def _apply_failure(data: dict[str, Any] | None) -> str | None:
    if not data:
        return None
    for f in data.get("Applied") or []:
        err = f.get("Error")
        if err:
            stmt = " ".join((err.get("Stmt") or "").split())
            text = (err.get("Text") or "").strip()
            return f"{f.get('Name')} failed at statement `{stmt[:120]}`: {text}"
    return None
