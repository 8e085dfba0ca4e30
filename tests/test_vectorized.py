"""Vectorized losses: perturbed points evaluated in batches, with the same results."""

from __future__ import annotations

import numpy as np
import pytest
from structlog.testing import capture_logs

import verigrad as vg

RNG = np.random.default_rng(0)
A = RNG.uniform(0.5, 2.0, (6, 5))
X = RNG.normal(size=(6, 5))


def batch_loss(w: np.ndarray) -> np.ndarray | float:
    """0.5 sum(A w^2) + sum(sin w) for one point (6, 5) or a batch (B, 6, 5)."""
    terms = 0.5 * A * w**2 + np.sin(w)
    if w.ndim == 3:
        return terms.sum(axis=(1, 2))
    return float(terms.sum())


def batch_grad(w: np.ndarray) -> np.ndarray:
    return A * w + np.cos(w)


class TestVectorizedLoss:
    def test_same_numbers_as_the_plain_loop(self) -> None:
        """A vectorized check reaches the verdict and numbers of the one-point-at-a-time check."""
        plain = vg.check_gradient(batch_loss, X, batch_grad, method="central")
        batched = vg.check_gradient(batch_loss, X, batch_grad, method="central", vectorized=True)
        assert plain.verdict == batched.verdict == "pass"
        assert plain.n_evals == batched.n_evals
        np.testing.assert_allclose(batched.numerical, plain.numerical, rtol=1e-12, atol=1e-14)

    def test_batches_respect_the_memory_limit(self) -> None:
        """batch_bytes bounds the points per call: 60 perturbed points, 4 per batch."""
        sizes: list[int] = []

        def counting(w: np.ndarray) -> np.ndarray | float:
            sizes.append(len(w) if w.ndim == 3 else 0)
            return batch_loss(w)

        vg.check_gradient(
            counting, X, batch_grad, method="central", vectorized=True, batch_bytes=4 * X.nbytes
        )
        batches = [s for s in sizes if s > 1]
        assert max(batches) == 4
        assert sum(batches) + sizes.count(1) >= 60

    def test_a_bug_is_still_caught_and_named(self) -> None:
        """Batching changes nothing about detection: a wrong entry is named."""
        wrong = batch_grad(X)
        wrong[2, 3] *= 1.01
        r = vg.check_gradient(batch_loss, X, wrong, vectorized=True)
        assert r.verdict == "mismatch"
        assert r.mismatched == ((2, 3),)

    def test_wrong_return_shape_is_refused_clearly(self) -> None:
        """A 'vectorized' loss returning a scalar for a batch gets an error naming the shapes."""
        with pytest.raises(vg.InvalidArgumentError, match=r"must return 1 values, shape \(1,\)"):
            vg.check_gradient(lambda w: float(np.sum(w)), X, np.ones_like(X), vectorized=True)

    def test_callers_array_unchanged(self) -> None:
        """Batches are built from the private copy; the caller's array stays bit-for-bit."""
        x = X.copy()
        before = x.tobytes()
        vg.check_gradient(batch_loss, x, batch_grad, vectorized=True, batch_bytes=3 * x.nbytes)
        assert x.tobytes() == before

    def test_decorator_option(self) -> None:
        """``@verified_gradient(vectorized=True)`` checks through the batched path."""
        grad = vg.verified_gradient(loss=batch_loss, mode="debug", vectorized=True)(batch_grad)
        with capture_logs() as logs:
            grad(X)
        assert logs[0]["verdict"] == "pass"
        with pytest.raises(vg.InvalidArgumentError, match="batch_bytes"):
            vg.verified_gradient(loss=batch_loss, batch_bytes=0)
