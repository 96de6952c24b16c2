"""The offline Vertex rehearsal (`python -m tests.fakes.rehearsal`) leaves nothing behind when stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, command_env, command_line, requires

pytestmark = requires("google.cloud.aiplatform")


def _start(tmp_path: Path) -> subprocess.Popen:
    env = command_env(TMPDIR=str(tmp_path))  # its temporary folder is made here, where the test can see it
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.rehearsal"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _processes_using(folder: Path) -> list[str]:
    """Processes whose command line or open files name `folder` (the servers the rehearsal started there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            names = [command_line(proc)]
            names += [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except OSError:
            continue
        if any(str(folder) in name for name in names):
            found.append(f"{proc.name}: {names[0][:200]}")
    return found


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("when", ["starting", "emulator-starting", "ready"])
def test_ctrl_c_removes_its_temporary_folder(tmp_path: Path, when: str):
    """SIGINT as soon as its folder exists, while the GCS emulator it started is not answering yet, or once it says
    Ctrl-C stops both: the folder goes and no server is left running."""
    proc = _start(tmp_path)
    try:
        assert _wait_for(lambda: any(tmp_path.glob("tfrun-rehearsal-*")), 60), "no folder was made"
        if when == "emulator-starting":
            assert _wait_for(lambda: any(tmp_path.glob("tfrun-rehearsal-*/gcs/*.log")), 60), "no emulator started"
        if when == "ready":
            line = ""
            while "Ctrl-C stops both" not in line:
                line = proc.stdout.readline()
                assert line, "it ended before saying it was ready"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    assert not list(tmp_path.glob("tfrun-rehearsal-*")), f"left behind: {list(tmp_path.iterdir())}\n{out}"
    assert _wait_for(lambda: not _processes_using(tmp_path), 10), f"servers left running: {_processes_using(tmp_path)}"
