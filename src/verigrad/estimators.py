"""Finite-difference estimates of a gradient: step rules and difference schemes.

Pure numpy, no logging, no results: the functions here take a scalar function and a point and
return numbers. The public helpers :func:`numerical_gradient` and :func:`directional_derivative`
are thin wrappers over the same machinery the checks use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import loss_value, working_copy
from ._typing import METHODS, ArrayLike, Epsilon, FloatArray, Method
from .exceptions import InvalidArgumentError, InvalidTypeError

__all__ = ["Estimate", "directional_derivative", "numerical_gradient", "step_sizes"]

_EPS = float(np.finfo(np.float64).eps)
#: Relative step that balances truncation (~h^2) against rounding (~eps/h) for central differences.
CENTRAL_STEP = _EPS ** (1.0 / 3.0)  # about 6.1e-6
#: Relative step that balances truncation (~h) against rounding (~eps/h) for one-sided differences.
ONE_SIDED_STEP = _EPS**0.5  # about 1.5e-8

ScalarFunction = Callable[[FloatArray], float]


@dataclass(frozen=True)
class Estimate:
    """A numerical gradient and what it cost.

    Attributes:
        values: the derivative estimates, shaped like the parameter.
        steps: the step actually taken along each coordinate (the exactly representable
            half-width of the stencil for central differences).
        n_evals: loss evaluations spent, not counting the one at the point itself.
        method: the difference scheme.
    """

    values: FloatArray
    steps: FloatArray
    n_evals: int
    method: Method


def validate_method(method: object) -> Method:
    """Return ``method`` if it names a supported scheme, else raise naming the argument."""
    if method not in METHODS:
        raise InvalidArgumentError(
            f"method={method!r} is not supported; choose one of {', '.join(map(repr, METHODS))}"
        )
    return method  # type: ignore[return-value,unused-ignore]


def validate_epsilon(epsilon: object) -> Epsilon:
    """Return ``epsilon`` if it is "auto" or a positive finite number, else raise naming it."""
    if isinstance(epsilon, str):
        if epsilon == "auto":
            return "auto"
        raise InvalidArgumentError(f"epsilon={epsilon!r}: use a positive number or 'auto'")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating, np.integer)):
        raise InvalidTypeError(
            f"epsilon must be a positive number or 'auto', not {type(epsilon).__name__}"
        )
    value = float(epsilon)
    if not (math.isfinite(value) and value > 0.0):
        raise InvalidArgumentError(f"epsilon={epsilon!r}: the step must be positive and finite")
    return value


def step_sizes(x: FloatArray, epsilon: Epsilon, method: Method) -> FloatArray:
    """The step for each coordinate of ``x``.

    A fixed ``epsilon`` is used as it is, as an absolute step. ``"auto"`` scales the step to the
    coordinate, ``h_i = c * max(|x_i|, 1)``, with ``c = eps**(1/3)`` (about 6e-6) for central
    differences and ``c = sqrt(eps)`` (about 1.5e-8) for one-sided ones, ``eps`` being float64's
    machine epsilon. These are the steps that balance the truncation error of the scheme against
    the rounding error of evaluating the loss; scaling with ``|x_i|`` keeps the relative
    perturbation constant for large parameters, where a fixed step would vanish in rounding.
    """
    if epsilon == "auto":
        c = CENTRAL_STEP if method == "central" else ONE_SIDED_STEP
        steps: FloatArray = c * np.maximum(np.abs(x), 1.0)
        return steps
    return np.full(x.shape, float(epsilon))


def _add_note(exc: BaseException, note: str) -> None:
    # BaseException.add_note exists from Python 3.11 on; on 3.10 the note is dropped.
    add_note = getattr(exc, "add_note", None)
    if add_note is not None:
        add_note(note)


def coordinate_differences(
    f: ScalarFunction,
    x: FloatArray,
    steps: FloatArray,
    method: Method,
    f0: float | None = None,
) -> Estimate:
    """Estimate every partial derivative of ``f`` at ``x`` by finite differences.

    ``x`` is a private working copy that is perturbed in place, one coordinate at a time, and
    restored exactly after each one; ``f`` sees the perturbed array. One-sided schemes need
    ``f0 = f(x)``. The divisor is the difference of the perturbed coordinates as stored in
    floating point, so the representation error of ``x_i + h`` does not enter the estimate.
    """
    flat = x.reshape(-1)
    if not x.flags.c_contiguous:  # pragma: no cover - x is always C-contiguous here
        raise AssertionError("working copy must be contiguous")
    n = flat.size
    if method != "central" and f0 is None:
        raise InvalidArgumentError(f"method={method!r} needs the loss at the point itself (f0)")
    h_flat = steps.reshape(-1)
    points = flat.tolist()
    hs = h_flat.tolist()
    _check_resolution(flat, h_flat, method)
    out = np.empty(n, dtype=np.float64)
    used = np.empty(n, dtype=np.float64)
    i = 0
    try:
        if method == "central":
            for i in range(n):
                v = points[i]
                up, down = v + hs[i], v - hs[i]
                flat[i] = up
                fp = f(x)
                flat[i] = down
                fm = f(x)
                flat[i] = v
                width = up - down
                out[i] = (fp - fm) / width
                used[i] = 0.5 * width
            n_evals = 2 * n
        else:
            assert f0 is not None
            sign = 1.0 if method == "forward" else -1.0
            for i in range(n):
                v = points[i]
                moved = v + sign * hs[i]
                flat[i] = moved
                fv = f(x)
                flat[i] = v
                width = moved - v
                out[i] = (fv - f0) / width
                used[i] = abs(width)
            n_evals = n
    except BaseException as exc:
        flat[i] = points[i]
        index = tuple(int(k) for k in np.unravel_index(i, x.shape)) if x.ndim else ()
        _add_note(exc, f"verigrad: raised while evaluating the loss at coordinate {index}")
        raise
    return Estimate(out.reshape(x.shape), used.reshape(x.shape), n_evals, method)


def _check_resolution(flat: FloatArray, h: FloatArray, method: Method) -> None:
    """Refuse steps too small to move a coordinate at all (x + h == x in floating point)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if method == "central":
            dead = (flat + h) - (flat - h) == 0.0
        elif method == "forward":
            dead = (flat + h) - flat == 0.0
        else:
            dead = flat - (flat - h) == 0.0
    if dead.any():
        i = int(np.argmax(dead))
        raise InvalidArgumentError(
            f"epsilon={float(h[i]):g} is too small for the parameter value {float(flat[i])!r} at "
            f"flat index {i}: x + epsilon == x in float64; use epsilon='auto', which scales the "
            "step to the parameter"
        )


def scalar_function(f: Callable[..., Any], name: str = "f") -> ScalarFunction:
    """Wrap ``f`` so that each call returns a Python float or raises naming ``name``."""

    def call(x: FloatArray) -> float:
        return loss_value(f(x), name)

    return call


def numerical_gradient(
    f: Callable[..., Any],
    x: ArrayLike,
    *,
    method: Method = "central",
    epsilon: Epsilon = "auto",
) -> FloatArray:
    """The finite-difference gradient of a scalar function.

    Args:
        f: called as ``f(x)`` with a float64 array shaped like ``x``; must return a real scalar.
        x: the point; left unchanged (a private float64 copy is perturbed).
        method: ``"central"`` (``(f(x+h) - f(x-h)) / 2h``, error O(h^2), 2 evaluations per
            coordinate), ``"forward"`` or ``"backward"`` (error O(h), 1 evaluation per coordinate
            plus one at ``x``).
        epsilon: a fixed absolute step, or ``"auto"`` for a step scaled to each coordinate and
            to float64's precision (see :func:`step_sizes`).

    Returns:
        A float64 array shaped like ``x``.

    Raises:
        InvalidArgumentError: an unknown method, a bad step, or ``f`` returned a non-scalar.
        InvalidTypeError: ``x`` is not real-valued, or ``f`` returned something not a number.
    """
    method = validate_method(method)
    epsilon = validate_epsilon(epsilon)
    work = working_copy(x, "x")
    g = scalar_function(f, "f")
    f0 = g(work) if method != "central" else None
    return coordinate_differences(g, work, step_sizes(work, epsilon, method), method, f0).values


def directional_derivative(
    f: Callable[..., Any],
    x: ArrayLike,
    d: ArrayLike,
    *,
    epsilon: Epsilon = "auto",
) -> float:
    """The centered derivative of ``f`` at ``x`` along ``d``: ``(f(x+h d) - f(x-h d)) / 2h``.

    It approximates ``d . grad f(x)`` with two evaluations whatever the size of ``x``.

    Args:
        f: called as ``f(x)`` with float64 arrays shaped like ``x``; must return a real scalar.
        x: the point; left unchanged.
        d: the direction, shaped like ``x``; it is not normalised.
        epsilon: a fixed step ``h`` or ``"auto"``, which moves the coordinate that changes most
            by ``eps**(1/3) * max(max|x|, 1)``.

    Returns:
        The derivative as a float; 0.0 for a zero direction (no evaluation is made).
    """
    epsilon = validate_epsilon(epsilon)
    work = working_copy(x, "x")
    direction = working_copy(d, "d")
    if direction.shape != work.shape:
        raise InvalidArgumentError(
            f"d has shape {direction.shape} but x has shape {work.shape}; they must match"
        )
    if not np.isfinite(direction).all():
        raise InvalidArgumentError("d contains NaN or inf; a direction must be finite")
    d_max = float(np.max(np.abs(direction))) if direction.size else 0.0
    if d_max == 0.0:
        return 0.0
    if epsilon == "auto":
        # Step along d / max|d| and scale back: h / max|d| would overflow for a tiny d.
        x_max = float(np.max(np.abs(work))) if work.size else 0.0
        h, unit, length = CENTRAL_STEP * max(x_max, 1.0), direction / d_max, d_max
    else:
        h, unit, length = float(epsilon), direction, 1.0
    plus, minus = work + h * unit, work - h * unit
    if np.array_equal(plus, minus):
        raise InvalidArgumentError(
            f"epsilon={h:g} is too small to move x along d: x + epsilon * d == x in float64; "
            "use epsilon='auto', which scales the step to the parameter"
        )
    g = scalar_function(f, "f")
    fp = g(plus)
    fm = g(minus)
    return float((fp - fm) / (2.0 * h)) * length
