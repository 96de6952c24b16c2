"""tfrun-records and a user's code: diff names each changed file, rerun --verify fails on other code, show lists
it, and rerun / resume / a sweep's reproduce line keep the --config-dir that found the user's options."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.helpers import make_record, run_cli, write
from tfrun.runner.config import dirs as config_dirs

USER = {
    "model": {
        "target": "mymodels.build",
        "file": "mymodels.py",
        "sha256": "aa" * 32,
        "git_commit": "c1" * 20,
        "git_dirty": False,
        "git_diff_sha256": None,
    },
    "data": {
        "target": "mydata.load",
        "file": "mydata.py",
        "sha256": "bb" * 32,
        "git_commit": "c1" * 20,
        "git_dirty": False,
        "git_diff_sha256": None,
    },
}


def user_record(**user_changes: dict) -> dict:
    record = make_record(
        command={"argv": ["tfrun", "--config-dir", "my_conf", "model=tiny"], "overrides": ["model=tiny"]}
    )
    user = copy.deepcopy(USER)
    for key, change in user_changes.items():
        user[key].update(change)
    record["code"]["user"] = user
    return record


def test_diff_names_the_user_file_that_changed(tmp_path, capsys):
    a = write(tmp_path / "a", user_record())
    b = write(tmp_path / "b", user_record(model={"sha256": "cc" * 32, "git_dirty": True}))

    code, out, _ = run_cli(capsys, "diff", str(a), str(b))

    assert code == 1  # they differ
    assert "code.user.model.sha256: aaaaaaaaaaaa.. != cccccccccccc.." in out
    assert "code.user.model.git_dirty: false != true" in out
    assert "code.user.data" not in out


def test_rerun_verify_fails_when_the_user_code_differs_and_keeps_the_config_dir(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", user_record())
    fake_tfrun.will_write(user_record(data={"sha256": "dd" * 32}))

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 1
    assert "code.user.data.sha256: bbbbbbbbbbbb.. != dddddddddddd.." in out and "verified" not in out
    assert fake_tfrun.argv[:2] == ["--config-dir=my_conf", "model=tiny"]


def test_rerun_verify_passes_on_the_same_user_code_whatever_its_commit(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", user_record())
    fake_tfrun.will_write(user_record(model={"git_commit": "c2" * 20}))  # committed since: same file bytes

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 0, out
    assert "verified: identical metrics and weights, from the same user code" in out


def test_show_lists_the_users_code(tmp_path, capsys):
    run = write(tmp_path / "run", user_record(model={"git_dirty": True}))

    code, out, _ = run_cli(capsys, "show", str(run))

    assert code == 0
    assert "user code  model: mymodels.build in mymodels.py, sha256 aaaaaaaaaaaa.., git c1c1c1c1c1c1.. (dirty)" in out
    assert "user code  data: mydata.load in mydata.py" in out


@pytest.mark.parametrize(
    "argv, flags",
    [
        (["tfrun", "--config-dir", "my_conf", "model=tiny"], ["--config-dir=my_conf"]),
        (["tfrun", "-cd", "a b", "-cn", "other", "x=1"], ["--config-dir=a b", "--config-name=other"]),
        (["tfrun", "--config-path=/abs/conf", "-m", "a=1,2"], ["--config-path=/abs/conf"]),
        (["tfrun", "model=tiny"], []),
    ],
)
def test_config_source_flags_are_read_from_a_recorded_argv(argv: list[str], flags: list[str]):
    assert config_dirs.from_argv(argv) == flags


def test_config_dirs_of_a_sweep_come_from_its_multirun_manifest():
    manifest = {
        "hydra": {
            "runtime": {
                "config_sources": [
                    {"path": "hydra.conf", "schema": "pkg", "provider": "hydra"},
                    {"path": "/work/conf", "schema": "file", "provider": "main"},
                    {"path": "/home/me/project/conf", "schema": "file", "provider": "command-line"},
                ]
            }
        }
    }
    assert config_dirs.from_multirun(manifest) == ["--config-dir=/home/me/project/conf"]


def test_the_sweep_reproduce_line_keeps_the_config_dir(tmp_path: Path):
    from tfrun.runner.sweeps.summary import summarise

    for job, units in (("0", 8), ("1", 32)):
        record = user_record()
        record["command"] = {
            "argv": ["tfrun", "-m", "--config-dir", "conf", "model.units=8,32"],
            "overrides": ["experiment=wine", f"model.units={units}"],
        }
        record["metrics"]["final"]["holdout_accuracy"] = units / 100
        write(tmp_path / job, record)
    assert summarise(tmp_path).best_command() == "tfrun --config-dir=conf experiment=wine model.units=32"
