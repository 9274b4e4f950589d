"""The local backend of the stack: PostgreSQL clusters from the machine's binaries, when there is no Docker.

It serves the dev database and the `local` target on 127.0.0.1 with the credentials of .env
and runs the schema dump on the host. The target's cluster lives in .state/pg/db. The dev
cluster is throw-away, like the Compose dev-db on its tmpfs: it lives in RAM (/dev/shm) where
the machine has it, where creating a database takes a sixth of the time it takes on disk, and
the workflow creates several per diff.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from tools import pg, pgcluster, timings
from tools.config import Config
from tools.console import Log
from tools.dump_runner import DumpRun, dump_on_host, start_on_host
from tools.errors import WorkflowError
from tools.stack_common import ServiceState, _port, check_stored_password, require_password


class LocalStack:
    name = "local"

    def __init__(self, config: Config, why: str = "") -> None:
        self.config = config
        self.why = why
        self.root = config.root
        self.state_dir = self.root / ".state" / "pg"
        self.dev_dir = throwaway_dir(self.root) or self.state_dir / "dev"

    def clusters(self) -> dict[str, pgcluster.Cluster]:
        user = self.config.get("POSTGRES_USER", "app")
        password = require_password(self.config)
        return {
            "dev-db": pgcluster.Cluster(self.dev_dir, _port(self.config, "DEV_DB_PORT"), user, password),
            "db": pgcluster.Cluster(self.state_dir / "db", _port(self.config, "DB_PORT"), user, password),
        }

    def up(self, log: Log, services: tuple[str, ...] = ()) -> None:
        with timings.step("stack checked (local clusters)"):
            self._up(log, services)

    def _up(self, log: Log, services: tuple[str, ...]) -> None:
        clusters = self.clusters()
        wanted = [s for s in (services or tuple(clusters)) if s in clusters]
        started = time.monotonic()
        if "dev-db" in wanted:
            self._retire_disk_dev_cluster(log)
            self._retire_moved_dev_cluster(log)
        for name in wanted:
            cluster = clusters[name]
            if cluster.running():
                continue
            log(f"starting local PostgreSQL cluster {name} on 127.0.0.1:{cluster.port}...")
            cluster.start(log=log)
        if "db" in wanted:
            check_stored_password(self.config, "its cluster (.state/pg/db)")
            pg.ensure_database(self.config.url_for("local"), "the local database")
        if "dev-db" in wanted:
            try:
                pg.ensure_database(self.config.dev_url(), "the dev database")
            except WorkflowError as exc:
                if (
                    "refused the password" not in exc.message
                    or urlsplit(self.config.dev_url()).port != clusters["dev-db"].port
                ):
                    raise
                # Throw-away by design: made with an earlier password, it is simply made again.
                log("the dev cluster was made with another password: recreating it (it holds nothing)")
                clusters["dev-db"].destroy(log=log)
                clusters["dev-db"].start(log=log)
                pg.ensure_database(self.config.dev_url(), "the dev database")
        if "dev-db" in wanted and self.dev_dir != self.state_dir / "dev":
            with contextlib.suppress(OSError):
                self.state_dir.mkdir(parents=True, exist_ok=True)
                (self.state_dir / DEV_ROOT).write_text(str(self.root.resolve()))
        if time.monotonic() - started > 2:
            log(f"local clusters ready in {time.monotonic() - started:.1f}s")

    def _retire_disk_dev_cluster(self, log: Log) -> None:
        """The dev cluster that earlier versions kept in .state/pg/dev: destroyed (it holds
        nothing), so that it does not hold DEV_DB_PORT against the one in RAM."""
        old = self.state_dir / "dev"
        if self.dev_dir != old and old.exists():
            user, password = self.config.get("POSTGRES_USER", "app"), require_password(self.config)
            pgcluster.Cluster(old, _port(self.config, "DEV_DB_PORT"), user, password).destroy(log=log)

    def _retire_moved_dev_cluster(self, log: Log) -> None:
        """The dev cluster in RAM of this checkout at the path it had when its stack came up
        (.state/pg/dev-root), when it was moved or renamed since: destroyed, so that it does not
        hold DEV_DB_PORT (and RAM). Never while a checkout is at that path again (a copy)."""
        try:
            former = Path((self.state_dir / DEV_ROOT).read_text())
        except OSError:
            return
        old = throwaway_dir(former)
        if former == self.root.resolve() or former.exists() or old is None or old == self.dev_dir or not old.exists():
            return
        user, password = self.config.get("POSTGRES_USER", "app"), require_password(self.config)
        pgcluster.Cluster(old, _port(self.config, "DEV_DB_PORT"), user, password).destroy(log=log)
        with contextlib.suppress(OSError):
            old.parent.rmdir()

    def down(self, log: Log, volumes: bool = False) -> None:
        clusters = self.clusters()
        clusters["db"].stop(log=log)
        clusters["dev-db"].destroy(log=log)  # throw-away by design
        if self.dev_dir.parent.name.startswith("schemaflow-"):
            with contextlib.suppress(OSError):
                self.dev_dir.parent.rmdir()  # its folder under /dev/shm, once empty
        self._retire_disk_dev_cluster(log)
        self._retire_moved_dev_cluster(log)
        if volumes:
            clusters["db"].destroy(log=log)

    def states(self) -> list[ServiceState]:
        out = []
        for name, cluster in self.clusters().items():
            pid, stale = cluster.read_pidfile()
            if pid is not None:
                out.append(ServiceState(name, "running", f"pid {pid}, 127.0.0.1:{cluster.port}"))
            elif stale is not None:
                out.append(
                    ServiceState(
                        name,
                        "stopped (stale pid file)",
                        f"postmaster.pid names pid {stale}, not this cluster's server: inv db.up replaces it",
                    )
                )
            else:
                out.append(ServiceState(name, "stopped" if cluster.initialised else "not created"))
        out.append(ServiceState("app", "host", f"schema dump runs with {Path(sys.executable).name} on the host"))
        return out

    def dump_schema(self, log: Log) -> str:
        return dump_on_host(self.root, log)

    def start_dump(self, log: Log) -> DumpRun:
        """The dump started in the background (DumpRun.text() waits for it)."""
        return start_on_host(self.root, log)

    def psql_argv(self, target: str) -> tuple[list[str], dict[str, str]]:
        url = self.config.dev_url() if target == "dev" else self.config.url_for("local")
        psql = shutil.which("psql")
        if not psql:
            raise WorkflowError(
                "psql is not installed", hint="install the PostgreSQL client (apt-get install postgresql-client)"
            )
        parts = urlsplit(url)
        environ = self.config.child_environ(PGPASSWORD=parts.password or "", PGSSLMODE="disable")
        return [
            psql,
            "-h",
            parts.hostname or "127.0.0.1",
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
            parts.path.strip("/"),
        ], environ


RAM_DIR = Path("/dev/shm")
DEV_ROOT = "dev-root"  # in .state/pg: the checkout's path when its dev cluster in RAM was started


def throwaway_dir(root: Path, ram: Path = RAM_DIR) -> Path | None:
    """Where the dev cluster of the checkout at `root` lives in RAM: a folder of its own under
    /dev/shm (one per checkout, named by a hash of its path); None where there is no such
    writable tmpfs (the cluster then stays under .state/pg)."""
    if not (ram.is_dir() and os.access(ram, os.W_OK | os.X_OK)):
        return None
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return ram / f"schemaflow-{digest}" / "dev"
