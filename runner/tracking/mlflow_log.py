"""A run's record as an MLflow run: the same function logs a run when it ends, a sweep when it ends (a parent
run with one nested child per job, the best one tagged) and old records (`tfrun-records mlflow`).

Each MLflow run is made from the finished record, so it is never left RUNNING: its status is the record's
(succeeded -> FINISHED, failed -> FAILED, interrupted -> KILLED, pruned -> KILLED: stopped early by the sweep's pruner,
not a failure; the `tfrun.status` tag says which) with the error as a tag. Params are the
flattened config (values cut to MLflow's length limit; the whole config is the `config.json` artifact),
metrics the per-epoch history with its step and the final metrics, tags tfrun's run id, status, git commit,
record path and command line; artifacts the record and the run log. A record already sent is found by its
`tfrun.run_id` tag and not sent twice. mlflow is imported here only, inside the functions.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

from tfrun.runner.records import reading
from tfrun.runner.records import record as records

STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "pruned": "KILLED"}
NOT_FAILED = ("succeeded", "pruned")  # a sweep whose jobs all ended so is FINISHED
MAX_PARAM = 6000  # MLflow's limit on a param value (longer ones are cut, the config artifact has them whole)
MAX_KEY = 250
RUN_ID_TAG = "tfrun.run_id"
SWEEP_TAG = "tfrun.sweep_dir"


def client(uri: str, timeout_s: float = 5.0) -> Any:
    """An MlflowClient whose requests each wait `timeout_s` and are retried twice (after ~1 s and ~2 s).

    MLflow's own default retries for minutes; a run's end must not. Two quick retries ride out a busy
    server (a 5xx, a dropped connection, a slow answer); a retried metrics batch is not stored twice
    (the same key, step, timestamp and value is one metric). Variables the user set win.
    """
    import os

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(1, timeout_s))))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0.5")
    quiet_retries()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


class _NoRetryLines(logging.Filter):
    """urllib3's "Retrying (Retry(total=1, ...)) after connection broken by ..." warnings: the retries are ours,
    and their outcome is the one warning line of `warn` (a run under Hydra has logging set up to print them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Retrying")


def quiet_retries() -> None:
    pool = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _NoRetryLines) for f in pool.filters):
        pool.addFilter(_NoRetryLines())


def experiment_id(mlflow: Any, name: str) -> str:
    found = mlflow.get_experiment_by_name(name)
    return found.experiment_id if found is not None else mlflow.create_experiment(name)


def _existing(mlflow: Any, experiment: str, tag: str, value: str) -> Optional[str]:
    runs = mlflow.search_runs([experiment], filter_string=f"tags.`{tag}` = '{value}'", max_results=1)
    return runs[0].info.run_id if runs else None


def _millis(iso: Any) -> Optional[int]:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(str(iso)).timestamp() * 1000)
    except ValueError:
        return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def log_record(
    mlflow: Any,
    experiment: str,
    path: Path,
    data: dict[str, Any],
    parent: Optional[str] = None,
    extra_tags: Optional[dict[str, str]] = None,
) -> tuple[str, bool]:
    """The MLflow run of one record (created, or found from an earlier send); (run id, whether it was new)."""
    from mlflow.entities import Metric, Param, RunTag

    run_key = str(data.get("run_id"))
    found = _existing(mlflow, experiment, RUN_ID_TAG, run_key)
    if found:
        return found, False
    started, ended = _millis(data.get("started_at")), _millis(data.get("ended_at"))
    command = data.get("command") or {}
    code = data.get("code") or {}
    error = data.get("error") or {}
    tags = {
        RUN_ID_TAG: run_key,
        "tfrun.status": str(data.get("status")),
        "tfrun.record": str(path),
        "tfrun.job": str(data.get("job")),
        "tfrun.command": shlex.join(str(a) for a in command.get("argv") or []),
        "mlflow.runName": f"{run_key} {' '.join(command.get('overrides') or [])}"[:250],
        **({"mlflow.source.git.commit": str(code["git_commit"])} if code.get("git_commit") else {}),
        **({"tfrun.error": f"{error.get('type')}: {error.get('message')}"[:5000]} if error else {}),
        **({"mlflow.parentRunId": parent} if parent else {}),
        **(extra_tags or {}),
    }
    run = mlflow.create_run(experiment, start_time=started, tags=tags)
    run_id = run.info.run_id
    params = [
        Param(k[:MAX_KEY], str(v)[:MAX_PARAM]) for k, v in sorted(records.flatten(data.get("config") or {}).items())
    ]
    metrics_node = data.get("metrics") or {}
    stamp = ended or started or 0
    metrics = [
        Metric(name, float(value), stamp, step)
        for name, values in (metrics_node.get("history") or {}).items()
        for step, value in enumerate(values or [])
        if _number(value)
    ]
    last = max((len(v or []) for v in (metrics_node.get("history") or {}).values()), default=0)
    metrics += [
        Metric(name, float(value), stamp, max(0, last - 1))
        for name, value in (metrics_node.get("final") or {}).items()
        if _number(value) and not (metrics_node.get("history") or {}).get(name)
    ]
    for i in range(0, max(len(params), 1), 100):  # MLflow takes up to 100 params per batch
        mlflow.log_batch(run_id, params=params[i : i + 100])
    for i in range(0, len(metrics), 1000):
        mlflow.log_batch(run_id, metrics=metrics[i : i + 1000])
    mlflow.log_batch(run_id, tags=[RunTag("tfrun.metrics", ",".join(sorted((metrics_node.get("final") or {}))))])
    folder = path.parent
    for name in ("record.json", "run.log", "sweep.json", "sweep.png"):
        if (folder / name).is_file():
            mlflow.log_artifact(run_id, str(folder / name))
    config = folder / ".mlflow-config.json"
    try:  # the whole config (params are cut at MLflow's limit), under its own name
        config.write_text(json.dumps(data.get("config") or {}, indent=1))
        mlflow.log_artifact(run_id, str(config))
    finally:
        config.unlink(missing_ok=True)
    mlflow.set_terminated(run_id, status=STATUS.get(str(data.get("status")), "FAILED"), end_time=ended)
    return run_id, True


def log_sweep(mlflow: Any, experiment: str, sweep_dir: Path) -> tuple[str, int]:
    """A sweep dir as a parent run with one nested child per job record; (parent id, children sent now)."""
    from tfrun.runner.sweeps.summary import summarise

    summary = summarise(sweep_dir)
    key = str(sweep_dir.resolve())
    parent = _existing(mlflow, experiment, SWEEP_TAG, key)
    best = summary.best
    if parent is None:
        status = "FINISHED" if summary.rows and all(r.status in NOT_FAILED for r in summary.rows) else "FAILED"
        run = mlflow.create_run(
            experiment,
            tags={
                SWEEP_TAG: key,
                "mlflow.runName": f"sweep {sweep_dir.name}",
                "tfrun.best_job": best.job if best else "",
                "tfrun.best_command": summary.best_command() or "",
            },
        )
        parent = run.info.run_id
        if best is not None and _number(best.metric):
            mlflow.log_metric(parent, f"best_{summary.metric_name}", float(best.metric))
        for name in ("sweep.json", "sweep.csv", "sweep.png"):
            if (sweep_dir / name).is_file():
                mlflow.log_artifact(parent, str(sweep_dir / name))
        mlflow.set_terminated(parent, status=status)
    sent = 0
    for row in summary.rows:
        path = sweep_dir / row.run_dir / records.RECORD_NAME
        tags = {"tfrun.sweep_job": row.job, "tfrun.best": str(best is not None and row.job == best.job).lower()}
        _, new = log_record(mlflow, experiment, path, reading.read(path), parent=parent, extra_tags=tags)
        sent += new
    return parent, sent


def describe(err: BaseException) -> str:
    """What went wrong, in whole words: a server that did not answer says so and why (no URL query, no pool
    internals); anything else is its first line, shortened at a word boundary."""
    chain, seen = [], err
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = str(err)
    no_answer = any(
        type(e).__name__ in ("ConnectionError", "MaxRetryError", "ConnectTimeout", "ReadTimeout") for e in chain
    )
    if no_answer or "Max retries exceeded" in text or "timed out" in text:
        server = re.search(r"https?://[^/\s'\"]+", text)
        where = f" at {server.group(0)}" if server else ""
        failing = re.search(r"ResponseError\('([^']+)'\)", text)  # it answered, with errors, every try
        if failing:
            return f"the tracking server{where} kept failing ({failing.group(1)})"
        reason = re.search(r"\[Errno -?\d+\] ([^\"')]+)|(timed out)", text)
        why = f" ({(reason.group(1) or reason.group(2)).strip()})" if reason else ""
        return f"the tracking server{where} did not answer{why}"
    line = f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
    return line if len(line) <= 200 else line[:200].rsplit(" ", 1)[0] + " …"


def warn(what: str, err: BaseException) -> None:
    """One whole line: tracking never fails a run (track.required=true checks the server before training instead)."""
    print(
        f"[tfrun] warning: MLflow {what} failed: {describe(err)}; the record has everything",
        file=sys.stderr,
        flush=True,
    )


def reachable(uri: str, timeout_s: float) -> Optional[str]:
    """None if the tracking server answers its /health endpoint (or the store is local); else why not."""
    if not uri.startswith(("http://", "https://")):
        return None
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as answer:
            return None if answer.status == 200 else f"/health answered {answer.status}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        return str(getattr(err, "reason", err))
