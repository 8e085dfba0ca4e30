"""Vectorized losses: perturbed points evaluated in batches, with the same results."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from structlog.testing import capture_logs

import verigrad as vg
from verigrad.estimators import (
    _MULTIPLIERS,
    BatchedLoss,
    ScalarLoss,
    shifted_values,
    step_sizes,
)

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


def recording(points: list[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A vectorized loss that keeps a copy of every point it is handed, one by one."""

    def loss(w: np.ndarray) -> np.ndarray:
        points.extend(np.array(p) for p in w)
        return np.array([batch_loss(p) for p in w])

    return loss


def serial_points(x: np.ndarray, method: str) -> list[np.ndarray]:
    """The points the one-at-a-time loop hands to the loss, in its order."""
    points: list[np.ndarray] = []

    def loss(w: np.ndarray) -> float:
        points.append(w.copy())
        return batch_loss(w)

    h = step_sizes(x, "auto", method).reshape(-1).tolist()
    shifted_values(ScalarLoss(loss), x.copy(), range(x.size), h, _MULTIPLIERS[method])
    return points


class TestBatchBuffer:
    """One reused buffer of B copies of x: O(B) work per batch, the serial path's points."""

    @pytest.mark.parametrize("method", ["central", "forward", "richardson"])
    @pytest.mark.parametrize("points_per_batch", [1, 2, 3, 5, 7, 8, 29, 60, 1000])
    def test_same_points_in_the_same_order(self, method: str, points_per_batch: int) -> None:
        """Whatever the batch size (odd, 1, not dividing the 2n points, larger than all of them),
        the loss sees the serial path's points bit for bit: each differs from x in exactly the
        coordinate it moves, so no perturbation leaks from one batch into a later point."""
        x = X.copy()
        expected = serial_points(x, method)
        seen: list[np.ndarray] = []
        f = BatchedLoss(recording(seen), x.nbytes, max_bytes=points_per_batch * x.nbytes)
        h = step_sizes(x, "auto", method).reshape(-1).tolist()
        vals, offs = shifted_values(f, x.copy(), range(x.size), h, _MULTIPLIERS[method])
        assert len(seen) == len(expected) == vals.size
        for k, (got, want) in enumerate(zip(seen, expected, strict=True)):
            assert got.tobytes() == want.tobytes(), f"point {k}"
            moved = np.flatnonzero(got != X)
            assert moved.tolist() == [k // len(_MULTIPLIERS[method])]
        plain_vals, plain_offs = shifted_values(
            ScalarLoss(batch_loss), x.copy(), range(x.size), h, _MULTIPLIERS[method]
        )
        assert vals.tobytes() == plain_vals.tobytes()
        assert offs.tobytes() == plain_offs.tobytes()

    @pytest.mark.parametrize("points_per_batch", [1, 3, 4, 7, 13, 64])
    def test_results_bit_for_bit_equal_to_the_serial_check(self, points_per_batch: int) -> None:
        """A vectorized loss that computes each point as the plain loss does gives the plain
        check's numbers exactly, at any batch size."""
        plain = vg.check_gradient(batch_loss, X, batch_grad, method="central")
        batched = vg.check_gradient(
            recording([]),
            X,
            batch_grad,
            method="central",
            vectorized=True,
            batch_bytes=points_per_batch * X.nbytes,
        )
        assert batched.verdict == plain.verdict == "pass"
        assert batched.numerical.tobytes() == plain.numerical.tobytes()
        assert batched.errors.tobytes() == plain.errors.tobytes()
        assert batched.n_evals == plain.n_evals

    @pytest.mark.parametrize(("points_per_batch", "expected"), [(1, 1), (3, 2), (5, 4), (8, 8)])
    def test_batch_sizes(self, points_per_batch: int, expected: int) -> None:
        """Batches hold a whole number of coordinates (+h and -h together) where they can, never
        more points than batch_bytes allows, and the last one only the points left."""
        sizes: list[int] = []
        x = np.arange(1.0, 8.0)  # 14 central points

        def loss(w: np.ndarray) -> np.ndarray:
            sizes.append(len(w))
            return (w**2).sum(axis=1)

        f = BatchedLoss(loss, x.nbytes, max_bytes=points_per_batch * x.nbytes)
        h = step_sizes(x, "auto", "central").tolist()
        shifted_values(f, x.copy(), range(x.size), h, (1.0, -1.0))
        assert sizes[:-1] == [expected] * (len(sizes) - 1)
        assert 0 < sizes[-1] <= expected
        assert sum(sizes) == 14

    def test_no_evaluation_for_no_coordinates(self) -> None:
        calls: list[int] = []
        f = BatchedLoss(lambda w: calls.append(len(w)) or np.zeros(len(w)), X.nbytes)
        vals, offs = shifted_values(f, X.copy(), [], [], (1.0, -1.0))
        assert vals.shape == offs.shape == (0, 2)
        assert calls == []

    def test_working_copy_restored_and_untouched(self) -> None:
        """The buffer is separate from the working copy, which the batches never write."""
        x = X.copy()
        f = BatchedLoss(recording([]), x.nbytes, max_bytes=3 * x.nbytes)
        shifted_values(f, x, range(x.size), [1e-3] * x.size, (1.0, -1.0))
        assert x.tobytes() == X.tobytes()

    def test_an_error_names_the_batch(self) -> None:
        """An exception from the loss propagates with a note naming the batch's coordinates."""

        calls: list[int] = []

        def failing(w: np.ndarray) -> np.ndarray:
            calls.append(len(w))
            if len(calls) == 2:  # the second batch: coordinates 2 and 3, flat
                raise RuntimeError("boom")
            return np.array([batch_loss(p) for p in w])

        f = BatchedLoss(failing, X.nbytes, max_bytes=4 * X.nbytes)
        h = step_sizes(X, "auto", "central").reshape(-1).tolist()
        with pytest.raises(RuntimeError, match="boom") as info:
            shifted_values(f, X.copy(), range(X.size), h, (1.0, -1.0))
        assert "batch of 4 points, coordinates (0, 2) to (0, 3)" in info.value.__notes__[0]
