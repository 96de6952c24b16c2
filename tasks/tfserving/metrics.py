"""TF Serving's request metrics and their Prometheus page, as `--monitoring_config_file` turns them on.

Names, labels and buckets are TF Serving's (servables/tensorflow/util.cc), exported the way its
PrometheusExporter writes them (`/` -> `:`, histograms as `_bucket{le=…}`, `_sum`, `_count`):

    :tensorflow:serving:request_count{model_name, status}          counter; status is the gRPC code name (OK, …)
    :tensorflow:serving:request_latency{model_name, API, entrypoint} histogram, microseconds, successful requests,
                                                                     buckets 10 × 1.8^k (33 limits, then +Inf)
    :tensorflow:serving:request_example_counts{model}               histogram of tf.Examples per Classify/Regress,
                                                                     buckets 1, 2, 4, …, 2^14, then +Inf

The MonitoringConfig file is TF Serving's text proto (`prometheus_config { enable: true path: "…" }`), parsed by
protobuf's text_format with tensorflow-serving-api's message when it ships one, else the same two messages built
from their descriptor here (the package's wheel leaves monitoring_config_pb2 out). The exposition text is written
here too: three metric families do not earn a dependency on prometheus-client. Standard library and protobuf only.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

DEFAULT_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_COUNT = "/tensorflow/serving/request_count"
REQUEST_LATENCY = "/tensorflow/serving/request_latency"
EXAMPLE_COUNTS = "/tensorflow/serving/request_example_counts"
MONITORING_FILE = "tfserving_monitoring.config"  # written into the run dir by target.metrics=true


def exponential_buckets(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """tensorflow::monitoring::Buckets::Exponential: `count` limits scale × growth^k (then +Inf)."""
    limits, bound = [], float(scale)
    for _ in range(count):
        limits.append(bound)
        bound *= growth
    return tuple(limits)


LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)
EXAMPLE_BUCKETS = exponential_buckets(1, 2, 15)


# ------------------------------------------------------------------------------------------ config file
@dataclass(frozen=True)
class MonitoringConfig:
    """What the server exposes: Prometheus metrics on the REST port at `path`, or nothing."""

    prometheus: bool = False
    path: str = DEFAULT_PATH


def _message_class() -> Any:
    """tensorflow.serving.MonitoringConfig: the package's generated class, else one built from its descriptor."""
    try:
        from tensorflow_serving.config import monitoring_config_pb2  # type: ignore[attr-defined]

        return monitoring_config_pb2.MonitoringConfig
    except ImportError:
        pass
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=field.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=field.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()  # a private pool: never clashes with a real monitoring_config_pb2
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def parse_monitoring_config(text: str) -> MonitoringConfig:
    """A MonitoringConfig text proto; ValueError with protobuf's message when it is not one."""
    from google.protobuf import text_format

    try:
        message = text_format.Parse(text, _message_class()())
    except text_format.ParseError as err:
        raise ValueError(f"Invalid protobuf file: monitoring config: {err}") from None
    prometheus = message.prometheus_config
    path = prometheus.path or DEFAULT_PATH
    if not path.startswith("/"):
        raise ValueError(f"monitoring config: prometheus_config.path must start with '/', got {path!r}")
    return MonitoringConfig(prometheus=prometheus.enable, path=path)


def read_monitoring_config(path: str | Path) -> MonitoringConfig:
    """`--monitoring_config_file`: OSError when unreadable, ValueError when not a MonitoringConfig."""
    return parse_monitoring_config(Path(path).read_text())


def monitoring_config_text(path: str = DEFAULT_PATH) -> str:
    """The file `target.metrics=true` writes: Prometheus on, at `path`."""
    return f'prometheus_config {{\n  enable: true\n  path: "{path}"\n}}\n'


def write_monitoring_config(folder: str | Path, path: str = DEFAULT_PATH) -> Path:
    """Write the monitoring config into `folder` (a run dir) and return the file, for --monitoring_config_file."""
    out = Path(folder) / MONITORING_FILE
    out.write_text(monitoring_config_text(path))
    return out


def monitoring_file(options: Any, run_dir: str | Path) -> Optional[Path]:
    """The monitoring config file for the servers a run starts (`metrics` on target/serve options), or None."""
    return write_monitoring_config(run_dir) if getattr(options, "metrics", False) else None


# ------------------------------------------------------------------------------------------ recording
def status_name(err: BaseException) -> str:
    """The gRPC code name a failed request is counted under, as the REST and gRPC front ends answer it."""
    code = getattr(err, "code", None)
    if code is not None and not callable(code) and hasattr(code, "name"):
        return str(code.name)  # ServingError
    if callable(code):  # a grpc.RpcError passing through
        try:
            return str(code().name)
        except Exception:  # noqa: BLE001 - any failure to read it: UNKNOWN
            return "UNKNOWN"
    if isinstance(err, RecursionError):
        return "INVALID_ARGUMENT"
    if isinstance(err, MemoryError):
        return "RESOURCE_EXHAUSTED"
    return "INTERNAL"


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self, size: int):
        self.counts = [0] * size
        self.total = 0.0


class Registry:
    """Counters and histograms of one server process; every method is thread-safe and cheap (a lock, a dict)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._latency: dict[tuple[str, str, str], _Histogram] = {}
        self._examples: dict[tuple[str], _Histogram] = {}

    def request(self, model_name: str, api: str, entrypoint: str, status: str, latency_us: float) -> None:
        """One Predict/Classify/Regress answered: its count by status; its latency when it succeeded (TF Serving's
        rule: a failed request is counted, not timed)."""
        with self._lock:
            key = (model_name, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            if status == "OK":
                self._observe(self._latency, (model_name, api, entrypoint), LATENCY_BUCKETS, latency_us)

    def examples(self, model_name: str, count: int) -> None:
        """The number of tf.Examples one Classify/Regress request carried."""
        with self._lock:
            self._observe(self._examples, (model_name,), EXAMPLE_BUCKETS, count)

    @staticmethod
    def _observe(table: dict, key: tuple, limits: tuple[float, ...], value: float) -> None:
        hist = table.get(key)
        if hist is None:
            hist = table[key] = _Histogram(len(limits) + 1)
        hist.counts[bisect.bisect_left(limits, value)] += 1  # a value equal to a limit falls in that bucket (le)
        hist.total += value

    def exposition(self) -> str:
        """The Prometheus text page, in PrometheusExporter's form."""
        with self._lock:
            requests = sorted(self._requests.items())
            latency = sorted((k, list(h.counts), h.total) for k, h in self._latency.items())
            examples = sorted((k, list(h.counts), h.total) for k, h in self._examples.items())
        lines = [f"# TYPE {prometheus_name(REQUEST_COUNT)} counter"]
        for (model, status), n in requests:
            lines.append(f"{prometheus_name(REQUEST_COUNT)}{_labels(model_name=model, status=status)} {n}")
        lines += _histogram_lines(REQUEST_LATENCY, ("model_name", "API", "entrypoint"), LATENCY_BUCKETS, latency)
        lines += _histogram_lines(EXAMPLE_COUNTS, ("model",), EXAMPLE_BUCKETS, examples)
        return "\n".join(lines) + "\n"


def prometheus_name(name: str) -> str:
    """TF Serving's metric name as Prometheus sees it: every character outside [a-zA-Z0-9_] becomes ':'."""
    out = "".join(c if c.isascii() and (c.isalnum() or c == "_") else ":" for c in name)
    return "_" + out if out[:1].isdigit() else out


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    """absl::StrCat's six significant digits (10, 18, 32.4, 1.23457e+06)."""
    return format(value, ".6g")


def _histogram_lines(
    name: str, label_names: tuple[str, ...], limits: tuple[float, ...], cells: list[tuple[tuple, list[int], float]]
) -> list[str]:
    prom = prometheus_name(name)
    lines = [f"# TYPE {prom} histogram"]
    for key, counts, total in cells:
        labels = ",".join(f'{n}="{_label_value(v)}"' for n, v in zip(label_names, key))
        cumulative = 0
        for i, count in enumerate(counts):
            cumulative += count
            le = _number(limits[i]) if i < len(limits) else "+Inf"
            lines.append(f'{prom}_bucket{{{labels},le="{le}"}} {cumulative}')
        lines.append(f"{prom}_sum{{{labels}}} {_number(total)}")
        lines.append(f"{prom}_count{{{labels}}} {cumulative}")
    return lines


REGISTRY = Registry()  # the server process's one registry (TF Serving's metrics are process-wide too)
