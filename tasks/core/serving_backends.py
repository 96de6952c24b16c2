"""Which TF Serving server kinds can run on this machine, asked before training and again at start.

Pure standard library: validation (tfrun.tasks.core.schema.targets) refuses `target.server=binary`
or `docker` when they cannot run here, before TensorFlow starts, and tfrun.tasks.tfserving.backends
chooses among the same answers when the server starts.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import Optional

BINARY = "tensorflow_model_server"
ALWAYS = "embedded"  # tfrun-serve, part of tfrun
DOCKER_CHECK_S = 5.0  # `docker info` against an engine that does not answer returns within this


def binary_path() -> Optional[str]:
    return shutil.which(BINARY)


def docker_available(timeout: float = DOCKER_CHECK_S) -> bool:
    """A Docker CLI whose engine answers `docker info`."""
    docker = shutil.which("docker")
    return docker is not None and _engine_answers(docker, timeout)


@functools.lru_cache(maxsize=8)
def _engine_answers(docker: str, timeout: float) -> bool:
    """Asked once per process and CLI: a sweep validates every job's config, each would wait for the engine."""
    try:
        answer = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return answer.returncode == 0


def missing(kind: str) -> Optional[str]:
    """Why server kind `kind` cannot run here, or None when it can (auto and embedded always can)."""
    if kind == "binary" and binary_path() is None:
        return f"{BINARY} is not on PATH"
    if kind == "docker" and not docker_available():
        return "no Docker engine answers `docker info`"
    return None


def available_kinds() -> list[str]:
    """The kinds a user may choose on this machine, in the order auto tries them."""
    return ["auto", *(k for k in ("binary", "docker") if missing(k) is None), ALWAYS]


NGINX = "nginx"
NGINX_SETUP = "scripts/serving_setup.sh"  # installs Debian's nginx (and prometheus) where they are missing


def nginx_path() -> Optional[str]:
    """Debian's nginx: TFRUN_NGINX when set (a path; one that is not executable means none), else on PATH or in
    /usr/sbin (not on a non-root user's PATH)."""
    chosen = os.environ.get("TFRUN_NGINX")
    if chosen is not None:
        return chosen if os.path.isfile(chosen) and os.access(chosen, os.X_OK) else None
    return shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin:/usr/local/sbin")
