"""Input fuzzing: every input is either checked correctly or refused with an error naming it.

Shapes (0-d, empty, 1-d, n-d), layouts (Fortran order, non-contiguous and reversed views,
read-only arrays), dtypes (bool, ints, float16/32/64, complex, object) and special values
(NaN, inf, -0.0, huge and tiny magnitudes) go through ``check_gradient``, ``assert_gradient``,
``numerical_gradient``, ``relative_error`` and the decorator in debug mode. What "checked
correctly" means per dtype:

- integer and float16/32/64 parameters and gradients are checked on a float64 copy;
- bool, complex, strings, dates, ``None`` and Python objects that are not real numbers are
  refused with :class:`~verigrad.InvalidTypeError`; object arrays of real numbers (``Fraction``,
  ``Decimal``, ``int``) are read as float64; values beyond float64's range (``10**400``, long
  doubles) are refused with :class:`~verigrad.InvalidArgumentError`;
- a NaN or inf in the parameter, the gradient or any loss value never passes.

The suite runs with ``filterwarnings = error``: a numpy ``RuntimeWarning`` raised inside
verigrad fails these tests like any other internal error. The losses used here silence their
own floating-point warnings, which are the user's business.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from structlog.testing import capture_logs

import verigrad as vg

REFUSED = (vg.InvalidArgumentError, vg.InvalidTypeError)
VERDICTS = {"pass", "mismatch", "nonfinite", "kink", "nondeterministic", "inconclusive"}
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
REAL_DTYPES = INT_DTYPES + FLOAT_DTYPES
METHODS = ["auto", "central", "forward", "backward", "richardson", "complex"]
#: Shapes up to 3 dimensions and 3 entries per side: 0-d, empty, 1-d and n-d.
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
LAYOUTS = ["c", "fortran", "strided", "reversed", "read-only"]


def _layout(arr: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``arr`` in another memory layout."""
    if layout == "fortran" and arr.ndim:  # asfortranarray makes a 0-d array 1-d
        return np.asfortranarray(arr)
    if layout == "strided" and arr.ndim:
        buffer = np.zeros((*arr.shape[:-1], 2 * arr.shape[-1]), dtype=arr.dtype)
        buffer[..., ::2] = arr
        return buffer[..., ::2]
    if layout == "reversed" and arr.ndim:
        return np.ascontiguousarray(arr[..., ::-1])[..., ::-1]
    out = np.array(arr)
    if layout == "read-only":
        out.setflags(write=False)
    return out


@st.composite
def real_arrays(draw: st.DrawFn, shape: Any = SHAPES) -> np.ndarray:
    """Arrays of any real dtype and layout, values over the dtype's whole range.

    For floats that includes NaN, +-inf, -0.0, subnormals and the largest finite values.
    """
    dtype = draw(st.sampled_from(REAL_DTYPES))
    arr = draw(hnp.arrays(dtype, draw(shape) if isinstance(shape, st.SearchStrategy) else shape))
    return _layout(arr, draw(st.sampled_from(LAYOUTS)))


def _float64(arr: np.ndarray) -> np.ndarray:
    return np.asarray(arr, dtype=np.float64)


def _coefficients(shape: tuple[int, ...]) -> np.ndarray:
    """Fixed gradient entries 1, 2, -3, 1, 2, -3, ... for a linear loss."""
    size = math.prod(shape)
    return np.resize(np.array([1.0, 2.0, -3.0]), size).reshape(shape)


def _linear(a: np.ndarray) -> Callable[[np.ndarray], Any]:
    """``x -> sum(a * x)``; evaluates complex input too (for the complex step)."""

    def loss(x: np.ndarray) -> Any:
        with np.errstate(all="ignore"):
            return np.sum(a * x)

    return loss


def _quadratic(x: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return 0.5 * float(np.sum(x * x))


def _render(result: vg.CheckResult) -> None:
    """Both renderings of a result work for whatever it holds."""
    assert isinstance(result.summary(), str)
    assert isinstance(result.to_event(), dict)
    repr(result)


def _np_state_equal(a: Any, b: Any) -> bool:
    return bool(a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:])


def _assert_outcome_matches(result: vg.CheckResult, run: Callable[[], Any]) -> None:
    """assert_gradient raises exactly when check_gradient does not pass, with the right type."""
    if result.passed:
        run()
    elif result.failed:
        with pytest.raises(vg.GradientMismatchError):
            run()
    else:
        with pytest.raises(vg.InconclusiveCheckError):
            run()


class TestParameterFuzz:
    """check_gradient and assert_gradient over parameters of any real dtype, shape and layout."""

    @settings(max_examples=80, deadline=None)
    @given(x=real_arrays(), method=st.sampled_from(METHODS))
    def test_exact_gradient_is_checked_or_found_nonfinite(self, x: np.ndarray, method: str) -> None:
        """The exact gradient passes at moderate x; a non-finite x is "nonfinite", never a pass."""
        a = _coefficients(x.shape)
        before = x.tobytes()
        result = vg.check_gradient(_linear(a), x, a, method=method)
        _render(result)
        assert result.verdict in VERDICTS
        assert result.shape == x.shape
        assert result.dtype == str(x.dtype)
        assert result.numerical.dtype == np.float64
        assert x.tobytes() == before
        x64 = _float64(x)
        if not np.isfinite(x64).all():
            assert result.verdict == "nonfinite"
            assert not result.passed
            assert "parameter x" in (result.where or "")
        elif np.all(np.abs(x64) <= 1e6):
            # Beyond that, sum(a * x) can cancel terms near 1e19 down to a value whose rounding
            # error verigrad's |f|-based error model underestimates: not a promise made.
            assert result.passed, result.summary()
        _assert_outcome_matches(result, lambda: vg.assert_gradient(_linear(a), x, a, method=method))

    @settings(max_examples=60, deadline=None)
    @given(
        x=real_arrays(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)),
        which=st.integers(0, 26),
        method=st.sampled_from(METHODS),
    )
    def test_wrong_gradient_never_passes(self, x: np.ndarray, which: int, method: str) -> None:
        """A gradient with one entry off by 1.5 never passes, whatever the parameter, unless the
        check says it could not resolve that: a pass on absolute agreement, the entry within
        the error bar it reports (a float32 loss of 1e10 cannot see a slope of 1.5)."""
        a = _coefficients(x.shape)
        wrong = a.copy()
        k = which % wrong.size
        wrong.reshape(-1)[k] += 1.5
        result = vg.check_gradient(_linear(a), x, wrong, method=method)
        _render(result)
        if result.passed:
            assert result.agreement == "absolute", result.summary()
            assert result.errors is not None
            assert 10 * 1.01 * result.errors.reshape(-1)[k] >= 1.5, result.summary()

    @settings(max_examples=40, deadline=None)
    @given(
        data=st.data(),
        dtype=st.sampled_from(FLOAT_DTYPES),
        special=st.sampled_from([np.nan, np.inf, -np.inf]),
    )
    def test_nan_or_inf_anywhere_in_x_is_nonfinite(
        self, data: st.DataObject, dtype: type, special: float
    ) -> None:
        """A NaN or inf in any coordinate of x gives "nonfinite" without evaluating the loss."""
        shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
        x = data.draw(hnp.arrays(dtype, shape, elements=st.floats(-10, 10, width=16)))
        x.reshape(-1)[data.draw(st.integers(0, x.size - 1))] = special
        x = _layout(x, data.draw(st.sampled_from(LAYOUTS)))
        calls = []

        def loss(v: np.ndarray) -> float:
            calls.append(1)
            return _quadratic(v)

        result = vg.check_gradient(loss, x, np.zeros(x.shape))
        assert result.verdict == "nonfinite"
        assert result.relative_error == math.inf
        assert calls == []
        with pytest.raises(vg.GradientMismatchError, match="nonfinite"):
            vg.assert_gradient(loss, x, np.zeros(x.shape))


class TestGradientFuzz:
    """The analytical gradient of any real dtype, layout and value, at a well-behaved point."""

    @settings(max_examples=80, deadline=None)
    @given(data=st.data())
    def test_any_gradient_is_judged_and_nonfinite_never_passes(self, data: st.DataObject) -> None:
        """A NaN or inf anywhere in the gradient is "nonfinite"; a pass means it is right."""
        shape = data.draw(SHAPES)
        x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)))
        g = data.draw(real_arrays(st.just(shape)))
        result = vg.check_gradient(_quadratic, x, g)
        _render(result)
        assert result.verdict in VERDICTS
        g64 = _float64(g)
        if not np.isfinite(g64).all():
            assert result.verdict == "nonfinite"
            assert result.relative_error == math.inf
            assert "analytical gradient" in (result.where or "")
        if result.passed:  # right to within the threshold or the numerical error bars
            assert result.errors is not None
            slack = 1e-5 * (np.abs(x) + np.abs(g64)) + 100 * result.errors
            assert np.all(np.abs(g64 - x) <= slack), result.summary()
        _assert_outcome_matches(result, lambda: vg.assert_gradient(_quadratic, x, g))

    @settings(max_examples=60, deadline=None)
    @given(
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
        bad=st.sampled_from([np.nan, np.inf, -np.inf]),
        which=st.integers(0, 63),
        method=st.sampled_from(["directional", "coordinates"]),
    )
    def test_subset_checks_never_pass_a_nonfinite_gradient(
        self, shape: tuple[int, ...], bad: float, which: int, method: str
    ) -> None:
        """Checks that estimate a few coordinates still find a NaN or inf in any of the others."""
        x = np.linspace(-1.0, 1.0, math.prod(shape)).reshape(shape)
        g = x.copy()
        g.reshape(-1)[which % g.size] = bad
        result = vg.check_gradient(_quadratic, x, g, method=method, n_coordinates=1, seed=which)  # type: ignore[arg-type]
        assert result.verdict == "nonfinite", result.summary()
        assert "analytical gradient" in (result.where or "")

    @settings(max_examples=60, deadline=None)
    @given(
        data=st.data(),
        dtype=st.sampled_from(REAL_DTYPES),
        layout=st.sampled_from(LAYOUTS),
    )
    def test_exact_gradient_in_any_dtype_and_layout_passes(
        self, data: st.DataObject, dtype: type, layout: str
    ) -> None:
        """An exact gradient stored as ints, float16/32/64, in any layout, passes."""
        shape = data.draw(SHAPES)
        low = 0 if np.issubdtype(dtype, np.unsignedinteger) else -8
        x = data.draw(hnp.arrays(np.int8, shape, elements=st.integers(low, 8))).astype(dtype)
        x = _layout(x, layout)
        g = _layout(np.array(x, dtype=dtype), layout)  # d/dx 0.5 |x|^2 = x, exact in any dtype
        before = g.tobytes()
        result = vg.check_gradient(_quadratic, x, g)
        assert result.passed, result.summary()
        assert g.tobytes() == before

    @settings(max_examples=40, deadline=None)
    @given(
        shape=SHAPES,
        other=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
    )
    def test_gradient_of_another_shape_is_refused(
        self, shape: tuple[int, ...], other: tuple[int, ...]
    ) -> None:
        """A gradient shaped unlike x is refused with InvalidArgumentError naming both shapes."""
        if shape == other:
            return
        x = np.ones(shape)
        with pytest.raises(vg.InvalidArgumentError, match=r"^analytical gradient has shape"):
            vg.check_gradient(_quadratic, x, np.ones(other))


class TestLossValueFuzz:
    """Whatever a loss returns, and at whichever call, is judged or refused naming the loss."""

    @staticmethod
    def _count_calls(x: np.ndarray, method: str) -> int:
        calls = []

        def loss(v: np.ndarray) -> float:
            calls.append(1)
            return _quadratic(v)

        vg.check_gradient(loss, x, x.copy(), method=method, seed=0, n_coordinates=2)
        return len(calls)

    @settings(max_examples=80, deadline=None)
    @given(
        x=hnp.arrays(np.float64, SHAPES, elements=st.floats(-2, 2)),
        bad=st.sampled_from(
            [
                math.nan,
                math.inf,
                -math.inf,
                np.float32("nan"),
                np.float16("inf"),
                10**400,
                -(10**400),
                np.longdouble("1e4000") if np.finfo(np.longdouble).max > 1e4000 else math.inf,
                np.array([math.nan]),
            ]
        ),
        data=st.data(),
        method=st.sampled_from([*METHODS[:-1], "directional", "coordinates"]),
    )
    def test_nan_or_inf_loss_at_any_call_never_passes(
        self, x: np.ndarray, bad: Any, data: st.DataObject, method: str
    ) -> None:
        """A NaN or inf returned at any one of the check's loss calls never passes."""
        n_calls = self._count_calls(x, method)
        k = data.draw(st.integers(1, n_calls), label="bad call")
        calls = []

        def loss(v: np.ndarray) -> Any:
            calls.append(1)
            return bad if len(calls) == k else _quadratic(v)

        result = vg.check_gradient(loss, x, x.copy(), method=method, seed=0, n_coordinates=2)
        _render(result)
        assert not result.passed, result.summary()
        calls.clear()
        with pytest.raises((vg.GradientMismatchError, vg.InconclusiveCheckError)):
            vg.assert_gradient(loss, x, x.copy(), method=method, seed=0, n_coordinates=2)

    @settings(max_examples=60, deadline=None)
    @given(
        x=hnp.arrays(np.float64, SHAPES, elements=st.floats(-2, 2)),
        bad=st.sampled_from(
            [
                None,
                "1.0",
                b"1",
                True,
                np.bool_(False),
                1j,
                np.complex64(1),
                [1.0, 2.0],
                np.zeros(0),
                np.ones((2, 2)),
                {"loss": 1.0},
                object(),
                np.array(1.0, dtype=object),
            ]
        ),
        data=st.data(),
    )
    def test_a_non_number_at_any_call_is_refused_naming_the_loss(
        self, x: np.ndarray, bad: Any, data: st.DataObject
    ) -> None:
        """A loss returning a non-number or non-scalar, even once, is refused naming the loss."""
        k = data.draw(st.integers(1, self._count_calls(x, "auto")), label="bad call")
        calls = []

        def loss(v: np.ndarray) -> Any:
            calls.append(1)
            return bad if len(calls) == k else _quadratic(v)

        before = x.tobytes()
        with pytest.raises(REFUSED, match=r"^loss .*loss"):
            vg.check_gradient(loss, x, x.copy())
        assert x.tobytes() == before
        if x.size:  # numerical_gradient: 2 calls per coordinate, none at x itself
            calls.clear()
            k = data.draw(st.integers(1, 2 * x.size), label="bad call of numerical_gradient")
            with pytest.raises(REFUSED, match=r"^f (returned|must)"):
                vg.numerical_gradient(loss, x)
            assert x.tobytes() == before


class TestNumericalGradientFuzz:
    """numerical_gradient over parameters of any real dtype, shape, layout and value."""

    @settings(max_examples=80, deadline=None)
    @given(x=real_arrays(), method=st.sampled_from(["central", "forward", "backward"]))
    def test_float64_result_shaped_like_x_and_nan_where_x_is_not_finite(
        self, x: np.ndarray, method: str
    ) -> None:
        """The result is float64 shaped like x, exact for a linear loss at moderate x, NaN
        wherever x is NaN or inf, and x is left unchanged."""
        a = _coefficients(x.shape)
        before = x.tobytes()
        g = vg.numerical_gradient(_linear(a), x, method=method)  # type: ignore[arg-type]
        assert x.tobytes() == before
        assert isinstance(g, np.ndarray)
        assert g.dtype == np.float64
        assert g.shape == x.shape
        x64 = _float64(x)
        assert np.isnan(g[~np.isfinite(x64)]).all()
        if np.all(np.abs(x64) <= 1e6):
            np.testing.assert_allclose(g, a, rtol=1e-6)


class TestRelativeErrorFuzz:
    """relative_error over arrays of any real dtype, layout and value."""

    @settings(max_examples=100, deadline=None)
    @given(data=st.data())
    def test_a_float_in_unit_interval_or_inf_for_nonfinite(self, data: st.DataObject) -> None:
        """The error is a float in [0, 1], or inf exactly when either side holds a NaN or inf."""
        shape = data.draw(SHAPES)
        n = data.draw(real_arrays(st.just(shape)))
        a = data.draw(real_arrays(st.just(shape)))
        err = vg.relative_error(n, a)
        assert type(err) is float
        if np.isfinite(_float64(n)).all() and np.isfinite(_float64(a)).all():
            assert 0.0 <= err <= 1.0
        else:
            assert err == math.inf

    @settings(max_examples=40, deadline=None)
    @given(shape=SHAPES, other=SHAPES)
    def test_different_shapes_are_refused(
        self, shape: tuple[int, ...], other: tuple[int, ...]
    ) -> None:
        """Arrays of different shapes raise InvalidArgumentError naming both."""
        if shape == other:
            return
        with pytest.raises(vg.InvalidArgumentError, match=r"^numerical has shape .* analytical"):
            vg.relative_error(np.zeros(shape), np.zeros(other))


class TestDecoratorFuzz:
    """verified_gradient in debug mode with gradients of any real dtype, layout and value."""

    @settings(max_examples=60, deadline=None)
    @given(data=st.data())
    def test_returns_the_gradient_or_raises_a_verigrad_error(self, data: st.DataObject) -> None:
        """Each call returns the function's own object, or raises GradientMismatchError (never
        for a pass), or warns undecided; a NaN or inf gradient always raises."""
        shape = data.draw(SHAPES)
        x = _layout(
            data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2))),
            data.draw(st.sampled_from(LAYOUTS)),
        )
        g = data.draw(real_arrays(st.just(shape)))

        @vg.verified_gradient(loss=_quadratic, mode="debug")
        def grad(x: np.ndarray) -> np.ndarray:
            return g

        py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
        x_before = x.tobytes()
        raised: vg.CheckResult | None = None
        with capture_logs(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = grad(x)
            except vg.GradientMismatchError as exc:
                raised = exc.result
        if raised is not None:
            assert raised.failed
            _render(raised)
        else:
            assert out is g
            result = grad.verigrad.last_result
            assert result is not None
            assert result.passed or any(
                isinstance(w.message, vg.InconclusiveCheckWarning) for w in caught
            )
            assert np.isfinite(_float64(g)).all()
        assert grad.verigrad.stats.checks == 1
        assert x.tobytes() == x_before
        assert random.getstate() == py_state
        assert _np_state_equal(np.random.get_state(), np_state)  # noqa: NPY002


BAD_VALUES: list[tuple[str, Any, type[Exception], str]] = [
    ("bool", np.array([True, False]), vg.InvalidTypeError, "dtype bool"),
    ("complex", np.array([1.0 + 2.0j, 0.5]), vg.InvalidTypeError, "complex"),
    ("complex-0d", np.complex64(1.0), vg.InvalidTypeError, "complex"),
    ("string", "abc", vg.InvalidTypeError, "dtype <U3"),
    ("bytes", np.array([b"ab"]), vg.InvalidTypeError, "dtype"),
    ("datetime", np.array(["2024-01-01"], dtype="datetime64[D]"), vg.InvalidTypeError, "datetime"),
    ("object-str", np.array([1.0, "2"], dtype=object), vg.InvalidTypeError, "holds a str"),
    ("object-bool", np.array([1.0, True], dtype=object), vg.InvalidTypeError, "holds a bool"),
    ("object-none", np.array([None, 1.0], dtype=object), vg.InvalidTypeError, "holds a NoneType"),
    ("object-dict", np.array([{}, 1.0], dtype=object), vg.InvalidTypeError, "not real numbers"),
    ("object-complex", np.array([1j, 1.0], dtype=object), vg.InvalidTypeError, "not real numbers"),
    ("none", None, vg.InvalidTypeError, "is None"),
    ("ragged", [[1.0], [1.0, 2.0]], vg.InvalidTypeError, "cannot be converted"),
    ("huge-int", 10**400, vg.InvalidArgumentError, "too large for float64"),
    (
        "object-huge-int",
        np.array([10**400, 1], dtype=object),
        vg.InvalidArgumentError,
        "too large for float64",
    ),
    ("struct", np.zeros(2, dtype=[("a", float)]), vg.InvalidTypeError, "dtype"),
]
if np.finfo(np.longdouble).max > 1e4000:  # a long double wider than float64 (x86)
    BAD_VALUES.append(
        (
            "longdouble-huge",
            np.array([np.longdouble("1e4000"), 1.0]),
            vg.InvalidArgumentError,
            "too large for float64",
        )
    )
BAD_IDS = [b[0] for b in BAD_VALUES]


def _grad_fn(x: Any) -> Any:
    """A gradient function that would choke on a bad x: it must never be reached."""
    raise AssertionError("the gradient function was called with an invalid x")


class TestRefusals:
    """Non-real input is refused with InvalidTypeError/InvalidArgumentError naming the argument."""

    @pytest.mark.parametrize(("label", "bad", "error", "words"), BAD_VALUES, ids=BAD_IDS)
    def test_bad_parameter(self, label: str, bad: Any, error: type[Exception], words: str) -> None:
        """check_gradient (array or function gradient), assert_gradient, numerical_gradient and
        the decorator refuse the parameter, naming x, before calling the user's functions."""
        msg = rf"^x .*{words}"
        with pytest.raises(error, match=msg):
            vg.check_gradient(_quadratic, bad, np.zeros(2))
        with pytest.raises(error, match=msg):
            vg.check_gradient(_quadratic, bad, _grad_fn)
        with pytest.raises(error, match=msg):
            vg.assert_gradient(_quadratic, bad, _grad_fn)
        with pytest.raises(error, match=msg):
            vg.numerical_gradient(_quadratic, bad)

        @vg.verified_gradient(loss=_quadratic, mode="debug")
        def grad(x: Any) -> Any:
            return np.zeros(np.shape(x)) if label != "ragged" else np.zeros(2)

        with pytest.raises(error, match=msg):
            grad(bad)

    @pytest.mark.parametrize(("label", "bad", "error", "words"), BAD_VALUES, ids=BAD_IDS)
    def test_bad_gradient(self, label: str, bad: Any, error: type[Exception], words: str) -> None:
        """A bad analytical gradient is refused naming it, from an array, a gradient function or
        a decorated function; relative_error names the side that is bad."""
        x = np.ones(np.shape(bad)) if label not in ("ragged", "none", "huge-int") else np.ones(2)
        msg = rf"^analytical gradient .*{words}"
        with pytest.raises(error, match=msg):
            vg.check_gradient(_quadratic, x, bad)
        with pytest.raises(error, match=msg):
            vg.assert_gradient(_quadratic, x, lambda v: bad)

        @vg.verified_gradient(loss=_quadratic, mode="debug")
        def grad(x: Any) -> Any:
            return bad

        with pytest.raises(error, match=msg):
            grad(x)
        with pytest.raises(error, match=rf"^numerical .*{words}"):
            vg.relative_error(bad, x)
        with pytest.raises(error, match=rf"^analytical .*{words}"):
            vg.relative_error(x, bad)

    @pytest.mark.parametrize(
        "value", [np.array([Fraction(1, 2), 2]), np.array([Decimal("1.5"), 2], dtype=object)]
    )
    def test_object_arrays_of_real_numbers_are_read_as_float64(self, value: np.ndarray) -> None:
        """Object arrays of Fractions, Decimals and ints are checked as their float64 values."""
        result = vg.check_gradient(_quadratic, value, value)
        assert result.passed
        assert result.dtype == "object"
        np.testing.assert_allclose(vg.numerical_gradient(_quadratic, value), value.astype(float))


class TestRegressions:
    """Inputs the fuzzing found mishandled, each pinned (see the issue 6 closing note)."""

    @pytest.mark.parametrize("method", ["auto", "central", "richardson", "directional"])
    def test_gradient_near_float64_limit_is_judged_without_overflow_warnings(
        self, method: str
    ) -> None:
        """1e308-sized gradients (opposite to the numerical one, or 1e300 along directions)
        give a failing verdict, not a numpy overflow warning."""
        x = np.array([1.0, -2.0, 3.0])
        for g in (np.array([1e308, -1e308, 1e308]), np.array([1.0, -2.0, 1e308])):
            result = vg.check_gradient(_quadratic, x, g, method=method, seed=0)  # type: ignore[arg-type]
            assert result.failed, result.summary()
        result = vg.check_gradient(
            _linear(np.full(2, 1e300)),
            np.zeros(2),
            np.full(2, 1e300),
            method=method,  # type: ignore[arg-type]
            seed=0,
        )
        _render(result)

    def test_negligible_gradient_gets_a_hint_not_a_zero_division(self) -> None:
        """A gradient of 5e-324 against 1 fails with a readable summary (scale hint c = 0)."""
        x = np.array([1.0, -2.0, 3.0])
        with pytest.raises(vg.GradientMismatchError, match="negligible"):
            vg.assert_gradient(_quadratic, x, np.array([5e-324, 0.0, 0.0]))

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_nonfinite_loss_on_the_final_evaluation_never_passes(self, bad: float) -> None:
        """A loss that gives NaN or inf only when x is evaluated again at the end does not pass."""
        calls = []

        def loss(v: np.ndarray) -> float:
            calls.append(1)
            return bad if len(calls) == 4 else _quadratic(v)  # 1: x, 2-3: +-h, 4: x again

        result = vg.check_gradient(loss, np.array(0.0), np.array(0.0))
        assert not result.passed, result.summary()
        assert result.verdict == "nondeterministic"

    def test_nan_before_a_float32_re_estimate_is_not_forgotten(self) -> None:
        """A NaN the loss gives once (finite when asked again) never passes."""
        calls = []

        def loss(v: np.ndarray) -> float:
            calls.append(1)
            return math.nan if len(calls) == 2 else _quadratic(v)

        result = vg.check_gradient(loss, np.zeros(2), np.zeros(2), method="forward")
        assert result.verdict == "nondeterministic", result.summary()

    def test_inf_loss_with_richardson_does_not_warn(self) -> None:
        """An inf loss value inside a Richardson stencil never passes, without inf - inf."""
        calls = []

        def loss(v: np.ndarray) -> float:
            calls.append(1)
            return math.inf if len(calls) == 2 else _quadratic(v)

        result = vg.check_gradient(loss, np.array(0.0), np.array(0.0), method="richardson")
        assert result.verdict == "nondeterministic"

    def test_ragged_x_with_an_array_gradient_is_refused(self) -> None:
        """A ragged list as x is refused naming x, also when the gradient is an array."""
        with pytest.raises(vg.InvalidTypeError, match=r"^x cannot be converted"):
            vg.check_gradient(_quadratic, [[1.0], [1.0, 2.0]], np.zeros(2))

    def test_nan_gradient_outside_a_large_checks_subset_is_nonfinite(self) -> None:
        """Beyond 2,000 parameters a NaN in a coordinate no estimate looked at still fails."""
        x = np.linspace(-1.0, 1.0, 2_500)
        g = x.copy()
        g[7] = np.nan
        result = vg.check_gradient(_quadratic, x, g, seed=0)
        assert result.strategy is not None
        assert result.verdict == "nonfinite"
        assert result.relative_error == math.inf

    @pytest.mark.parametrize("bad", [math.nan, math.inf])
    @pytest.mark.parametrize("k", [2, 8, 12])
    def test_nonfinite_loss_along_a_direction_is_nonfinite(self, bad: float, k: int) -> None:
        """A NaN or inf the loss gives once along a random direction (even at a step the
        Richardson table discards) is never dropped: finite when asked again, it makes the
        verdict "nondeterministic"."""
        calls = []

        def loss(v: np.ndarray) -> float:
            calls.append(1)
            return bad if len(calls) == k else _quadratic(v)

        x = np.linspace(-1.0, 1.0, 6)
        result = vg.check_gradient(loss, x, x, method="directional", seed=0)
        assert result.verdict == "nondeterministic", result.summary()

    def test_nondeterministic_loss_in_a_subset_check_is_not_called_nonfinite(self) -> None:
        """A loss that changes between calls is "nondeterministic" in a subset check too (it was
        judged "nonfinite" from the NaNs of coordinates never estimated: a failure)."""
        calls = []

        def loss(v: np.ndarray) -> float:
            calls.append(1)
            return _quadratic(v) + 1e-3 * len(calls)

        x = np.linspace(-1.0, 1.0, 6)
        result = vg.check_gradient(loss, x, x, method="coordinates", n_coordinates=2, seed=0)
        assert result.verdict == "nondeterministic", result.summary()
        assert not result.failed
