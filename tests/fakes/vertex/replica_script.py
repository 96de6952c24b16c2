"""A stand-in training replica for fake-vertex's own tests (no TensorFlow, standard library only).

It records what Vertex gave it: a JSON object {"name", "taskType", "pid", "argv", "cwd", "started",
"ended", "params", "env": {TF_CONFIG, CLUSTER_SPEC, AIP_*, CLOUD_ML_*, STORAGE_EMULATOR_HOST}} written to
`$AIP_MODEL_DIR/replicas/<workerpoolN-i>-<pid>.json` in the GCS emulator (plain JSON API upload through
$STORAGE_EMULATOR_HOST), once when it starts and again when it ends, so a restarted replica leaves two
records. Flags: --sleep S (work for S seconds), --exit N (then exit with status N, printing an error
first), --fail-trial ID (exit 3 when $CLOUD_ML_TRIAL_ID is ID), --slow-trial ID (sleep 30 s more when
$CLOUD_ML_TRIAL_ID is ID), --report (compute a score from the
trial's parameters and report it three times as cloudml-hypertune 0.1.0.dev6 does: the whole report list
rewritten to $CLOUD_ML_HP_METRIC_FILE as JSON lines, values as strings; the middle report is the best).
Trial parameters arrive as `--<id>=<value>` arguments, as Vertex passes them.

    score(lr, units, act) = 1 - |log10(lr) + 2| / 3 + units / 1000 + (0.05 if act == "relu" else 0)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

VERTEX_VARS = ("TF_CONFIG", "CLUSTER_SPEC", "AIP_", "CLOUD_ML_", "STORAGE_EMULATOR_HOST")


def score(params: dict[str, str]) -> float:
    """The metric a trial reports, from its parameters (tests compute the same)."""
    lr = float(params.get("lr", 0.01))
    return (
        1
        - abs(math.log10(lr) + 2) / 3
        + int(params.get("units", 0)) / 1000
        + (0.05 if params.get("act") == "relu" else 0)
    )


def upload(uri: str, data: bytes) -> None:
    bucket, _, name = uri[len("gs://") :].partition("/")
    host = os.environ["STORAGE_EMULATOR_HOST"].rstrip("/")
    request = urllib.request.Request(
        f"{host}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name)}",
        data=data,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def report(tag: str, value: float, step: int, reports: list[dict]) -> None:
    """What cloudml-hypertune's report_hyperparameter_tuning_metric does (file rewritten each time)."""
    path = Path(os.environ.get("CLOUD_ML_HP_METRIC_FILE", "/tmp/hypertune/output.metrics"))
    path.parent.mkdir(parents=True, exist_ok=True)
    reports.append(
        {
            "timestamp": time.time(),
            "trial": os.environ.get("CLOUD_ML_TRIAL_ID", "0"),
            tag: str(value),
            "global_step": str(step),
            "checkpoint_path": "",
        }
    )
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in reports))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--fail-trial", default=None)
    parser.add_argument("--slow-trial", default=None)
    parser.add_argument("--report", action="store_true")
    args, rest = parser.parse_known_args(argv)
    params = dict(item[2:].split("=", 1) for item in rest if item.startswith("--") and "=" in item)
    cluster_spec = json.loads(os.environ.get("CLUSTER_SPEC", "{}"))
    task = cluster_spec.get("task", {})
    name = f"{task.get('type', 'workerpool0')}-{task.get('index', 0)}"
    record = {
        "name": name,
        "taskType": json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("type"),
        "pid": os.getpid(),
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "started": time.time(),
        "ended": None,
        "params": params,
        "env": {k: v for k, v in os.environ.items() if k.startswith(VERTEX_VARS)},
    }
    target = f"{os.environ['AIP_MODEL_DIR'].rstrip('/')}/replicas/{name}-{os.getpid()}.json"
    upload(target, json.dumps(record).encode())
    print(f"replica {name} (pid {os.getpid()}) started with {sys.argv[1:]}", flush=True)
    slow = args.slow_trial is not None and os.environ.get("CLOUD_ML_TRIAL_ID") == args.slow_trial
    time.sleep(args.sleep + (30 if slow else 0))
    if args.report:
        value, reports = score(params), []
        for step, factor in ((1, 0.5), (2, 1.0), (3, 0.9)):
            report(os.environ.get("CLOUD_ML_HP_METRIC_TAG", "score"), value * factor, step, reports)
    code = args.exit
    if args.fail_trial is not None and os.environ.get("CLOUD_ML_TRIAL_ID") == args.fail_trial:
        code = 3
    record["ended"] = time.time()
    upload(target, json.dumps(record).encode())
    if code:
        print(f"ValueError: replica {name} fails on purpose with status {code}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
