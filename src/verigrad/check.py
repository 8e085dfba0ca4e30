"""One-shot gradient checks, and the check runner the decorator shares."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._arrays import gradient_array, loss_value, working_copy
from ._typing import ArrayLike, Epsilon, FloatArray, Method
from .compare import GRAD_LABEL, _nonfinite_where, judge
from .estimators import (
    coordinate_differences,
    step_sizes,
    validate_epsilon,
    validate_method,
)
from .exceptions import GradientMismatchError, InvalidArgumentError, InvalidTypeError
from .result import CheckResult

__all__ = ["assert_gradient", "check_gradient"]


def validate_rtol(rtol: object) -> float:
    """Return ``rtol`` as a float if it is a finite number in (0, 1], else raise naming it."""
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating, np.integer)):
        raise InvalidTypeError(f"rtol must be a number, not {type(rtol).__name__}")
    value = float(rtol)
    if not (0.0 < value <= 1.0):
        raise InvalidArgumentError(
            f"rtol={rtol!r}: the relative-error threshold must lie in (0, 1]"
        )
    return value


def run_check(
    loss_at: Callable[[FloatArray], Any],
    x: Any,
    analytical: Any,
    *,
    method: Method,
    epsilon: Epsilon,
    rtol: float,
    loss_name: str = "loss",
    function: str | None = None,
    call_index: int | None = None,
) -> CheckResult:
    """Check ``analytical`` against finite differences of ``loss_at`` around ``x``.

    Options are assumed validated. ``loss_at`` is called with a private float64 working copy
    shaped like ``x``; ``x`` and ``analytical`` are only read.
    """
    start = time.perf_counter()
    dtype = str(np.asarray(x).dtype) if not isinstance(x, np.ndarray) else str(x.dtype)
    work = working_copy(x, "x")
    grad = gradient_array(analytical, work.shape, "analytical gradient")
    steps = step_sizes(work, epsilon, method)

    def finish(
        numerical: FloatArray, n_evals: int, f0: float | None, where: str | None
    ) -> CheckResult:
        j = judge(numerical, grad, rtol)
        if where:
            # The numerical gradient was never computed: do not blame "the loss near x" for it.
            where = "; ".join(w for w in (where, _nonfinite_where(grad, GRAD_LABEL)) if w)
        return CheckResult(
            passed=j.verdict == "pass" and where is None,
            verdict="nonfinite" if where else j.verdict,
            relative_error=math.inf if where else j.relative_error,
            threshold=rtol,
            numerical=numerical,
            analytical=grad,
            max_abs_error=j.max_abs_error,
            worst=j.worst,
            method=method,
            epsilon=epsilon,
            steps=steps,
            n_evals=n_evals,
            duration_s=time.perf_counter() - start,
            shape=work.shape,
            dtype=dtype,
            n_mismatched=j.n_mismatched,
            where=where or j.where,
            loss_value=f0,
            function=function,
            call_index=call_index,
        )

    unknown = np.full(work.shape, np.nan)
    if not np.isfinite(work).all():
        bad = np.flatnonzero(~np.isfinite(work.reshape(-1)))
        index = tuple(int(k) for k in np.unravel_index(int(bad[0]), work.shape))
        return finish(
            unknown,
            0,
            None,
            f"the parameter x is not finite at {bad.size} coordinate(s), first {index}",
        )

    def f(point: FloatArray) -> float:
        return loss_value(loss_at(point), loss_name)

    f0 = f(work)
    if not math.isfinite(f0):
        return finish(unknown, 1, f0, f"the loss at x itself is {f0}")
    estimate = coordinate_differences(f, work, steps, method, f0)
    return finish(estimate.values, estimate.n_evals + 1, f0, None)


def _loss_at(
    loss: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Callable[[FloatArray], Any]:
    def loss_at(point: FloatArray) -> Any:
        return loss(point, *args, **kwargs)

    return loss_at


def _name(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func))


def check_gradient(
    loss: Callable[..., Any],
    x: ArrayLike,
    analytical: ArrayLike | Callable[..., Any],
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    method: Method = "central",
    epsilon: Epsilon = "auto",
    rtol: float = 1e-5,
    seed: int | None = None,
) -> CheckResult:
    """Compare an analytical gradient with finite differences of the loss at ``x``.

    Never raises on a mismatch: inspect ``result.passed``, or use :func:`assert_gradient`.

    Args:
        loss: called as ``loss(x, *args, **kwargs)``; must return a real scalar.
        x: the parameter point; it is left bit-for-bit unchanged.
        analytical: the gradient at ``x`` (an array shaped like ``x``), or a function called as
            ``analytical(x, *args, **kwargs)`` that returns it.
        args: further positional arguments for ``loss`` (and ``analytical`` if callable).
        kwargs: further keyword arguments for ``loss`` (and ``analytical`` if callable).
        method: ``"central"``, ``"forward"`` or ``"backward"`` differences.
        epsilon: a fixed absolute step, or ``"auto"`` (a step scaled to each coordinate).
        rtol: the largest relative error that passes.
        seed: seed for randomised parts of a check. The coordinate-wise methods of this version
            are deterministic and do not draw from it; it never touches global random state.

    Returns:
        A :class:`CheckResult`.

    Raises:
        InvalidArgumentError: a bad option, a gradient shaped unlike ``x``, a non-scalar loss.
        InvalidTypeError: non-numeric input, a loss returning a non-number, a ``None`` gradient.
        Exception: whatever ``loss`` or ``analytical`` raise propagates; ``x`` is left unchanged.
    """
    method = validate_method(method)
    epsilon = validate_epsilon(epsilon)
    rtol = validate_rtol(rtol)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise InvalidTypeError(f"seed must be an int or None, not {type(seed).__name__}")
    if not callable(loss):
        raise InvalidTypeError(f"loss must be callable, not {type(loss).__name__}")
    kw = dict(kwargs or {})
    args = tuple(args)
    function = None
    if callable(analytical):
        function = _name(analytical)
        analytical = analytical(x, *args, **kw)
    return run_check(
        _loss_at(loss, args, kw),
        x,
        analytical,
        method=method,
        epsilon=epsilon,
        rtol=rtol,
        loss_name=f"loss {_name(loss)}",
        function=function,
    )


def assert_gradient(
    loss: Callable[..., Any],
    x: ArrayLike,
    analytical: ArrayLike | Callable[..., Any],
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    method: Method = "central",
    epsilon: Epsilon = "auto",
    rtol: float = 1e-5,
    seed: int | None = None,
) -> CheckResult:
    """Like :func:`check_gradient`, but raise when the check does not pass.

    Returns:
        The passing :class:`CheckResult`.

    Raises:
        GradientMismatchError: the verdict is not ``"pass"``; the message is the result's
            :meth:`~CheckResult.summary` and ``.result`` holds the whole record.
    """
    result = check_gradient(
        loss,
        x,
        analytical,
        args=args,
        kwargs=kwargs,
        method=method,
        epsilon=epsilon,
        rtol=rtol,
        seed=seed,
    )
    if not result.passed:
        raise GradientMismatchError(result)
    return result
