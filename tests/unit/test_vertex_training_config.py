"""cluster=vertex and sweep=vertex: rules checked before anything runs, the job spec, the dry run, the wheel.

Bad configs and dry runs go through the real tfrun command with tests/fakes/offline first on PYTHONPATH,
so "no SDK import, no connection" is measured. The staged wheel is installed with pip itself.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import assert_rejected_offline, offline_tfrun
from tfrun.runner.config.validate import validate
from tfrun.tasks.core import vertex_env
from tfrun.tasks.vertex import training_spec

GCP = ["cloud=gcp", "cloud.project=my-project", "cloud.bucket=my-models"]
VERTEX = ["cluster=vertex", *GCP]

BAD_VERTEX_CONFIGS = [
    pytest.param(["cluster=vertex"], ["cloud", "none", "gcp with cluster=vertex"], id="no-cloud"),
    pytest.param(
        [*VERTEX, "strategy=parameter_server", "cluster.ps=0"],
        ["cluster.ps", "0", "parameter server"],
        id="ps-strategy-without-ps",
    ),
    pytest.param(
        [*VERTEX, "cluster.accelerator_type=NVIDIA_TESLA_T4", "cluster.accelerator_count=3", "hardware=gpu"],
        ["cluster.accelerator_count", "3", "[1, 2, 4]"],
        id="gpu-count-for-machine",
    ),
    pytest.param(
        [
            *VERTEX,
            "cluster.machine_type=e2-standard-4",
            "cluster.accelerator_type=NVIDIA_TESLA_T4",
            "cluster.accelerator_count=1",
            "hardware=gpu",
        ],
        ["cluster.accelerator_count", "e2-standard-4"],
        id="gpu-on-e2",
    ),
    pytest.param(
        [
            *VERTEX,
            "cluster.machine_type=cloud-tpu",
            "cluster.accelerator_type=TPU_V3",
            "cluster.accelerator_count=4",
            "strategy=tpu",
            "hardware=tpu",
            "strategy.tpu=local",
        ],
        ["cluster.accelerator_count", "4", "TPU_V2 or TPU_V3 x 8"],
        id="tpu-count",
    ),
    pytest.param(
        [*VERTEX, "strategy=tpu", "hardware=tpu", "strategy.tpu=local"],
        ["cluster.machine_type", "n1-standard-4", "a TPU machine with strategy=tpu"],
        id="tpu-without-machine",
    ),
    pytest.param(
        [*VERTEX, "hardware=gpu"], ["cluster.accelerator_type", "None", "hardware=gpu"], id="gpu-hardware-without-gpus"
    ),
    pytest.param(
        [*VERTEX, "cluster.accelerator_type=NVIDIA_TESLA_T4", "cluster.accelerator_count=1"],
        ["hardware", "cpu", "hides the GPUs"],
        id="gpus-hidden-by-cpu-hardware",
    ),
    pytest.param(
        [*VERTEX, "cluster.workers=3"],
        ["cluster.workers", "3", "strategy=multi_worker"],
        id="workers-without-a-cluster-strategy",
    ),
    pytest.param(
        [*VERTEX, "target=tflite", "target.source=keras"],
        ["target.source", "keras", "saved_model"],
        id="tflite-from-a-keras-model-that-stays-on-vertex",
    ),
    pytest.param(
        [*VERTEX, "cluster.container=tfrun"],
        ["cluster.tfrun_image", "None", "containers/training"],
        id="tfrun-image-missing",
    ),
    pytest.param([*VERTEX, "cluster.container=latest"], ["cluster.container", "latest", "image URI"], id="bad-image"),
    pytest.param(
        [*VERTEX, "cloud.region=australia-southeast1"],
        ["cloud.region", "cluster.container"],
        id="region-without-prebuilt-training-images",
    ),
    pytest.param(["sweep=vertex", *GCP], ["sweep", "vertex", "tfrun -m sweep=vertex"], id="tune-without-multirun"),
]

BAD_TUNING_CONFIGS = [
    pytest.param(
        ["tuning.parallel_trial_count=5", "tuning.max_trial_count=4"],
        ["tuning.parallel_trial_count", "5", "at most tuning.max_trial_count (4)"],
        id="parallel-over-max",
    ),
    pytest.param(
        ["+tuning.params.train.learnin_rate={type:double,min:0.1,max:1.0}"],
        ["tuning.params.train.learnin_rate", "a key of the composed config"],
        id="not-a-config-key",
    ),
    pytest.param(
        ["+tuning.params.cluster.workers={type:integer,min:1,max:2}"],
        ["tuning.params.cluster.workers", "a training key"],
        id="not-a-training-key",
    ),
    pytest.param(
        ["tuning.params.train.learning_rate.min=0"],
        ["tuning.params.train.learning_rate.min", "0", "scale=log"],
        id="log-scale-from-zero",
    ),
    pytest.param(
        ["tuning.params.model.n_neurons.values=[64,32]"],
        ["tuning.params.model.n_neurons.values", "increasing"],
        id="discrete-out-of-order",
    ),
    pytest.param(
        ["+tuning.params.model.dropout={type:float,min:0,max:0.5}"],
        ["tuning.params.model.dropout.type", "float", "double"],
        id="unknown-type",
    ),
    pytest.param(
        ["~tuning.params.train", "~tuning.params.model"],
        ["tuning.params", "at least one parameter"],
        id="nothing-to-tune",
    ),
    pytest.param(["tuning.algorithm=grid"], ["type", "double", "tuning.algorithm=grid"], id="grid-over-doubles"),
    pytest.param(["cluster=local"], ["cluster", "local", "vertex with sweep=vertex"], id="tune-on-a-local-cluster"),
    pytest.param(
        ["target=tflite"], ["target", "tflite", "none with sweep=vertex", "reproduce line"], id="tune-with-a-target"
    ),
]


@pytest.mark.parametrize("overrides, words", BAD_VERTEX_CONFIGS)
def test_bad_vertex_config_exits_2_before_any_sdk_import(workdir: Path, overrides: list[str], words: list[str]):
    assert_rejected_offline(overrides, words, workdir)


@pytest.mark.parametrize("overrides, words", BAD_TUNING_CONFIGS)
def test_bad_tuning_config_stops_the_sweep_before_it_launches(workdir: Path, overrides: list[str], words: list[str]):
    """A config error that every job of the sweep shares is exit 2 before anything is launched or sent."""
    log = workdir / "blocked.log"
    proc = offline_tfrun(["-m", "sweep=vertex", *GCP, *overrides, "hydra.sweep.dir=multi"], workdir, log)
    message = proc.stdout + proc.stderr
    assert proc.returncode == 2, message
    for word in [*words, "every job of the sweep", "nothing was launched"]:
        assert word in message, f"{word!r} missing from:\n{message}"
    assert not (workdir / "multi").exists(), "a job was launched"
    assert "Traceback" not in message
    assert not log.exists(), f"blocked imports or connections were attempted:\n{log.read_text()}"


def test_dry_run_prints_the_job_spec_with_the_network_blocked(workdir: Path):
    log = workdir / "blocked.log"
    proc = offline_tfrun(
        [
            *VERTEX,
            "cloud.dry_run=true",
            "strategy=multi_worker",
            "cluster.workers=3",
            "cluster.accelerator_type=NVIDIA_TESLA_T4",
            "cluster.accelerator_count=2",
            "hardware=multi_gpu",
            "run.timeout_s=3600",
            "cloud.credentials=adc",
            "train.epochs=7",
        ],
        workdir,
        log,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for word in (
        "pool 0 chief  1 x n1-standard-4 + 2 x NVIDIA_TESLA_T4",
        "pool 1 worker 2 x n1-standard-4",
        "us-docker.pkg.dev/vertex-ai/training/tf-gpu.2-17.py310:latest",
        "python -m tfrun.runner.cli",
        "gs://my-models/tfrun/staging/",
        "tfrun-0.1.0-py3-none-any.whl",
        "gs://my-models/tfrun/digits_mlp/vertex-jobs/",
        "AIP_MODEL_DIR model/",
        "projects/my-project/locations/us-central1/customJobs/",
        "restart_job_on_worker_restart=True",
        "timeout 3600 s",
        "args        cluster=vertex",
        "train.epochs=7",
        "register",
        "cost: up to 3 machine(s)",
    ):
        assert word in out, f"{word!r} missing from the plan:\n{out}"
    assert "cloud.dry_run" not in out.split("args", 1)[1].splitlines()[0]  # replicas do not inherit it
    assert not log.exists(), f"the dry run attempted:\n{log.read_text()}"
    assert not list(workdir.rglob("record.json"))


@pytest.mark.parametrize(
    "target, steps",
    [
        ("tfserving", "tfserving_push, tfserving_start, tfserving_parity"),
        ("tflite", "tflite_convert, tflite_evaluate, tflite_gate"),
    ],
)
def test_dry_run_of_a_local_target_after_the_job(workdir: Path, target: str, steps: str):
    log = workdir / "blocked.log"
    proc = offline_tfrun([*VERTEX, "cloud.dry_run=true", f"target={target}"], workdir, log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "4. register    the job's model" in out, out
    assert f"5. then        target={target} here, on the job's model downloaded as models/digits_mlp/0001" in out, out
    assert steps in out, out
    assert not log.exists(), f"the dry run attempted:\n{log.read_text()}"


def test_a_local_target_follows_the_registered_job_model(compose_cfg):
    """The plan: submit, take the model back, register it, then the target's own steps on this machine."""
    from tfrun.tasks.core.schema.vertex import REGISTER_STEP, SUBMIT_STEPS

    for target, first in (("tfserving", "tfserving_push"), ("tflite", "tflite_convert"), ("none", None)):
        config = _config(compose_cfg, *VERTEX, f"target={target}")
        steps = config.cluster.machine_steps("train", list(config.target.steps), [])
        assert steps[:5] == [*SUBMIT_STEPS, REGISTER_STEP] and steps[5:6] == ([first] if first else []), steps
    endpoint = _config(compose_cfg, *VERTEX, "target=vertex_endpoint")
    steps = endpoint.cluster.machine_steps("train", list(endpoint.target.steps), [])
    assert REGISTER_STEP not in steps and "vertex_upload" not in steps and "vertex_model" in steps, steps


def test_tuning_dry_run_plans_the_study_with_the_network_blocked(workdir: Path):
    log = workdir / "blocked.log"
    proc = offline_tfrun(
        [
            "-m",
            "sweep=vertex",
            *GCP,
            "cloud.dry_run=true",
            "tuning.max_trial_count=6",
            "tuning.parallel_trial_count=3",
            "hydra.sweep.dir=multi",
        ],
        workdir,
        log,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for word in (
        "hyperparameterTuningJobs/",
        "maximize holdout_accuracy over train.learning_rate (double), "
        "train.optimizer (categorical), model.n_hidden (integer), model.n_neurons (discrete)",
        "6 trials, 3 in parallel",
        "algorithm bayesian",
        "tf-cpu.2-17.py310",
    ):
        assert word in out, f"{word!r} missing from the plan:\n{out}"
    args = next(line for line in out.splitlines() if "args" in line)
    assert "cluster=vertex" in args and "sweep=" not in args and "tuning." not in args
    assert not log.exists(), f"the dry run attempted:\n{log.read_text()}"
    assert not list(workdir.rglob("record.json")) and not (workdir / "multi" / "sweep.csv").exists()


def _config(compose_cfg, *overrides: str):
    return validate(compose_cfg(*overrides), multirun=True)


def test_pools_follow_the_strategy(compose_cfg):
    labels = {"tfrun-run-id": "r"}
    multi = training_spec.job_spec(
        _config(compose_cfg, *VERTEX, "strategy=multi_worker", "cluster.workers=2"), [], "r", labels
    )
    pools = multi.worker_pool_specs()
    assert [p["replica_count"] for p in pools] == [1, 1]  # a chief and a worker
    assert pools[0]["python_package_spec"]["python_module"] == "tfrun.runner.cli"
    assert pools[0]["python_package_spec"]["package_uris"] == [multi.package_uri]
    assert multi.restart_job_on_worker_restart  # MultiWorkerMirrored needs every replica to resume together

    ps = training_spec.job_spec(
        _config(
            compose_cfg,
            *VERTEX,
            "strategy=parameter_server",
            "cluster.workers=2",
            "cluster.ps=2",
            "cluster.ps_machine_type=n1-highmem-8",
            "cluster.container=tfrun",
            "cluster.tfrun_image=us-docker.pkg.dev/p/r/tfrun-training:1",
        ),
        [],
        "r",
        labels,
    )
    pools = ps.worker_pool_specs()
    assert [p["replica_count"] for p in pools] == [1, 2, 2]
    assert pools[2]["machine_spec"] == {"machine_type": "n1-highmem-8"}
    assert pools[0]["container_spec"]["image_uri"] == "us-docker.pkg.dev/p/r/tfrun-training:1"
    assert "python_package_spec" not in pools[0] and not ps.restart_job_on_worker_restart

    one = training_spec.job_spec(
        _config(
            compose_cfg,
            *VERTEX,
            "strategy=mirrored",
            "hardware=multi_gpu",
            "cluster.machine_type=a2-highgpu-2g",
            "cluster.accelerator_type=NVIDIA_TESLA_A100",
            "cluster.accelerator_count=2",
        ),
        [],
        "r",
        labels,
    )
    assert one.worker_pool_specs()[0]["machine_spec"] == {
        "machine_type": "a2-highgpu-2g",
        "accelerator_type": "NVIDIA_TESLA_A100",
        "accelerator_count": 2,
    }
    assert one.image.endswith("/vertex-ai/training/tf-gpu.2-17.py310:latest")


def test_replica_args_keep_the_command_line_but_what_stays_here():
    given = [
        "cluster=vertex",
        "cloud=gcp",
        "cloud.credentials=/home/me/key.json",
        "cloud.dry_run=false",
        "cloud.api_endpoint=http://127.0.0.1:1",
        "train.epochs=3",
    ]
    assert training_spec.replica_args(given) == [
        "cluster=vertex",
        "cloud=gcp",
        "cloud.credentials=adc",
        "train.epochs=3",
    ]
    sweep = ["sweep=vertex", "tuning.max_trial_count=8", "train.learning_rate=0.5", "model.n_hidden=1", "cloud=gcp"]
    assert training_spec.replica_args(sweep, trial_keys=("train.learning_rate",)) == [
        "cluster=vertex",
        "model.n_hidden=1",
        "cloud=gcp",
    ]


def test_trial_arguments_become_hydra_overrides():
    env = {"CLOUD_ML_JOB_ID": "1", "CLUSTER_SPEC": "{}", "CLOUD_ML_TRIAL_ID": "3"}
    argv = ["cluster=vertex", "--train__learning_rate=0.01", "--model__n_hidden=2", "--cfg=job", "--config-dir=x"]
    assert vertex_env.trial_overrides(argv, {"cfg", "config-dir"}, env) == [
        "cluster=vertex",
        "train.learning_rate=0.01",
        "model.n_hidden=2",
        "--cfg=job",
        "--config-dir=x",
    ]
    assert vertex_env.trial_overrides(argv, set(), {"CLOUD_ML_JOB_ID": "1", "CLUSTER_SPEC": "{}"}) == argv
    assert not vertex_env.inside_vertex({"TF_CONFIG": "{}"})  # a TF_CONFIG cluster of the user's is not Vertex
    assert vertex_env.record_uri("gs://b/p/run/model/") == "gs://b/p/run/record.json"
    assert vertex_env.record_uri("gs://b/p/run/3/model/") == "gs://b/p/run/3/record.json"


def test_staged_wheel_installs_with_pip_and_pins_the_versions_here(tmp_path: Path):
    from importlib.metadata import version

    from tfrun.tasks.vertex.package import build_wheel

    wheel = build_wheel()
    assert build_wheel().data == wheel.data  # the same code gives the same bytes
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.data)
    names = zipfile.ZipFile(path).namelist()
    assert "tfrun/__init__.py" in names and "tfrun/runner/cli.py" in names and "tfrun/conf/config.yaml" in names
    assert "tfrun/conf/cluster/vertex.yaml" in names and "tfrun/tasks/vertex/replica.py" in names
    assert not any("__pycache__" in n for n in names)
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"tfrun"}  # one import name
    assert f"tensorflow=={version('tensorflow')}" in wheel.requires
    assert f'google-cloud-storage=={version("google-cloud-storage")}; python_version >= "3.11"' in wheel.requires
    assert f'cloudml-hypertune=={version("cloudml-hypertune")}; python_version >= "3.11"' in wheel.requires
    assert 'scikit-learn>=1.3; python_version < "3.11"' in wheel.requires
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (target / "tfrun" / "conf" / "sweep" / "vertex.yaml").is_file() and (target / "bin" / "tfrun").is_file()
    check = subprocess.run(
        [sys.executable, "-c", "import tfrun.runner.cli, tfrun.tasks.vertex.replica as r; print(r.__file__)"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0 and check.stdout.strip().startswith(str(target)), check.stderr


def test_the_submitting_machine_joins_no_cluster(compose_cfg):
    """Only the replicas must form a cluster in time; the machine that follows the job waits as long as it runs."""
    from tfrun.runner.processes.execute import _forms_a_cluster

    vertex = _config(compose_cfg, *VERTEX, "strategy=multi_worker", "cluster.workers=2")
    assert not _forms_a_cluster(vertex, replica=False) and _forms_a_cluster(vertex, replica=True)
    assert _forms_a_cluster(_config(compose_cfg, "strategy=multi_worker", "cluster=local"), replica=False)
