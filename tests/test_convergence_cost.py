"""What a check costs at a converged point (issue 11, item 1: defaults that cost little).

At a point where the gradient is down to rounding (the 771-parameter tanh network of
``benchmarks/defaults_overhead.py`` after plain gradient descent to convergence), every
coordinate fails the relative test and is a kink suspect: each gets the narrow stencil and the
Richardson ladder. The check there cost 5.3x the evaluations of a check at the starting point
(8,217 against 1,562); it must stay far below that while still catching bugs far above the
best error finite differences achieve there (about 1.3e-16 for the whole gradient).
"""

from __future__ import annotations

import numpy as np
import pytest

import verigrad as vg

D_IN, HIDDEN, D_OUT, N = 20, 32, 3, 64
SIZE = D_IN * HIDDEN + HIDDEN + HIDDEN * D_OUT + D_OUT  # 771


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D_IN))
    return X, np.tanh(X @ rng.normal(size=(D_IN, D_OUT)))


def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a, b = D_IN * HIDDEN, D_IN * HIDDEN + HIDDEN
    c = b + HIDDEN * D_OUT
    return p[:a].reshape(D_IN, HIDDEN), p[a:b], p[b:c].reshape(HIDDEN, D_OUT), p[c:]


def loss(p: np.ndarray, X: np.ndarray, Y: np.ndarray) -> float:
    W1, b1, W2, b2 = unpack(p)
    out = np.tanh(X @ W1 + b1) @ W2 + b2
    return 0.5 * float(np.mean(np.sum((out - Y) ** 2, axis=1)))


def grad(p: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    W1, b1, W2, b2 = unpack(p)
    H = np.tanh(X @ W1 + b1)
    d_out = (H @ W2 + b2 - Y) / len(X)
    d_h = (d_out @ W2.T) * (1 - H * H)
    return np.concatenate([(X.T @ d_h).ravel(), d_h.sum(0), (H.T @ d_out).ravel(), d_out.sum(0)])


@pytest.fixture(scope="module")
def points() -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The starting point and the point after 32,767 steps of gradient descent (the call at
    which the defaults' budget made its second check in the benchmark)."""
    X, Y = data()
    start = np.random.default_rng(1).normal(scale=0.3, size=SIZE)
    p = start.copy()
    for _ in range(32_767):
        p -= 0.05 * grad(p, X, Y)
    assert np.linalg.norm(grad(p, X, Y)) < 1e-13  # converged: the gradient is rounding
    return start, p, (X, Y)


def test_converged_check_costs_little_and_passes(points: tuple) -> None:
    start, converged, args = points
    first = vg.check_gradient(loss, start, grad, args=args)
    late = vg.check_gradient(loss, converged, grad, args=args)
    assert first.verdict == "pass"
    assert late.verdict == "pass"
    assert late.n_evals <= 4 * first.n_evals, (late.n_evals, first.n_evals)


@pytest.mark.parametrize(
    ("index", "size"),
    [(690, 1e-14), (700, 1e-14), (0, 1e-13)],
)
def test_converged_check_still_catches_a_planted_bug(
    points: tuple, index: int, size: float
) -> None:
    """A one-coordinate bug 80x (1e-14) or 800x (1e-13) the achievable error (1.3e-16, the best
    norm of central-difference errors over the whole gradient) is a mismatch."""
    _, converged, args = points
    buggy = grad(converged, *args)
    buggy[index] += size
    result = vg.check_gradient(loss, converged, buggy, args=args)
    assert result.verdict == "mismatch"
    assert (index,) in result.mismatched
