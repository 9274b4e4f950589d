"""`inv migrate.lint`: Atlas's `migrate lint` on the dev database (destructive changes DS*,
data-dependent changes MF*, backward-incompatible changes BC*, files that do not run), its JSON
read into one report, remembered for files that did not change (tools/snapcache.py).

tools/safety.py joins it with squawk and the type checks before an apply.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools import gitbase, snapcache
from tools.atlas import JSON, Result, atlas_for, json_or_none, map_error
from tools.config import GUIDE_ENV, Config
from tools.console import Report
from tools.errors import WorkflowError
from tools.migrations import dir_args, migration_files, regular_files_only
from tools.pg import server_version
from tools.scratch import fresh_dev, private_copy, tidy_dev, using_dev

# Atlas analyzers whose findings mean the file cannot run as written (PG103: an index built
# CONCURRENTLY inside the file's transaction; the fix is the `-- atlas:txmode none` header).
FAILING_ATLAS = ("PG103",)


@dataclass
class LintReport(Report):
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # (file, code, text)
    errors: list[str] = field(default_factory=list)

    def finding_lines(self) -> list[str]:
        return [f"{f}: {c + ': ' if c else ''}{t}" for f, c, t in self.findings] + self.errors

    def lines(self) -> list[str]:
        if self.errors:
            return self.finding_lines()
        return self.finding_lines() + [
            "lint: no errors" + (f" ({len(self.findings)} finding(s))" if self.findings else "")
        ]

    def verdict(self) -> None:
        if self.errors:
            raise WorkflowError(f"lint found {len(self.errors)} error(s)")


@using_dev
def lint(config: Config, latest: int = 1, base: str | None = None, directory: Path | None = None) -> LintReport:
    with lint_started(config, latest, base, directory) as finish:
        return finish()


@contextlib.contextmanager
def lint_started(
    config: Config, latest: int = 1, base: str | None = None, directory: Path | None = None
) -> Iterator[Callable[[], LintReport]]:
    """Atlas's lint started on the dev database (the caller holds its lock); the block may do
    other work meanwhile, and calls what it yields for the report."""
    regular_files_only(config)
    if base:
        gitbase.require_repository(config.root)
        base = gitbase.require_commit(
            config.root, base
        )  # Atlas runs `git diff <base> HEAD` itself: a commit, never a guess
        with _linting(config, ["--git-base", base], directory, None) as finish:
            yield finish
        return
    cached = snapcache.load(config, _lint_key(config, latest, directory))
    if cached is not None:
        yield lambda: LintReport([(f[0], f[1], f[2]) for f in cached["findings"]], list(cached["errors"]))
        return
    with (
        private_copy(config, directory) as copy,  # remembered under the key of the very bytes linted
        _linting(config, ["--latest", str(latest)], copy, _lint_key(config, latest, copy)) as finish,
    ):
        yield finish


@contextlib.contextmanager
def _linting(
    config: Config, window: list[str], directory: Path | None, remembered: str | None
) -> Iterator[Callable[[], LintReport]]:
    fresh_dev(config)
    try:
        args = ["migrate", "lint", "--env", GUIDE_ENV, "--format", JSON, *dir_args(directory), *window]
        with atlas_for(config).start(*args) as running:

            def finish() -> LintReport:
                report = _lint_result(running.wait(check=False))
                if not report.errors:  # a failure is never remembered: it is rerun and reported again
                    findings = [list(f) for f in report.findings]  # as JSON gives them back (snapcache.store)
                    snapcache.store(config, remembered, {"findings": findings, "errors": []})
                return report

            yield finish
    finally:
        tidy_dev(config)


def _lint_key(config: Config, latest: int, directory: Path | None) -> str | None:
    """The key of Atlas's lint of the newest `latest` files, as they are now (tools/snapcache.py)."""
    files = migration_files(config, directory)
    return snapcache.key(config, len(files), server_version(config.dev_url()), directory, purpose=f"lint {latest}")


def _lint_result(result: Result) -> LintReport:
    data = json_or_none(result)
    if data is None:
        if result.code != 0:
            raise map_error(result)
        return LintReport()
    return lint_report_of(data)


def lint_report_of(data: dict) -> LintReport:
    """The report of Atlas's `migrate lint` JSON: findings, and errors (a file that cannot run
    as written counts as one)."""
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
    failing = {name for name, code, _ in report.findings if code in FAILING_ATLAS}
    report.errors += [
        f"{name}: cannot run as written (see {', '.join(FAILING_ATLAS)} above)"
        for name in sorted(failing)
        if not any(e.startswith(f"{name}: ") for e in report.errors)
    ]
    return report


# --- squawk, and both together -----------------------------------------------------------
