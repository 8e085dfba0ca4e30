"""Shared fixtures: every test starts from verigrad's default settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import verigrad


@pytest.fixture(autouse=True)
def _default_settings() -> Iterator[None]:
    """Undo any ``verigrad.configure`` a test made."""
    verigrad.reset_defaults()
    yield
    verigrad.reset_defaults()
