"""How fast tfrun answers when the config names the user's own code (examples/wine), against its own options.

Fresh processes, wall time including interpreter start, measured from examples/wine (the user's
project), the variants interleaved so machine load hits them alike:
- `tfrun --cfg job` (tfrun's own options: the baseline),
- `tfrun --config-dir conf experiment=wine --cfg job` (a user model, data loader and callback),
- `tfrun train.epochs=0`: rejected by validation (exit 2), tfrun's own options (the baseline),
- `tfrun --config-dir conf experiment=wine +model.unitz=3`: rejected (exit 2) after reading the signatures
  of the three user `_target_`s from source (tfrun.runner.config.user_code),
and, in this process, what reading those three signatures costs by itself (cold: first parse; warm: cached).
Writes bench/results/user_config.json and prints a markdown table.

Usage: python bench/bench_user_config.py [REPEATS]
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_io import RESULTS, write_result  # bench/, the script's own folder

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent / "examples" / "wine"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
TARGETS = ("winelab.data.load", "winelab.models.build", "winelab.callbacks.StopAtAccuracy")
VARIANTS = {
    "builtin_cfg_job": ["--cfg", "job"],
    "user_cfg_job": ["--config-dir", "conf", "experiment=wine", "--cfg", "job"],
    "builtin_rejected": ["train.epochs=0", "hydra.run.dir=runs/bench"],
    "user_rejected": ["--config-dir", "conf", "experiment=wine", "+model.unitz=3", "hydra.run.dir=runs/bench"],
}
EXPECTED_EXIT = {"builtin_cfg_job": 0, "user_cfg_job": 0, "builtin_rejected": 2, "user_rejected": 2}


def timed(name: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "tfrun"), *VARIANTS[name]],
        cwd=PROJECT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != EXPECTED_EXIT[name]:
        raise SystemExit(f"{name}: exit {proc.returncode}, expected {EXPECTED_EXIT[name]}\n{proc.stderr}")
    return seconds


def signature_reading_s() -> tuple[float, float]:
    """Seconds to find the three targets and read their signatures, first time (parsing) and again (cached)."""
    sys.path.insert(0, str(HERE.parent))
    os.chdir(PROJECT)
    from tfrun.runner.config import user_code

    started = time.perf_counter()
    for target in TARGETS:
        assert isinstance(user_code.find(target), user_code.Found), target
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for target in TARGETS:
        user_code.find(target)
    return cold, time.perf_counter() - started


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for name in VARIANTS:  # warm the page cache and .pyc files
        timed(name)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name in VARIANTS:
            times[name].append(timed(name))
    cold, warm = signature_reading_s()
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "repeats": repeats,
        "commands": {name: " ".join(["tfrun", *args]) for name, args in VARIANTS.items()},
        "seconds": times,
        "median_s": {name: statistics.median(t) for name, t in times.items()},
        "signature_reading_s": {"targets": list(TARGETS), "first": cold, "cached": warm},
    }
    write_result(result, RESULTS / "user_config.json")
    print("| command (from examples/wine) | median | min | max |\n|---|---|---|---|")
    for name, t in times.items():
        print(f"| `{result['commands'][name]}` | {statistics.median(t):.3f} s | {min(t):.3f} | {max(t):.3f} |")
    print(f"\nreading the 3 user signatures from source: {cold * 1000:.1f} ms first, {warm * 1000:.2f} ms cached")


if __name__ == "__main__":
    main()
