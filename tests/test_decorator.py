"""Tests for ``@verified_gradient``: what it checks, when, and what a user sees."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import linecache
import math
import random
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

import verigrad as vg
from problems import (
    regression_data,
    regression_grad,
    regression_grad_flipped,
    regression_grad_halved,
    regression_loss,
    softmax_data,
    softmax_grad,
    softmax_grad_one_wrong,
    softmax_loss,
)
from verigrad import _config
from verigrad._policy import Schedule

X, Y = regression_data(n=20, seed=0)
BETA = np.array([0.5, -1.25])
W = np.array([1.5, -0.5])


def square_loss(w: np.ndarray) -> float:
    """A two-parameter loss cheap enough for ten thousand calls."""
    return float(w @ w) + 0.5 * float(w[0])


def square_grad(w: np.ndarray) -> np.ndarray:
    return 2 * w + np.array([0.5, 0.0])


def make_grad(**options: Any) -> Any:
    """A decorated correct gradient of :func:`square_loss` with the given options."""

    @vg.verified_gradient(loss=square_loss, **options)
    def grad(w: np.ndarray) -> np.ndarray:
        return square_grad(w)

    return grad


def checked_indices(grad: Any, n: int, *args: Any) -> list[int]:
    """Call ``grad`` ``n`` times; return the call indices of the logged checks."""
    with capture_logs() as logs:
        for _ in range(n):
            grad(*(args or (W,)))
    assert all(e["event"] == "gradient_check" for e in logs)
    return [e["call_index"] for e in logs]


def random_states() -> tuple[Any, Any]:
    return random.getstate(), np.random.get_state()  # noqa: NPY002 - the legacy global state


def same_random_states(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    (py_a, np_a), (py_b, np_b) = a, b
    return (
        py_a == py_b
        and np_a[0] == np_b[0]
        and np.array_equal(np_a[1], np_b[1])
        and np_a[2:] == np_b[2:]
    )


class TestSampling:
    def test_sample_rate_count_is_binomial(self) -> None:
        """``sample_rate=0.1`` over 10,000 calls checks 1,000 calls within four sigma (30)."""
        grad = make_grad(sample_rate=0.1, first=0, seed=1234)
        idx = checked_indices(grad, 10_000)
        stats = grad.verigrad.stats
        assert stats.calls == 10_000
        assert stats.checks == len(idx)
        assert abs(stats.checks - 1_000) <= 4 * 30
        assert stats.failures == 0

    def test_same_seed_same_checked_calls(self) -> None:
        """Two functions with the same seed check exactly the same call indices."""
        a = checked_indices(make_grad(sample_rate=0.1, first=0, seed=77), 10_000)
        b = checked_indices(make_grad(sample_rate=0.1, first=0, seed=77), 10_000)
        assert a == b

    def test_different_seed_different_checked_calls(self) -> None:
        """A different seed checks a different set of calls."""
        a = checked_indices(make_grad(sample_rate=0.1, first=0, seed=77), 10_000)
        b = checked_indices(make_grad(sample_rate=0.1, first=0, seed=78), 10_000)
        assert a != b

    def test_decorator_follows_the_schedule(self) -> None:
        """The decorator checks exactly the calls its Schedule selects."""
        options = {"sample_rate": 0.05, "every": 40, "first": 4, "seed": 5}
        idx = checked_indices(make_grad(**options), 2_000)
        schedule = Schedule(**options)
        expected = [i for i in range(2_000) if i >= schedule.next_due and schedule.take(i)]
        assert idx == expected

    def test_every_checks_every_nth_call(self) -> None:
        """``every=25`` checks calls 25, 50, ...: indices 24, 49, ..."""
        idx = checked_indices(make_grad(every=25, first=0, sample_rate=0.0), 200)
        assert idx == [24, 49, 74, 99, 124, 149, 174, 199]

    def test_first_checks_the_first_calls(self) -> None:
        """``first=6`` checks exactly the first six calls."""
        assert checked_indices(make_grad(first=6, sample_rate=0.0), 100) == list(range(6))

    def test_given_options_are_the_whole_schedule(self) -> None:
        """Options given are the whole schedule: ``sample_rate=0`` alone checks nothing (no
        default ``first`` or budget is added)."""
        assert checked_indices(make_grad(sample_rate=0.0), 50) == []

    def test_first_and_every_union(self) -> None:
        """``first=3, every=10, sample_rate=0`` checks the union of both rules."""
        idx = checked_indices(make_grad(first=3, every=10, sample_rate=0.0), 50)
        assert idx == [0, 1, 2, 9, 19, 29, 39, 49]

    def test_nothing_never_checks(self) -> None:
        """``sample_rate=0, first=0, every=None`` never checks, and logs nothing."""
        grad = make_grad(sample_rate=0.0, first=0, every=None)
        assert checked_indices(grad, 5_000) == []
        assert grad.verigrad.stats.checks == 0
        assert grad.verigrad.stats.calls == 5_000

    def test_sample_rate_one_checks_every_call(self) -> None:
        """``sample_rate=1`` checks every call."""
        grad = make_grad(sample_rate=1.0, first=0)
        assert checked_indices(grad, 200) == list(range(200))
        assert grad.verigrad.stats.checks == 200


class TestRandomState:
    def test_generator_advances_only_on_sampled_checks(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The schedule draws one random gap per sampled check, not one per call."""
        draws = 0
        original = Schedule._gap

        def counting(self: Schedule) -> int:
            nonlocal draws
            draws += 1
            return original(self)

        monkeypatch.setattr(Schedule, "_gap", counting)
        grad = make_grad(sample_rate=0.02, first=0, seed=9)
        assert draws == 1
        checked_indices(grad, 10_000)
        checks = grad.verigrad.stats.checks
        assert 100 < checks < 300
        assert draws == 1 + checks

    def test_unchecked_calls_do_not_log(self) -> None:
        """Calls that are not checked emit no log events at all."""
        grad = make_grad(sample_rate=0.0, first=2)
        with capture_logs() as logs:
            grad(W)
            grad(W)
        assert len(logs) == 2
        with capture_logs() as logs:
            for _ in range(1_000):
                grad(W)
        assert logs == []

    def test_global_random_state_untouched(self) -> None:
        """Calls and checks leave ``random`` and ``numpy.random`` global state unchanged."""
        before = random_states()
        seeded = make_grad(sample_rate=0.1, first=3, every=7, seed=1)
        unseeded = make_grad(sample_rate=0.1)
        checked_indices(seeded, 2_000)
        checked_indices(unseeded, 2_000)
        assert seeded.verigrad.stats.checks > 100
        assert same_random_states(before, random_states())

    def test_checks_do_not_depend_on_global_seed(self) -> None:
        """Reseeding numpy's global generator does not change which calls are checked."""
        state = random_states()
        try:
            np.random.seed(0)  # noqa: NPY002
            a = checked_indices(make_grad(sample_rate=0.1, first=0, seed=3), 1_000)
            np.random.seed(1)  # noqa: NPY002
            b = checked_indices(make_grad(sample_rate=0.1, first=0, seed=3), 1_000)
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])  # noqa: NPY002
        assert a == b


class TestModes:
    def test_default_mode_is_sample(self) -> None:
        """Without configuration a decorated function is in ``"sample"`` mode."""
        assert make_grad().verigrad.mode == "sample"

    def test_off_only_calls_through(self) -> None:
        """``configure(mode="off")`` stops checking, and even the counting: a pure call-through."""
        vg.configure(mode="off")
        grad = make_grad(sample_rate=1.0, first=5, every=1)
        assert checked_indices(grad, 100) == []
        assert grad.verigrad.stats.calls == 0
        assert grad.verigrad.stats.checks == 0
        assert grad.verigrad.mode == "off"

    def test_debug_checks_every_call(self) -> None:
        """``configure(mode="debug")`` checks every call, whatever the schedule says."""
        vg.configure(mode="debug")
        grad = make_grad(sample_rate=0.0, first=0)
        assert checked_indices(grad, 30) == list(range(30))

    def test_decorator_mode_beats_configure(self) -> None:
        """A decorator's own ``mode=`` overrides ``configure()``, both ways."""
        vg.configure(mode="off")
        debugging = make_grad(mode="debug", sample_rate=0.0, first=0)
        assert checked_indices(debugging, 10) == list(range(10))
        vg.configure(mode="debug")
        silent = make_grad(mode="off")
        assert checked_indices(silent, 10) == []

    def test_debug_block_beats_everything(self) -> None:
        """``with vg.debug():`` checks even a function decorated with ``mode="off"``."""
        vg.configure(mode="off")
        grad = make_grad(mode="off")
        with vg.debug():
            assert checked_indices(grad, 5) == [0, 1, 2, 3, 4]
        assert checked_indices(grad, 5) == []

    def test_debug_block_restored_after_exception(self) -> None:
        """After a debug block ends by an exception, calls are no longer forced."""
        grad = make_grad(sample_rate=0.0, first=0)

        def debug_then_fail() -> None:
            with vg.debug():
                grad(W)
                raise KeyError("x")

        with pytest.raises(KeyError):
            debug_then_fail()
        assert checked_indices(grad, 10) == []
        assert grad.verigrad.stats.checks == 1

    def test_debug_false_inside_debug(self) -> None:
        """``debug(False)`` inside ``debug()`` returns to the function's own mode."""
        grad = make_grad(mode="off")
        with vg.debug(), vg.debug(False):
            assert checked_indices(grad, 5) == []
            assert grad.verigrad.mode == "off"

    def test_back_to_sample_takes_the_overdue_check(self) -> None:
        """Calls made while off are not checked; the ``first`` check happens once back on."""
        grad = make_grad(sample_rate=0.0, first=1)
        vg.configure(mode="off")
        assert checked_indices(grad, 3) == []
        vg.configure(mode="sample")
        assert checked_indices(grad, 3) == [0]  # calls while off were not counted
        # A sample that fell due while debug mode checked every call is taken right after.
        grad2 = make_grad(sample_rate=0.5, first=0, seed=2)
        with vg.debug():
            assert len(checked_indices(grad2, 200)) == 200
        assert checked_indices(grad2, 1) == [200]

    def test_invalid_decorator_mode(self) -> None:
        """An unknown ``mode=`` for the decorator is refused, naming ``mode``."""
        with pytest.raises(vg.InvalidArgumentError, match="mode='always'"):
            make_grad(mode="always")


class TestOnFailure:
    def test_raise_is_default(self) -> None:
        """By default a failed check raises GradientMismatchError, an AssertionError."""

        @vg.verified_gradient(loss=regression_loss)
        def bad_grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            return regression_grad_flipped(beta, X, y)

        with pytest.raises(AssertionError) as info:
            bad_grad(BETA, X, Y)
        err = info.value
        assert isinstance(err, vg.GradientMismatchError)
        assert err.result.verdict == "mismatch"
        assert err.result.relative_error == pytest.approx(1.0)
        assert err.result.function.endswith("bad_grad")
        assert err.result.call_index == 0
        message = str(err)
        assert message == err.result.summary()
        assert "gradient check FAILED for" in message
        assert "bad_grad (call 0)" in message
        assert "flipped sign" in message

    def test_raise_keeps_counting(self) -> None:
        """A raised failure is still counted in the statistics."""
        grad = vg.verified_gradient(loss=regression_loss, mode="debug")(regression_grad_halved)
        for _ in range(2):
            with pytest.raises(vg.GradientMismatchError):
                grad(BETA, X, Y)
        stats = grad.verigrad.stats
        assert (stats.calls, stats.checks, stats.failures) == (2, 2, 2)

    def test_warn_points_at_the_callers_line(self) -> None:
        """``on_failure="warn"`` warns with the caller's file and line, and returns the gradient."""
        returned: list[np.ndarray] = []

        @vg.verified_gradient(loss=regression_loss, on_failure="warn")
        def bad_grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            g = regression_grad_halved(beta, X, y)
            returned.append(g)
            return g

        with pytest.warns(vg.GradientMismatchWarning, match=r"bad_grad failed") as record:
            out = bad_grad(BETA, X, Y)  # the line the warning must point at
        assert out is returned[0]
        assert len(record) == 1
        assert record[0].filename == __file__
        line = linecache.getline(record[0].filename, record[0].lineno)
        assert "the line the warning must point at" in line
        warning = record[0].message
        assert isinstance(warning, vg.GradientMismatchWarning)
        assert warning.result.verdict == "mismatch"
        assert "gradient check FAILED for" in warning.result.summary()

    def test_warn_points_at_the_callers_line_for_methods(self) -> None:
        """The warning of a method also points at the user's call, not into verigrad or wrapt."""

        class Model:
            def loss(self, beta: np.ndarray) -> float:
                return regression_loss(beta, X, Y)

            @vg.verified_gradient(loss="loss", on_failure="warn", mode="debug")
            def grad(self, beta: np.ndarray) -> np.ndarray:
                return regression_grad_halved(beta, X, Y)

        with pytest.warns(vg.GradientMismatchWarning) as on_instance:
            Model().grad(BETA)  # called through an instance
        with pytest.warns(vg.GradientMismatchWarning) as on_class:
            Model.grad(Model(), BETA)  # called through the class
        for record, marker in ((on_instance, "through an instance"), (on_class, "the class")):
            assert len(record) == 1
            assert record[0].filename == __file__
            assert marker in linecache.getline(record[0].filename, record[0].lineno)

    def test_warn_points_into_a_sibling_package(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A caller in a directory named like verigrad's (``verigrad_plugin/``) gets the warning."""
        from verigrad import _decorator

        # Pretend another copy of verigrad lives in tmp_path/verigrad, next to the plugin.
        fake_package = str(tmp_path / "verigrad")
        monkeypatch.setattr(
            _decorator, "_INTERNAL_DIRS", (*_decorator._INTERNAL_DIRS, fake_package)
        )
        plugin = tmp_path / "verigrad_plugin" / "train.py"
        plugin.parent.mkdir()
        plugin.write_text("def step(grad, w):\n    return grad(w)  # the plugin's call\n")
        spec = importlib.util.spec_from_file_location("verigrad_plugin_train", plugin)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)

        @vg.verified_gradient(loss=square_loss, on_failure="warn")
        def bad_grad(w: np.ndarray) -> np.ndarray:
            return -square_grad(w)

        with pytest.warns(vg.GradientMismatchWarning) as record:
            module.step(bad_grad, W)
        assert record[0].filename == str(plugin)
        assert record[0].lineno == 2

    def test_log_only_logs(self) -> None:
        """``on_failure="log"`` neither raises nor warns; it logs at error and returns."""
        returned: list[np.ndarray] = []

        @vg.verified_gradient(loss=regression_loss, on_failure="log", mode="debug")
        def bad_grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            g = regression_grad_flipped(beta, X, y)
            returned.append(g)
            return g

        with warnings.catch_warnings(record=True) as caught, capture_logs() as logs:
            warnings.simplefilter("always")
            out = bad_grad(BETA, X, Y)
        assert caught == []
        assert out is returned[0]
        assert [e["log_level"] for e in logs] == ["error"]
        assert bad_grad.verigrad.stats.failures == 1

    @pytest.mark.parametrize("on_failure", ["raise", "warn", "log"])
    def test_same_object_returned(self, on_failure: str) -> None:
        """The decorated function returns the very object the gradient returned, checked or not."""
        returned: list[np.ndarray] = []

        @vg.verified_gradient(loss=regression_loss, first=2, sample_rate=0.0, on_failure=on_failure)
        def grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            g = regression_grad(beta, X, y)
            returned.append(g)
            return g

        outs = [grad(BETA, X, Y) for _ in range(5)]
        assert grad.verigrad.stats.checks == 2
        assert len(returned) == 5
        assert all(o is r for o, r in zip(outs, returned, strict=True))

    def test_non_array_return_passed_through(self) -> None:
        """A gradient returned as a list is returned unchanged (the same list), after checking."""
        sentinel: list[float] = []

        @vg.verified_gradient(loss=square_loss, mode="debug")
        def grad(w: np.ndarray) -> list[float]:
            sentinel[:] = [float(v) for v in square_grad(w)]
            return sentinel

        assert grad(W) is sentinel
        assert grad.verigrad.stats.failures == 0

    def test_invalid_on_failure(self) -> None:
        """An unknown ``on_failure`` is refused at decoration, naming the argument."""
        with pytest.raises(vg.InvalidArgumentError, match=r"on_failure='ignore'.*'raise'"):
            make_grad(on_failure="ignore")


def quad(w: np.ndarray) -> float:
    return regression_loss(w, X, Y)


class QuadObject:
    """A callable object used as a loss."""

    def __call__(self, w: np.ndarray) -> float:
        return regression_loss(w, X, Y)


class Models:
    """Every way of writing a gradient method, each with a right and a sign-flipped version."""

    def __init__(self, sign: float = 1.0) -> None:
        self.sign = sign

    def loss(self, w: np.ndarray) -> float:
        return regression_loss(w, X, Y)

    def body_loss(self, w: np.ndarray) -> float:
        return regression_loss(w, X, Y)

    @classmethod
    def cls_loss(cls, w: np.ndarray, sign: float = 1.0) -> float:
        return regression_loss(w, X, Y)

    @staticmethod
    def static_loss(w: np.ndarray, sign: float = 1.0) -> float:
        return regression_loss(w, X, Y)

    @vg.verified_gradient(loss="loss", mode="debug")
    def by_name(self, w: np.ndarray) -> np.ndarray:
        """Gradient with the loss named as an attribute."""
        return self.sign * regression_grad(w, X, Y)

    @vg.verified_gradient(loss=body_loss, mode="debug")
    def by_body_function(self, w: np.ndarray) -> np.ndarray:
        """Gradient with the loss given as a function from the class body."""
        return self.sign * regression_grad(w, X, Y)

    @vg.verified_gradient(loss=QuadObject(), mode="debug")
    def by_callable(self, w: np.ndarray) -> np.ndarray:
        """Gradient with a callable object as the loss."""
        return self.sign * regression_grad(w, X, Y)

    @vg.verified_gradient(loss=quad, mode="debug")
    def by_module_function(self, w: np.ndarray) -> np.ndarray:
        """Gradient with a module-level loss."""
        return self.sign * regression_grad(w, X, Y)

    @classmethod
    @vg.verified_gradient(loss="cls_loss", mode="debug")
    def class_outer(cls, w: np.ndarray, sign: float = 1.0) -> np.ndarray:
        """Classmethod applied over the decorator."""
        return sign * regression_grad(w, X, Y)

    @vg.verified_gradient(loss="cls_loss", mode="debug")
    @classmethod
    def class_inner(cls, w: np.ndarray, sign: float = 1.0) -> np.ndarray:
        """Decorator applied over the classmethod."""
        return sign * regression_grad(w, X, Y)

    @staticmethod
    @vg.verified_gradient(loss=static_loss, mode="debug")
    def static_outer(w: np.ndarray, sign: float = 1.0) -> np.ndarray:
        """Staticmethod applied over the decorator."""
        return sign * regression_grad(w, X, Y)

    @vg.verified_gradient(loss=static_loss, mode="debug")
    @staticmethod
    def static_inner(w: np.ndarray, sign: float = 1.0) -> np.ndarray:
        """Decorator applied over the staticmethod."""
        return sign * regression_grad(w, X, Y)


def loss_with_sign(w: np.ndarray, sign: float = 1.0) -> float:
    return regression_loss(w, X, Y)


@vg.verified_gradient(loss=loss_with_sign, mode="debug")
def plain(w: np.ndarray, sign: float = 1.0) -> np.ndarray:
    """Plain function gradient."""
    return sign * regression_grad(w, X, Y)


# name -> (call with a sign, the decorated object as reached through the class)
KINDS: dict[str, Any] = {
    "plain function": lambda s: plain(BETA, s),
    "method, loss by name": lambda s: Models(s).by_name(BETA),
    "method, loss from class body": lambda s: Models(s).by_body_function(BETA),
    "method, callable object loss": lambda s: Models(s).by_callable(BETA),
    "method, module-level loss": lambda s: Models(s).by_module_function(BETA),
    "method via the class": lambda s: Models.by_name(Models(s), BETA),
    "method from body via the class": lambda s: Models.by_body_function(Models(s), BETA),
    "classmethod outer, on class": lambda s: Models.class_outer(BETA, s),
    "classmethod outer, on instance": lambda s: Models().class_outer(BETA, s),
    "classmethod inner, on class": lambda s: Models.class_inner(BETA, s),
    "classmethod inner, on instance": lambda s: Models().class_inner(BETA, s),
    "staticmethod outer, on class": lambda s: Models.static_outer(BETA, s),
    "staticmethod outer, on instance": lambda s: Models().static_outer(BETA, s),
    "staticmethod inner, on class": lambda s: Models.static_inner(BETA, s),
    "staticmethod inner, on instance": lambda s: Models().static_inner(BETA, s),
}

DECORATED: dict[str, Any] = {
    "plain": plain,
    "by_name": Models.by_name,
    "by_body_function": Models.by_body_function,
    "by_callable": Models.by_callable,
    "by_module_function": Models.by_module_function,
    "class_outer": Models.class_outer,
    "class_inner": Models.class_inner,
    "static_outer": Models.static_outer,
    "static_inner": Models.static_inner,
}


class TestCallableKinds:
    @pytest.mark.parametrize("kind", list(KINDS))
    def test_correct_gradient_passes(self, kind: str) -> None:
        """Every kind of callable is checked, and a correct gradient passes."""
        with capture_logs() as logs:
            out = KINDS[kind](1.0)
        assert np.allclose(out, regression_grad(BETA, X, Y))
        assert len(logs) == 1
        assert logs[0]["passed"] is True
        assert logs[0]["relative_error"] < 1e-6

    @pytest.mark.parametrize("kind", list(KINDS))
    def test_flipped_sign_detected(self, kind: str) -> None:
        """Every kind of callable detects a gradient with the wrong sign."""
        with pytest.raises(vg.GradientMismatchError) as info:
            KINDS[kind](-1.0)
        assert info.value.result.relative_error == pytest.approx(1.0)
        assert "flipped sign" in str(info.value)

    @pytest.mark.parametrize("name", list(DECORATED))
    def test_metadata_preserved(self, name: str) -> None:
        """Name, docstring, ``__wrapped__`` and signature are those of the original function."""
        fn = DECORATED[name]
        original = fn.__wrapped__
        target = getattr(original, "__func__", original)  # a classmethod's bound original
        assert fn.__name__ == name
        assert fn.__qualname__ == target.__qualname__
        assert fn.__qualname__ == ("plain" if name == "plain" else f"Models.{name}")
        assert fn.__doc__ == target.__doc__
        assert fn.__doc__
        expected = inspect.signature(original)
        first = next(iter(expected.parameters), None)
        if first == "cls" and "cls" not in inspect.signature(fn).parameters:
            # Python 3.13+: classmethod binds the wrapper like a function, so __wrapped__ is
            # the plain function while the bound method's signature has dropped ``cls``.
            expected = expected.replace(parameters=list(expected.parameters.values())[1:])
        assert inspect.signature(fn) == expected
        assert "w" in inspect.signature(fn).parameters

    def test_plain_function_wrapped_is_original(self) -> None:
        """``__wrapped__`` of a decorated function is the undecorated function itself."""

        def grad(w: np.ndarray) -> np.ndarray:
            return square_grad(w)

        decorated = vg.verified_gradient(loss=square_loss)(grad)
        assert decorated.__wrapped__ is grad
        assert inspect.signature(decorated) == inspect.signature(grad)

    def test_method_signature_through_instance(self) -> None:
        """A method reached through an instance has the bound signature, without ``self``."""
        assert list(inspect.signature(Models().by_name).parameters) == ["w"]
        assert list(inspect.signature(Models.by_name).parameters) == ["self", "w"]

    def test_stats_reachable_through_instance(self) -> None:
        """``obj.grad.verigrad`` is the same checker as ``Class.grad.verigrad``."""
        Models.by_name.verigrad.reset()
        m = Models()
        assert m.by_name.verigrad is Models.by_name.verigrad
        m.by_name(BETA)
        Models().by_name(BETA)
        assert m.by_name.verigrad.stats.calls == 2
        assert m.by_name.verigrad.stats.checks == 2
        assert Models.class_outer.verigrad is Models().class_outer.verigrad
        assert Models.static_inner.verigrad is Models().static_inner.verigrad

    def test_checker_repr_and_function_name(self) -> None:
        """The checker names the qualified function and shows its counts in its repr."""
        checker = Models.by_name.verigrad
        checker.reset()
        Models().by_name(BETA)
        assert checker.function == "Models.by_name"
        assert repr(checker) == "<GradientChecker Models.by_name: 1 calls, 1 checks, 0 failures>"

    def test_partial_is_decorated(self) -> None:
        """A functools.partial can be decorated; ``wrt`` counts its remaining arguments."""
        grad = vg.verified_gradient(loss=regression_loss, mode="debug")(
            functools.partial(regression_grad_flipped)
        )
        with pytest.raises(vg.GradientMismatchError):
            grad(BETA, X, Y)

    def test_non_callable_refused(self) -> None:
        """Decorating something that is not callable is an error at decoration."""
        with pytest.raises(vg.InvalidArgumentError, match="decorates functions, not int"):
            vg.verified_gradient(loss=square_loss)(42)  # type: ignore[type-var]

    def test_softmax_matrix_parameter(self) -> None:
        """A matrix parameter is checked as a whole, and a single wrong entry is located."""
        Xs, labels = softmax_data()
        W0 = np.random.default_rng(0).normal(size=(5, 3)) * 0.1

        @vg.verified_gradient(loss=softmax_loss, mode="debug", rtol=1e-7)
        def bad(W: np.ndarray, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
            return softmax_grad_one_wrong(W, X, labels)

        @vg.verified_gradient(loss=softmax_loss, mode="debug", rtol=1e-7)
        def good(W: np.ndarray, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
            return softmax_grad(W, X, labels)

        good(W0, Xs, labels)
        with pytest.raises(vg.GradientMismatchError) as info:
            bad(W0, Xs, labels)
        assert info.value.result.shape == (5, 3)
        assert info.value.result.worst[0].index == (1, 2)


class TestBadResults:
    def test_gradient_returning_none(self) -> None:
        """A gradient function that returns None is an InvalidTypeError mentioning None."""

        @vg.verified_gradient(loss=square_loss)
        def grad(w: np.ndarray) -> None:
            square_grad(w)

        with pytest.raises(vg.InvalidTypeError, match=r"None.*missing `return`"):
            grad(W)

    def test_gradient_with_wrong_shape(self) -> None:
        """A gradient shaped unlike the parameter is an InvalidArgumentError with both shapes."""

        @vg.verified_gradient(loss=square_loss)
        def grad(w: np.ndarray) -> np.ndarray:
            return np.append(square_grad(w), 0.0)

        with pytest.raises(vg.InvalidArgumentError, match=r"shape \(3,\).*shape \(2,\)"):
            grad(W)

    def test_gradient_transposed(self) -> None:
        """A gradient with the right size but wrong shape is refused, suggesting a reshape."""

        @vg.verified_gradient(loss=lambda w: float(np.sum(w**2)))
        def grad(w: np.ndarray) -> np.ndarray:
            return (2 * w).T

        with pytest.raises(vg.InvalidArgumentError, match=r"\(3, 2\).*\(2, 3\).*reshape"):
            grad(np.ones((2, 3)))

    def test_loss_returning_a_vector(self) -> None:
        """A loss that returns a vector is an InvalidArgumentError asking for a scalar."""

        @vg.verified_gradient(loss=lambda w: w**2)
        def grad(w: np.ndarray) -> np.ndarray:
            return 2 * w

        with pytest.raises(vg.InvalidArgumentError, match="scalar"):
            grad(W)

    def test_nan_in_gradient_raises(self) -> None:
        """A NaN in the gradient gives verdict ``"nonfinite"`` and raises in raise mode."""

        @vg.verified_gradient(loss=square_loss)
        def grad(w: np.ndarray) -> np.ndarray:
            g = square_grad(w)
            g[0] = np.nan
            return g

        with pytest.raises(vg.GradientMismatchError, match="nonfinite") as info:
            grad(W)
        result = info.value.result
        assert result.verdict == "nonfinite"
        assert not result.passed
        assert math.isinf(result.relative_error)
        stats = grad.verigrad.stats
        assert stats.failures == 1
        assert math.isinf(stats.max_relative_error)

    def test_nan_in_loss_fails(self) -> None:
        """A loss that is NaN at the point makes the check fail as non-finite."""

        @vg.verified_gradient(loss=lambda w: math.nan, on_failure="log")
        def grad(w: np.ndarray) -> np.ndarray:
            return 2 * w

        grad(W)
        result = grad.verigrad.last_result
        assert result is not None
        assert result.verdict == "nonfinite"

    def test_bad_result_does_not_stop_later_calls(self) -> None:
        """After a call whose check raised, the function keeps working and counting."""
        bad = {"on": True}

        @vg.verified_gradient(loss=square_loss, mode="debug")
        def grad(w: np.ndarray) -> np.ndarray | None:
            return None if bad["on"] else square_grad(w)

        with pytest.raises(vg.InvalidTypeError):
            grad(W)
        bad["on"] = False
        grad(W)
        stats = grad.verigrad.stats
        assert (stats.calls, stats.checks, stats.failures) == (2, 1, 0)


class TestSafety:
    def test_inputs_unchanged_by_checks(self) -> None:
        """The caller's parameter and data arrays are bit-for-bit unchanged after checks."""
        beta = BETA.copy()
        Xc, Yc = X.copy(), Y.copy()
        snapshot = (beta.tobytes(), Xc.tobytes(), Yc.tobytes())
        grad = vg.verified_gradient(loss=regression_loss, mode="debug")(regression_grad)
        for _ in range(5):
            grad(beta, Xc, Yc)
        assert grad.verigrad.stats.checks == 5
        assert (beta.tobytes(), Xc.tobytes(), Yc.tobytes()) == snapshot

    def test_loss_sees_a_copy_not_the_callers_array(self) -> None:
        """A loss that writes into its parameter cannot reach the caller's array."""

        def scribbling_loss(w: np.ndarray) -> float:
            value = square_loss(w)
            w[...] = 1e9
            return value

        grad = vg.verified_gradient(loss=scribbling_loss, on_failure="log")(square_grad)
        w = W.copy()
        before = w.tobytes()
        with warnings.catch_warnings(), capture_logs():
            # Whether the check can still decide is the check's business (it may hand each
            # evaluation its own copy, or call the loss nondeterministic); not a failure.
            warnings.simplefilter("ignore", vg.InconclusiveCheckWarning)
            grad(w)
        assert w.tobytes() == before
        stats = grad.verigrad.stats
        assert (stats.checks, stats.failures) == (1, 0)

    def test_loss_raising_mid_check(self) -> None:
        """A loss that raises during a check propagates; inputs stay intact and later calls work."""
        evaluations = 0

        def flaky_loss(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
            nonlocal evaluations
            evaluations += 1
            if evaluations == 3:
                raise FloatingPointError("overflow in the loss")
            return regression_loss(beta, X, y)

        grad = vg.verified_gradient(loss=flaky_loss, mode="debug")(regression_grad)
        beta, Xc, Yc = BETA.copy(), X.copy(), Y.copy()
        snapshot = (beta.tobytes(), Xc.tobytes(), Yc.tobytes())
        with pytest.raises(FloatingPointError, match="overflow in the loss"):
            grad(beta, Xc, Yc)
        assert (beta.tobytes(), Xc.tobytes(), Yc.tobytes()) == snapshot
        stats = grad.verigrad.stats
        assert (stats.calls, stats.checks, stats.failures, stats.last_result) == (1, 0, 0, None)
        out = grad(beta, Xc, Yc)
        assert np.array_equal(out, regression_grad(BETA, X, Y))
        stats = grad.verigrad.stats
        assert (stats.calls, stats.checks, stats.failures) == (2, 1, 0)
        assert stats.last_result is not None
        assert stats.last_result.call_index == 1
        assert stats.last_result.passed

    def test_loss_raising_leaves_no_reentrancy_guard(self) -> None:
        """After a loss raised mid-check, a nested decorated gradient is checked again."""
        fail = {"on": True}

        def loss(w: np.ndarray) -> float:
            if fail["on"]:
                raise RuntimeError("stop")
            return square_loss(w)

        grad = vg.verified_gradient(loss=loss, mode="debug")(square_grad)
        with pytest.raises(RuntimeError):
            grad(W)
        fail["on"] = False
        other = make_grad(mode="debug")
        other(W)
        assert other.verigrad.stats.checks == 1

    def test_integer_parameter_checked_as_float(self) -> None:
        """An integer parameter array is checked in float64 and left unchanged."""
        seen: list[np.dtype[Any]] = []

        def loss(w: np.ndarray) -> float:
            seen.append(w.dtype)
            return float(np.sum(w.astype(np.float64) ** 3))

        @vg.verified_gradient(loss=loss, mode="debug")
        def grad(w: np.ndarray) -> np.ndarray:
            return 3 * w**2

        w = np.array([1, -2, 3])
        before = w.tobytes()
        out = grad(w)
        assert out.dtype.kind == "i"
        result = grad.verigrad.last_result
        assert result is not None
        assert result.passed
        assert result.dtype == "int64"
        assert set(seen) == {np.dtype(np.float64)}
        assert w.tobytes() == before

    def test_reentrant_loss_does_not_nest_checks(self) -> None:
        """A loss that calls the decorated gradient itself does not start a nested check."""

        evaluations = 0

        def loss(w: np.ndarray) -> float:
            nonlocal evaluations
            evaluations += 1
            grad(w)  # e.g. a loss that reuses the gradient code for a line search
            return square_loss(w)

        @vg.verified_gradient(loss=loss, mode="debug")
        def grad(w: np.ndarray) -> np.ndarray:
            return square_grad(w)

        with capture_logs() as logs:
            for _ in range(3):
                grad(W)
        stats = grad.verigrad.stats
        assert stats.checks == 3
        assert len(logs) == 3
        # Every evaluation of the loss belongs to one of the three checks: none to a nested one.
        assert evaluations == sum(e["n_evals"] for e in logs)
        assert stats.calls == 3  # the loss's calls during a check are not counted

    def test_reentrant_calls_do_not_use_up_first(self) -> None:
        """Calls a loss makes from inside a check do not take the places of ``first``."""

        def loss(w: np.ndarray) -> float:
            grad(w)
            return square_loss(w)

        @vg.verified_gradient(loss=loss, first=3, sample_rate=0.0)
        def grad(w: np.ndarray) -> np.ndarray:
            return square_grad(w)

        for _ in range(5):
            grad(W)
        stats = grad.verigrad.stats
        assert stats.checks == 3
        assert stats.calls == 5  # the loss's own calls during checks are not counted

    def test_reentrant_other_decorated_gradient_not_checked(self) -> None:
        """Inside a check, other decorated gradients called by the loss are not checked either."""
        inner = make_grad(mode="debug")

        def loss(w: np.ndarray) -> float:
            inner(w)
            return square_loss(w)

        outer = vg.verified_gradient(loss=loss, mode="debug")(square_grad)
        outer(W)
        assert outer.verigrad.stats.checks == 1
        assert inner.verigrad.stats.checks == 0
        assert inner.verigrad.stats.calls == 0  # calls made by a check are not the user's


class TestThreads:
    def test_many_threads_count_every_call(self) -> None:
        """8 threads x 2,000 calls: every call counted, checks consistent, no exceptions."""
        grad = vg.verified_gradient(loss=regression_loss, sample_rate=0.05, seed=42)(
            regression_grad
        )
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def worker() -> None:
            try:
                start.wait()
                beta = BETA.copy()
                for _ in range(2_000):
                    grad(beta, X, Y)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        with capture_logs() as logs:
            threads = [threading.Thread(target=worker) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert errors == []
        stats = grad.verigrad.stats
        assert stats.calls == 16_000
        passes = sum(e["passed"] for e in logs)
        fails = sum(not e["passed"] for e in logs)
        assert stats.checks == len(logs) == passes + fails
        assert stats.failures == fails == 0
        # about 5% of 16,000 (sigma ~28), plus the first call
        assert abs(stats.checks - 801) < 6 * 28
        assert sorted({e["call_index"] for e in logs}) == sorted(e["call_index"] for e in logs)
        assert all(0 <= e["call_index"] < 16_000 for e in logs)

    def test_threads_with_failures_count_them(self) -> None:
        """Failures found in several threads are all counted when on_failure is "log"."""

        @vg.verified_gradient(
            loss=square_loss, every=10, first=0, sample_rate=0.0, on_failure="log"
        )
        def grad(w: np.ndarray) -> np.ndarray:
            return -square_grad(w)

        def worker() -> None:
            for _ in range(500):
                grad(W)

        with capture_logs() as logs:
            threads = [threading.Thread(target=worker) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        stats = grad.verigrad.stats
        assert stats.calls == 2_000
        assert stats.checks == stats.failures == len(logs) == 200
        assert sorted(e["call_index"] for e in logs) == list(range(9, 2_000, 10))

    def test_first_and_every_exact_under_thread_switches(self) -> None:
        """Under heavy thread switching no ``first``/``every`` check is lost or duplicated."""
        expected = sorted(set(range(5)) | set(range(6, 8_000, 7)))
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
        try:
            for _ in range(2):

                @vg.verified_gradient(loss=square_loss, first=5, every=7, sample_rate=0.0)
                def grad(w: np.ndarray) -> np.ndarray:
                    return square_grad(w)

                def worker(grad: Any = grad) -> None:
                    for _ in range(1_000):
                        grad(W)

                with capture_logs() as logs:
                    threads = [threading.Thread(target=worker) for _ in range(8)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join(60)
                assert grad.verigrad.stats.calls == 8_000
                assert sorted(e["call_index"] for e in logs) == expected
                assert grad.verigrad.stats.checks == len(expected)
        finally:
            sys.setswitchinterval(interval)

    def test_every_check_not_lost_when_a_thread_pauses(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A call paused right after taking its index keeps its ``every`` check."""
        paused, resume = threading.Event(), threading.Event()

        class PausingSettings:
            """Stands in for the settings; pauses the worker thread while it reads the mode."""

            rtol = 1e-5  # the defaults a checked call reads
            on_failure = "raise"

            @property
            def mode(self) -> str:
                if threading.current_thread().name == "paused-worker" and not paused.is_set():
                    paused.set()
                    assert resume.wait(10)
                return "sample"

        grad = make_grad(every=2, first=0, sample_rate=0.0)
        with capture_logs() as logs:
            grad(W)  # index 0: not due
            monkeypatch.setattr(_config._HOLDER, "settings", PausingSettings())
            worker = threading.Thread(target=grad, args=(W,), name="paused-worker")
            worker.start()  # takes index 1 (due), then pauses
            assert paused.wait(10)
            for _ in range(3):
                grad(W)  # indices 2, 3 (due), 4
            resume.set()
            worker.join(10)
        assert sorted(e["call_index"] for e in logs) == [1, 3]
        assert grad.verigrad.stats.checks == 2


class TestStats:
    def test_initial_stats(self) -> None:
        """Before any call the statistics are all zero and there is no result."""
        stats = make_grad().verigrad.stats
        assert stats == vg.CheckStats(
            calls=0, checks=0, failures=0, max_relative_error=0.0, last_result=None
        )

    def test_mixed_passes_and_failures(self) -> None:
        """Counts, the largest error and the last result follow passing and failing checks."""
        bug = {"factor": 1.0}

        @vg.verified_gradient(
            loss=regression_loss, first=0, every=2, sample_rate=0.0, on_failure="log"
        )
        def grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            return bug["factor"] * regression_grad(beta, X, y)

        grad(BETA, X, Y)  # 0: unchecked
        grad(BETA, X, Y)  # 1: checked, passes
        bug["factor"] = 1.5
        grad(BETA, X, Y)  # 2: unchecked
        grad(BETA, X, Y)  # 3: checked, fails with error 0.5 / 2.5
        bug["factor"] = 2.0
        grad(BETA, X, Y)  # 4: unchecked
        grad(BETA, X, Y)  # 5: checked, fails with error 1 / 3
        bug["factor"] = 1.0
        grad(BETA, X, Y)  # 6: unchecked
        grad(BETA, X, Y)  # 7: checked, passes
        stats = grad.verigrad.stats
        assert (stats.calls, stats.checks, stats.failures) == (8, 4, 2)
        assert stats.max_relative_error == pytest.approx(1 / 3, rel=1e-6)
        assert stats.last_result is not None
        assert stats.last_result.passed
        assert stats.last_result.call_index == 7
        assert grad.verigrad.last_result is stats.last_result

    def test_stats_are_a_snapshot(self) -> None:
        """A stats object does not change when more calls are made."""
        grad = make_grad()
        grad(W)
        snapshot = grad.verigrad.stats
        grad(W)
        assert snapshot.calls == 1
        assert grad.verigrad.stats.calls == 2

    def test_reset_zeroes_and_replays_schedule(self) -> None:
        """``reset()`` zeroes the statistics and the same calls are checked again for a seed."""
        grad = make_grad(sample_rate=0.1, first=2, every=17, seed=99)
        first_run = checked_indices(grad, 1_000)
        assert grad.verigrad.stats.checks == len(first_run) > 0
        grad.verigrad.reset()
        assert grad.verigrad.stats == vg.CheckStats(0, 0, 0, 0.0, None)
        assert checked_indices(grad, 1_000) == first_run
        assert grad.verigrad.stats.calls == 1_000


class TestValidation:
    @pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan])
    def test_bad_sample_rate(self, rate: float) -> None:
        """A sample_rate outside [0, 1] or NaN is refused at decoration, naming it."""
        with pytest.raises(vg.InvalidArgumentError, match="sample_rate"):
            make_grad(sample_rate=rate)

    def test_every_zero(self) -> None:
        """``every=0`` is refused at decoration, naming ``every``."""
        with pytest.raises(vg.InvalidArgumentError, match="every=0"):
            make_grad(every=0)

    def test_first_negative(self) -> None:
        """``first=-1`` is refused at decoration, naming ``first``."""
        with pytest.raises(vg.InvalidArgumentError, match="first=-1"):
            make_grad(first=-1)

    def test_seed_type(self) -> None:
        """A seed that is not an int is refused at decoration, naming ``seed``."""
        with pytest.raises(vg.InvalidTypeError, match="seed"):
            make_grad(seed=0.5)

    def test_bad_method(self) -> None:
        """An unknown finite-difference method is refused, naming ``method``."""
        with pytest.raises(vg.InvalidArgumentError, match="method='five-point'"):
            make_grad(method="five-point")

    @pytest.mark.parametrize("epsilon", [0.0, -1e-6, math.inf, "small"])
    def test_bad_epsilon(self, epsilon: object) -> None:
        """A step that is not positive and finite (or "auto") is refused, naming ``epsilon``."""
        with pytest.raises(vg.InvalidArgumentError, match="epsilon"):
            make_grad(epsilon=epsilon)

    @pytest.mark.parametrize("rtol", [0.0, -1e-5, 2.0, math.nan])
    def test_bad_rtol(self, rtol: float) -> None:
        """An rtol outside (0, 1] is refused, naming ``rtol``."""
        with pytest.raises(vg.InvalidArgumentError, match="rtol"):
            make_grad(rtol=rtol)

    def test_rtol_type(self) -> None:
        """A non-numeric rtol is a type error naming ``rtol``."""
        with pytest.raises(vg.InvalidTypeError, match="rtol"):
            make_grad(rtol="1e-5")

    @pytest.mark.parametrize("method", ["forward", "backward"])
    def test_other_methods_work(self, method: str) -> None:
        """One-sided methods are accepted and used for the check."""
        grad = make_grad(method=method, mode="debug", rtol=1e-4)
        grad(W)
        result = grad.verigrad.last_result
        assert result is not None
        assert result.method == method
        assert result.passed

    def test_fixed_epsilon_is_used(self) -> None:
        """A fixed ``epsilon`` is the step actually taken."""
        grad = make_grad(epsilon=1e-4, mode="debug")
        grad(W)
        result = grad.verigrad.last_result
        assert result is not None
        assert np.allclose(result.steps, 1e-4)
        assert result.passed


TARGET = np.array([1.0, -2.0, 0.5])


def target_loss(w: np.ndarray, lr: float = 0.0) -> float:
    """``0.5 ||w - TARGET||^2``; ``lr`` is the fused step's learning rate, unused here."""
    d = w - TARGET
    return 0.5 * float(d @ d)


def tree_loss(params: dict[str, Any], lr: float = 0.0) -> float:
    """A loss of a structured parameter: a matrix and a list of two vectors."""
    layers = params["layers"]
    return 0.5 * float(np.sum(params["W"] ** 2)) + float(
        np.sum(layers[0] ** 3) + layers[1] @ TARGET
    )


class TestCheckedPoint:
    def test_fused_update_step_passes(self) -> None:
        """A correct gradient that then updates its parameter in place passes every check."""
        returned: list[np.ndarray] = []

        @vg.verified_gradient(loss=target_loss, mode="debug")
        def step(w: np.ndarray, lr: float) -> np.ndarray:
            g = w - TARGET
            w -= lr * g  # the fused update, after the gradient
            returned.append(g)
            return g

        w = np.array([3.0, 1.0, -1.0])
        for _ in range(5):
            before = w.copy()
            out = step(w, 0.5)
            assert out is returned[-1]
            assert np.array_equal(out, before - TARGET)
            assert np.array_equal(w, before - 0.5 * out)  # the update happened, once
        stats = step.verigrad.stats
        assert (stats.checks, stats.failures, stats.undecided) == (5, 0, 0)
        assert step.verigrad.last_result is not None
        assert step.verigrad.last_result.passed

    def test_fused_update_of_several_arguments_passes(self) -> None:
        """With ``wrt=(0, 1)`` both arguments are snapshotted before the in-place update."""

        def loss(w: np.ndarray, b: np.ndarray, lr: float) -> float:
            return target_loss(w) + float(np.sum(b**2))

        @vg.verified_gradient(loss=loss, wrt=(0, "b"), mode="debug")
        def step(w: np.ndarray, b: np.ndarray, lr: float) -> tuple[np.ndarray, np.ndarray]:
            gw, gb = w - TARGET, 2 * b
            w -= lr * gw
            b -= lr * gb
            return gw, gb

        w, b = np.array([3.0, 1.0, -1.0]), np.array([0.5, -0.25])
        for _ in range(3):
            step(w, b=b, lr=0.3)
        assert (step.verigrad.stats.checks, step.verigrad.stats.failures) == (3, 0)

    def test_fused_update_of_a_structured_parameter_passes(self) -> None:
        """A nested dict/list of arrays is copied leaf by leaf before the in-place update."""

        @vg.verified_gradient(loss=tree_loss, mode="debug")
        def step(params: dict[str, Any], lr: float) -> dict[str, Any]:
            layers = params["layers"]
            g = {"W": params["W"].copy(), "layers": [3 * layers[0] ** 2, TARGET.copy()]}
            params["W"] -= lr * g["W"]
            layers[0] -= lr * g["layers"][0]
            layers[1] -= lr * g["layers"][1]
            return g

        params = {"W": np.arange(6.0).reshape(2, 3), "layers": [np.array([0.5, -1.0]), W.copy()]}
        params["layers"][1] = np.array([0.1, 0.2, 0.3])
        for _ in range(3):
            step(params, 0.1)
        stats = step.verigrad.stats
        assert (stats.checks, stats.failures, stats.undecided) == (3, 0, 0)

    def test_hogwild_writer_thread_gives_no_failures(self) -> None:
        """A thread writing into w after each gradient is computed, and all through its check,
        makes none of 200 debug-mode checks fail (n=50, float64)."""
        n = 50
        rng = np.random.default_rng(0)
        target = rng.normal(size=n)
        w = rng.normal(size=n)
        lock = threading.Lock()
        may_write, wrote, stop = threading.Event(), threading.Event(), threading.Event()
        writes = 0

        def loss(v: np.ndarray) -> float:
            d = v - target
            return 0.5 * float(d @ d)

        @vg.verified_gradient(loss=loss, mode="debug", on_failure="log")
        def grad(v: np.ndarray) -> np.ndarray:
            g = v - target
            may_write.set()  # from now on the other thread writes into w ...
            assert wrote.wait(10)  # ... and has written before the check starts
            return g

        def writer() -> None:
            nonlocal writes
            noise = np.random.default_rng(1)
            while not stop.is_set():
                if not may_write.wait(0.01):
                    continue
                with lock:
                    if may_write.is_set():
                        # In place, as a Hogwild worker applies its own updates.
                        w[:] = 0.9 * w + 0.1 * noise.standard_normal(n)
                        writes += 1
                        wrote.set()

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            with capture_logs():
                for _ in range(200):
                    grad(w)
                    with lock:  # no write lands between the next snapshot and gradient
                        may_write.clear()
                        wrote.clear()
        finally:
            stop.set()
            thread.join(10)
        stats = grad.verigrad.stats
        assert (stats.checks, stats.failures, stats.undecided) == (200, 0, 0)
        assert writes >= 200

    def test_callers_arguments_bit_for_bit_unchanged(self) -> None:
        """Checks leave the caller's arrays, structures and their layout exactly as they were."""

        def loss(w: np.ndarray, params: dict[str, Any], data: np.ndarray) -> float:
            return target_loss(w) + tree_loss(params) + float(data @ w)

        @vg.verified_gradient(loss=loss, wrt=(0, 1), mode="debug")
        def grad(
            w: np.ndarray, params: dict[str, Any], data: np.ndarray
        ) -> tuple[np.ndarray, dict[str, Any]]:
            layers = params["layers"]
            gp = {"W": params["W"], "layers": [3 * layers[0] ** 2, TARGET]}
            return w - TARGET + data, gp

        w = np.asfortranarray(np.array([3.0, 1.0, -1.0]))
        leaves = [np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.array([0.5, -1.0]), W]
        params = {"W": leaves[0], "layers": [leaves[1], np.array([0.1, 0.2, 0.3])]}
        leaves[2] = params["layers"][1]
        data = np.array([0.25, -0.5, 1.0])
        arrays = [w, *leaves, data]
        before = [(a.tobytes(order="A"), a.flags.f_contiguous, a.dtype) for a in arrays]
        for _ in range(3):
            grad(w, params, data)
        assert (grad.verigrad.stats.checks, grad.verigrad.stats.failures) == (3, 0)
        assert [(a.tobytes(order="A"), a.flags.f_contiguous, a.dtype) for a in arrays] == before
        assert params["W"] is leaves[0]
        assert params["layers"][0] is leaves[1]

    def test_unchecked_calls_take_no_snapshot(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Only checked calls copy the argument: 10 snapshots for 100 calls with every=10."""
        from verigrad import _decorator

        taken: list[int] = []
        real = _decorator.snapshot

        def counting(value: Any) -> Any:
            taken.append(1)
            return real(value)

        monkeypatch.setattr(_decorator, "snapshot", counting)
        grad = make_grad(every=10, first=0, sample_rate=0.0)
        for _ in range(100):
            grad(W)
        assert len(taken) == grad.verigrad.stats.checks == 10
        off = make_grad(mode="off")
        for _ in range(10):
            off(W)
        assert len(taken) == 10

    def test_gradient_time_is_not_check_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The checked call's own gradient computation counts as training, not as check time."""
        from verigrad import _decorator

        now = [0.0]
        monkeypatch.setattr(_decorator, "_clock", lambda: now[0])

        def loss(w: np.ndarray) -> float:
            now[0] += 1e-3  # each loss evaluation takes a millisecond
            return square_loss(w)

        @vg.verified_gradient(loss=loss, mode="debug")
        def grad(w: np.ndarray) -> np.ndarray:
            now[0] += 1.0  # the gradient takes a second
            return square_grad(w)

        grad(W)
        stats = grad.verigrad.stats
        assert stats.checks == 1
        assert 0.0 < stats.check_time_s < 1.0

    def test_call_not_matching_the_signature_raises_the_functions_error(self) -> None:
        """A checked call with wrong arguments fails as the function itself would (TypeError)."""
        grad = make_grad(mode="debug")
        with pytest.raises(TypeError) as info:
            grad(W, W)
        assert not isinstance(info.value, vg.VerigradError)
        assert info.value.__context__ is None
        assert grad.verigrad.stats.checks == 0

    def test_snapshot_copies_leaves_and_keeps_structure(self) -> None:
        """The snapshot copies every array (layout, dtype, subclass kept) inside an equal
        structure (dict subclasses, namedtuples, lists) and keeps numbers as they are."""
        import collections

        from verigrad._binding import snapshot

        class Sub(np.ndarray):
            pass

        Pair = collections.namedtuple("Pair", "a b")
        fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
        sub = np.arange(3.0).view(Sub)
        value = collections.OrderedDict(
            f=fortran, pair=Pair(sub, 2.5), items=[np.ones(2), (np.zeros(1), 3)], plain=[1.0, 2.0]
        )
        copy = snapshot(value)
        assert type(copy) is collections.OrderedDict
        assert list(copy) == list(value)
        assert type(copy["pair"]) is Pair
        assert copy["f"].flags.f_contiguous
        assert copy["f"].dtype == np.float32
        assert type(copy["pair"].a) is Sub
        assert copy["pair"].b == 2.5
        assert isinstance(copy["items"], list)
        assert isinstance(copy["items"][1], tuple)
        assert copy["plain"] == [1.0, 2.0]
        assert copy["plain"] is not value["plain"]
        originals = [fortran, sub, value["items"][0], value["items"][1][0]]
        copies = [copy["f"], copy["pair"].a, copy["items"][0], copy["items"][1][0]]
        for original, copied in zip(originals, copies, strict=True):
            assert copied is not original
            assert not np.shares_memory(copied, original)
            assert np.array_equal(copied, original)


def drifting_grad(**options: Any) -> Any:
    """A correct gradient whose loss drifts from call to call: every check is undecided
    (verdict "nondeterministic")."""
    counter = iter(range(10**9))

    def loss(w: np.ndarray) -> float:
        return square_loss(w) + 1e-3 * next(counter)

    @vg.verified_gradient(loss=loss, **{"mode": "debug", **options})
    def drifting(w: np.ndarray) -> np.ndarray:
        return square_grad(w)

    return drifting


def wrong_grad(**options: Any) -> Any:
    """A wrong gradient of :func:`square_loss` that warns on failure."""

    @vg.verified_gradient(loss=square_loss, **{"mode": "debug", "on_failure": "warn", **options})
    def wrong(w: np.ndarray) -> np.ndarray:
        return -square_grad(w)

    return wrong


class TestWarnings:
    def test_thousand_undecided_checks_warn_once_and_keep_the_registry_small(self) -> None:
        """1,000 undecided checks show one warning under the default filter and add at most two
        entries to the calling module's warning registry."""
        grad = drifting_grad()
        registry = globals().setdefault("__warningregistry__", {})
        registry.clear()
        with warnings.catch_warnings(record=True) as caught, capture_logs() as logs:
            warnings.simplefilter("default")
            for _ in range(1_000):
                grad(W)
        assert len(logs) == 1_000
        assert {e["verdict"] for e in logs} == {"nondeterministic"}
        assert grad.verigrad.stats.undecided == 1_000
        assert len(caught) == 1
        assert issubclass(caught[0].category, vg.InconclusiveCheckWarning)
        assert len(globals()["__warningregistry__"]) <= 2

    def test_message_is_one_stable_line_and_result_has_the_details(self) -> None:
        """The message names the function and verdict, holds no call index or number, and is
        the same for every check; ``.result`` carries the full multi-line report."""
        grad = drifting_grad()
        messages = []
        for _ in range(3):
            with warnings.catch_warnings(record=True) as caught, capture_logs():
                warnings.simplefilter("always")
                grad(W)
                grad(W)
            assert len(caught) == 1  # once per function and verdict in each filter context
            messages.append(caught[0].message)
        texts = {str(m) for m in messages}
        assert len(texts) == 1
        (text,) = texts
        name = f"{__name__}.{grad.__qualname__}"
        assert text == (
            f"verigrad: a check of {name} could not decide (verdict 'nondeterministic'); "
            f"details in the 'gradient_check' log events and in {name}.verigrad.last_result"
        )
        assert not any(ch.isdigit() for ch in text.replace(__name__, ""))
        assert [m.result.call_index for m in messages] == [0, 2, 4]
        summary = messages[0].result.summary()
        assert "\n" in summary
        assert "nondeterministic" in summary

    def test_once_per_function_and_verdict(self) -> None:
        """Two decorated functions warn once each; undecided and failed are separate kinds."""
        first, second, wrong = drifting_grad(), drifting_grad(), wrong_grad()
        with warnings.catch_warnings(record=True) as caught, capture_logs():
            warnings.simplefilter("default")
            for _ in range(20):
                first(W)
                second(W)
                wrong(W)
        assert sorted(w.category.__name__ for w in caught) == [
            "GradientMismatchWarning",
            "InconclusiveCheckWarning",
            "InconclusiveCheckWarning",
        ]
        assert wrong.verigrad.stats.failures == 20

    def test_mismatch_warning_is_one_line_and_error_keeps_the_report(self) -> None:
        """A warned failure has the one-line message; a raised one keeps the full report."""
        with warnings.catch_warnings(record=True) as caught, capture_logs():
            warnings.simplefilter("default")
            wrong_grad()(W)
        (warning,) = caught
        assert "\n" not in str(warning.message)
        assert "failed (verdict 'mismatch')" in str(warning.message)
        with pytest.raises(vg.GradientMismatchError) as info, capture_logs():
            wrong_grad(on_failure="raise")(W)
        assert str(info.value) == info.value.result.summary()
        assert "\n" in str(info.value)

    def test_error_filter_raises_on_every_undecided_check(self) -> None:
        """``simplefilter("error", InconclusiveCheckWarning)`` makes the first undecided check
        raise it (with its result), and every later one too."""
        grad = drifting_grad()
        with warnings.catch_warnings(), capture_logs():
            warnings.simplefilter("error", vg.InconclusiveCheckWarning)
            for i in range(3):
                with pytest.raises(vg.InconclusiveCheckWarning) as info:
                    grad(W)
                assert info.value.result.call_index == i
        assert grad.verigrad.stats.undecided == 3

    def test_ignore_filter_silences_them(self) -> None:
        """``filterwarnings("ignore", category=VerigradWarning)`` silences both kinds; the checks
        are still counted."""
        drifting, wrong = drifting_grad(), wrong_grad()
        with warnings.catch_warnings(record=True) as caught, capture_logs():
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=vg.VerigradWarning)
            for _ in range(5):
                drifting(W)
                wrong(W)
        assert caught == []
        assert (drifting.verigrad.stats.undecided, wrong.verigrad.stats.failures) == (5, 5)

    def test_a_new_filter_or_reset_warns_again(self) -> None:
        """After a filter change, or ``reset()``, the next undecided check warns again."""
        grad = drifting_grad()
        with warnings.catch_warnings(record=True) as caught, capture_logs():
            warnings.simplefilter("always")
            grad(W)
            grad(W)
            warnings.filterwarnings("ignore", message="unrelated")
            grad(W)
            grad(W)
            grad.verigrad.reset()
            grad(W)
        assert [w.message.result.call_index for w in caught] == [0, 2, 0]

    def test_threads_warn_once(self) -> None:
        """Undecided checks in 8 threads at once still give one warning."""
        grad = drifting_grad()

        def worker() -> None:
            for _ in range(25):
                grad(W)

        with warnings.catch_warnings(record=True) as caught, capture_logs():
            warnings.simplefilter("always")
            threads = [threading.Thread(target=worker) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert len(caught) == 1
        assert grad.verigrad.stats.undecided == 200

    @pytest.mark.parametrize("kind", ["undecided", "failed"])
    def test_warnings_pickle_with_their_result(self, kind: str) -> None:
        """A warning pickles with its message and its result."""
        import pickle

        grad = drifting_grad() if kind == "undecided" else wrong_grad()
        with warnings.catch_warnings(record=True) as caught, capture_logs():
            warnings.simplefilter("always")
            grad(W)
        original = caught[0].message
        copy = pickle.loads(pickle.dumps(original))
        assert type(copy) is type(original)
        assert str(copy) == str(original)
        assert copy.result.verdict == original.result.verdict
        assert copy.result.summary() == original.result.summary()

    def test_warning_made_from_a_result_alone_is_one_line(self) -> None:
        """``InconclusiveCheckWarning(result)`` gets the stable one-line message by itself."""
        grad = drifting_grad()
        with capture_logs(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grad(W)
        result = grad.verigrad.last_result
        assert result is not None
        warning = vg.InconclusiveCheckWarning(result)
        assert str(warning).startswith(f"verigrad: a check of {result.function} could not decide")
        assert "\n" not in str(warning)
        assert str(vg.InconclusiveCheckError(result)) == result.summary()
