"""After a failed, killed or interrupted run: remove the cloud resources it created.

The runner imports no cloud SDK, so the work happens in a child (`python -m tasks.vertex.cleanup`)
fed with the run's cloud settings and the record's resource ledger; each resource's new status
(removed, left, failed_to_remove, with why) goes back into the record. `tfrun-records cleanup`
uses the same child for runs that ended earlier.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

ALIVE = ("created", "left")
CLEANUP_TIMEOUT_S = 900.0


def live(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Resources this run created that may still exist."""
    return [r for r in resources if r.get("created") and r.get("status") in ALIVE]


def remove(cloud: dict[str, Any], run_id: str, run_dir: str, resources: list[dict[str, Any]],
           reason: str) -> list[dict[str, Any]]:
    """Run the clean-up child; the updated resources (or the inputs marked failed_to_remove)."""
    job = {"cloud": cloud, "run_id": run_id, "run_dir": run_dir, "resources": resources, "reason": reason}
    try:
        proc = subprocess.run([sys.executable, "-m", "tasks.vertex.cleanup"], input=json.dumps(job),
                              capture_output=True, text=True, timeout=CLEANUP_TIMEOUT_S)
        if proc.returncode == 0:
            return json.loads(proc.stdout)
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    except (subprocess.TimeoutExpired, ValueError, OSError) as err:
        why = f"{type(err).__name__}: {err}"
    return [dict(r, status="failed_to_remove", why=f"{reason}: clean-up failed ({why}); remove it with: "
                                                   f"{r.get('remove_command')}")
            if r in live(resources) else r for r in resources]


def after_failure(record: Any, cloud: dict[str, Any]) -> None:
    """Clean up a run that did not succeed, and say what happened to each resource."""
    resources = record.data.get("cloud_resources") or []
    if not live(resources):
        return
    status = record.data["status"]
    print(f"[tfrun] the run {status}: removing the {len(live(resources))} cloud resource(s) it created", flush=True)
    updated = remove(cloud, record.data["run_id"], record.data["run_dir"], resources, f"run {status}")
    for resource in updated:
        record.cloud_resource(resource)
        if resource.get("created"):
            print(f"[tfrun]   {resource['kind']} {resource['name']}: {resource['status']} ({resource['why']})",
                  flush=True)
    record.save()
