"""Memory of a check on a large parameter: a small multiple of the parameter, whatever n is."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

import verigrad as vg

N = 300_000


def _peak_and_kept(n: int, wrong: bool = False) -> tuple[float, float, vg.CheckResult]:
    rng = np.random.default_rng(n)
    x, c = rng.normal(size=n), rng.normal(size=n)

    def loss(v: np.ndarray) -> float:
        return float(0.5 * (v @ v) + c @ v)

    g = x + c
    if wrong:
        g[n // 3] *= 1.5
    x0, g0 = x.copy(), g.copy()
    vg.check_gradient(loss, x, g, seed=0)  # imports and caches first
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = vg.check_gradient(loss, x, g, seed=0)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)
    return (peak - base) / x.nbytes, (current - base) / x.nbytes, result


def test_a_default_check_peaks_below_three_times_the_parameter() -> None:
    """The working copy of x and one point at a time: at most 3x (at n = 1e6 a check used to
    peak at 12x), and nothing parameter-sized is kept by the result."""
    peak, kept, result = _peak_and_kept(N)
    assert result.verdict == "pass", result.summary()
    assert result.checked_indices is not None  # a partial check: directions and a subset
    assert peak <= 3.0
    assert kept <= 0.05  # the estimated coordinates only; analytical is the caller's array


def test_the_whole_arrays_are_built_on_request() -> None:
    """A partial check's result keeps the estimated coordinates; ``numerical``, ``errors`` and
    ``steps`` are whole arrays (NaN where nothing was estimated) once asked for."""
    _, _, result = _peak_and_kept(N, wrong=True)
    checked = result.checked_indices
    assert checked is not None
    assert result.errors is not None
    for arr in (result.numerical, result.errors, result.steps):
        assert arr.shape == (N,)
        assert not arr.flags.writeable
        assert np.isfinite(arr[checked]).all()
        assert np.isnan(np.delete(arr, checked)).all()
    assert result.numerical is result.numerical  # built once
    # The summary and the hint read the compact arrays: same text either way.
    bad = N // 3
    k = int(np.searchsorted(checked, bad))
    assert checked[k] == bad
    row = next(line for line in result.summary().splitlines() if f"[{bad}]" in line)
    assert f"{result.errors[bad]:.1e}" in row


@pytest.mark.parametrize("n", [N, 2 * N])
def test_the_peak_does_not_grow_with_n(n: int) -> None:
    peak, _, _ = _peak_and_kept(n)
    assert peak <= 3.0


def test_a_bug_is_found_within_the_same_bound() -> None:
    """Bisecting the directions down to a wrong coordinate builds its points as any other."""
    peak, _, result = _peak_and_kept(N, wrong=True)
    assert result.verdict == "mismatch", result.summary()
    assert (N // 3,) in result.mismatched
    assert peak <= 3.0


class TestFrameworkGradientsAreRead:
    """A large framework gradient is read where it lies, as a large numpy one is: the result
    holds a read-only view of it, not a copy (torch CPU and JAX CPU share their memory)."""

    def test_torch(self) -> None:
        torch = pytest.importorskip("torch")
        n = 100_000
        x = torch.tensor(np.random.default_rng(0).normal(size=n))
        g = 2.0 * x
        result = vg.check_gradient(lambda v: (v * v).sum(), x, g, seed=0)
        assert result.passed, result.summary()
        assert np.shares_memory(result.analytical, g.numpy())
        assert not result.analytical.flags.writeable
        g.add_(1.0)  # the caller's tensor stays theirs: writable, and the check left it alone
        np.testing.assert_array_equal(g.numpy(), 2.0 * x.numpy() + 1.0)

    def test_jax(self) -> None:
        jax = pytest.importorskip("jax")
        n = 100_000
        with jax.enable_x64(True):
            x = jax.numpy.asarray(np.random.default_rng(0).normal(size=n))
            g = 2.0 * x
            result = vg.check_gradient(lambda v: (v * v).sum(), x, g, seed=0)
        assert result.passed, result.summary()
        assert np.shares_memory(result.analytical, np.asarray(g))

    def test_a_small_gradient_is_still_copied(self) -> None:
        torch = pytest.importorskip("torch")
        x = torch.tensor(np.random.default_rng(0).normal(size=50))
        g = 2.0 * x
        result = vg.check_gradient(lambda v: (v * v).sum(), x, g, seed=0)
        assert not np.shares_memory(result.analytical, g.numpy())
        g.mul_(3.0)
        assert result.analytical[0] == 2.0 * float(x[0])
