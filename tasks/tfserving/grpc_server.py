"""The gRPC half of the embedded server, in the form that suits its work.

Batching off, every Predict is a blocking model call: grpc.server runs it on a pool thread,
one hand-off per request (the lowest latency). Batching on, requests mostly wait for a batch
they share: grpc.aio keeps them as futures on one event loop in its own thread, so 32 waiting
callers cost one wake-up per batch instead of 32 thread wake-ups under the GIL; the blocking
handlers run on its migration thread pool. Either way the main thread keeps signals and config
polling, and calls bind / start / stop.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import grpc

from tfrun.tasks.tfserving.grpc_api import add_services
from tfrun.tasks.tfserving.manager import ModelManager


class GrpcServer:
    """Bound on construction (OSError if the address is taken; nothing served yet), then start, stop."""

    def __init__(self, address: str, manager: ModelManager, *, max_request_bytes: int, threads: int, batched: bool):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc")
        self.options = [
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ]
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        if batched:
            self.loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self.loop.run_forever, name="grpc-aio", daemon=True)
            self._thread.start()
        try:
            self._server = self._on_loop(self._create()) if self.loop else grpc.server(self.pool, options=self.options)
            add_services(self._server, manager, max_elements=max_request_bytes, batched=batched)
            try:
                self.port = self._server.add_insecure_port(address)
            except RuntimeError:
                self.port = 0
            if not self.port:
                raise OSError(f"cannot bind gRPC to {address}")
        except BaseException:
            self._close()
            raise

    async def _create(self) -> Any:
        return grpc.aio.server(migration_thread_pool=self.pool, options=self.options)

    def start(self) -> None:
        result = self._server.start()
        if self.loop:
            self._on_loop(result)

    def stop(self, grace: float) -> None:
        """Finish in-flight RPCs for up to `grace` seconds, then close everything."""
        done = self._server.stop(grace)
        if self.loop:
            self._on_loop(done)
        else:
            done.wait()
        self._close()

    def _on_loop(self, coro: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def _close(self) -> None:
        if self.loop is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
