"""tfrun's cost over a hand-written script, and how fast `tfrun --cfg job` and a rejected config answer.

Runs the default `tfrun` job and bench/plain_digits.py alternately (REPEATS
times each, fresh processes, wall time including interpreter start and the
record), then `tfrun --cfg job`, a rejected config (`tfrun train.epochs=0`,
exit 2; with the warm child and with TFRUN_NO_PRESTART=1) and `tfrun --help`
CFG_REPEATS times each, interleaved. Writes bench/results/overhead.json and
prints a markdown summary.

Usage: python bench/bench_overhead.py [REPEATS] [CFG_REPEATS]
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import RESULTS, write_result  # bench/, the script's own folder

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
# PYTHONDONTWRITEBYTECODE would make every run compile tfrun's modules again (an install has .pyc files)
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
}


def timed(cmd: list[str], cwd: str, expect: int = 0, **extra_env: str) -> float:
    """Wall seconds of one fresh process, which must exit with `expect`."""
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env={**ENV, **extra_env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seconds = time.perf_counter() - started
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}, expected {expect}\n{proc.stderr}")
    return seconds


FAST_ROWS = [
    ("cfg_job_s", "tfrun --cfg job", ", target ≤ 0.3"),
    ("rejected_s", "tfrun train.epochs=0 (exit 2)", ", target ≤ 0.4"),
    ("rejected_without_warm_child_s", "tfrun train.epochs=0, TFRUN_NO_PRESTART=1", ""),
    ("help_s", "tfrun --help", ""),
]


def fast_paths(work: str, repeats: int) -> dict[str, list[float]]:
    """The answers that start no training, interleaved so machine load hits them alike."""
    tfrun = str(BIN / "tfrun")
    runs: dict[str, list[float]] = {key: [] for key, _, _ in FAST_ROWS}
    timed([tfrun, "train.epochs=0"], work, expect=2)  # warm-up: the validation path's .pyc files
    for _ in range(repeats):
        runs["cfg_job_s"].append(timed([tfrun, "--cfg", "job"], work))
        runs["rejected_s"].append(timed([tfrun, "train.epochs=0"], work, expect=2))
        runs["rejected_without_warm_child_s"].append(
            timed([tfrun, "train.epochs=0"], work, expect=2, TFRUN_NO_PRESTART="1")
        )
        runs["help_s"].append(timed([tfrun, "--help"], work))
    return runs


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    cfg_repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    tfrun_s, cold_s, plain_s = [], [], []
    with tempfile.TemporaryDirectory() as work:
        timed([sys.executable, str(HERE / "plain_digits.py"), "warmup"], work)  # page cache, pyc files
        for i in range(repeats):
            tfrun_s.append(timed([str(BIN / "tfrun"), f"hydra.run.dir=runs/{i}"], work))
            cold_s.append(timed([str(BIN / "tfrun"), f"hydra.run.dir=runs/cold{i}"], work, TFRUN_NO_PRESTART="1"))
            plain_s.append(timed([sys.executable, str(HERE / "plain_digits.py"), f"plain/{i}"], work))
        fast = fast_paths(work, cfg_repeats)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "repeats": repeats,
        "tfrun_default_job_s": tfrun_s,
        "tfrun_without_warm_child_s": cold_s,
        "plain_script_s": plain_s,
        "ratio_median": statistics.median(tfrun_s) / statistics.median(plain_s),
        "ratio_without_warm_child_median": statistics.median(cold_s) / statistics.median(plain_s),
        **fast,
    }
    write_result(result, RESULTS / "overhead.json")
    print("| measure | median | all |\n|---|---|---|")
    print(f"| tfrun default job (s) | {statistics.median(tfrun_s):.2f} | {', '.join(f'{t:.2f}' for t in tfrun_s)} |")
    print(
        f"| tfrun, TFRUN_NO_PRESTART=1 (s) | {statistics.median(cold_s):.2f} | {', '.join(f'{t:.2f}' for t in cold_s)} |"
    )
    print(f"| hand-written script (s) | {statistics.median(plain_s):.2f} | {', '.join(f'{t:.2f}' for t in plain_s)} |")
    print(f"| ratio tfrun / script | {result['ratio_median']:.3f} | target ≤ 1.15 |")
    print(f"| ratio without the warm child | {result['ratio_without_warm_child_median']:.3f} | |")
    for key, label, target in FAST_ROWS:
        print(f"| {label} (s) | {statistics.median(fast[key]):.3f} | min {min(fast[key]):.3f}{target} |")


if __name__ == "__main__":
    main()
