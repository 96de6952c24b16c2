"""`tfrun-records rerun RUN [--verify] [--run-dir DIR]`: run tfrun again with a run's overrides.

The rerun goes to RUN/reruns/<timestamp> (or --run-dir). Without --verify it exits with tfrun's exit code;
with --verify, 0 only for a succeeded rerun whose final metrics, weights and reproducible artifacts are
identical (timings are shown, not compared). A record that cannot be replayed (running, redacted
overrides, damaged) is exit 2 before tfrun starts; so is --verify of a pruned run (its sweep's pruner stopped it:
alone, it trains to the end).
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tfrun.runner.config import dirs as config_dirs
from tfrun.runner.records import record as records
from tfrun.runner.records import reproducible
from tfrun.runner.records.cli_common import EXIT_FAILED, EXIT_OK, UsageError, is_stale, load_run, section
from tfrun.runner.records.diff_cli import (
    config_differences,
    difference_line,
    metric_differences,
    timing_lines,
    user_code_differences,
)
from tfrun.tasks.core.record_io import PRUNED


def tfrun_command() -> list[str]:
    """tfrun of this same Python, so a rerun uses exactly these packages (not whatever is first on PATH)."""
    script = Path(sys.executable).parent / "tfrun"
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "import sys; from tfrun.runner.cli import main; sys.argv[0] = 'tfrun'; main()"]


def hydra_value(text: str) -> str:
    """A value safe on a Hydra command line: quoted when it holds spaces, commas, '=' or quotes."""
    if re.fullmatch(r"[\w./@:+~%-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def rerunnable_overrides(path: Path, data: dict[str, Any]) -> list[str]:
    """The overrides to replay, or a UsageError when replaying them could not reproduce the run."""
    status = data.get("status")
    if status == "running":
        state = "its runner is gone (stale record)" if is_stale(data) else "it may still be running"
        raise UsageError(f"{path} has status 'running' ({state}); rerun a finished run")
    value = section(data, "command").get("overrides")
    if not isinstance(value, list):
        raise UsageError(f"{path} has no command.overrides to rerun")
    redacted = [v for v in value if records.REDACTED in str(v)]
    if redacted:
        raise UsageError(
            f"{path}: override(s) {', '.join(map(str, redacted))} were redacted in the record, "
            "so the run cannot be replayed from it; rerun tfrun by hand with the secret values"
        )
    return [str(v) for v in value]


def default_rerun_dir(run_dir: Path) -> Path:
    """<RUN>/reruns/<timestamp>, with a suffix if two reruns start in the same second."""
    base = run_dir / "reruns" / time.strftime("%Y%m%d-%H%M%S")
    candidate, n = base, 1
    while candidate.exists():
        candidate, n = base.with_name(f"{base.name}-{n}"), n + 1
    return candidate


def run_streaming(cmd: list[str]) -> int:
    """Run tfrun with its output going straight to ours; on Ctrl-C wait for it to finish its record."""
    proc = subprocess.Popen(cmd)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # tfrun got the same SIGINT (same process group) and is stopping
            print("\n[tfrun-records] waiting for tfrun to stop and finish its record", file=sys.stderr, flush=True)


def report_config_check(original: dict[str, Any], new: dict[str, Any]) -> None:
    """Warn when the rerun resolved a different config (changed defaults or code since the original)."""
    if original.get("config_sha256") == new.get("config_sha256"):
        return
    lines = [difference_line(d) for d in config_differences(original, new)]
    print(
        "[tfrun-records] warning: the rerun's config differs from the original's "
        "(config_sha256 differs; original != rerun):",
        flush=True,
    )
    for line in lines or ["(no key differs in the recorded configs)"]:
        print(f"  {line}", flush=True)


def verify(original: dict[str, Any], new: dict[str, Any], exit_code: int) -> int:
    """Exit 0 only for a succeeded rerun with bit-identical final metrics and weights."""
    failed = False
    if new.get("status") != "succeeded":
        print(f"[tfrun-records] the rerun did not succeed: status {new.get('status')}, exit code {exit_code}")
        failed = True
    found = metric_differences(original, new) + user_code_differences(original, new)
    if found:
        print("[tfrun-records] the rerun differs from the original (original != rerun):")
        for diff in found:
            print(difference_line(diff))
    for line in timing_lines(original, new, "original | rerun"):
        print(line)
    if failed or found:
        return EXIT_FAILED
    print(
        "verified: identical metrics and weights"
        + ("" if not reproducible.artifact_hashes(new) else ", and identical bytes of reproducible artifacts")
        + (", from the same user code" if section(new, "code", "user") else "")
    )
    return EXIT_OK


def cmd_rerun(args: argparse.Namespace) -> int:
    path, original = load_run(args.run)
    replay = rerunnable_overrides(path, original)
    if original.get("status") == PRUNED:
        if args.verify:
            raise UsageError(
                f"{path} was pruned (stopped early by its sweep's pruner): a rerun alone trains to the end, so "
                "--verify has nothing to compare; rerun it without --verify"
            )
        print(f"[tfrun-records] {path.parent} was pruned by its sweep's pruner: the rerun trains it to the end")
    run_dir = Path(args.run_dir) if args.run_dir else default_rerun_dir(path.parent)
    if (run_dir / records.RECORD_NAME).exists():
        raise UsageError(f"{run_dir} already holds a record; choose another --run-dir")
    sources = config_dirs.from_argv([str(a) for a in section(original, "command").get("argv") or []])
    arguments = [*sources, *replay, f"hydra.run.dir={hydra_value(str(run_dir))}"]
    print(f"[tfrun-records] rerunning {path.parent}: tfrun {shlex.join(arguments)}", flush=True)
    exit_code = run_streaming([*tfrun_command(), *arguments])
    try:
        _, new = load_run(run_dir)
    except UsageError as err:
        print(f"[tfrun-records] the rerun left no record ({err}); tfrun exit code {exit_code}", flush=True)
        return exit_code or EXIT_FAILED
    report_config_check(original, new)
    return verify(original, new, exit_code) if args.verify else exit_code


def add_parser(sub: Any) -> None:
    p = sub.add_parser("rerun", help="run tfrun again with a run's overrides (from the current directory)")
    p.add_argument("run", metavar="RUN", help="run dir or record.json")
    p.add_argument(
        "--verify",
        action="store_true",
        help="exit 1 unless the weights hash, final metrics and "
        "reproducible artifacts' hashes are identical (timings are shown, not compared)",
    )
    p.add_argument("--run-dir", metavar="DIR", help="where the rerun writes (default: RUN/reruns/<timestamp>)")
    p.set_defaults(func=cmd_rerun)
