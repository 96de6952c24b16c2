"""Write tests/module_durations.json from a suite run's junit XML: the seconds each test module took, which
tests/conftest.py uses to hand the slowest modules to the test workers first.

Under `--dist loadscope` a module runs whole on one worker, in the order the modules were collected; a long module
collected last (alphabetically, say) runs on while the other workers have nothing left. Longest first is the usual
remedy (the longest-processing-time rule). The file only orders the run: a stale or missing entry never fails a test
(a module it does not list goes first, as a new module may be a long one). Regenerate after a change that moves a
module's time much:

    python bench/module_order.py path/to/junit.xml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from suite_durations import read

OUT = Path(__file__).resolve().parents[1] / "tests" / "module_durations.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", type=Path, help="junit XML of a whole suite run (pytest --junitxml=...)")
    args = parser.parse_args()
    modules = read(args.junit)
    durations = {name: round(m.seconds, 1) for name, m in sorted(modules.items())}
    OUT.write_text(json.dumps(durations, indent=0, sort_keys=True) + "\n")
    print(f"{OUT.name}: {len(durations)} modules, {sum(durations.values()):.0f} s in all")


if __name__ == "__main__":
    main()
