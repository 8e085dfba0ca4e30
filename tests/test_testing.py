"""Tests for ``verigrad.testing.capture_checks``."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import verigrad
from verigrad.testing import capture_checks


def _loss(w: np.ndarray) -> float:
    return float(w @ w)


def _checked(on_failure: str = "raise", wrong: bool = False):  # type: ignore[no-untyped-def]
    @verigrad.verified_gradient(loss=_loss, first=0, sample_rate=0.0, on_failure=on_failure)
    def grad(w: np.ndarray) -> np.ndarray:
        return w if wrong else 2 * w

    return grad


W = np.array([1.0, -2.0, 0.5])


def test_captures_each_check_in_order() -> None:
    """Every check inside the block is captured as its CheckResult, and none outside it."""
    grad = _checked()
    with verigrad.debug():
        grad(W)
        with capture_checks() as checks:
            grad(W)
            grad(W)
        grad(W)
    assert [c.verdict for c in checks] == ["pass", "pass"]
    assert [c.call_index for c in checks] == [1, 2]
    assert all(
        isinstance(c, verigrad.CheckResult) and (c.function or "").endswith("grad") for c in checks
    )


def test_nothing_checked_nothing_captured() -> None:
    """Outside debug mode, with first=0 and no sampling, no check runs and none is captured."""
    grad = _checked()
    with capture_checks() as checks:
        grad(W)
    assert checks == []


def test_failure_captured_before_it_raises() -> None:
    """A failing check that raises is captured too, and the error still reaches the caller."""
    grad = _checked(wrong=True)
    with (
        capture_checks() as checks,
        verigrad.debug(),
        pytest.raises(verigrad.GradientMismatchError),
    ):
        grad(W)
    assert [c.verdict for c in checks] == ["mismatch"]
    assert checks[0].failed


def test_failure_logged_only_is_captured() -> None:
    """With on_failure='log' nothing is raised or warned; the capture still sees the failure."""
    grad = _checked(on_failure="log", wrong=True)
    with verigrad.debug(), capture_checks() as checks:
        grad(W)
    assert [c.failed for c in checks] == [True]


def test_other_threads_and_nesting() -> None:
    """Checks made by other threads are captured; nested blocks each see their own span."""
    grad = _checked()
    verigrad.configure(mode="debug")
    try:
        with capture_checks() as outer:
            grad(W)
            with capture_checks() as inner:
                thread = threading.Thread(target=grad, args=(W,))
                thread.start()
                thread.join()
    finally:
        verigrad.reset_defaults()
    assert len(outer) == 2
    assert len(inner) == 1
    assert inner[0] is outer[1]
