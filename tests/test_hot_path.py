"""The unchecked call path stays cheap: no array copies, no random draws, no logging."""

from __future__ import annotations

import tracemalloc

import numpy as np
from structlog.testing import capture_logs

import verigrad

N = 10_000
A = np.linspace(0.5, 2.0, N)
OUT = np.empty(N)


def loss(w: np.ndarray) -> float:
    return 0.5 * float(A @ (w * w))


def grad(w: np.ndarray) -> np.ndarray:
    np.multiply(A, w, out=OUT)
    return OUT


def peak_bytes(func, w: np.ndarray, calls: int = 200) -> int:
    """Peak traced memory while calling ``func(w)`` repeatedly."""
    func(w)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(calls):
            func(w)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


class TestUncheckedPath:
    def test_no_array_is_allocated_between_checks(self) -> None:
        """Between checks a call allocates far less than one copy of the parameter."""
        checked = verigrad.verified_gradient(loss=loss, sample_rate=0.0, first=0)(grad)
        w = np.ones(N)
        extra = peak_bytes(checked, w) - peak_bytes(grad, w)
        assert extra < w.nbytes // 20
        assert checked.verigrad.stats.calls == 201
        assert checked.verigrad.stats.checks == 0

    def test_unchecked_calls_log_nothing_and_return_the_same_object(self) -> None:
        """An unchecked call emits no event and hands back the wrapped function's own result."""
        checked = verigrad.verified_gradient(loss=loss, sample_rate=0.0, first=0)(grad)
        w = np.ones(N)
        with capture_logs() as events:
            results = [checked(w) for _ in range(100)]
        assert events == []
        assert all(r is OUT for r in results)

    def test_a_check_is_still_made_when_due(self) -> None:
        """The same decorator checks the call its schedule selects (here: every 50th)."""
        small_a = np.array([1.0, 2.0, 3.0])
        checked = verigrad.verified_gradient(
            loss=lambda w: 0.5 * float(small_a @ (w * w)), sample_rate=0.0, first=0, every=50
        )(lambda w: small_a * w)
        with capture_logs() as events:
            for _ in range(200):
                checked(np.ones(3))
        assert [e["call_index"] for e in events] == [49, 99, 149, 199]
        assert checked.verigrad.stats.checks == 4
