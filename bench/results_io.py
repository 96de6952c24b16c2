"""Where the benchmarks write their figures: indented JSON under bench/results/ (BENCHMARKS.md quotes them)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(result: dict, path: Path) -> Path:
    """Write one benchmark's result as JSON at `path`, making its folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
