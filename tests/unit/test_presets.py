"""Presets (`experiment=NAME`, conf/experiment/): several groups and values at once, through the real CLI.

A preset is a `# @package _global_` file whose defaults list overrides other groups' choices; values
given on the command line win over the preset's. A preset that names an option a group does not
have ends with exit 2 in tfrun's config-error format, naming the preset, the key and the options.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import tfrun
from tfrun.runner.config.validate import validate

SHIPPED = ("digits_tflite_int8", "fashion_cnn_mirrored")


def job_config(*args: str, cwd: Path) -> dict:
    proc = tfrun("--cfg", "job", *args, cwd=cwd, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return yaml.safe_load(proc.stdout)


def write_preset(folder: Path, name: str, text: str) -> Path:
    path = folder / "experiment" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# @package _global_\n" + text)
    return path


def test_the_int8_preset_sets_target_and_quantization(tmp_path: Path):
    cfg = job_config("experiment=digits_tflite_int8", cwd=tmp_path)
    assert cfg["data"]["name"] == "digits" and cfg["model"]["name"] == "mlp"
    assert cfg["target"]["name"] == "tflite"
    assert cfg["target"]["quantization"] == "int8" and cfg["target"]["int8_io"] == "int8"


def test_the_command_line_wins_over_the_preset(tmp_path: Path):
    cfg = job_config("experiment=digits_tflite_int8", "target.quantization=dynamic", "model=cnn", cwd=tmp_path)
    assert cfg["target"]["name"] == "tflite" and cfg["target"]["quantization"] == "dynamic"
    assert cfg["model"]["name"] == "cnn"  # a group chosen on the command line beats the preset's override
    cfg = job_config("experiment=fashion_cnn_mirrored", "hardware.logical_devices=4", "train.epochs=1", cwd=tmp_path)
    assert cfg["hardware"]["logical_devices"] == 4 and cfg["train"]["epochs"] == 1


def test_the_mirrored_preset_sets_data_model_strategy_and_devices(tmp_path: Path):
    cfg = job_config("experiment=fashion_cnn_mirrored", cwd=tmp_path)
    assert (cfg["data"]["name"], cfg["model"]["name"], cfg["strategy"]["name"]) == ("fashion_mnist", "cnn", "mirrored")
    assert cfg["hardware"]["logical_devices"] == 2 and cfg["train"]["batch_size"] % 2 == 0


def test_no_preset_by_default(tmp_path: Path):
    plain, hydra = job_config(cwd=tmp_path), yaml.safe_load(tfrun("--cfg", "hydra", cwd=tmp_path).stdout)
    assert hydra["hydra"]["runtime"]["choices"]["experiment"] is None
    assert plain["target"]["name"] == "none" and plain["strategy"]["name"] == "default"
    assert "experiment" not in plain


def test_shipped_presets_pass_validation(compose_cfg, tmp_path: Path):
    config = validate(compose_cfg("experiment=digits_tflite_int8"))
    assert config.target.quantization.value == "int8"
    fashion = tmp_path / "fashion"
    fashion.mkdir()
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (fashion / name).write_bytes(b"")
    config = validate(compose_cfg("experiment=fashion_cnn_mirrored", f"data.path={fashion}"))
    assert config.strategy.name == "mirrored" and config.hardware.logical_devices == 2


def test_help_lists_the_presets_and_a_users_own(tmp_path: Path):
    write_preset(tmp_path / "my_conf", "mine", "train:\n  epochs: 3\n")
    line = next(x for x in tfrun("--help", cwd=tmp_path).stdout.splitlines() if x.strip().startswith("experiment:"))
    assert "(none)" in line and all(name in line for name in SHIPPED) and "mine" not in line
    line = next(
        x
        for x in tfrun("--config-dir", "my_conf", "--help", cwd=tmp_path).stdout.splitlines()
        if x.strip().startswith("experiment:")
    )
    assert "mine" in line


@pytest.mark.parametrize("how", ["--config-dir", "-cd", "hydra.searchpath"])
def test_help_lists_a_users_groups_and_options_marked_with_their_folder(tmp_path: Path, how: str):
    """A user's option of a tfrun group, and a group only the user has, each marked with the folder it is in."""
    for name in ("model/tiny.yaml", "optimizer/adam.yaml", "optimizer/sgd.yaml", "optimizer/fancy/lamb.yaml"):
        (tmp_path / "my_conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "my_conf" / name).write_text("{}\n")
    folder = "my_conf" if how != "hydra.searchpath" else str(tmp_path / "my_conf")
    where = [how, folder] if how != "hydra.searchpath" else [f"hydra.searchpath=[file://{folder}]"]
    lines = {
        x.split(":")[0].strip(): x
        for x in tfrun(*where, "--help", cwd=tmp_path).stdout.splitlines()
        if x.startswith("  ") and ":" in x
    }
    assert lines["model"].split(":", 1)[1].strip().split(", ")[:2] == ["mlp", "cnn"]
    assert f"tiny (from {folder})" in lines["model"] and "mlp (from" not in lines["model"]
    assert f"adam (from {folder}), sgd (from {folder})" in lines["optimizer"]
    assert f"lamb (from {folder})" in lines["optimizer/fancy"]
    assert "optimizer" not in tfrun("--help", cwd=tmp_path).stdout


@pytest.mark.parametrize("how", ["--config-dir", "hydra.searchpath"])
def test_a_users_own_preset(tmp_path: Path, how: str):
    write_preset(
        tmp_path / "my_conf",
        "mine",
        "defaults:\n  - override /model: cnn\n  - override /target: tflite\n"
        "model:\n  filters: [8]\ntarget:\n  quantization: float16\n"
        "train:\n  epochs: 3\n",
    )
    where = (
        ["--config-dir", "my_conf"] if how == "--config-dir" else [f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]"]
    )
    cfg = job_config(*where, "experiment=mine", "train.epochs=4", cwd=tmp_path)
    assert cfg["model"]["name"] == "cnn" and cfg["model"]["filters"] == [8]
    assert cfg["target"]["quantization"] == "float16" and cfg["train"]["epochs"] == 4


def test_a_preset_naming_an_unknown_option_is_a_config_error(tmp_path: Path):
    write_preset(tmp_path / "my_conf", "typo", "defaults:\n  - override /data: fashion_mnistt\n")
    proc = tfrun("--config-dir", "my_conf", "experiment=typo", "train.epochs=1", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr
    assert err.startswith("tfrun: invalid configuration (nothing was run):\n"), err
    assert "  - data='fashion_mnistt' is not allowed: expected one of digits, fashion_mnist, files, mnist" in err
    assert "preset experiment=typo" in err and "override /data: fashion_mnistt" in err
    assert "my_conf/experiment/typo.yaml" in err
    assert "Traceback" not in err and "HYDRA_FULL_ERROR" not in err and "Config search path" not in err
    assert not (tmp_path / "runs").exists()


def test_an_unknown_preset_lists_the_presets(tmp_path: Path):
    proc = tfrun("experiment=digits_tflite_int9", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        "  - experiment='digits_tflite_int9' is not allowed: expected one of digits_tflite_int8, "
        "fashion_cnn_mirrored (given on the command line" in proc.stderr
    )


def test_an_unknown_option_on_the_command_line_says_so(tmp_path: Path):
    proc = tfrun("experiment=digits_tflite_int8", "target=tflight", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert (
        "  - target='tflight' is not allowed: expected one of none, tflite, tfserving, vertex_batch, "
        "vertex_endpoint, web (given on the command line" in proc.stderr
    )


@pytest.mark.parametrize(
    "body, expected",
    [
        ("train:\n  epoch: 5\n", ["In 'experiment/bad'", "Key 'epoch' not in 'TrainConfig'", "full_key: train.epoch"]),
        (
            "defaults:\n  - override /target: tflite\ntarget:\n  quantization: int4\n",
            ["In 'experiment/bad'", "Invalid value 'int4', expected one of [none, dynamic, float16, int8]"],
        ),
        ("defaults:\n  - /data: fashion_mnist\n", ["Multiple values for data", "(with preset experiment=bad)"]),
    ],
)
def test_other_preset_mistakes_are_config_errors(tmp_path: Path, body: str, expected: list[str]):
    write_preset(tmp_path / "my_conf", "bad", body)
    proc = tfrun("--config-dir", "my_conf", "experiment=bad", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("tfrun: invalid configuration (nothing was run):\n  - "), proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_key_the_schema_lacks_on_the_command_line_is_named_with_close_matches(tmp_path: Path):
    proc = tfrun("train.epoch=3", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "  - train.epoch='3' is not allowed: expected a key of train: epochs, batch_size" in proc.stderr
    assert "(did you mean train.epochs?)" in proc.stderr and "Traceback" not in proc.stderr


def test_a_preset_chosen_with_plus_says_to_drop_it(tmp_path: Path):
    proc = tfrun("+experiment=digits_tflite_int8", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert (
        "  - +experiment='digits_tflite_int8' is not allowed: expected experiment=digits_tflite_int8, "
        "without '+'" in proc.stderr
    ), proc.stderr
