"""What a record needs to say where a run came from: code, packages, machine."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("tfrun", "tensorflow", "tf-keras", "keras", "hydra-core", "omegaconf", "numpy",
            "scikit-learn", "protobuf")
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(SOURCE_ROOT), *args], capture_output=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode(errors="replace")


def code_state() -> dict[str, Any]:
    """Commit, dirty flag and a hash of the uncommitted diff of tfrun's own source tree."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None, "git_diff_sha256": None}
    status = _git("status", "--porcelain") or ""
    diff = _git("diff", "HEAD") or ""
    return {
        "git_commit": commit.strip(),
        "git_dirty": bool(status.strip()),
        "git_diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
    }


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
