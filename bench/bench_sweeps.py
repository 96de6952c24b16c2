"""Sweeps: the cost of a tfrun sweep job, and six ways to search one space, measured in one run.

Part `overhead` (issue 28's speed targets): the 6-job grid (3 learning rates x 2 depths on digits), forked from a
warm TensorFlow (tfrun.runner.processes.zygote, the default) and with fresh processes (TFRUN_NO_FORK=1), one after
the other and with joblib (2 at a time), in the same run so that the machine's speed cancels out. Per-job overhead
= the job's recorded seconds minus its train step: process start, TensorFlow start (the hardware step), data,
model, evaluation, export and record writes. The sequential grid runs twice per mode, in the order fresh, forked,
forked, fresh, and each mode's wall is the mean of its two (a drifting machine cancels out). Checked against the
targets (TARGETS) and written to bench/results/sweeps.json.

Rows a-f: one 24-point search space (SPACE: 4 learning rates x 3 widths x 2 depths of tfrun's digits MLP, the same
epochs, data splits and seed everywhere): (a) the grid with fresh processes, (b) the grid forked, (c) Optuna TPE
forked, (d) Optuna TPE + median pruning forked, (e) Keras Tuner's Hyperband in one process
(bench/hyperband_digits.py), (f) a Hydra multirun in one process written the lightning-hydra-template way
(bench/hydra_app/). Wall time, best holdout accuracy, epochs trained in total, ratios against (a) and (f); written to
bench/results/sweep_search.json.

Usage: python bench/bench_sweeps.py [--rows overhead,a,b,c,d,e,f] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from results_io import RESULTS, write_result  # bench/, the script's own folder

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
ENV.pop("TFRUN_ZYGOTE", None)
ENV.pop("TFRUN_NO_FORK", None)
MODES = {"fresh": {"TFRUN_NO_FORK": "1"}, "forked": {}}
ALL_ROWS = ("overhead", "a", "b", "c", "d", "e", "f")

# Issue 28's targets for the 6-job grid, forked against fresh in the same run.
TARGETS = {"tf_start_forked_s": 0.2, "overhead_ratio": 0.25, "sequential_ratio": 0.55}

# The one search space of rows a-f (24 points) and what every row shares.
SPACE: dict[str, list[Any]] = {
    "train.learning_rate": [0.0003, 0.001, 0.003, 0.01],
    "model.n_neurons": [32, 64, 128],
    "model.n_hidden": [1, 2],
}
OPTUNA_TRIALS = 12  # rows c and d: half the grid's jobs, TPE seeded with train.seed
HYPERBAND_FACTOR = 3  # row e: Keras Tuner's default reduction factor, max_epochs = the grid's epochs
ROWS = {
    "a": "grid, fresh processes (TFRUN_NO_FORK=1)",
    "b": "grid, forked (tfrun's default)",
    "c": f"Optuna TPE, {OPTUNA_TRIALS} trials, forked",
    "d": f"Optuna TPE + median pruning, {OPTUNA_TRIALS} trials, forked",
    "e": "Keras Tuner Hyperband, one process",
    "f": "Hydra multirun in one process (lightning-hydra-template style)",
}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# ------------------------------------------------------------------------------------------ tfrun's sweeps
def tfrun_sweep(args: list[str], work: str, name: str, env: dict[str, str]) -> tuple[float, list[dict]]:
    """`tfrun -m ARGS` into multiruns/NAME: its wall time and its jobs' records (in job order)."""
    log = Path(work, f"{name}.log")
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.run(
            [str(BIN / "tfrun"), "-m", *args, "train.verbose=0", f"hydra.sweep.dir=multiruns/{name}"],
            cwd=work,
            env={**ENV, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"tfrun -m {' '.join(args)} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
    paths = sorted(Path(work, "multiruns", name).glob("*/record.json"), key=lambda p: int(p.parent.name))
    return wall, [json.loads(p.read_text()) for p in paths]


def step_seconds(record: dict, name: str) -> float:
    return next(s["seconds"] for s in record["steps"] if s["name"] == name)


def overhead_grid(epochs: int) -> list[str]:
    """The overhead part's 6-job grid: 3 learning rates x 2 depths."""
    return ["train.learning_rate=0.001,0.003,0.01", "model.n_hidden=1,2", f"train.epochs={epochs}"]


def measure_overhead(epochs: int, work: str, mode: str) -> dict:
    """The 6-job grid one after the other and with joblib, in one mode (fresh or forked)."""
    env = MODES[mode]
    grid = overhead_grid(epochs)
    load = _load()
    sequential, seq_records = tfrun_sweep(grid, work, f"sequential-{mode}", env)
    parallel, par_records = tfrun_sweep(
        [*grid, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], work, f"joblib-{mode}", env
    )
    job_s = [r["seconds"] for r in seq_records]
    train_s = [step_seconds(r, "train") for r in seq_records]
    import_s = [step_seconds(r, "hardware") for r in seq_records]
    overhead_s = [j - t for j, t in zip(job_s, train_s)]
    steps = [s["name"] for s in seq_records[0]["steps"]]
    return {
        "load_at_start": load,
        "sequential_s": round(sequential, 2),
        "joblib_2_s": round(parallel, 2),
        "wall_ratio": round(parallel / sequential, 3),
        "child_start": sorted({(r.get("child") or {}).get("start", "?") for r in seq_records}),
        "joblib_child_start": sorted({(r.get("child") or {}).get("start", "?") for r in par_records}),
        "job_s": job_s,
        "train_s": train_s,
        "tf_import_s": import_s,
        "step_median_s": {n: round(statistics.median(step_seconds(r, n) for r in seq_records), 3) for n in steps},
        "overhead_median_s": round(statistics.median(overhead_s), 2),
        "tf_import_median_s": round(statistics.median(import_s), 2),
        "train_median_s": round(statistics.median(train_s), 2),
        "metrics": [r["metrics"]["final"] for r in seq_records],
        "weights_sha256": [r["weights_sha256"] for r in seq_records],
    }


def repeat_sequential(epochs: int, work: str, modes: dict[str, dict]) -> None:
    """The sequential grid once more per mode in the reverse order (forked, then fresh), so that a machine getting
    faster or slower during the run (the first pass runs every fresh sweep first) cancels out: each mode's
    `sequential_s` becomes the mean of its two walls (the first kept as `sequential_first_s`)."""
    grid = overhead_grid(epochs)
    for mode in reversed(list(MODES)):
        wall, _ = tfrun_sweep(grid, work, f"sequential-again-{mode}", MODES[mode])
        first = modes[mode]["sequential_s"]
        modes[mode].update(sequential_first_s=first, sequential_again_s=round(wall, 2))
        modes[mode]["sequential_s"] = round((first + wall) / 2, 2)


def overhead_part(epochs: int, work: str) -> dict:
    modes = {mode: measure_overhead(epochs, work, mode) for mode in MODES}
    repeat_sequential(epochs, work, modes)
    fresh, forked = modes["fresh"], modes["forked"]
    same = forked["metrics"] == fresh["metrics"] and forked["weights_sha256"] == fresh["weights_sha256"]
    ratios = {
        "sequential_ratio": round(forked["sequential_s"] / fresh["sequential_s"], 3),
        "overhead_ratio": round(forked["overhead_median_s"] / fresh["overhead_median_s"], 3),
        "same_results": same,
    }
    criteria = {
        "tf_start_forked": {
            "value_s": forked["tf_import_median_s"],
            "target_s": TARGETS["tf_start_forked_s"],
            "pass": forked["tf_import_median_s"] <= TARGETS["tf_start_forked_s"],
        },
        "overhead_ratio": {
            "value": ratios["overhead_ratio"],
            "target": TARGETS["overhead_ratio"],
            "pass": ratios["overhead_ratio"] <= TARGETS["overhead_ratio"],
        },
        "sequential_ratio": {
            "value": ratios["sequential_ratio"],
            "target": TARGETS["sequential_ratio"],
            "pass": ratios["sequential_ratio"] <= TARGETS["sequential_ratio"],
        },
        "same_results": {"value": same, "pass": same},
    }
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "workload": f"6 jobs: digits mlp, {epochs} epochs each",
        **fresh,  # the keys earlier runs wrote (fresh processes)
        "fresh": fresh,
        "forked": forked,
        "forked_vs_fresh": ratios,
        "criteria": criteria,
        "load_at_end": _load(),
    }
    write_result(result, RESULTS / "sweeps.json")
    return result


def print_overhead(result: dict) -> None:
    fresh, forked, criteria = result["fresh"], result["forked"], result["criteria"]
    print(f"\n### 6-job grid, forked against fresh ({result['workload']})\n")
    print("| measure | fresh (TFRUN_NO_FORK=1) | forked | forked / fresh | target | |\n|---|---|---|---|---|---|")
    verdict = {True: "pass", False: "FAIL"}
    rows = (
        (
            "6 jobs sequential (basic launcher; mean of fresh-forked, forked-fresh)",
            "sequential_s",
            f"≤ {TARGETS['sequential_ratio']}×",
            "sequential_ratio",
        ),
        ("6 jobs joblib, 2 at a time", "joblib_2_s", "", None),
        (
            "per-job overhead (median; job − train step)",
            "overhead_median_s",
            f"≤ {TARGETS['overhead_ratio']}×",
            "overhead_ratio",
        ),
        (
            "TensorFlow start (hardware step, median)",
            "tf_import_median_s",
            f"≤ {TARGETS['tf_start_forked_s']} s forked",
            "tf_start_forked",
        ),
        ("train step (median)", "train_median_s", "", None),
    )
    for label, key, target, criterion in rows:
        mark = verdict[criteria[criterion]["pass"]] if criterion else ""
        print(
            f"| {label} | {fresh[key]:.2f} s | {forked[key]:.2f} s | {forked[key] / fresh[key]:.3f} | {target} | {mark} |"
        )
    same = criteria["same_results"]["pass"]
    print(
        f"| final metrics and weights sha256, all 6 jobs | | | {'identical' if same else 'DIFFERENT'} | identical | {verdict[same]} |"
    )
    print(
        f"| how the children started (sequential / joblib) | {fresh['child_start']} / {fresh['joblib_child_start']} "
        f"| {forked['child_start']} / {forked['joblib_child_start']} | | | |"
    )
    print(
        f"\nSequential walls, first pass (fresh first) / second pass (forked first): fresh "
        f"{fresh['sequential_first_s']:.2f} / {fresh['sequential_again_s']:.2f} s, forked "
        f"{forked['sequential_first_s']:.2f} / {forked['sequential_again_s']:.2f} s."
    )
    steps = " · ".join(
        f"{n} {fresh['step_median_s'][n]:.2f}/{forked['step_median_s'][n]:.2f}" for n in forked["step_median_s"]
    )
    print(
        f"\nStep medians, fresh/forked (s): {steps}. Load average (1 min) at the start: fresh {fresh['load_at_start']}, "
        f"forked {forked['load_at_start']}; at the end {result['load_at_end']}."
    )


# ------------------------------------------------------------------------------------------------ rows a-f
def _grid_args() -> list[str]:
    return [f"{key}={','.join(str(v) for v in values)}" for key, values in SPACE.items()]


def _optuna_args(pruner: str | None) -> list[str]:
    params = ",".join(f'{key}:"choice({",".join(str(v) for v in values)})"' for key, values in SPACE.items())
    args = [
        "sweep=optuna",
        f"hydra.sweeper.params={{{params},train.optimizer:adam}}",
        f"hydra.sweeper.n_trials={OPTUNA_TRIALS}",
    ]
    return args + ([f"sweep.pruner={pruner}"] if pruner else [])


def _from_records(wall: float, records: list[dict]) -> dict:
    accuracies = [
        r["metrics"]["final"]["holdout_accuracy"] for r in records if "holdout_accuracy" in r["metrics"]["final"]
    ]
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "wall_s": round(wall, 2),
        "best_holdout_accuracy": max(accuracies) if accuracies else None,
        "epochs_trained": sum(len(r["metrics"]["history"].get("loss", [])) for r in records),
        "jobs": len(records),
        "statuses": statuses,
        "child_start": sorted({(r.get("child") or {}).get("start", "?") for r in records}),
    }


def row_tfrun(args: list[str], env: dict[str, str]) -> Callable[[int, str, str], dict]:
    def run(epochs: int, work: str, name: str) -> dict:
        return _from_records(*tfrun_sweep([*args, f"train.epochs={epochs}"], work, name, env))

    return run


def row_hyperband(epochs: int, work: str, name: str) -> dict:
    space = {key.split(".")[-1]: values for key, values in SPACE.items()}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / "hyperband_digits.py"), json.dumps(space), str(epochs), str(Path(work, name))],
        env={**ENV, "TF_USE_LEGACY_KERAS": "1"},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"row e exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "wall_s": round(wall, 2),
        "best_holdout_accuracy": found["best_holdout_accuracy"],
        "epochs_trained": found["epochs_trained"],
        "jobs": found["trials"],
        "best_hyperparameters": found["best_hyperparameters"],
    }


def row_hydra_app(epochs: int, work: str, name: str) -> dict:
    keys = {
        "train.learning_rate": "optimizer.learning_rate",
        "model.n_neurons": "model.n_neurons",
        "model.n_hidden": "model.n_hidden",
    }
    overrides = [f"{keys[key]}={','.join(str(v) for v in values)}" for key, values in SPACE.items()]
    sweep_dir = Path(work, "multiruns", name)
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "hydra_app" / "train.py"),
            "-m",
            *overrides,
            f"trainer.max_epochs={epochs}",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=work,
        env={**ENV, "TF_USE_LEGACY_KERAS": "1"},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"row f exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    jobs = [json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")]
    return {
        "wall_s": round(wall, 2),
        "best_holdout_accuracy": max(j["holdout_accuracy"] for j in jobs),
        "epochs_trained": sum(j["epochs"] for j in jobs),
        "jobs": len(jobs),
    }


RUNNERS: dict[str, Callable[[int, str, str], dict]] = {
    "a": row_tfrun(_grid_args(), MODES["fresh"]),
    "b": row_tfrun(_grid_args(), MODES["forked"]),
    "c": row_tfrun(_optuna_args(None), MODES["forked"]),
    "d": row_tfrun(_optuna_args("median"), MODES["forked"]),
    "e": row_hyperband,
    "f": row_hydra_app,
}


def search_part(rows: list[str], epochs: int, work: str) -> dict:
    measured: dict[str, dict] = {}
    for row in rows:
        load = _load()
        print(f"[bench] row {row}: {ROWS[row]} (load {load})", file=sys.stderr, flush=True)
        try:
            found = RUNNERS[row](epochs, work, f"row-{row}")
        except SystemExit as exc:  # one row's failure is reported in its place; the other rows are still measured
            print(f"[bench] row {row} failed: {exc}", file=sys.stderr, flush=True)
            found = {"error": str(exc)[-2000:]}
        measured[row] = {"how": ROWS[row], "load_at_start": load, **found}
    for found in measured.values():
        for base in ("a", "f"):
            if "wall_s" in found and "wall_s" in measured.get(base, {}):
                found[f"wall_vs_{base}"] = round(found["wall_s"] / measured[base]["wall_s"], 3)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "space": SPACE,
        "points": len(SPACE["train.learning_rate"]) * len(SPACE["model.n_neurons"]) * len(SPACE["model.n_hidden"]),
        "epochs": epochs,
        "data": "digits: tfrun's splits (seed 42), batch 32, Adam",
        "optuna_trials": OPTUNA_TRIALS,
        "hyperband_factor": HYPERBAND_FACTOR,
        "rows": measured,
        "load_at_end": _load(),
    }
    write_result(result, RESULTS / "sweep_search.json")
    return result


def print_search(result: dict) -> None:
    rows = result["rows"]
    print(f"\n### One {result['points']}-point search space, six ways ({result['epochs']} epochs per trial)\n")
    print("| row | search | wall | × (a) | × (f) | best holdout accuracy | epochs trained | jobs / trials |")
    print("|---|---|---|---|---|---|---|---|")
    for row, found in rows.items():
        if "error" in found:
            print(f"| ({row}) | {found['how']} | failed: {found['error'].splitlines()[0]} | | | | | |")
            continue
        ratio_a = f"{found['wall_vs_a']:.2f}" if "wall_vs_a" in found else "–"
        ratio_f = f"{found['wall_vs_f']:.2f}" if "wall_vs_f" in found else "–"
        accuracy = found["best_holdout_accuracy"]
        statuses = found.get("statuses")
        jobs = f"{found['jobs']}" + (f" ({', '.join(f'{n} {s}' for s, n in statuses.items())})" if statuses else "")
        print(
            f"| ({row}) | {found['how']} | {found['wall_s']:.1f} s | {ratio_a} | {ratio_f} | "
            f"{accuracy:.4f} | {found['epochs_trained']} | {jobs} |"
        )
    loads = ", ".join(f"({row}) {found['load_at_start']}" for row, found in rows.items())
    print(f"\nLoad average (1 min) at each row's start: {loads}; at the end {result['load_at_end']}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ALL_ROWS), help=f"comma-separated, of {','.join(ALL_ROWS)}")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per job (every row)")
    args = parser.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ALL_ROWS]
    if unknown:
        parser.error(f"--rows: unknown {', '.join(unknown)}; allowed: {', '.join(ALL_ROWS)}")
    with tempfile.TemporaryDirectory(prefix="bench-sweeps-") as work:
        found_overhead = overhead_part(args.epochs, work) if "overhead" in rows else None
        if found_overhead:
            print_overhead(found_overhead)
        search = [r for r in rows if r != "overhead"]
        found_search = search_part(search, args.epochs, work) if search else None
    if found_search:
        print_search(found_search)


if __name__ == "__main__":
    main()
