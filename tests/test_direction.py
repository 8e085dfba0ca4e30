"""Compact random directions: the same points and dot products as their float64 arrays."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verigrad._direction import CACHE_MAX, CHUNK, Direction, point

SIZES = (1, 7, CHUNK - 1, CHUNK, CHUNK + 3, 2 * CHUNK + 5, CACHE_MAX + 7)


def _expected(d: Direction, x: np.ndarray) -> np.ndarray:
    a = np.abs(x.reshape(-1))
    if d.rule == "step":
        length = np.maximum(a, 1.0)
    elif d.rule == "capped":
        length = np.where(a != 0.0, np.minimum(np.maximum(a, 1.0), 100.0 * a), 1.0)
    else:
        length = np.where(a != 0.0, a, 1.0)
    if d.values is not None:
        return (length * d.values).reshape(x.shape)
    assert d.signs is not None
    return (length * d.signs).reshape(x.shape)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rule", ["step", "inside", "capped"])
@pytest.mark.parametrize("gaussian", [False, True])
def test_points_and_dots_match_the_array(n: int, rule: str, gaussian: bool) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=n) * rng.choice([0.0, 1e-3, 1.0, 50.0], size=n)
    g = rng.normal(size=n)
    d = Direction.random(np.random.default_rng(1), n, rule, gaussian)  # type: ignore[arg-type]
    u = _expected(d, x)
    np.testing.assert_array_equal(d.array(x), u)
    for t in (1e-3, -2.5e-7):
        np.testing.assert_array_equal(d.point(x, t), x + t * u)
        np.testing.assert_array_equal(point(x, u, t), x + t * u)
    assert d.dot(x, g) == pytest.approx(float(g @ u), rel=1e-12, abs=1e-300)


def test_points_keep_the_shape_and_leave_x_alone() -> None:
    x = np.random.default_rng(0).normal(size=(3, 5, 7))
    before = x.copy()
    d = Direction.random(np.random.default_rng(2), x.size, "step")
    p = d.point(x, 1e-2)
    assert p.shape == x.shape
    assert p is not x
    np.testing.assert_array_equal(x, before)


def test_one_byte_per_coordinate_and_pickles() -> None:
    d = Direction.random(np.random.default_rng(3), 10_000, "inside")
    assert d.signs is not None
    assert d.signs.nbytes == 10_000
    assert set(np.unique(d.signs).tolist()) == {-1, 1}
    back = pickle.loads(pickle.dumps(d))
    x = np.linspace(-1, 1, 10_000)
    np.testing.assert_array_equal(back.point(x, 0.1), d.point(x, 0.1))
    assert back.rule == "inside"


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_every_coordinate_moves_by_its_length(n: int, seed: int) -> None:
    """Every coordinate moves (no zero length, even at x_i = 0), by +-its length."""
    x = np.zeros(n)
    d = Direction.random(np.random.default_rng(seed), n, "step")
    u = d.array(x)
    np.testing.assert_array_equal(np.abs(u), np.ones(n))


def test_a_span_moves_only_its_coordinates() -> None:
    """The halves of a bisection: coordinates outside [lo, hi) stay where they are."""
    n = CACHE_MAX + 11  # built chunk by chunk, not from a cached array
    x = np.random.default_rng(5).normal(size=n)
    g = np.random.default_rng(6).normal(size=n)
    d = Direction.random(np.random.default_rng(7), n, "step")
    full = d.array(x)
    for lo, hi in ((0, 1), (3, CHUNK + 4), (CHUNK - 1, n), (n - 5, n)):
        part = d.within(lo, hi)
        u = np.zeros(n)
        u[lo:hi] = full[lo:hi]
        np.testing.assert_array_equal(part.array(x), u)
        np.testing.assert_array_equal(part.point(x, 0.5), x + 0.5 * u)
        assert part.dot(x, g) == pytest.approx(float(g @ u), rel=1e-12)
        assert pickle.loads(pickle.dumps(part)).hi == hi
