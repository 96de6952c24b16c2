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


def test_a_version_moved_aside_is_never_given_again(tmp_path: Path):
    """Issue 30: a failed run's 0002 went to .rolled-back/ and the next export was 0002 again."""
    from tfrun.tasks.tfserving import repository

    publish(_finished_export(tmp_path, "a"), tmp_path)
    publish(_finished_export(tmp_path, "b"), tmp_path)
    moved = repository.set_aside(tmp_path, 2)
    assert moved.parent == tmp_path / ".rolled-back" and existing_versions(tmp_path) == [1]
    assert publish(_finished_export(tmp_path, "c"), tmp_path) == (3, tmp_path / "0003")
    assert (moved / "saved_model.pb").read_bytes() == b"b", "the set-aside model keeps its own number"


def test_numbers_named_by_files_or_set_aside_count_as_used(tmp_path: Path):
    from tfrun.tasks.export import next_version, used_versions

    assert next_version(tmp_path / "absent") == 1
    (tmp_path / "0001").mkdir()
    (tmp_path / "0004.int8.tflite").write_bytes(b"")  # a version's sibling file outlived its folder
    (tmp_path / ".rolled-back").mkdir()
    (tmp_path / ".rolled-back" / "0007-20260101-120000").mkdir()
    (tmp_path / ".export-abc").mkdir()  # an export being written: no number yet
    assert used_versions(tmp_path) == {1, 4, 7} and next_version(tmp_path) == 8


def test_push_into_a_repository_skips_numbers_it_set_aside(tmp_path: Path):
    from tfrun.tasks.tfserving import repository

    export = _finished_export(tmp_path / "exports", "x")
    model = tmp_path / "repo" / "m"
    (model / ".rolled-back" / "0002-20260101-120000").mkdir(parents=True)
    version, path, copied = repository.push(export, model, 2)
    assert (version, path.name, copied) == (3, "0003", True)
