"""A single run composes its config once (tfrun.tasks.core.hydra_adapter.compose_patched); lazily stored schemas load
as before."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf, ValidationError

from tests.helpers import command_env
from tfrun.tasks.core.hydra_adapter import compose_patched, is_single_run, store_lazily

# Counts Hydra's compositions and captures what the job sees, without running the job.
PROBE = """
import sys
sys.argv = ["tfrun", *{args!r}]
import hydra._internal.config_loader_impl as loader
compositions = []
hydra_load = loader.ConfigLoaderImpl.load_configuration
def counting(self, *a, **k):
    compositions.append(str(k.get("run_mode")))
    return hydra_load(self, *a, **k)
loader.ConfigLoaderImpl.load_configuration = counting
import tfrun.runner.cli, tfrun.runner.job
from hydra.core.hydra_config import HydraConfig
def job(cfg):
    hydra_cfg = HydraConfig.get()
    print("MODE=" + str(hydra_cfg.mode), "HYDRA_OVERRIDES=" + ",".join(hydra_cfg.overrides.hydra),
          "EPOCHS=" + str(cfg.train.epochs))
    return 0.0
tfrun.runner.job.run_job = job
try:
    tfrun.runner.cli.main()
except SystemExit as exc:
    print("EXIT=" + str(exc.code))
print("COMPOSITIONS=" + ",".join(compositions))
"""


def _probe(tmp_path: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=list(args))],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout + proc.stderr


def test_a_single_run_composes_once_with_the_mode_hydra_would_record(tmp_path: Path):
    out = _probe(tmp_path, "train.epochs=3", "hydra.run.dir=run")
    assert "COMPOSITIONS=RunMode.RUN\n" in out, out
    assert "MODE=RunMode.RUN HYDRA_OVERRIDES=hydra.run.dir=run,hydra.mode=RUN EPOCHS=3" in out, out


def test_a_composition_error_is_reported_as_before(tmp_path: Path):
    out = _probe(tmp_path, "data=nope")
    assert "EXIT=2" in out and "data='nope' is not allowed" in out, out
    assert "MODE=" not in out


def test_a_sweep_override_without_multirun_keeps_hydras_message(tmp_path: Path):
    out = _probe(tmp_path, "model.n_hidden=1,2")
    assert "EXIT=2" in out and "Ambiguous value for argument 'model.n_hidden=1,2'" in out, out


def test_multirun_composes_as_hydra_does(tmp_path: Path):
    out = _probe(tmp_path, "-m", "model.n_hidden=1,2")
    assert out.count("MODE=RunMode.MULTIRUN") == 2, out
    # get_mode's and the sweep's (MULTIRUN); the grid's pre-check of job 0 (tfrun.runner.sweeps.precheck), then Hydra's
    # own check of each job (RUN), whose configs each job's launch takes (hydra_adapter.compose_each_grid_job_once)
    assert "COMPOSITIONS=" + ",".join(["RunMode.MULTIRUN"] * 2 + ["RunMode.RUN"] * 3) + "\n" in out, out


def test_a_config_that_sets_multirun_still_sweeps(tmp_path: Path):
    out = _probe(tmp_path, "hydra.mode=MULTIRUN", "model.n_hidden=1,2")
    assert out.count("MODE=RunMode.MULTIRUN") == 2, out


@pytest.mark.parametrize(
    "argv, single",
    [
        ([], True),
        (["train.epochs=3", "--config-dir", "c"], True),
        (["-m", "a=1,2"], False),
        (["--multirun"], False),
        (["--cfg", "job"], False),
        (["--cfg"], False),
        (["--info"], False),
        (["--hydra-help"], False),
        (["-h"], False),
        (["--shell-completion"], False),
    ],
)
def test_single_run_is_read_with_hydras_parser(argv: list[str], single: bool):
    assert is_single_run(argv) is single


@dataclass
class _Schema:
    epochs: int = 1


def test_a_lazily_stored_schema_loads_fresh_typed_copies():
    store_lazily(group="test_lazy", name="schema", schema=_Schema)
    store = ConfigStore.instance()
    first = store.load("test_lazy/schema.yaml").node
    first.epochs = 5
    assert store.load("test_lazy/schema.yaml").node.epochs == 1, "a load must not see another load's changes"
    with pytest.raises(ValidationError):
        first.epochs = "ten"
    assert OmegaConf.get_type(first) is _Schema
    assert store.get_type("test_lazy/schema") is not None and "schema.yaml" in store.list("test_lazy")


def test_a_defaults_list_that_interpolates_still_resolves(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "config.yaml").write_text("defaults:\n  - a: x\n  - b: ${a}_y\n  - _self_\n")
    (tmp_path / "a" / "x.yaml").write_text("v: 1\n")
    (tmp_path / "b" / "x_y.yaml").write_text("w: 2\n")
    with compose_patched(single_run=False), initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["a=x"])
    assert cfg.a.v == 1 and cfg.b.w == 2
