"""The Python API's parts that need no run: `import tfrun` stays light, records as objects (paths resolved
against the folder the run started in), the progress line, the command's own config report, composition errors
in the command's words. The runs themselves are tests/e2e/test_python_api.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import command_env, make_record, write


def test_import_tfrun_loads_neither_hydra_nor_tensorflow_and_finds_the_api_on_use(tmp_path: Path):
    code = (
        "import sys, tfrun\n"
        "print(sorted(m for m in ('hydra', 'omegaconf', 'tensorflow', 'tfrun.runner.api.calls') if m in sys.modules))\n"
        "print(tfrun.run.__module__, tfrun.ConfigError.__module__, 'run' in dir(tfrun))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=command_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.splitlines() == ["[]", "tfrun.runner.api.calls tfrun.tasks.core.problems True"], proc.stderr
    import tfrun

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tfrun.nope  # noqa: B018


def test_a_record_resolves_its_paths_against_the_folder_it_started_in(tmp_path: Path):
    import tfrun

    run_dir = write(tmp_path / "project" / "runs" / "a", make_record(run_dir="runs/a"))
    record = tfrun.load(run_dir / "record.json")
    assert record.base == tmp_path / "project"
    assert record.saved_model == tmp_path / "project" / "models" / "digits_mlp" / "0001"
    assert record.run_dir == run_dir and record.status == "succeeded" and record.metrics["holdout_accuracy"] > 0.85
    assert record.artifact("tflite") is None and record.overrides == ["train.epochs=2"]
    assert "holdout_accuracy=0.8528" in repr(record)
    moved = write(tmp_path / "elsewhere", make_record(run_dir="runs/a"))  # a copied run dir: the current folder
    assert tfrun.load(moved).base == Path.cwd()


def test_records_lists_oldest_first_and_skips_a_damaged_one_with_a_warning(tmp_path: Path):
    import tfrun

    write(tmp_path / "runs" / "late", make_record(run_id="late", started_at="2026-11-27T10:00:00.000+00:00"))
    write(tmp_path / "runs" / "early", make_record(run_id="early"))
    (tmp_path / "runs" / "cut").mkdir()
    (tmp_path / "runs" / "cut" / "record.json").write_text('{"status": "runn')
    with pytest.warns(UserWarning, match="cut/record.json"):
        found = tfrun.records(tmp_path / "runs")
    assert [r.run_id for r in found] == ["early", "late"]
    with pytest.raises(FileNotFoundError, match="no folder"):
        tfrun.records(tmp_path / "missing")
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a record"):
        tfrun.load(tmp_path / "list.json")


def test_the_progress_line_while_training_and_at_the_end():
    from tfrun.runner.api.progress import describe

    running = make_record(status="running", seconds=None)
    running["steps"][0]["status"] = "running"
    running["metrics"]["history"] = {"loss": [2.0, 1.19], "accuracy": [0.5, 0.81], "epoch_seconds": [3.1, 0.2]}
    assert describe(running) == "tfrun run 20261126-100000-aaaaaa · train · epoch 2/2 · loss 1.1900 · accuracy 0.8100"
    running["steps"][0]["status"] = "succeeded"
    running["steps"][1]["status"] = "running"
    assert describe(running, job="3") == "tfrun job 3 · export"
    assert describe(make_record()) == "tfrun run 20261126-100000-aaaaaa · succeeded in 12.0 s · holdout_accuracy 0.8528"
    failed = make_record(status="failed", error={"type": "UserCodeError", "message": "x" * 300})
    line = describe(failed)
    assert line.startswith("tfrun run 20261126-100000-aaaaaa · failed in 12.0 s") and line.endswith("x…")


def test_the_commands_own_report_becomes_the_problems():
    from tfrun.runner.api.compose import reported_problems

    lines = [
        "tfrun: invalid configuration (nothing was run):",
        "  - track.uri='http://127.0.0.1:9' is not allowed: expected a tracking server that answers",
        "  - Could not override 'x'",
        "    Key 'x' is not in struct",
        "Fix the value(s) above; `tfrun --cfg job` prints the composed config.",
    ]
    problems = reported_problems(lines)
    assert [str(p) for p in problems] == [
        "track.uri='http://127.0.0.1:9' is not allowed: expected a tracking server that answers",
        "Could not override 'x'\n    Key 'x' is not in struct",
    ]
    assert (problems[0].key, problems[0].value) == ("track.uri", "'http://127.0.0.1:9'")
    assert problems[1].key == "config"
    assert [str(p) for p in reported_problems(["something else went wrong"])] == ["something else went wrong"]


def test_composition_errors_read_as_the_command_prints_them(tmp_path: Path):
    import tfrun

    with pytest.raises(tfrun.ConfigError) as err:
        tfrun.compose("train.epochs=ten")
    (problem,) = err.value.problems
    assert problem.key == "train.epochs" and problem.value == "ten"
    with pytest.raises(tfrun.ConfigError) as err:
        tfrun.compose("model.n_hidden=1,2")  # a sweep's value given to a single run
    assert "Ambiguous value for argument 'model.n_hidden=1,2'" in str(err.value.problems[0])
    with pytest.raises(tfrun.ConfigError, match="config_dir"):
        tfrun.compose(config_dir="no_such_folder", cwd=tmp_path)
    proc = subprocess.run(  # the command's own words for the same mistake
        [str(Path(sys.executable).parent / "tfrun"), "train.epochs=ten"],
        cwd=tmp_path,
        env=command_env(TFRUN_NO_PRESTART="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and f"  - {problem}\n" in proc.stderr, proc.stderr


def test_the_commands_end_is_seen_without_popens_lock(tmp_path: Path):
    """Popen.poll leaves its lock taken when a KeyboardInterrupt lands between its acquire and its `try`; the API
    then never saw the command end. It asks the kernel without reaping (waitid WNOWAIT), so wait() still reaps."""
    from tfrun.runner.api.command import _exited

    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    lock = proc._waitpid_lock  # CPython's; taken here as an interrupted poll left it
    assert lock.acquire()
    try:
        deadline = time.monotonic() + 30
        while not _exited(proc):
            assert time.monotonic() < deadline, "the command's end was never seen"
            time.sleep(0.05)
        assert proc.poll() is None, "with the lock taken, Popen.poll cannot see it"
    finally:
        lock.release()
    assert proc.returncode is None, "not reaped by _exited"
    assert proc.wait(timeout=10) == 3
    assert _exited(proc)
