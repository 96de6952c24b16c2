"""`tfrun --cfg job` against a bare Hydra app's `--cfg job` over the same configs (the brief: within 1.2x).

The bare app is the smallest `@hydra.main` over tfrun's own conf/ with its structured configs stored (the configs
name them), and nothing else of tfrun's: no validation, no help, no warm child. What any Hydra user with structured
configs pays. Both run REPEATS times, alternating, as fresh processes; the figures are the medians of wall and
CPU (user+sys of the child) seconds, and their ratios. Writes bench/results/cfg_job.json.

Usage: python bench/bench_cfg_job.py [REPEATS]
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from results_io import RESULTS, write_result  # bench/, the script's own folder

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BARE_APP = """
import hydra
from tfrun.tasks.core.schema import register

register()

@hydra.main(version_base="1.3", config_path={conf!r}, config_name="config")
def main(cfg):
    pass

main()
"""


def timed(cmd: list[str], cwd: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh process, which must exit 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(repeats: int) -> dict:
    env_note = {k: os.environ[k] for k in ("TFRUN_NO_PRESTART",) if k in os.environ}
    with tempfile.TemporaryDirectory() as work:
        app = Path(work) / "bare_app.py"
        app.write_text(BARE_APP.format(conf=str(ROOT / "conf")))
        commands = {
            "tfrun": [str(BIN / "tfrun"), "--cfg", "job"],
            "bare_hydra": [sys.executable, str(app), "--cfg", "job"],
        }
        for cmd in commands.values():  # warm the file cache once
            timed(cmd, work)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(repeats):
            for name, cmd in commands.items():
                samples[name].append(timed(cmd, work))
    medians = {
        name: {
            "wall_s": round(statistics.median(w for w, _ in runs), 3),
            "cpu_s": round(statistics.median(c for _, c in runs), 3),
        }
        for name, runs in samples.items()
    }
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "repeats": repeats,
        "env": env_note,
        "medians": medians,
        "ratio_wall": round(medians["tfrun"]["wall_s"] / medians["bare_hydra"]["wall_s"], 3),
        "ratio_cpu": round(medians["tfrun"]["cpu_s"] / medians["bare_hydra"]["cpu_s"], 3),
    }
    write_result(result, RESULTS / "cfg_job.json")
    return result


if __name__ == "__main__":
    out = main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
    print(out)
