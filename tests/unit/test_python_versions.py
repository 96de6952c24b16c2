"""The Pythons tfrun claims (pyproject's requires-python and classifiers, scripts/pick_python.sh's choice) are
exactly those scripts/check_python_versions.sh found the pinned set to install on.

That script needs the network, so its output is committed (scripts/python_versions.txt) and this test
holds the claims to it; rerun the script after changing constraints.txt or pyproject's dependencies.
"""

from __future__ import annotations

import re
import tomllib

from packaging.specifiers import SpecifierSet

from tests.helpers import ROOT

RESULTS = ROOT / "scripts" / "python_versions.txt"


def resolved_versions() -> tuple[set[str], set[str]]:
    """(versions that resolve, versions checked) from the script's table."""
    rows = re.findall(r"^(3\.\d+)\s+(yes|no|unknown)\b", RESULTS.read_text(), re.M)
    assert rows, f"no result rows in {RESULTS}"
    return {v for v, verdict in rows if verdict == "yes"}, {v for v, _ in rows}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_recorded_check_covers_the_versions_tensorflow_supports():
    ok, checked = resolved_versions()
    assert {"3.10", "3.11", "3.12", "3.13"} <= checked
    assert "3.11" in ok  # the one the test suite runs on


def test_requires_python_admits_exactly_the_versions_that_resolve():
    ok, _ = resolved_versions()
    spec = SpecifierSet(project()["requires-python"])
    admitted = {f"3.{minor}" for minor in range(0, 30) if spec.contains(f"3.{minor}.0")}
    assert admitted == ok, f"requires-python {spec} admits {sorted(admitted)}; {RESULTS.name} says {sorted(ok)}"


def test_classifiers_name_the_versions_that_resolve():
    ok, _ = resolved_versions()
    named = {
        c.rsplit(" :: ", 1)[1]
        for c in project().get("classifiers", [])
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert named == ok


def test_env_sh_picks_among_the_versions_that_resolve_newest_first():
    ok, _ = resolved_versions()
    match = re.search(r'^SUPPORTED_PYTHONS="([^"]*)"', (ROOT / "scripts" / "pick_python.sh").read_text(), re.M)
    assert match, "scripts/pick_python.sh has no SUPPORTED_PYTHONS line"
    listed = match.group(1).split()
    assert set(listed) == ok
    assert listed == sorted(listed, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
