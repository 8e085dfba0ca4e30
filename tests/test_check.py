"""Tests for verigrad.check: one-shot gradient checks, end to end through the public API."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import verigrad as vg
from problems import (
    SEED_EXAMPLES,
    SeedExample,
    regression_data,
    regression_grad,
    regression_grad_flipped,
    regression_grad_halved,
    regression_loss,
    softmax_data,
    softmax_grad,
    softmax_grad_no_reg,
    softmax_grad_one_wrong,
    softmax_loss,
)
from verigrad._noise import PROBE_EVALS


def _sq(x: np.ndarray) -> float:
    return float(np.sum(x**2))


def _snapshot(arr: np.ndarray) -> tuple[bytes, np.dtype, tuple[int, ...], tuple[int, ...], dict]:
    flags = arr.flags
    return (
        arr.tobytes(order="A"),
        arr.dtype,
        arr.shape,
        arr.strides,
        {
            "C": flags.c_contiguous,
            "F": flags.f_contiguous,
            "W": flags.writeable,
            "O": flags.owndata,
        },
    )


class TestSeedExamples:
    """The coding-exercise seed's worked examples."""

    @pytest.mark.parametrize("example", SEED_EXAMPLES, ids=lambda e: e.name)
    def test_with_epsilon_1e_7(self, example: SeedExample) -> None:
        """With the seed's fixed step 1e-7 the check passes with a relative error below 1e-8."""
        r = vg.check_gradient(example.f, example.x, example.grad, epsilon=1e-7)
        np.testing.assert_allclose(r.numerical, example.grad, rtol=0, atol=1e-6)
        assert r.relative_error < 1e-8
        assert r.passed
        assert r.verdict == "pass"
        assert r.epsilon == 1e-7

    @pytest.mark.parametrize("example", SEED_EXAMPLES, ids=lambda e: e.name)
    def test_with_auto_epsilon(self, example: SeedExample) -> None:
        """The default 'auto' step does better still: a relative error below 1e-9."""
        r = vg.check_gradient(example.f, example.x, example.grad)
        np.testing.assert_allclose(r.numerical, example.grad, rtol=0, atol=1e-8)
        assert r.relative_error < 1e-9
        assert r.passed

    @pytest.mark.parametrize("example", SEED_EXAMPLES, ids=lambda e: e.name)
    def test_assert_gradient_passes(self, example: SeedExample) -> None:
        """assert_gradient returns the passing result for each worked example."""
        r = vg.assert_gradient(example.f, example.x, example.grad, epsilon=1e-7)
        assert isinstance(r, vg.CheckResult)
        assert r.passed


class TestLinearRegression:
    """The blog seed's linear regression check: 20 points, 2 features, beta = (2, 3)."""

    beta = np.array([2.0, 3.0])

    def test_correct_gradient_passes(self) -> None:
        """-(1/n) (y - X b)^T X matches finite differences of 1/(2n) ||y - X b||^2."""
        X, y = regression_data()
        r = vg.check_gradient(regression_loss, self.beta, regression_grad, args=(X, y))
        assert r.passed
        assert r.relative_error < 1e-8
        assert r.loss_value == pytest.approx(regression_loss(self.beta, X, y))

    def test_flipped_sign_fails(self) -> None:
        """The gradient without its leading minus is a mismatch with error 1 and a sign hint."""
        X, y = regression_data()
        r = vg.check_gradient(regression_loss, self.beta, regression_grad_flipped, args=(X, y))
        assert r.verdict == "mismatch"
        assert not r.passed
        assert r.relative_error == pytest.approx(1.0, abs=1e-9)
        assert "flipped sign" in (r.hint() or "")

    def test_halved_gradient_fails(self) -> None:
        """Dividing by 2n instead of n is a mismatch with error 1/3 and a factor-of-2 hint."""
        X, y = regression_data()
        r = vg.check_gradient(regression_loss, self.beta, regression_grad_halved, args=(X, y))
        assert r.verdict == "mismatch"
        assert r.relative_error == pytest.approx(1 / 3, rel=1e-8)
        assert "missing factor of 2" in (r.hint() or "")

    @pytest.mark.parametrize("grad", [regression_grad_flipped, regression_grad_halved])
    def test_assert_gradient_raises_for_buggy_variants(self, grad: Callable[..., Any]) -> None:
        """assert_gradient raises GradientMismatchError on both buggy gradients."""
        X, y = regression_data()
        with pytest.raises(vg.GradientMismatchError, match="verdict 'mismatch'"):
            vg.assert_gradient(regression_loss, self.beta, grad, args=(X, y))


class TestBuggyGradients:
    """Wrong gradients are caught, and the report points at the wrong coordinates."""

    def test_flipped_sign(self) -> None:
        """An exactly negated gradient has relative error 1 and ratio -1 in every row."""
        x = np.array([0.5, -1.5, 2.0])
        r = vg.check_gradient(_sq, x, -2 * x)
        assert r.verdict == "mismatch"
        assert r.relative_error == pytest.approx(1.0, abs=1e-9)
        assert r.n_mismatched == 3
        assert "flipped sign" in (r.hint() or "")
        for c in r.worst:
            assert c.analytical / c.numerical == pytest.approx(-1.0, rel=1e-9)

    def test_missing_factor_of_two(self) -> None:
        """d/dx x^2 written as x is reported as a missing factor of 2."""
        x = np.array([[1.0, 2.0], [-3.0, 0.5]])
        r = vg.check_gradient(_sq, x, x)
        assert r.verdict == "mismatch"
        assert r.relative_error == pytest.approx(1 / 3, rel=1e-8)
        assert "missing factor of 2" in (r.hint() or "")

    def test_one_wrong_coordinate_among_200(self) -> None:
        """One wrong entry of a (10, 20) gradient is found and named by its (row, col) index."""
        rng = np.random.default_rng(7)
        x = rng.normal(size=(10, 20))
        g = 2 * x
        g[6, 13] += 0.05
        r = vg.check_gradient(_sq, x, g)
        assert r.verdict == "mismatch"
        assert r.worst[0].index == (6, 13)
        assert r.n_mismatched == 1
        assert "(6, 13)" in r.summary()
        assert "(6, 13)" in (r.hint() or "")

    def test_softmax_correct_gradient_passes(self) -> None:
        """The cs231n-style softmax gradient with regularisation passes."""
        X, labels = softmax_data()
        W = np.random.default_rng(1).normal(size=(5, 3)) * 0.01
        r = vg.check_gradient(softmax_loss, W, softmax_grad, args=(X, labels))
        assert r.passed
        assert r.relative_error < 1e-8

    def test_softmax_missing_regularisation(self) -> None:
        """Forgetting the reg * W term is a mismatch."""
        X, labels = softmax_data()
        W = np.random.default_rng(1).normal(size=(5, 3)) * 0.01
        r = vg.check_gradient(softmax_loss, W, softmax_grad_no_reg, args=(X, labels))
        assert r.verdict == "mismatch"
        assert r.relative_error > 1e-3

    def test_softmax_one_wrong_entry(self) -> None:
        """A 1% error in entry (1, 2) alone is detected and named as the worst coordinate."""
        X, labels = softmax_data()
        W = np.random.default_rng(1).normal(size=(5, 3)) * 0.01
        r = vg.check_gradient(softmax_loss, W, softmax_grad_one_wrong, args=(X, labels))
        assert r.verdict == "mismatch"
        assert r.worst[0].index == (1, 2)
        assert r.n_mismatched == 1
        assert "(1, 2)" in r.summary()

    def test_huge_gradient_with_a_flipped_sign(self) -> None:
        """A loss of size 1e200 is checked without overflow, and its sign bug recognised."""
        x = np.array([1.0, 2.0, 3.0])
        r = vg.check_gradient(lambda v: 1e200 * _sq(v), x, -2e200 * x)
        assert r.verdict == "mismatch"
        assert r.n_mismatched == 3
        assert "flipped sign" in (r.hint() or "")


class TestCheckGradientOptions:
    """check_gradient: how the analytical gradient, args and options are used."""

    def test_mismatch_does_not_raise(self) -> None:
        """A wrong gradient gives a failed result, not an exception."""
        r = vg.check_gradient(_sq, np.array([1.0, 2.0]), np.array([0.0, 0.0]))
        assert r.passed is False
        assert r.verdict == "mismatch"

    def test_callable_gradient_gets_args_and_kwargs(self) -> None:
        """A gradient function is called as grad(x, *args, **kwargs), like the loss."""
        seen: dict[str, list[tuple[Any, ...]]] = {"loss": [], "grad": []}

        def loss(x: np.ndarray, a: float, *, b: float) -> float:
            seen["loss"].append((a, b))
            return float(a * np.sum(x**2) + b * np.sum(x))

        def grad(x: np.ndarray, a: float, *, b: float) -> np.ndarray:
            seen["grad"].append((a, b))
            return 2 * a * x + b

        r = vg.check_gradient(loss, np.array([1.0, -2.0]), grad, args=(3.0,), kwargs={"b": 0.5})
        assert r.passed
        assert seen["grad"] == [(3.0, 0.5)]
        # f(x), the noise probe, 2 per coordinate, f(x) again
        assert len(seen["loss"]) == r.n_evals == 6 + PROBE_EVALS
        assert set(seen["loss"]) == {(3.0, 0.5)}

    def test_array_gradient_with_args(self) -> None:
        """With an array gradient the args and kwargs go to the loss only."""
        X, y = regression_data()
        beta = np.array([2.0, 3.0])
        g = regression_grad(beta, X, y)
        r = vg.check_gradient(regression_loss, beta, g, kwargs={"X": X, "y": y})
        assert r.passed
        assert r.function is None

    def test_list_inputs(self) -> None:
        """Plain lists work as the point and as the gradient."""
        r = vg.check_gradient(_sq, [3.0, 4.0], [6.0, 8.0])
        assert r.passed
        assert r.shape == (2,)

    def test_scalar_parameter(self) -> None:
        """A 0-d parameter (a Python float) is checked like any other."""
        r = vg.check_gradient(lambda t: float(np.sin(t)), 0.5, float(np.cos(0.5)))
        assert r.passed
        assert r.shape == ()
        assert r.n_evals == 4 + PROBE_EVALS

    def test_rtol_is_respected(self) -> None:
        """A gradient 1e-4 off in relative terms passes at rtol=1e-3 and fails at rtol=1e-5."""
        x = np.array([0.3, -1.2, 2.0])
        g = 2 * x * (1 + 1e-4)
        loose = vg.check_gradient(_sq, x, g, rtol=1e-3)
        strict = vg.check_gradient(_sq, x, g, rtol=1e-5)
        assert loose.passed
        assert loose.threshold == 1e-3
        assert not strict.passed
        assert strict.threshold == 1e-5
        assert loose.relative_error == pytest.approx(5e-5, rel=1e-3)

    def test_rtol_one_is_allowed(self) -> None:
        """rtol = 1 is the loosest threshold and still fails nothing but non-finite checks."""
        x = np.array([1.0, 2.0])
        assert vg.check_gradient(_sq, x, -2 * x, rtol=1.0).passed

    @pytest.mark.parametrize("method", ["forward", "backward"])
    def test_one_sided_methods(self, method: str) -> None:
        """Forward and backward checks pass a correct gradient at a looser rtol."""
        x = np.array([0.5, 1.5, -2.5])
        r = vg.check_gradient(
            lambda v: float(np.sum(np.exp(v))),
            x,
            np.exp(x),
            method=method,  # type: ignore[arg-type]
            rtol=1e-6,
        )
        assert r.passed
        assert r.n_evals == 5 + PROBE_EVALS

    def test_seed_argument_is_accepted(self) -> None:
        """An int seed is accepted and does not change a deterministic check."""
        x = np.array([1.0, 2.0])
        a = vg.check_gradient(_sq, x, 2 * x, seed=1)
        b = vg.check_gradient(_sq, x, 2 * x, seed=2)
        np.testing.assert_array_equal(a.numerical, b.numerical)


class TestAssertGradient:
    """assert_gradient: check_gradient that raises when the check fails."""

    def test_raises_mismatch_error_carrying_the_result(self) -> None:
        """The error is an AssertionError and a VerigradError whose .result is the record."""
        x = np.array([3.0, 4.0])
        with pytest.raises(vg.GradientMismatchError) as info:
            vg.assert_gradient(_sq, x, np.array([6.0, -8.0]))
        err = info.value
        assert isinstance(err, AssertionError)
        assert isinstance(err, vg.VerigradError)
        assert isinstance(err.result, vg.CheckResult)
        assert err.result.verdict == "mismatch"
        assert err.result.worst[0].index == (1,)
        assert str(err) == err.result.summary()

    def test_caught_as_assertion_error(self) -> None:
        """Plain `except AssertionError` (as in pytest) catches a failed check."""
        with pytest.raises(AssertionError, match="gradient check FAILED"):
            vg.assert_gradient(_sq, np.array([1.0]), np.array([3.0]))

    def test_raises_for_nonfinite(self) -> None:
        """A NaN gradient raises too: non-finite never passes."""
        with pytest.raises(vg.GradientMismatchError) as info:
            vg.assert_gradient(_sq, np.array([1.0]), np.array([np.nan]))
        assert info.value.result.verdict == "nonfinite"

    def test_returns_the_result_when_passing(self) -> None:
        """A passing check returns its result, with all options applied."""
        x = np.array([1.0, 2.0])
        r = vg.assert_gradient(_sq, x, lambda v: 2 * v, method="forward", rtol=1e-6)
        assert r.passed
        assert r.method == "forward"
        assert r.threshold == 1e-6


LAYOUTS: list[tuple[str, Callable[[], np.ndarray]]] = [
    ("float64", lambda: np.array([0.5, -1.25, 2.0, 3.5])),
    ("float32", lambda: np.array([0.5, -1.25, 2.0, 3.5], dtype=np.float32)),
    ("int64", lambda: np.array([1, -2, 3, 4], dtype=np.int64)),
    ("fortran", lambda: np.asfortranarray(np.arange(1.0, 7.0).reshape(2, 3))),
    ("strided", lambda: np.arange(1.0, 13.0)[::3]),
    ("transposed", lambda: np.arange(1.0, 7.0).reshape(2, 3).T),
]


class TestSafety:
    """A check never alters the caller's data or global state."""

    @pytest.mark.parametrize(("name", "make"), LAYOUTS, ids=[n for n, _ in LAYOUTS])
    def test_x_and_analytical_unchanged(self, name: str, make: Callable[[], np.ndarray]) -> None:
        """x and the analytical array are bit-for-bit unchanged, with dtype and flags intact."""
        x = make()
        g = make() * 2
        x_before, g_before = _snapshot(x), _snapshot(g)
        r = vg.check_gradient(_sq, x, g)
        assert _snapshot(x) == x_before
        assert _snapshot(g) == g_before
        assert r.passed
        assert r.dtype == str(x.dtype)

    def test_args_arrays_unchanged(self) -> None:
        """Arrays passed through args and kwargs are left as they were."""
        X, y = regression_data()
        X_before, y_before = _snapshot(X), _snapshot(y)
        beta = np.array([2.0, 3.0])
        vg.check_gradient(regression_loss, beta, regression_grad, args=(X,), kwargs={"y": y})
        assert _snapshot(X) == X_before
        assert _snapshot(y) == y_before

    def test_loss_raising_halfway(self) -> None:
        """A loss that raises mid-check propagates the error and leaves x unchanged."""
        calls = [0]
        fatal = 7 + PROBE_EVALS

        def loss(v: np.ndarray) -> float:
            calls[0] += 1
            if calls[0] == fatal:
                raise RuntimeError("loss exploded")
            return _sq(v)

        x = np.arange(1.0, 7.0).reshape(2, 3)
        before = _snapshot(x)
        with pytest.raises(RuntimeError, match="loss exploded") as info:
            vg.check_gradient(loss, x, 2 * x)
        assert calls[0] == fatal
        assert _snapshot(x) == before
        # Call 1 is at x, then the noise probe, then pairs of calls perturb (0, 0), (0, 1), (0, 2).
        assert "verigrad: raised while evaluating the loss at coordinate (0, 2)" in (
            info.value.__notes__
        )

    def test_loss_raising_at_the_point_itself(self) -> None:
        """An error in the very first loss call propagates unchanged."""

        def loss(v: np.ndarray) -> float:
            raise KeyError("missing batch")

        x = np.ones(3)
        with pytest.raises(KeyError, match="missing batch"):
            vg.check_gradient(loss, x, np.zeros(3))
        np.testing.assert_array_equal(x, np.ones(3))

    def test_loss_that_modifies_its_argument_cannot_reach_x(self) -> None:
        """Even a loss that writes into the array it is given leaves the caller's x alone."""

        def rude_loss(v: np.ndarray) -> float:
            value = _sq(v)
            v[...] = 0.0
            return value

        x = np.array([1.0, 2.0])
        vg.check_gradient(rude_loss, x, 2 * x)
        np.testing.assert_array_equal(x, [1.0, 2.0])

    def test_global_random_state_unchanged(self) -> None:
        """random and numpy.random are not drawn from or reseeded by a check."""
        random.seed(12345)
        np.random.seed(54321)  # noqa: NPY002 - the legacy global state is what is guarded
        py_state = random.getstate()
        np_state = np.random.get_state()  # noqa: NPY002
        vg.check_gradient(_sq, np.array([1.0, 2.0]), np.array([2.0, 4.0]), seed=7)
        vg.check_gradient(_sq, np.array([1.0, 2.0]), np.array([2.0, 5.0]))
        assert random.getstate() == py_state
        after = np.random.get_state()  # noqa: NPY002
        assert after[0] == np_state[0]
        np.testing.assert_array_equal(after[1], np_state[1])
        assert after[2:] == np_state[2:]

    def test_read_only_x(self) -> None:
        """A read-only parameter can be checked and stays read-only."""
        x = np.array([1.0, -2.0, 3.0])
        x.setflags(write=False)
        g = 2 * x
        g.setflags(write=False)
        r = vg.check_gradient(_sq, x, g)
        assert r.passed
        assert not x.flags.writeable

    def test_result_arrays_are_not_the_callers(self) -> None:
        """The result holds copies: the caller can still write into its gradient array."""
        x = np.array([1.0, 2.0])
        g = 2 * x
        r = vg.check_gradient(_sq, x, g)
        assert not np.shares_memory(r.analytical, g)
        g[0] = 100.0
        assert r.analytical[0] == 2.0


class TestBadInput:
    """Invalid input raises errors that name the culprit."""

    def test_loss_returning_an_array(self) -> None:
        """A loss returning shape (3,) raises InvalidArgumentError about a scalar and the shape."""
        with pytest.raises(vg.InvalidArgumentError, match=r"must return a scalar.*\(3,\)"):
            vg.check_gradient(lambda v: v**2, np.ones(3), np.ones(3))

    @pytest.mark.parametrize(
        ("value", "words"),
        [(None, "returned None"), ("0.5", "returned a str"), (1 + 0j, "complex")],
        ids=["none", "str", "complex"],
    )
    def test_loss_returning_a_non_number(self, value: object, words: str) -> None:
        """A loss returning None, a string or a complex raises InvalidTypeError naming the loss."""

        def bad_loss(v: np.ndarray) -> object:
            return value

        with pytest.raises(vg.InvalidTypeError, match="bad_loss") as info:
            vg.check_gradient(bad_loss, np.ones(2), np.ones(2))
        assert words in str(info.value)

    def test_size_one_array_loss_is_accepted(self) -> None:
        """A loss returning np.array([[value]]) is taken as that scalar."""
        r = vg.check_gradient(lambda v: np.array([[_sq(v)]]), np.array([1.0, 2.0]), [2.0, 4.0])
        assert r.passed
        assert r.loss_value == 5.0

    def test_gradient_of_the_wrong_shape(self) -> None:
        """A gradient shaped unlike x raises InvalidArgumentError naming both shapes."""
        with pytest.raises(
            vg.InvalidArgumentError,
            match=r"analytical gradient has shape \(3,\) but the parameter has shape \(2,\)",
        ):
            vg.check_gradient(_sq, np.ones(2), np.ones(3))

    def test_gradient_function_returning_none(self) -> None:
        """A gradient function without a return raises InvalidTypeError saying so."""

        def grad(v: np.ndarray) -> None:
            2 * v  # computed, never returned: the bug under test

        with pytest.raises(vg.InvalidTypeError, match=r"None.*missing `return`"):
            vg.check_gradient(_sq, np.ones(2), grad)

    @pytest.mark.parametrize(
        ("x", "words"),
        [
            (np.array([True, False]), "dtype bool"),
            (np.array([1 + 1j, 2.0]), "complex dtype"),
            (np.array(["a", "b"], dtype=object), "holds a str"),
            (np.array(["1", "2"], dtype=object), "holds a str"),
        ],
        ids=["bool", "complex", "object-str", "object-numeric-str"],
    )
    def test_non_real_x(self, x: np.ndarray, words: str) -> None:
        """A boolean, complex or string parameter raises InvalidTypeError naming x."""
        with pytest.raises(vg.InvalidTypeError, match=r"^x ") as info:
            vg.check_gradient(lambda v: 0.0, x, np.zeros(2))
        assert words in str(info.value)

    @pytest.mark.parametrize(
        ("option", "value", "error"),
        [
            ("method", "centered", vg.InvalidArgumentError),
            ("epsilon", 0, vg.InvalidArgumentError),
            ("epsilon", -1, vg.InvalidArgumentError),
            ("epsilon", float("nan"), vg.InvalidArgumentError),
            ("epsilon", "big", vg.InvalidArgumentError),
            ("epsilon", None, vg.InvalidTypeError),
            ("rtol", 0, vg.InvalidArgumentError),
            ("rtol", 2, vg.InvalidArgumentError),
            ("rtol", -1e-5, vg.InvalidArgumentError),
            ("rtol", float("nan"), vg.InvalidArgumentError),
            ("rtol", "1e-5", vg.InvalidTypeError),
            ("rtol", True, vg.InvalidTypeError),
            ("seed", 1.5, vg.InvalidTypeError),
        ],
    )
    def test_bad_option_names_the_argument(
        self, option: str, value: object, error: type[Exception]
    ) -> None:
        """A bad method, epsilon, rtol or seed raises naming the option, before any evaluation."""
        calls = [0]

        def loss(v: np.ndarray) -> float:
            calls[0] += 1
            return _sq(v)

        with pytest.raises(error, match=option):
            vg.check_gradient(loss, np.ones(2), np.ones(2), **{option: value})
        assert calls[0] == 0

    def test_loss_not_callable(self) -> None:
        """A loss that is not a function raises InvalidTypeError naming loss."""
        with pytest.raises(vg.InvalidTypeError, match="loss must be callable"):
            vg.check_gradient(np.ones(2), np.ones(2), np.ones(2))  # type: ignore[arg-type]

    def test_errors_are_also_builtin_errors(self) -> None:
        """Argument errors are ValueErrors and type errors are TypeErrors."""
        with pytest.raises(ValueError, match="rtol"):
            vg.check_gradient(_sq, np.ones(2), np.ones(2), rtol=0)
        with pytest.raises(TypeError, match="None"):
            vg.check_gradient(_sq, np.ones(2), None)  # type: ignore[arg-type]


class TestNonFinite:
    """A NaN or inf anywhere gives the verdict 'nonfinite', which never passes."""

    def test_nan_in_analytical(self) -> None:
        """A NaN in the gradient is reported with the coordinate where it is."""
        x = np.arange(6.0).reshape(2, 3)
        g = 2 * x
        g[1, 1] = np.nan
        r = vg.check_gradient(_sq, x, g)
        assert r.verdict == "nonfinite"
        assert r.passed is False
        assert r.relative_error == np.inf
        assert r.where is not None
        assert "analytical" in r.where
        assert "(1, 1)=nan" in r.where

    def test_nan_loss_at_x(self) -> None:
        """A loss that is NaN at x is reported as such, after a single evaluation."""
        r = vg.check_gradient(lambda v: float("nan"), np.ones(3), np.zeros(3))
        assert r.verdict == "nonfinite"
        assert not r.passed
        assert r.n_evals == 1
        assert r.where is not None
        assert r.where == "the loss at x itself is nan"  # no blame on the loss *near* x

    def test_loss_infinite_near_one_coordinate(self) -> None:
        """A loss finite at x but infinite just above x[2] is a domain edge, not a failure: the
        check steps around it, says so, and still catches a wrong gradient there."""

        def loss(v: np.ndarray) -> float:
            return float("inf") if v[2] > 1.0000001 else _sq(v)

        x = np.array([0.5, 2.0, 1.0, 3.0])
        r = vg.check_gradient(loss, x, 2 * x)
        assert r.verdict == "pass"
        assert r.cause == "domain"
        assert any("domain" in note for note in r.notes)
        assert r.numerical[2] == pytest.approx(2.0, rel=1e-6)
        wrong = 2 * x
        wrong[2] = -2.0
        bad = vg.check_gradient(loss, x, wrong)
        assert bad.verdict == "mismatch"
        assert bad.worst[0].index == (2,)

    def test_pole_inside_the_stencil_is_resolved_by_a_narrower_one(self) -> None:
        """A pole of 1/(x - c) inside x +- h, but not at x: the second opinion steps inside it."""
        c = np.array([10.0, 2.00005, 10.0])

        def loss(v: np.ndarray) -> float:
            return float(np.sum(1.0 / (v - c)))

        def grad(v: np.ndarray) -> np.ndarray:
            return -1.0 / (v - c) ** 2

        x = np.array([0.0, 2.0, 1.0])
        r = vg.check_gradient(loss, x, grad, epsilon=1e-4)
        assert r.verdict == "pass"
        assert r.numerical[1] == pytest.approx(grad(x)[1], rel=1e-4)
        wrong = grad(x)
        wrong[1] *= 1.01
        bad = vg.check_gradient(loss, x, wrong, epsilon=1e-4)
        assert bad.verdict == "mismatch"
        assert bad.worst[0].index == (1,)

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite_x_is_not_evaluated(self, bad: float) -> None:
        """A NaN or inf in x gives 'nonfinite' without calling the loss (n_evals == 0)."""
        calls = [0]

        def loss(v: np.ndarray) -> float:
            calls[0] += 1
            return _sq(v)

        x = np.array([1.0, bad, 2.0])
        r = vg.check_gradient(loss, x, np.ones(3))
        assert r.verdict == "nonfinite"
        assert not r.passed
        assert r.n_evals == 0
        assert calls[0] == 0
        assert r.where is not None
        assert r.where == "the parameter x is not finite at 1 coordinate(s), first (1,)"

    def test_non_finite_x_and_analytical_are_both_reported(self) -> None:
        """With NaN in x and in the gradient, where names both, and not the unevaluated loss."""
        r = vg.check_gradient(_sq, np.array([np.nan, 1.0]), np.array([1.0, np.inf]))
        assert r.verdict == "nonfinite"
        assert r.where is not None
        assert "the parameter x is not finite" in r.where
        assert "the analytical gradient is not finite at 1 coordinate(s): (1,)=inf" in r.where
        assert "loss" not in r.where

    def test_nonfinite_with_rtol_one(self) -> None:
        """Even the loosest threshold does not let a NaN pass."""
        r = vg.check_gradient(_sq, np.ones(2), np.array([np.nan, 2.0]), rtol=1.0)
        assert not r.passed


class TestEmpty:
    """A parameter with no coordinates."""

    def test_empty_x_passes(self) -> None:
        """Shape (0,) passes with relative error 0 after one evaluation at x."""
        calls = [0]

        def loss(v: np.ndarray) -> float:
            calls[0] += 1
            return 0.0

        r = vg.check_gradient(loss, np.zeros(0), np.zeros(0))
        assert r.passed
        assert r.verdict == "pass"
        assert r.relative_error == 0.0
        assert r.n_evals == 1
        assert calls[0] == 1
        assert r.worst == ()
        assert "gradient check passed" in r.summary()

    def test_empty_two_dimensional_x(self) -> None:
        """Shape (3, 0) is handled like shape (0,)."""
        r = vg.assert_gradient(lambda v: 1.0, np.zeros((3, 0)), np.zeros((3, 0)))
        assert r.shape == (3, 0)
        assert r.n_evals == 1


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every tqdm bar drawn during the test, with its count when it was closed."""
    tqdm = pytest.importorskip("tqdm")
    made: list[Any] = []

    class Recording(tqdm.tqdm):  # type: ignore[misc,name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(tqdm, "tqdm", Recording)
    return made


class TestProgress:
    def test_progress_bar_counts_every_evaluation(self, bars: list[Any]) -> None:
        """progress=True draws one bar that counts each loss evaluation of the check."""
        x = np.linspace(-1.0, 1.0, 50)
        r = vg.check_gradient(lambda v: float(np.sum(v**2)), x, 2 * x, progress=True)
        assert r.passed
        assert len(bars) == 1
        assert bars[0].n == r.n_evals
        assert bars[0].total == r.n_evals  # the estimate 2n + 2 was right

    def test_vectorized_progress_counts_points(self, bars: list[Any]) -> None:
        """With a vectorized loss the bar advances by the points of each batch."""
        x = np.linspace(-1.0, 1.0, 20)

        def loss(v: np.ndarray) -> np.ndarray:
            return np.sum(v**2, axis=-1)

        r = vg.check_gradient(loss, x, 2 * x, vectorized=True, progress=True)
        assert bars[0].n == r.n_evals

    def test_no_bar_unless_asked(self, bars: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
        """A library call draws nothing by default."""
        x = np.linspace(-1.0, 1.0, 50)
        vg.check_gradient(lambda v: float(np.sum(v**2)), x, 2 * x)
        assert bars == []
        assert capsys.readouterr().err == ""

    def test_progress_with_an_executor_is_refused(self) -> None:
        """A bar cannot follow evaluations made by an executor: a clear error says so."""
        from concurrent.futures import ThreadPoolExecutor

        with (
            ThreadPoolExecutor(1) as pool,
            pytest.raises(vg.InvalidArgumentError, match="executor"),
        ):
            vg.check_gradient(
                lambda v: float(np.sum(v**2)),
                np.ones(3),
                2 * np.ones(3),
                executor=pool,
                progress=True,
            )
