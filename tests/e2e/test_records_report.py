"""`tfrun-records report`: one self-contained page of runs and sweeps, opened, sorted and filtered in headless
Chromium (the browser target=web's tests use); no request leaves the page's own 127.0.0.1 server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port, make_record, run_cli, write
from tfrun.runner.sweeps.summary import summarise

pytestmark = [pytest.mark.e2e]

NODE_MODULES = ROOT / "tasks" / "web" / "js" / "node_modules"
BROWSER = "/usr/bin/chromium"


def _runs(root: Path) -> dict[str, float]:
    """Three runs (one failed, one with a deployment) and a three-job sweep (one pruned); run id -> holdout accuracy."""
    accuracy = {"run-a": 0.91, "run-b": 0.97}
    write(
        root / "runs" / "a",
        make_record(
            run_id="run-a",
            started_at="2026-12-01T10:00:00+00:00",
            metrics={"final": {"holdout_accuracy": 0.91, "holdout_loss": 0.3}},
        ),
    )
    write(
        root / "runs" / "b",
        make_record(
            run_id="run-b",
            started_at="2026-12-01T11:00:00+00:00",
            metrics={"final": {"holdout_accuracy": 0.97, "holdout_loss": 0.1}},
            deployments=[
                {
                    "kind": "tfserving",
                    "status": "stopped",
                    "parity": {"rest": {"passed": True, "max_abs_diff": 0.0}, "grpc": {"passed": True}},
                }
            ],
        ),
    )
    write(
        root / "runs" / "c",
        make_record(
            run_id="run-c",
            status="failed",
            started_at="2026-12-01T12:00:00+00:00",
            metrics={"final": {}},
            artifacts=[],
            error={"type": "KeyError", "message": "no y array"},
        ),
    )
    for job, lr, acc, status in (
        ("0", "0.001", 0.90, "succeeded"),
        ("1", "0.01", 0.95, "succeeded"),
        ("2", "0.1", 0.5, "pruned"),
    ):
        run_id = f"sweep-{job}"
        accuracy[run_id] = acc
        write(
            root / "multiruns" / "s" / job,
            make_record(
                run_id=run_id,
                status=status,
                started_at=f"2026-12-02T10:0{job}:00+00:00",
                command={
                    "argv": ["tfrun", "-m", f"train.learning_rate={lr}"],
                    "overrides": [f"train.learning_rate={lr}"],
                },
                metrics={"final": {"holdout_accuracy": acc}},
            ),
        )
    from tfrun.runner.sweeps.summary import write as write_summary

    write_summary(summarise(root / "multiruns" / "s"))
    return accuracy


def test_the_report_is_one_file_that_opens_sorts_and_filters_in_a_browser(tmp_path: Path, capsys, monkeypatch):
    accuracy = _runs(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "report", "runs", "multiruns", "-o", "site/report.html")
    assert code == 0 and "6 run(s), 1 sweep(s)" in out, out + err
    page = (tmp_path / "site" / "report.html").read_text()
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert [r["run_id"] for r in data["runs"]] == ["run-a", "run-b", "run-c", "sweep-0", "sweep-1", "sweep-2"]
    assert [j["status"] for j in data["sweeps"][0]["jobs"]] == ["succeeded", "succeeded", "pruned"]
    assert data["runs"][0]["record"] == "../runs/a/record.json", "links are relative to the page"
    assert data["runs"][1]["deployments"] == ["tfserving: stopped — rest passed (max |diff| 0.0e+00), grpc passed"]
    assert data["runs"][2]["error"] == "KeyError: no y array"
    assert (
        data["sweeps"][0]["best"]["job"] == "1" and "train.learning_rate=0.01" in data["sweeps"][0]["best"]["command"]
    )
    assert not re.search(r'(src|href)="https?://', page), "nothing is loaded from another host"

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            str(port := free_port()),
            "--directory",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc = subprocess.run(
            [
                "node",
                str(ROOT / "tests" / "e2e" / "report_page.mjs"),
                f"http://127.0.0.1:{port}/site/report.html",
                BROWSER,
                "m:holdout_accuracy",
                str(tmp_path / "report.png"),
            ],
            env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(10)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["errors"] == [] and seen["rows"] == ["run-a", "run-b", "run-c", "sweep-0", "sweep-1", "sweep-2"]
    assert "6 of 6 runs (1 failed, 1 pruned, 4 succeeded)" in seen["counts"], seen["counts"]
    colours = seen["status_colours"]
    plain = "rgb(34, 34, 34)"  # the page's text colour: a status without a style of its own
    assert len({colours["pruned"], colours["failed"], colours["succeeded"], plain}) == 4, colours
    best_first = sorted(accuracy, key=lambda r: -accuracy[r]) + ["run-c"]  # a run without the metric goes last
    assert seen["sorted"] == best_first and seen["sorted_again"] == best_first[-2::-1] + ["run-c"]
    assert seen["filtered"] == ["run-c"]
    assert seen["sweeps"] == 1 and seen["plots"] == (1 if (tmp_path / "multiruns/s/sweep.png").exists() else 0)
    fetched = [u for u in seen["requests"] if not u.startswith("data:")]  # the plots are inline data: URIs
    assert fetched and all(u.startswith(f"http://127.0.0.1:{port}/") for u in fetched), fetched
    assert (tmp_path / "report.png").stat().st_size > 10_000
