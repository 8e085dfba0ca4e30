"""Shared fixtures: every test starts from verigrad's default settings."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

import verigrad
from fake_clock import FakeClock
from verigrad import _decorator

# In CI, property tests replay the same examples every run: a red build then always means a
# change, never an unlucky draw. Locally they explore new examples each run.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _default_settings() -> Iterator[None]:
    """Undo any ``verigrad.configure`` a test made."""
    verigrad.reset_defaults()
    yield
    verigrad.reset_defaults()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The decorator's clock replaced by one the test moves by hand."""
    fake = FakeClock()
    monkeypatch.setattr(_decorator, "_clock", fake)
    return fake
