"""The git state a record names for code: commit, dirty flag and a hash of the uncommitted diff."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any, Optional


def _git(folder: Path, *args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode(errors="replace")


def git_state(folder: Path, *, untracked_is_dirty: bool = True) -> dict[str, Any]:
    """The state of the checkout holding `folder`; all None outside one (or without git).

    tfrun's own tree counts new files as changes; a user's project does not (its runs/ and models/
    are not code changes), hence `untracked_is_dirty`.
    """
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None, "git_diff_sha256": None}
    status_args = ("status", "--porcelain") + (() if untracked_is_dirty else ("--untracked-files=no",))
    status = _git(folder, *status_args) or ""
    diff = _git(folder, "diff", "HEAD") or ""
    return {
        "git_commit": commit.strip(),
        "git_dirty": bool(status.strip()),
        "git_diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
    }
