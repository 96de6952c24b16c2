"""A models folder without room: before training a full file system is a config problem (exit 2); a write refused
for lack of room while exporting is one line naming the folder and models_dir (tfrun.tasks.export.ExportWriteError,
user-facing: no traceback), and nothing half-written is left or published.

The kernel refuses the writes here, unprivileged: /dev/full answers every write with ENOSPC (the export's file is
a link to it), and a file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) with EFBIG."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from tfrun.runner.config import job_inputs
from tfrun.tasks.export import ExportWriteError, existing_versions, new_version, no_room

FULL = Path("/dev/full")  # Linux's; the suite runs on Linux


def _onto_a_full_disk(tmp_dir: Path) -> None:
    """An export whose variables file lands on a full disk (ENOSPC from the kernel on the write)."""
    (tmp_dir / "saved_model.pb").write_bytes(b"graph")
    (tmp_dir / "variables").mkdir()
    (tmp_dir / "variables" / "variables.data-00000-of-00001").symlink_to(FULL)
    with open(tmp_dir / "variables" / "variables.data-00000-of-00001", "wb") as f:
        f.write(b"\0" * 65536)


def test_no_space_left_is_one_line_and_nothing_is_published(tmp_path: Path):
    base = tmp_path / "models" / "digits_mlp"
    with pytest.raises(ExportWriteError) as info:
        new_version(base, _onto_a_full_disk)
    message = str(info.value)
    assert message.startswith(f"the export could not be written to {base}: no space left on device")
    assert "models_dir" in message and "\n" not in message
    assert info.value.user_facing is True  # the child prints the runner's one error line, no traceback
    assert existing_versions(base) == [] and os.listdir(base) == [], "no temp dir, no version left behind"


def test_a_file_size_limit_is_the_same_one_line(tmp_path: Path):
    """EFBIG from RLIMIT_FSIZE in a process of its own (the limit and SIGXFSZ would reach the test runner)."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from tfrun.tasks.export import ExportWriteError, new_version
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            new_version(Path({str(tmp_path / "m")!r}), lambda d: (d / "saved_model.pb").write_bytes(b"x" * 200_000))
        except ExportWriteError as err:
            print(err)
            sys.exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"could not be written to {tmp_path / 'm'}: file too large" in proc.stdout
    assert "Traceback" not in proc.stderr and os.listdir(tmp_path / "m") == []


def test_tensorflows_words_for_it_are_recognised():
    """TensorFlow's file writer raises an OpError whose message ends in the OS's text; other errors pass on."""
    assert no_room(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"
    tf_style = RuntimeError("models/.export-x/variables/variables.data-00000-of-00001; No space left on device")
    assert no_room(tf_style) == "No space left on device"
    assert no_room(OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))) == os.strerror(errno.EDQUOT)
    assert no_room(OSError(errno.EACCES, "Permission denied")) is None
    assert no_room(ValueError("a shape mismatch")) is None


def test_another_failure_while_exporting_is_raised_as_it_was(tmp_path: Path):
    def broken(tmp_dir: Path) -> None:
        raise ValueError("the model could not be traced")

    with pytest.raises(ValueError, match="could not be traced"):
        new_version(tmp_path / "m", broken)
    assert os.listdir(tmp_path / "m") == []


def _train_config(models_dir: Path) -> SimpleNamespace:
    return SimpleNamespace(job=SimpleNamespace(value="train"), models_dir=str(models_dir), model_name="m")


def test_a_full_file_system_is_found_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """shutil.disk_usage is the operating system's answer; a full disk is not something a test can make here
    without privileges, so its answer is replaced by a full one."""
    assert list(job_inputs.problems(_train_config(tmp_path / "models"))) == []
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=4096))
    (problem,) = job_inputs.problems(_train_config(tmp_path / "models"))
    assert problem.key == "models_dir" and problem.value == str(tmp_path / "models")
    assert f"the file system of {tmp_path} is full (4,096 bytes free)" in problem.allowed
