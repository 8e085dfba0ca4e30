"""The one evaluator: serial, batched and executor evaluation give the same numbers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import verigrad as vg
from verigrad._evaluate import Evaluator

N = 2_500  # past the full-check size: random directions and a subset of coordinates
A = np.random.default_rng(0).uniform(0.5, 2.0, N)
X = np.random.default_rng(1).normal(size=N)


def loss(v: np.ndarray) -> float:
    return float(A @ (v * v) + np.sum(np.sin(v)))


def batched_loss(points: np.ndarray) -> np.ndarray:
    return np.asarray((points * points) @ A + np.sin(points).sum(axis=1))


def grad(v: np.ndarray) -> np.ndarray:
    return np.asarray(2 * A * v + np.cos(v))


class TestAlong:
    def test_serial_batched_and_threads_agree(self) -> None:
        """Points along directions: the same values whichever way they are evaluated."""
        work = X.copy()
        pairs = [(np.random.default_rng(k).normal(size=N), 1e-3 * (k + 1)) for k in range(7)]
        serial = Evaluator(loss, "loss", point_nbytes=work.nbytes).along(work, pairs)
        batched = Evaluator(
            batched_loss, "loss", point_nbytes=work.nbytes, vectorized=True, batch_bytes=3 * N * 8
        ).along(work, pairs)
        with ThreadPoolExecutor(2) as pool:
            threaded = Evaluator(loss, "loss", point_nbytes=work.nbytes, executor=pool)
            on_threads = threaded.along(work, pairs)
        np.testing.assert_allclose(batched, serial, rtol=1e-13)
        np.testing.assert_array_equal(on_threads, serial)
        assert threaded.n_evals == len(pairs)


class TestDirectionsUseTheEvaluator:
    def test_vectorized_directional_check_matches_serial(self) -> None:
        """vectorized=True applies to the random directions too: same verdict and numbers."""
        serial = vg.check_gradient(loss, X, grad, seed=3)
        batched = vg.check_gradient(batched_loss, X, grad, seed=3, vectorized=True)
        assert serial.verdict == batched.verdict == "pass"
        assert len(batched.directions) == 8
        for (n1, a1, _), (n2, a2, _) in zip(serial.directions, batched.directions, strict=True):
            assert a1 == a2
            assert abs(n1 - n2) <= 1e-9 * abs(a1) + 1e-12

    def test_executor_directional_check_matches_serial(self) -> None:
        """executor= applies to the random directions too: the very same numbers."""
        serial = vg.check_gradient(loss, X, grad, seed=3)
        with ThreadPoolExecutor(2) as pool:
            parallel = vg.check_gradient(loss, X, grad, seed=3, executor=pool)
        assert parallel.directions == serial.directions
        assert parallel.n_evals == serial.n_evals


class TestFreshCopies:
    def test_each_evaluation_gets_its_own_copy(self) -> None:
        """In fresh mode a loss that writes into its input never sees another's leftovers."""
        seen: list[float] = []

        def scribbling(v: np.ndarray) -> float:
            seen.append(float(v[0]))
            value = float(np.sum(v * v))
            v[:] = 99.0
            return value

        work = np.arange(1.0, 4.0)
        ev = Evaluator(scribbling, "loss", point_nbytes=work.nbytes)
        ev.use_fresh_copies()
        vals, _ = ev.shifted(work, [0, 1, 2], [0.5, 0.5, 0.5], (1.0, -1.0))
        np.testing.assert_array_equal(work, [1.0, 2.0, 3.0])
        assert seen == [1.5, 0.5, 1.0, 1.0, 1.0, 1.0]
        assert vals[0, 0] == 1.5**2 + 4.0 + 9.0


class TestRecheck:
    def test_first_nonfinite_point_is_rebuilt(self) -> None:
        """The first point where the loss was NaN can be evaluated again, exactly."""
        points: list[np.ndarray] = []

        def loss_at(v: np.ndarray) -> float:
            points.append(v.copy())
            return float("nan") if len(points) == 3 else float(np.sum(v))

        work = np.zeros(3)
        ev = Evaluator(loss_at, "loss", point_nbytes=work.nbytes)
        ev.shifted(work, [0, 1], [0.25, 0.25], (1.0, -1.0))
        assert ev.n_nonfinite == 1
        again = ev.recheck(work)
        np.testing.assert_array_equal(points[-1], points[2])
        assert again == 0.25
