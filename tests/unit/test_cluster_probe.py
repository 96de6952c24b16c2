"""A cluster that did not form names the tasks whose TF_CONFIG address does not answer."""

from __future__ import annotations

import json
import socket

from tfrun.runner.processes import cluster_probe
from tfrun.runner.processes.cluster_layout import free_ports


def test_absent_names_tasks_whose_address_does_not_answer():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = f"127.0.0.1:{listening.getsockname()[1]}"
        (free,) = free_ports(1)
        down = f"127.0.0.1:{free}"
        spec = {"chief": [up], "worker": [up, down]}
        assert cluster_probe.absent(spec) == [f"worker:1 ({down})"]
    assert cluster_probe.absent({}) == []


def test_cluster_spec_comes_from_the_tasks_tf_config():
    tf_config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    envs = [{"PATH": "/bin"}, {"TF_CONFIG": "not json"}, {"TF_CONFIG": json.dumps(tf_config)}]
    assert cluster_probe.cluster_spec(envs) == {"worker": ["a:1", "b:2"]}
    assert cluster_probe.cluster_spec([{}]) == {}
