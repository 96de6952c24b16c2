"""target=tfserving, job=serve and job=rollback configs; TF Serving's config files; the repository; no heavy
imports on the fast paths. No TensorFlow here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import command_env, tfrun
from tfrun.runner.config.validate import validate
from tfrun.runner.steps import STEPS
from tfrun.tasks.core import schema
from tfrun.tasks.core.plans import JOB_STEPS, plan
from tfrun.tasks.core.problems import ConfigError
from tfrun.tasks.tfserving import repository
from tfrun.tasks.tfserving.config import (
    BatchingParameters,
    VersionPolicy,
    configs_to_proto,
    parse_batching_parameters,
    parse_model_config_text,
)
from tfrun.tasks.tfserving.status import Code, ServingError


# ---------------------------------------------------------------------------------------- schema
def test_tfserving_target_defaults_bind_loopback_on_free_ports(compose_cfg):
    config = validate(compose_cfg("target=tfserving"))
    target = config.target
    assert (
        isinstance(target, schema.TfservingTarget) and schema.SCHEMAS["target"]["tfserving"] is schema.TfservingTarget
    )
    assert target.host == "127.0.0.1" and target.grpc_port == 0 and target.rest_port == 0
    assert target.server is schema.ServingServer.auto and target.keep_running is False
    assert target.base_path == "models" and target.parity_atol == 0.0
    assert plan("train", target.steps)[-5:] == list(schema.TFSERVING_STEPS)
    assert all(STEPS[s].startswith("tfrun.tasks.tfserving.steps:") for s in schema.TFSERVING_STEPS)


def test_serve_and_rollback_jobs_plan_without_training(compose_cfg, tmp_path: Path):
    config = validate(compose_cfg("job=serve", "target=tfserving"))
    assert config.job is schema.Job.serve and config.serve.grpc_port == 8500 and config.serve.rest_port == 8501
    assert config.serve.model_name == "digits_mlp" and config.serve.host == "127.0.0.1"
    assert JOB_STEPS["serve"] == ["tfserving_serve"] and JOB_STEPS["rollback"] == ["tfserving_rollback"]
    for version in ("0001", "0002"):  # validation asks the repository for a version to roll back to
        (tmp_path / "digits_mlp" / version).mkdir(parents=True)
    config = validate(
        compose_cfg(
            "job=rollback", "rollback.to_version=1", "rollback.url=http://127.0.0.1:8501", f"models_dir={tmp_path}"
        )
    )
    assert config.rollback.to_version == 1 and config.rollback.base_path == str(tmp_path)
    with pytest.raises(ConfigError, match="a repository with a version to roll back to"):
        validate(compose_cfg("job=rollback", f"models_dir={tmp_path / 'none'}"))


BAD = [
    (["target=tfserving", "target.grpc_port=70000"], "target.grpc_port"),
    (["target=tfserving", "target.grpc_port=9000", "target.rest_port=9000"], "target.rest_port"),
    (["target=tfserving", "target.attach=true"], "target.grpc_port"),
    (
        [
            "target=tfserving",
            "target.attach=true",
            "target.keep_running=true",
            "target.grpc_port=1",
            "target.rest_port=2",
        ],
        "target.keep_running",
    ),
    (["target=tfserving", "target.batching.max_batch_size=0"], "target.batching.max_batch_size"),
    (["target=tfserving", "target.batching.allowed_batch_sizes=[8,4]"], "target.batching.allowed_batch_sizes"),
    (["target=tfserving", "target.latency_requests=1"], "target.latency_requests"),
    (["target=tfserving", "target.parity_atol=-1"], "target.parity_atol"),
    (["target=tfserving", "target.steps=[tfserving_parity,tfserving_push]"], "target.steps"),
    (["target=tfserving", "target.max_request_bytes=10"], "target.max_request_bytes"),
    (["target=tfserving", "target.host="], "target.host"),
    (["job=serve", "serve.model_config_file=/nowhere/models.config"], "serve.model_config_file"),
    (["job=serve", "serve.duration_s=0"], "serve.duration_s"),
    (["job=rollback", "rollback.url=localhost:8501"], "rollback.url"),
]


@pytest.mark.parametrize("overrides, key", BAD)
def test_bad_serving_values_are_config_errors(compose_cfg, overrides: list[str], key: str):
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg(*overrides))
    assert key in {p.key for p in info.value.problems}, info.value.problems


def test_bad_server_choice_exits_2_through_tfrun(workdir: Path):
    proc = tfrun("target=tfserving", "target.server=kubernetes", "hydra.run.dir=runs/bad", cwd=workdir, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "kubernetes" in proc.stderr and "embedded" in proc.stderr
    assert not (workdir / "runs" / "bad").exists()


# --------------------------------------------------------------------------------- config files
def test_model_config_file_policies_and_labels(tmp_path: Path):
    configs = parse_model_config_text(
        """
        model_config_list {
          config { name: "a" base_path: "/models/a" model_platform: "tensorflow" }
          config { name: "b" base_path: "rel/b" model_version_policy { all {} } }
          config { name: "c" base_path: "/models/c"
                   model_version_policy { specific { versions: 1 versions: 3 } }
                   version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 3 } }
          config { name: "d" base_path: "/models/d" model_version_policy { latest { num_versions: 2 } } }
        }""",
        relative_to=tmp_path,
    )
    a, b, c, d = configs
    assert a.policy == VersionPolicy() and a.policy.aspired([1, 2, 3]) == {3}
    assert b.base_path == str(tmp_path / "rel" / "b") and b.policy.aspired([1, 2]) == {1, 2}
    assert c.policy.aspired([1, 2, 3, 4]) == {1, 3} and c.labels == {"stable": 1, "canary": 3}
    assert d.policy.aspired([5, 1, 9]) == {5, 9} and VersionPolicy().aspired([]) == set()
    again = parse_model_config_text(str(configs_to_proto(configs)), relative_to=tmp_path)
    assert [x.policy for x in again] == [x.policy for x in configs] and again[2].labels == c.labels
    with pytest.raises(ServingError) as info:
        parse_model_config_text("model_config_list { config { name: 1 } ")
    assert info.value.code is Code.INVALID_ARGUMENT


def test_batching_parameters_file():
    params = parse_batching_parameters("""
        # TF Serving's format
        max_batch_size { value: 32 }
        batch_timeout_micros { value: 500 }
        max_enqueued_batches { value: 100 }
        num_batch_threads { value: 4 }
        allowed_batch_sizes: 8
        allowed_batch_sizes: 32
        pad_variable_length_inputs: true
    """)
    assert (
        params.max_batch_size,
        params.batch_timeout_micros,
        params.max_enqueued_batches,
        params.num_batch_threads,
        params.allowed_batch_sizes,
    ) == (32, 500, 100, 4, [8, 32])
    assert parse_batching_parameters(params.to_text()).allowed_batch_sizes == [8, 32]
    with pytest.raises(ServingError, match="Last entry in allowed_batch_sizes must match max_batch_size"):
        parse_batching_parameters("max_batch_size { value: 16 } allowed_batch_sizes: 8")
    with pytest.raises(ServingError, match="unknown field"):
        parse_batching_parameters("max_batch_sise { value: 16 }")
    assert BatchingParameters().max_batch_size == 1000 and BatchingParameters().batch_timeout_micros == 0


# ------------------------------------------------------------------------------------ repository
def _fake_export(folder: Path, marker: str) -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.index").write_text(marker)
    (folder / "saved_model.pb").write_text(marker)
    return folder


def test_push_keeps_in_place_exports_and_copies_others(tmp_path: Path):
    model = tmp_path / "repo" / "m"
    inside = _fake_export(model / "0001", "v1")
    assert repository.push(inside, model, 1) == (1, inside.resolve(), False)
    outside = _fake_export(tmp_path / "elsewhere" / "0007", "v7")
    version, path, copied = repository.push(outside, model, 1)  # 1 is taken: next free
    assert (version, copied) == (2, True) and path == model / "0002"
    assert (path / "saved_model.pb").read_text() == "v7" and (path / "variables" / "variables.index").is_file()
    assert not [p for p in model.iterdir() if p.name.startswith(".push-")], "no temp folder left behind"
    assert repository.versions_on_disk(model).keys() == {1, 2}


def test_rollback_sets_newer_versions_aside(tmp_path: Path):
    model = tmp_path / "m"
    for v in (1, 2, 3):
        _fake_export(model / f"{v:04d}", f"v{v}")
    assert repository.rollback_versions(model, None) == (2, [3])
    done = repository.rollback(model, 1)
    assert done["to_version"] == 1 and set(done["set_aside"]) == {2, 3}
    assert repository.versions(model) == [1]
    assert all(Path(p).parent == model / repository.ROLLED_BACK for p in done["set_aside"].values())
    assert repository.versions_on_disk(model).keys() == {1}, "set-aside versions are not versions any more"
    with pytest.raises(ValueError, match="no previous version"):
        repository.rollback_versions(model, None)
    with pytest.raises(ValueError, match="not in"):
        repository.rollback_versions(model, 9)


# ------------------------------------------------------------------------------------ fast paths
PROBE = """
import sys
import tfrun.runner.cli, tfrun.tasks.core.schema, tfrun.runner.steps, tfrun.runner.job, tfrun.runner.serve_cli
tfrun.runner.serve_cli.build_parser().parse_args(["--port=8500", "--rest_api_port=8501", "--model_base_path=/m",
                                            "--enable_batching", "--enable_model_warmup=false"])
import tfrun.tasks.tfserving.steps, tfrun.tasks.tfserving.jsonio, tfrun.tasks.tfserving.config, tfrun.tasks.tfserving.clients
heavy = sorted(m for m in ("tensorflow", "grpc", "requests", "tf_keras", "keras") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def test_runner_and_serve_cli_import_no_tensorflow_grpc_or_requests(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=command_env(), capture_output=True, text=True, timeout=60
    )
    assert "HEAVY=\n" in proc.stdout, proc.stdout + proc.stderr


def test_tfrun_serve_help_and_flags(tmp_path: Path):
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "tfrun-serve"), "--help"],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for flag in (
        "--port",
        "--rest_api_port",
        "--model_name",
        "--model_base_path",
        "--model_config_file",
        "--file_system_poll_wait_seconds",
        "--enable_batching",
        "--batching_parameters_file",
        "--enable_model_warmup",
        "--host",
        "127.0.0.1",
    ):
        assert flag in proc.stdout, flag


# -------------------------------------------------------------------------------------- backends
def test_backend_choice_and_command_lines(tmp_path: Path):
    from tfrun.tasks.tfserving import backends

    found = backends.availability()
    assert found["embedded"] == "available"
    name, _ = backends.choose("auto")
    assert name == next(b for b in backends.BACKENDS if found[b] == "available")
    if found["docker"] != "available":
        with pytest.raises(RuntimeError, match="target.server=docker is not available here"):
            backends.choose("docker")
    spec = backends.ServerSpec(
        model_name="m",
        base_path=tmp_path / "m",
        grpc_port=9000,
        rest_port=9001,
        batching_parameters_file=tmp_path / "b.config",
        enable_warmup=False,
    )
    embedded = backends.command("embedded", spec)
    assert embedded[1:3] == ["-m", "tfrun.runner.serve_cli"] and "--host=127.0.0.1" in embedded
    assert f"--model_base_path={tmp_path / 'm'}" in embedded and "--enable_batching=true" in embedded
    assert "--enable_model_warmup=false" in embedded and "--port=9000" in embedded
    docker = backends.command("docker", spec)
    assert (
        docker[:3] == ["docker", "run", "--rm"] and "127.0.0.1:9000:8500" in docker and "127.0.0.1:9001:8501" in docker
    )
    assert f"type=bind,source={tmp_path / 'm'},target=/models/m,readonly" in docker
    assert "--model_base_path=/models/m" in docker and "--batching_parameters_file=/config/batching.config" in docker
    assert docker[docker.index("--entrypoint") + 2] == spec.docker_image
    if backends.binary_path() is None:
        with pytest.raises(RuntimeError, match="not on PATH"):
            backends.command("binary", spec)
    assert spec.grpc_target == "127.0.0.1:9000" and spec.rest_url == "http://127.0.0.1:9001"
    free = backends.ServerSpec(model_name="m", base_path=tmp_path).with_free_ports()
    assert free.grpc_port and free.rest_port and free.grpc_port != free.rest_port
