"""Sweep override mistakes read before Hydra starts and a sweeper's refusal, each one line (no TensorFlow, no
composition): the command's own checks are in tests/e2e/test_sweep_grammar.py."""

from __future__ import annotations

import pytest

from tfrun.runner.config.sweep_grammar import before_hydra, from_sweeper


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "train.epochs=1,2", "model.n_hidden=range(1,4)", "hydra/launcher=joblib"],
        ["-m", "train.learning_rate=interval(0.001,0.1)", "sweep=optuna"],  # the sweeper decides (from_sweeper)
        ["-m", "sweep=optuna", "train.learning_rate=tag(log,interval(0.001,0.1))"],
        ["-m", "train.epochs=range(3,1,-1)", "+tuning.params.model.dropout={type:double,min:0.0,max:0.5}"],
        ["train.epochs=3", "--cfg", "job", "hydra.run.dir=runs/x"],
        ["train.epochs=range(1,5,0)"],  # no -m: Hydra says a sweep needs it
    ],
)
def test_good_command_lines_pass(argv: list[str]):
    assert before_hydra(argv) is None


@pytest.mark.parametrize(
    "token, words",
    [
        ("train.epochs=nosuch(1,2)", ["nosuch() is none"]),
        ("train.epochs=range(1,5,0)", ["step 0 never reaches stop"]),
        ("train.epochs=range(1.0,2.0,0.0)", ["step 0 never reaches stop"]),
        ("train.epochs=range(5,1)", ["gives no value"]),
        ("train.learning_rate=tag(log)", ["expected tag(TAG, …, SWEEP)"]),
        ("train.epochs=[1,2", ["override grammar reads", "override_grammar"]),
        ("train.learning_rate=tag(lg,interval(0.001,0.1))", ["expected tag(log, SWEEP)", "lg is none"]),
    ],
)
def test_each_mistake_is_one_line_naming_the_override(token: str, words: list[str]):
    problem = before_hydra(["-m", "train.verbose=0", token])
    key, _, value = token.partition("=")
    assert problem is not None and (problem.key, problem.value) == (key, value), problem
    line = str(problem)
    assert "\n" not in line and all(word in line for word in words), line


def test_the_basic_sweepers_refusal_names_the_interval():
    refusal = Exception("BasicSweeper does not support sweep type : INTERVAL_SWEEP")
    argv = ["-m", "model.n_hidden=1,2", "train.learning_rate=tag(log,interval(0.001,0.1))"]
    problem = from_sweeper(refusal, argv)
    assert problem is not None and problem.value == "tag(log,interval(0.001,0.1))" and "sweep=optuna" in str(problem)
    assert from_sweeper(Exception("something else"), argv) is None


@pytest.mark.parametrize(
    "argv, multirun",
    [
        (["-m", "train.epochs=1,2"], True),
        (["train.epochs=1,2", "--multirun"], True),
        (["hydra.mode=MULTIRUN", "train.epochs=1,2"], True),
        (["++hydra.mode=RunMode.MULTIRUN"], True),
        (["--cfg", "job"], False),
        (["train.epochs=3", "hydra.mode=RUN"], False),
        (["model.name=m"], False),  # a value that only contains an m
    ],
)
def test_only_a_multirun_pays_for_the_sweep_checks(argv: list[str], multirun: bool):
    from tfrun.runner.cli import is_multirun

    assert is_multirun(argv) is multirun


MODULES_PROBE = """
import sys
sys.argv = ["tfrun", *{args!r}]
import tfrun.runner.cli
try:
    tfrun.runner.cli.main()
except SystemExit as exc:
    print("CODE=" + str(exc.code))
loaded = [m for m in ("tfrun.runner.config.sweep_grammar", "tfrun.runner.processes.zygote") if m in sys.modules]
print("LOADED=" + ",".join(loaded))
"""


@pytest.mark.parametrize(
    "args, loaded",
    [
        (["--cfg", "job"], ""),
        (["--cfg", "job", "train.epochs=3"], ""),
        (["-m", "train.epochs=range(1,5,0)"], "tfrun.runner.config.sweep_grammar"),  # refused before Hydra
    ],
)
def test_the_sweep_checks_load_only_for_a_multirun(tmp_path, args: list[str], loaded: str):
    """`tfrun --cfg job` and a single run import neither the sweep grammar nor the zygote before Hydra (start-up)."""
    import subprocess
    import sys

    from tests.helpers import command_env

    proc = subprocess.run(
        [sys.executable, "-c", MODULES_PROBE.format(args=args)],
        cwd=tmp_path,
        env=command_env(TFRUN_NO_PRESTART="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"LOADED={loaded}\n" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("args", [["--cfg", "job", "train.epochs=nosuch(1,2)"], ["train.epochs=[1,2"]])
def test_a_single_runs_unreadable_override_is_still_one_line(tmp_path, args: list[str]):
    """Checked once Hydra refused it (not before Hydra, as a sweep's): the same line, exit 2, nothing run."""
    from tests.helpers import offline_tfrun

    proc = offline_tfrun([*args, "hydra.run.dir=runs/bad"], tmp_path, tmp_path / "blocked.log")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert len(lines) == 3 and lines[0].startswith("tfrun: invalid configuration"), proc.stderr
    assert lines[1].startswith("  - train.epochs=") and "is not allowed: expected" in lines[1], proc.stderr
    assert not (tmp_path / "runs" / "bad").exists()
