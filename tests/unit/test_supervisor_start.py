"""A task that dies before it reads its job is a failed task, not a crash of the runner (the record says why)."""

from __future__ import annotations

import sys
from pathlib import Path

from tfrun.runner.processes.supervisor import Supervisor, TaskSpec
from tfrun.runner.records.record import Record


def test_a_task_that_exits_before_reading_its_job_fails_the_run_with_its_exit_code(tmp_path: Path):
    record = Record.start(
        tmp_path,
        run_id="r",
        job="train",
        run_dir="r",
        plan=["x"],
        pids={"runner": 1, "child": None},
        cluster={"tasks": []},
    )
    # a job bigger than a pipe holds: the write blocks until the process has gone, then fails with EPIPE
    dies = TaskSpec(
        "worker:1", [sys.executable, "-c", "import sys; sys.exit(3)"], env={}, stdin=b"x" * 1_000_000, runs_plan=False
    )
    sleeps = TaskSpec("chief:0", [sys.executable, "-c", "import time; time.sleep(30)"], env={}, runs_plan=False)
    outcome = Supervisor(record, [sleeps, dies], timeout_s=60, stop_grace_s=2, log_tail_lines=5).run()
    assert outcome.status == "failed", outcome
    assert outcome.error and outcome.error.get("task") == "worker:1", outcome.error
