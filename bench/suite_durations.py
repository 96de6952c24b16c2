"""Per-module test time of two pytest runs (before, after) from their junit XML files, as a markdown table.

Each module's figure is the sum of its test cases' `time` (pytest's junit report counts setup, call and teardown,
so a module-scoped fixture's cost lands on the test that built it). Under pytest-xdist that is the time the module's
tests took on their worker, summed over the workers: CPU-side test time per module, not the suite's wall clock
(three workers run three modules at once). It shows where a suite's time goes and which modules a change made
cheaper; the wall time of the whole run is `pytest`'s own last line.

Usage: python bench/suite_durations.py BEFORE.xml AFTER.xml [--top N]
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Module:
    seconds: float = 0.0
    tests: int = 0


def module_of(case: ET.Element) -> str:
    """The test module of a junit test case: its `file` attribute when written, else its classname up to the
    `test_*` part (`tests.e2e.test_x.TestY` -> tests/e2e/test_x.py)."""
    if case.get("file"):
        return case.get("file", "")
    parts = (case.get("classname") or "?").split(".")
    for i, part in enumerate(parts):
        if part.startswith("test_") or part.endswith("_test"):
            return "/".join(parts[: i + 1]) + ".py"
    return "/".join(parts) + ".py"


def read(path: Path) -> dict[str, Module]:
    """Seconds and test count per module of one junit XML file."""
    modules: dict[str, Module] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        module = modules.setdefault(module_of(case), Module())
        module.seconds += float(case.get("time") or 0.0)
        module.tests += 1
    return modules


def ratio(before: float, after: float) -> str:
    return f"{after / before:.2f}x" if before > 0 else "-"


def table(before: dict[str, Module], after: dict[str, Module], top: int | None = None) -> str:
    """Markdown: one row per module, the slowest in either run first, so a new module that costs much is shown too
    (modules only one run has show `-` on the other side)."""

    def seconds(n: str) -> tuple[float, float]:
        return before[n].seconds if n in before else 0.0, after[n].seconds if n in after else 0.0

    names = sorted(set(before) | set(after), key=lambda n: (-max(seconds(n)), n))
    lines = [
        "| module | tests before | tests after | before (s) | after (s) | after/before |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    shown = names if top is None else names[:top]
    for name in shown:
        b, a = before.get(name), after.get(name)
        lines.append(
            f"| {name} | {b.tests if b else '-'} | {a.tests if a else '-'} | "
            f"{f'{b.seconds:.1f}' if b else '-'} | {f'{a.seconds:.1f}' if a else '-'} | "
            f"{ratio(b.seconds, a.seconds) if a and b else '-'} |"
        )
    if top is not None and len(names) > top:
        rest = names[top:]
        rb = sum(before[n].seconds for n in rest if n in before)
        ra = sum(after[n].seconds for n in rest if n in after)
        lines.append(f"| ({len(rest)} other modules) | | | {rb:.1f} | {ra:.1f} | {ratio(rb, ra)} |")
    tb, ta = sum(m.seconds for m in before.values()), sum(m.seconds for m in after.values())
    nb, na = sum(m.tests for m in before.values()), sum(m.tests for m in after.values())
    lines.append(
        f"| **total** ({len(before)} / {len(after)} modules) | {nb} | {na} | {tb:.1f} | {ta:.1f} | {ratio(tb, ta)} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="junit XML of the earlier run (pytest --junitxml=...)")
    parser.add_argument("after", type=Path, help="junit XML of the later run")
    parser.add_argument(
        "--top", type=int, default=None, help="show the N slowest modules (in either run), sum the rest"
    )
    args = parser.parse_args(argv)
    for path in (args.before, args.after):
        if not path.is_file():
            print(f"suite_durations: {path}: no such file", file=sys.stderr)
            return 2
    try:
        before, after = read(args.before), read(args.after)
    except ET.ParseError as err:
        print(f"suite_durations: not a junit XML file: {err}", file=sys.stderr)
        return 2
    print(table(before, after, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
