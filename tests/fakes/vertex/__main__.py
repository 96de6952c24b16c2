"""`python -m tests.fakes.vertex`: serve fake-vertex until SIGTERM or Ctrl-C, then stop its containers."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .server import Fake, FakeHttpServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.vertex", description=__doc__)
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0 = a free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--storage-endpoint",
        default=None,
        help="GCS emulator URL (http://127.0.0.1:PORT) for gs:// reads, writes and containers",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="folder for container logs (default: a temp dir)")
    parser.add_argument(
        "--deploy-timeout",
        type=float,
        default=120.0,
        help="seconds a container may take to become healthy (containerSpec.deploymentTimeout wins)",
    )
    parser.add_argument("--predict-timeout", type=float, default=60.0, help="seconds a container may take to answer")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the traffic-split draw and of tuning jobs' parameter suggestions",
    )
    parser.add_argument(
        "--max-replica-restarts",
        type=int,
        default=1,
        help="restarts allowed per training replica killed by a signal (as Vertex restarts a VM)",
    )
    parser.add_argument(
        "--serving-zygote",
        default=None,
        help="socket of a serving zygote (serving_zygote.py): the prebuilt TF image's stand-in is forked from it",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    fake = Fake(
        args.workdir,
        args.storage_endpoint,
        args.deploy_timeout,
        args.predict_timeout,
        args.seed,
        args.max_replica_restarts,
        args.serving_zygote,
    )
    server = FakeHttpServer(fake, args.host, args.port, verbose=args.verbose)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    print(
        f"fake-vertex listening on {server.url} (storage {args.storage_endpoint or 'none'}, workdir {fake.workdir})",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        fake.shutdown()
        server.shutdown()
        server.server_close()
        print("fake-vertex stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
