"""What a Vertex job stages of a user's project: the files, what is left out, the archive, and the bad inputs
stopped before any upload (exit 2, no SDK imported, no socket opened)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.helpers import assert_rejected_offline, offline_tfrun, write_user_project
from tfrun.tasks.core import project_files

GCP = ["cluster=vertex", "cloud=gcp", "cloud.project=my-project", "cloud.bucket=my-models"]

MODEL = """\
def build(*, input_shape, n_classes, units=16):
    import tf_keras as keras
    return keras.Sequential([keras.layers.Input(input_shape), keras.layers.Dense(n_classes, activation="softmax")])
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's folder: a package, a module, configs, and what must never travel."""
    root = tmp_path / "proj"
    (root / "lab").mkdir(parents=True)
    (root / "lab" / "__init__.py").write_text("")
    (root / "lab" / "models.py").write_text(MODEL)
    (root / "lab" / "__pycache__").mkdir()
    (root / "lab" / "__pycache__" / "models.cpython-311.pyc").write_bytes(b"\0")
    (root / "lab" / "scratch.log").write_text("ignored by .gitignore")
    (root / "lab" / "keep.log").write_text("kept by a negated pattern")
    (root / ".gitignore").write_text("*.log\n!keep.log\nlab/big/\n")
    for folder in ("lab/.git", "lab/runs", "lab/models", "lab/multiruns", "lab/env/lib", "lab/big", "lab/sub"):
        (root / folder).mkdir(parents=True)
        (root / folder / "f.py").write_text("x = 1\n")
    (root / "lab" / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    write_user_project(
        root,
        {"solo.py": "def load(*, seed=0):\n    return {}\n"},
        {"model/lab.yaml": "_target_: lab.models.build\nunits: 8\n"},
    )
    monkeypatch.chdir(root)
    return root


def test_the_plan_holds_the_code_and_configs_and_leaves_out_what_must_not_travel(project: Path):
    plan = project_files.plan(
        project, ["lab.models.build", "solo.load", "tf_keras.callbacks.CSVLogger"], [str(project / "my_conf")], {}
    )
    names = [f.name for f in plan.files]
    assert names == [
        "lab/__init__.py",
        "lab/keep.log",
        "lab/models.py",
        "lab/sub/f.py",
        "my_conf/model/lab.yaml",
        "solo.py",
    ], names
    assert plan.modules == {"lab": "lab", "solo": "solo.py"}, "installed packages (tf_keras) are not staged"
    assert plan.config_dirs == {str(project / "my_conf"): "my_conf"}


def test_files_outside_the_project_go_under_outside_and_data_is_staged_despite_gitignore(project: Path, tmp_path: Path):
    (project / "data.log").write_text("a data file the .gitignore lists")
    elsewhere = tmp_path / "shared" / "conf"
    elsewhere.mkdir(parents=True)
    (elsewhere / "x.yaml").write_text("a: 1\n")
    plan = project_files.plan(
        project, [], [str(elsewhere)], {"data.path": "data.log", "data.other": str(project / "solo.py")}
    )
    assert plan.config_dirs == {str(elsewhere): "_outside/1/conf"}
    assert plan.data == {"data.other": "solo.py"}, "a relative path inside the project is not rewritten"
    assert {"data.log", "_outside/1/conf/x.yaml", "solo.py"} == {f.name for f in plan.files}
    folder = project_files.plan(project, [], [], {"data.folder": "lab/sub"})  # a relative folder, as given
    assert [f.name for f in folder.files] == ["lab/sub/f.py"] and folder.data == {}


def test_the_archive_is_deterministic_and_unpacks_only_what_its_manifest_vouches_for(project: Path, tmp_path: Path):
    plan = project_files.plan(project, ["lab.models.build"], [], {})
    archive, manifest = project_files.build(plan)
    assert project_files.build(plan)[0] == archive, "the same files give the same bytes"
    project_files.unpack(archive, manifest, tmp_path / "out")
    assert (tmp_path / "out" / "lab" / "models.py").read_text() == MODEL
    tampered = dict(
        manifest, files=[dict(f, sha256="0" * 64) if f["path"] == "lab/models.py" else f for f in manifest["files"]]
    )
    with pytest.raises(project_files.StagingError, match="lab/models.py does not match its sha256"):
        project_files.unpack(archive, tampered, tmp_path / "again")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    evil = {"files": [{"path": "../escape.py", "sha256": "x"}]}
    with pytest.raises(project_files.StagingError, match="escape.py"):
        project_files.unpack(buffer.getvalue(), evil, tmp_path / "evil")
    assert not (tmp_path / "escape.py").exists()


def test_the_dry_run_lists_the_staged_project(project: Path):
    log = project / "blocked.log"
    proc = offline_tfrun(
        [
            "--config-dir",
            "my_conf",
            "model=lab",
            *GCP,
            "cloud.dry_run=true",
            "cluster.requirements=['scikit-learn>=1.3']",
        ],
        project,
        log,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for words in (
        "project.tar.gz + project.json: 5 file(s)",
        "modules lab; configs my_conf",
        "lab/models.py",
        "args        --config-dir=my_conf model=lab",
        "requirements (installed with tfrun's pinned set): scikit-learn>=1.3",
        "unpacked by every replica",
    ):
        assert words in out, f"{words!r} missing from:\n{out}"
    assert not log.exists(), log.read_text()


def _big(project: Path) -> str:
    (project / "lab" / "weights.bin").write_bytes(os.urandom(1_500_000))
    return "lab/weights.bin (1.5 MB)"


# (extra overrides, words, set-up) -- each from the project above, with --config-dir my_conf model=lab
BAD_STAGING = [
    pytest.param(
        ["cluster.max_stage_mb=1"], ["cluster.max_stage_mb", "largest: BIG", ".gitignore"], _big, id="over-the-size-cap"
    ),
    pytest.param(["cluster.max_stage_mb=0"], ["cluster.max_stage_mb", "0", ">= 1"], None, id="zero-size-cap"),
    pytest.param(
        ["data=files", "data.path=local.npz", "cluster.stage_data=false"],
        ["data.path", "local.npz", "gs:// path", "cluster.stage_data=true"],
        "npz",
        id="local-data-not-staged",
    ),
    pytest.param(
        ["cluster.requirements=['scikit-learn>=>1']"],
        ["cluster.requirements[0]", "scikit-learn>=>1", "a pip requirement"],
        None,
        id="bad-requirement",
    ),
    pytest.param(
        ["cluster.requirements=nowhere.txt"],
        ["cluster.requirements", "nowhere.txt", "existing requirements file"],
        None,
        id="missing-requirements-file",
    ),
    pytest.param(
        ["cluster.requirements=reqs.txt"],
        ["reqs.txt:2", "-e ./lib", "a pip requirement"],
        "reqs",
        id="bad-line-in-requirements-file",
    ),
    pytest.param(
        ["cluster.requirements=['mylib @ https://example.com/mylib.whl']"],
        ["cluster.requirements[0]", "a URL or local path does not reach the replicas"],
        None,
        id="requirement-by-url",
    ),
    pytest.param(
        ["cluster.requirements=['tensorflow==2.15']"],
        ["tensorflow==2.15", "without a version", "tfrun pins it"],
        None,
        id="requirement-fights-a-pin",
    ),
    pytest.param(
        [
            "cluster.requirements=[rich]",
            "cluster.container=tfrun",
            "cluster.tfrun_image=us-central1-docker.pkg.dev/p/r/tfrun-training:1",
        ],
        ["cluster.requirements", "cluster.container=tfrun", "only the prebuilt image"],
        None,
        id="requirements-with-an-image",
    ),
    pytest.param(
        ["train.extra_callbacks=[{_target_:pytest.main}]"],
        ["train.extra_callbacks[0]", "pytest", "neither in tfrun's pinned set nor in cluster.requirements"],
        None,
        id="installed-package-the-replicas-lack",
    ),
    pytest.param(["--config-dir", "no_such_conf"], ["no_such_conf", "not found"], None, id="missing-config-dir"),
    pytest.param(
        ["hydra.searchpath=[file://PROJECT/my_conf]"],
        ["hydra.searchpath", "--config-dir with cluster=vertex"],
        None,
        id="searchpath-folder-not-staged",
    ),
]


@pytest.mark.parametrize("overrides, words, setup", BAD_STAGING)
def test_bad_staging_input_exits_2_before_any_upload(project: Path, overrides: list[str], words: list[str], setup):
    big = setup(project) if callable(setup) else ""
    if setup == "npz":
        import numpy as np

        np.savez(project / "local.npz", x=np.zeros((40, 2), "float32"), y=np.arange(40) % 2)
    if setup == "reqs":
        (project / "reqs.txt").write_text("scikit-learn>=1.3\n-e ./lib\n")
    config_dir = overrides[:2] if overrides[0] == "--config-dir" else ["--config-dir", "my_conf"]
    rest = [
        o.replace("PROJECT", str(project)) for o in (overrides[2:] if overrides[0] == "--config-dir" else overrides)
    ]
    model = [] if any(o.startswith("data=") for o in overrides) else ["model=lab"]
    assert_rejected_offline([*config_dir, *model, *GCP, *rest], [w.replace("BIG", big) for w in words], project)


def test_the_submitting_side_refuses_a_chief_that_ran_other_code_than_was_staged():
    from omegaconf import OmegaConf

    from tfrun.tasks.vertex.training import VertexJobFailed, same_code_as_staged

    cfg = OmegaConf.create(
        {
            "model": {"_target_": "lab.models.build"},
            "data": {"_target_": "tfrun.tasks.data.digits.load"},
            "train": {"extra_callbacks": []},
        }
    )
    manifest = {"modules": {"lab": "lab"}, "files": [{"path": "lab/models.py", "sha256": "a" * 64}]}
    good = {"code": {"user": {"model": {"target": "lab.models.build", "file": "lab/models.py", "sha256": "a" * 64}}}}
    same_code_as_staged(cfg, good, manifest)
    changed = {"code": {"user": {"model": dict(good["code"]["user"]["model"], sha256="b" * 64)}}}
    with pytest.raises(VertexJobFailed, match="model: the chief's lab/models.py has sha256 bbbbbbbbbbbb"):
        same_code_as_staged(cfg, changed, manifest)
    elsewhere = {"code": {"user": {"model": dict(good["code"]["user"]["model"], file="/opt/lab/models.py")}}}
    with pytest.raises(VertexJobFailed, match="not in the staged project"):
        same_code_as_staged(cfg, elsewhere, manifest)
    with pytest.raises(VertexJobFailed, match="other code than this run names"):
        same_code_as_staged(cfg, {"code": {"user": {}}}, manifest)
