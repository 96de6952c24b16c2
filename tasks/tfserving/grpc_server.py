"""The gRPC half of the embedded server: a grpc.aio server on an event loop in its own thread.

Why asyncio: with a thread per RPC (grpc.server + a pool), 32 callers sharing one batch still
cost 32 thread wake-ups under the GIL, and on a small machine that — not the model — bounds
throughput. Here waiting requests are futures on one loop; blocking work goes to `executor`.
The main thread keeps signals and config polling, and calls bind/start/stop.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import grpc

from tasks.tfserving.grpc_api import add_services
from tasks.tfserving.manager import ModelManager


class GrpcServer:
    """Bind (may fail: nothing served yet), start, stop; each call waits for the loop to do it."""

    def __init__(self, address: str, manager: ModelManager, *, max_request_bytes: int, threads: int):
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc-work")
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="grpc-aio", daemon=True)
        self._thread.start()
        self._server: Optional[grpc.aio.Server] = None
        options = [("grpc.max_receive_message_length", max_request_bytes),
                   ("grpc.max_send_message_length", -1),
                   ("grpc.so_reuseport", 0)]
        try:
            self.port = self._on_loop(self._bind(address, manager, options, max_request_bytes))
        except BaseException:
            self._close_loop()
            raise

    async def _bind(self, address: str, manager: ModelManager, options: list[tuple[str, Any]],
                    max_request_bytes: int) -> int:
        self._server = grpc.aio.server(options=options)
        add_services(self._server, manager, max_elements=max_request_bytes, executor=self.executor)
        try:
            port = self._server.add_insecure_port(address)
        except RuntimeError:
            port = 0
        if not port:
            raise OSError(f"cannot bind gRPC to {address}")
        return port

    def start(self) -> None:
        assert self._server is not None
        self._on_loop(self._server.start())

    def stop(self, grace: float) -> None:
        """Finish in-flight RPCs for up to `grace` seconds, then close everything."""
        if self._server is not None:
            self._on_loop(self._server.stop(grace))
        self._close_loop()

    def _on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def _close_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
