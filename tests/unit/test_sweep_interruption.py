"""Ctrl-C on a sweep (tfrun.runner.sweeps.interruption): the stop mark a joblib worker reads, and the records a
stopped sweep leaves `running` finished as `interrupted` with the summary printed."""

from __future__ import annotations

import json
import os
import signal

from omegaconf import OmegaConf

from tests.helpers import dead_pid, make_record, write
from tfrun.runner.sweeps import interruption
from tfrun.runner.sweeps.before import Before


def _config(sweep_dir, launcher: str):
    return OmegaConf.create(
        {"run": {"stop_grace_s": 1.0}, "hydra": {"sweep": {"dir": str(sweep_dir)}, "launcher": {"_target_": launcher}}}
    )


def test_a_worker_starts_no_job_once_its_own_tfrun_marks_the_sweep_stopping(tmp_path):
    assert not interruption.stopping(tmp_path)
    (tmp_path / interruption.STOP_MARK).write_text(str(os.getppid()))
    assert interruption.stopping(tmp_path)
    (tmp_path / interruption.STOP_MARK).write_text(str(dead_pid()))  # another tfrun's mark, left by a killed sweep
    assert not interruption.stopping(tmp_path)


def test_only_joblib_sweeps_take_over_ctrl_c_and_the_handlers_come_back(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    interruption.begin(_config(tmp_path, "hydra._internal.core_plugins.basic_launcher.BasicLauncher"), Before())
    assert signal.getsignal(signal.SIGINT) is before
    interruption.end()
    (tmp_path / interruption.STOP_MARK).write_text("1")
    interruption.begin(
        _config(tmp_path, "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"), Before()
    )
    assert not (tmp_path / interruption.STOP_MARK).exists(), "an earlier sweep's mark is cleared"
    assert signal.getsignal(signal.SIGINT) == interruption._on_signal
    interruption.end()
    assert signal.getsignal(signal.SIGINT) is before


def test_records_left_running_by_a_gone_runner_are_finished_interrupted_and_summarised(tmp_path, capsys):
    interruption.begin(_config(tmp_path, "hydra._internal.core_plugins.basic_launcher.BasicLauncher"), Before())
    write(tmp_path / "0", make_record(run_id="a"))
    write(
        tmp_path / "1",
        make_record(run_id="b", status="running", ended_at=None, seconds=None, pids={"runner": dead_pid()}),
    )
    alive = make_record(run_id="c", status="running", ended_at=None, seconds=None, pids={"runner": os.getppid()})
    write(tmp_path / "2", alive)
    interruption.interrupted()
    status = {n: json.loads((tmp_path / n / "record.json").read_text())["status"] for n in ("0", "1", "2")}
    assert status == {"0": "succeeded", "1": "interrupted", "2": "running"}, "a live runner finishes its own"
    out = capsys.readouterr().out
    assert "best: job 0" in out and "3 job(s) ran now, 0 came from before" in out
    assert (tmp_path / "sweep.json").is_file()
    interruption.interrupted()  # no sweep any more: nothing happens
    assert capsys.readouterr().out == ""


def test_a_queued_job_whose_worker_was_killed_before_it_started_leaves_no_folder(tmp_path, capsys):
    """joblib kills its workers on the KeyboardInterrupt: one may have taken the queued job and made its folder
    (Hydra's `.hydra/`, the log) before reading the stop mark. That folder goes; a job with a record stays, and so
    does an earlier session's folder."""
    earlier = tmp_path / "7" / ".hydra"
    earlier.mkdir(parents=True)
    sweep = _config(tmp_path, "hydra._internal.core_plugins.basic_launcher.BasicLauncher")
    interruption.begin(sweep, Before.of(tmp_path, "record.json"))
    write(tmp_path / "0", make_record(run_id="a", status="interrupted"))
    queued = tmp_path / "1"
    (queued / ".hydra").mkdir(parents=True)
    (queued / "tfrun.log").write_text("")
    interruption.interrupted()
    assert not queued.exists(), "the queued job that never started left its folder"
    assert (tmp_path / "0" / "record.json").is_file() and earlier.is_dir()
    assert "1 job(s) ran now" in capsys.readouterr().out
