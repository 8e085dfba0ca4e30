"""The relative error of central differences over a range of step sizes (``verigrad sweep``).

Pure numpy on top of the public :func:`~verigrad.numerical_gradient` and
:func:`~verigrad.relative_error`. Plotted against the step on log axes the error draws a V:
on the right truncation error falls like ``h**2``, on the left rounding error in the loss grows
like ``eps |f| / h``; the bottom of the V is where the two meet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._typing import FloatArray
from .compare import relative_error
from .estimators import numerical_gradient, step_sizes
from .exceptions import InvalidArgumentError

__all__ = ["DEFAULT_RTOL", "SweepResult", "disagreement", "format_table", "log_steps", "sweep"]

#: The gradient "disagrees at every step" when even the smallest relative error, over the fixed
#: steps and the auto steps, is above this. A correct gradient of a float64 loss gets far below
#: it at the bottom of the V (1e-8 and less); float32 losses reach about 1e-5.
DEFAULT_RTOL = 1e-3


def log_steps(largest: float = 1e-1, smallest: float = 1e-13, per_decade: int = 1) -> FloatArray:
    """Step sizes from ``largest`` down to ``smallest``, evenly spaced on a log scale.

    Args:
        largest: the first (largest) step.
        smallest: the last (smallest) step.
        per_decade: how many steps per factor of ten.

    Returns:
        A decreasing float64 array that starts at ``largest`` and ends at ``smallest``.

    Raises:
        InvalidArgumentError: a step that is not a positive finite number, ``smallest`` above
            ``largest``, or ``per_decade`` below 1.
    """
    for name, value in (("largest", largest), ("smallest", smallest)):
        if not (math.isfinite(value) and value > 0.0):
            raise InvalidArgumentError(f"{name} step {value!r}: must be a positive number")
    if smallest > largest:
        raise InvalidArgumentError(
            f"the smallest step {smallest:g} is larger than the largest step {largest:g}"
        )
    if per_decade < 1:
        raise InvalidArgumentError(f"per_decade={per_decade!r}: must be at least 1")
    decades = math.log10(largest) - math.log10(smallest)
    count = max(1, round(decades * per_decade)) + 1
    steps: FloatArray = np.logspace(math.log10(largest), math.log10(smallest), count)
    return steps


@dataclass(frozen=True)
class SweepResult:
    """Relative errors of central differences at fixed steps, and at the ``"auto"`` steps.

    Attributes:
        steps: the fixed steps tried, largest first.
        errors: the relative error at each step; NaN where the step was too small to move some
            coordinate at all (``x + h == x``).
        auto_error: the relative error with ``epsilon="auto"``, which steps each coordinate by
            ``eps**(1/3) * max(|x_i|, 1)``.
        auto_steps: the step ``epsilon="auto"`` takes along each coordinate.
        size: the number of coordinates.
        threshold: the relative error below which the gradient agrees at a step.
    """

    steps: FloatArray
    errors: FloatArray
    auto_error: float
    auto_steps: FloatArray
    size: int
    threshold: float = DEFAULT_RTOL

    @property
    def smallest_error(self) -> float:
        """The smallest relative error at any step, the auto steps included (NaN if none)."""
        values = [float(e) for e in self.errors if math.isfinite(e)]
        if math.isfinite(self.auto_error):
            values.append(self.auto_error)
        return min(values) if values else math.nan

    @property
    def disagrees(self) -> bool:
        """True when the gradient disagrees with the loss at every step: even the smallest
        relative error is above :attr:`threshold` (or no step gave a finite error). No step
        fixes that: the gradient (or the loss) is wrong."""
        return not self.smallest_error <= self.threshold

    @property
    def auto_step(self) -> float:
        """The median of the auto steps: one number to mark on a plot of the fixed steps."""
        return float(np.median(self.auto_steps)) if self.auto_steps.size else math.nan

    @property
    def best_index(self) -> int | None:
        """Index of the fixed step with the smallest relative error, or None if none is finite."""
        finite = np.isfinite(self.errors)
        if not finite.any():
            return None
        return int(np.argmin(np.where(finite, self.errors, np.inf)))

    def to_dict(self) -> dict[str, Any]:
        """The sweep as plain JSON-ready values (NaN errors become None)."""
        best = self.best_index
        return {
            "size": self.size,
            "steps": [float(h) for h in self.steps],
            "relative_errors": [None if math.isnan(e) else float(e) for e in self.errors],
            "best_step": None if best is None else float(self.steps[best]),
            "auto_step_median": self.auto_step,
            "auto_step_min": float(np.min(self.auto_steps)) if self.auto_steps.size else None,
            "auto_step_max": float(np.max(self.auto_steps)) if self.auto_steps.size else None,
            "auto_relative_error": self.auto_error,
            "threshold": self.threshold,
            "disagrees_at_every_step": self.disagrees,
        }


def sweep(
    loss: Callable[[FloatArray], Any],
    x: Any,
    analytical: Any,
    steps: FloatArray,
    rtol: float = DEFAULT_RTOL,
) -> SweepResult:
    """Compare ``analytical`` with central differences of ``loss`` at each of ``steps``.

    Args:
        loss: called as ``loss(x)`` with a float64 array shaped like ``x``; returns a scalar.
        x: the point (an array or anything numpy turns into a real array).
        analytical: the gradient at ``x``, shaped like ``x``.
        steps: the fixed absolute steps to try.
        rtol: the relative error below which the gradient agrees at a step
            (:attr:`SweepResult.disagrees`).

    Returns:
        A :class:`SweepResult`; it costs ``2 n`` loss evaluations per step, plus ``2 n`` for the
        auto steps.

    Raises:
        InvalidArgumentError: the gradient's shape differs from the point's, the loss
            returns a non-scalar, or ``rtol`` is not a positive number.
        InvalidTypeError: the point or the gradient is not real-valued, or the loss returns
            something not a number.
    """
    if not (isinstance(rtol, (int, float)) and math.isfinite(rtol) and rtol > 0):
        raise InvalidArgumentError(f"rtol={rtol!r}: must be a positive number")
    point = np.asarray(x, dtype=np.float64)
    grad = np.asarray(analytical)
    if grad.shape != point.shape:
        raise InvalidArgumentError(
            f"the gradient has shape {grad.shape} but the point has shape {point.shape}"
        )
    errors = np.full(len(steps), np.nan)
    for i, h in enumerate(steps):
        if _vanishes(point, float(h)):
            continue  # the step is lost next to some coordinate: no estimate at this step
        numerical = numerical_gradient(loss, point, method="central", epsilon=float(h))
        errors[i] = relative_error(numerical, grad)
    auto = numerical_gradient(loss, point, method="central", epsilon="auto")
    return SweepResult(
        steps=np.asarray(steps, dtype=np.float64),
        errors=errors,
        auto_error=relative_error(auto, grad),
        auto_steps=step_sizes(point, "auto", "central"),
        size=int(point.size),
        threshold=float(rtol),
    )


def _vanishes(point: FloatArray, h: float) -> bool:
    """True when ``x + h`` and ``x - h`` round to the same number for some coordinate."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.any((point + h) - (point - h) == 0.0))


def format_table(result: SweepResult) -> str:
    """The sweep as a text table: one row per step, the auto rule as a last row of its own."""
    best = result.best_index
    rows = [("step", "relative error", "")]
    for i, (h, err) in enumerate(zip(result.steps, result.errors, strict=True)):
        mark = ""
        if i == best:
            mark = "<- smallest"
        if result.disagrees and not math.isnan(err):
            # No V: truncation and rounding do not explain an error this size at every step.
            mark = f"disagrees{' (smallest)' if i == best else ''}"
        elif i != best and best is not None and not math.isnan(err):
            mark = "truncation" if i < best else "rounding"
        text = "x + h == x" if math.isnan(err) else f"{err:.2e}"
        rows.append((f"{h:.1e}", text, mark))
    lo, hi = float(np.min(result.auto_steps)), float(np.max(result.auto_steps))
    auto_label = f"{lo:.1e}" if math.isclose(lo, hi, rel_tol=1e-3) else f"{lo:.1e}..{hi:.1e}"
    rows.append((f"auto {auto_label}", f"{result.auto_error:.2e}", 'epsilon="auto"'))
    widths = [max(len(r[c]) for r in rows) for c in range(2)]
    lines = [f"{r[0].rjust(widths[0])}  {r[1].rjust(widths[1])}  {r[2]}".rstrip() for r in rows]
    mark_width = max(len(r[2]) for r in rows)
    lines.insert(1, "-" * (widths[0] + widths[1] + 2 + mark_width + 2))
    return "\n".join(lines)


def disagreement(result: SweepResult, name: str = "the gradient") -> str:
    """The plain statement for a gradient that disagrees at every step (see
    :attr:`SweepResult.disagrees`)."""
    smallest = result.smallest_error
    size = "no finite error" if math.isnan(smallest) else f"the smallest error is {smallest:.2e}"
    return (
        f"{name} disagrees with the loss at every step ({size}, above {result.threshold:.0e}): "
        "this is a bug in the gradient (or the loss), not a step-size problem; no step fixes it. "
        "Run 'verigrad check' for the coordinates that disagree and a hint."
    )
