"""The Atlas CLI: find or build the binary, build argv, run it, parse its JSON, map its errors.

Atlas's exit codes are not enough for CI (`migrate status` exits 0 when migrations are
pending, `migrate diff` exits 0 when nothing changed), so callers read its JSON output.
URLs reach Atlas through the environment (atlas.hcl's getenv()), never on its command line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import children, console, signals
from tools.config import Config, env_var_for
from tools.console import Log
from tools.errors import NotAdopted, WorkflowError

PINNED_VERSION = "v0.13.1"
JSON = "{{ json . }}"
INSTALL_HINT = (
    "run inv setup (builds Atlas v0.13.1), or install Atlas (https://atlasgo.io/getting-started) or set ATLAS_BIN"
)


def venv_bin() -> Path:
    return Path(sys.prefix) / "bin"


def find_binary(environ: Mapping[str, str] | None = None) -> str | None:
    """ATLAS_BIN, else `atlas` on PATH, else the one setup installs next to this Python."""
    environ = os.environ if environ is None else environ
    named = environ.get("ATLAS_BIN", "").strip()
    if named:
        path = shutil.which(named)
        if not path:
            raise WorkflowError(f"ATLAS_BIN={named} is not an executable", hint=INSTALL_HINT)
        return path
    on_path = shutil.which("atlas", path=environ.get("PATH"))
    if on_path:
        return on_path
    local = venv_bin() / "atlas"
    return str(local) if local.exists() else None


def require_binary(environ: Mapping[str, str] | None = None) -> str:
    path = find_binary(environ)
    if not path:
        raise WorkflowError("the Atlas CLI is not installed", hint=INSTALL_HINT)
    return path


def build_pinned(module_dir: Path, dest: Path, log: Log) -> Path:
    """Build the pinned Atlas from the Go module proxy (tools/atlas-cli/go.mod) into `dest`."""
    go = shutil.which("go")
    if not go:
        raise WorkflowError(
            "no Atlas CLI and no Go toolchain to build one",
            hint="install Go >= 1.24 (https://go.dev/dl) or Atlas itself (https://atlasgo.io/getting-started)",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    ldflags = f"-s -w -X ariga.io/atlas/cmd/atlas/internal/cmdapi.version={PINNED_VERSION}"
    environ = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod")
    tmp = dest.with_name(dest.name + ".tmp")
    with console.progress(
        log, f"Building Atlas {PINNED_VERSION} from the Go module proxy (about 2 minutes the first time)"
    ):
        proc = subprocess.run(
            [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), "ariga.io/atlas/cmd/atlas"],
            cwd=module_dir,
            env=environ,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise WorkflowError(
            f"building Atlas failed: {tail}", hint="check that the Go module proxy is reachable (GOPROXY)"
        )
    tmp.replace(dest)
    return dest


def version(binary: str) -> str:
    proc = subprocess.run(
        [binary, "version"],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, ATLAS_NO_UPDATE_NOTIFIER="1"),
    )
    first = (proc.stdout.strip().splitlines() or ["unknown"])[0]
    return first.replace("atlas version", "").strip() or "unknown"


@dataclass
class Result:
    argv: list[str]
    code: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        """Atlas's own error line, without its `Error: ` prefix."""
        lines = [ln.strip() for ln in (self.stderr + "\n" + self.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("Error:")]
        line = (errors or lines or ["no output"])[-1]
        return line.removeprefix("Error:").strip()

    @property
    def canceled(self) -> bool:
        """Atlas stopped because it was interrupted: its context was canceled (it got SIGINT),
        or its statement was (lib/pq's cancel request, also what pg_cancel_backend sends).
        v0.13.1 says so in its output, except `migrate diff`, which then exits 1 saying nothing
        (any other failure prints an `Error:` line or, with --format, a JSON report)."""
        text = (self.stderr + "\n" + self.stdout).lower()
        silent = self.code == 1 and not text.strip()
        return silent or "context canceled" in text or "canceling statement due to user request" in text

    @property
    def killed_by(self) -> int | None:
        """The signal that ended Atlas before it could catch it (SIGINT early at start), if any."""
        return -self.code if -self.code in signals.HANDLED else None

    def json(self) -> Any:
        text = self.stdout.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            # Some commands print progress before the JSON document.
            start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
            if start < 0:
                raise WorkflowError(
                    f"unexpected output from atlas {' '.join(self.argv[1:3])}", hint="run it by hand to see"
                ) from None
            return json.loads(text[start:])


def json_or_none(result: Result) -> Any:
    """Atlas's JSON document, or None when it printed none (or something else)."""
    try:
        return result.json()
    except Exception:
        return None


class Atlas:
    """Runs the Atlas CLI in the project directory with a prepared environment."""

    def __init__(
        self, root: Path, environ: dict[str, str], binary: str | None = None, mask: Callable[[str], str] = lambda s: s
    ) -> None:
        self.root = root
        self.environ = environ
        self.binary = binary or require_binary(environ)
        self.mask = mask

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> Result:
        """Run Atlas and wait for it. On an interruption (SIGINT, SIGTERM, SIGHUP) Atlas gets
        SIGINT and is waited for before the interruption goes on (see `signals.stop_child`):
        Atlas v0.13.1 cancels its context on SIGINT only, so the running file's transaction is
        rolled back and the connection closed; SIGTERM would kill it at once and leave the
        statement running on the server. The interruption carries Atlas's `Result`."""
        with self.start(*args, timeout=timeout) as running:
            return running.wait(check=check)

    def start(self, *args: str, timeout: float = 600) -> AtlasRun:
        """Atlas started in the background: `.wait()` for its Result (as `run` returns it)."""
        label = f"atlas {' '.join(a for a in args[:2] if not a.startswith('-'))}"
        return AtlasRun(
            self,
            args,
            children.Child(self.argv(*args), label, cwd=self.root, env=self.environ, timeout=timeout, label=label),
        )


class AtlasRun:
    """An Atlas process running in the background (Atlas.start)."""

    def __init__(self, atlas: Atlas, args: tuple[str, ...], child: children.Child) -> None:
        self.atlas, self.args, self.child = atlas, args, child

    def __enter__(self) -> AtlasRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.child.__exit__(*exc)  # type: ignore[arg-type]

    def _result(self, code: int, stdout: str, stderr: str) -> Result:
        mask = self.atlas.mask
        return Result(argv=list(self.child.proc.args), code=code, stdout=mask(stdout), stderr=mask(stderr))  # type: ignore[arg-type]

    def wait(self, check: bool = True) -> Result:
        args = self.args
        try:
            proc = self.child.wait()
        except children.ChildTimeout:
            raise WorkflowError(
                f"atlas {args[0]} {args[1] if len(args) > 1 else ''} timed out after {self.child.timeout:.0f}s",
                hint="check that the database answers (inv db.status)",
            ) from None
        except KeyboardInterrupt as exc:
            # Atlas's Result rides on the interruption (tools.apply.interrupted_apply reads it).
            exc.result = self._result(self.child.proc.returncode, *self.child.output_so_far())  # type: ignore[attr-defined]
            raise
        result = self._result(proc.returncode, proc.stdout, proc.stderr)
        if result.code != 0 and (result.canceled or result.killed_by):
            # Atlas was interrupted alone (a signal to it, or its statement canceled on the
            # server): an interruption, not a broken file.
            interrupted = signals.Interrupted(result.killed_by or signal.SIGINT)
            interrupted.result = result  # type: ignore[attr-defined]  # as above
            raise interrupted
        if check and result.code != 0:
            raise map_error(result)
        return result


def atlas_for(config: Config) -> Atlas:
    """Atlas in the project directory, with the configuration's environment (URLs for Atlas)."""
    return Atlas(config.root, config.child_environ(), mask=config.mask)


def _env_of(argv: list[str]) -> str:
    """The value of --env in an Atlas argv (`local` when there is none)."""
    return argv[argv.index("--env") + 1] if "--env" in argv[:-1] else "local"


def map_error(result: Result) -> WorkflowError:
    """Turn an Atlas failure into one line with what to do."""
    msg = result.error
    low = msg.lower()
    cmd = " ".join(a for a in result.argv[1:3])
    if "checksum mismatch" in low or "atlas.sum" in low and "mismatch" in low:
        return WorkflowError(
            "migrations/atlas.sum does not match the migration files",
            hint=(
                "if the edit was intended run inv migrate.hash, otherwise restore the files (git checkout migrations/)"
            ),
        )
    if "password authentication failed" in low:
        return WorkflowError(
            f"atlas {cmd}: the database refused the password", hint="check the URL's user and password in .env"
        )
    env = _env_of(result.argv)
    if "connection refused" in low or "no such host" in low or "connect: " in low or "dial tcp" in low:
        if env in ("local", "sqlalchemy"):
            hint = "start it with inv db.up, or check the URL in .env"
        else:
            hint = f"check the host and port in {env_var_for(env)}, and that the server accepts connections from here"
        return WorkflowError(f"atlas {cmd}: cannot reach the database ({msg})", hint=hint)
    if "does not exist" in low and "database" in low:
        return WorkflowError(f"atlas {cmd}: {msg}", hint="create the database, or fix the database name in the URL")
    if "not clean" in low and cmd in ("migrate apply", "migrate status"):
        return NotAdopted(env)
    if "not clean" in low:
        return WorkflowError(f"atlas {cmd}: {msg}", hint="the dev database must be empty: inv db.up recreates it")
    return WorkflowError(f"atlas {cmd} failed: {msg}")
