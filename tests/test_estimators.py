"""Tests for verigrad.estimators: step rules, finite differences, directional derivatives."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import verigrad as vg
from problems import SEED_EXAMPLES, SeedExample
from verigrad.estimators import (
    CENTRAL_STEP,
    ONE_SIDED_STEP,
    coordinate_differences,
    step_sizes,
    validate_epsilon,
    validate_method,
)

FAST = settings(max_examples=40, deadline=None)


def _counting(f: Callable[[np.ndarray], float]) -> tuple[Callable[[np.ndarray], float], list[int]]:
    calls = [0]

    def wrapped(x: np.ndarray) -> float:
        calls[0] += 1
        return f(x)

    return wrapped, calls


def _sum_exp(x: np.ndarray) -> float:
    return float(np.sum(np.exp(x)))


def _sum_sin(x: np.ndarray) -> float:
    return float(np.sum(np.sin(x)))


def _quartic(x: np.ndarray) -> float:
    return float(np.sum(x**4 - 3 * x**3 + x))


SMOOTH = [
    ("exp", _sum_exp, np.exp),
    ("sin", _sum_sin, np.cos),
    ("quartic", _quartic, lambda x: 4 * x**3 - 9 * x**2 + 1),
]
POINT = np.array([0.3, -1.2, 2.5, 0.7])

finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)


class TestValidation:
    """validate_method and validate_epsilon: options are checked before any evaluation."""

    @pytest.mark.parametrize("method", ["central", "forward", "backward"])
    def test_known_methods_are_returned(self, method: str) -> None:
        """Each supported scheme name is accepted as given."""
        assert validate_method(method) == method

    @pytest.mark.parametrize("method", ["centered", "CENTRAL", "", None, 2])
    def test_unknown_method_names_the_argument(self, method: object) -> None:
        """An unsupported method raises InvalidArgumentError naming method and the choices."""
        with pytest.raises(vg.InvalidArgumentError, match=r"method=.*'central', 'forward'"):
            validate_method(method)

    @pytest.mark.parametrize(("epsilon", "expected"), [("auto", "auto"), (1e-6, 1e-6), (2, 2.0)])
    def test_valid_epsilon_is_returned_as_float_or_auto(
        self, epsilon: object, expected: object
    ) -> None:
        """'auto' and positive finite numbers are accepted, numbers as floats."""
        out = validate_epsilon(epsilon)
        assert out == expected
        assert type(out) is type(expected)

    @pytest.mark.parametrize("epsilon", [0, 0.0, -1, -1e-7, float("nan"), float("inf"), "big"])
    def test_bad_epsilon_value_names_the_argument(self, epsilon: object) -> None:
        """Zero, negative, NaN, infinite or unknown-string steps raise naming epsilon."""
        with pytest.raises(vg.InvalidArgumentError, match=r"epsilon="):
            validate_epsilon(epsilon)

    @pytest.mark.parametrize("epsilon", [None, True, [1e-6]])
    def test_bad_epsilon_type_names_the_argument(self, epsilon: object) -> None:
        """A step that is not a number or 'auto' raises InvalidTypeError naming epsilon."""
        with pytest.raises(vg.InvalidTypeError, match=r"epsilon must be"):
            validate_epsilon(epsilon)


class TestStepSizes:
    """step_sizes: fixed steps are absolute, 'auto' steps scale with the coordinate."""

    def test_auto_central_step_scales_with_the_coordinate(self) -> None:
        """'auto' uses eps**(1/3) * max(|x_i|, 1) for central differences."""
        x = np.array([0.0, 0.5, -3.0, 1e8])
        steps = step_sizes(x, "auto", "central")
        np.testing.assert_allclose(steps, CENTRAL_STEP * np.array([1.0, 1.0, 3.0, 1e8]))
        assert 6e-6 < CENTRAL_STEP < 6.1e-6

    @pytest.mark.parametrize("method", ["forward", "backward"])
    def test_auto_one_sided_step_is_sqrt_eps(self, method: str) -> None:
        """'auto' uses sqrt(eps) * max(|x_i|, 1) for one-sided differences."""
        x = np.array([0.25, -40.0])
        steps = step_sizes(x, "auto", method)  # type: ignore[arg-type]
        np.testing.assert_allclose(steps, ONE_SIDED_STEP * np.array([1.0, 40.0]))
        assert 1.4e-8 < ONE_SIDED_STEP < 1.5e-8

    def test_fixed_step_is_used_as_given(self) -> None:
        """A fixed epsilon is the same absolute step for every coordinate, whatever x is."""
        x = np.array([[0.0, 1e6], [-5.0, 2.0]])
        steps = step_sizes(x, 1e-4, "central")
        assert steps.shape == x.shape
        np.testing.assert_array_equal(steps, np.full((2, 2), 1e-4))


class TestNumericalGradient:
    """numerical_gradient: the public finite-difference gradient."""

    @pytest.mark.parametrize("example", SEED_EXAMPLES, ids=lambda e: e.name)
    @pytest.mark.parametrize("epsilon", [1e-7, "auto"])
    def test_seed_examples(self, example: SeedExample, epsilon: object) -> None:
        """The seed's worked examples come out within 1e-6 of the exact gradient."""
        g = vg.numerical_gradient(example.f, example.x, epsilon=epsilon)  # type: ignore[arg-type]
        np.testing.assert_allclose(g, example.grad, rtol=0, atol=1e-6)

    def test_readme_cubic_example(self) -> None:
        """x0^3 + x1^3 at (2, -1) gives (12, 3) to ten digits with the default settings."""
        f = SEED_EXAMPLES[2].f
        g = vg.numerical_gradient(f, np.array([2.0, -1.0]))
        np.testing.assert_allclose(g, [12.0, 3.0], rtol=1e-10)

    @pytest.mark.parametrize(("name", "f", "df"), SMOOTH, ids=[s[0] for s in SMOOTH])
    def test_central_is_accurate_to_nine_digits(
        self, name: str, f: Callable[[np.ndarray], float], df: Callable[..., np.ndarray]
    ) -> None:
        """Central differences with the auto step reach a relative error below 1e-9."""
        g = vg.numerical_gradient(f, POINT, method="central")
        assert vg.relative_error(g, df(POINT)) < 1e-9
        np.testing.assert_allclose(g, df(POINT), rtol=1e-8)

    @pytest.mark.parametrize("method", ["forward", "backward"])
    @pytest.mark.parametrize(("name", "f", "df"), SMOOTH, ids=[s[0] for s in SMOOTH])
    def test_one_sided_is_accurate_to_six_digits(
        self,
        name: str,
        f: Callable[[np.ndarray], float],
        df: Callable[..., np.ndarray],
        method: str,
    ) -> None:
        """One-sided differences are good to about 1e-7 relative, not better."""
        g = vg.numerical_gradient(f, POINT, method=method)  # type: ignore[arg-type]
        np.testing.assert_allclose(g, df(POINT), rtol=1e-6)
        central = vg.numerical_gradient(f, POINT, method="central")
        # Central differences are second order: at least a hundred times more accurate here.
        assert 100 * vg.relative_error(central, df(POINT)) < vg.relative_error(g, df(POINT))

    def test_forward_and_backward_bracket_a_convex_function(self) -> None:
        """For a convex function the forward slope is above and the backward slope below."""
        x = np.array([0.5, 1.5])
        fwd = vg.numerical_gradient(_sum_exp, x, method="forward", epsilon=1e-3)
        bwd = vg.numerical_gradient(_sum_exp, x, method="backward", epsilon=1e-3)
        assert np.all(fwd > np.exp(x))
        assert np.all(bwd < np.exp(x))

    @pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 3, 2)])
    def test_result_has_the_shape_of_x_and_float64_dtype(self, shape: tuple[int, ...]) -> None:
        """The gradient is a float64 array shaped like x for 0-d to 3-d parameters."""
        x = np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape)
        g = vg.numerical_gradient(lambda v: float(np.sum(v**2)), x)
        assert isinstance(g, np.ndarray)
        assert g.shape == shape
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, 2 * x, rtol=1e-9, atol=1e-10)

    def test_f_sees_a_float64_array_of_the_shape_of_x(self) -> None:
        """f is always called with a float64 array shaped like x, even for list input."""
        seen: list[tuple[np.dtype, tuple[int, ...]]] = []

        def f(v: np.ndarray) -> float:
            seen.append((v.dtype, v.shape))
            return float(np.sum(v))

        vg.numerical_gradient(f, [[1, 2, 3], [4, 5, 6]])
        assert seen
        assert set(seen) == {(np.dtype(np.float64), (2, 3))}

    @pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32])
    def test_integer_and_float32_x_are_checked_as_float64(self, dtype: type) -> None:
        """Integer and float32 points are differentiated in float64, without truncated steps."""
        x = np.array([1, -2, 3], dtype=dtype)
        g = vg.numerical_gradient(lambda v: float(np.sum(v**3)), x)
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, 3.0 * np.array([1.0, 4.0, 9.0]), rtol=1e-9)

    def test_x_is_left_unchanged(self) -> None:
        """The caller's array is bit-for-bit the same after the estimate."""
        x = np.array([0.1, 0.2, 0.3])
        before = x.tobytes()
        vg.numerical_gradient(_sum_exp, x)
        assert x.tobytes() == before

    @pytest.mark.parametrize(
        ("method", "evals"), [("central", 10), ("forward", 6), ("backward", 6)]
    )
    def test_number_of_evaluations(self, method: str, evals: int) -> None:
        """Central takes 2 evaluations per coordinate, one-sided 1 plus one at x."""
        f, calls = _counting(_sum_sin)
        vg.numerical_gradient(f, np.arange(5.0), method=method)  # type: ignore[arg-type]
        assert calls[0] == evals

    def test_fixed_epsilon_too_small_for_a_huge_coordinate_raises(self) -> None:
        """A step that cannot move x = 1e20 raises InvalidArgumentError naming epsilon."""
        with pytest.raises(vg.InvalidArgumentError, match=r"epsilon=1e-07 is too small.*1e\+20"):
            vg.numerical_gradient(lambda v: float(v @ v), np.array([1.0, 1e20]), epsilon=1e-7)

    @pytest.mark.parametrize("method", ["forward", "backward"])
    def test_fixed_epsilon_too_small_raises_for_one_sided_methods(self, method: str) -> None:
        """The resolution check also guards the one-sided schemes."""
        with pytest.raises(vg.InvalidArgumentError, match=r"epsilon="):
            vg.numerical_gradient(
                lambda v: float(v @ v),
                np.array([1e20]),
                method=method,  # type: ignore[arg-type]
                epsilon=1e-7,
            )

    def test_auto_step_is_accurate_for_large_coordinates(self) -> None:
        """'auto' scales the step so that coordinates near 1e8 keep eight digits."""
        x = np.array([1e8, -3e8, 2.5e8])
        g = vg.numerical_gradient(lambda v: float(np.sum(v**2)), x)
        assert vg.relative_error(g, 2 * x) < 1e-8
        fixed = vg.numerical_gradient(lambda v: float(np.sum(v**2)), x, epsilon=1e-7)
        assert vg.relative_error(fixed, 2 * x) > 1e-6  # a fixed tiny step drowns in rounding

    def test_auto_step_handles_a_huge_coordinate(self) -> None:
        """'auto' still differentiates at x = 1e20 where a fixed small step is refused."""
        x = np.array([1e20, -3e20])
        g = vg.numerical_gradient(lambda v: float(np.sum(v**3)) * 1e-40, x)
        np.testing.assert_allclose(g, 3e-40 * x**2, rtol=1e-9)

    @pytest.mark.parametrize("method", ["central", "backward"])
    def test_bad_options_raise_before_any_evaluation(self, method: str) -> None:
        """An invalid method or epsilon raises without calling f."""
        f, calls = _counting(_sum_sin)
        with pytest.raises(vg.InvalidArgumentError, match=r"method="):
            vg.numerical_gradient(f, np.ones(2), method="midpoint")  # type: ignore[arg-type]
        with pytest.raises(vg.InvalidArgumentError, match=r"epsilon="):
            vg.numerical_gradient(f, np.ones(2), method=method, epsilon=-1.0)  # type: ignore[arg-type]
        assert calls[0] == 0

    def test_non_scalar_f_raises(self) -> None:
        """f returning a vector raises InvalidArgumentError naming f and the shape."""
        with pytest.raises(vg.InvalidArgumentError, match=r"f must return a scalar.*\(3,\)"):
            vg.numerical_gradient(lambda v: v * 2, np.ones(3))

    def test_non_real_x_raises(self) -> None:
        """A complex parameter raises InvalidTypeError naming x."""
        with pytest.raises(vg.InvalidTypeError, match=r"^x has complex dtype"):
            vg.numerical_gradient(lambda v: 0.0, np.array([1j]))

    def test_empty_x_gives_empty_gradient_without_evaluating(self) -> None:
        """A parameter with no coordinates gives an empty gradient and no central evaluation."""
        f, calls = _counting(lambda v: 0.0)
        g = vg.numerical_gradient(f, np.zeros((0, 3)))
        assert g.shape == (0, 3)
        assert calls[0] == 0

    def test_exception_from_f_names_the_coordinate(self) -> None:
        """An error raised by f propagates with a note naming the coordinate being perturbed."""
        f, calls = _counting(_sum_sin)

        def failing(v: np.ndarray) -> float:
            if calls[0] == 4:
                raise ZeroDivisionError("boom")
            return f(v)

        x = np.arange(6.0).reshape(2, 3)
        before = x.tobytes()
        with pytest.raises(ZeroDivisionError, match=r"boom") as info:
            vg.numerical_gradient(failing, x)
        assert x.tobytes() == before
        # Calls 0-1 are coordinate (0, 0), 2-3 are (0, 1), call 4 is the first of (0, 2).
        assert info.value.__notes__ == [
            "verigrad: raised while evaluating the loss at coordinate (0, 2)"
        ]

    @FAST
    @given(
        data=st.data(),
        n=st.integers(1, 5),
    )
    def test_central_differences_are_exact_on_quadratics(self, data: st.DataObject, n: int) -> None:
        """On x^T A x + b.x central differences agree with (A + A^T) x + b up to rounding."""
        a = data.draw(hnp.arrays(np.float64, (n, n), elements=finite), label="A")
        b = data.draw(hnp.arrays(np.float64, (n,), elements=finite), label="b")
        x = data.draw(hnp.arrays(np.float64, (n,), elements=finite), label="x")
        exact = (a + a.T) @ x + b
        g = vg.numerical_gradient(lambda v: float(v @ a @ v + b @ v), x)
        # Rounding of f (size ~ fscale) divided by the step (>= 6e-6) bounds the error.
        fscale = np.abs(a).sum() * (1 + np.abs(x).max()) ** 2 + np.abs(b).sum() * (
            1 + np.abs(x).max()
        )
        np.testing.assert_allclose(g, exact, rtol=1e-7, atol=1e-9 * (1 + fscale))


class TestCoordinateDifferences:
    """coordinate_differences: the shared estimator, with steps and evaluation counts."""

    def test_reports_the_steps_actually_taken(self) -> None:
        """steps is the representable half-width of each central stencil, close to the request."""
        x = np.array([0.1, 3.0, -7.0])
        requested = step_sizes(x, "auto", "central")
        est = coordinate_differences(_sum_exp, x.copy(), requested, "central")
        assert est.n_evals == 6
        assert est.method == "central"
        np.testing.assert_allclose(est.steps, requested, rtol=1e-9)
        for xi, hi in zip(x, est.steps, strict=True):
            assert ((xi + hi) - (xi - hi)) / 2 == hi

    def test_working_copy_is_restored_exactly(self) -> None:
        """The array perturbed in place holds exactly its starting values afterwards."""
        x = np.array([0.1, 1.0 / 3.0, -7.25])
        work = x.copy()
        coordinate_differences(_sum_exp, work, step_sizes(work, "auto", "forward"), "forward", 1.0)
        assert work.tobytes() == x.tobytes()

    def test_one_sided_without_f0_raises(self) -> None:
        """Forward differences without the loss at x raise naming the method."""
        x = np.ones(2)
        with pytest.raises(vg.InvalidArgumentError, match=r"method='forward' needs"):
            coordinate_differences(_sum_exp, x, step_sizes(x, "auto", "forward"), "forward")


def _smooth(v: np.ndarray) -> float:
    return float(np.sum(np.sin(v)) + 0.5 * np.sum(v) ** 2 + np.exp(0.1 * v[0]))


def _smooth_grad(v: np.ndarray) -> np.ndarray:
    g = np.cos(v) + np.sum(v)
    g[0] += 0.1 * np.exp(0.1 * v[0])
    return g


class TestDirectionalDerivative:
    """directional_derivative: the centered derivative of f along d."""

    @FAST
    @given(
        data=st.data(),
        n=st.integers(1, 6),
    )
    def test_equals_d_dot_gradient(self, data: st.DataObject, n: int) -> None:
        """The derivative along d agrees with d . grad f(x) for a smooth f."""
        x = data.draw(hnp.arrays(np.float64, (n,), elements=st.floats(-3, 3)), label="x")
        d = data.draw(hnp.arrays(np.float64, (n,), elements=st.floats(-5, 5)), label="d")
        exact = float(d @ _smooth_grad(x))
        dd = vg.directional_derivative(_smooth, x, d)
        assert isinstance(dd, float)
        scale = np.abs(d).sum() * (1 + np.abs(_smooth_grad(x)).max())
        # + 1e-300: for subnormal directions the result itself has only a few bits.
        assert dd == pytest.approx(exact, rel=1e-7, abs=1e-8 * scale + 1e-300)

    def test_seed_cubic_along_ones(self) -> None:
        """Along (1, 1) at (2, -1) the cubic's derivative is 12 + 3 = 15."""
        f = SEED_EXAMPLES[2].f
        dd = vg.directional_derivative(f, np.array([2.0, -1.0]), np.array([1.0, 1.0]))
        assert dd == pytest.approx(15.0, rel=1e-10)

    def test_two_evaluations_whatever_the_size(self) -> None:
        """The estimate costs two evaluations even for a thousand coordinates."""
        f, calls = _counting(_sum_sin)
        x = np.linspace(-1, 1, 1000)
        d = np.ones(1000)
        dd = vg.directional_derivative(f, x, d)
        assert calls[0] == 2
        assert dd == pytest.approx(float(np.sum(np.cos(x))), rel=1e-9)

    def test_zero_direction_gives_zero_without_evaluating(self) -> None:
        """A zero direction returns exactly 0.0 and never calls f."""
        f, calls = _counting(_sum_sin)
        assert vg.directional_derivative(f, np.ones(3), np.zeros(3)) == 0.0
        assert calls[0] == 0

    def test_linear_in_the_length_of_d(self) -> None:
        """Scaling d scales the derivative: d is not normalised."""
        x = np.array([0.3, -0.4])
        d = np.array([1.0, 2.0])
        one = vg.directional_derivative(_smooth, x, d)
        assert vg.directional_derivative(_smooth, x, 10 * d) == pytest.approx(10 * one, rel=1e-8)
        assert vg.directional_derivative(_smooth, x, -d) == pytest.approx(-one, rel=1e-8)

    def test_tiny_direction_does_not_overflow_the_step(self) -> None:
        """Subnormal directions, down to 5e-324, still give d . grad, not NaN."""
        x = np.array([0.3, -0.4])
        d = np.array([1e-310, 2e-310])
        dd = vg.directional_derivative(_smooth, x, d)
        assert dd / 1e-310 == pytest.approx(float(np.array([1.0, 2.0]) @ _smooth_grad(x)), 1e-6)
        # The smallest subnormal direction: 6e-6 / 5e-324 would overflow to an infinite step.
        smallest = vg.directional_derivative(
            lambda v: float(v @ v), np.array([0.3, 1.0]), np.array([0.0, 5e-324])
        )
        assert smallest == 1e-323  # 2 * 5e-324, the exact d . grad

    def test_fixed_epsilon_is_used(self) -> None:
        """A fixed epsilon gives the textbook (f(x+hd) - f(x-hd)) / 2h."""
        f = _sum_exp
        x, d, h = np.array([0.5]), np.array([1.0]), 0.1
        expected = (np.exp(0.5 + h) - np.exp(0.5 - h)) / (2 * h)
        dd = vg.directional_derivative(f, x, d, epsilon=h)
        assert dd == pytest.approx(expected, rel=1e-12)

    def test_fixed_epsilon_too_small_raises(self) -> None:
        """A fixed step that cannot move x along d raises naming epsilon instead of returning 0."""
        with pytest.raises(vg.InvalidArgumentError, match=r"epsilon=1e-07 is too small"):
            vg.directional_derivative(
                lambda v: float(v @ v), np.array([1e20]), np.array([1.0]), epsilon=1e-7
            )

    def test_shape_mismatch_names_d(self) -> None:
        """A direction shaped unlike x raises InvalidArgumentError naming d and both shapes."""
        with pytest.raises(vg.InvalidArgumentError, match=r"d has shape \(3,\) but x has shape"):
            vg.directional_derivative(_sum_sin, np.ones(2), np.ones(3))

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_direction_is_refused(self, bad: float) -> None:
        """A direction with NaN or inf raises InvalidArgumentError naming d."""
        f, calls = _counting(_sum_sin)
        with pytest.raises(vg.InvalidArgumentError, match=r"d contains NaN or inf"):
            vg.directional_derivative(f, np.ones(2), np.array([1.0, bad]))
        assert calls[0] == 0

    def test_non_real_direction_is_refused(self) -> None:
        """A boolean direction raises InvalidTypeError naming d."""
        with pytest.raises(vg.InvalidTypeError, match=r"^d has dtype bool"):
            vg.directional_derivative(_sum_sin, np.ones(2), np.array([True, False]))

    def test_x_and_d_are_left_unchanged(self) -> None:
        """Neither the point nor the direction is modified."""
        x, d = np.array([0.1, 0.2]), np.array([3.0, -1.0])
        xb, db = x.tobytes(), d.tobytes()
        vg.directional_derivative(_smooth, x, d)
        assert x.tobytes() == xb
        assert d.tobytes() == db
