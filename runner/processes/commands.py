"""The commands and input of the processes a run starts: the plan-running child (fresh, or forked from a zygote)
and a parameter-server cluster's servers. Kept apart from the supervisor, which only starts and watches them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def child_command() -> list[str]:
    """The plan-running child; the events fd is appended by the supervisor."""
    return [sys.executable, "-m", "tfrun.runner.child"]


def job_child_command() -> list[str]:
    """A single-process job's child: forked from the zygote TFRUN_ZYGOTE names when one is set (its client turns
    into the fresh child when the zygote cannot fork it), else a fresh one."""
    from tfrun.runner.processes import zygote

    path = zygote.socket_path()
    return zygote.client_command(path) if path else child_command()


def server_command() -> list[str]:
    """A ps or worker server of a parameter-server cluster."""
    from tfrun.runner.processes.zygote import SERVER_MODULE

    return [sys.executable, "-m", SERVER_MODULE]


def job_server_command() -> list[str]:
    """A local cluster's ps or worker server: forked from the zygote when one is set, as job_child_command."""
    from tfrun.runner.processes import zygote

    path = zygote.socket_path()
    return zygote.server_client_command(path) if path else server_command()


def job_input(
    run_dir: Path,
    config: dict[str, Any],
    plan: list[str],
    run_id: str = "",
    overrides: list[str] | None = None,
    config_dirs: list[str] | None = None,
    sweep_job: bool = False,
) -> bytes:
    """The child's stdin. `overrides` as typed (not redacted) and the --config-dir folders: a Vertex job's
    replicas run them again. `sweep_job`: one job of a multirun (not part of its config: a rerun of the job alone
    has the same config)."""
    return json.dumps(
        {
            "run_dir": str(run_dir),
            "config": config,
            "plan": plan,
            "run_id": run_id,
            "overrides": overrides or [],
            "config_dirs": config_dirs or [],
            "sweep_job": sweep_job,
        }
    ).encode()
