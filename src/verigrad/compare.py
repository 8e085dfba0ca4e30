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
    # The difference gets its own scale: a norm squares its entries, and differences below
    # 1e-154 of the largest magnitude would underflow to a relative error of exactly 0.
    diff = n - a
    largest = float(np.max(np.abs(diff)))
    if largest == 0.0:
        return 0.0
    return min(largest * float(np.linalg.norm(diff / largest)) / denominator, 1.0)


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


#: How far beyond its own estimated error a discrepancy must lie to count as a bug.
MARGIN = 10.0


@dataclass(frozen=True)
class Refinement:
    """Second opinions on suspicious coordinates, from a stencil eight times narrower.

    Attributes:
        labels: per examined coordinate, ``"ok"`` (the first estimate was off), ``"bad"`` (the
            discrepancy holds at both steps, beyond the estimated error), ``"kink"`` (one-sided
            derivatives disagree at both steps and the gradient lies between them: a valid
            subgradient), ``"kink-bad"`` (a kink, and the gradient is outside that interval) or
            ``"noisy"`` (the estimates disagree by more than the gap to the gradient).
        values: the better numerical estimate per coordinate.
        errors: its estimated error (rounding plus the measured change between the steps).
    """

    labels: tuple[str, ...]
    values: FloatArray
    errors: FloatArray


def refine(
    analytical: FloatArray,
    f0: float,
    wide: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    narrow: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    noise: FloatArray,
    threshold: float,
    margin: float = MARGIN,
) -> Refinement:
    """Classify coordinates from central stencils at two step sizes (pure arithmetic).

    ``wide`` and ``narrow`` are ``(f_plus, f_minus, offset_plus, offset_minus)`` per coordinate,
    ``noise`` the absolute rounding noise of one loss value. For a smooth loss the one-sided
    derivatives' gap ``S = F - B`` shrinks with the step (``S ~ h f''``); at a kink inside the
    stencil it does not.
    """
    fp1, fm1, op1, om1 = wide
    fp2, fm2, op2, om2 = narrow
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        d1 = (fp1 - fm1) / (op1 - om1)
        d2 = (fp2 - fm2) / (op2 - om2)
        f_2, b_2 = (fp2 - f0) / op2, (fm2 - f0) / om2
        s1 = (fp1 - f0) / op1 - (fm1 - f0) / om1
        s2 = f_2 - b_2
        rnd2 = noise / np.abs(op2)
        err2 = np.maximum(rnd2, np.abs(d1 - d2))
        e2 = np.abs(analytical - d2)
        rel_tol = threshold * (np.abs(analytical) + np.abs(d2))
        # A kink's jump stays put as the stencil narrows; a smooth loss's gap shrinks with the
        # step (S ~ h f''), and noise's grows (S ~ noise / h).
        kink = (
            (np.abs(s2) > margin * 4.0 * rnd2)
            & (np.abs(s2) > 0.5 * np.abs(s1))
            & (np.abs(s2) < 2.0 * np.abs(s1))
        )
        lo, hi = np.minimum(f_2, b_2), np.maximum(f_2, b_2)
        slack = margin * rnd2 + threshold * (np.abs(f_2) + np.abs(b_2))
        inside = (analytical >= lo - slack) & (analytical <= hi + slack)
        bad = (e2 > margin * err2) & (e2 > rel_tol)
        ok = e2 <= np.maximum(rel_tol, margin * rnd2)
        use_narrow = np.abs(d1 - d2) > margin * rnd2
    labels = []
    for k in range(len(d1)):
        if kink[k]:
            labels.append("kink" if inside[k] else "kink-bad")
        elif bad[k]:
            labels.append("bad")
        elif ok[k]:
            labels.append("ok")
        else:
            labels.append("noisy")
    values = np.where(use_narrow | kink, d2, d1)
    return Refinement(tuple(labels), values, np.where(use_narrow, err2, rnd2 / 8.0))
