"""The `tfrun-records` command: read, compare, rerun and publish the runs tfrun recorded.

It reads record.json files (and, for `rerun` and `resume`, starts tfrun in a subprocess), so it never
imports TensorFlow or Hydra at start and answers at once. Each command lives in its own module under
tfrun.runner.records, with its own `add_parser`:

    tfrun-records list [DIR ...] [--json]              list_cli     runs below DIRs, oldest first
    tfrun-records show RUN [--json]                    show_cli     one run's summary
    tfrun-records diff RUN_A RUN_B                     diff_cli     what differs between two runs
    tfrun-records rerun RUN [--verify] [--run-dir DIR] rerun_cli    run it again (and check it reproduced)
    tfrun-records sweep SWEEP_DIR                      sweep_cli    a sweep's table, best job, sweep.csv/json/png
    tfrun-records resume SWEEP_DIR                     resume_cli   rerun a grid sweep's unfinished jobs
    tfrun-records report DIR... [-o FILE]              report_cli   one self-contained HTML page
    tfrun-records mlflow DIR... [--uri URI]            mlflow_cli   send records to MLflow
    tfrun-records cleanup RUN... | --all [DIR ...]     cleanup_cli  remove cloud resources runs left

Every command reads records through one validating loader (tfrun.runner.records.reading), so a damaged
record (truncated JSON, not an object, a field of the wrong type) is always one line naming the file and
what is wrong. Exit codes: EPILOG below (also shown by --help).
"""

from __future__ import annotations

import argparse
import os
import sys

from tfrun.runner.records import (
    cleanup_cli,
    diff_cli,
    list_cli,
    mlflow_cli,
    report_cli,
    rerun_cli,
    resume_cli,
    show_cli,
    sweep_cli,
)
from tfrun.runner.records.cli_common import EXIT_OK, EXIT_USAGE, UsageError

COMMANDS = (list_cli, show_cli, diff_cli, rerun_cli, sweep_cli, resume_cli, report_cli, mlflow_cli, cleanup_cli)

EPILOG = """\
exit codes:
  0  done; diff: the runs do not differ
  1  diff: the runs differ; rerun --verify: the rerun failed or did not reproduce; resume: a rerun
     failed; mlflow: the tracking server did not answer; cleanup: a resource could not be removed
  2  bad arguments: no record at a path, a damaged record asked for by name (show, diff, rerun,
     cleanup RUN), a record that cannot be rerun, a folder that does not exist

damaged records (truncated JSON, not a JSON object, a field of the wrong type): each is one line on
stderr naming the file and what is wrong. Commands that search folders (list, report, sweep, mlflow,
cleanup --all) leave it out and go on with the others, and their exit status does not change; resume
reruns a job whose record is damaged.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrun-records",
        description="List, show, compare, rerun and publish tfrun runs from their record.json files.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"tfrun-records: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `tfrun-records list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
