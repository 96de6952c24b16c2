"""Which command lines start a warm child: only those whose run can take it."""

from __future__ import annotations

import pytest

from tfrun.runner.processes.warm_child import is_single_run, takes_another_child


@pytest.mark.parametrize(
    "argv, other",
    [
        ([], False),
        (["train.epochs=3", "hardware=cpu", "cluster=none"], False),
        (["strategy=multi_worker", "cluster=local", "cluster.workers=2"], True),
        (["hardware=gpu"], True),
        (["+hardware=split_gpu"], True),
        (["hardware.logical_devices=2", "strategy=mirrored"], False),  # the same child environment
    ],
)
def test_a_local_cluster_or_other_hardware_takes_another_child(argv: list[str], other: bool):
    assert takes_another_child(argv) is other


@pytest.mark.parametrize("argv", [["--help"], ["--cfg", "job"], ["-m", "train.epochs=1,2"], ["--cfg=job"]])
def test_no_warm_child_for_what_is_not_a_run(argv: list[str]):
    assert not is_single_run(argv)
