"""When a job may fork from the zygote (tfrun.runner.processes.zygote_server._mismatch): only with the import-time
environment, the Python and the modules its folder would provide all as in the zygote. Run here against this
process, which plays the zygote (no TensorFlow needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tfrun.runner.processes import zygote
from tfrun.runner.processes.zygote_server import _mismatch, extra_path


def _request(tmp_path: Path, **env: str) -> dict:
    return {"env": {**os.environ, **env}, "cwd": str(tmp_path), "executable": sys.executable, "events_fd": 5}


def test_the_same_environment_forks(tmp_path: Path):
    assert _mismatch(_request(tmp_path, TFRUN_RECORD_LOG="/elsewhere", PATH="/bin")) is None


def test_an_import_time_variable_that_differs_runs_fresh(tmp_path: Path):
    for key in ("TF_ENABLE_ONEDNN_OPTS", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "LD_PRELOAD"):
        why = _mismatch(_request(tmp_path, **{key: "/x" if key == "LD_PRELOAD" else "7"}))
        assert why is not None and key in why, (key, why)


def test_pythonpath_may_put_folders_in_front_of_the_zygotes_own(tmp_path: Path, monkeypatch):
    """A project's src/ on PYTHONPATH: the job forks, with that folder where a fresh Python puts it (before the
    zygote's own entries); the zygote's entries dropped or reordered, or a folder holding a module the zygote
    imported from elsewhere, run fresh."""
    src, lib = tmp_path / "src", tmp_path / "lib"
    src.mkdir()
    lib.mkdir()
    (src / "my_models.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(lib))
    request = _request(tmp_path, PYTHONPATH=os.pathsep.join([str(src), str(lib)]))
    assert _mismatch(request) is None and extra_path(request["env"]) == [str(src)]
    assert extra_path({"PYTHONPATH": ""}) is None  # the zygote's lib/ gone
    assert "PYTHONPATH" in _mismatch(_request(tmp_path, PYTHONPATH=str(src)))
    assert _mismatch(_request(tmp_path, PYTHONPATH=os.pathsep.join([str(tmp_path / "nowhere"), str(lib)]))) is None
    (src / "json.py").write_text("")  # json is imported here: a fresh Python would take src/json.py
    why = _mismatch(request)
    assert why is not None and "json.py" in why and "PYTHONPATH folder" in why and str(tmp_path) not in why


def test_each_task_of_a_local_cluster_forks_with_its_own_tf_config(tmp_path: Path):
    """TF_CONFIG is read when a cluster resolver is made, not at import: a cluster's tasks share one zygote."""
    assert _mismatch(_request(tmp_path, TF_CONFIG='{"task": {"type": "worker", "index": 1}}')) is None
    assert _mismatch({**_request(tmp_path), "module": zygote.SERVER_MODULE}) is None


def test_only_a_jobs_child_or_a_cluster_server_is_run_forked(tmp_path: Path):
    assert "module" in _mismatch({**_request(tmp_path), "module": "os"})


def test_another_python_runs_fresh(tmp_path: Path):
    assert _mismatch({**_request(tmp_path), "executable": "/usr/bin/python3"}) == "another Python"


def test_a_relative_pythonpath_entry_runs_fresh(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "src")
    assert "relative" in _mismatch(_request(tmp_path))


def test_a_project_module_that_shadows_an_imported_one_runs_fresh(tmp_path: Path):
    (tmp_path / "json.py").write_text("")  # json is imported here: a fresh `python -m` would take this one
    why = _mismatch(_request(tmp_path))
    assert why is not None and "json.py" in why
    (tmp_path / "json.py").unlink()
    (tmp_path / "my_tasks.py").write_text("")
    assert _mismatch(_request(tmp_path)) is None


def test_the_folder_a_module_was_imported_from_forks():
    """Running from tfrun's own checkout: its tfrun/ is the package the zygote imported, not another one."""
    import tfrun

    checkout = Path(tfrun.__file__).resolve().parent.parent
    assert _mismatch(_request(checkout)) is None


def test_import_time_env_keeps_what_python_tf_and_cuda_read_at_start():
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1", "PYTHONHASHSEED": "0", "PATH": "/bin"}
    assert zygote.import_time_env({**env, "TFRUN_RECORD_LOG": "x"}) == {k: v for k, v in env.items() if k != "PATH"}


def test_forking_is_off_with_tfrun_no_fork(monkeypatch):
    monkeypatch.setenv(zygote.ZYGOTE_ENV, "/tmp/socket")
    assert zygote.socket_path() == "/tmp/socket"
    monkeypatch.setenv(zygote.NO_FORK_ENV, "1")
    assert zygote.socket_path() is None


def test_a_plain_local_sweep_starts_its_zygote_with_the_command():
    """Only a multirun over tfrun's own configs that no override sends elsewhere (another launcher, a cloud,
    processes or devices of its own, a preset) starts the zygote before composing (zygote.start_early)."""
    early = ["-m", "train.learning_rate=0.001,0.01", "model.n_hidden=1,2"]
    assert zygote.plain_local_sweep(early)
    assert zygote.plain_local_sweep(["--multirun", "sweep=optuna", "sweep.pruner=median", "train.epochs=3"])
    for not_early in (
        ["train.learning_rate=0.001"],  # one run: the warm child's case
        ["-m", "--cfg", "job"],
        ["-m", "--config-dir", "conf", "a=1,2"],
        ["-m", "hydra/launcher=joblib", "a=1,2"],
        ["-m", "hydra.launcher.n_jobs=2", "a=1,2"],
        ["-m", "cloud=gcp", "cloud.dry_run=true", "a=1,2"],
        ["-m", "cluster=local", "a=1,2"],
        ["-m", "hardware=gpu", "a=1,2"],
        ["-m", "experiment=quick", "a=1,2"],
        ["-m", "sweep=vertex"],
        ["-m", "job=serve"],
    ):
        assert not zygote.plain_local_sweep(not_early), not_early
