"""hydra.job.chdir=true: every path means what it means without it, relative to the folder tfrun is started from.

Hydra would run the job inside its run dir; tfrun works from the launch folder anyway, so `data.path`,
`models_dir` and the paths it prints (the run dir, the record, the export) open from where the user typed
the command.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import read_record, tfrun

pytestmark = [pytest.mark.e2e]


def test_chdir_true_resolves_every_path_against_the_launch_folder(workdir: Path):
    rng = np.random.default_rng(0)
    labels = np.arange(120) % 2
    rows = [f"{a:.3f},{b:.3f},{y}" for (a, b), y in zip(rng.normal(size=(120, 2)) + labels[:, None], labels)]
    (workdir / "my.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    proc = tfrun(
        "hydra.job.chdir=true",
        "data=files",
        "data.path=my.csv",
        "train.epochs=1",
        "train.callbacks.tensorboard=false",
        "hydra.run.dir=runs/r",
        cwd=workdir,
        check=True,
    )
    out = proc.stdout + proc.stderr
    printed = re.search(r"record: (\S+)", out)
    assert printed, out
    assert (workdir / printed.group(1)).resolve() == (workdir / "runs/r/record.json").resolve(), out
    record = read_record(workdir / "runs" / "r")
    assert record["status"] == "succeeded"
    assert (workdir / "models" / "files_mlp" / "0001" / "saved_model.pb").is_file()
    assert not (workdir / "runs" / "r" / "models").exists()
    saved = next(a for a in record["artifacts"] if a.get("kind", "saved_model") == "saved_model")
    assert (workdir / saved["path"]).exists(), saved["path"]
