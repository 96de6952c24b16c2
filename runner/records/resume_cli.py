"""`tfrun-records resume SWEEP_DIR`: rerun only a grid sweep's missing, failed, interrupted or damaged jobs.

A pruned job (stopped early by the sweep's pruner) is finished, not failed: it is rerun only with --pruned.

A job whose record is damaged is named (one line: the file and what is wrong) and rerun like a failed job;
the damaged record is kept under the job dir's attempts/. Exit 0 when every rerun succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from pathlib import Path
from typing import Any

from tfrun.runner.records import reading
from tfrun.runner.records.cli_common import EXIT_FAILED, EXIT_OK, UsageError
from tfrun.runner.records.rerun_cli import hydra_value, tfrun_command
from tfrun.runner.records.sweep_cli import sweep_dir_of


def set_damaged_aside(sweep_dir: Path) -> None:
    """Move each damaged job record to its job dir's attempts/, one line each: resume then reruns that job."""
    for path in sorted(sweep_dir.glob("*/record.json")):
        try:
            reading.read(path)
        except reading.BadRecord as err:
            kept = path.parent / "attempts" / f"damaged-{time.strftime('%Y%m%d-%H%M%S')}.json"
            kept.parent.mkdir(exist_ok=True)
            os.replace(path, kept)
            print(f"[tfrun-records] {err}; moved to {kept}, job {path.parent.name} is rerun", flush=True)


def cmd_resume(args: argparse.Namespace) -> int:
    from tfrun.runner.sweeps import resume as sweep_resume
    from tfrun.runner.sweeps.summary import render, summarise

    sweep_dir = sweep_dir_of(args.sweep_dir)
    try:
        sweep_resume.planned_jobs(sweep_dir)  # a grid sweep's own manifest, before any record is moved
        set_damaged_aside(sweep_dir)
        todo = sweep_resume.jobs_to_rerun(sweep_dir, pruned=args.pruned)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    if not todo:
        done = "succeeded" if args.pruned else "succeeded or was pruned"
        print(f"[tfrun-records] every job of {sweep_dir} {done}: nothing to resume")
        return EXIT_OK
    worst = EXIT_OK
    for number, job_overrides, why in todo:
        print(f"[tfrun-records] job {number} ({why}): tfrun {shlex.join(job_overrides)}", flush=True)
        code = sweep_resume.rerun(tfrun_command(), sweep_dir, number, job_overrides, hydra_value)
        worst = worst or code
    print(render(summarise(sweep_dir)))
    return EXIT_FAILED if worst else EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "resume",
        help="rerun only a grid sweep's missing, failed, interrupted or damaged jobs (pruned ones: --pruned)",
        description="Rerun only a grid sweep's missing, failed, interrupted or damaged jobs, each in its own job "
        "dir. A pruned job (stopped early by the sweep's pruner) is not a failure and is not rerun unless --pruned.",
    )
    p.add_argument("sweep_dir", metavar="SWEEP_DIR")
    p.add_argument(
        "--pruned", action="store_true", help="also rerun the jobs the sweep's pruner stopped (status pruned)"
    )
    p.set_defaults(func=cmd_resume)
