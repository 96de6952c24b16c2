"""tfrun.tasks.core.hydra_adapter, the one user of Hydra's private API: the version it was checked against, and
what it offers (composing once is tests/unit/test_compose_once.py)."""

from __future__ import annotations

import importlib.metadata

import hydra._internal.utils as hydra_utils
import pytest

from tfrun.tasks.core import hydra_adapter


def test_hydra_core_is_the_version_the_adapter_was_written_for():
    installed = importlib.metadata.version("hydra-core")
    assert installed == hydra_adapter.WRITTEN_FOR, (
        f"hydra-core {installed} is installed, but tfrun/tasks/core/hydra_adapter.py was written for "
        f"{hydra_adapter.WRITTEN_FOR}: re-check each item of its docstring against Hydra {installed}'s source "
        "(and run tests/unit/test_compose_once.py), then set WRITTEN_FOR"
    )


def test_the_basic_sweepers_job_order():
    assert hydra_adapter.basic_sweep_jobs(["a=1,2", "b=x", "c=y,z"]) == [
        ["a=1", "b=x", "c=y"],
        ["a=1", "b=x", "c=z"],
        ["a=2", "b=x", "c=y"],
        ["a=2", "b=x", "c=z"],
    ]


def test_the_basic_sweeper_is_recognised_by_its_target():
    assert hydra_adapter.is_basic_sweeper({"_target_": hydra_adapter.BASIC_SWEEPER})
    assert not hydra_adapter.is_basic_sweeper({"_target_": "hydra_plugins.hydra_optuna_sweeper.OptunaSweeper"})


def test_hydras_flags_are_read_from_its_parser():
    assert {"m", "multirun", "cfg", "config-dir", "info"} <= hydra_adapter.hydra_flags()


def test_errors_go_to_the_handler_first_then_back_to_hydra():
    seen: list[Exception] = []

    def handler(exc: Exception) -> None:
        seen.append(exc)
        if isinstance(exc, KeyError):
            raise SystemExit(2)

    def failing(error: Exception):
        def func():
            raise error

        return func

    original = hydra_utils.run_and_report
    with hydra_adapter.errors_first_to(handler):
        with pytest.raises(SystemExit) as stopped:
            hydra_utils.run_and_report(failing(KeyError("x")))
        assert stopped.value.code == 2
        with pytest.raises(SystemExit) as reported:  # returned: Hydra's run_and_report reports it (exit 1)
            hydra_utils.run_and_report(failing(ValueError("y")))
        assert reported.value.code == 1
        assert hydra_utils.run_and_report(lambda: 7) == 7
    assert hydra_utils.run_and_report is original
    assert [type(e) for e in seen] == [KeyError, ValueError]


def test_a_grid_jobs_composition_checked_by_the_sweeper_is_handed_to_the_launcher(tmp_path, monkeypatch):
    """Hydra's basic sweeper composes each job of a batch to check it, then its launcher composes it again:
    with compose_each_grid_job_once the second call gets the first's config, once, and only for planned jobs."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.global_hydra import GlobalHydra

    (tmp_path / "config.yaml").write_text("a: 1\nb: x\n")
    composed = []
    load_configuration = ConfigLoaderImpl.load_configuration

    def counting(self, config_name, overrides, run_mode, *args, **kwargs):
        composed.append(list(overrides))
        return load_configuration(self, config_name, overrides, run_mode, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counting)
    with initialize_config_dir(config_dir=str(tmp_path), version_base=None):
        master = compose("config", return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        jobs = hydra_adapter.basic_sweep_jobs(["a=1,2", "b=y"])
        composed.clear()
        stop = hydra_adapter.compose_each_grid_job_once(master, jobs)
        checked = [loader.load_sweep_config(master, list(job)) for job in jobs]  # validate_batch_is_legal
        launched = [loader.load_sweep_config(master, list(job)) for job in jobs]  # the launcher
        assert len(composed) == len(jobs) and all(c is lj for c, lj in zip(checked, launched))
        assert [(cfg.a, cfg.b) for cfg in launched] == [(1, "y"), (2, "y")]
        again = loader.load_sweep_config(master, list(jobs[0]))  # a third call composes: never handed out twice
        other = loader.load_sweep_config(master, ["a=3"])  # not a planned job
        assert len(composed) == len(jobs) + 2 and again is not launched[0] and other.a == 3
        stop()
        assert "load_sweep_config" not in vars(loader)  # the class's own method again
