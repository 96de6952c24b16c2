"""A TF Serving server kind that cannot run here is a config problem before training (issue 30 item 1)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, assert_rejected, command_env
from tfrun.tasks.core.schema.targets import ServeConfig, ServingServer, TfservingTarget


def _path_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **scripts: str) -> None:
    """PATH is only a folder holding these executables (name -> shell body)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in scripts.items():
        exe = folder / name
        exe.write_text(f"#!/bin/sh\n{body}\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


def _server_problems(target) -> list:
    return [p for p in target.problems() if p.key.endswith(".server")]


def test_binary_without_tensorflow_model_server_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _path_with(tmp_path, monkeypatch)
    (problem,) = _server_problems(TfservingTarget(server=ServingServer.binary))
    assert problem.key == "target.server" and problem.value == "binary"
    assert "tensorflow_model_server is not on PATH" in problem.allowed and "embedded" in problem.allowed
    assert _server_problems(TfservingTarget(server=ServingServer.binary, attach=True, grpc_port=1, rest_port=2)) == []
    assert _server_problems(TfservingTarget(server=ServingServer.auto)) == []
    assert _server_problems(TfservingTarget(server=ServingServer.embedded)) == []


def test_binary_on_path_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _path_with(tmp_path, monkeypatch, tensorflow_model_server="exit 0")
    assert _server_problems(TfservingTarget(server=ServingServer.binary)) == []


def test_docker_needs_an_engine_that_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _path_with(tmp_path, monkeypatch, docker="exit 1")  # the CLI is there, the engine is not
    (problem,) = _server_problems(TfservingTarget(server=ServingServer.docker))
    assert problem.value == "docker" and "no Docker engine answers" in problem.allowed
    assert list(ServeConfig(server=ServingServer.docker).server_problems("serve"))[0].key == "serve.server"


def test_docker_with_an_engine_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _path_with(tmp_path, monkeypatch, docker="echo 27.0.0")
    assert _server_problems(TfservingTarget(server=ServingServer.docker)) == []


def test_the_command_refuses_before_training(tmp_path: Path):
    env = command_env(PATH=f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin")
    if any((Path(d) / "tensorflow_model_server").exists() for d in env["PATH"].split(os.pathsep)):
        pytest.skip("tensorflow_model_server is installed here")
    proc = subprocess.run(
        [str(BIN / "tfrun"), "target=tfserving", "target.server=binary", "train.epochs=1", "hydra.run.dir=runs/a"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    words = ["target.server='binary'", "tensorflow_model_server is not on PATH", "auto, embedded"]
    assert_rejected(proc, words, tmp_path / "runs" / "a")
    assert not (tmp_path / "models").exists(), "nothing trained"
