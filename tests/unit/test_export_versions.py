"""Version allocation: next free number, atomic rename, no clash between concurrent writers."""

from __future__ import annotations

import threading
from pathlib import Path

from tfrun.tasks.export import existing_versions, publish, tree_files, tree_sha256


def _finished_export(base: Path, tag: str) -> Path:
    tmp = base / f".export-{tag}"
    (tmp / "variables").mkdir(parents=True)
    (tmp / "saved_model.pb").write_bytes(tag.encode())
    return tmp


def test_publish_takes_next_free_version(tmp_path: Path):
    assert publish(_finished_export(tmp_path, "a"), tmp_path) == (1, tmp_path / "0001")
    assert publish(_finished_export(tmp_path, "b"), tmp_path) == (2, tmp_path / "0002")
    assert existing_versions(tmp_path) == [1, 2]
    assert (tmp_path / "0002" / "saved_model.pb").read_bytes() == b"b"


def test_concurrent_publishers_get_distinct_versions(tmp_path: Path):
    exports = [_finished_export(tmp_path, str(i)) for i in range(16)]
    results: list[int] = []
    threads = [threading.Thread(target=lambda e=e: results.append(publish(e, tmp_path)[0])) for e in exports]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 17))
    contents = {(tmp_path / f"{v:04d}" / "saved_model.pb").read_bytes() for v in results}
    assert len(contents) == 16, "no export overwrote another"


def test_tree_hash_changes_with_content(tmp_path: Path):
    export = _finished_export(tmp_path, "x")
    before = tree_sha256(tree_files(export))
    (export / "saved_model.pb").write_bytes(b"changed")
    assert tree_sha256(tree_files(export)) != before
