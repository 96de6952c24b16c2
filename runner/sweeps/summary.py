"""Summarise a sweep dir: one row per job, the best job and the line that reproduces it.

Writes sweep.csv, sweep.json and sweep.png (the metric against each swept
parameter) into the sweep dir. Reads only records, so it works on a sweep
that is still running, was killed, or ran on another machine.
"""

from __future__ import annotations

import csv
import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tfrun.runner.config import dirs as config_dirs
from tfrun.runner.records import reading
from tfrun.runner.records.cli_common import pruned_text
from tfrun.runner.records.record import RECORD_NAME
from tfrun.runner.sweeps.before import Before
from tfrun.tasks.core.record_io import PRUNED

HYDRA_PREFIXES = ("hydra.", "hydra/", "+hydra.", "sweep=", "sweep.")  # the search, not the job
NOT_FAILED = ("succeeded", PRUNED)  # a pruned job was stopped by the sweep's pruner: the sweep still exits 0


@dataclass
class Row:
    job: str
    status: str
    overrides: list[str]
    metric: Optional[float]
    metrics: dict[str, float]
    seconds: Optional[float]
    error: Optional[str]
    run_dir: str
    config_sources: list[str] = field(
        default_factory=list
    )  # --config-dir=... of the command (tfrun.runner.config.dirs)
    pruned: Optional[dict] = None  # the record's `pruned` section: where and why the sweep's pruner stopped it

    @property
    def params(self) -> dict[str, str]:
        return dict(
            o.lstrip("+").split("=", 1) for o in self.overrides if "=" in o and not o.startswith(HYDRA_PREFIXES)
        )


@dataclass
class Summary:
    sweep_dir: Path
    metric_name: str
    maximize: bool
    rows: list[Row] = field(default_factory=list)

    @property
    def best(self) -> Optional[Row]:
        done = [r for r in self.rows if r.status == "succeeded" and r.metric is not None and not math.isnan(r.metric)]
        if not done:
            return None
        return max(done, key=lambda r: r.metric if self.maximize else -r.metric)

    def best_command(self) -> Optional[str]:
        best = self.best
        if best is None:
            return None
        kept = [o for o in best.overrides if not o.startswith(HYDRA_PREFIXES)]
        return " ".join(["tfrun", *(shlex.quote(o) for o in [*best.config_sources, *kept])])

    def sorted_rows(self) -> list[Row]:
        def key(row: Row) -> tuple:
            missing = row.metric is None or math.isnan(row.metric)
            value = 0.0 if missing else (-row.metric if self.maximize else row.metric)
            return (missing, value, _job_order(row.job))

        return sorted(self.rows, key=key)


def _job_order(job: str) -> tuple:
    """Jobs 0, 1, ... then Vertex trials trial-1, trial-2, ... in number order, then anything else."""
    number = job.rsplit("trial-", 1)[-1]
    if job.isdigit() or number.isdigit():
        return (0, int(number), job.rsplit("trial-", 1)[0])
    return (1, 0, job)


def is_maximized(metric: str) -> bool:
    return "loss" not in metric


def collect(sweep_dir: Path) -> Summary:
    """Rows from every job dir (immediate subdirs holding a record)."""
    rows: list[Row] = []
    metric_name = "holdout_accuracy"
    goal = None  # sweep=vertex's tuning.goal, when its job is here
    paths = sorted(sweep_dir.glob(f"*/{RECORD_NAME}"), key=lambda p: _job_order(p.parent.name))
    for record_path, record in reading.read_all(paths):  # a damaged record: one line, left out
        if record.get("job") == "tune":  # sweep=vertex's own job: its trials are the rows (trial-<id>/)
            goal = ((record.get("config") or {}).get("tuning") or {}).get("goal")
            continue
        config = record.get("config") or {}
        metric_name = config.get("optimized_metric", metric_name)
        final = record.get("metrics", {}).get("final", {})
        error = record.get("error") or {}
        rows.append(
            Row(
                job=record_path.parent.name,
                status=record.get("status", "unknown"),
                overrides=list(record.get("command", {}).get("overrides", [])),
                metric=final.get(metric_name),
                metrics=final,
                seconds=record.get("seconds"),
                error=f"{error.get('type')}: {error.get('message')}" if error else None,
                run_dir=record_path.parent.name,
                config_sources=config_dirs.from_argv(list(record.get("command", {}).get("argv") or [])),
                pruned=record.get("pruned") if isinstance(record.get("pruned"), dict) else None,
            )
        )
    maximize = goal == "maximize" if goal in ("maximize", "minimize") else is_maximized(metric_name)
    return Summary(sweep_dir, metric_name, maximize, rows)


def unsuccessful(sweep_dir: Path, before: Before) -> tuple[list[str], int]:
    """The jobs whose records were written since `before` (this invocation's, not an earlier session's of a resumed
    sweep) and failed (neither succeeded nor pruned), as "job N (status)", and how many jobs that is in all.
    sweep=vertex's own job is named only when it failed (its trials are the jobs)."""
    failed: list[str] = []
    total = 0
    for record_path in sorted(sweep_dir.glob(f"*/{RECORD_NAME}"), key=lambda p: _job_order(p.parent.name)):
        if not before.is_new(sweep_dir, record_path):
            continue
        try:
            record = reading.read(record_path)
        except reading.BadRecord:
            record = {"status": "damaged"}
        status = record.get("status", "unknown")
        tune = record.get("job") == "tune"
        total += 0 if tune else 1
        if status not in NOT_FAILED:
            failed.append(f"{'the tuning job' if tune else 'job ' + record_path.parent.name} ({status})")
    return failed, total


def sessions(sweep_dir: Path, before: Before) -> tuple[int, int]:
    """How many jobs this invocation ran (records written since `before`) and how many came from before (an
    earlier run of the same sweep: a continued Optuna study, a resumed grid). sweep=vertex's own job counts not."""
    now = earlier = 0
    for record_path in sweep_dir.glob(f"*/{RECORD_NAME}"):
        try:
            if reading.read(record_path).get("job") == "tune":
                continue
        except reading.BadRecord:
            pass  # still one of the sweep's jobs
        if before.is_new(sweep_dir, record_path):
            now += 1
        else:
            earlier += 1
    return now, earlier


def swept(rows: list[Row]) -> list[str]:
    """Parameters whose value differs between jobs (the ones worth a column and a plot)."""
    params = sorted({k for r in rows for k in r.params})
    varying = [p for p in params if len({r.params.get(p) for r in rows}) > 1]
    return varying or params


def write(summary: Summary) -> list[Path]:
    """sweep.csv, sweep.json and (when matplotlib is installed) sweep.png."""
    out = summary.sweep_dir
    rows = summary.sorted_rows()
    params = sorted({k for r in rows for k in r.params})
    metric_keys = sorted({k for r in rows for k in r.metrics})
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["job", "status", *params, *metric_keys, "seconds", "overrides", "error"])
        for r in rows:
            writer.writerow(
                [
                    r.job,
                    r.status,
                    *(r.params.get(p, "") for p in params),
                    *(r.metrics.get(m, "") for m in metric_keys),
                    r.seconds,
                    " ".join(r.overrides),
                    r.error or "",
                ]
            )
    best = summary.best
    payload = {
        "metric": summary.metric_name,
        "maximize": summary.maximize,
        "best": None if best is None else {"job": best.job, "metric": best.metric, "command": summary.best_command()},
        "jobs": [
            {
                "job": r.job,
                "status": r.status,
                "params": r.params,
                "overrides": r.overrides,
                "metric": r.metric,
                "metrics": r.metrics,
                "seconds": r.seconds,
                "error": r.error,
            }
            for r in rows
        ],
    }
    (out / "sweep.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    written = [out / "sweep.csv", out / "sweep.json"]
    if plot(summary, out / "sweep.png", swept(rows)):
        written.append(out / "sweep.png")
    return written


def _as_number(value: str) -> Optional[float]:
    try:
        return float(value)
    except ValueError:
        return None


def preload_plotting() -> None:
    """Import matplotlib's pyplot in a background thread while the sweep's jobs run (the runner only waits on them
    then), so the summary's plot at the end does not pay the import (~0.7 s on a 2-core machine) after the last job."""
    import threading

    def load() -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # noqa: F401
        except ImportError:
            pass

    threading.Thread(target=load, name="tfrun-preload-pyplot", daemon=True).start()


def plot(summary: Summary, path: Path, params: list[str]) -> bool:
    """The metric against each swept parameter, one panel each (log axis when values span decades)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    done = [r for r in summary.rows if r.metric is not None and not math.isnan(r.metric)]
    if not done or not params:
        return False
    fig, axes = plt.subplots(1, len(params), figsize=(4 * len(params), 3.2), squeeze=False)
    for ax, param in zip(axes[0], params):
        values = [r.params.get(param, "") for r in done]
        numbers = [_as_number(v) for v in values]
        if all(n is not None for n in numbers):
            ax.scatter(numbers, [r.metric for r in done])
            positive = [n for n in numbers if n > 0]
            if len(positive) == len(numbers) and max(positive) / min(positive) >= 10:
                ax.set_xscale("log")
        else:
            labels = sorted(set(values))
            ax.scatter([labels.index(v) for v in values], [r.metric for r in done])
            ax.set_xticks(range(len(labels)), labels, rotation=30)
        ax.set_xlabel(param)
        ax.set_ylabel(summary.metric_name)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{summary.sweep_dir.name}: {summary.metric_name} per job")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def table(summary: Summary) -> tuple[list[str], list[list[object]]]:
    """The jobs' table, best first: its header and a row per job (the swept parameters, the metric, the seconds);
    the console's and Jupyter's views of a sweep show the same."""
    rows = summary.sorted_rows()
    params = swept(rows)
    header = ["job", "status", *params, summary.metric_name, "seconds"]
    body = [
        [
            r.job,
            r.status,
            *(r.params.get(p, "") for p in params),
            "" if r.metric is None else f"{r.metric:.4f}",
            "" if r.seconds is None else f"{r.seconds:.1f}",
        ]
        for r in rows
    ]
    return header, body


def render(summary: Summary) -> str:
    """A plain-text table, best first, and the best job's command line."""
    rows = summary.sorted_rows()
    header, body = table(summary)
    widths = [max(len(str(x)) for x in column) for column in zip(header, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in [header, *body]]
    for r in rows:
        if r.error:
            lines.append(f"job {r.job} {r.status}: {r.error}")
        elif r.status == PRUNED and pruned_text(r.pruned):
            lines.append(f"job {r.job} pruned {pruned_text(r.pruned)}")
    best = summary.best
    if best is not None:
        lines.append(f"best: job {best.job}, {summary.metric_name} = {best.metric:.4f}")
        lines.append(f"reproduce: {summary.best_command()}")
    else:
        lines.append("best: no job succeeded")
    return "\n".join(lines)


def summarise(sweep_dir: Path) -> Summary:
    summary = collect(sweep_dir)
    write(summary)
    return summary
