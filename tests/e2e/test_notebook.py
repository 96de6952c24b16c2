"""examples/notebook/tour.ipynb executed by a real Jupyter kernel (nbclient + ipykernel) of this Python, in an
empty folder: every run succeeds, the accuracy it prints is its record's, and the command's lines and the
progress display reach the cell while the run goes, not only at its end."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, read_record

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

NOTEBOOK = ROOT / "examples" / "notebook" / "tour.ipynb"
KERNEL = "tfrun-test-python"


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JUPYTER_PATH folder whose kernel KERNEL is this Python (whatever `python3` elsewhere is)."""
    kernels = tmp_path_factory.mktemp("jupyter")
    spec = kernels / "kernels" / KERNEL / "kernel.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "tfrun tests",
                "language": "python",
                "env": {"TF_CPP_MIN_LOG_LEVEL": "2"},
            }
        )
    )
    return kernels


@pytest.fixture(scope="module")
def executed(
    kernels: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, dict[int, list[tuple[float, str, str]]], Path]:
    """The notebook after a run, and when each output message of each cell arrived."""
    import nbformat
    from nbclient import NotebookClient

    workdir = tmp_path_factory.mktemp("notebook")
    (workdir / "tasks.py").write_text("import invoke  # a project's own tasks.py must not matter\n")
    arrivals: dict[int, list[tuple[float, str, str]]] = {}

    class TimedClient(NotebookClient):
        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            content = msg.get("content") or {}
            text = content.get("text") or json.dumps(content.get("data") or {}, ensure_ascii=False)
            arrivals.setdefault(cell_index, []).append((time.monotonic(), msg["msg_type"], text))
            return super().process_message(msg, cell, cell_index)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(kernels))
        client = TimedClient(
            nb, kernel_name=KERNEL, timeout=900, resources={"metadata": {"path": str(workdir)}}, allow_errors=False
        )
        client.execute()
    return nb, arrivals, workdir


def _code_cell(nb: Any, marker: str) -> tuple[int, Any]:
    return next((i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and marker in c.source)


def _text(cell: Any) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(str(out.data.get("text/plain", "")))
    return "".join(parts)


@pytest.mark.timeout(1200)
def test_the_tour_runs_and_prints_what_the_records_hold(executed):
    nb, _, workdir = executed
    _, check = _code_cell(nb, "tfrun.compose(")
    assert "rejected: train.epochs=0 is not allowed: expected a number >= 1" in _text(check)

    _, train = _code_cell(nb, 'first = tfrun.run("train.epochs=3")')
    match = re.search(r"trained: (\w+) (\S+) (\S+)", _text(train))
    assert match, _text(train)
    status, accuracy, path = match.groups()
    record = json.loads(Path(path).read_text())
    assert status == record["status"] == "succeeded"
    assert float(accuracy) == record["metrics"]["final"]["holdout_accuracy"]
    assert Path(path).is_relative_to(workdir / "runs")

    _, lite = _code_cell(nb, "target=tflite")
    match = re.search(r"tflite: (\w+) (\S+) (\S+)", _text(lite))
    assert match and match.group(1) == "succeeded", _text(lite)
    assert Path(match.group(3)).is_file() and match.group(3).endswith(".tflite")

    _, compare = _code_cell(nb, "pd.DataFrame(\n    [")
    table = _text(compare)
    assert "runs found: 2" in table and "holdout_accuracy" in table and "target=tflite" in table

    _, sweep = _code_cell(nb, "tfrun.sweep(")
    text = _text(sweep)
    assert "jobs: ['succeeded', 'succeeded']" in text
    jobs = sorted((workdir / "multiruns").rglob("record.json"))
    assert len(jobs) == 2 and all(json.loads(j.read_text())["status"] == "succeeded" for j in jobs)
    best = max(json.loads(j.read_text())["metrics"]["final"]["holdout_accuracy"] for j in jobs)
    assert re.search(rf"best: \d+ {re.escape(str(best))}\n", text), text
    assert "model.n_hidden" in text  # the table


@pytest.mark.timeout(1200)
def test_lines_and_progress_reach_the_cell_while_the_run_goes(executed):
    nb, arrivals, _ = executed
    index, train = _code_cell(nb, 'first = tfrun.run("train.epochs=3")')
    messages = arrivals[index]
    ended = max(t for t, kind, _ in messages if kind == "stream")
    first_step = next(t for t, kind, text in messages if kind == "stream" and "✓ hardware" in text)
    assert ended - first_step > 1.0, "the command's lines came only at the end"
    updates = [text for _, kind, text in messages if kind == "update_display_data"]
    assert any(re.search(r" · train · epoch [12]/3 · loss \d", text) for text in updates), updates  # while training
    (progress,) = [out for out in train.outputs if out.output_type == "display_data"]
    assert re.match(r"tfrun run \S+ · succeeded in [\d.]+ s · holdout_accuracy \d\.\d{4}$", progress.data["text/plain"])
    _, sweep = _code_cell(nb, "tfrun.sweep(")
    (progress,) = [out for out in sweep.outputs if out.output_type == "display_data"]
    assert progress.data["text/plain"].startswith("tfrun job 1 · succeeded")


@pytest.mark.timeout(600)
def test_interrupt_kernel_stops_the_run_and_leaves_an_interrupted_record(kernels: Path, tmp_path: Path):
    """Jupyter's "interrupt kernel" (SIGINT to the kernel) during tfrun.run: the record ends `interrupted` and the
    cell ends with KeyboardInterrupt; the kernel lives on."""
    from jupyter_client.manager import start_new_kernel

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(kernels))
        km, kc = start_new_kernel(kernel_name=KERNEL, cwd=str(tmp_path))
    try:
        kc.execute("import tfrun\nrecord = tfrun.run('train.epochs=500', 'hydra.run.dir=runs/long')")
        seen, error, interrupted = [], None, False
        deadline = time.monotonic() + 500
        while time.monotonic() < deadline:
            msg = kc.get_iopub_msg(timeout=deadline - time.monotonic())
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                seen.append(content["text"])
                if not interrupted and " - loss: " in content["text"]:  # an epoch ended: training is under way
                    km.interrupt_kernel()
                    interrupted = True
            elif kind == "error":
                error = content["ename"]
            elif kind == "status" and content["execution_state"] == "idle" and interrupted:
                break
        assert interrupted and error == "KeyboardInterrupt", "".join(seen)
        record = read_record(tmp_path / "runs" / "long")
        assert record["status"] == "interrupted" and record["error"]["signal"] == "SIGINT"
        kc.execute("print(tfrun.load('runs/long').status)")  # the kernel is still there
        reply = ""
        while "interrupted" not in reply:
            msg = kc.get_iopub_msg(timeout=60)
            reply += msg["content"].get("text", "") if msg["msg_type"] == "stream" else ""
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
