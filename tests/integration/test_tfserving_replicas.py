"""Three embedded replicas behind the real nginx: a rolling update and a rollback under load with no failed request,
a 90/10 stable/canary split measured over 10,000 requests, and labels moved (promote, roll back) one replica at a time.

Real servers, real nginx, the real REST and gRPC clients (no retries: a failed call counts). The versions are two
small SavedModels with different weights (tests/integration/serving_models.py), so every answer says which version
gave it: gRPC in its ModelSpec, REST by its probabilities.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.integration.serving_models import digits_model
from tfrun.runner.processes.child_env import child_environment
from tfrun.tasks.core.schema import HardwareConfig
from tfrun.tasks.tfserving import backends
from tfrun.tasks.tfserving.clients import GrpcClient, RestClient
from tfrun.tasks.tfserving.replicas import ReplicaGroup

pytestmark = [pytest.mark.slow]

X = np.arange(64, dtype=np.float32).reshape(1, 8, 8) % 17
THREADS, PER_THREAD = 8, 2_500  # done-when: 8 client threads x 2,500 requests during the roll-out
SPLIT_REQUESTS = 10_000


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("replicas")
    for v in (1, 2):
        digits_model(root / "models" / "digits" / str(v), seed=v)
    template = backends.ServerSpec(model_name="digits", base_path=root / "models" / "digits", max_load_retries=0)
    with pytest.MonkeyPatch.context() as patch:
        # the environment a run's job starts its replicas from (CUDA_VISIBLE_DEVICES=-1, ...): so they fork from the
        # suite's zygote, as a run's do, instead of each importing TensorFlow afresh
        for name, value in child_environment(HardwareConfig()).items():
            patch.setenv(name, value)
        group = ReplicaGroup.start(
            backend="embedded",
            template=template,
            replicas=3,
            folder=root / "group",
            versions=[1],
            labels={"stable": 1, "canary": 1},
            split={"stable": 90, "canary": 10},
            config_poll_seconds=1,
            detached=False,
            timeout=180,
        )
        try:
            yield group
        finally:
            pids = group.pids()
            group.stop()
            assert not any(backends.pid_alive(p) for p in pids), "stopping leaves no process (nginx and replicas)"


def _expected(group: ReplicaGroup) -> dict[int, np.ndarray]:
    """Each version's answer for X, computed from its SavedModel here (the servers answer it bit for bit)."""
    import tensorflow as tf

    found = {}
    for v in (1, 2):
        fn = tf.saved_model.load(str(Path(group.model_dir) / str(v))).signatures["serving_default"]
        found[v] = fn(pixels=tf.constant(X))["probabilities"].numpy()
    return found


class Load:
    """THREADS clients, each PER_THREAD requests naming no version, REST and gRPC alternating; every answer's
    version (gRPC: ModelSpec; REST: its probabilities) with its time, every failure."""

    def __init__(self, group: ReplicaGroup, expected: dict[int, np.ndarray], per_thread: int):
        """per_thread requests per client; 0: until `done` is set, then 100 more."""
        self.group, self.expected, self.per_thread = group, expected, per_thread
        self.done = threading.Event()
        self.answers: list[tuple[float, int]] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(THREADS)]

    def _version_of(self, probabilities: np.ndarray) -> int:
        for v, want in self.expected.items():
            if np.array_equal(np.asarray(probabilities, dtype=np.float32), want):
                return v
        return -1

    def _client(self, index: int) -> None:
        rest = RestClient(self.group.balancer.rest_url, retries=0, timeout=60)
        grpc_client = GrpcClient(self.group.balancer.grpc_target, retries=0, timeout=60)
        try:
            i, after = 0, 0
            while (i < self.per_thread) if self.per_thread else (after < 100):
                i += 1
                after += self.done.is_set()
                try:
                    if (i + index) % 2:
                        _, version = grpc_client.predict("digits", {"pixels": X})
                    else:
                        version = self._version_of(rest.predict("digits", instances=X)["output"])
                    with self._lock:
                        self.answers.append((time.monotonic(), int(version)))
                except Exception as err:  # noqa: BLE001 - every failed call is counted
                    with self._lock:
                        self.failures.append(f"{type(err).__name__}: {err}")
        finally:
            rest.close()
            grpc_client.close()

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        for t in self.threads:
            t.join(600)


def _roll_under_load(group: ReplicaGroup, expected, version: int, per_thread: int) -> tuple[Load, list, float]:
    with Load(group, expected, per_thread) as load:
        while len(load.answers) < 200:  # the roll starts with requests in flight
            time.sleep(0.01)
        steps = group.roll(version, timeout=120)
        done = time.monotonic()
        load.done.set()
    return load, steps, done


def test_rolling_update_and_rollback_under_load_fail_no_request(group: ReplicaGroup):
    expected = _expected(group)
    assert not np.array_equal(expected[1], expected[2])
    load, steps, done = _roll_under_load(group, expected, 2, PER_THREAD)
    assert len(load.answers) + len(load.failures) == THREADS * PER_THREAD
    assert load.failures == [], f"{len(load.failures)} failed: {load.failures[:3]}"
    assert [s["replica"] for s in steps] == [0, 1, 2], "one replica after the other"
    after = [v for t, v in load.answers if t > done]
    assert after and set(after) == {2}, f"after the roll-out only version 2 answers: {Counter(after)}"
    assert -1 not in {v for _, v in load.answers}, "every REST answer is one version's exactly"
    assert group.versions == [2] and group.labels == {"stable": 2, "canary": 2}
    counts = group.counts()
    assert all(sum(c.values()) > 0 for c in counts.replicas.values()), counts.replicas

    load, steps, done = _roll_under_load(group, expected, 1, 0)  # rollback, the same way, load until it is done
    assert load.failures == [], f"{len(load.failures)} failed: {load.failures[:3]}"
    after = [v for t, v in load.answers if t > done]
    assert after and set(after) == {1}
    assert group.versions == [1]


def test_canary_split_lands_within_two_points_and_labels_move(group: ReplicaGroup):
    from tfrun.tasks.tfserving import split

    group.apply([1, 2], {"stable": 1, "canary": 2}, timeout=120)
    measured = split.measure(
        group,
        "digits",
        "pixels",
        X,
        requests=SPLIT_REQUESTS,
        stated={"stable": 90, "canary": 10},
        labels=group.labels,
        tolerance=2.0,
        timeout=60,
    )
    assert measured["passed"], measured
    assert abs(measured["rest"]["canary"] - 10) <= 2 and abs(measured["grpc"]["canary"] - 10) <= 2, measured

    group.move_label("stable", 2, timeout=120)  # promote the canary
    assert group.labels == {"stable": 2, "canary": 2} and group.versions == [2]
    grpc_client = GrpcClient(group.balancer.grpc_target, retries=0)
    try:
        assert {grpc_client.predict("digits", {"pixels": X})[1] for _ in range(50)} == {2}
        group.move_label("stable", 1, timeout=120)  # and roll it back
        group.move_label("canary", 1, timeout=120)
        assert group.labels == {"stable": 1, "canary": 1} and group.versions == [1]
        assert {grpc_client.predict("digits", {"pixels": X})[1] for _ in range(50)} == {1}
        for r in group.replicas:  # every replica's own file says so, in TF Serving's format
            text = r.config_file.read_text()
            assert 'version_labels { key: "stable" value: 1 }' in text and "specific { versions: 1 }" in text
    finally:
        grpc_client.close()


def test_group_file_finds_the_running_group_again(group: ReplicaGroup):
    again = ReplicaGroup.load(group.folder)
    assert again.balancer.rest_url == group.balancer.rest_url and again.labels == group.labels
    assert [r.grpc_target for r in again.replicas] == [r.grpc_target for r in group.replicas]
    assert Path(again.replicas[0].config_file) == group.replicas[0].config_file
