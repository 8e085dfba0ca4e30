"""Comparing a numerical gradient with an analytical one: pure functions over arrays."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._arrays import _real_array
from ._typing import ArrayLike, FloatArray, Verdict
from .exceptions import InvalidArgumentError

__all__ = ["Coordinate", "Judgement", "judge", "relative_error", "worst_coordinates"]


@dataclass(frozen=True, slots=True)
class Coordinate:
    """One coordinate of a comparison: where it is and what each side says."""

    index: tuple[int, ...]
    analytical: float
    numerical: float

    @property
    def difference(self) -> float:
        """``analytical - numerical``."""
        return self.analytical - self.numerical


def relative_error(numerical: ArrayLike, analytical: ArrayLike) -> float:
    """``||n - a||_2 / (||n||_2 + ||a||_2)``, the scale-free distance between two gradients.

    It lies in [0, 1]: 0 when they agree exactly (also when both are zero), 1 when one is zero
    and the other is not, or when one is the negative of the other.

    Returns:
        The relative error as a float; ``inf`` when either input holds a NaN or inf, so that a
        non-finite gradient can never compare below a threshold.

    Raises:
        InvalidArgumentError: the shapes differ.
    """
    n = _real_array(numerical, "numerical", "a gradient").astype(np.float64, copy=False)
    a = _real_array(analytical, "analytical", "a gradient").astype(np.float64, copy=False)
    if n.shape != a.shape:
        raise InvalidArgumentError(
            f"numerical has shape {n.shape} but analytical has shape {a.shape}; they must match"
        )
    return _relative_error(n, a)


def _largest_magnitude(n: FloatArray, a: FloatArray) -> float:
    return max(float(np.max(np.abs(n))), float(np.max(np.abs(a))))


def _relative_error(n: FloatArray, a: FloatArray) -> float:
    if not (np.isfinite(n).all() and np.isfinite(a).all()):
        return math.inf
    if n.size == 0:
        return 0.0
    # The ratio is invariant to a common scale; dividing by the largest magnitude first keeps
    # the norms from overflowing for huge gradients and from underflowing for tiny ones.
    scale = _largest_magnitude(n, a)
    if scale == 0.0:
        return 0.0
    n = n / scale
    a = a / scale
    denominator = float(np.linalg.norm(n) + np.linalg.norm(a))
    return min(float(np.linalg.norm(n - a)) / denominator, 1.0)


def _abs_difference(n: FloatArray, a: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - n)
    # Non-finite entries are the most important to show: rank them first.
    return np.where(np.isfinite(diff), diff, np.inf)


def worst_coordinates(
    numerical: FloatArray, analytical: FloatArray, k: int = 5
) -> tuple[Coordinate, ...]:
    """The ``k`` coordinates with the largest ``|analytical - numerical|``, largest first.

    Coordinates where either side is NaN or inf rank above every finite difference.
    """
    if numerical.size == 0 or k <= 0:
        return ()
    diff = _abs_difference(numerical, analytical).reshape(-1)
    k = min(k, diff.size)
    top = np.argpartition(diff, diff.size - k)[diff.size - k :]
    top = top[np.argsort(-diff[top], kind="stable")]
    n_flat, a_flat = numerical.reshape(-1), analytical.reshape(-1)
    shape = numerical.shape
    return tuple(
        Coordinate(
            tuple(int(j) for j in np.unravel_index(int(i), shape)),
            float(a_flat[i]),
            float(n_flat[i]),
        )
        for i in top
    )


@dataclass(frozen=True)
class Judgement:
    """The verdict on one comparison and the numbers it was decided on."""

    verdict: Verdict
    relative_error: float
    max_abs_error: float
    worst: tuple[Coordinate, ...]
    n_mismatched: int
    where: str | None


GRAD_LABEL = "the analytical gradient"


def _nonfinite_where(values: FloatArray, label: str, limit: int = 3) -> str | None:
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    flat = np.flatnonzero(bad.reshape(-1))
    shown = ", ".join(
        f"{tuple(int(j) for j in np.unravel_index(int(i), values.shape))}={values.reshape(-1)[i]}"
        for i in flat[:limit]
    )
    more = f" and {flat.size - limit} more" if flat.size > limit else ""
    return f"{label} is not finite at {flat.size} coordinate(s): {shown}{more}"


def judge(numerical: FloatArray, analytical: FloatArray, rtol: float, k: int = 5) -> Judgement:
    """Decide pass, mismatch or nonfinite, in that order of checks: non-finite values first.

    A coordinate counts as mismatched when its own difference alone would exceed the threshold,
    ``|a_i - n_i| > rtol * (||n|| + ||a||)``; the count tells a local bug from a global one.
    """
    if numerical.shape != analytical.shape:
        raise InvalidArgumentError(
            f"numerical has shape {numerical.shape} but analytical has shape {analytical.shape}"
        )
    worst = worst_coordinates(numerical, analytical, k)
    diff = _abs_difference(numerical, analytical)
    max_abs = float(diff.max()) if diff.size else 0.0
    where = _nonfinite_where(analytical, GRAD_LABEL)
    where_n = _nonfinite_where(numerical, "the numerical gradient (the loss near x)")
    if where or where_n:
        return Judgement(
            "nonfinite",
            math.inf,
            max_abs,
            worst,
            int(np.count_nonzero(np.isinf(diff))),
            "; ".join(w for w in (where, where_n) if w),
        )
    rel = _relative_error(numerical, analytical)
    n_bad = 0
    if rel > rtol:
        # In units of the largest magnitude, as in _relative_error: the norms of huge gradients
        # must not overflow (to inf, counting nothing) nor those of tiny ones underflow (to 0).
        scale = _largest_magnitude(numerical, analytical)
        norms = float(np.linalg.norm(numerical / scale) + np.linalg.norm(analytical / scale))
        n_bad = int(np.count_nonzero(diff / scale > rtol * norms))
    return Judgement("pass" if rel <= rtol else "mismatch", rel, max_abs, worst, n_bad, None)


def scale_factor(numerical: FloatArray, analytical: FloatArray) -> tuple[float, float] | None:
    """The best ``c`` with ``analytical ~ c * numerical`` and the relative residual of that fit.

    Returns None when the numerical gradient is zero. A residual near 0 with ``c`` far from 1
    is the signature of a flipped sign (``c = -1``) or a missing constant factor.
    """
    if numerical.size == 0 or not (np.isfinite(numerical).all() and np.isfinite(analytical).all()):
        return None
    # Fit in units of the largest magnitude so that the dot products cannot overflow.
    scale = _largest_magnitude(numerical, analytical)
    if scale == 0.0:
        return None
    n, a = numerical.reshape(-1) / scale, analytical.reshape(-1) / scale
    nn = float(np.dot(n, n))
    if nn == 0.0:
        return None
    c = float(np.dot(a, n)) / nn
    return c, _relative_error(c * n, a)
