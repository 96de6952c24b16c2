"""target=web: convert the export to a TF.js graph model, bundle the page, prove in a real browser it predicts
like the trained model (online, then offline from the service worker's cache).

    web_convert  the tensorflowjs converter (tfrun.tasks.web.converter, its own folder beside the venv) on the
                 export's serving signature -> run_dir/web/graph_model/ (model.json + weight shards)
    web_bundle   the page bundle (tfrun.tasks.web.bundle) at <models_dir>/<model_name>/<NNNN>.web/, copied into
                 the run dir; its files and size
    web_parity   a static server on 127.0.0.1 (free port, stopped by PID) and headless Chromium driven by
                 puppeteer-core (tasks/web/js/check.mjs) run the holdout through the page's own code; argmax
                 equal on every row and max |diff| <= target.parity_atol against the trained model, online
                 and after an offline reload; a screenshot; navigation-to-first-prediction and predict p50
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from tfrun.tasks.core.paths import SOURCE_ROOT
from tfrun.tasks.core.processes import CONVERTER_MODULE, module_command
from tfrun.tasks.core.schema.targets import web_converter_dir, web_node_modules

JS = SOURCE_ROOT / "tasks" / "web" / "js"
STATE = "web"
DTYPES = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_UINT8": "int32", "DT_INT64": "int32"}  # TF.js' view


class WebTargetFailed(RuntimeError):
    """The converter, the page or the browser check failed; the message carries their own words."""

    user_facing = True


def _tail(text: str, lines: int = 12) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip() and not re.match(r"^[IWE]\d{4} ", ln)]
    return "\n".join(kept[-lines:])


# ------------------------------------------------------------------------------------------- convert
def convert_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    if str(cfg.target.format) == "tflite":
        return _tflite_file(cfg, ctx)
    from tfrun.tasks.core.record_io import relative

    target, export = cfg.target, ctx.need("export")
    out = ctx.run_dir / "web" / "graph_model"
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    quantize = str(target.quantize)
    args = [
        "--input_format=tf_saved_model",
        "--output_format=tfjs_graph_model",
        "--signature_name=serving_default",
        "--saved_model_tags=serve",
        *([f"--quantize_{quantize}=*"] if quantize != "none" else []),
        str(export["path"]),
        str(out),
    ]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(web_converter_dir(target.get("converter"))), str(SOURCE_ROOT), os.environ.get("PYTHONPATH", "")]
        ),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    started = time.perf_counter()
    proc = subprocess.run(
        module_command(CONVERTER_MODULE, args),
        env=env,
        capture_output=True,
        text=True,
        timeout=float(target.timeout_s),
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0 or not (out / "model.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        raise WebTargetFailed(
            f"the tensorflowjs converter failed on {relative(export['path'])}:\n{_tail(proc.stderr + proc.stdout)}"
        )
    model = json.loads((out / "model.json").read_text())
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    ctx.state[STATE] = {"graph_model": out, "model_json": model}
    return {
        "summary": f"{relative(out)}: model.json + {len(sizes) - 1} weight shard(s), {sum(sizes.values()):,} "
        f"bytes (quantize={quantize}) in {seconds:.1f} s",
        "path": relative(out),
        "files": sizes,
        "bytes": sum(sizes.values()),
        "quantize": quantize,
        "seconds": round(seconds, 2),
        "converter": model.get("convertedBy"),
    }


def _tflite_file(cfg: Any, ctx: Any) -> dict[str, Any]:
    """format=tflite: the .tflite file target=tflite writes for this mode, beside the export (float32 input and
    output for int8: the page feeds the model's own float inputs)."""
    from tfrun.tasks import tflite
    from tfrun.tasks.core.files import write_atomic
    from tfrun.tasks.core.record_io import relative

    target, export, data = cfg.target, ctx.need("export"), ctx.need("data")
    quantization = str(target.quantization)
    representative = None
    if quantization == "int8":
        representative = tflite.representative_sample(
            data.x_train, int(target.representative_samples), int(cfg.train.seed)
        )
    started = time.perf_counter()
    content = tflite.convert(
        quantization=quantization,
        saved_model_dir=tflite.check_saved_model(export["path"]),
        representative=representative,
        int8_io="float32",
    )
    path = tflite.tflite_path(Path(export["path"]), int(export["version"]), quantization, "float32")
    write_atomic(path, content)
    model = tflite.TfliteModel(path)
    ctx.state[STATE] = {"tflite": path, "tflite_model": model}
    return {
        "summary": f"{relative(path)} ({tflite.label(quantization, 'float32')}: {len(content):,} bytes) in "
        f"{time.perf_counter() - started:.1f} s",
        "path": relative(path),
        "bytes": len(content),
        "sha256": tflite.sha256_bytes(content),
        "quantization": quantization,
    }


# -------------------------------------------------------------------------------------------- bundle
def _signature(model_json: dict[str, Any]) -> tuple[str, list[int], str, str, int]:
    """(input key, shape without batch, TF.js dtype, output key, classes) of the graph model's signature."""
    signature = model_json["signature"]
    ((name, spec),) = signature["inputs"].items()
    shape = [int(d["size"]) for d in spec["tensorShape"]["dim"]][1:]
    outputs = signature["outputs"]
    output = "probabilities" if "probabilities" in outputs else next(iter(outputs))
    classes = int(outputs[output]["tensorShape"]["dim"][-1]["size"])
    return name, shape, DTYPES.get(spec["dtype"], "float32"), output, classes


def bundle_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.core.record_io import relative
    from tfrun.tasks.web.bundle import build

    target, export, data, state = cfg.target, ctx.need("export"), ctx.need("data"), ctx.need(STATE)
    if "tflite" in state:  # fixed batch of 1; inputs and outputs as the interpreter sees them
        model = state["tflite_model"]
        name, shape = model.input["name"], [int(d) for d in model.input["shape"][1:]]
        dtype, output, n_classes = "float32", model.output["name"], int(model.output["shape"][-1])
    else:
        name, shape, dtype, output, n_classes = _signature(state["model_json"])
    names = list(target.class_names) if target.get("class_names") else [str(i) for i in range(n_classes)]
    if len(names) != n_classes:
        raise WebTargetFailed(f"target.class_names has {len(names)} names; the model has {n_classes} classes")
    version = int(export["version"])
    examples = [
        {"x": np.asarray(x).ravel().tolist(), "y": int(y)} for x, y in zip(data.x_holdout[:8], data.y_holdout[:8])
    ]
    page = {
        "title": f"{cfg.model_name} {version:04d}",
        "description": f"tfrun's {cfg.model_name}, version {version}, running in this browser with TensorFlow.js",
        "input": {"name": name, "shape": shape, "dtype": dtype},
        "output": output,
        "classes": names,
        "backend": str(target.backend),
        "scale": float(data.scale),
        "examples": examples,
        "format": str(target.format),
    }
    node_modules = web_node_modules(target.get("node_modules"))
    dest = Path(export["path"]).with_name(f"{version:04d}.web")
    bundle = build(state.get("graph_model") or state["tflite"], dest, page, node_modules)
    copy = ctx.run_dir / "web" / "bundle"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(dest, copy)
    state.update(bundle=bundle, page=page, served=copy)
    return {
        "summary": f"{relative(dest)} ({len(bundle['files'])} files, {bundle['bytes']:,} bytes; copy in "
        f"{relative(copy)}): {name} {shape} {dtype} -> {output} ({n_classes} classes), backend "
        f"{target.backend}",
        "path": relative(dest),
        "copy": relative(copy),
        "bytes": bundle["bytes"],
        "files": bundle["files"],
        "sha256": bundle["sha256"],
    }


# -------------------------------------------------------------------------------------------- parity
class StaticServer:
    """`python -m http.server` on a host and port (127.0.0.1, a free one by default) serving one folder; stopped
    by its PID. Its first line says the port it bound; the rest of its output goes to `log` (or nowhere)."""

    def __init__(
        self, folder: Path, host: str = "127.0.0.1", port: int = 0, log: Path | None = None, timeout_s: float = 30.0
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "--bind", host, str(port), "--directory", str(folder)],
            stdout=subprocess.PIPE,
            stderr=open(log, "ab") if log else subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout_s
        line = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            found = re.search(r"port (\d+)", line)
            if found:
                self.url = f"http://{host}:{found.group(1)}/"
                return
        self.stop()
        raise WebTargetFailed(f"the static server did not start on {host}:{port}: {line.strip() or 'no output'}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait()


def _browser_check(target: Any, url: str, inputs: list[list[float]], screenshot: Path, work: Path) -> dict[str, Any]:
    job = work / "browser_job.json"
    job.write_text(
        json.dumps(
            {
                "url": url + "index.html",
                "browser": str(target.browser),
                "inputs": inputs,
                "batch": 64,
                "screenshot": str(screenshot),
                "timeout_ms": int(target.timeout_s * 1000),
            }
        )
    )
    env = dict(os.environ, NODE_PATH=str(web_node_modules(target.get("node_modules"))))
    proc = subprocess.run(
        [str(target.node), str(JS / "check.mjs"), str(job)],
        cwd=JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=float(target.timeout_s) + 30,
    )
    job.unlink()
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise WebTargetFailed(
            f"the browser check failed (exit {proc.returncode}):\n{_tail(proc.stderr + proc.stdout)}"
        ) from None
    if result.get("error"):
        raise WebTargetFailed(
            f"the page failed in {target.browser}: {result['error']}\n" + "\n".join(result.get("console") or [])
        )
    return result


def _compare(browser: np.ndarray, reference: np.ndarray, atol: float) -> dict[str, Any]:
    diff = np.abs(browser - reference).max(axis=1)
    disagree = np.flatnonzero(browser.argmax(axis=1) != reference.argmax(axis=1))
    worst = np.argsort(-diff)[:5]
    return {
        "max_abs_diff": float(diff.max()),
        "argmax_equal": int(len(browser) - len(disagree)),
        "examples": int(len(browser)),
        "within_tolerance": bool(diff.max() <= atol),
        "worst_rows": [{"row": int(i), "abs_diff": float(diff[i])} for i in worst],
        "argmax_differs_on_rows": disagree[:20].tolist(),
        "passed": bool(diff.max() <= atol and len(disagree) == 0),
    }


def parity_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.core.record_io import relative
    from tfrun.tasks.parity import reference_name, trained_predictions

    target, data, state = cfg.target, ctx.need("data"), ctx.need(STATE)
    n = min(int(target.parity_examples or len(data.x_holdout)), len(data.x_holdout))
    x = np.asarray(data.x_holdout[:n])
    trained = trained_predictions(ctx.need("model"), x, int(cfg.train.batch_size))
    # a .tflite file is held to what LiteRT computes from the same file (a quantized model is not the float one)
    reference = state["tflite_model"].predict(x) if "tflite" in state else trained
    inputs = [row.ravel().tolist() for row in x]
    screenshot = ctx.run_dir / "web" / "screenshot.png"
    server = StaticServer(state["served"])
    try:
        result = _browser_check(target, server.url, inputs, screenshot, ctx.run_dir / "web")
    finally:
        server.stop()
    atol = float(target.parity_atol)
    online = _compare(np.asarray(result["probabilities"], dtype=np.float32), reference, atol)
    offline = _compare(np.asarray(result["offline"]["probabilities"], dtype=np.float32), reference, atol)
    timings = {
        "web_first_prediction_ms": float(result["first_prediction_ms"]),
        "web_predict_p50_ms_batch_1": round(float(result["p50_ms"]["batch_1"]), 4),
        "web_predict_p50_ms_batch_64": round(float(result["p50_ms"]["batch_64"]), 4),
    }
    browser_probs = np.asarray(result["probabilities"], dtype=np.float32)
    report = {
        "online": online,
        "offline": {**offline, "served_by_service_worker": result["offline"]["controlled"]},
        "reference": "LiteRT on the same .tflite file" if "tflite" in state else reference_name(ctx),
        "vs_trained_model": {
            "max_abs_diff": float(np.abs(browser_probs - trained).max()),
            "argmax_equal": int((browser_probs.argmax(1) == trained.argmax(1)).sum()),
        },
        "backend": result["backend"],
        "tolerance": atol,
        "foreign_requests": result["foreign_requests"],
        "screenshot": relative(screenshot),
        "shown": result.get("shown"),
        "browser": str(target.browser),
        **timings,
    }
    bundle = state["bundle"]
    artifact = {
        "kind": "web_bundle",
        "path": relative(bundle["path"]),
        "model_name": cfg.model_name,
        "version": int(ctx.need("export")["version"]),
        "bytes": bundle["bytes"],
        "files": len(bundle["files"]),
        "sha256": bundle["sha256"],
        "format": str(target.format),
        "quantize": str(target.quantize),
        "quantization": str(target.quantization),
        "screenshot": relative(screenshot),
        "parity": report,
    }
    problems = []
    if result["foreign_requests"]:
        problems.append(f"the page asked other hosts: {', '.join(result['foreign_requests'][:3])}")
    for when, check in (("online", online), ("offline", offline)):
        if not check["passed"]:
            rows = ", ".join(f"{w['row']} ({w['abs_diff']:.2e})" for w in check["worst_rows"][:3])
            problems.append(
                f"{when}: max |diff| {check['max_abs_diff']:.2e} > target.parity_atol={atol:g} or argmax "
                f"differs on {check['examples'] - check['argmax_equal']} row(s); worst rows {rows}"
            )
    if not result["offline"]["controlled"]:
        problems.append("offline: the reloaded page was not served by the service worker")
    if problems:
        hint = ""
        if cfg.hardware.get("mixed_precision") and all(c["argmax_equal"] == c["examples"] for c in (online, offline)):
            hint = (
                " The model was trained with hardware.mixed_precision=true and computes in float16; the page "
                "computes in float32 (argmax agrees on every row): a float16-sized target.parity_atol such as "
                "1e-3 fits it."
            )
        shutil.rmtree(bundle["path"], ignore_errors=True)  # not served from the models folder; the run dir keeps it
        raise WebTargetFailed(
            f"the page does not predict like {reference_name(ctx)} in the browser: "
            + "; ".join(problems)
            + f" (screenshot {relative(screenshot)}; the bundle was removed "
            f"from {relative(bundle['path'])}, its copy stays in {relative(state['served'])}).{hint}"
        )
    metrics = {"web_max_abs_diff": online["max_abs_diff"], "web_bundle_bytes": bundle["bytes"], **timings}
    engine = "tfjs-tflite" if "tflite" in state else f"{result['backend']} backend"
    return {
        "summary": f"{engine} in {Path(str(target.browser)).name}: argmax equal on {n}/{n} vs {report['reference']}, "
        f"max |diff| {online['max_abs_diff']:.1e} (offline reload: {offline['max_abs_diff']:.1e}, "
        f"from the service worker); first prediction {timings['web_first_prediction_ms']:.0f} ms, "
        f"p50 {timings['web_predict_p50_ms_batch_1']:.2f} ms (batch 1) / "
        f"{timings['web_predict_p50_ms_batch_64']:.2f} ms (batch 64); {relative(screenshot)}",
        "metrics": metrics,
        "timing_metrics": list(timings),
        "artifacts": [artifact],
        "deployments": [{"kind": "web", "path": relative(bundle["path"]), "status": "checked", "parity": report}],
    }


# --------------------------------------------------------------------------------------------- serve
def serve_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """target.serve=true: a static server left running on target.host:target.port serving the checked bundle."""
    from tfrun.tasks.core.record_io import relative

    target, state = cfg.target, ctx.need(STATE)
    bundle = state["bundle"]["path"]
    server = StaticServer(bundle, str(target.host), int(target.port), log=ctx.run_dir / "web" / "server.log")
    if server.proc.stdout:
        server.proc.stdout.close()  # it goes on without this run; its requests are in the log
    stop = f"kill {server.pid}"
    print(f"[tfrun] the page is served at {server.url}index.html (pid {server.pid}); stop it with `{stop}`", flush=True)
    return {
        "summary": f"{server.url}index.html serves {relative(bundle)} (pid {server.pid}; stop: `{stop}`)",
        "deployments": [
            {
                "kind": "web_server",
                "url": server.url + "index.html",
                "pid": server.pid,
                "path": relative(bundle),
                "stop": stop,
                "status": "serving",
                "log": relative(ctx.run_dir / "web" / "server.log"),
            }
        ],
    }


def serve_bundle_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """job=serve_web: serve an existing bundle in the foreground until Ctrl-C, SIGTERM or serve_web.duration_s."""
    from tfrun.tasks.core.record_io import relative

    s = cfg.serve_web
    folder = Path(s.base_path) / s.model_name
    bundles = sorted(folder.glob("[0-9]*.web"), key=lambda p: int(p.name.split(".")[0])) if folder.is_dir() else []
    if s.version is not None:
        bundles = [b for b in bundles if int(b.name.split(".")[0]) == int(s.version)]
    if not bundles or not (bundles[-1] / "index.html").is_file():
        which = f"version {s.version}" if s.version is not None else "any version"
        raise FileNotFoundError(
            f"no page bundle for {which} in {relative(folder)}: write one with "
            f"`tfrun target=web` (or set serve_web.model_name / serve_web.version)"
        )
    bundle = bundles[-1]
    server = StaticServer(bundle, str(s.host), int(s.port), log=ctx.run_dir / "web_server.log")
    started, reason = time.monotonic(), "stopped"
    print(
        f"[tfrun] serving {relative(bundle)} at {server.url}index.html (pid {server.pid}; Ctrl-C stops it)", flush=True
    )
    try:
        deadline = None if s.duration_s is None else started + float(s.duration_s)
        while server.proc.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                reason = f"serve_web.duration_s={s.duration_s:g} reached"
                break
            time.sleep(0.2)
        else:
            raise WebTargetFailed(f"the static server exited by itself (code {server.proc.returncode})")
    except KeyboardInterrupt:  # how job=serve_web is meant to end (the run is recorded as succeeded, stopped_by)
        reason = "stopped by Ctrl-C or SIGTERM"
    finally:
        server.stop()
    served = round(time.monotonic() - started, 1)
    return {
        "summary": f"served {relative(bundle)} at {server.url}index.html for {served:.1f} s ({reason})",
        "deployments": [
            {
                "kind": "web_server",
                "url": server.url + "index.html",
                "path": relative(bundle),
                "status": "stopped",
                "served_s": served,
                "pid": server.pid,
            }
        ],
    }
