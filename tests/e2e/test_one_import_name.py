"""tfrun installs as one import name, `tfrun`: a wheel of the repository holds nothing else at its top, runs the
default job from an empty folder in an environment of its own, and a project holding its own `tasks.py`,
`runner.py`, `tasks/` and `conf/` runs every kind of job (a single run, a target, a sweep, its own configs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT, copy_example, read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# A user's modules named like tfrun's old top-level packages: importing any of them fails the run loudly.
USER_NAMES = {
    "tasks.py": "import invoke  # Invoke's convention: a tasks.py in the project folder\n",
    "runner.py": "raise ImportError('the project runner.py was imported by tfrun')\n",
    "tasks/__init__.py": "raise ImportError('the project tasks/ package was imported by tfrun')\n",
    "runner/__init__.py": "raise ImportError('the project runner/ package was imported by tfrun')\n",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return next(out.glob("tfrun-*.whl"))


def test_the_wheel_holds_one_import_name_and_every_config(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"tfrun"}
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["tfrun"]
    shipped = {n.removeprefix("tfrun/conf/") for n in names if n.startswith("tfrun/conf/")}
    configs = {p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert configs <= shipped, sorted(configs - shipped)
    modules = {
        f"tfrun/{p.relative_to(ROOT).as_posix()}" for top in ("runner", "tasks") for p in (ROOT / top).rglob("*.py")
    }
    assert modules <= set(names), sorted(modules - set(names))
    assert "tfrun/tasks/web/page/index.html" in names and "tfrun/tasks/web/js/package-lock.json" in names


def test_the_wheel_runs_the_default_job_from_an_empty_folder(wheel: Path, tmp_path: Path):
    """A fresh virtual environment holding only the wheel (its dependencies are this environment's, seen through a
    path entry, so nothing is downloaded and tfrun's editable install here stays out of it). The default job (train)
    with train.epochs=1: what is tested is that the wheel runs it, not the training."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.check_output(
        [str(python), "-c", "import tfrun.runner.cli as c; print(c.__file__)"], cwd=empty, text=True
    )
    assert where.startswith(str(site)), where
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TFRUN_NO_FORK"] = "1"  # the wheel's own child, started fresh (not the test environment's zygote)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [str(venv / "bin" / "tfrun"), "train.epochs=1", "hydra.run.dir=runs/default"],  # the wheel is tested
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((empty / "runs/default/record.json").read_text())
    assert record["status"] == "succeeded" and (empty / "models/digits_mlp/0001/saved_model.pb").is_file()
    assert "[tfrun] saved_model: models/digits_mlp/0001" in proc.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The worked example (its own conf/ and package) plus modules named tasks and runner."""
    root = copy_example("wine", tmp_path_factory.mktemp("user") / "wine")
    for name, text in USER_NAMES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    "args",
    [
        ["train.epochs=1"],
        ["target=tflite", "train.epochs=1"],
        ["--config-dir", "conf", "experiment=wine", "train.epochs=1"],
    ],
    ids=["train", "tflite", "config-dir"],
)
def test_a_project_with_its_own_tasks_and_runner_modules_runs(project: Path, args: list[str]):
    run_dir = f"runs/{args[0].replace('=', '-').strip('-')}"
    proc = tfrun(*args, f"hydra.run.dir={run_dir}", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert read_record(project / run_dir)["status"] == "succeeded"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_sweep_in_a_project_with_its_own_tasks_and_runner_modules(project: Path):
    proc = tfrun("-m", "train.epochs=1", "model.n_hidden=1,2", "hydra.sweep.dir=multirun/names", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    statuses = [read_record(project / "multirun/names" / job)["status"] for job in ("0", "1")]
    assert statuses == ["succeeded", "succeeded"]
