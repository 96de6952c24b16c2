"""Hardware configs map onto TensorFlow's exact calls (checked with a recorder: no GPU here)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tfrun.runner.processes.child_env import child_environment
from tfrun.tasks.core.schema import DeviceKind, HardwareConfig
from tfrun.tasks.hardware import HardwareUnavailable, configure


class Device(SimpleNamespace):
    pass


class RecordingTF:
    """Stands in for the `tf` module: records every tf.config call that configure() makes."""

    def __init__(self, gpus: int = 0):
        self.calls: list[tuple[str, Any]] = []
        self._gpus = [Device(name=f"/physical_device:GPU:{i}", device_type="GPU") for i in range(gpus)]
        self._cpu = Device(name="/physical_device:CPU:0", device_type="CPU")
        rec = self.calls.append
        self.config = SimpleNamespace(
            threading=SimpleNamespace(
                set_intra_op_parallelism_threads=lambda n: rec(("intra_op_threads", n)),
                set_inter_op_parallelism_threads=lambda n: rec(("inter_op_threads", n)),
            ),
            set_soft_device_placement=lambda on: rec(("soft_placement", on)),
            list_physical_devices=lambda kind=None: {"GPU": self._gpus, "CPU": [self._cpu]}.get(kind, []),
            set_logical_device_configuration=lambda dev, confs: rec(
                ("logical_devices", dev.name, [c.memory_limit for c in confs])
            ),
            LogicalDeviceConfiguration=lambda memory_limit=None: SimpleNamespace(memory_limit=memory_limit),
            experimental=SimpleNamespace(set_memory_growth=lambda dev, on: rec(("memory_growth", dev.name, on))),
            list_logical_devices=lambda: [],
        )
        self.debugging = SimpleNamespace(set_log_device_placement=lambda on: rec(("log_device_placement", on)))


def test_cpu_split_into_logical_devices():
    tf = RecordingTF()
    configure(tf, kind="cpu", logical_devices=3, intra_op_threads=2, inter_op_threads=1)
    assert ("intra_op_threads", 2) in tf.calls and ("inter_op_threads", 1) in tf.calls
    assert ("logical_devices", "/physical_device:CPU:0", [None, None, None]) in tf.calls


def test_single_cpu_device_is_left_alone():
    tf = RecordingTF()
    configure(tf, kind="cpu")
    assert not [c for c in tf.calls if c[0] == "logical_devices"]


def test_gpu_memory_growth_on_every_visible_gpu():
    tf = RecordingTF(gpus=2)
    configure(tf, kind="multi_gpu", memory_growth=True, log_device_placement=True, soft_placement=False)
    assert [c for c in tf.calls if c[0] == "memory_growth"] == [
        ("memory_growth", "/physical_device:GPU:0", True),
        ("memory_growth", "/physical_device:GPU:1", True),
    ]
    assert ("log_device_placement", True) in tf.calls and ("soft_placement", False) in tf.calls


def test_gpu_memory_limit_is_a_logical_device_configuration():
    tf = RecordingTF(gpus=1)
    configure(tf, kind="gpu", memory_limit_mb=4096)
    assert ("logical_devices", "/physical_device:GPU:0", [4096]) in tf.calls
    assert not [c for c in tf.calls if c[0] == "memory_growth"]


def test_split_gpu_makes_one_logical_gpu_per_limit():
    tf = RecordingTF(gpus=1)
    configure(tf, kind="split_gpu", logical_gpu_memory_mb=[2048, 1024])
    assert ("logical_devices", "/physical_device:GPU:0", [2048, 1024]) in tf.calls


def test_gpu_requested_without_gpu_names_the_problem():
    with pytest.raises(HardwareUnavailable, match=r"hardware=gpu asks for GPU\(s\) \[1\].*no GPU.*hardware=cpu"):
        configure(RecordingTF(gpus=0), kind="gpu", visible_devices=[1])


def test_child_environment_visible_devices_in_pci_order():
    env = child_environment(HardwareConfig(kind=DeviceKind.gpu, visible_devices=[1, 0]), base={})
    assert env["CUDA_VISIBLE_DEVICES"] == "1,0" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["TF_USE_LEGACY_KERAS"] == "1" and env["PYTHONHASHSEED"] == "0"


def test_child_environment_cpu_hides_gpus():
    env = child_environment(HardwareConfig(), base={"CUDA_VISIBLE_DEVICES": "0"})
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"
