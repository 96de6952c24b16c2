"""`tfrun-serve`: the embedded TF Serving-compatible model server, with tensorflow_model_server's flags.

    tfrun-serve --port=8500 --rest_api_port=8501 --model_name=digits_mlp --model_base_path=models/digits_mlp
    tfrun-serve --model_config_file=models.config --model_config_file_poll_wait_seconds=5 --rest_api_port=8501
    tfrun-serve ... --enable_batching --batching_parameters_file=batching.config
    tfrun-serve ... --rest_api_port=8501 --monitoring_config_file=monitoring.config   # Prometheus metrics
    AIP_STORAGE_URI=gs://bucket/model tfrun-serve --vertex     # Vertex AI's custom-container contract

It binds 127.0.0.1 unless --host says otherwise. Only the flags are parsed here; TensorFlow and
gRPC are imported once the server starts (tasks/tfserving/server.py).
"""

from __future__ import annotations

import argparse
import os
import sys


def flag_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def model_name_ok(name: str) -> bool:
    """A name that is one folder and one URL path segment: no '/', no '..', not hidden."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".") and ".." not in name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfrun-serve",
        description="Serve SavedModels over TF Serving's REST and gRPC APIs (embedded server), or as a Vertex AI "
        "custom serving container (--vertex).",
        epilog="Stop it with Ctrl-C or SIGTERM. Exit codes: 0 stopped, 1 could not start, 2 bad flags.",
    )
    add = p.add_argument
    add("--port", type=int, default=8500, help="gRPC port (default 8500)")
    add("--rest_api_port", type=int, default=0, help="REST port; 0 disables REST, as in TF Serving (default 0)")
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes the server)")
    add(
        "--vertex",
        action="store_true",
        help="serve Vertex AI's custom-container contract instead of TF Serving's APIs: HTTP on AIP_HTTP_PORT "
        "(default 8080), health GET AIP_HEALTH_ROUTE, predict POST AIP_PREDICT_ROUTE, the model from "
        "AIP_STORAGE_URI (gs:// or a local folder)",
    )
    add("--model_name", default="default", help="model name when serving one model (default 'default')")
    add(
        "--model_base_path",
        default="",
        help="folder holding the model's numbered versions (with --vertex: overrides AIP_STORAGE_URI)",
    )
    add("--model_config_file", default="", help="text ModelServerConfig: several models, version policies, labels")
    add(
        "--model_config_file_poll_wait_seconds",
        type=int,
        default=0,
        help="re-read --model_config_file this often (0: never)",
    )
    add("--file_system_poll_wait_seconds", type=int, default=1, help="look for new versions this often (default 1)")
    add(
        "--enable_batching",
        type=flag_bool,
        nargs="?",
        const=True,
        default=False,
        help="merge concurrent requests into one model call",
    )
    add("--batching_parameters_file", default="", help="text BatchingParameters (max_batch_size { value: N } ...)")
    add(
        "--monitoring_config_file",
        default="",
        help='text MonitoringConfig: prometheus_config { enable: true path: "/monitoring/prometheus/metrics" } '
        "serves TF Serving's request metrics for Prometheus on the REST port",
    )
    add(
        "--enable_model_warmup",
        type=flag_bool,
        nargs="?",
        const=True,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests before a version is AVAILABLE (default true)",
    )
    add("--allow_version_labels_for_unavailable_models", type=flag_bool, nargs="?", const=True, default=False)
    add("--max_num_load_retries", type=int, default=5, help="retries of a failed version load (default 5)")
    add("--load_retry_interval_micros", type=int, default=60_000_000, help="wait between load retries (default 60 s)")
    add(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=0,
        help="threads of one op (0: TensorFlow's choice); 1 suits small models under concurrent load",
    )
    add("--tensorflow_inter_op_parallelism", type=int, default=0, help="ops run in parallel (0: TensorFlow's choice)")
    add("--grpc_max_threads", type=int, default=64, help="gRPC worker threads (default 64)")
    add("--rest_api_num_threads", type=int, default=0, help="accepted for compatibility (one thread per connection)")
    add("--rest_api_timeout_in_ms", type=int, default=30000, help="accepted for compatibility")
    add(
        "--max_request_bytes",
        type=int,
        default=64 << 20,
        help="largest request body (REST) or message (gRPC) accepted, default 64 MiB",
    )
    add("--ready_file", default="", help="write {pid, host, grpc_port, rest_port} as JSON here once serving")
    add("--verbose", action="store_true", help="log every REST request")
    add("--version", action="version", version="tfrun-serve 2.21 (embedded; TF Serving REST and gRPC APIs)")
    return p


def monitoring_problem(args: argparse.Namespace) -> str | None:
    """Read --monitoring_config_file into args.monitoring; what is wrong with it, or None."""
    from tfrun.tasks.tfserving.metrics import read_monitoring_config

    if args.vertex:
        return "--monitoring_config_file does not apply with --vertex (Vertex AI monitors its endpoints itself)"
    try:
        args.monitoring = read_monitoring_config(args.monitoring_config_file)
    except OSError as err:
        return f"--monitoring_config_file={args.monitoring_config_file}: cannot read it ({err.strerror or err})"
    except ValueError as err:
        return f"--monitoring_config_file={args.monitoring_config_file}: {err}"
    if args.monitoring.prometheus and not args.rest_api_port:
        return "--monitoring_config_file turns Prometheus metrics on: they are served on the REST port, give --rest_api_port"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.vertex and not (args.model_base_path or args.model_config_file):
        print(
            "tfrun-serve: no model to serve: give --model_base_path=FOLDER (with --model_name=NAME) "
            "or --model_config_file=FILE",
            file=sys.stderr,
        )
        return 2
    for flag, port in (("--port", args.port), ("--rest_api_port", args.rest_api_port)):
        if not 0 <= port <= 65535:
            print(f"tfrun-serve: {flag}={port} is not a port: expected 0-65535 (0: a free port)", file=sys.stderr)
            return 2
    if args.port and args.port == args.rest_api_port:
        print(f"tfrun-serve: --rest_api_port={args.rest_api_port} is --port's too: give two ports", file=sys.stderr)
        return 2
    if not args.vertex and not args.model_config_file and not model_name_ok(args.model_name):
        print(
            f"tfrun-serve: --model_name={args.model_name!r} is not a model name: expected letters, digits, '_', '-' "
            "or '.', without '/' and not starting with '.'",
            file=sys.stderr,
        )
        return 2
    if args.max_request_bytes < 1024:
        print("tfrun-serve: --max_request_bytes must be >= 1024", file=sys.stderr)
        return 2
    if args.vertex and (args.rest_api_port or args.model_config_file):
        print(
            "tfrun-serve: --vertex listens on AIP_HTTP_PORT and serves one model (AIP_STORAGE_URI or "
            "--model_base_path); --rest_api_port and --model_config_file do not apply",
            file=sys.stderr,
        )
        return 2
    args.monitoring = None
    if args.monitoring_config_file:
        problem = monitoring_problem(args)
        if problem:
            print(f"tfrun-serve: {problem}", file=sys.stderr)
            return 2
    # The server loads SavedModels with tf.saved_model.load and uses no Keras; unset, `import tensorflow` imports
    # Keras 3, and with it matplotlib and scikit-learn where installed: ~1.9 s more per start on a slow core.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if args.vertex:
        from tfrun.tasks.vertex.container import run
    else:
        from tfrun.tasks.tfserving.server import run

    code = run(args)
    # Everything is flushed and closed; skip TensorFlow's slow interpreter teardown (seconds), so a
    # server stopped by PID is gone at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
