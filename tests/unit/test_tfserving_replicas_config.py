"""target=tfserving's replicas, version labels and split: the rules, nginx's config (checked by the real nginx),
its access log, the replicas' model config files, tfrun-serve's refused flags. No TensorFlow here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import command_env
from tfrun.runner.config.validate import validate
from tfrun.tasks.core.problems import ConfigError
from tfrun.tasks.core.serving_backends import nginx_path
from tfrun.tasks.tfserving.balancer import Upstream, config_text, count, split_lines
from tfrun.tasks.tfserving.config import parse_model_config_text
from tfrun.tasks.tfserving.replicas import model_config_text


def _problems(compose_cfg, *overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg("target=tfserving", *overrides))
    return [p.key for p in info.value.problems]


def test_replicas_labels_and_split_validate(compose_cfg):
    config = validate(
        compose_cfg(
            "target=tfserving",
            "target.replicas=3",
            "+target.version_labels={stable:new,canary:new}",
            "+target.split={stable:90,canary:10}",
        )
    )
    assert config.target.replicas == 3 and config.target.balanced
    assert dict(config.target.split) == {"stable": 90, "canary": 10}
    assert not validate(compose_cfg("target=tfserving")).target.balanced  # one server, no nginx: as before


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["target.replicas=0"], "target.replicas"),
        (["target.replicas=17"], "target.replicas"),
        (["+target.version_labels={stable:new}", "+target.split={stable:90}"], "target.split"),
        (["+target.version_labels={stable:new}", "+target.split={stable:90,canary:10}"], "target.split.canary"),
        (["+target.version_labels={stable:latest}"], "target.version_labels.stable"),
        (["+target.version_labels={stable:41}"], "target.version_labels.stable"),  # no version 41 on disk
        (
            ["target.replicas=2", "target.attach=true", "target.grpc_port=8500", "target.rest_port=8501"],
            "target.attach",
        ),
        (
            ["+target.version_labels={a:new}", "+target.split={a:100}", "target.split_tolerance=0"],
            "target.split_tolerance",
        ),
    ],
)
def test_bad_group_values_are_config_errors(compose_cfg, overrides: list[str], key: str):
    assert key in _problems(compose_cfg, *overrides)


def test_serve_replicas_rules(compose_cfg, monkeypatch):
    assert validate(compose_cfg("job=serve", "serve.replicas=3")).serve.replicas == 3
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg("job=serve", "serve.replicas=0", "serve.model_config_file=x.config"))
    assert {"serve.replicas", "serve.model_config_file"} <= {p.key for p in info.value.problems}
    monkeypatch.setenv("TFRUN_NGINX", "/nonexistent/nginx")
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg("job=serve", "serve.replicas=2"))
    assert [p.key for p in info.value.problems] == ["serve.replicas"]


def test_a_label_must_not_be_a_number():
    from tfrun.tasks.core.schema import TfservingTarget

    keys = [p.key for p in TfservingTarget(version_labels={"7": "new", "ok-label_2": "3"}).group_problems()]
    assert keys == ["target.version_labels"]


def test_a_missing_nginx_is_a_config_error_naming_the_set_up_script(compose_cfg, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda *a, **k: None)
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg("target=tfserving", "target.replicas=2"))
    (problem,) = [p for p in info.value.problems if p.key == "target.replicas"]
    assert "nginx is not installed" in problem.allowed and "scripts/serving_setup.sh" in problem.allowed


def test_split_clients_lines_keep_positive_shares_and_end_with_the_remainder():
    assert split_lines({"stable": 90, "canary": 10}) == ["        90% stable;", "        * canary;"]
    assert split_lines({"a": 0, "b": 100}) == ["        * b;"]


@pytest.mark.parametrize("split", [None, {"stable": 90, "canary": 10}])
def test_nginx_accepts_the_balancer_config(tmp_path: Path, split):
    binary = nginx_path()
    assert binary, "nginx is not installed: run scripts/serving_setup.sh"
    (tmp_path / "tmp").mkdir()
    upstreams = [Upstream("127.0.0.1", 9001, 9002), Upstream("127.0.0.1", 9003, 9004)]
    text = config_text(tmp_path, upstreams, rest_port=9100, grpc_port=9101, split=split)
    (tmp_path / "nginx.conf").write_text(text)
    assert "listen 127.0.0.1:9100;" in text and "listen 127.0.0.1:9101 http2;" in text and "grpc_pass" in text
    assert ("split_clients" in text) == bool(split) and ("x-tfrun-version-label" in text) == bool(split)
    checked = subprocess.run(
        [binary, "-t", "-e", str(tmp_path / "e.log"), "-c", str(tmp_path / "nginx.conf"), "-p", f"{tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


def test_access_log_counts_requests_per_replica_and_rest_label(tmp_path: Path):
    upstreams = [Upstream("127.0.0.1", 9001, 9002), Upstream("127.0.0.1", 9003, 9004)]
    (tmp_path / "access.log").write_text(
        "1.0 9100 200 stable /v1/models/m/labels/stable:predict 127.0.0.1:9002\n"
        "1.1 9100 200 canary /v1/models/m/labels/canary:predict 127.0.0.1:9004\n"
        "1.2 9101 200 stable /tensorflow.serving.PredictionService/Predict 127.0.0.1:9001\n"
        "1.3 9101 200 - /tensorflow.serving.PredictionService/Predict 127.0.0.1:9003, 127.0.0.1:9001\n"
        "1.4 9100 200 - /v1/models/m/versions/1:predict 127.0.0.1:9002\n"
        "1.5 9100 502 - /v1/models/m:predict -\n"
    )
    counts = count(tmp_path / "access.log", upstreams)
    assert counts.replicas == {0: {"rest": 2, "grpc": 2}, 1: {"rest": 1}}
    assert counts.rest_labels == {"stable": 1, "canary": 1}
    assert counts.statuses == {"200": 5, "502": 1}


def test_replica_model_config_is_tf_servings_format_with_labels():
    text = model_config_text("digits_mlp", "/srv/models/digits_mlp", [2, 1, 2], {"stable": 1, "canary": 2})
    (config,) = parse_model_config_text(text)
    assert config.name == "digits_mlp" and config.base_path == "/srv/models/digits_mlp"
    assert config.policy.kind == "specific" and config.policy.versions == (1, 2)
    assert config.labels == {"stable": 1, "canary": 2}


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--port=99999", "--model_base_path=models/m"], "--port=99999 is not a port"),
        (["--rest_api_port=-1", "--model_base_path=models/m"], "--rest_api_port=-1 is not a port"),
        (["--port=8500", "--rest_api_port=8500", "--model_base_path=models/m"], "give two ports"),
        (["--model_name=a/b", "--model_base_path=models/m"], "is not a model name"),
        (["--model_name=..", "--model_base_path=models/m"], "is not a model name"),
        (["--model_name=x..y", "--model_base_path=models/m"], "is not a model name"),
    ],
)
def test_tfrun_serve_refuses_bad_ports_and_model_names_with_exit_2(tmp_path: Path, flags: list[str], words: str):
    proc = subprocess.run(
        [sys.executable, "-m", "tfrun.runner.serve_cli", *flags],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=command_env(),
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------- job=promote target=tfserving
def _version(tmp_path: Path, number: str = "0002") -> Path:
    folder = tmp_path / "models" / "digits_mlp" / number
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    return folder


def test_tfserving_promoter_handles_version_folders_with_target_tfserving(tmp_path: Path):
    from tfrun.tasks import promote

    folder = _version(tmp_path)
    chosen = promote.for_source(str(folder), "tfserving")
    assert chosen is not None and chosen.name == "tfserving"
    for source, target in (("models:/digits_mlp/2", "tfserving"), (str(folder), "none")):
        other = promote.for_source(source, target)
        assert other is None or other.name != "tfserving"


def test_promote_label_rules_and_no_running_group_is_exit_2(compose_cfg, tmp_path: Path):
    from tfrun.runner.config import promote as promote_rules

    folder = _version(tmp_path)
    config = validate(compose_cfg("job=promote", "target=tfserving", f"source={folder}", "alias=stable"))
    with pytest.raises(ConfigError) as info:
        promote_rules.check(config)
    (problem,) = info.value.problems
    assert problem.key == "source" and "no replica group serves digits_mlp" in problem.allowed
    assert "alias" in _problems(compose_cfg, "job=promote", f"source={folder}", "alias=7")
    assert "source" in _problems(compose_cfg, "job=promote", f"source={folder.parent / '0009'}", "alias=stable")
