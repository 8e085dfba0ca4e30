"""executor=: a check's coordinates spread over thread and process pools, in order."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from structlog.testing import capture_logs

import verigrad as vg
from problems import failing_loss, quartic_grad, quartic_loss

A = np.random.default_rng(0).uniform(0.5, 2.0, 300)
X = np.random.default_rng(1).normal(size=300)


@pytest.fixture(scope="module")
def processes():
    # spawn, not fork: forking a process that runs threads can deadlock (and warns on 3.12+).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        yield pool


class TestThreadPool:
    def test_same_result_as_serial(self) -> None:
        """A thread pool gives the numbers of the serial loop, coordinate by coordinate."""
        serial = vg.check_gradient(quartic_loss, X, quartic_grad, args=(A,), method="central")
        with ThreadPoolExecutor(max_workers=4) as pool:
            parallel = vg.check_gradient(
                quartic_loss, X, quartic_grad, args=(A,), method="central", executor=pool
            )
        assert parallel.verdict == serial.verdict == "pass"
        np.testing.assert_array_equal(parallel.numerical, serial.numerical)
        assert parallel.n_evals == serial.n_evals

    def test_bug_named_through_a_thread_pool(self) -> None:
        """A wrong coordinate is still named when the check runs on threads."""
        wrong = quartic_grad(X, A)
        wrong[123] *= 1.01
        with ThreadPoolExecutor(max_workers=3) as pool:
            r = vg.check_gradient(quartic_loss, X, wrong, args=(A,), executor=pool)
        assert r.mismatched == ((123,),)

    def test_lambda_is_fine_on_threads(self) -> None:
        """Threads need no pickling: a lambda loss works."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            r = vg.check_gradient(lambda v: float(np.sum(v**2)), X, 2 * X, executor=pool)
        assert r.passed


class TestProcessPool:
    def test_module_level_loss_on_processes(self, processes: ProcessPoolExecutor) -> None:
        """A module-level loss (with args) is checked across processes, same numbers."""
        serial = vg.check_gradient(quartic_loss, X, quartic_grad, args=(A,), method="central")
        r = vg.check_gradient(
            quartic_loss, X, quartic_grad, args=(A,), method="central", executor=processes
        )
        assert r.verdict == "pass"
        np.testing.assert_array_equal(r.numerical, serial.numerical)

    def test_unpicklable_loss_gets_a_clear_error(self, processes: ProcessPoolExecutor) -> None:
        """A lambda cannot go to another process: the error says so and what to do."""
        with pytest.raises(vg.InvalidArgumentError, match="cannot be sent to ProcessPoolExecutor"):
            vg.check_gradient(lambda v: float(np.sum(v**2)), X, 2 * X, executor=processes)

    def test_error_inside_a_worker_propagates(self, processes: ProcessPoolExecutor) -> None:
        """An exception raised by the loss in a worker reaches the caller; x is unchanged."""
        x = np.zeros(20)
        before = x.tobytes()
        with pytest.raises(FloatingPointError, match="loss blew up"):
            vg.check_gradient(
                failing_loss, x, np.zeros(20), epsilon=1.0, method="central", executor=processes
            )
        assert x.tobytes() == before

    def test_decorator_with_a_process_pool(self, processes: ProcessPoolExecutor) -> None:
        """The decorator ships its checks to the executor too (the bound loss pickles)."""
        grad = vg.verified_gradient(loss=quartic_loss, mode="debug", executor=processes)(
            quartic_grad
        )
        with capture_logs() as logs:
            grad(X, A)
        assert logs[0]["verdict"] == "pass"


def test_bad_executor_is_refused() -> None:
    """Something without .submit is not an executor: refused, naming executor."""
    with pytest.raises(vg.InvalidTypeError, match="executor"):
        vg.check_gradient(quartic_loss, X, quartic_grad, args=(A,), executor=object())  # type: ignore[arg-type]
