"""The child (tfrun.runner.child) reports an interruption, not a failure, when the runner's SIGINT comes out of a step
as another exception: TensorFlow's C++ code wraps a KeyboardInterrupt it is handed while handling an error
(pybind11's "RuntimeError: ... REPLACED BY KeyboardInterrupt", seen once in a Ctrl-C'd sweep), which printed a
traceback for a Ctrl-C. The step below stands in for TensorFlow's wrapping, which cannot be triggered on purpose."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, command_env

CHILD = """
import io, json, os, signal, sys, time
from tfrun.runner import child, steps

def wrapped(cfg, ctx):  # as TensorFlow's pybind11 code turns the KeyboardInterrupt into another exception
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10)
    except KeyboardInterrupt:
        raise RuntimeError("pybind11::error_already_set: MISMATCH ... REPLACED BY KeyboardInterrupt")

def broken(cfg, ctx):
    raise RuntimeError("a real failure")

steps.load = lambda name: {"wrapped": wrapped, "broken": broken}[name]
read, write = os.pipe()
sys.stdin = io.StringIO(json.dumps({"run_dir": sys.argv[1], "config": {}, "plan": [sys.argv[2]]}))
code = child.main(["child", str(write)])  # its event stream owns (and may have closed) the write end
os.set_blocking(read, False)
events = os.read(read, 1 << 16).decode().splitlines()
print(json.dumps({"code": code, "events": [json.loads(e)["event"] for e in events]}))
"""


@pytest.mark.parametrize(
    "step, code, last_event, traceback",
    [("wrapped", 130, "interrupted", False), ("broken", 1, "step_error", True)],
)
def test_an_exception_after_the_runners_sigint_is_the_interruption(tmp_path: Path, step, code, last_event, traceback):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), step],
        cwd=ROOT,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"code": code, "events": ["step_start", last_event]}, proc.stderr
    assert ("Traceback" in proc.stderr) is traceback, proc.stderr
