"""The code's own checks, one nox session each (invoke's `inv` stays the menu of the workflow).

    nox -s lint typecheck unit    # what CI runs before the test suite
    nox -s unit-3.12              # one Python
    nox -s tests                  # the whole suite, the README's command

Sessions install the pinned tools of requirements-dev.txt into their own virtualenvs (.nox/).
`unit` runs on every Python pyproject.toml promises (3.11 to 3.13): an interpreter that is not
on PATH is looked for among pyenv's versions; one that is nowhere skips the session with the
reason, except under CI=true, where it is an error.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
REQUIREMENTS = ROOT / "requirements-dev.txt"
PYTHONS = ["3.11", "3.12", "3.13"]
DEFAULT_PYTHON = PYTHONS[0]
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

nox.options.sessions = ["lint", "typecheck", "unit"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = IN_CI


def _runs(version: str) -> bool:
    """`python3.X` on PATH starts (a pyenv shim for a version pyenv has not selected does not)."""
    exe = shutil.which(f"python{version}")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-c", ""], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _pyenv_python(version: str) -> Path | None:
    """The newest pyenv-installed `version` (3.12 -> versions/3.12.x/bin/python3.12), if any."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = [
        path / "bin" / f"python{version}"
        for path in (root / "versions").glob(f"{version}.*")
        if re.fullmatch(rf"{re.escape(version)}\.\d+", path.name) and (path / "bin" / f"python{version}").exists()
    ]
    return max(found, key=lambda p: int(p.parent.parent.name.rsplit(".", 1)[1]), default=None)


def _find_interpreters() -> None:
    """Make every Python of PYTHONS findable as python3.X: pyenv's shims serve only the versions
    pyenv has selected, so link the others from pyenv's versions into .nox/pythons (first on
    PATH, holding nothing but those names). Say which Python is nowhere."""
    links = ROOT / ".nox" / "pythons"
    for version in PYTHONS:
        if _runs(version):
            continue
        python = _pyenv_python(version)
        if python is None:
            what = "an error under CI=true" if IN_CI else "its unit session is skipped"
            print(f"nox: python{version} is neither on PATH nor installed by pyenv: {what}")
            continue
        links.mkdir(parents=True, exist_ok=True)
        link = links / f"python{version}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(python)
        if str(links) not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = os.pathsep.join([str(links), os.environ.get("PATH", "")])


_find_interpreters()


def pinned(name: str) -> str:
    """The `name==version` line of requirements-dev.txt (one place for every pin)."""
    for line in REQUIREMENTS.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if re.match(rf"{re.escape(name)}(\[[^\]]*\])?==", requirement, re.IGNORECASE):
            return requirement
    raise RuntimeError(f"{name} is not pinned in {REQUIREMENTS.name}")


def _with_atlas(session: nox.Session) -> dict[str, str]:
    """A few unit tests build an Atlas command (they never run it) and so need the binary on
    PATH: ATLAS_BIN's directory, or .venv/bin where scripts/bootstrap puts it (a session's own
    virtualenv has none). Appended, so the session's Python stays first."""
    if shutil.which("atlas"):
        return {}
    named = os.environ.get("ATLAS_BIN", "").strip()
    atlas = shutil.which(named) if named else shutil.which("atlas", path=str(ROOT / ".venv" / "bin"))
    if not atlas:
        return {}
    return {"PATH": os.pathsep.join([str(session.bin), os.environ.get("PATH", ""), str(Path(atlas).parent)])}


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: the lint rules and the formatter (line length 120, see pyproject.toml)."""
    session.install(pinned("ruff"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy over tools/, tasks.py and app/ (configuration in pyproject.toml)."""
    session.install("-r", str(REQUIREMENTS))
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHONS)
def unit(session: nox.Session) -> None:
    """tests/unit (no services) on each supported Python."""
    session.install("-r", str(REQUIREMENTS))
    session.run("python", "-m", "pytest", "tests/unit", "-q", *session.posargs, env=_with_atlas(session))


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The whole suite, the README's command, in the project's .venv (scripts/bootstrap makes it:
    the pinned requirements, the Atlas CLI the integration tests run)."""
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        session.error(".venv does not exist: run ./scripts/bootstrap first (README, two commands)")
    session.run(str(python), "-m", "pytest", *session.posargs, external=True)
