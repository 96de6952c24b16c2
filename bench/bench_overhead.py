"""tfrun's cost over a hand-written script, and how fast `tfrun --cfg job` answers.

Runs the default `tfrun` job and bench/plain_digits.py alternately (REPEATS
times each, fresh processes, wall time including interpreter start and the
record), then `tfrun --cfg job` CFG_REPEATS times. Writes
bench/results/overhead.json and prints a markdown summary.

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
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def timed(cmd: list[str], cwd: str, **extra_env: str) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env={**ENV, **extra_env}, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


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
        cfg_s = [timed([str(BIN / "tfrun"), "--cfg", "job"], work) for _ in range(cfg_repeats)]
        help_s = [timed([str(BIN / "tfrun"), "--help"], work) for _ in range(cfg_repeats)]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "repeats": repeats,
        "tfrun_default_job_s": tfrun_s,
        "tfrun_without_warm_child_s": cold_s,
        "plain_script_s": plain_s,
        "ratio_median": statistics.median(tfrun_s) / statistics.median(plain_s),
        "ratio_without_warm_child_median": statistics.median(cold_s) / statistics.median(plain_s),
        "cfg_job_s": cfg_s,
        "help_s": help_s,
    }
    write_result(result, RESULTS / "overhead.json")
    print("| measure | median | all |\n|---|---|---|")
    print(f"| tfrun default job (s) | {statistics.median(tfrun_s):.2f} | {', '.join(f'{t:.2f}' for t in tfrun_s)} |")
    print(f"| tfrun, TFRUN_NO_PRESTART=1 (s) | {statistics.median(cold_s):.2f} | {', '.join(f'{t:.2f}' for t in cold_s)} |")
    print(f"| hand-written script (s) | {statistics.median(plain_s):.2f} | {', '.join(f'{t:.2f}' for t in plain_s)} |")
    print(f"| ratio tfrun / script | {result['ratio_median']:.3f} | target ≤ 1.15 |")
    print(f"| ratio without the warm child | {result['ratio_without_warm_child_median']:.3f} | |")
    print(f"| tfrun --cfg job (s) | {statistics.median(cfg_s):.3f} | min {min(cfg_s):.3f}, target ≤ 0.5 |")
    print(f"| tfrun --help (s) | {statistics.median(help_s):.3f} | min {min(help_s):.3f} |")


if __name__ == "__main__":
    main()
