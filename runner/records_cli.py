"""The `tfrun-records` command: list, show, diff and rerun the runs tfrun recorded.

It only reads record.json files (and, for `rerun`, starts tfrun in a
subprocess), so it never imports TensorFlow or Hydra and answers at once.
rich is imported only when a table is drawn.

    tfrun-records list [DIR ...] [--json]
    tfrun-records show RUN [--json]
    tfrun-records diff RUN_A RUN_B
    tfrun-records rerun RUN [--verify] [--run-dir DIR]

Exit codes: 0 done (diff: with or without differences), 1 a rerun failed or
did not reproduce the original (--verify), 2 bad arguments (no record at a
path, a record that cannot be rerun). What a rerun must reproduce, and what
(timings) it only shows: tfrun.runner.records.reproducible.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from tfrun.runner.config import dirs as config_dirs
from tfrun.runner.records import cleanup_cli, reproducible
from tfrun.runner.records import record as records

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_DIRS = ("runs", "multiruns")
DEFAULT_METRIC = "holdout_accuracy"
_MISSING = object()  # a key present in one record and not in the other


class UsageError(Exception):
    """A problem with what was asked (no record at a path, a run that cannot be rerun): exit 2."""


# ----------------------------------------------------------------------------- reading records
def load_run(run: str | Path) -> tuple[Path, dict[str, Any]]:
    """The record file and data of RUN (a run dir or a record.json), or a UsageError naming the path."""
    try:
        path = records.locate(run)
        data = records.load(path)
    except FileNotFoundError:
        raise UsageError(f"no {records.RECORD_NAME} at {run}") from None
    except (OSError, ValueError) as err:  # ValueError: not JSON
        raise UsageError(f"cannot read the record at {run}: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a tfrun record (not a JSON object)")
    return path, data


def _section(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A nested dict of the record, empty when absent or null (older or partial records)."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def runner_alive(data: dict[str, Any]) -> bool | None:
    """Whether the runner process that owns the record still exists.

    None when this machine cannot tell: no pid recorded, or the run is on another host.
    """
    pid = _section(data, "pids").get("runner")
    host = _section(data, "environment").get("host")
    if not isinstance(pid, int) or pid <= 0 or (host and host != socket.gethostname()):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return None
    return True


def is_stale(data: dict[str, Any]) -> bool:
    """A `running` record whose runner is gone: the run died without finishing its record."""
    return data.get("status") == "running" and runner_alive(data) is False


def display_status(data: dict[str, Any]) -> str:
    status = str(data.get("status", "?"))
    return f"{status} (stale)" if is_stale(data) else status


def main_metric(data: dict[str, Any]) -> tuple[str, Any]:
    """The run's optimized metric (config.optimized_metric) and its final value (None if not reached)."""
    name = _section(data, "config").get("optimized_metric") or DEFAULT_METRIC
    return str(name), _section(data, "metrics", "final").get(name)


def overrides(data: dict[str, Any]) -> list[str]:
    value = _section(data, "command").get("overrides")
    return [str(v) for v in value] if isinstance(value, list) else []


# ------------------------------------------------------------------------------------ formatting
def fmt(value: Any) -> str:
    """One value as a person (and a diff line) should see it: exact floats, JSON for structures."""
    if value is _MISSING:
        return "<absent>"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value) if not isinstance(value, float) else repr(value)


def short_hash(value: Any, n: int = 12) -> str:
    return f"{value[:n]}.." if isinstance(value, str) and len(value) > n else fmt(value)


def fmt_metric(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else fmt(value))


def fmt_seconds(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def fmt_started(value: Any) -> str:
    """Start time in local time to the second: the list is read by a person at this machine."""
    try:
        return datetime.fromisoformat(str(value)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(value or "-")


# ------------------------------------------------------------------------------------------ list
def _start_key(row: dict[str, Any]) -> tuple[int, float, str]:
    """Sort by start time; records without a readable one go first, then by path."""
    try:
        return (1, datetime.fromisoformat(str(row["started_at"])).timestamp(), row["record"])
    except ValueError:
        return (0, 0.0, row["record"])


def list_row(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """One line of `list` (also its --json form)."""
    metric, value = main_metric(data)
    return {
        "run_id": data.get("run_id"),
        "started_at": data.get("started_at"),
        "status": data.get("status"),
        "stale": is_stale(data),
        "overrides": overrides(data),
        "metric": metric,
        "metric_value": value,
        "seconds": data.get("seconds"),
        "run_dir": str(path.parent),
        "record": str(path),
    }


def collect_rows(directories: list[str]) -> list[dict[str, Any]]:
    """Rows for every readable record below the folders; unreadable files are reported and skipped."""
    rows = []
    for path in records.find_all(directories):
        try:
            _, data = load_run(path)
        except UsageError as err:
            print(f"tfrun-records: skipping {err}", file=sys.stderr)
            continue
        rows.append(list_row(path, data))
    return sorted(rows, key=_start_key)


def print_table(rows: list[dict[str, Any]]) -> None:
    """The run table; a pipe or file gets full-width lines instead of the wrapping a terminal needs."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    metrics = {row["metric"] for row in rows}
    metric_header = metrics.pop() if len(metrics) == 1 else "main metric"
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header, justify in (
        ("run id", "left"),
        ("started", "left"),
        ("status", "left"),
        ("overrides", "left"),
        (metric_header, "right"),
        ("seconds", "right"),
        ("run dir", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        metric = fmt_metric(row["metric_value"])
        if metric_header == "main metric":
            metric = f"{row['metric']} {metric}"
        status = f"{row['status']} (stale)" if row["stale"] else str(row["status"])
        cells = [
            fmt(row["run_id"]),
            fmt_started(row["started_at"]),
            status,
            " ".join(row["overrides"]),
            metric,
            fmt_seconds(row["seconds"]),
            row["run_dir"],
        ]
        table.add_row(*(Text(cell) for cell in cells))  # Text: no rich markup in overrides like a=[1,2]
    Console(width=None if sys.stdout.isatty() else 100_000).print(table)


def cmd_list(args: argparse.Namespace) -> int:
    directories = args.dirs or [d for d in DEFAULT_DIRS if Path(d).is_dir()]
    for directory in args.dirs:
        if not Path(directory).is_dir():
            raise UsageError(f"no such directory: {directory}")
    rows = collect_rows(directories)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif not rows:
        where = ", ".join(directories) if directories else "./runs or ./multiruns (neither exists here)"
        print(f"no records found in {where}")
    else:
        print_table(rows)
    return EXIT_OK


# ------------------------------------------------------------------------------------------ show
def _kv(label: str, value: str) -> str:
    return f"{label:<11}{value}"


def header_lines(path: Path, data: dict[str, Any]) -> list[str]:
    """Who/when/what: status, times, command, config hash, code, versions, devices."""
    code, env = _section(data, "code"), _section(data, "environment")
    repro = _section(data, "reproducibility")
    dirty = code.get("git_dirty")
    code_state = "dirty" if dirty else ("clean" if dirty is False else "unknown")
    if dirty and code.get("git_diff_sha256"):
        code_state += f", diff sha256 {short_hash(code['git_diff_sha256'])}"
    packages = ", ".join(f"{k} {v}" for k, v in _section(data, "environment", "packages").items() if v)
    devices = _section(env, "devices").get("logical") or []
    metric, _ = main_metric(data)
    return [
        _kv("run", f"{data.get('run_id', '?')}  (job {data.get('job', '?')})"),
        _kv("record", str(path)),
        _kv("status", display_status(data)),
        _kv("started", fmt(data.get("started_at"))),
        _kv("ended", f"{fmt(data.get('ended_at'))}  ({fmt_seconds(data.get('seconds'))} s)"),
        _kv("overrides", " ".join(overrides(data)) or "(none)"),
        _kv("config", f"sha256 {short_hash(data.get('config_sha256'))}  optimized metric {metric}"),
        _kv("code", f"git {short_hash(code.get('git_commit'))} ({code_state})"),
        *user_code_lines(code),
        _kv(
            "python",
            f"{env.get('python', '?')} on {env.get('platform', '?')}, host {env.get('host', '?')}, "
            f"{env.get('cpu_count', '?')} CPUs",
        ),
        _kv("packages", packages or "(not recorded)"),
        _kv("devices", ", ".join(map(str, devices)) or "(not recorded)"),
        _kv("seed", f"{fmt(repro.get('seed'))}, deterministic {fmt(repro.get('deterministic'))}"),
    ]


def user_code_lines(code: dict[str, Any]) -> list[str]:
    """One line per user `_target_`: its file's sha256 and its project's git commit."""
    lines = []
    for key, entry in _section(code, "user").items():
        if not isinstance(entry, dict):
            continue
        git = entry.get("git_commit")
        state = f", git {short_hash(git)} ({'dirty' if entry.get('git_dirty') else 'clean'})" if git else ""
        lines.append(
            _kv(
                "user code",
                f"{key}: {entry.get('target')} in {entry.get('file')}, sha256 {short_hash(entry.get('sha256'))}{state}",
            )
        )
    return lines


def _step_seconds(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def step_lines(data: dict[str, Any]) -> list[str]:
    steps = [s for s in data.get("steps") or [] if isinstance(s, dict)]
    lines = ["steps"] if steps else []
    for step in steps:
        result = step.get("result") if isinstance(step.get("result"), dict) else {}
        lines.append(
            f"  {step.get('name', '?'):<10} {step.get('status', '?'):<11} "
            f"{_step_seconds(step.get('seconds')):>7} s  {result.get('summary', '')}".rstrip()
        )
    return lines


def metric_lines(data: dict[str, Any]) -> list[str]:
    final = _section(data, "metrics", "final")
    main, _ = main_metric(data)
    width = max((len(k) for k in final), default=0)
    lines = ["final metrics"] if final else []
    lines += [f"  {k:<{width}}  {fmt_metric(v)}{'  (optimized)' if k == main else ''}" for k, v in final.items()]
    return lines


def artifact_lines(data: dict[str, Any]) -> list[str]:
    artifacts = [a for a in data.get("artifacts") or [] if isinstance(a, dict)]
    lines = ["artifacts"] if artifacts else []
    for a in artifacts:
        size = f"{a['bytes']:,} bytes" if isinstance(a.get("bytes"), int) else "? bytes"
        lines.append(
            f"  {a.get('kind', '?')}: {a.get('path', '?')}  version {fmt(a.get('version'))}  {size}  "
            f"sha256 {short_hash(a.get('sha256'))}"
        )
    lines.append(_kv("weights", f"sha256 {fmt(data.get('weights_sha256'))}"))
    for d in data.get("deployments") or []:
        scalars = d.items() if isinstance(d, dict) else []
        lines.append(
            "  deployment: " + ", ".join(f"{k}={fmt(v)}" for k, v in scalars if not isinstance(v, (dict, list)))
        )
    return lines


def error_lines(data: dict[str, Any]) -> list[str]:
    error = _section(data, "error")
    if not error:
        return []
    where = ", ".join(f"{k} {fmt(error[k])}" for k in ("step", "signal", "exit_code") if error.get(k) is not None)
    lines = ["error", f"  {error.get('type', '?')}: {error.get('message', '')}", f"  ({where})" if where else ""]
    tail = error.get("log_tail") or []
    if tail:
        lines += ["  log tail:", *(f"    {line}" for line in tail)]
    return [line for line in lines if line]


def cmd_show(args: argparse.Namespace) -> int:
    path, data = load_run(args.run)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    cloud = ["cloud resources:", *cleanup_cli.resource_lines(data)] if data.get("cloud_resources") else []
    for block in (
        header_lines(path, data),
        step_lines(data),
        metric_lines(data),
        artifact_lines(data),
        cloud,
        error_lines(data),
    ):
        if block:
            print("\n".join(block))
    return EXIT_OK


# ------------------------------------------------------------------------------------------ diff
Difference = tuple[str, Any, Any]  # key, value in A, value in B


def _same(a: Any, b: Any) -> bool:
    """Exact equality, with NaN equal to NaN (a run that diverged the same way twice reproduced)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b if isinstance(a, (bool, float, int)) else a == b


def compare(prefix: str, a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """Keys whose values differ between two flat dicts, absent keys included."""
    keys = list(a) + [k for k in b if k not in a]
    return [
        (f"{prefix}.{k}" if prefix else k, a.get(k, _MISSING), b.get(k, _MISSING))
        for k in keys
        if not _same(a.get(k, _MISSING), b.get(k, _MISSING))
    ]


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """Differing config keys; if only redacted values differ, the differing hashes say so."""
    found = compare("config", records.flatten(_section(a, "config")), records.flatten(_section(b, "config")))
    if not found and a.get("config_sha256") != b.get("config_sha256"):
        found = [
            ("config_sha256 (the configs differ in redacted values)", a.get("config_sha256"), b.get("config_sha256"))
        ]
    return found


def metric_differences(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """What a rerun must reproduce: final metrics except timings, the weights, reproducible artifacts' bytes."""
    timings = reproducible.timing_names(a, b)
    found = compare(
        "metrics.final", reproducible.compared_metrics(a, timings), reproducible.compared_metrics(b, timings)
    )
    if not _same(a.get("weights_sha256"), b.get("weights_sha256")):
        found.append(("weights_sha256", a.get("weights_sha256"), b.get("weights_sha256")))
    return found + compare("artifacts", reproducible.artifact_hashes(a), reproducible.artifact_hashes(b))


def user_code_differences(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """The user's `_target_`s and their source files' sha256 (a rerun of other code verifies nothing)."""

    def compared(data: dict[str, Any]) -> dict[str, Any]:
        user = _section(data, "code", "user")
        return {
            f"{key}.{field}": entry.get(field)
            for key, entry in user.items()
            if isinstance(entry, dict)
            for field in ("target", "sha256")
        }

    return compare("code.user", compared(a), compared(b))


def timing_lines(a: dict[str, Any], b: dict[str, Any], names: str) -> list[str]:
    """Timing metrics side by side: they follow the machine's load, so they are shown, never compared."""
    pairs = reproducible.timing_pairs(a, b)
    header = f"not compared (timings vary with machine load; {names}):"
    return [header, *(f"  {key}: {fmt(x)} | {fmt(y)}" for key, x, y in pairs)] if pairs else []


def record_differences(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """What `diff` reports: config, final metrics and weights, code, package versions."""
    return (
        config_differences(a, b)
        + metric_differences(a, b)
        + compare("code", records.flatten(_section(a, "code")), records.flatten(_section(b, "code")))
        + compare(
            "environment.packages", _section(a, "environment", "packages"), _section(b, "environment", "packages")
        )
    )


def difference_line(diff: Difference) -> str:
    key, a, b = diff
    show: Callable[[Any], str] = short_hash if "sha256" in key else fmt
    return f"{key}: {show(a)} != {show(b)}"


def cmd_diff(args: argparse.Namespace) -> int:
    path_a, a = load_run(args.run_a)
    path_b, b = load_run(args.run_b)
    found = record_differences(a, b)
    if not found:
        print("no differences")
    else:
        print(f"A = {path_a}\nB = {path_b}\n(A != B)")
        for diff in found:
            print(difference_line(diff))
    for line in timing_lines(a, b, "A | B"):
        print(line)
    return EXIT_OK


# ----------------------------------------------------------------------------------------- rerun
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
    value = _section(data, "command").get("overrides")
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
        + (", from the same user code" if _section(new, "code", "user") else "")
    )
    return EXIT_OK


def cmd_rerun(args: argparse.Namespace) -> int:
    path, original = load_run(args.run)
    replay = rerunnable_overrides(path, original)
    run_dir = Path(args.run_dir) if args.run_dir else default_rerun_dir(path.parent)
    if (run_dir / records.RECORD_NAME).exists():
        raise UsageError(f"{run_dir} already holds a record; choose another --run-dir")
    sources = config_dirs.from_argv([str(a) for a in _section(original, "command").get("argv") or []])
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


# ------------------------------------------------------------------------------------------ sweeps
def _sweep_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise UsageError(f"{path} is not a sweep dir (a folder with one job dir per job)")
    return path


def cmd_sweep(args: argparse.Namespace) -> int:
    from tfrun.runner.sweeps.summary import render, summarise

    sweep_dir = _sweep_dir(args.sweep_dir)
    summary = summarise(sweep_dir)
    if not summary.rows:
        raise UsageError(f"{sweep_dir} holds no job records (*/record.json)")
    from tfrun.runner.sweeps import hparams

    hparams.write(summary)
    print(render(summary))
    print(
        f"[tfrun-records] wrote {sweep_dir / 'sweep.csv'}, sweep.json, sweep.png and the HParams dashboard's "
        f"events (tensorboard --logdir {sweep_dir})"
    )
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    from tfrun.runner.sweeps import resume as sweep_resume
    from tfrun.runner.sweeps.summary import render, summarise

    sweep_dir = _sweep_dir(args.sweep_dir)
    try:
        todo = sweep_resume.jobs_to_rerun(sweep_dir)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    if not todo:
        print(f"[tfrun-records] every job of {sweep_dir} succeeded: nothing to resume")
        return EXIT_OK
    worst = EXIT_OK
    for number, job_overrides, why in todo:
        print(f"[tfrun-records] job {number} ({why}): tfrun {shlex.join(job_overrides)}", flush=True)
        code = sweep_resume.rerun(tfrun_command(), sweep_dir, number, job_overrides, hydra_value)
        worst = worst or code
    print(render(summarise(sweep_dir)))
    return EXIT_FAILED if worst else EXIT_OK


# ------------------------------------------------------------------------------------------ report
def cmd_report(args: argparse.Namespace) -> int:
    from tfrun.runner.records import report

    for directory in args.dirs:
        if not Path(directory).is_dir():
            raise UsageError(f"no such directory: {directory}")
    data = report.write(args.dirs, Path(args.output))
    print(
        f"{args.output}: {len(data['runs'])} run(s), {len(data['sweeps'])} sweep(s); one self-contained file "
        "(opens offline; links to records and artifacts are relative to it)"
    )
    return EXIT_OK


# ------------------------------------------------------------------------------------------ mlflow
def cmd_mlflow(args: argparse.Namespace) -> int:
    """Send existing records to MLflow: sweeps as parent + children, other runs alone; none sent twice."""
    from tfrun.runner.tracking import mlflow_log
    from tfrun.tasks.core.schema.track import LOCAL_STORE

    args.uri = args.uri or LOCAL_STORE
    for directory in args.dirs:
        if not Path(directory).is_dir():
            raise UsageError(f"no such directory: {directory}")
    try:
        client = mlflow_log.client(args.uri)
        experiment = mlflow_log.experiment_id(client, args.experiment)
    except ImportError:
        raise UsageError("mlflow is not installed: pip install 'tfrun[mlflow]' (scripts/env.sh mlflow)") from None
    sweeps = sorted({p.parent for d in args.dirs for p in Path(d).rglob("sweep.json")})
    sent = skipped = 0
    for sweep_dir in sweeps:
        parent, new = mlflow_log.log_sweep(client, experiment, sweep_dir)
        jobs = len(list(sweep_dir.glob(f"*/{records.RECORD_NAME}")))
        sent, skipped = sent + new, skipped + jobs - new
        print(f"sweep {sweep_dir}: parent run {parent}, {new} job run(s) sent")
    for path in records.find_all(args.dirs):
        if any(path.parent.parent == s for s in sweeps):
            continue  # sent with its sweep
        _, data = load_run(path)
        run_id, new = mlflow_log.log_record(client, experiment, path, data)
        sent, skipped = sent + new, skipped + (not new)
    print(f"{sent} run(s) sent to {args.uri} (experiment {args.experiment!r}), {skipped} already there")
    return EXIT_OK


# ------------------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrun-records", description="List, show, compare and rerun tfrun runs from their record.json files."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="table of runs found below DIRs, oldest first")
    p.add_argument("dirs", nargs="*", metavar="DIR", help="folders to search (default: ./runs and ./multiruns)")
    p.add_argument("--json", action="store_true", help="machine-readable rows")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="summary of one run")
    p.add_argument("run", metavar="RUN", help="run dir or record.json")
    p.add_argument("--json", action="store_true", help="print the whole record")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="config, metric, weights, code and package differences of two runs")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.set_defaults(func=cmd_diff)

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

    p = sub.add_parser("sweep", help="summarise a sweep dir: table by metric, best job's command, sweep.csv/json/png")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("resume", help="rerun only a grid sweep's missing, failed or interrupted jobs")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("report", help="one self-contained HTML page of the runs and sweeps below DIRs")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="folders holding runs and sweeps (e.g. runs multiruns)")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE", help="the page (default: report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("mlflow", help="send existing records to MLflow (sweeps as parent + children; idempotent)")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="folders holding runs and sweeps")
    p.add_argument("--uri", help="tracking URI (default: the local store here, as track=mlflow uses)")
    p.add_argument("--experiment", default="tfrun", help="MLflow experiment (default: tfrun)")
    p.set_defaults(func=cmd_mlflow)
    cleanup_cli.add_parser(sub)
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
