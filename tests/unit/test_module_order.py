"""The suite hands the slowest test modules to its workers first (tests/conftest.py, tests/module_durations.json)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from tests import conftest


def test_the_slowest_modules_come_first_each_whole_and_unlisted_ones_before_all(monkeypatch, tmp_path):
    durations = tmp_path / "module_durations.json"
    durations.write_text(json.dumps({"tests/a.py": 1.0, "tests/b.py": 5.0}))
    monkeypatch.setattr(conftest, "MODULE_DURATIONS", durations)
    items = [SimpleNamespace(nodeid=n) for n in ("tests/a.py::x", "tests/a.py::y", "tests/b.py::x", "tests/c.py::x")]
    conftest.pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == ["tests/c.py::x", "tests/b.py::x", "tests/a.py::x", "tests/a.py::y"]


def test_without_the_file_the_order_is_the_collections(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "MODULE_DURATIONS", tmp_path / "missing.json")
    items = [SimpleNamespace(nodeid=n) for n in ("tests/a.py::x", "tests/b.py::x")]
    conftest.pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == ["tests/a.py::x", "tests/b.py::x"]


def test_the_durations_file_names_modules_that_exist():
    listed = json.loads(conftest.MODULE_DURATIONS.read_text())
    root = conftest.MODULE_DURATIONS.parent.parent
    assert listed and all((root / name).is_file() for name in listed), [n for n in listed if not (root / n).is_file()]
