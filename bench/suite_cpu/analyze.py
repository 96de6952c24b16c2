"""CPU of a profiled suite run (bench/suite_cpu/run.sh) by program and by test module.

python bench/suite_cpu/analyze.py OUT_DIR
"""

import collections
import json
import os
import sys


def _program(row: dict) -> str:
    argv = row["argv"]
    name = os.path.basename(argv[0]) if argv else "?"
    if name in ("-m", "-c") or name.endswith("__main__.py"):
        name = " ".join([name, *argv[1:2]])[:50]
    return ("forked " if row["forked"] else "") + name


def main(out: str) -> None:
    hooked = [json.loads(line) for line in open(os.path.join(out, "procs.jsonl"))]
    sampled = [json.loads(line) for line in open(os.path.join(out, "sampled.jsonl"))]
    pids = {row["pid"] for row in hooked}
    programs: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    modules: dict[str, float] = collections.defaultdict(float)
    for row in hooked:
        programs[_program(row)][0] += 1
        programs[_program(row)][1] += row["cpu"]
        modules[row["test"].split("::")[0] or "(no test)"] += row["cpu"]
    for row in sampled:
        if row["pid"] in pids:
            continue
        programs["other: " + row["comm"]][0] += 1
        programs["other: " + row["comm"]][1] += row["cpu"]
        modules[row["test"].split("::")[0] or "(no test)"] += row["cpu"]
    print(f"total {sum(c for _, c in programs.values()):.0f} CPU-s\n\n| program | processes | CPU-s |\n|---|---:|---:|")
    for name, (n, cpu) in sorted(programs.items(), key=lambda item: -item[1][1])[:30]:
        print(f"| {name} | {n:.0f} | {cpu:.1f} |")
    print("\n| test module | CPU-s |\n|---|---:|")
    for name, cpu in sorted(modules.items(), key=lambda item: -item[1])[:30]:
        print(f"| {name} | {cpu:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1])
