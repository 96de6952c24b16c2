"""The embedded server process: `tfrun-serve` (runner/serve_cli.py parses the flags, then run()).

Same flags and behaviour as tensorflow_model_server where they overlap, plus --host (default
127.0.0.1: nothing listens beyond this machine unless asked) and --max_request_bytes.
Stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

from tfrun.tasks.core.stop_signals import StopSignals
from tfrun.tasks.tfserving.config import (
    BatchingParameters,
    ModelConfig,
    read_batching_parameters,
    read_model_config_file,
)
from tfrun.tasks.tfserving.status import ServingError

VERSION = "tfrun-serve 2.21 (embedded; TF Serving REST and gRPC APIs)"


def log(message: str) -> None:
    sys.stdout.write(time.strftime("%Y-%m-%d %H:%M:%S") + f" [tfrun-serve] {message}\n")
    sys.stdout.flush()


def stop_signals() -> StopSignals:
    """What ends a serving process cleanly: SIGINT or SIGTERM, said in its log."""
    return StopSignals(on_signal=lambda signum: log(f"received {signal.Signals(signum).name}: shutting down"))


def grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def model_configs(args: Any) -> list[ModelConfig]:
    if args.model_config_file:
        return read_model_config_file(args.model_config_file)
    if not args.model_base_path:
        raise SystemExit("Both server_options.model_config_file and server_options.model_base_path are empty!")
    return [ModelConfig(name=args.model_name, base_path=str(Path(args.model_base_path).resolve()))]


def batching_parameters(args: Any) -> Optional[BatchingParameters]:
    if not args.enable_batching:
        return None
    if args.batching_parameters_file:
        return read_batching_parameters(args.batching_parameters_file)
    return BatchingParameters()


def run(args: Any) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    stop = stop_signals()
    for sig in (signal.SIGTERM, signal.SIGINT):  # until it serves, a stop signal ends the process at once
        signal.signal(sig, signal.SIG_DFL)

    try:
        configs = model_configs(args)
        batching = batching_parameters(args)
    except (OSError, ServingError) as err:
        log(f"Failed to start server. Error: {getattr(err, 'message', err)}")
        return 1

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
    tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)

    from tfrun.tasks.tfserving.grpc_server import GrpcServer
    from tfrun.tasks.tfserving.manager import ModelManager
    from tfrun.tasks.tfserving.rest import RestServer

    manager = ModelManager(
        poll_wait_seconds=args.file_system_poll_wait_seconds,
        batching=batching,
        enable_warmup=args.enable_model_warmup,
        allow_labels_for_unavailable=args.allow_version_labels_for_unavailable_models,
        max_load_retries=args.max_num_load_retries,
        load_retry_interval_s=args.load_retry_interval_micros / 1e6,
        log=log,
    )
    if batching is not None:
        log("batching on: " + batching.to_text().replace("\n", "; ").strip("; "))
    manager.start()
    try:
        manager.set_configs(configs)
    except ServingError as err:
        log(f"Failed to start server. Error: {err.code.name}: {err.message}")
        manager.stop()
        return 1

    grpc_server: Optional[GrpcServer] = None
    rest: Optional[RestServer] = None
    try:
        grpc_server = GrpcServer(
            grpc_address(args.host, args.port),
            manager,
            max_request_bytes=args.max_request_bytes,
            threads=args.grpc_max_threads,
            batched=batching is not None,
        )
        if args.rest_api_port:
            monitoring = getattr(args, "monitoring", None)
            rest = RestServer(
                args.host,
                args.rest_api_port,
                manager,
                max_request_bytes=args.max_request_bytes,
                verbose=args.verbose,
                metrics_path=monitoring.path if monitoring is not None and monitoring.prometheus else None,
            )
    except (OSError, RuntimeError) as err:
        log(f"Failed to start server. Error: {err}")
        if grpc_server is not None:
            grpc_server.stop(grace=0)
        manager.stop()
        return 1
    stop.install()  # serving: stop cleanly (finish in-flight requests)
    grpc_server.start()
    grpc_port = grpc_server.port
    log(f"Running gRPC ModelServer at {grpc_address(args.host, grpc_port)} ...")
    if rest is not None:
        rest.start()
        log(f"Exporting HTTP/REST API at:{grpc_address(args.host, rest.port)} ...")
        if rest.metrics_path:
            log(f"Prometheus metrics at {rest.metrics_path} on the REST port")
    if args.ready_file:
        ready = {
            "pid": os.getpid(),
            "host": args.host,
            "grpc_port": grpc_port,
            "rest_port": rest.port if rest else None,
            "models": [c.name for c in configs],
        }
        tmp = Path(args.ready_file).with_suffix(".tmp")
        tmp.write_text(json.dumps(ready))
        os.replace(tmp, args.ready_file)

    config_mtime = _mtime(args.model_config_file)
    wait = args.model_config_file_poll_wait_seconds if args.model_config_file else 0
    while not stop.wait(wait if wait > 0 else None):
        mtime = _mtime(args.model_config_file)
        if mtime != config_mtime:
            config_mtime = mtime
            try:
                manager.set_configs(read_model_config_file(args.model_config_file), wait_s=300)
                log(f"reloaded {args.model_config_file}")
            except (OSError, ServingError) as err:
                log(f"ReloadConfig failed: {getattr(err, 'message', err)}")

    if rest is not None:
        rest.stop()
    grpc_server.stop(grace=2)
    manager.stop()  # the handlers stay: a second stop signal while this process ends is no crash
    log("stopped")
    return 0


def _mtime(path: Optional[str]) -> Optional[float]:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None
