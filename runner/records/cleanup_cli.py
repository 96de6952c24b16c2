"""`tfrun-records cleanup RUN | --all [DIR ...]`: stop paying for what earlier runs left in the cloud.

Lists every resource the runs created that may still exist (status `created` or `left`), asks,
then removes them through the same clean-up child the runner uses after a failure, and writes
each resource's new status into its record. Resources a run reused (not created) are never
touched. A run whose runner is still alive is skipped: its runner owns the record. Earlier attempts kept
under a run dir's attempts/ are included, and failed removals are tried again. A damaged record is one
line naming it and is left alone; the others are cleaned up (exit 2 at the end when it was a RUN named).

Runs are cleaned up in dependency order, as one run's resources are: a run whose objects sit in a bucket
another run created (tfrun's own bucket, made by the first run that used it), or whose model is deployed
on another run's endpoint, goes before that run, so the bucket or endpoint is empty when its turn comes.
What is still `kept` (a bucket holding the user's own files) is tried again by the next clean-up.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from tfrun.runner.records import cloud_cleanup, reading
from tfrun.runner.records import record as records
from tfrun.tasks.vertex.resources import REMOVAL_ORDER

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def resource_lines(data: dict[str, Any]) -> list[str]:
    """The record's cloud resources, one line each (for `show` and `cleanup`)."""
    lines = []
    for r in data.get("cloud_resources") or []:
        mine = "created" if r.get("created") else "not this run's"
        lines.append(f"  {r['kind']:<15} {r['status']:<16} {r['name']}  ({mine}; {r.get('why', '')})")
        if r.get("created") and r.get("status") in cloud_cleanup.ALIVE:
            lines.append(f"  {'':<15} {'':<16} console: {r.get('console', '')}")
            lines.append(f"  {'':<15} {'':<16} remove:  {r.get('remove_command', '')}")
    return lines


def _container(r: dict[str, Any]) -> tuple[str, str] | None:
    """The bucket or endpoint a resource sits in, as (kind, name) of that container's ledger entry."""
    if r["kind"] == "gcs_objects":
        return "bucket", "gs://" + r["name"].removeprefix("gs://").split("/", 1)[0]
    if r["kind"] == "deployed_model":
        return "endpoint", str((r.get("details") or {}).get("endpoint", ""))
    return None


def in_dependency_order(todo: list[tuple[Any, dict[str, Any]]]) -> list[tuple[Any, dict[str, Any]]]:
    """The runs, each before any run whose bucket or endpoint holds its live resources (else as found)."""
    maker: dict[tuple[str, str], int] = {}
    for i, (_, data) in enumerate(todo):
        for r in cloud_cleanup.live(data.get("cloud_resources") or []):
            if r["kind"] in ("bucket", "endpoint"):
                maker[(r["kind"], r["name"])] = i
    waits_for: dict[int, set[int]] = {i: set() for i in range(len(todo))}  # a container's maker waits for its users
    for j, (_, data) in enumerate(todo):
        for r in cloud_cleanup.live(data.get("cloud_resources") or []):
            i = maker.get(_container(r) or ("", ""))
            if i is not None and i != j:
                waits_for[i].add(j)
    order: list[int] = []
    while len(order) < len(todo):
        ready = [i for i in waits_for if i not in order and not (waits_for[i] - set(order))]
        order.append(ready[0] if ready else min(i for i in waits_for if i not in order))  # a cycle: as found
    return [todo[i] for i in order]


def _runner_alive(data: dict[str, Any]) -> bool:
    pid = (data.get("pids") or {}).get("runner")
    if data.get("status") != "running" or not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return True


def _cloud(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    cloud = dict((data.get("config") or {}).get("cloud") or {})
    for key in ("credentials", "api_endpoint", "storage_endpoint"):
        value = getattr(args, key)
        if value is not None:
            cloud[key] = value
    if cloud.get("credentials") in (None, records.REDACTED):
        cloud["credentials"] = "adc"
    return cloud


def cmd_cleanup(args: argparse.Namespace) -> int:
    if not args.all and not args.runs:
        print("tfrun-records cleanup: name RUN dirs, or --all [DIR ...]", file=sys.stderr)
        return EXIT_USAGE
    try:
        found = (
            records.find_all(args.runs or ["runs", "multiruns"])
            if args.all
            else [records.locate(run) for run in args.runs]
        )
    except FileNotFoundError as err:
        print(f"tfrun-records: {err}", file=sys.stderr)
        return EXIT_USAGE
    # an earlier attempt in the same run dir (moved to attempts/ by a re-run) may have left resources too
    paths = [q for p in found for q in [p, *sorted((p.parent / "attempts").glob("*.json"))]]
    todo = []
    named_bad = False  # a RUN asked for by name is damaged: exit 2 after cleaning up the others
    for path in paths:
        try:
            data = reading.read(path)
        except reading.BadRecord as err:
            reading.say_skipped(err)
            named_bad = named_bad or (not args.all and path in found)
            continue
        live = cloud_cleanup.live(data.get("cloud_resources") or [])
        if not live:
            continue
        print(f"{records.relative(path.parent)} ({data.get('status')}): {len(live)} live resource(s)")
        print("\n".join(resource_lines({"cloud_resources": live})))
        if _runner_alive(data):
            print("  skipped: its tfrun process is still running (it cleans up itself)")
            continue
        todo.append((path, data))
    done = EXIT_USAGE if named_bad else EXIT_OK
    if not todo:
        print("nothing to clean up")
        return done
    if args.dry_run:
        return done
    if not args.yes:
        if not sys.stdin.isatty():
            print("tfrun-records: add --yes to remove them without a prompt", file=sys.stderr)
            return EXIT_USAGE
        if input(f"Remove the live resources of {len(todo)} run(s)? [y/N] ").strip().lower() not in ("y", "yes"):
            return EXIT_OK
    worst = EXIT_OK
    for path, data in in_dependency_order(todo):
        updated = cloud_cleanup.remove(
            _cloud(data, args),
            data["run_id"],
            data.get("run_dir", ""),
            data["cloud_resources"],
            "tfrun-records cleanup",
        )
        data["cloud_resources"] = updated
        records.write_json_atomic(path, data)
        for r in sorted(updated, key=lambda r: REMOVAL_ORDER.index(r["kind"]) if r["kind"] in REMOVAL_ORDER else 0):
            if r.get("created"):
                print(f"  {r['kind']} {r['name']}: {r['status']} ({r.get('why', '')})")
        if any(r.get("status") == "failed_to_remove" for r in updated):
            worst = EXIT_FAILED
    return done or worst


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cleanup", help="remove the cloud resources runs created that still exist (stop paying)")
    p.add_argument(
        "runs",
        nargs="*",
        metavar="RUN",
        help="run dirs (with --all: folders to search, default ./runs and ./multiruns)",
    )
    p.add_argument("--all", action="store_true", help="every record below the given folders")
    p.add_argument("--yes", action="store_true", help="do not ask before removing")
    p.add_argument("--dry-run", action="store_true", help="list only")
    p.add_argument(
        "--credentials", help="adc | anonymous | a service-account JSON file (default: as recorded, else adc)"
    )
    p.add_argument("--api-endpoint", dest="api_endpoint", help="a Vertex-compatible server (default: as recorded)")
    p.add_argument("--storage-endpoint", dest="storage_endpoint", help="a GCS emulator (default: as recorded)")
    p.set_defaults(func=cmd_cleanup)
