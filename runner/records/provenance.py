"""What a record needs to say where a run came from: code, packages, machine."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any

from tfrun.tasks.core.git import git_state
from tfrun.tasks.core.paths import SOURCE_ROOT

PACKAGES = ("tfrun", "tensorflow", "tf-keras", "keras", "hydra-core", "omegaconf", "numpy", "scikit-learn", "protobuf")


def code_state() -> dict[str, Any]:
    """Commit, dirty flag and a hash of the uncommitted diff of tfrun's own source tree."""
    return git_state(SOURCE_ROOT)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "executable_is_venv": sys.prefix != sys.base_prefix,
        "packages": package_versions(),
    }
