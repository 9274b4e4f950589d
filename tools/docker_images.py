"""The images compose.yaml names, for `inv setup`: pulled, or built as local stand-ins.

With pullable images it changes nothing. Where images cannot be pulled (no registry reachable),
it builds local stand-ins from a debootstrap base and names them in .env. Every wait is bounded
and announced.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tools.console import Log, progress
from tools.docker_setup import _apt_install, _can_install, _docker, _run, _tail
from tools.errors import WorkflowError

BASE_IMAGE = "schemaflow-local/debian:bookworm"
LOCAL_IMAGES = {
    # variable: (official default, local stand-in, Dockerfile directory)
    "POSTGRES_IMAGE": ("postgres:15", "schemaflow-local/postgres:15", "docker/postgres"),
    "PYTHON_IMAGE": ("python:3.11-slim", "schemaflow-local/python:3.11", "docker/python"),
}
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def image_exists(name: str) -> bool:
    return _run([_docker(), "image", "inspect", name], timeout=30).returncode == 0


def try_pull(name: str, log: Log, timeout: float = 120) -> bool:
    log(f"pulling {name}...")
    try:
        return _run([_docker(), "pull", "-q", name], timeout=timeout).returncode == 0
    except WorkflowError:
        return False


def copy_extra_ca(project_dir: Path, env: Mapping[str, str]) -> Path | None:
    """Put the CA bundle named by EXTRA_CA_CERTS (default: the host's) into the build context."""
    value = (env.get("EXTRA_CA_CERTS") or "").strip()
    target = project_dir / "docker" / "certs" / "extra-ca.crt"
    if value.lower() == "none":
        target.unlink(missing_ok=True)
        return None
    source = Path(value) if value else HOST_CA_BUNDLE
    if not source.is_file():
        if value:
            raise WorkflowError(
                f"EXTRA_CA_CERTS={value} is not a file", hint="point it at a PEM bundle, or set it to none"
            )
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    return target


def build_base(log: Log) -> None:
    """A minimal Debian bookworm image from debootstrap (no registry needed)."""
    if image_exists(BASE_IMAGE):
        return
    if not shutil.which("debootstrap"):
        if not _can_install():
            raise WorkflowError(
                "images cannot be pulled and debootstrap is missing to build local ones",
                hint="allow access to an image registry, or use STACK=local",
            )
        _apt_install(["debootstrap"], log)
    with tempfile.TemporaryDirectory(prefix="debootstrap-") as tmp:
        root = Path(tmp) / "rootfs"
        with progress(log, "Building a Debian bookworm base image with debootstrap (about 30 s)"):
            proc = _run(["debootstrap", "--variant=minbase", "bookworm", str(root), DEBIAN_MIRROR], timeout=1800)
        if proc.returncode != 0:
            raise WorkflowError(f"debootstrap failed: {_tail(proc)}", hint=f"check that {DEBIAN_MIRROR} is reachable")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            [_docker(), "import", "-", BASE_IMAGE], stdin=tar.stdout, capture_output=True, text=True, timeout=600
        )
        assert tar.stdout is not None  # stdout=PIPE
        tar.stdout.close()
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise WorkflowError(f"docker import of the base image failed: {_tail(imp)}")


def build_local(variable: str, project_dir: Path, log: Log) -> str:
    _, name, context = LOCAL_IMAGES[variable]
    if image_exists(name):
        return name
    build_base(log)
    with progress(log, f"Building {name} from {context}/Dockerfile"):
        proc = _run(
            [
                _docker(),
                "build",
                "-q",
                "--build-arg",
                f"BASE_IMAGE={BASE_IMAGE}",
                "-t",
                name,
                str(project_dir / context),
            ],
            timeout=1800,
        )
    if proc.returncode != 0:
        raise WorkflowError(f"building {name} failed: {_tail(proc)}", hint=f"run docker build {context} to see the log")
    return name


def needed_images(env: Mapping[str, str]) -> dict[str, str]:
    """The image each variable names now (the official default when unset)."""
    return {var: (env.get(var) or "").strip() or default for var, (default, _, _) in LOCAL_IMAGES.items()}


def ensure_images(project_dir: Path, env: Mapping[str, str], log: Log) -> dict[str, str]:
    """Make every image compose.yaml names available; return the variables to record in .env."""
    copy_extra_ca(project_dir, env)
    record = {}
    for variable, image in needed_images(env).items():
        if image_exists(image) or try_pull(image, log):
            continue
        local = LOCAL_IMAGES[variable][1]
        if image != LOCAL_IMAGES[variable][0] and image != local:
            raise WorkflowError(
                f"{variable}={image} cannot be found or pulled", hint=f"fix {variable} in .env, or empty it"
            )
        log(f"{image} cannot be pulled here: using a locally built stand-in")
        record[variable] = build_local(variable, project_dir, log)
    return {k: v for k, v in record.items() if (env.get(k) or "") != v}
