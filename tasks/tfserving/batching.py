"""Server-side batching: concurrent requests to one signature become one model call.

The semantics are TF Serving's batch scheduler's (BatchingParameters): a batch opens with the
first waiting task and closes when it holds `max_batch_size` rows, when `batch_timeout_micros`
have passed since it opened, or when a task does not fit; `num_batch_threads` threads run
closed batches; at most `max_enqueued_batches` batches wait (then UNAVAILABLE); tasks larger
than max_batch_size are split if `enable_large_batch_splitting`, else rejected; a batch is
padded up to the next of `allowed_batch_sizes` with copies of its first row.

Tasks only share a batch when their inputs agree on names, dtypes and non-batch dimensions.
Pure Python + numpy: `process` is the model call.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any, Callable, Mapping, Optional

import numpy as np

from tfrun.tasks.tfserving.config import BatchingParameters
from tfrun.tasks.tfserving.status import Code, ServingError, invalid

Tensors = dict[str, np.ndarray]


class _Task:
    """A request's rows waiting for their batch. Thread callers wait on `done`; asyncio callers on
    `future`, which the batch thread completes through the future's loop (one wake-up per batch)."""

    __slots__ = ("inputs", "size", "key", "done", "future", "outputs", "error")

    def __init__(self, inputs: Tensors, size: int, key: tuple, future: Optional[asyncio.Future] = None):
        self.inputs = inputs
        self.size = size
        self.key = key
        self.future = future
        self.done = threading.Event() if future is None else None
        self.outputs: Optional[Tensors] = None
        self.error: Optional[BaseException] = None

    def result(self) -> Tensors:
        if self.error is not None:
            raise self.error
        assert self.outputs is not None
        return self.outputs


class _Batch:
    __slots__ = ("tasks", "size", "key", "opened", "closed")

    def __init__(self, key: tuple):
        self.tasks: list[_Task] = []
        self.size = 0
        self.key = key
        self.opened = time.monotonic()
        self.closed = False


class BatchScheduler:
    """One queue of batches for one (model version, signature), run by its own threads."""

    def __init__(
        self, process: Callable[[Tensors], Mapping[str, np.ndarray]], params: BatchingParameters, name: str = "batcher"
    ):
        params.validate()
        self.process = process
        self.params = params
        self.name = name
        self._timeout = params.batch_timeout_micros / 1e6
        self._queue: collections.deque[_Batch] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self.batches_run = 0
        self.tasks_run = 0
        self.rows_run = 0
        self.largest_batch = 0
        self._threads = [
            threading.Thread(target=self._worker, name=f"{name}-{i}", daemon=True)
            for i in range(params.num_batch_threads)
        ]
        for t in self._threads:
            t.start()

    # ------------------------------------------------------------------ callers
    def run(self, inputs: Mapping[str, np.ndarray], timeout: Optional[float] = None) -> Tensors:
        """Queue the request's rows, wait for its batch to run, return its rows of the outputs."""
        tasks = [self._submit(piece, size) for piece, size in self._pieces(inputs)]
        return _joined([self._wait(t, timeout) for t in tasks])

    async def run_async(self, inputs: Mapping[str, np.ndarray], timeout: Optional[float] = None) -> Tensors:
        """`run` for an asyncio server: no thread waits per request; the batch wakes the caller's loop."""
        loop = asyncio.get_running_loop()
        tasks = [self._submit(piece, size, loop.create_future()) for piece, size in self._pieces(inputs)]
        waiting = tasks[0].future if len(tasks) == 1 else asyncio.gather(*(t.future for t in tasks))
        try:
            await asyncio.wait_for(waiting, timeout)
        except asyncio.TimeoutError:
            raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline exceeded while waiting for the batch to run") from None
        return _joined([t.result() for t in tasks])

    def _pieces(self, inputs: Mapping[str, np.ndarray]) -> list[tuple[Tensors, int]]:
        """The request as tasks: itself, or max_execution_batch_size slices when large batches are split."""
        if not inputs:
            raise invalid("Batching Run() must have at least one input tensor")
        sizes = set()
        for arr in inputs.values():
            if arr.ndim == 0:
                raise invalid("Batching Run() input tensors must have at least one dimension")
            sizes.add(arr.shape[0])
        if len(sizes) != 1:
            raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
        size = sizes.pop()
        limit = self.params.max_execution_batch_size or self.params.max_batch_size
        if size > self.params.max_batch_size:
            if not self.params.enable_large_batch_splitting:
                raise invalid(f"Task size {size} is larger than maximum input batch size {self.params.max_batch_size}")
            return [
                ({k: v[i : i + limit] for k, v in inputs.items()}, min(limit, size - i)) for i in range(0, size, limit)
            ]
        return [(dict(inputs), size)]

    def _submit(self, inputs: Tensors, size: int, future: Optional[asyncio.Future] = None) -> _Task:
        key = tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items()))
        task = _Task(inputs, size, key, future)
        with self._cond:
            if self._stopping:
                raise ServingError(Code.UNAVAILABLE, "Batch scheduler is shutting down")
            batch = self._queue[-1] if self._queue else None
            if batch is None or batch.closed or batch.key != key or batch.size + size > self.params.max_batch_size:
                if batch is not None:
                    batch.closed = True
                if len(self._queue) >= self.params.max_enqueued_batches:
                    raise ServingError(
                        Code.UNAVAILABLE, "The batch scheduling queue to which this task was submitted is full"
                    )
                batch = _Batch(key)
                self._queue.append(batch)
                wake = True
            else:  # joining the open batch: its thread already waits for it to fill or time out
                wake = False
            batch.tasks.append(task)
            batch.size += size
            if batch.size >= self.params.max_batch_size:
                batch.closed = True
                wake = True
            if wake:
                self._cond.notify()
        return task

    @staticmethod
    def _wait(task: _Task, timeout: Optional[float]) -> Tensors:
        assert task.done is not None
        if not task.done.wait(timeout):
            raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline exceeded while waiting for the batch to run")
        return task.result()

    # ------------------------------------------------------------------ workers
    def _next_batch(self) -> Optional[_Batch]:
        with self._cond:
            while True:
                if self._queue:
                    batch = self._queue[0]
                    wait = batch.opened + self._timeout - time.monotonic()
                    if batch.closed or wait <= 0 or len(self._queue) > 1 or self._stopping:
                        batch.closed = True
                        return self._queue.popleft()
                    self._cond.wait(wait)
                elif self._stopping:
                    return None
                else:
                    self._cond.wait()

    def _worker(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _run(self, batch: _Batch) -> None:
        tasks = batch.tasks
        try:
            names = list(tasks[0].inputs)
            merged = {
                n: (tasks[0].inputs[n] if len(tasks) == 1 else np.concatenate([t.inputs[n] for t in tasks]))
                for n in names
            }
            total = batch.size
            padded = total
            for allowed in self.params.allowed_batch_sizes:
                if allowed >= total:
                    padded = allowed
                    break
            if padded > total:
                merged = {n: np.concatenate([v, np.repeat(v[:1], padded - total, axis=0)]) for n, v in merged.items()}
            outputs = {k: np.asarray(v) for k, v in self.process(merged).items()}
            for name, arr in outputs.items():
                if arr.ndim == 0 or arr.shape[0] != padded:
                    raise ServingError(
                        Code.FAILED_PRECONDITION,
                        "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                        f"dimension sizes of the input tensors (output {name})",
                    )
            offset = 0
            for task in tasks:
                task.outputs = {k: v[offset : offset + task.size] for k, v in outputs.items()}
                offset += task.size
            with self._cond:
                self.batches_run += 1
                self.tasks_run += len(tasks)
                self.rows_run += total
                self.largest_batch = max(self.largest_batch, total)
        except BaseException as err:  # every waiting caller gets the model's error
            for task in tasks:
                task.error = err
        finally:
            _wake(tasks)

    def stop(self, wait: bool = True) -> None:
        """Run what is queued, then end the threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if wait:
            for t in self._threads:
                t.join(timeout=30)

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "batches": self.batches_run,
                "tasks": self.tasks_run,
                "rows": self.rows_run,
                "largest_batch": self.largest_batch,
                "queued_batches": len(self._queue),
            }

    def summary(self) -> str:
        """One log line: how much batching merged (what to look at when tuning its parameters)."""
        st = self.stats()
        mean = st["rows"] / st["batches"] if st["batches"] else 0.0
        return (
            f"{st['tasks']} task(s) in {st['batches']} batch(es), mean {mean:.1f} rows, "
            f"largest {st['largest_batch']} (max_batch_size {self.params.max_batch_size})"
        )


def _joined(results: list[Tensors]) -> Tensors:
    """The outputs of a request's tasks, in order, as one set of tensors."""
    if len(results) == 1:
        return results[0]
    return {k: np.concatenate([r[k] for r in results]) for k in results[0]}


def _wake(tasks: list[_Task]) -> None:
    """Tell a batch's callers it ran: set thread waiters' events; complete asyncio futures with one
    call per event loop (a loop that has closed has nobody left waiting)."""
    futures: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
    for task in tasks:
        if task.future is None:
            assert task.done is not None
            task.done.set()
        else:
            futures.setdefault(task.future.get_loop(), []).append(task.future)
    for loop, waiting in futures.items():
        try:
            loop.call_soon_threadsafe(_settle, waiting)
        except RuntimeError:
            pass


def _settle(futures: list[asyncio.Future]) -> None:
    for future in futures:
        if not future.done():  # a cancelled caller's future stays cancelled
            future.set_result(None)
