"""Safe inside real training: threads, interrupts, re-entrancy and other processes."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest

import verigrad
from problems import QuarticModel, call_in_child, checked_quartic_grad, quartic_loss
from verigrad._noise import PROBE_EVALS

A = np.linspace(0.5, 2.0, 5)


def _quad_loss(w: np.ndarray, scale: float) -> float:
    return float(scale * np.sum(w**2))


class TestThreads:
    def test_eight_threads_lose_no_calls_and_no_checks(self) -> None:
        """8 threads x 10,000 sampled calls: exact call count, and the checks of one thread."""

        def make() -> Any:
            @verigrad.verified_gradient(loss=_quad_loss, sample_rate=0.01, first=3, seed=7)
            def grad(w: np.ndarray, scale: float) -> np.ndarray:
                return 2 * scale * w

            return grad

        reference = make()
        w = np.arange(4.0)
        for _ in range(80_000):
            reference(w, 0.5)

        grad = make()
        start = threading.Barrier(8)

        def worker() -> None:
            start.wait()
            for _ in range(10_000):
                grad(w, 0.5)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats, expected = grad.verigrad.stats, reference.verigrad.stats
        assert stats.calls == 80_000
        # Which calls are checked depends on the call index only: threads change nothing.
        assert stats.checks == expected.checks
        assert 700 < stats.checks < 900
        assert stats.failures == 0
        assert stats.max_relative_error < 1e-8

    def test_concurrent_subset_checks_take_disjoint_coordinates(self) -> None:
        """Subset checks running at once in threads never check a coordinate twice per pass."""
        n = 4000
        x = np.random.default_rng(0).normal(size=n)

        @verigrad.verified_gradient(
            loss=_quad_loss, mode="debug", n_coordinates=100, n_directions=2, seed=1
        )
        def grad(w: np.ndarray, scale: float) -> np.ndarray:
            return 2 * scale * w

        threads = [threading.Thread(target=grad, args=(x, 1.0)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # 8 checks of 100 rotating coordinates: 800 distinct ones (plus any localized).
        assert grad.verigrad.stats.checks == 8
        assert grad.verigrad.stats.coverage >= 800 / n


class TestInterrupts:
    @pytest.mark.parametrize("error", [KeyboardInterrupt, FloatingPointError])
    def test_loss_raising_mid_check_leaves_everything_intact(self, error: type) -> None:
        """An error from the loss halfway through a check: arrays unchanged, state consistent."""
        calls = {"n": 0}

        def loss(w: np.ndarray, data: np.ndarray) -> float:
            calls["n"] += 1
            if calls["n"] == 9 + PROBE_EVALS:  # f(x), the noise probe, then coordinates 0-3
                raise error("stop")
            return float(np.sum(w**2 * data))

        @verigrad.verified_gradient(loss=loss, mode="debug")
        def grad(w: np.ndarray, data: np.ndarray) -> np.ndarray:
            return 2 * w * data

        w = np.array([0.1, -0.0, np.pi, 1e-300, 5.0])
        data = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
        w_bytes, data_bytes = w.tobytes(), data.tobytes()
        with pytest.raises(error) as info:
            grad(w, data)
        assert w.tobytes() == w_bytes
        assert data.tobytes() == data_bytes
        notes = info.value.__notes__  # the check's context rides on the exception
        assert any("at coordinate (3,)" in n for n in notes)
        assert any("checking call 0 of" in n for n in notes)
        # The next call is checked normally, and counts stay consistent.
        np.testing.assert_array_equal(grad(w, data), 2 * w * data)
        stats = grad.verigrad.stats
        assert stats.calls == 2
        assert stats.checks == 1
        assert stats.last_result is not None
        assert stats.last_result.passed

    def test_interrupted_check_does_not_leave_checking_off(self) -> None:
        """After an interrupt mid-check, other decorated gradients are checked again."""

        def loss(w: np.ndarray) -> float:
            raise KeyboardInterrupt

        @verigrad.verified_gradient(loss=loss, mode="debug")
        def bad(w: np.ndarray) -> np.ndarray:
            return w

        @verigrad.verified_gradient(loss=lambda w: float(w @ w), mode="debug")
        def good(w: np.ndarray) -> np.ndarray:
            return 2 * w

        with pytest.raises(KeyboardInterrupt):
            bad(np.ones(3))
        good(np.ones(3))
        assert good.verigrad.stats.checks == 1


class TestPickling:
    def test_module_level_function_pickles_by_reference(self) -> None:
        """A decorated module-level function unpickles to the same object."""
        assert pickle.loads(pickle.dumps(checked_quartic_grad)) is checked_quartic_grad

    def test_bound_method_pickles_with_its_instance(self) -> None:
        """``model.grad`` pickles like a bound method and works after unpickling."""
        model = QuarticModel(A)
        again = pickle.loads(pickle.dumps(model.grad))
        x = np.linspace(-1, 1, 5)
        np.testing.assert_array_equal(again(x), A * x**3)
        assert again.verigrad is QuarticModel.grad.verigrad

    def test_class_attribute_pickles_by_reference(self) -> None:
        """The decorated function reached through its class pickles by name."""
        again = pickle.loads(pickle.dumps(QuarticModel.grad))
        assert again.verigrad is QuarticModel.grad.verigrad
        x = np.linspace(-1, 1, 5)
        np.testing.assert_array_equal(again(QuarticModel(A), x), A * x**3)

    def test_local_function_pickles_by_value_with_fresh_statistics(self) -> None:
        """cloudpickle (dask, loky) copies a local decorated function; the copy counts alone."""
        cloudpickle = pytest.importorskip("cloudpickle")

        @verigrad.verified_gradient(loss=_quad_loss, mode="debug")
        def grad(w: np.ndarray, scale: float) -> np.ndarray:
            return 2 * scale * w

        grad(np.ones(3), 1.0)
        copy = cloudpickle.loads(cloudpickle.dumps(grad))
        assert copy.verigrad is not grad.verigrad
        assert copy.verigrad.stats.calls == 0
        copy(np.ones(3), 2.0)
        assert copy.verigrad.stats.checks == 1
        assert grad.verigrad.stats.checks == 1

    def test_copied_checker_still_catches_bugs(self) -> None:
        """A by-value copy of a buggy decorated gradient still raises on its checks."""
        cloudpickle = pytest.importorskip("cloudpickle")

        @verigrad.verified_gradient(loss=_quad_loss, mode="debug")
        def grad(w: np.ndarray, scale: float) -> np.ndarray:
            return scale * w  # missing factor 2

        copy = cloudpickle.loads(cloudpickle.dumps(grad))
        with pytest.raises(verigrad.GradientMismatchError, match="factor of 2"):
            copy(np.ones(3), 1.0)

    def test_spawned_processes_keep_their_own_statistics(self) -> None:
        """In spawned worker processes the decorated function works and counts its own calls."""
        ctx = multiprocessing.get_context("spawn")
        before = checked_quartic_grad.verigrad.stats.calls
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            counts = list(pool.map(call_in_child, [3, 3]))
            direct = pool.submit(checked_quartic_grad, np.ones(5), A).result()
        for calls, checks, failures in counts:
            assert calls >= 3  # a worker may have run both tasks
            assert checks == 1  # first=1 in each process
            assert failures == 0
        np.testing.assert_array_equal(direct, A)
        assert checked_quartic_grad.verigrad.stats.calls == before


def test_quartic_loss_is_importable_for_workers() -> None:
    """The shared problem the process tests use is a plain module-level function."""
    assert quartic_loss(np.ones(2), np.ones(2)) == 0.5


class TestMessagesNameTheArgument:
    def test_bad_parameter_is_named_by_its_argument_name(self) -> None:
        """A decorated gradient's bad parameter is named as the function names it, not 'x'."""

        @verigrad.verified_gradient(loss=_quad_loss, mode="debug")
        def grad(weights: np.ndarray, scale: float) -> np.ndarray:
            return 2 * scale * weights

        with pytest.raises(verigrad.InvalidTypeError, match=r"^weights has dtype bool"):
            grad(np.array([True, False]), 1.0)
        with pytest.raises(verigrad.GradientMismatchError, match="parameter weights is not finite"):
            grad(np.array([1.0, np.nan]), 1.0)

    def test_method_parameter_after_self_is_named(self) -> None:
        """For a method with wrt=1 the message names the second argument after self."""

        class Model:
            def loss(self, a: float, b: np.ndarray) -> float:
                return float(np.sum(b))

            @verigrad.verified_gradient(loss="loss", wrt=1, mode="debug")
            def grad(self, a: float, b: np.ndarray) -> np.ndarray:
                return np.ones_like(b)

        with pytest.raises(verigrad.InvalidTypeError, match=r"^b has dtype"):
            Model().grad(1.0, np.array(["a"]))
