"""data=files: a data file's mistakes are config errors (exit 2, no traceback) found before TensorFlow starts.

Each names the file, the column or array and the first bad row; labels that are not every integer
0..n-1 are refused with the labels found and how to fix them (tfrun does not map them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import assert_rejected, tfrun
from tfrun.tasks.core.problems import Problem


def _csv(path: Path, header: str, rows: list[str]) -> str:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path.name


def _npz(path: Path, y: list, x: np.ndarray | None = None) -> str:
    np.savez(path, x=np.ones((len(y), 3), "float32") if x is None else x, y=np.asarray(y))
    return path.name


def _good_rows(n: int = 20) -> list[str]:
    return [f"{i},{i * 2},{i % 2}" for i in range(n)]


# (file writer, extra overrides, words the message must contain)
BAD_FILES = [
    pytest.param(
        lambda d: _csv(d / "pets.csv", "a,b,kind", _good_rows()),
        [],
        ["data.label_column", "'label'", "pets.csv", "kind"],
        id="csv-without-the-label-column",
    ),
    pytest.param(
        lambda d: _csv(d / "pets.csv", "a,b,label", [*_good_rows(5), "1,2,cat", "3,4,dog"]),
        [],
        ["pets.csv", "column 'label'", "line 7", "'cat'", "0..n-1"],
        id="csv-text-labels",
    ),
    pytest.param(
        lambda d: _csv(d / "pets.csv", "a,b,label", [*_good_rows(5), "1,2,1.5"]),
        [],
        ["pets.csv", "line 7", "'1.5'"],
        id="csv-fractional-label",
    ),
    pytest.param(
        lambda d: _csv(d / "pets.csv", "a,b,label", [*_good_rows(5), "1,2"]),
        [],
        ["pets.csv", "line 7", "2 fields", "3"],
        id="csv-short-row",
    ),
    pytest.param(
        lambda d: _npz(d / "arrays.npz", [0, 1, 0, -1, 1, 0]),
        [],
        ["arrays.npz", "array 'y'", "row 3", "-1", "0..n-1"],
        id="npz-negative-label",
    ),
    pytest.param(
        lambda d: _npz(d / "arrays.npz", [5, 7] * 10),
        [],
        ["arrays.npz", "5, 7", "0..1", "missing: 0, 1, 2, 3, 4, 6"],
        id="npz-labels-not-0-to-n-1",
    ),
    pytest.param(
        lambda d: _csv(d / "pets.csv", "a,b,label", [f"{i},{i},{5 + 2 * (i % 2)}" for i in range(20)]),
        [],
        ["pets.csv", "5, 7", "0..1"],
        id="csv-labels-not-0-to-n-1",
    ),
    pytest.param(
        lambda d: _npz(d / "arrays.npz", [0, 1] * 5),
        ["data.y_key=labels"],
        ["data.y_key", "'labels'", "arrays.npz", "x, y"],
        id="npz-missing-array",
    ),
    pytest.param(
        lambda d: _npz(d / "arrays.npz", [0, 1] * 5, x=np.ones((9, 3), "float32")),
        [],
        ["arrays.npz", "9 rows", "10 labels"],
        id="npz-x-and-y-lengths-differ",
    ),
    pytest.param(
        lambda d: _npz(d / "arrays.npz", [0] * 10),
        [],
        ["arrays.npz", "at least two classes", "0"],
        id="npz-one-class",
    ),
]


@pytest.mark.parametrize("write, overrides, words", BAD_FILES)
def test_bad_data_file_exits_2_before_tensorflow(workdir: Path, write, overrides: list[str], words: list[str]):
    name = write(workdir)
    proc = tfrun("data=files", f"data.path={name}", *overrides, "hydra.run.dir=runs/bad", cwd=workdir, timeout=60)
    assert_rejected(proc, words, workdir / "runs" / "bad")


def test_good_files_have_no_problems(tmp_path: Path):
    from tfrun.tasks.data import file_check

    csv_path = tmp_path / "ok.csv"
    _csv(csv_path, "a,b,label", [*_good_rows(10), "", "1,2,1.0"])  # a blank line and 1.0 are what the loader accepts
    assert list(file_check.problems(str(csv_path), "csv", "x", "y", "label")) == []
    npz_path = tmp_path / "ok.npz"
    _npz(npz_path, [2, 0, 1, 1])
    assert list(file_check.problems(str(npz_path), "npz", "x", "y", "label")) == []


def test_reading_stops_at_the_first_bad_row(tmp_path: Path):
    """Only the first bad row is reported, however many follow (a big file is not read to its end)."""
    from tfrun.tasks.data import file_check

    path = tmp_path / "big.csv"
    _csv(path, "a,label", ["1,0", "2,1", "3,x", *(f"{i},y" for i in range(10_000))])
    found = list(file_check.problems(str(path), "csv", "x", "y", "label"))
    assert len(found) == 1 and isinstance(found[0], Problem)
    assert "line 4" in found[0].allowed and "'x'" in found[0].allowed


def test_loader_names_a_bad_feature_cell(tmp_path: Path):
    """The validation reads labels only; a text feature stops the loader with file, line and column, no traceback."""
    from tfrun.tasks.data import file_check

    path = tmp_path / "pets.csv"
    _csv(path, "a,name,label", ["1,2,0", "3,rex,1"])
    _csv(tmp_path / "ok.csv", "a,label,b", ["1,0,2", "3,1.0,4"])
    x, y = file_check.read_csv(str(tmp_path / "ok.csv"), "label")
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]] and y.tolist() == [0, 1] and str(x.dtype) == "float32"
    with pytest.raises(file_check.DataFileError, match=r"pets.csv line 3: column 'name' holds 'rex'"):
        file_check.read_csv(str(path), "label")
    assert file_check.DataFileError.user_facing
