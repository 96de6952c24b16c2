"""Server-side batching (tfrun.tasks.tfserving.batching): concurrent requests really share one model call."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from tfrun.tasks.tfserving.batching import BatchScheduler
from tfrun.tasks.tfserving.config import BatchingParameters
from tfrun.tasks.tfserving.status import Code, ServingError


class Model:
    """A model call that records the batch sizes it saw and takes a little time, like a real one."""

    def __init__(self, seconds: float = 0.01):
        self.sizes: list[int] = []
        self.seconds = seconds
        self.lock = threading.Lock()

    def __call__(self, inputs):
        x = inputs["x"]
        with self.lock:
            self.sizes.append(len(x))
        time.sleep(self.seconds)
        return {"y": x * 2.0, "batch": np.full(len(x), len(x))}


def concurrent(scheduler: BatchScheduler, n: int, rows: int = 1):
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def call(i: int) -> None:
        barrier.wait()
        try:
            results[i] = scheduler.run({"x": np.full((rows, 3), float(i), dtype=np.float32)})
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results, errors


def test_concurrent_requests_are_merged_and_answered_with_their_own_rows():
    model = Model()
    scheduler = BatchScheduler(
        model,
        BatchingParameters(
            max_batch_size=16, batch_timeout_micros=20_000, num_batch_threads=1, max_enqueued_batches=10
        ),
    )
    try:
        results, errors = concurrent(scheduler, 16)
    finally:
        scheduler.stop()
    assert not errors
    for i, r in enumerate(results):
        assert np.array_equal(r["y"], np.full((1, 3), 2.0 * i, dtype=np.float32)), "each caller gets its own rows"
    assert sum(model.sizes) == 16 and len(model.sizes) < 16 and max(model.sizes) > 1, model.sizes
    assert scheduler.stats()["largest_batch"] == max(model.sizes)


def test_batches_respect_max_batch_size_and_pad_to_allowed_sizes():
    model = Model(0.0)
    params = BatchingParameters(
        max_batch_size=8, batch_timeout_micros=50_000, num_batch_threads=1, allowed_batch_sizes=[4, 8]
    )
    scheduler = BatchScheduler(model, params)
    try:
        results, errors = concurrent(scheduler, 3)
        assert not errors and all(s in (4, 8) for s in model.sizes), model.sizes  # 3 rows padded to 4
        out = scheduler.run({"x": np.ones((5, 3), np.float32)})
        assert out["y"].shape == (5, 3)
    finally:
        scheduler.stop()


def test_large_requests_split_or_rejected():
    model = Model(0.0)
    split = BatchScheduler(
        model, BatchingParameters(max_batch_size=4, num_batch_threads=1, enable_large_batch_splitting=True)
    )
    whole = BatchScheduler(model, BatchingParameters(max_batch_size=4, num_batch_threads=1))
    try:
        x = np.arange(30, dtype=np.float32).reshape(10, 3)
        assert np.array_equal(split.run({"x": x})["y"], x * 2)
        assert max(model.sizes) <= 4
        with pytest.raises(ServingError, match="Task size 10 is larger than maximum input batch size 4"):
            whole.run({"x": x})
        with pytest.raises(ServingError, match="at least one dimension"):
            whole.run({"x": np.float32(1.0)})
        with pytest.raises(ServingError, match="equal 0th-dimension size"):
            whole.run({"x": np.zeros((2, 1)), "z": np.zeros((3, 1))})
    finally:
        split.stop()
        whole.stop()


def test_full_queue_is_unavailable_and_model_errors_reach_every_caller():
    gate = threading.Event()

    def slow(inputs):
        gate.wait(5)
        return {"y": inputs["x"]}

    scheduler = BatchScheduler(slow, BatchingParameters(max_batch_size=1, num_batch_threads=1, max_enqueued_batches=1))
    try:
        first = threading.Thread(target=scheduler.run, args=({"x": np.zeros((1, 1))},))
        first.start()
        time.sleep(0.2)  # the worker holds the first batch; one more may wait
        second = threading.Thread(target=scheduler.run, args=({"x": np.zeros((1, 1))},))
        second.start()
        time.sleep(0.2)
        with pytest.raises(ServingError) as info:
            scheduler.run({"x": np.zeros((1, 1))})
        assert info.value.code is Code.UNAVAILABLE and "queue" in info.value.message
        gate.set()
        first.join(5)
        second.join(5)
    finally:
        gate.set()
        scheduler.stop()

    def broken(inputs):
        raise ServingError(Code.INVALID_ARGUMENT, "bad row")

    scheduler = BatchScheduler(
        broken, BatchingParameters(max_batch_size=8, batch_timeout_micros=20_000, num_batch_threads=1)
    )
    try:
        _, errors = concurrent(scheduler, 4)
        assert len(errors) == 4 and all(isinstance(e, ServingError) and e.message == "bad row" for e in errors)
    finally:
        scheduler.stop()


def gather_async(scheduler: BatchScheduler, inputs: list[np.ndarray], timeout: float | None = None):
    """`run_async` from one event loop for every input at once; results or exceptions, in order."""

    async def main():
        return await asyncio.gather(*(scheduler.run_async({"x": x}, timeout) for x in inputs), return_exceptions=True)

    return asyncio.run(main())


def test_async_callers_on_one_loop_share_a_batch_and_get_their_rows():
    model = Model()
    scheduler = BatchScheduler(
        model,
        BatchingParameters(
            max_batch_size=16, batch_timeout_micros=50_000, num_batch_threads=1, max_enqueued_batches=10
        ),
    )
    try:
        results = gather_async(scheduler, [np.full((1, 3), float(i), np.float32) for i in range(16)])
    finally:
        scheduler.stop()
    assert model.sizes == [16]
    for i, r in enumerate(results):
        assert np.array_equal(r["y"], np.full((1, 3), 2.0 * i, np.float32))


def test_async_large_request_is_split_and_joined_in_order():
    model = Model(seconds=0)
    scheduler = BatchScheduler(
        model, BatchingParameters(max_batch_size=4, batch_timeout_micros=1000, enable_large_batch_splitting=True)
    )
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    try:
        [result] = gather_async(scheduler, [x])
    finally:
        scheduler.stop()
    assert sorted(model.sizes) == [2, 4, 4]
    assert np.array_equal(result["y"], x * 2.0)


def test_async_model_error_reaches_every_caller_and_timeout_is_deadline_exceeded():
    def broken(_inputs):
        raise ServingError(Code.INVALID_ARGUMENT, "broken model")

    scheduler = BatchScheduler(broken, BatchingParameters(max_batch_size=8, batch_timeout_micros=1000))
    try:
        results = gather_async(scheduler, [np.ones((1, 3), np.float32)] * 3)
    finally:
        scheduler.stop()
    assert [r.code for r in results] == [Code.INVALID_ARGUMENT] * 3

    slow = BatchScheduler(Model(seconds=0.5), BatchingParameters(max_batch_size=8, batch_timeout_micros=1000))
    try:
        [late] = gather_async(slow, [np.ones((1, 3), np.float32)], timeout=0.05)
        again = slow.run({"x": np.ones((1, 3), np.float32)})  # the scheduler still serves after the timeout
    finally:
        slow.stop()
    assert isinstance(late, ServingError) and late.code == Code.DEADLINE_EXCEEDED
    assert again["y"].shape == (1, 3)
