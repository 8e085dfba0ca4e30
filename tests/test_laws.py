"""Laws as properties: what holds for every input, checked with hypothesis.

- ``relative_error`` is symmetric, lies in [0, 1] for finite inputs and is 0 exactly when the
  two gradients agree (0 also when both are zero);
- the exact gradient of a random smooth composition passes, and the same gradient with one
  coordinate changed by a clearly significant amount fails, naming that coordinate;
- the caller's parameters are never mutated, also when the loss raises halfway;
- the global ``random`` and ``numpy.random`` legacy states are left untouched by checks and by
  the decorator.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from structlog.testing import capture_logs

import verigrad as vg

#: Zero or a magnitude in [1e-100, 1e100]: differences between such arrays never underflow
#: relative to their norms, so "not equal" must show as a positive relative error.
RESOLVABLE = st.one_of(
    st.just(0.0),
    st.just(-0.0),
    st.floats(1e-100, 1e100).flatmap(lambda v: st.sampled_from([v, -v])),
)
#: Finite values of every magnitude: subnormals, -0.0, the largest floats.
FINITE = st.floats(allow_nan=False, allow_infinity=False)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8]


def _layout(arr: np.ndarray, layout: str) -> np.ndarray:
    if layout == "fortran" and arr.ndim:
        return np.asfortranarray(arr)
    if layout == "strided" and arr.ndim:
        buffer = np.zeros((*arr.shape[:-1], 2 * arr.shape[-1]), dtype=arr.dtype)
        buffer[..., ::2] = arr
        return buffer[..., ::2]
    out = np.array(arr)
    if layout == "read-only":
        out.setflags(write=False)
    return out


@st.composite
def pairs(
    draw: st.DrawFn, elements: st.SearchStrategy[float] = FINITE
) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 arrays of one shape, each in its own layout."""
    shape = draw(SHAPES)
    n = draw(hnp.arrays(np.float64, shape, elements=elements))
    a = draw(hnp.arrays(np.float64, shape, elements=elements))
    layouts = st.sampled_from(["c", "fortran", "strided", "read-only"])
    return _layout(n, draw(layouts)), _layout(a, draw(layouts))


def _ints(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """int16 arrays whose values float16 holds exactly."""
    return hnp.arrays(np.int16, shape, elements=st.integers(-2048, 2048))


class TestRelativeErrorLaws:
    """relative_error(n, a) = ||n - a|| / (||n|| + ||a||) as a function of two arrays."""

    @settings(max_examples=150, deadline=None)
    @given(pairs())
    def test_symmetric(self, pair: tuple[np.ndarray, np.ndarray]) -> None:
        """Swapping the two arguments gives exactly the same value, at any magnitude."""
        n, a = pair
        assert vg.relative_error(n, a) == vg.relative_error(a, n)

    @settings(max_examples=150, deadline=None)
    @given(pairs())
    def test_in_unit_interval_for_finite_input(self, pair: tuple[np.ndarray, np.ndarray]) -> None:
        """For finite arrays (subnormal to 1.8e308) the value lies in [0, 1]."""
        err = vg.relative_error(*pair)
        assert type(err) is float
        assert 0.0 <= err <= 1.0

    @settings(max_examples=150, deadline=None)
    @given(pairs(RESOLVABLE))
    def test_zero_exactly_when_equal(self, pair: tuple[np.ndarray, np.ndarray]) -> None:
        """0 when the arrays are equal (-0.0 equals 0.0, both zero gives 0), positive when not."""
        n, a = pair
        err = vg.relative_error(n, a)
        assert (err == 0.0) == bool(np.array_equal(n, a))
        assert vg.relative_error(n, n.copy()) == 0.0

    @settings(max_examples=60, deadline=None)
    @given(
        shape=SHAPES,
        signs=st.lists(st.booleans(), min_size=64, max_size=64),
        dtypes=st.tuples(st.sampled_from(DTYPES), st.sampled_from(DTYPES)),
    )
    def test_both_zero_gives_zero(
        self, shape: tuple[int, ...], signs: list[bool], dtypes: tuple[type, type]
    ) -> None:
        """Two zero gradients, of any dtypes and any signs of zero, agree: 0, not 0/0."""
        n = np.zeros(shape, dtype=dtypes[0])
        a = np.zeros(shape, dtype=dtypes[1])
        if np.issubdtype(a.dtype, np.floating) and a.size:
            a.reshape(-1)[np.array(signs[: a.size])] = -0.0
        assert vg.relative_error(n, a) == 0.0

    @settings(max_examples=100, deadline=None)
    @given(hnp.arrays(np.float64, SHAPES, elements=FINITE), st.booleans())
    def test_one_against_zero_or_its_negative(self, g: np.ndarray, flip: bool) -> None:
        """A non-zero gradient against zero, or against its own negative, gives exactly 1."""
        assume(np.any(g))
        other = -g if flip else np.zeros_like(g)
        assert vg.relative_error(g, other) == 1.0

    @settings(max_examples=80, deadline=None)
    @given(SHAPES.flatmap(lambda s: st.tuples(*[_ints(s)] * 2)), st.sampled_from(DTYPES[:3]))
    def test_dtype_of_exact_values_does_not_matter(
        self, pair: tuple[np.ndarray, np.ndarray], dtype: type
    ) -> None:
        """Integers held exactly as float16/32/64 or ints give the same error as in float64."""
        n, a = pair
        expected = vg.relative_error(n.astype(np.float64), a.astype(np.float64))
        assert vg.relative_error(n.astype(dtype), a) == expected
        assert vg.relative_error(n, a.astype(dtype)) == expected


# -- random smooth compositions --------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One step of a composition: ``W u + b`` or an elementwise smooth function."""

    kind: str
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    c: tuple[float, ...] = ()

    def forward(self, u: np.ndarray) -> np.ndarray:
        if self.kind == "linear":
            assert self.W is not None
            assert self.b is not None
            return self.W @ u + self.b
        if self.kind == "sin":
            return np.sin(u)
        if self.kind == "tanh":
            return np.tanh(u)
        if self.kind == "exp_tanh":  # exp of a bounded argument
            return np.exp(np.tanh(u))
        if self.kind == "log1p_sq":
            return np.log1p(u * u)
        c0, c1, c2, c3 = self.c  # a cubic, on inputs bounded by 3
        return c0 + u * (c1 + u * (c2 + u * c3))

    def backward(self, u: np.ndarray, bar: np.ndarray) -> np.ndarray:
        """The vector-Jacobian product: d(bar . forward(u)) / du."""
        if self.kind == "linear":
            assert self.W is not None
            return self.W.T @ bar
        if self.kind == "sin":
            return bar * np.cos(u)
        if self.kind == "tanh":
            return bar * (1.0 - np.tanh(u) ** 2)
        if self.kind == "exp_tanh":
            t = np.tanh(u)
            return bar * np.exp(t) * (1.0 - t * t)
        if self.kind == "log1p_sq":
            return bar * 2.0 * u / (1.0 + u * u)
        _, c1, c2, c3 = self.c
        return bar * (c1 + u * (2.0 * c2 + u * 3.0 * c3))


@dataclass(frozen=True)
class Composition:
    """``x -> w . (layer_k o ... o layer_1)(x.ravel())`` and its exact gradient by backprop."""

    layers: tuple[Layer, ...]
    w: np.ndarray

    def loss(self, x: np.ndarray) -> float:
        u = np.asarray(x, dtype=np.float64).reshape(-1)
        for layer in self.layers:
            u = layer.forward(u)
        return float(self.w @ u)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        inputs = [np.asarray(x, dtype=np.float64).reshape(-1)]
        for layer in self.layers:
            inputs.append(layer.forward(inputs[-1]))
        bar = self.w
        for layer, u in zip(reversed(self.layers), reversed(inputs[:-1]), strict=True):
            bar = layer.backward(u, bar)
        return bar.reshape(np.shape(x))


ELEMENTWISE = ["sin", "tanh", "exp_tanh", "log1p_sq", "poly"]
UNIT = st.floats(-1.0, 1.0)


@st.composite
def compositions(draw: st.DrawFn, size: int) -> Composition:
    """1 to 4 random layers, with a bound on the values kept so that every function stays
    well-conditioned: a cubic only sees inputs bounded by 3, and inputs start in [-2, 2]."""
    d, bound = size, 2.0
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["linear", *ELEMENTWISE]))
        if kind == "poly" and bound > 3.0:
            kind = "tanh"
        if kind == "linear":
            d_out = draw(st.integers(1, 4))
            W = draw(hnp.arrays(np.float64, (d_out, d), elements=UNIT)) / d
            b = draw(hnp.arrays(np.float64, (d_out,), elements=UNIT))
            layers.append(Layer("linear", W=W, b=b))
            d, bound = d_out, bound + 1.0
        elif kind == "poly":
            c = tuple(draw(st.lists(UNIT, min_size=4, max_size=4)))
            layers.append(Layer("poly", c=c))
            bound = sum(abs(ck) * bound**k for k, ck in enumerate(c))
        else:
            layers.append(Layer(kind))
            bound = {"sin": 1.0, "tanh": 1.0, "exp_tanh": math.e}.get(
                kind, math.log1p(bound * bound)
            )
    w = draw(hnp.arrays(np.float64, (d,), elements=UNIT))
    return Composition(tuple(layers), w)


@st.composite
def problems(draw: st.DrawFn) -> tuple[Composition, np.ndarray]:
    """A composition and a point in [-2, 2]^shape, the shape 1-d or 2-d with 1 to 6 entries."""
    shape = draw(st.sampled_from([(1,), (2,), (3,), (5,), (2, 3), (3, 2), (1, 4)]))
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-2.0, 2.0)))
    return draw(compositions(math.prod(shape))), x


class TestCompositions:
    """Random smooth compositions of linear maps, sin, tanh, exp, log1p and cubics."""

    def test_backprop_matches_a_known_case(self) -> None:
        """The test's own backprop is right: sin(2 x) . 1 has gradient 2 cos(2 x)."""
        comp = Composition(
            (Layer("linear", W=2.0 * np.eye(2), b=np.zeros(2)), Layer("sin")), np.ones(2)
        )
        x = np.array([0.3, -1.1])
        np.testing.assert_allclose(comp.gradient(x), 2.0 * np.cos(2.0 * x))
        assert comp.loss(x) == pytest.approx(float(np.sum(np.sin(2.0 * x))))

    @settings(max_examples=60, deadline=None)
    @given(problems())
    def test_exact_gradient_passes(self, problem: tuple[Composition, np.ndarray]) -> None:
        """The exact gradient of a random smooth composition passes check_gradient."""
        comp, x = problem
        g = comp.gradient(x)
        assume(np.linalg.norm(g) > 1e-3)  # a vanishing gradient is all rounding
        result = vg.check_gradient(comp.loss, x, g)
        assert result.verdict == "pass", result.summary()
        vg.assert_gradient(comp.loss, x, comp.gradient)

    @settings(max_examples=60, deadline=None)
    @given(problems(), st.integers(0, 5), st.sampled_from([0.1, -0.1, 0.5, -2.0]))
    def test_one_perturbed_coordinate_fails(
        self, problem: tuple[Composition, np.ndarray], which: int, amount: float
    ) -> None:
        """Moving one coordinate by >= 10 % of the gradient's norm fails, naming it."""
        comp, x = problem
        g = comp.gradient(x)
        norm = float(np.linalg.norm(g))
        assume(norm > 1e-3)
        k = which % g.size
        wrong = g.copy()
        wrong.reshape(-1)[k] += amount * norm
        result = vg.check_gradient(comp.loss, x, wrong)
        assert result.verdict == "mismatch", result.summary()
        assert result.failed
        assert tuple(int(i) for i in np.unravel_index(k, x.shape)) in result.mismatched
        with pytest.raises(vg.GradientMismatchError):
            vg.assert_gradient(comp.loss, x, wrong)


# -- parameters are never mutated ------------------------------------------------------------


class Boom(Exception):
    """Raised by a loss on purpose."""


class Halt(BaseException):
    """Raised by a loss on purpose, like KeyboardInterrupt: not an Exception."""


def _raising_on(k: int, loss: Callable[[np.ndarray], float], error: type[BaseException]) -> Any:
    calls = []

    def fn(x: np.ndarray, *args: Any) -> float:
        calls.append(1)
        if len(calls) == k:
            raise error(f"loss call {k}")
        return loss(x)

    return fn


def _count_calls(run: Callable[[Callable[..., float]], Any], loss: Callable[..., float]) -> int:
    calls = []

    def fn(x: np.ndarray, *args: Any) -> float:
        calls.append(1)
        return loss(x)

    run(fn)
    return len(calls)


@st.composite
def parameters(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A parameter in [-2, 2] of float64/float32/int dtype and any layout, and the whole
    buffer it lives in (a strided view's base included)."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int32]))
    # Multiples of 0.01: a gradient of 1e-226 would be below the loss's resolution.
    hundredths = st.integers(-200, 200).map(lambda k: k / 100)
    x = draw(hnp.arrays(np.float64, shape, elements=hundredths)).astype(dtype)
    x = _layout(x, draw(st.sampled_from(["c", "fortran", "strided", "read-only"])))
    return x, (x.base if x.base is not None else x)


def _square(x: np.ndarray) -> float:
    return 0.5 * float(np.sum(np.asarray(x, dtype=np.float64) ** 2))


class TestNoMutation:
    """The caller's arrays are bit-for-bit unchanged after any check."""

    @settings(max_examples=50, deadline=None)
    @given(parameters(), st.sampled_from(["auto", "central", "forward", "richardson"]))
    def test_unchanged_by_a_check(self, param: tuple[np.ndarray, np.ndarray], method: str) -> None:
        """check_gradient, numerical_gradient and a loss writing into its argument leave x,
        its buffer and the gradient as they were."""
        x, buffer = param
        before, buffer_before = x.tobytes(), buffer.tobytes()
        g = np.asarray(x, dtype=np.float64).copy()
        g_before = g.tobytes()

        def rude(v: np.ndarray) -> float:
            value = _square(v)
            v[...] = 7.0
            return value

        vg.check_gradient(_square, x, g, method=method)  # type: ignore[arg-type]
        vg.check_gradient(rude, x, g, method=method)  # type: ignore[arg-type]
        vg.numerical_gradient(_square, x)
        assert x.tobytes() == before
        assert buffer.tobytes() == buffer_before
        assert g.tobytes() == g_before

    @settings(max_examples=60, deadline=None)
    @given(
        parameters(),
        st.sampled_from([Boom, Halt]),
        st.sampled_from(["auto", "central", "forward", "richardson", "coordinates"]),
        st.data(),
    )
    def test_unchanged_when_the_loss_raises_on_its_kth_call(
        self,
        param: tuple[np.ndarray, np.ndarray],
        error: type[BaseException],
        method: str,
        data: st.DataObject,
    ) -> None:
        """A loss raising on any one of its calls propagates its error and leaves x intact."""
        x, buffer = param
        wrong = np.asarray(x, dtype=np.float64) * 1.5 + 1.0  # wrong: second opinions run too

        def run(loss: Callable[..., float]) -> Any:
            return vg.check_gradient(loss, x, wrong, method=method, seed=0)  # type: ignore[arg-type]

        k = data.draw(st.integers(1, _count_calls(run, _square)), label="raising call")
        before, buffer_before = x.tobytes(), buffer.tobytes()
        with pytest.raises(error, match=f"loss call {k}"):
            run(_raising_on(k, _square, error))
        assert x.tobytes() == before
        assert buffer.tobytes() == buffer_before
        k = data.draw(st.integers(1, 2 * x.size), label="raising call of numerical_gradient")
        with pytest.raises(error, match=f"loss call {k}"):
            vg.numerical_gradient(_raising_on(k, _square, error), x)
        assert x.tobytes() == before

    @settings(max_examples=30, deadline=None)
    @given(parameters(), st.sampled_from([Boom, Halt]), st.data())
    def test_decorator_unchanged_and_usable_after_the_loss_raises(
        self, param: tuple[np.ndarray, np.ndarray], error: type[BaseException], data: st.DataObject
    ) -> None:
        """Under the decorator too; and the next call checks normally."""
        x, buffer = param
        k = data.draw(st.integers(1, 2 * x.size + 2), label="raising call")
        fail = [True]
        calls = []

        def loss(v: np.ndarray, scale: np.ndarray) -> float:
            calls.append(1)
            if fail[0] and len(calls) == k:
                raise error(f"loss call {k}")
            return _square(v) * float(scale)

        @vg.verified_gradient(loss=loss, mode="debug")
        def grad(v: np.ndarray, scale: np.ndarray) -> np.ndarray:
            return np.asarray(v, dtype=np.float64) * float(scale)

        scale = np.array(1.0)
        before, buffer_before = x.tobytes(), buffer.tobytes()
        with capture_logs(), pytest.raises(error, match=f"loss call {k}"):
            grad(x, scale)
        assert x.tobytes() == before
        assert buffer.tobytes() == buffer_before
        assert scale.tobytes() == np.array(1.0).tobytes()
        fail[0] = False
        with capture_logs():
            out = grad(x, scale)
        np.testing.assert_array_equal(out, np.asarray(x, dtype=np.float64))
        last = grad.verigrad.last_result
        assert last is not None
        assert last.passed
        assert x.tobytes() == before


# -- global random state ---------------------------------------------------------------------


def _states() -> tuple[Any, Any]:
    return random.getstate(), np.random.get_state()  # noqa: NPY002 - the legacy state is guarded


def _assert_same_states(before: tuple[Any, Any]) -> None:
    py, legacy = before
    assert random.getstate() == py
    now = np.random.get_state()  # noqa: NPY002
    assert now[0] == legacy[0]
    np.testing.assert_array_equal(now[1], legacy[1])
    assert now[2:] == legacy[2:]


class TestGlobalRandomState:
    """random.getstate() and numpy.random.get_state() are the same before and after."""

    @settings(max_examples=40, deadline=None)
    @given(
        seeds=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
        method=st.sampled_from(["auto", "central", "richardson", "directional", "coordinates"]),
        seed=st.one_of(st.none(), st.integers(0, 2**16)),
        wrong=st.booleans(),
    )
    def test_checks_leave_the_global_states_alone(
        self, seeds: tuple[int, int], method: str, seed: int | None, wrong: bool
    ) -> None:
        """check_gradient with any method and seed, and numerical_gradient, draw nothing from
        and reseed neither global generator."""
        random.seed(seeds[0])
        np.random.seed(seeds[1])  # noqa: NPY002
        before = _states()
        x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
        g = x * (2.0 if wrong else 1.0)
        vg.check_gradient(_square, x, g, method=method, seed=seed)  # type: ignore[arg-type]
        vg.numerical_gradient(_square, x)
        _assert_same_states(before)

    def test_a_large_auto_check_leaves_the_global_states_alone(self) -> None:
        """Beyond 2,000 parameters "auto" draws random directions and coordinates: from its
        own generator."""
        random.seed(3)
        np.random.seed(4)  # noqa: NPY002
        before = _states()
        x = np.linspace(-1.0, 1.0, 2_500)
        result = vg.check_gradient(_square, x, x)
        assert result.strategy is not None
        _assert_same_states(before)

    @settings(max_examples=20, deadline=None)
    @given(
        seeds=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
        mode=st.sampled_from(["debug", "sample"]),
        seed=st.one_of(st.none(), st.integers(0, 2**16)),
    )
    def test_the_decorator_leaves_the_global_states_alone(
        self, seeds: tuple[int, int], mode: str, seed: int | None
    ) -> None:
        """Sampling (rate, every, first) and the checks of a decorated gradient touch neither
        global generator, in sample and in debug mode."""
        random.seed(seeds[0])
        np.random.seed(seeds[1])  # noqa: NPY002
        before = _states()

        @vg.verified_gradient(
            loss=_square,
            mode=mode,  # type: ignore[arg-type]
            sample_rate=0.3,
            every=7,
            seed=seed,
            method="coordinates",
            n_coordinates=2,
        )
        def grad(v: np.ndarray) -> np.ndarray:
            return v.copy()

        x = np.array([0.5, -1.5, 2.0])
        with capture_logs(), warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(25):
                grad(x)
        assert grad.verigrad.stats.checks >= 1
        _assert_same_states(before)
