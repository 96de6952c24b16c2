"""Where a command's CPU goes, by kind of process: run COMMAND, sample every process in /proc every 0.2 s, and
print the CPU seconds per kind (a Python program's first arguments, e.g. `-m tfrun.runner.cli`; a process forked
by a zygote counts as `forked job`). Used on the whole test suite to find what to cut (BENCHMARKS.md, "Test suite",
session 8); processes that live less than a sample interval are missed, so read the figures as a floor.

Usage: python bench/suite_cpu_profile.py [--top N] [--json OUT] -- COMMAND ARGS...
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

HZ = os.sysconf("SC_CLK_TCK")


def _read(pid: str) -> tuple[str, dict[str, Any]] | None:
    """(pid:start, its ppid, cpu ticks and command line), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return f"{pid}:{fields[19]}", {
        "pid": int(pid),
        "ppid": int(fields[1]),
        "ticks": int(fields[11]) + int(fields[12]),
        "cmd": cmd,
    }


def sample(seen: dict[str, dict[str, Any]], stop: threading.Event, interval: float = 0.2) -> None:
    """Keep each process's largest CPU tick count (a pid reused later is another key: its start time differs)."""
    first: dict[str, int] = {}
    while not stop.is_set():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            found = _read(pid)
            if found is None:
                continue
            key, proc = found
            first.setdefault(key, proc["ticks"])  # a process older than the command: count only what it adds
            entry = seen.setdefault(key, proc)
            entry["ticks"], entry["cmd"] = max(entry["ticks"], proc["ticks"]), entry["cmd"] or proc["cmd"]
            entry["added"] = entry["ticks"] - first[key]
        stop.wait(interval)


def kind(proc: dict[str, Any], by_pid: dict[int, dict[str, Any]]) -> str:
    words = proc["cmd"].split()
    if "zygote_server" in proc["cmd"] and "zygote_server" in by_pid.get(proc["ppid"], {}).get("cmd", ""):
        return "forked job"
    if not words:
        return "(no command line)"
    program = os.path.basename(words[0])
    if program.startswith("python") and len(words) > 1:
        rest = [os.path.basename(w) if "/" in w else w for w in words[1:3]]
        return "python " + " ".join(rest)[:60]
    return program


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--json", help="also write every sampled process here")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no COMMAND given")
    seen: dict[str, dict[str, Any]] = {}
    stop = threading.Event()
    thread = threading.Thread(target=sample, args=(seen, stop), daemon=True)
    thread.start()
    started = time.monotonic()
    code = subprocess.call(command)
    stop.set()
    thread.join()
    by_pid = {p["pid"]: p for p in seen.values()}
    totals: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    for proc in seen.values():
        name = kind(proc, by_pid)
        totals[name] += proc["added"]
        counts[name] += 1
    print(f"{time.monotonic() - started:.0f} s wall, {sum(totals.values()) / HZ / 60:.1f} CPU-min sampled, exit {code}")
    for name, ticks in totals.most_common(args.top):
        print(f"{ticks / HZ:9.1f} s {counts[name]:6d}  {name}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(list(seen.values()), f)
    return code


if __name__ == "__main__":
    sys.exit(main())
