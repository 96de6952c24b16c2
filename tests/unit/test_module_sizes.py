"""Small modules with one responsibility: no module under runner/ grows past 500 lines (issue 26)."""

from __future__ import annotations

from pathlib import Path

RUNNER = Path(__file__).resolve().parents[2] / "runner"
LIMIT = 500


def test_no_runner_module_exceeds_500_lines():
    sizes = {str(p.relative_to(RUNNER.parent)): len(p.read_text().splitlines()) for p in RUNNER.rglob("*.py")}
    assert len(sizes) > 20, sizes  # the folder was found
    too_long = {path: n for path, n in sizes.items() if n > LIMIT}
    assert not too_long, f"split these modules (at most {LIMIT} lines each): {too_long}"
