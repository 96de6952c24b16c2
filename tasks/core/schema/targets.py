"""Structured configs for the `target` group and the jobs that serve an export (serve, rollback).

Split from tfrun.tasks.core.schema so each file stays about one thing; tfrun.tasks.core.schema
re-exports these names and registers them with Hydra.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from omegaconf import MISSING

from tfrun.tasks.core.problems import Problem, at_least, between


# ------------------------------------------------------------------- target
@dataclass
class TargetConfig:
    """Where the export goes after training; `steps` are appended to the plan."""

    name: str = MISSING
    steps: List[str] = field(default_factory=list)

    # What each option is, asked by the code instead of comparing names (class attributes, not config keys;
    # a child's DictConfig asks tfrun.tasks.core.schema.option_class):
    deploys = True  # takes the export somewhere (target=none does not)
    serves_online = False  # deploys to a Vertex endpoint that answers requests (billed per replica-hour)

    def problems(self) -> Iterator[Problem]:
        return iter(())

    def planned_steps(self) -> list[str]:
        """The steps this target adds to a training job's plan."""
        return list(self.steps)

    def preflight_steps(self) -> list[str]:
        """Steps that run before training: checks that would otherwise fail only after it."""
        return []


@dataclass
class NoTarget(TargetConfig):
    name: str = "none"
    deploys = False


class Quantization(Enum):
    none = "none"  # float32
    dynamic = "dynamic"  # post-training dynamic range (weights int8, Optimize.DEFAULT)
    float16 = "float16"  # weights float16
    int8 = "int8"  # full integer, calibrated on a representative sample of the training data


class Int8Io(Enum):
    int8 = "int8"  # int8 input and output tensors (microcontrollers, Edge TPU)
    float32 = "float32"  # float input/output, quantize/dequantize inside the model


class TfliteSource(Enum):
    saved_model = "saved_model"  # TFLiteConverter.from_saved_model on this run's export
    keras = "keras"  # TFLiteConverter.from_keras_model on the trained model (the book's path)


MIN_REPRESENTATIVE_SAMPLES = 100
TFLITE_STEPS = ("tflite_convert", "tflite_evaluate", "tflite_gate")


@dataclass
class TfliteTarget(TargetConfig):
    """Convert the export to TFLite, evaluate it against the float SavedModel, gate on accuracy drop."""

    name: str = "tflite"
    steps: List[str] = field(default_factory=lambda: list(TFLITE_STEPS))
    quantization: Quantization = Quantization.none
    representative_samples: int = 300  # int8 calibration examples drawn from the training split
    int8_io: Int8Io = Int8Io.int8
    select_tf_ops: bool = False  # allow TensorFlow ops TFLite lacks (needs the Flex delegate to run)
    source: TfliteSource = TfliteSource.saved_model
    threads: int = 1  # interpreter threads for evaluation and latency
    max_accuracy_drop: float = 0.01  # quality gate: float accuracy - tflite accuracy
    latency_repeats: int = 200  # single-example invocations timed for the latency percentiles
    throughput_batch: int = 256  # batch size for the throughput figure

    def problems(self) -> Iterator[Problem]:
        if self.quantization is Quantization.int8:
            if self.representative_samples < MIN_REPRESENTATIVE_SAMPLES:
                yield Problem(
                    "target.representative_samples",
                    self.representative_samples,
                    f"a number >= {MIN_REPRESENTATIVE_SAMPLES} when target.quantization=int8 "
                    "(fewer calibration examples give unreliable int8 ranges)",
                )
        else:
            yield from at_least("target.representative_samples", self.representative_samples, 1)
        yield from between("target.threads", self.threads, 1, 64, low_inclusive=True, high_inclusive=True)
        yield from between(
            "target.max_accuracy_drop", self.max_accuracy_drop, 0.0, 1.0, low_inclusive=True, high_inclusive=True
        )
        yield from between(
            "target.latency_repeats", self.latency_repeats, 10, 1_000_000, low_inclusive=True, high_inclusive=True
        )
        yield from between(
            "target.throughput_batch", self.throughput_batch, 1, 65_536, low_inclusive=True, high_inclusive=True
        )
        known = [s for s in self.steps if s in TFLITE_STEPS]
        if known != list(TFLITE_STEPS[: len(known)]):  # each needs the ones before it
            yield Problem(
                "target.steps",
                self.steps,
                "tflite steps in the order "
                + " -> ".join(TFLITE_STEPS)
                + " (evaluation needs the converted file; the gate needs the evaluation)",
            )


# ------------------------------------------------------------- TF Serving
class ServingServer(Enum):
    auto = "auto"  # the first available of binary, docker, embedded
    binary = "binary"  # tensorflow_model_server on PATH
    docker = "docker"  # the tensorflow/serving image (needs a Docker engine)
    embedded = "embedded"  # tfrun-serve: this project's server, same REST and gRPC APIs


MAX_REPLICAS = 16
NEW_VERSION = "new"  # a version label's value naming the version this run pushes
LABEL_RE = re.compile(r"(?=.*[A-Za-z_-])[A-Za-z0-9_-]{1,64}")  # TF Serving takes a non-numeric label in a URL
TFSERVING_STEPS = ("tfserving_push", "tfserving_start", "tfserving_parity", "tfserving_latency", "tfserving_report")


@dataclass
class ServingBatching:
    """TF Serving's BatchingParameters (used when enable_batching=true)."""

    max_batch_size: int = 64
    batch_timeout_micros: int = 1000
    num_batch_threads: int = 2
    max_enqueued_batches: int = 100
    allowed_batch_sizes: Optional[List[int]] = None  # pad batches up to these sizes; the last = max_batch_size
    enable_large_batch_splitting: bool = True  # split requests bigger than max_batch_size (else rejected)

    def problems(self, prefix: str) -> Iterator[Problem]:
        yield from at_least(f"{prefix}.max_batch_size", self.max_batch_size, 1)
        yield from at_least(f"{prefix}.batch_timeout_micros", self.batch_timeout_micros, 0)
        yield from between(
            f"{prefix}.num_batch_threads", self.num_batch_threads, 1, 256, low_inclusive=True, high_inclusive=True
        )
        yield from at_least(f"{prefix}.max_enqueued_batches", self.max_enqueued_batches, 1)
        sizes = self.allowed_batch_sizes
        if sizes is not None and (
            not sizes or min(sizes) < 1 or list(sizes) != sorted(set(sizes)) or sizes[-1] != self.max_batch_size
        ):
            yield Problem(
                f"{prefix}.allowed_batch_sizes",
                sizes,
                f"null or increasing sizes >= 1 ending with max_batch_size ({self.max_batch_size})",
            )


@dataclass
class ServingOptions:
    """How a TF Serving server runs: shared by target=tfserving and job=serve."""

    server: ServingServer = ServingServer.auto
    host: str = "127.0.0.1"  # bind address; 0.0.0.0 would expose the server beyond this machine
    grpc_port: int = 0  # 0 = a free port
    rest_port: int = 0
    base_path: str = "${models_dir}"  # repository root: <base_path>/<model_name>/<version>
    poll_wait_seconds: int = 1  # how often the server looks for new versions
    enable_batching: bool = False
    batching: ServingBatching = field(default_factory=ServingBatching)
    warmup: bool = True  # write assets.extra/tf_serving_warmup_requests and replay it before AVAILABLE
    load_retries: int = 0  # retries of a failed version load (TF Serving's default is 5, a minute apart)
    max_request_bytes: int = 64 * 1024 * 1024  # larger REST bodies / gRPC messages are refused
    docker_image: str = "tensorflow/serving:2.21.0"
    start_timeout_s: float = 120.0  # until the server serves and the version is AVAILABLE
    metrics: bool = False  # Prometheus metrics (TF Serving's names) at /monitoring/prometheus/metrics on the REST port

    def serving_problems(self, prefix: str) -> Iterator[Problem]:
        if not self.host or any(c.isspace() for c in self.host):
            yield Problem(f"{prefix}.host", self.host, "an address to bind, e.g. 127.0.0.1 (the default)")
        for key in ("grpc_port", "rest_port"):
            yield from between(f"{prefix}.{key}", getattr(self, key), 0, 65535, low_inclusive=True, high_inclusive=True)
        if self.grpc_port and self.grpc_port == self.rest_port:
            yield Problem(f"{prefix}.rest_port", self.rest_port, f"a port other than {prefix}.grpc_port")
        if not self.base_path:
            yield Problem(f"{prefix}.base_path", self.base_path, "the model repository folder, e.g. models")
        yield from between(
            f"{prefix}.poll_wait_seconds", self.poll_wait_seconds, 1, 3600, low_inclusive=True, high_inclusive=True
        )
        yield from self.batching.problems(f"{prefix}.batching")
        yield from at_least(f"{prefix}.load_retries", self.load_retries, 0)
        yield from at_least(f"{prefix}.max_request_bytes", self.max_request_bytes, 1024)
        if self.server is ServingServer.docker and not self.docker_image:
            yield Problem(f"{prefix}.docker_image", self.docker_image, "an image such as tensorflow/serving:2.21.0")
        if not self.start_timeout_s > 0:
            yield Problem(f"{prefix}.start_timeout_s", self.start_timeout_s, "a number of seconds > 0")

    def server_problems(self, prefix: str) -> Iterator[Problem]:
        """A server kind that cannot run on this machine, found before training rather than after it."""
        from tfrun.tasks.core.serving_backends import available_kinds, missing

        why = missing(self.server.value)
        if why is not None:
            yield Problem(
                f"{prefix}.server",
                self.server.value,
                f"a server this machine can run: {', '.join(available_kinds())} ({self.server.value}: {why})",
            )


@dataclass
class ParityOptions:
    """How a deployed form's answers are compared with the trained model's (every serving target)."""

    parity_examples: Optional[int] = None  # holdout examples compared; null = all of them
    parity_atol: float = 0.0  # served vs the trained model computing as the export does; 0 = bit-exact
    parity_holdout_atol: float = 1e-6  # served vs the evaluate step's predictions (Keras' predict loop rounds
    #                                    differently in the last float32 bits on some batches)

    def parity_problems(self) -> Iterator[Problem]:
        if self.parity_examples is not None:
            yield from at_least("target.parity_examples", self.parity_examples, 1)
        yield from at_least("target.parity_atol", self.parity_atol, 0.0)
        yield from at_least("target.parity_holdout_atol", self.parity_holdout_atol, 0.0)


@dataclass
class TfservingTarget(ServingOptions, ParityOptions, TargetConfig):
    """Serve the export with TF Serving, check it answers exactly like the trained model, time it."""

    name: str = "tfserving"
    steps: List[str] = field(default_factory=lambda: list(TFSERVING_STEPS))
    attach: bool = False  # use the server already running at host:grpc_port / rest_port (it watches base_path)
    keep_running: bool = False  # leave the server up after the run (record says how to query and stop it)
    latency_requests: int = 200  # batch-1 requests timed per protocol
    large_batch: int = 256
    large_batch_requests: int = 20
    warmup_records: int = 8  # requests in the warm-up file (0 = none)
    request_timeout_s: float = 30.0
    replicas: int = 1  # servers started; more than one (or a split) puts Debian's nginx in front of them
    version_labels: Dict[str, str] = field(default_factory=dict)  # label -> version number, or "new" (this run's)
    split: Dict[str, int] = field(default_factory=dict)  # label -> percent of requests naming no version (sum 100)
    split_requests: int = 4000  # requests through the balancer measuring the split (2,000 REST: sd 0.67 points at 10 %)
    split_tolerance: float = 2.0  # percentage points a measured share may differ from its stated one
    config_poll_seconds: int = 1  # how often each replica re-reads its model config file (labels, rolls)

    @property
    def balanced(self) -> bool:
        """A group of replicas behind nginx rather than one server."""
        return self.replicas > 1 or bool(self.split)

    def problems(self) -> Iterator[Problem]:
        yield from self.serving_problems("target")
        yield from self.group_problems()
        if not self.attach:  # an attached server is already running, whatever its kind
            yield from self.server_problems("target")
        if self.attach and not (self.grpc_port and self.rest_port):
            yield Problem(
                "target.grpc_port",
                self.grpc_port,
                "the running server's ports (target.grpc_port and target.rest_port) when target.attach=true",
            )
        if self.attach and self.keep_running:
            yield Problem(
                "target.keep_running",
                self.keep_running,
                "false when target.attach=true (an attached server is not this run's to keep or stop)",
            )
        yield from self.parity_problems()
        yield from between(
            "target.latency_requests", self.latency_requests, 10, 1_000_000, low_inclusive=True, high_inclusive=True
        )
        yield from between("target.large_batch", self.large_batch, 1, 65_536, low_inclusive=True, high_inclusive=True)
        yield from at_least("target.large_batch_requests", self.large_batch_requests, 1)
        yield from between(
            "target.warmup_records", self.warmup_records, 0, 1000, low_inclusive=True, high_inclusive=True
        )
        if not self.request_timeout_s > 0:
            yield Problem("target.request_timeout_s", self.request_timeout_s, "a number of seconds > 0")
        known = [s for s in self.steps if s in TFSERVING_STEPS]
        if known != list(TFSERVING_STEPS[: len(known)]):
            yield Problem("target.steps", self.steps, "tfserving steps in the order " + " -> ".join(TFSERVING_STEPS))

    def group_problems(self) -> Iterator[Problem]:
        """Replicas, labels and the split, each checked before any server starts."""
        yield from between("target.replicas", self.replicas, 1, MAX_REPLICAS, low_inclusive=True, high_inclusive=True)
        for label, version in self.version_labels.items():
            if not LABEL_RE.fullmatch(str(label)):
                yield Problem("target.version_labels", label, "labels of letters, digits, '_' or '-', not all digits")
            if str(version) != NEW_VERSION and not str(version).isdigit():
                yield Problem(f"target.version_labels.{label}", version, f"a version number or {NEW_VERSION!r}")
        if self.split:
            shares = dict(self.split)
            if any(not isinstance(v, int) or v < 0 for v in shares.values()) or sum(shares.values()) != 100:
                yield Problem("target.split", shares, "percentages >= 0 that sum to 100, e.g. {stable: 90, canary: 10}")
            for label in shares:
                if label not in self.version_labels:
                    yield Problem(
                        f"target.split.{label}",
                        shares[label],
                        f"a label of target.version_labels ({', '.join(self.version_labels) or 'none set'}) "
                        "naming the version that label's share goes to",
                    )
            yield from between(
                "target.split_requests", self.split_requests, 100, 1_000_000, low_inclusive=True, high_inclusive=True
            )
            yield from between(
                "target.split_tolerance", self.split_tolerance, 0.0, 100.0, low_inclusive=False, high_inclusive=True
            )
        yield from between(
            "target.config_poll_seconds", self.config_poll_seconds, 1, 3600, low_inclusive=True, high_inclusive=True
        )
        if self.balanced and self.attach:
            yield Problem(
                "target.attach",
                self.attach,
                "false with target.replicas > 1 or target.split (the run starts the group and its balancer)",
            )
        if self.balanced:
            from tfrun.tasks.core.serving_backends import NGINX_SETUP, nginx_path

            if nginx_path() is None:
                key, value = ("target.replicas", self.replicas) if self.replicas > 1 else ("target.split", self.split)
                yield Problem(key, value, f"1 (one server, no balancer) while nginx is not installed ({NGINX_SETUP})")

    def label_problems(self, model_dir: Path) -> Iterator[Problem]:
        """A label must name a version the repository holds (or this run's new one)."""
        have = {int(p.name) for p in model_dir.iterdir() if p.name.isdigit()} if model_dir.is_dir() else set()
        for label, version in self.version_labels.items():
            if str(version).isdigit() and int(version) not in have:
                yield Problem(
                    f"target.version_labels.{label}",
                    version,
                    f"{NEW_VERSION!r} or a version in {model_dir} ({', '.join(map(str, sorted(have))) or 'none yet'})",
                )


@dataclass
class ServeConfig(ServingOptions):
    """job=serve: a server in the foreground on an existing repository (tfrun job=serve)."""

    grpc_port: int = 8500  # TF Serving's usual ports; 0 = a free port
    rest_port: int = 8501
    model_name: str = "${model_name}"
    model_config_file: Optional[str] = None  # a TF Serving model config file (several models, policies, labels)
    duration_s: Optional[float] = None  # stop after this many seconds (null: until Ctrl-C / SIGTERM)
    load_retries: int = 5
    replicas: int = 1  # servers of the newest version; more than one puts Debian's nginx in front of them
    config_poll_seconds: int = 1  # how often each replica re-reads its model config file (job=promote moves labels)

    def problems(self) -> Iterator[Problem]:
        yield from self.serving_problems("serve")
        yield from between("serve.replicas", self.replicas, 1, MAX_REPLICAS, low_inclusive=True, high_inclusive=True)
        yield from between(
            "serve.config_poll_seconds", self.config_poll_seconds, 1, 3600, low_inclusive=True, high_inclusive=True
        )
        if self.replicas > 1 and self.model_config_file is not None:
            yield Problem(
                "serve.model_config_file",
                self.model_config_file,
                "null with serve.replicas > 1 (each replica reads a model config file of its own)",
            )

    def server_problems(self, prefix: str) -> Iterator[Problem]:
        """job=serve's tools: the server kind, and nginx in front of serve.replicas > 1."""
        yield from super().server_problems(prefix)
        if self.replicas > 1:
            from tfrun.tasks.core.serving_backends import NGINX_SETUP, nginx_path

            if nginx_path() is None:
                yield Problem(f"{prefix}.replicas", self.replicas, f"1 while nginx is not installed ({NGINX_SETUP})")
        if self.model_config_file is not None and not os.path.isfile(self.model_config_file):
            yield Problem("serve.model_config_file", self.model_config_file, "an existing model config file")
        if self.duration_s is not None and not self.duration_s > 0:
            yield Problem("serve.duration_s", self.duration_s, "null (until stopped) or a number of seconds > 0")


@dataclass
class RollbackConfig:
    """job=rollback: serve an older version again by setting the newer ones aside."""

    to_version: Optional[int] = None  # null = the version before the newest
    model_name: str = "${model_name}"
    base_path: str = "${models_dir}"
    url: Optional[str] = None  # a running server's REST URL (http://127.0.0.1:8501): wait until it switched
    wait_s: float = 60.0

    def problems(self) -> Iterator[Problem]:
        if self.to_version is not None:
            yield from at_least("rollback.to_version", self.to_version, 0)
        if self.url is not None and not self.url.startswith("http://"):
            yield Problem("rollback.url", self.url, "null or a server's REST URL such as http://127.0.0.1:8501")
        if not self.wait_s > 0:
            yield Problem("rollback.wait_s", self.wait_s, "a number of seconds > 0")


# ------------------------------------------------------------------- web (TF.js)
class WebQuantize(Enum):
    none = "none"  # float32 weights
    float16 = "float16"  # the converter's --quantize_float16
    uint8 = "uint8"  # --quantize_uint8 (affine, per weight tensor)
    uint16 = "uint16"  # --quantize_uint16


class WebBackend(Enum):
    wasm = "wasm"  # TF.js' WebAssembly backend (its .wasm files are in the bundle); cpu if it cannot start
    cpu = "cpu"  # plain JavaScript


class WebFormat(Enum):
    graph_model = "graph_model"  # the tensorflowjs converter's model.json + weight shards, run by TF.js
    tflite = "tflite"  # the .tflite file target=tflite writes, run by @tensorflow/tfjs-tflite


WEB_TFLITE_MODES = ("none", "float16", "int8")  # what tfjs-tflite loads from TF 2.21 (FACTS: dynamic fails)
WEB_STEPS = ("web_convert", "web_bundle", "web_parity")
WEB_SETUP = "scripts/web_setup.sh"  # npm ci of tasks/web/js, the converter beside the venv, Debian's chromium


def web_node_modules(given: Optional[str]) -> Path:
    """target.node_modules, or where scripts/web_setup.sh's npm ci puts them (tasks/web/js/node_modules)."""
    from tfrun.tasks.core.paths import SOURCE_ROOT

    return Path(given) if given else SOURCE_ROOT / "tasks" / "web" / "js" / "node_modules"


def web_converter_dir(given: Optional[str]) -> Path:
    """target.converter, or where scripts/web_setup.sh installs the tensorflowjs converter (<venv>/tfjs-converter)."""
    import sys

    return Path(given) if given else Path(sys.prefix) / "tfjs-converter"


@dataclass
class WebTarget(TargetConfig):
    """The export as a TF.js graph model in a static web page (installable, offline), checked in a real browser."""

    name: str = "web"
    steps: List[str] = field(default_factory=lambda: list(WEB_STEPS))
    format: WebFormat = WebFormat.graph_model
    quantize: WebQuantize = WebQuantize.none  # format=graph_model
    quantization: Quantization = Quantization.none  # format=tflite: none (float32) | float16 | int8
    representative_samples: int = 300  # format=tflite, quantization=int8: calibration examples
    backend: WebBackend = WebBackend.wasm
    class_names: Optional[List[str]] = None  # the page's words for the classes (default: their ids)
    parity_atol: float = 1e-5  # max |browser - trained model| over the holdout; argmax must agree on every row
    parity_examples: Optional[int] = None  # holdout rows the browser predicts (null = all)
    browser: str = "/usr/bin/chromium"  # Debian's chromium (apt-get install chromium), driven by puppeteer-core
    node: str = "node"  # Node.js that runs the browser check (tasks/web/js/check.mjs)
    node_modules: Optional[str] = None  # null = tasks/web/js/node_modules (npm ci)
    converter: Optional[str] = None  # null = <venv>/tfjs-converter (tensorflowjs, installed beside the pinned set)
    timeout_s: float = 180.0  # conversion, and the browser check
    serve: bool = False  # after the checks, leave a static server on host:port serving the bundle (URL and stop
    host: str = "127.0.0.1"  # command printed and recorded); 0.0.0.0 would expose it beyond this machine
    port: int = 0  # 0 = a free port

    def planned_steps(self) -> list[str]:
        return list(self.steps) + (["web_serve"] if self.serve else [])

    def problems(self) -> Iterator[Problem]:
        yield from at_least("target.parity_atol", self.parity_atol, 0.0)
        if self.format is WebFormat.tflite:
            if self.quantization.value not in WEB_TFLITE_MODES:
                yield Problem(
                    "target.quantization",
                    self.quantization.value,
                    f"one of {', '.join(WEB_TFLITE_MODES)} with target.format=tflite: the browser's "
                    "TFLite runtime (@tensorflow/tfjs-tflite) cannot load the dynamic-range ops TF 2.21 "
                    "writes (FULLY_CONNECTED version 12); use float16 or int8",
                )
            if self.quantize is not WebQuantize.none:
                yield Problem(
                    "target.quantize",
                    self.quantize.value,
                    "none with target.format=tflite (target.quantization chooses the .tflite file's mode)",
                )
            if self.quantization is Quantization.int8 and self.representative_samples < MIN_REPRESENTATIVE_SAMPLES:
                yield Problem(
                    "target.representative_samples",
                    self.representative_samples,
                    f"a number >= {MIN_REPRESENTATIVE_SAMPLES} when target.quantization=int8",
                )
        elif self.quantization is not Quantization.none:
            yield Problem(
                "target.quantization",
                self.quantization.value,
                "none with target.format=graph_model "
                "(target.quantize chooses its weight quantization), or target.format=tflite",
            )
        if self.parity_examples is not None:
            yield from at_least("target.parity_examples", self.parity_examples, 1)
        if not self.timeout_s > 0:
            yield Problem("target.timeout_s", self.timeout_s, "a number of seconds > 0")
        yield from between("target.port", self.port, 0, 65535, low_inclusive=True, high_inclusive=True)
        if not self.host or any(c.isspace() for c in self.host):
            yield Problem("target.host", self.host, "an address to bind, e.g. 127.0.0.1 (the default)")
        yield from self.tool_problems()

    def tool_problems(self) -> Iterator[Problem]:
        """What target=web needs on this machine, found before training: one line each, with its install command."""
        import shutil

        if shutil.which(self.node) is None:
            yield Problem("target.node", self.node, f"Node.js on PATH (apt-get install nodejs npm), then {WEB_SETUP}")
        modules = web_node_modules(self.node_modules)
        for package in (
            "@tensorflow/tfjs",
            "@tensorflow/tfjs-backend-wasm",
            "@tensorflow/tfjs-tflite",
            "puppeteer-core",
        ):
            if not (modules / package / "package.json").is_file():
                yield Problem(
                    "target.node_modules",
                    str(modules),
                    f"the npm packages of tasks/web/js installed ({package} is missing): run {WEB_SETUP} (npm ci)",
                )
                break
        if not (os.path.isfile(self.browser) and os.access(self.browser, os.X_OK)):
            yield Problem(
                "target.browser",
                self.browser,
                f"a Chromium executable: apt-get install chromium ({WEB_SETUP} does), or target.browser=PATH",
            )
        converter = web_converter_dir(self.converter)
        if (
            self.format is WebFormat.graph_model
            and not (converter / "tensorflowjs" / "converters" / "converter.py").is_file()
        ):
            yield Problem(
                "target.converter",
                str(converter),
                f"the tensorflowjs converter installed there: run "
                f"{WEB_SETUP} (pip install --no-deps --target, beside the pinned set)",
            )


@dataclass
class ServeWebConfig:
    """job=serve_web: a static server in the foreground on an existing page bundle (<NNNN>.web) until stopped."""

    model_name: str = "${model_name}"
    base_path: str = "${models_dir}"
    version: Optional[int] = None  # null = the newest version that has a bundle
    host: str = "127.0.0.1"  # 0.0.0.0 would expose it beyond this machine
    port: int = 8080  # 0 = a free port
    duration_s: Optional[float] = None  # stop after this many seconds (null: until Ctrl-C / SIGTERM)

    def problems(self) -> Iterator[Problem]:
        yield from between("serve_web.port", self.port, 0, 65535, low_inclusive=True, high_inclusive=True)
        if not self.host or any(c.isspace() for c in self.host):
            yield Problem("serve_web.host", self.host, "an address to bind, e.g. 127.0.0.1 (the default)")
        if self.version is not None:
            yield from at_least("serve_web.version", self.version, 1)
        if self.duration_s is not None and not self.duration_s > 0:
            yield Problem("serve_web.duration_s", self.duration_s, "null (until stopped) or a number of seconds > 0")
