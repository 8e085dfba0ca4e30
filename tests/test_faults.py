"""The runtime faults field tests found (issue 11), each pinned by a test that fails without
its fix: re-entrancy across executor threads, pickling, context restoration, cancellation,
copies, rewrapped exceptions and late validation."""

from __future__ import annotations

import copy
import functools
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest

import verigrad as vg
from verigrad import _binding, _config, _decorator, _policy

A = np.linspace(0.5, 2.0, 6)


def quad_loss(w: np.ndarray) -> float:
    return 0.5 * float(w @ (A * w))


def quad_grad(w: np.ndarray) -> np.ndarray:
    return A * w


def wrong_grad(w: np.ndarray) -> np.ndarray:
    return 0.5 * A * w  # missing factor


def finishes(fn: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Run ``fn`` on a daemon thread; fail (instead of hanging the suite) if it does not end."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed back to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"still running after {timeout} s: a deadlock"
    if "error" in out:
        raise out["error"]
    return out.get("value")


class TestReentrancyAcrossExecutorThreads:
    """A loss that calls the decorated gradient, with the check spread over a thread pool."""

    def make(self, pool: ThreadPoolExecutor, **options: Any) -> Any:
        @vg.verified_gradient(loss=lambda w: self_loss(w), executor=pool, **options)
        def grad(w: np.ndarray) -> np.ndarray:
            return A * w

        def self_loss(w: np.ndarray) -> float:
            return 0.5 * float(w @ grad(w))  # the loss calls the decorated gradient

        return grad

    @pytest.mark.parametrize("how", ["configure", "debug"])
    def test_debug_mode_does_not_deadlock(self, how: str) -> None:
        """Process-wide debug mode, a thread pool and a loss calling the gradient: returns,
        checks once per outer call, and the inner calls start no nested checks."""
        pool = ThreadPoolExecutor(2)
        try:
            grad = self.make(pool, method="central")
            w = np.linspace(-1.0, 1.0, A.size)

            def three_calls() -> None:
                if how == "configure":
                    vg.configure(mode="debug")
                    for _ in range(3):
                        grad(w)
                else:
                    with vg.debug():
                        for _ in range(3):
                            grad(w)

            try:
                finishes(three_calls)
            finally:
                vg.reset_defaults()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # a deadlocked pool is left behind
        stats = grad.verigrad.stats
        assert stats.checks == 3
        assert stats.failures == 0

    def test_inner_calls_are_not_counted_in_sample_mode(self) -> None:
        """In sample mode, the loss's calls on the pool's threads are not calls of the user."""
        pool = ThreadPoolExecutor(2)
        try:
            grad = self.make(pool, method="central", sample_rate=1.0)
            w = np.linspace(-1.0, 1.0, A.size)
            finishes(lambda: [grad(w) for _ in range(4)])
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        stats = grad.verigrad.stats
        assert (stats.calls, stats.checks, stats.failures) == (4, 4, 0)


class TestCloudpickle:
    """cloudpickle (loky, dask) ships classes defined in tests by value: the check must go too."""

    @pytest.fixture
    def cloudpickle(self) -> Any:
        return pytest.importorskip("cloudpickle")

    @staticmethod
    def model() -> type:
        class Model:
            @vg.verified_gradient(loss=quad_loss, mode="debug")
            @staticmethod
            def above_static(w: np.ndarray) -> np.ndarray:
                return wrong_grad(w)

            @staticmethod
            @vg.verified_gradient(loss=quad_loss, mode="debug")
            def below_static(w: np.ndarray) -> np.ndarray:
                return wrong_grad(w)

            @vg.verified_gradient(loss=quad_loss, mode="debug")
            @classmethod
            def above_class(cls, w: np.ndarray) -> np.ndarray:
                return wrong_grad(w)

            @classmethod
            @vg.verified_gradient(loss=quad_loss, mode="debug")
            def below_class(cls, w: np.ndarray) -> np.ndarray:
                return wrong_grad(w)

            def loss(self, w: np.ndarray) -> float:
                return quad_loss(w)

            @vg.verified_gradient(loss="loss", mode="debug")
            def method(self, w: np.ndarray) -> np.ndarray:
                return wrong_grad(w)

        return Model

    NAMES = ("above_static", "below_static", "above_class", "below_class", "method")

    @pytest.mark.parametrize("name", NAMES)
    @pytest.mark.parametrize("through", ["class", "attribute", "instance"])
    def test_round_trip_keeps_the_check(self, cloudpickle: Any, name: str, through: str) -> None:
        """After a round trip, the wrong gradient still raises, in both decorator orders."""
        Model = self.model()
        if through == "class":
            fn = getattr(cloudpickle.loads(cloudpickle.dumps(Model))(), name)
        elif through == "instance":
            fn = getattr(cloudpickle.loads(cloudpickle.dumps(Model())), name)
        else:
            fn = cloudpickle.loads(cloudpickle.dumps(getattr(Model(), name)))
        assert fn.verigrad.mode == "debug"
        with pytest.raises(vg.GradientMismatchError):
            fn(np.linspace(-1.0, 1.0, A.size))


class TestContextRestoredOnAnyException:
    """An exception raised at any line of the decorator's call path (the decorator, its policy
    and its binding) leaves checking on and the caller's array intact (fault injection)."""

    class Injected(Exception):
        pass

    FILES = tuple(str(Path(m.__file__).resolve()) for m in (_decorator, _policy, _binding))

    def inject_at(self, k: int) -> Callable[[FrameType, str, Any], Any]:
        """A trace function raising at the ``k``-th line executed in the call path's modules."""
        seen = 0

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            nonlocal seen
            if event == "line":
                seen += 1
                if seen == k:
                    raise self.Injected(k)
            return local

        def trace(frame: FrameType, event: str, arg: Any) -> Any:
            if str(Path(frame.f_code.co_filename).resolve()) in self.FILES:
                return local
            return None

        return trace

    @pytest.mark.parametrize("entry", ["sample", "debug_block"])
    def test_every_line(self, entry: str) -> None:
        """Raise at each line in turn of a checked call: the context is left as it was, the
        caller's array is unchanged, and the next wrong gradient is still caught."""
        grad = vg.verified_gradient(loss=quad_loss, sample_rate=1.0, method="central")(quad_grad)
        bad = vg.verified_gradient(loss=quad_loss, sample_rate=1.0, method="central")(wrong_grad)
        w = np.linspace(-1.0, 1.0, A.size)
        before = w.copy()

        def call() -> None:
            if entry == "debug_block":
                with vg.debug():
                    grad(w)
            else:
                grad(w)

        def every_line() -> int:
            injected = 0
            for k in range(1, 2_000):
                sys.settrace(self.inject_at(k))
                try:
                    call()
                except self.Injected:
                    injected += 1
                else:
                    break
                finally:
                    sys.settrace(None)
                assert _config._CONTEXT_MODE.get() is None, f"context left changed at line {k}"
                assert w.tobytes() == before.tobytes()
                with pytest.raises(vg.GradientMismatchError):
                    bad(w)
            return injected

        # On its own thread (a lock left held would hang the suite); the trace is per thread.
        injected = finishes(every_line, timeout=120.0)
        assert injected > 20  # the loop went through the whole checked call


class TestExecutorCancellation:
    """After an error or Ctrl-C in a chunk, the chunks not yet started never run."""

    @pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
    def test_pending_chunks_are_cancelled(self, error: type[BaseException]) -> None:
        """One worker, 20 chunks, the first raises: at most one more chunk starts after it
        (the one the worker may already have taken), not the other 19."""
        from verigrad.estimators import run_tasks

        started: list[int] = []

        def task(shipped: object, k: int) -> int:
            started.append(k)
            if k == 0:
                raise error("stop")
            time.sleep(0.01)
            return k

        pool = ThreadPoolExecutor(1)
        try:
            with pytest.raises(error):
                run_tasks(pool, None, task, [(k,) for k in range(20)])
        finally:
            pool.shutdown(wait=True)
        assert len(started) <= 2

    def test_checking_is_off_inside_the_tasks(self) -> None:
        """A task runs with the mode forced off, and the caller's context is untouched."""
        from verigrad.estimators import run_tasks

        with ThreadPoolExecutor(2) as pool, vg.debug():
            modes = run_tasks(pool, None, lambda _, k: vg.current_mode(), [(k,) for k in range(4)])
            assert vg.current_mode() == "debug"
        assert modes == ["off"] * 4


class TestCopies:
    """``copy.copy`` and ``copy.deepcopy`` work for decorated callables of every kind."""

    @staticmethod
    def kinds() -> Iterator[tuple[str, Any]]:
        class Model:
            def loss(self, w: np.ndarray) -> float:
                return quad_loss(w)

            @vg.verified_gradient(loss="loss", mode="debug")
            def method(self, w: np.ndarray) -> np.ndarray:
                return wrong_grad(w)

            @vg.verified_gradient(loss=quad_loss, mode="debug")
            @staticmethod
            def static(w: np.ndarray) -> np.ndarray:
                return wrong_grad(w)

            @classmethod
            @vg.verified_gradient(loss=quad_loss, mode="debug")
            def klass(cls, w: np.ndarray) -> np.ndarray:
                return wrong_grad(w)

            def plain_grad(self, w: np.ndarray) -> np.ndarray:
                return wrong_grad(w)

        m = Model()
        yield "function", vg.verified_gradient(loss=quad_loss, mode="debug")(wrong_grad)
        yield "method", m.method
        yield "method through the class", functools.partial(Model.method, m)
        yield "staticmethod", Model.static
        yield "classmethod", Model.klass
        yield "bound method", vg.verified_gradient(loss=m.loss, mode="debug")(m.plain_grad)
        yield (
            "partial",
            vg.verified_gradient(loss=quad_loss, mode="debug")(functools.partial(wrong_grad)),
        )
        yield "class dict entries", Model.__dict__["static"].__get__(None, Model)
        yield "model", m

    @pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
    def test_copies_still_check(self, copier: Callable[[Any], Any]) -> None:
        """Each copy is callable and still catches the wrong gradient."""
        w = np.linspace(-1.0, 1.0, A.size)
        for name, fn in self.kinds():
            copied = copier(fn)
            target = copied.method if name == "model" else copied
            with pytest.raises(vg.GradientMismatchError):
                target(w)


class _Exploding:
    """An array-like whose conversion is interrupted (as by a SIGALRM timeout handler)."""

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TimeoutError("alarm")


class TestOnlyConversionErrorsBecomeInvalidType:
    def test_interrupted_parameter_conversion_propagates(self) -> None:
        """A timeout raised while the parameter is converted is not rewrapped."""
        with pytest.raises(TimeoutError, match="alarm"):
            vg.check_gradient(quad_loss, _Exploding(), quad_grad)

    def test_interrupted_loss_value_conversion_propagates(self) -> None:
        """A timeout raised while the loss's value is converted is not rewrapped."""
        with pytest.raises(TimeoutError, match="alarm"):
            vg.check_gradient(lambda w: _Exploding(), np.ones(3), lambda w: w)

    def test_real_conversion_errors_still_are(self) -> None:
        """A ragged list still gets the InvalidTypeError that names it."""
        with pytest.raises(vg.InvalidTypeError, match="x cannot be converted"):
            vg.check_gradient(quad_loss, [[1.0], [1.0, 2.0]], quad_grad)


class TestValidatedBeforeTheGradientRuns:
    @pytest.mark.parametrize(
        "bad", [np.array([True, False]), "1.5", np.array(["a", "b"]), {"w": np.array([True])}]
    )
    def test_bad_parameter_refused_before_the_call(self, bad: Any) -> None:
        """A bool or str parameter raises InvalidTypeError and the user's gradient never runs."""
        calls = 0

        @vg.verified_gradient(loss=lambda w: 0.0, mode="debug")
        def grad(w: Any) -> Any:
            nonlocal calls
            calls += 1
            return w

        with pytest.raises(vg.InvalidTypeError, match=r"\bw\b"):
            grad(bad)
        assert calls == 0

    def test_unchecked_calls_are_not_validated(self) -> None:
        """Between checks nothing is inspected: the call goes straight through."""
        grad = vg.verified_gradient(loss=lambda w: 0.0, every=1000)(lambda w: w)
        assert grad("anything") == "anything"


def test_checker_pickles_without_its_executor() -> None:
    """The checker of a function shipped elsewhere leaves its (unpicklable) executor behind."""
    with ThreadPoolExecutor(1) as pool:
        grad = vg.verified_gradient(loss=quad_loss, executor=pool)(quad_grad)
        clone = pickle.loads(pickle.dumps(grad.verigrad))
    assert clone.options.check.executor is None
