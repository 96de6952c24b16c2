"""After a failed, killed or interrupted run: remove the cloud resources it created.

The runner imports no cloud SDK, so the work happens in a child (`python -m tfrun.tasks.vertex.cleanup`, forked
from the zygote a Python session or a test names, where the SDK may be imported already)
fed with the run's cloud settings and the record's resource ledger; each resource's new status
(removed, left, failed_to_remove, with why) goes back into the record. `tfrun-records cleanup`
uses the same child for runs that ended earlier.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tfrun.runner.processes.child_env import child_environment
from tfrun.tasks.core.processes import CLEANUP_MODULE, module_command
from tfrun.tasks.core.schema import HardwareConfig
from tfrun.tasks.vertex.resources import ALIVE

CLEANUP_TIMEOUT_S = 900.0


def live(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Resources this run created that may still exist (failed removals included: they are retried)."""
    return [r for r in resources if r.get("created") and r.get("status") in ALIVE]


def remove(
    cloud: dict[str, Any], run_id: str, run_dir: str, resources: list[dict[str, Any]], reason: str
) -> list[dict[str, Any]]:
    """Run the clean-up child; the resources with every status it reported (one JSON line each).

    A child that fails or times out part-way still reported what it finished; the rest keep their
    status (so they stay alive and are retried) with why the clean-up did not reach them.
    """
    job = {"cloud": cloud, "run_id": run_id, "run_dir": run_dir, "resources": resources, "reason": reason}
    stdout, problem = "", ""
    try:
        proc = subprocess.run(
            module_command(CLEANUP_MODULE, []),
            env=child_environment(HardwareConfig()),  # a CPU job's, as the zygote has it: forked, not refused
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=CLEANUP_TIMEOUT_S,
        )
        stdout = proc.stdout
        if proc.returncode != 0:
            problem = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    except subprocess.TimeoutExpired as err:
        stdout = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        problem = f"it did not finish within {CLEANUP_TIMEOUT_S:g} s"
    except OSError as err:
        problem = f"{type(err).__name__}: {err}"
    reported: dict[tuple[str, str], dict[str, Any]] = {}
    for line in stdout.splitlines():
        try:
            r = json.loads(line)
            reported[(r["kind"], r["name"])] = r
        except (ValueError, KeyError, TypeError):
            continue
    alive = {(r["kind"], r["name"]) for r in live(resources)}
    merged = [r for r in resources]
    for i, r in enumerate(merged):
        key = (r["kind"], r["name"])
        if key in reported:
            merged[i] = reported.pop(key)
        elif key in alive and problem:
            merged[i] = dict(
                r,
                why=f"{reason}: clean-up did not reach it ({problem}); `tfrun-records cleanup` "
                f"retries, or remove it with: {r.get('remove_command')}",
            )
    return merged + list(reported.values())  # resources found by label that the ledger did not hold


def after_failure(record: Any, cloud: dict[str, Any], status: str) -> None:
    """Clean up a run that did not succeed (before its record is final), and say what happened to each."""
    resources = record.data.get("cloud_resources") or []
    if not live(resources):
        return
    print(f"[tfrun] the run {status}: removing the {len(live(resources))} cloud resource(s) it created", flush=True)
    updated = remove(cloud, record.data["run_id"], record.data["run_dir"], resources, f"run {status}")
    for resource in updated:
        record.cloud_resource(resource)
        if resource.get("created"):
            print(
                f"[tfrun]   {resource['kind']} {resource['name']}: {resource['status']} ({resource['why']})", flush=True
            )
    record.save()
