"""Fixtures of the unit tests (no TensorFlow)."""

from __future__ import annotations

import pytest

from tests.helpers import FakeTfrun
from tfrun.runner.processes.zygote import ZYGOTE_ENV


@pytest.fixture(autouse=True)
def _no_warm_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `tfrun` commands a unit test runs start no warm child (tfrun.runner.processes.warm_child): it imports
    TensorFlow while the config is validated, and these tests mostly watch configs being refused, so it would
    be killed half-way through that import each time (~0.45 s of a core per command). The e2e tests keep it."""
    monkeypatch.setenv("TFRUN_NO_PRESTART", "1")


@pytest.fixture(scope="session", autouse=True)
def _zygote():
    """No zygote for the unit tests (tests/conftest.py starts one for the others): they run no TensorFlow."""
    yield None


@pytest.fixture(autouse=True)
def _no_zygote_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nor the one an integration or e2e module run earlier on the same xdist worker named in os.environ: what a
    unit test sees (the commands a run would start, whether its jobs fork) must not depend on which modules that
    worker happened to run before it."""
    monkeypatch.delenv(ZYGOTE_ENV, raising=False)


@pytest.fixture
def fake_tfrun(tmp_path, monkeypatch) -> FakeTfrun:
    return FakeTfrun(tmp_path, monkeypatch)
