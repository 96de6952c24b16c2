"""Fixtures of the unit tests (no TensorFlow)."""

from __future__ import annotations

import pytest

from tests.helpers import FakeTfrun


@pytest.fixture
def fake_tfrun(tmp_path, monkeypatch) -> FakeTfrun:
    return FakeTfrun(tmp_path, monkeypatch)
