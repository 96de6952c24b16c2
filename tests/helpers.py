"""Helpers the tests share (fixtures live in the conftest.py of each folder; no test module imports another).

Everything here talks only to this machine: commands run from this environment's bin/, servers bind
127.0.0.1 on free ports.
"""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.warm_commands import WarmCommands
from tfrun.runner import records_cli
from tfrun.runner.records import record as records
from tfrun.runner.records import rerun_cli


# ---- Heavy packages a test module needs, imported when a test uses them
def requires(*packages: str) -> pytest.MarkDecorator:
    """Skip where a package is not installed, without importing it (importorskip would, at collection)."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"not installed here: {', '.join(missing)}")


class LazyModule:
    """A module imported on its first attribute use. Every xdist worker collects every test module, and a module-level
    `import tensorflow` (or the cloud SDK, or MLflow) cost each worker seconds of a core at collection for tests that
    run on one of them; used inside the tests, it is imported where they run."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith(("__", "_mock")):  # collection probes each module attribute (__test__, _mock_name)
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        """Refused: it would land on this stand-in, not on the module the package reads (patch by dotted name)."""
        raise TypeError(f"patch {self._name}.{attribute} by its dotted name, not through a LazyModule")


# ---- Running tfrun's own commands the way a user does
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def command_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(extra)
    return env


# Commands forked from a warm Python (tests/warm_commands.py); TFRUN_TEST_FRESH_COMMANDS=1 starts each afresh.
WARM = WarmCommands(command_env)


def run_tfrun(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`tfrun ARGS` in cwd with env, its output captured, as subprocess.run gives it."""
    if os.environ.get("TFRUN_TEST_FRESH_COMMANDS") == "1":
        return subprocess.run(
            [str(BIN / "tfrun"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    return WARM.run(args, cwd, env, timeout)


def tfrun(*args: str, cwd: Path, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Run `tfrun ARGS` in cwd and capture its output."""
    proc = run_tfrun(list(args), cwd, command_env(), timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"tfrun {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_rejected(proc: subprocess.CompletedProcess, words: list[str], run_dir: Path) -> str:
    """A config error as tfrun reports it: exit 2, every word in the message, no traceback, no run dir left."""
    message = proc.stdout + proc.stderr
    assert proc.returncode == 2, message
    for word in words:
        assert word in message, f"{word!r} missing from:\n{message}"
    assert "Traceback" not in message
    assert not run_dir.exists(), "a rejected config must not leave a run dir"
    return message


def read_record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "record.json").read_text())


def write_user_project(root: Path, modules: dict[str, str], configs: dict[str, str]) -> Path:
    """A user's project in root: its modules (dedented) at the top, its configs under my_conf/ (tfrun's
    `--config-dir my_conf`)."""
    for name, text in modules.items():
        (root / name).write_text(textwrap.dedent(text))
    for name, text in configs.items():
        path = root / "my_conf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run_failing_on_user_code(
    project: Path,
    overrides: list[str],
    run_dir: str,
    step: str,
    words: list[str],
    own_files: tuple[str, ...],
    timeout: float,
) -> str:
    """`tfrun --config-dir my_conf OVERRIDES train.epochs=1` in a user's project, which must fail on the user's
    code: exit 1 and a failed record (in project/run_dir) whose UserCodeError at `step` holds every word, the
    first shown in tfrun's one-line error, and no traceback of tfrun's own files. The run's output."""
    proc = tfrun(
        "--config-dir",
        "my_conf",
        *overrides,
        "train.epochs=1",
        f"hydra.run.dir={run_dir}",
        cwd=project,
        timeout=timeout,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    record = read_record(project / run_dir)
    assert record["status"] == "failed"
    error = record["error"]
    assert error["type"] == "UserCodeError" and error["step"] == step, error
    for word in words:
        assert word in error["message"], error["message"]
    assert f"[tfrun] error: UserCodeError: {words[0]}" in output
    for own in own_files:
        assert own not in output, f"a traceback of tfrun's {own} was shown:\n{output}"
    return output


TRAINED_RUN = "runs/train"  # the run dir of the shared trained model (fixture trained_digits, tests/conftest.py)


def copy_trained(trained: Path, workdir: Path) -> Path:
    """A copy of the shared trained run (its run dir and models/) in workdir, for a test that deploys it: what a
    deploy writes (a .tflite beside the export, a page bundle, a version set aside) stays in the test's folder.
    `tfrun job=deploy source=runs/train` from workdir checks the copy's files against the run's record."""
    shutil.copytree(trained / TRAINED_RUN, workdir / TRAINED_RUN)
    shutil.copytree(trained / "models", workdir / "models")
    return workdir


def copy_example(name: str, root: Path) -> Path:
    """A copy of examples/NAME at root, without what runs there left behind (runs/, models/, data/, caches)."""
    source = ROOT / "examples" / name

    def outputs(folder: str, names: list[str]) -> list[str]:
        top = Path(folder) == source
        return [n for n in names if n == "__pycache__" or top and n in ("runs", "models", "multiruns", "data")]

    shutil.copytree(source, root, ignore=outputs)
    return root


# ---- Free ports on 127.0.0.1 for the servers a test starts
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- Offline runs: no network, no TensorFlow or cloud SDK import (tests/fakes/offline)
def as_foreground() -> None:
    """preexec_fn for a process a test will Ctrl-C: SIGINT at its default and unblocked, as a terminal's foreground
    process has it. A process inherits an ignored or blocked SIGINT from its parent (a shell's background job: then
    Python raises no KeyboardInterrupt, rightly); a test worker that has run other tests in-process may be in that
    state, and the test is about tfrun's answer to a Ctrl-C, not about the worker's."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def offline_tfrun(args: list[str], cwd: Path, log: Path, **extra_env: str) -> subprocess.CompletedProcess:
    # No warm child: it imports TensorFlow by design, in its own process, and under load it would get that
    # far before validation stops it; what is checked here is the tfrun process itself.
    env = command_env(TFRUN_OFFLINE_LOG=str(log), TFRUN_NO_PRESTART="1", **extra_env)
    env.pop("TFRUN_ZYGOTE", None)  # the suite's warm TensorFlow (tests/conftest.py): a job checked here starts cold
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "fakes" / "offline"), env.get("PYTHONPATH", "")])
    env.pop("STORAGE_EMULATOR_HOST", None)
    return run_tfrun(args, cwd, env, timeout=60)


def assert_rejected_offline(overrides: list[str], words: list[str], workdir: Path) -> None:
    """`tfrun OVERRIDES` with the network and the heavy imports blocked: rejected (exit 2), nothing attempted."""
    log = workdir / "blocked.log"
    proc = offline_tfrun([*overrides, "hydra.run.dir=runs/bad"], workdir, log)
    assert_rejected(proc, words, workdir / "runs" / "bad")
    assert not log.exists(), f"blocked imports or connections were attempted:\n{log.read_text()}"


PROBE = """
import sys
sys.argv = ["tfrun", *{args!r}]
import tfrun.runner.cli
try:
    tfrun.runner.cli.main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in ("tensorflow", "tf_keras", "keras", "google.cloud.aiplatform") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
print("CODE=" + str(code))
"""


# ---- Hand-written records for tfrun-records
WEIGHTS = "a276d8ff7a850fad618548fdbf68952e77282c9120390d2a2d00326eb441eb27"


def make_record(**changes: Any) -> dict[str, Any]:
    """A finished run's record, shaped like the ones tfrun writes; `changes` replace top-level keys."""
    config = {
        "train": {"epochs": 2, "learning_rate": 0.001, "seed": 42},
        "model": {"name": "mlp", "n_hidden": 2},
        "target": {"name": "none", "steps": []},
        "optimized_metric": "holdout_accuracy",
    }
    data: dict[str, Any] = {
        "schema_version": records.SCHEMA_VERSION,
        "run_id": "20261126-100000-aaaaaa",
        "status": "succeeded",
        "started_at": "2026-11-26T10:00:00.000+00:00",
        "ended_at": "2026-11-26T10:00:12.000+00:00",
        "seconds": 12.0,
        "job": "train",
        "run_dir": "runs/a",
        "command": {"argv": ["tfrun", "train.epochs=2"], "overrides": ["train.epochs=2"]},
        "config": config,
        "config_sha256": records.config_hash(config),
        "code": {"git_commit": "4edb82b4614f7091fc0db7208b389899f563e81f", "git_dirty": False, "git_diff_sha256": None},
        "environment": {
            "python": "3.11.7",
            "platform": "Linux-x86_64",
            "host": socket.gethostname(),
            "cpu_count": 2,
            "packages": {"tensorflow": "2.21.0", "numpy": "2.4.6"},
            "devices": {"physical": [], "logical": ["/device:CPU:0"]},
        },
        "reproducibility": {"seed": 42, "deterministic": True},
        "plan": ["train", "evaluate", "export"],
        "pids": {"runner": os.getpid(), "child": None},
        "steps": [
            {
                "name": "train",
                "status": "succeeded",
                "started_at": "2026-11-26T10:00:01.000+00:00",
                "seconds": 1.71,
                "result": {"summary": "2 epoch(s); loss 1.1937", "weights_sha256": WEIGHTS},
            },
            {
                "name": "export",
                "status": "succeeded",
                "started_at": "2026-11-26T10:00:03.000+00:00",
                "seconds": 0.97,
                "result": {"summary": "models/digits_mlp/0001 (version 1, 222,248 bytes)"},
            },
        ],
        "metrics": {
            "history": {"loss": [2.0, 1.19]},
            "final": {"loss": 1.19, "accuracy": 0.81, "holdout_accuracy": 0.8527777791023254, "holdout_loss": 0.81},
        },
        "artifacts": [
            {
                "kind": "saved_model",
                "path": "models/digits_mlp/0001",
                "version": 1,
                "sha256": "1c05cdd2992f41e1e7a24fb97a0d8669a0d581b6b74ac2a1c417ac19b55ee875",
                "bytes": 222248,
                "files": [],
            }
        ],
        "weights_sha256": WEIGHTS,
        "deployments": [],
        "error": None,
    }
    data.update(changes)
    return data


def write(run_dir: Path, data: dict[str, Any]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "record.json").write_text(json.dumps(data, indent=2))
    return run_dir


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def command_line(proc: Path) -> str:
    """The command line of a /proc/<pid> entry, its NULs as spaces."""
    return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()


def process_tree(pid: int) -> str:
    """pid and its descendants, one line each: state, the kernel wait of each thread, command line. What a test
    prints when a process it stopped does not end, so the report says which process waits, and on what."""
    stats: dict[int, tuple[int, str]] = {}  # pid -> (parent, state), from one read of each /proc/<pid>/stat
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                state, parent = stat[stat.rindex(")") + 2 :].split()[:2]
                stats[int(entry.name)] = (int(parent), state)
            except (OSError, ValueError):
                continue
    lines, todo = [], [(pid, 0)]
    while todo:
        current, depth = todo.pop()
        proc = Path(f"/proc/{current}")
        try:
            waits = sorted({(t / "wchan").read_text() or "-" for t in (proc / "task").iterdir()})
            command = command_line(proc)
        except OSError:
            continue
        state = stats.get(current, (0, "?"))[1]
        lines.append(f"{'  ' * depth}{current} {state} waits: {','.join(waits)} {command[:200]}")
        todo += [(child, depth + 1) for child, (parent, _) in stats.items() if parent == current]
    return "\n".join(lines) or f"{pid}: gone"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = records_cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------------------- rerun
class FakeTfrun:
    """Stands in for tfrun: writes a prepared record into hydra.run.dir and exits with a chosen code."""

    SCRIPT = textwrap.dedent("""
        import json, os, sys
        from pathlib import Path
        args = sys.argv[1:]
        Path(os.environ["FAKE_ARGV"]).write_text(json.dumps(args))
        run_dir = Path([a for a in args if a.startswith("hydra.run.dir=")][0].partition("=")[2].strip("'"))
        if os.environ["FAKE_RECORD"]:  # empty: fail before writing a record, as on a config error
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "record.json").write_text(Path(os.environ["FAKE_RECORD"]).read_text())
        print("fake tfrun ran")
        sys.exit(int(os.environ["FAKE_EXIT"]))
    """)

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.tmp_path = tmp_path
        script = tmp_path / "fake_tfrun.py"
        script.write_text(self.SCRIPT)
        monkeypatch.setattr(rerun_cli, "tfrun_command", lambda: [sys.executable, str(script)])
        self.monkeypatch = monkeypatch

    def will_write(self, data: dict[str, Any] | None, exit_code: int = 0) -> None:
        (self.tmp_path / "fake_record.json").write_text(json.dumps(data))
        self.monkeypatch.setenv("FAKE_RECORD", str(self.tmp_path / "fake_record.json") if data else "")
        self.monkeypatch.setenv("FAKE_EXIT", str(exit_code))
        self.monkeypatch.setenv("FAKE_ARGV", str(self.tmp_path / "fake_argv.json"))

    @property
    def argv(self) -> list[str] | None:
        path = self.tmp_path / "fake_argv.json"
        return json.loads(path.read_text()) if path.exists() else None


# ---- Data files
def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


# ---- Cloud runs against the GCS emulator and the fake Vertex server
CLOUD_PROJECT = "tfrun-test"


def cloud_args(fake_vertex: Any, gcs_emulator: Any, bucket: str) -> list[str]:
    return [
        "cloud=gcp",
        f"cloud.project={CLOUD_PROJECT}",
        f"cloud.bucket={bucket}",
        f"cloud.api_endpoint={fake_vertex.url}",
        f"cloud.storage_endpoint={gcs_emulator.url}",
        "cloud.credentials=anonymous",
        "+cloud.labels.suite=e2e",
    ]


def run_tfrun_cloud(args: list[str], cwd: Path, timeout: float = 420) -> subprocess.CompletedProcess:
    env = command_env()
    env.pop("STORAGE_EMULATOR_HOST", None)  # the config alone must reach the emulator
    return run_tfrun([*args, "hydra.run.dir=runs/r"], cwd, env, timeout)


def storage(gcs_emulator: Any) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    return gcs.Client(
        project=CLOUD_PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator.url}
    )


def blob_names(gcs_emulator: Any, bucket: str) -> list[str]:
    client = storage(gcs_emulator)
    if client.lookup_bucket(bucket) is None:
        return []
    return [b.name for b in client.list_blobs(bucket)]


# ---- Plain commands
def run_command(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=180)


def assert_best_line_reproduces(summary: dict[str, Any], sweep_dir: Path, cwd: Path) -> None:
    """The sweep summary's best line, run here as printed: the best job's metric and weights again."""
    best = summary["best"]
    job = read_record(sweep_dir / best["job"])
    rerun = subprocess.run(
        ["bash", "-c", best["command"].replace("tfrun", str(BIN / "tfrun"), 1) + " hydra.run.dir=runs/best"],
        cwd=cwd,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    here = read_record(cwd / "runs" / "best")
    assert here["metrics"]["final"]["holdout_accuracy"] == best["metric"]
    assert here["weights_sha256"] == job["weights_sha256"]
