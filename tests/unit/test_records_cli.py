"""tfrun-records on hand-written records: list, show, diff, error exits, rerun checks (no TensorFlow)."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import WEIGHTS, dead_pid, make_record, run_cli, write
from tfrun.runner.records import record as records
from tfrun.runner.records import rerun_cli


# ----------------------------------------------------------------------------------------- list
def test_list_table_sorted_by_start_time_with_overrides_metric_and_dir(tmp_path, capsys):
    later = make_record(
        run_id="run-later",
        started_at="2026-11-26T12:00:00.000+00:00",
        seconds=33.25,
        command={"argv": [], "overrides": ["model.n_hidden=3", "train.epochs=5"]},
    )
    earlier = make_record(run_id="run-earlier", started_at="2026-11-26T09:00:00.000+00:00")
    earlier["metrics"]["final"]["holdout_accuracy"] = 0.5
    write(tmp_path / "runs" / "a", later)  # written first, listed second
    write(tmp_path / "runs" / "b" / "nested", earlier)

    code, out, _ = run_cli(capsys, "list", str(tmp_path / "runs"))

    assert code == 0
    lines = [line for line in out.splitlines() if line.strip()]
    assert "holdout_accuracy" in lines[0] and "run dir" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["run-earlier", "run-later"]
    assert "model.n_hidden=3 train.epochs=5" in lines[2]
    assert "0.8528" in lines[2] and "0.5000" in lines[1]
    assert "33.2" in lines[2]
    assert str(tmp_path / "runs" / "a") in lines[2]
    assert str(tmp_path / "runs" / "b" / "nested") in lines[1]


def test_list_defaults_to_runs_and_multiruns_of_the_current_dir(tmp_path, capsys, monkeypatch):
    write(tmp_path / "runs" / "x", make_record(run_id="single-run"))
    write(tmp_path / "multiruns" / "s" / "0", make_record(run_id="sweep-trial"))
    write(tmp_path / "elsewhere" / "y", make_record(run_id="not-listed"))
    monkeypatch.chdir(tmp_path)

    code, out, _ = run_cli(capsys, "list")

    assert code == 0
    assert "single-run" in out and "sweep-trial" in out and "not-listed" not in out


def test_list_marks_running_records_whose_runner_died_as_stale(tmp_path, capsys):
    write(tmp_path / "dead", make_record(run_id="dead-run", status="running", pids={"runner": dead_pid()}))
    write(tmp_path / "alive", make_record(run_id="alive-run", status="running", pids={"runner": os.getpid()}))
    other_host = make_record(run_id="remote-run", status="running", pids={"runner": dead_pid()})
    other_host["environment"]["host"] = "not-" + socket.gethostname()
    write(tmp_path / "remote", other_host)

    code, out, _ = run_cli(capsys, "list", str(tmp_path))

    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "running (stale)" in rows["dead-run"]
    assert "running" in rows["alive-run"] and "stale" not in rows["alive-run"]
    assert "running" in rows["remote-run"] and "stale" not in rows["remote-run"]  # cannot tell from here


def test_list_json_rows(tmp_path, capsys):
    write(tmp_path / "r1", make_record(run_id="r1", status="running", pids={"runner": dead_pid()}))
    failed = make_record(run_id="r2", status="failed", started_at="2026-11-27T00:00:00.000+00:00")
    failed["metrics"]["final"] = {}
    write(tmp_path / "r2", failed)

    code, out, _ = run_cli(capsys, "list", "--json", str(tmp_path))

    assert code == 0
    rows = json.loads(out)
    assert [row["run_id"] for row in rows] == ["r1", "r2"]
    assert rows[0]["status"] == "running" and rows[0]["stale"] is True
    assert rows[0]["metric"] == "holdout_accuracy" and rows[0]["metric_value"] == 0.8527777791023254
    assert rows[0]["overrides"] == ["train.epochs=2"]
    assert rows[0]["run_dir"] == str(tmp_path / "r1")
    assert rows[1]["status"] == "failed" and rows[1]["stale"] is False and rows[1]["metric_value"] is None


def test_list_uses_the_configured_optimized_metric(tmp_path, capsys):
    data = make_record()
    data["config"]["optimized_metric"] = "val_loss"
    data["metrics"]["final"]["val_loss"] = 0.25
    write(tmp_path / "r", data)

    _, out, _ = run_cli(capsys, "list", str(tmp_path))

    assert "val_loss" in out.splitlines()[0] and "0.2500" in out


def test_list_skips_unreadable_records_and_reports_them(tmp_path, capsys):
    write(tmp_path / "good", make_record(run_id="good-run"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "record.json").write_text("{not json")

    code, out, err = run_cli(capsys, "list", str(tmp_path))

    assert code == 0 and "good-run" in out and str(tmp_path / "bad") in err


def test_list_missing_directory_exits_2_naming_it(tmp_path, capsys):
    code, _, err = run_cli(capsys, "list", str(tmp_path / "nowhere"))
    assert code == 2 and str(tmp_path / "nowhere") in err


# ----------------------------------------------------------------------------------------- show
def test_show_summarises_the_run(tmp_path, capsys):
    run = write(tmp_path / "run", make_record(command={"argv": [], "overrides": ["train.epochs=2", "model=cnn"]}))

    code, out, _ = run_cli(capsys, "show", str(run))

    assert code == 0
    expected = [
        "succeeded",
        "2026-11-26T10:00:00",
        "train.epochs=2 model=cnn",
        make_record()["config_sha256"][:12],
        "4edb82b4614f",
        "clean",
        "tensorflow 2.21.0",
        "3.11.7",
        "/device:CPU:0",
        "2 epoch(s); loss 1.1937",
        "1.71 s",
        "holdout_accuracy",
        "0.8528",
        "models/digits_mlp/0001",
        "222,248 bytes",
        "1c05cdd2992f",
        WEIGHTS,
    ]
    for text in expected:
        assert text in out, text
    assert "error" not in out.lower().split("steps")[0]
    # the record's config lacks keys today's schema has: the hash a rerun compares, retaken with them, is noted
    read = records.load(run)
    assert read["config_sha256"] != make_record()["config_sha256"]
    assert f"read as sha256 {read['config_sha256'][:12]}.., what a rerun compares" in out
    assert "config key(s) added at today's defaults: sweep, model._target_, model.dropout" in out


def test_show_failed_run_has_error_and_log_tail(tmp_path, capsys):
    error = {
        "type": "ValueError",
        "message": "bad shape",
        "step": "train",
        "exit_code": 1,
        "log_tail": ["Epoch 1/2", "ValueError: bad shape"],
        "traceback": "Traceback ...",
    }
    run = write(tmp_path / "run", make_record(status="failed", error=error, weights_sha256=None))

    code, out, _ = run_cli(capsys, "show", str(run / "record.json"))

    assert code == 0
    assert "failed" in out and "ValueError: bad shape" in out and "step train" in out
    assert "exit_code 1" in out and "    Epoch 1/2" in out


def test_show_json_dumps_the_record(tmp_path, capsys):
    data = make_record()
    run = write(tmp_path / "run", data)

    code, out, _ = run_cli(capsys, "show", "--json", str(run))

    assert code == 0 and json.loads(out) == records.load(run)  # read as today's: keys added, hash retaken
    shown = json.loads(out)
    assert shown["config_keys_added"]["config_sha256"] == data["config_sha256"]
    assert {
        k: v for k, v in shown.items() if k not in ("config", "config_sha256", "resume_key", "config_keys_added")
    } == {k: v for k, v in data.items() if k not in ("config", "config_sha256", "resume_key")}


# ----------------------------------------------------------------------------------------- diff
def test_diff_names_config_metric_weight_code_and_package_differences(tmp_path, capsys):
    a = make_record()
    b = copy.deepcopy(a)
    b["config"]["train"]["learning_rate"] = 0.01
    b["config"]["model"]["dropout"] = 0.2
    b["config_sha256"] = records.config_hash(b["config"])
    b["metrics"]["final"]["holdout_accuracy"] = 0.9
    b["weights_sha256"] = "ff" * 32
    b["code"]["git_dirty"] = True
    b["environment"]["packages"]["numpy"] = "2.0.0"
    write(tmp_path / "a", a)
    write(tmp_path / "b", b)

    code, out, _ = run_cli(capsys, "diff", str(tmp_path / "a"), str(tmp_path / "b"))

    assert code == 1  # as `diff`: the runs differ
    assert "config.train.learning_rate: 0.001 != 0.01" in out
    assert "config.model.dropout: 0.0 != 0.2" in out  # a's read with the key at mlp's default
    assert "metrics.final.holdout_accuracy: 0.8527777791023254 != 0.9" in out
    assert f"weights_sha256: {WEIGHTS[:12]}.. != ffffffffffff.." in out
    assert "code.git_dirty: false != true" in out
    assert "environment.packages.numpy: 2.4.6 != 2.0.0" in out
    assert "config.train.epochs" not in out and "no differences" not in out


def test_diff_of_equal_runs_says_no_differences(tmp_path, capsys):
    a = make_record()
    b = make_record(run_id="other", started_at="2026-11-27T10:00:00.000+00:00", seconds=99.0)  # not compared
    write(tmp_path / "a", a)
    write(tmp_path / "b", b)

    code, out, _ = run_cli(capsys, "diff", str(tmp_path / "a"), str(tmp_path / "b" / "record.json"))

    assert code == 0 and out.strip() == "no differences"


def test_diff_tells_int_from_float(tmp_path, capsys):
    a = make_record()
    b = copy.deepcopy(a)
    b["config"]["train"]["epochs"] = 2.0
    write(tmp_path / "a", a)
    write(tmp_path / "b", b)

    _, out, _ = run_cli(capsys, "diff", str(tmp_path / "a"), str(tmp_path / "b"))

    assert "config.train.epochs: 2 != 2.0" in out


def test_flatten_makes_dotted_keys():
    assert records.flatten({"a": {"b": 1, "c": {"d": [1, 2]}, "e": {}}, "f": None}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "a.e": {},
        "f": None,
    }


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("command", [["show"], ["diff", "OTHER"], ["diff", "FIRST"], ["rerun"]])
def test_a_path_without_a_record_exits_2_naming_it(tmp_path, capsys, command):
    existing = write(tmp_path / "exists", make_record())
    missing = tmp_path / "empty_run_dir"
    missing.mkdir()
    argv = [c for c in command if c not in ("OTHER", "FIRST")]
    if command[-1] == "OTHER":
        argv += [str(existing), str(missing)]
    elif command[-1] == "FIRST":
        argv += [str(missing), str(existing)]
    else:
        argv += [str(missing)]

    code, out, err = run_cli(capsys, *argv)

    assert code == 2
    assert str(missing) in err and "record.json" in err


def test_a_corrupt_record_exits_2_naming_it(tmp_path, capsys):
    (tmp_path / "record.json").write_text("[1, 2")
    code, _, err = run_cli(capsys, "show", str(tmp_path / "record.json"))
    assert code == 2 and str(tmp_path / "record.json") in err


def test_records_cli_imports_neither_tensorflow_nor_rich():
    code = textwrap.dedent("""
        import sys
        import tfrun.runner.records_cli
        assert "tensorflow" not in sys.modules and "rich" not in sys.modules and "hydra" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rerun_refuses_a_running_record(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record(status="running", pids={"runner": os.getpid()}))
    fake_tfrun.will_write(make_record())

    code, _, err = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 2 and "running" in err and str(run) in err
    assert fake_tfrun.argv is None  # nothing was started


def test_rerun_refuses_a_stale_running_record(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record(status="running", pids={"runner": dead_pid()}))
    fake_tfrun.will_write(make_record())

    code, _, err = run_cli(capsys, "rerun", str(run))

    assert code == 2 and "stale" in err and fake_tfrun.argv is None


def test_rerun_refuses_redacted_overrides(tmp_path, capsys, fake_tfrun):
    overrides = ["train.epochs=2", f"cloud.api_key={records.REDACTED}"]
    run = write(tmp_path / "run", make_record(command={"argv": [], "overrides": overrides}))
    fake_tfrun.will_write(make_record())

    code, _, err = run_cli(capsys, "rerun", str(run))

    assert code == 2 and "redacted" in err and "cloud.api_key" in err and fake_tfrun.argv is None


def test_rerun_refuses_to_overwrite_an_existing_record(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record())
    fake_tfrun.will_write(make_record())

    code, _, err = run_cli(capsys, "rerun", str(run), "--run-dir", str(run))

    assert code == 2 and "already" in err and fake_tfrun.argv is None


def test_rerun_replays_overrides_into_a_new_run_dir_and_verifies(tmp_path, capsys, fake_tfrun):
    original = make_record(command={"argv": [], "overrides": ["train.epochs=2", "model=[a, b]"]})
    run = write(tmp_path / "runs" / "a", original)
    fake_tfrun.will_write(make_record(run_id="the-rerun"))

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 0, out
    assert "verified: identical metrics and weights" in out and "warning" not in out
    assert fake_tfrun.argv[:2] == ["train.epochs=2", "model=[a, b]"]
    rerun_dir = Path(fake_tfrun.argv[2].removeprefix("hydra.run.dir="))
    assert rerun_dir.parent == run / "reruns"
    assert records.load(rerun_dir)["run_id"] == "the-rerun"


def test_rerun_verify_names_each_differing_metric_and_the_weights(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record())
    new = make_record(weights_sha256="cd34" * 16)
    new["metrics"]["final"]["holdout_accuracy"] = 0.97
    new["metrics"]["final"]["loss"] = 1.2
    fake_tfrun.will_write(new)

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify", "--run-dir", str(tmp_path / "again"))

    assert code == 1
    assert "metrics.final.holdout_accuracy: 0.8527777791023254 != 0.97" in out
    assert "metrics.final.loss: 1.19 != 1.2" in out
    assert f"weights_sha256: {WEIGHTS[:12]}.. != cd34cd34cd34.." in out
    assert "metrics.final.accuracy" not in out and "verified" not in out
    assert fake_tfrun.argv[-1] == f"hydra.run.dir={tmp_path / 'again'}"


def test_rerun_verify_fails_when_the_rerun_failed(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record())
    fake_tfrun.will_write(make_record(status="failed"), exit_code=1)

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 1 and "did not succeed" in out and "verified" not in out


def test_rerun_warns_naming_config_keys_that_differ(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record())
    new = make_record()
    new["config"]["train"]["learning_rate"] = 0.002
    new["config_sha256"] = records.config_hash(new["config"])
    fake_tfrun.will_write(new)

    code, out, _ = run_cli(capsys, "rerun", str(run))

    assert code == 0
    assert "warning" in out and "config.train.learning_rate: 0.001 != 0.002" in out


def test_rerun_that_leaves_no_record_fails(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record())
    fake_tfrun.will_write(None, exit_code=2)

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 2 and "left no record" in out and "verified" not in out


def test_rerun_without_verify_returns_tfruns_exit_code(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record())
    new = make_record(status="interrupted")
    new["metrics"]["final"]["holdout_accuracy"] = 0.1  # not checked without --verify
    fake_tfrun.will_write(new, exit_code=130)

    code, out, _ = run_cli(capsys, "rerun", str(run))

    assert code == 130 and "verified" not in out


def test_rerun_quotes_a_run_dir_hydra_could_not_parse(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record())
    fake_tfrun.will_write(make_record())

    code, _, _ = run_cli(capsys, "rerun", str(run), "--run-dir", str(tmp_path / "a b,c"))

    assert code == 0
    assert fake_tfrun.argv[-1] == f"hydra.run.dir='{tmp_path / 'a b,c'}'"


def test_tfrun_command_is_this_pythons_tfrun():
    cmd = rerun_cli.tfrun_command()
    assert cmd[0] == sys.executable
    assert cmd[1] == str(Path(sys.executable).parent / "tfrun")
