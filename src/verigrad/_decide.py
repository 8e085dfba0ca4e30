"""The one home of the verdict: from the estimates, their error bars and the second looks.

The headline is the mission's relative error ``||n - a|| / (||n|| + ||a||)`` against the
threshold. A check fails on it, or on a named other criterion: one coordinate beyond both its
own error bar and the threshold's share of the norm (``"coordinate"``), or random directions
that disagree beyond their error bars (``"direction"``). When the relative error is above the
threshold but every coordinate agrees within the error bar the check reached, the gradient is
too small here for a relative test and the check passes on absolute agreement, with that
resolution; losses that are genuinely noisy get ``"inconclusive"`` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._coordinates import MARGIN, NOISE_BOUND, Coordinates
from ._directional import DirectionalOutcome
from ._noise import Noise
from ._typing import FloatArray
from .compare import _relative_error

__all__ = ["Decision", "decide", "norm"]


@dataclass(frozen=True)
class Decision:
    """The verdict and what it rests on.

    Attributes:
        verdict: see :class:`~verigrad.CheckResult`.
        criterion: what decided a failure: ``"relative"``, ``"coordinate"`` or ``"direction"``;
            for a pass, ``"relative"`` or ``"absolute"``.
        cause: why the estimates differ from the gradient where they do: ``"truncation"``,
            ``"rounding"``, ``"resolution"`` (the gradient is below what finite differences
            resolve here), ``"noise"``, ``"flat"`` (the loss does not change at the step),
            ``"domain"``, ``"kink"``; None when nothing needed explaining.
        resolution: the norm of the error bars over the checked coordinates.
        notes: one sentence each, for the person reading the report.
    """

    verdict: str
    criterion: str | None
    cause: str | None
    resolution: float
    notes: tuple[str, ...]
    kinks: tuple[int, ...]
    bad: tuple[int, ...]
    relative_error: float


#: A check of a scattering loss passes on absolute agreement where its resolution is at most
#: this fraction of the gradient's norm (or the point is near an optimum).
ROUGH = 1e-2


def norm(v: FloatArray) -> float:
    """The 2-norm, scaled first so that values near 1e200 do not overflow when squared."""
    top = float(np.max(np.abs(v))) if v.size else 0.0
    return top * float(np.linalg.norm(v / top)) if 0.0 < top < math.inf else top


def decide(
    c: Coordinates,
    analytical: FloatArray,
    checked: np.ndarray,
    threshold: float,
    noise: Noise,
    outcome: DirectionalOutcome | None,
    n_directions: int,
    unexamined: int,
    f0: float,
    work: FloatArray,
) -> Decision:
    """The verdict of a check whose numbers are all finite at ``x`` (see the module doc)."""
    a_all = analytical.reshape(-1)
    labels = c.labels
    resolved = np.asarray([i for i in checked.tolist() if np.isfinite(c.values[i])], dtype=np.intp)
    n, a, e = c.values[resolved], a_all[resolved], c.errors[resolved]
    rel = _relative_error(n, a)
    resolution = norm(e[np.isfinite(e)])
    notes: list[str] = []
    kinks = tuple(i for i, lab in labels.items() if lab in ("kink", "kink-bad"))
    bad = tuple(
        i
        for i, lab in labels.items()
        if lab == "kink-bad"
        or (
            lab == "bad"
            and abs(a_all[i] - c.values[i]) > threshold * (abs(a_all[i]) + abs(c.values[i]))
        )
    )
    domain = [i for i, lab in labels.items() if lab == "domain"]
    flat = [i for i, lab in labels.items() if lab == "flat"]
    noisy = [i for i, lab in labels.items() if lab == "noisy"]
    if c.adapted:
        notes.append(
            f"{len(c.adapted)} coordinate(s) lie near the edge of the loss's domain: their "
            "stencils were shrunk or made one-sided to stay where the loss is finite"
        )

    def result(verdict: str, criterion: str | None, cause: str | None) -> Decision:
        return Decision(verdict, criterion, cause, resolution, tuple(notes), kinks, bad, rel)

    if bad:
        criterion = "relative" if rel > threshold else "coordinate"
        notes.append(
            f"{len(bad)} coordinate(s) disagree beyond {MARGIN:g}x their error bars, confirmed "
            "by a sharper estimate"
            + (
                ""
                if criterion == "relative"
                else f" (the relative error {rel:.1e} of the whole gradient is within the "
                "threshold, but these coordinates are wrong beyond their own error bars and the "
                "threshold relative to their own size)"
            )
        )
        return result("mismatch", criterion, None)
    if outcome is not None:
        wrong = outcome.suspicious
        # Rough along the probe too: a float64 loss that scatters more than its rounding
        # (kinks crossed by the probe look so) counts as evidence of kinks.
        kinked = (
            bool(kinks)
            or outcome.count("kink") > 0
            or noise.cause == "unsettled"
            or noise.precision == "noisy"
        )
        if len(wrong) >= max(2, (n_directions + 1) // 2) and kinked:
            # Along a long random direction a loss with kinks (a ReLU network) crosses many of
            # them; no coordinate, not even those the directions were bisected to, disagrees.
            notes.append(
                f"{len(wrong)} of {len(outcome.labels)} random directions disagree with the "
                "gradient, but no coordinate does, those the directions were bisected to "
                "included, and the loss is rough here (kinks, or scatter beyond its rounding): "
                "the directions' long stencils cross it"
            )
            return result("kink", None, "kink")
        if len(wrong) >= max(2, (n_directions + 1) // 2):
            notes.append(
                f"{len(wrong)} of {len(outcome.labels)} random directions disagree with the "
                f"gradient by up to {outcome.worst_ratio:.0f}x their error bars at every step "
                "tried, but no single checked coordinate does: the error is spread thin or lies "
                "outside the coordinates checked; run a full check (method='central') to see "
                "the whole gradient"
            )
            return result("mismatch", "direction", None)
        if wrong:
            notes.append(
                f"{len(wrong)} of {len(outcome.labels)} random directions disagree; a real bug "
                "shows along most directions, so this is taken for a fluke of the estimate"
            )
        crossed = outcome.count("kink")
        if crossed:
            notes.append(
                f"{crossed} random direction(s) cross a kink of the loss; their one-sided "
                "slopes bracket the gradient"
            )
        if outcome.count("domain"):
            notes.append(
                f"{outcome.count('domain')} random direction(s) leave the loss's domain even at "
                "small steps and were dropped"
            )
    if kinks:
        notes.append(
            f"the loss is not differentiable inside the stencil at {len(kinks)} coordinate(s): "
            "the one-sided derivatives disagree and the gradient lies between them (a valid "
            "subgradient)"
        )
        return result("kink", None, "kink")
    if domain:
        notes.append(
            f"{len(domain)} coordinate(s) could not be checked: the loss is not finite on either "
            "side of x there, even at small steps (a domain boundary at x?)"
        )
        return result("inconclusive", None, "domain")
    if flat:
        notes.append(
            f"the loss does not change at all when {len(flat)} coordinate(s) move, even at 64x "
            "the step, while the gradient there is not zero: the loss is quantised (float16, "
            "rounding, a lookup) or ignores its input; no derivative can be read from it"
        )
        return result("inconclusive", None, "flat")
    if rel <= threshold:
        return result("pass", "relative", None)
    if unexamined or noisy:
        left = unexamined + len(noisy)
        notes.append(
            f"relative error {rel:.2e} is above the threshold, and {left} coordinate(s) could "
            "not be resolved by a sharper estimate: the loss is too noisy at this point to tell "
            "a bug from its own scatter"
        )
        return result("inconclusive", None, "noise")
    scattered = noise.precision == "noisy" or noise.cause == "unsettled"
    # A scattering loss away from any optimum still passes where the check resolved the
    # gradient to 1 % of its size; beyond that it tested too little to say.
    coarse = resolution > ROUGH * norm(a)
    if (
        scattered
        and coarse
        and not _near_stationary(c, a_all, resolved, threshold, f0, noise, work)
    ):
        notes.append(
            f"relative error {rel:.2e} is above the threshold; every coordinate agrees within its "
            f"error bar, but the loss scatters by {noise.level:.1e} ({noise.relative:.0e} of its "
            "value) around a smooth curve: it is too noisy here to test the gradient"
        )
        return result("inconclusive", None, "noise")
    along = _along_gradient(n, a, c.errors[resolved] + _allowance(c, resolved))
    if along is not None:
        notes.append(along)
        return result("mismatch", "relative", None)
    limit = _limit(c, resolved)
    if noise.precision == "float64":
        notes.append(
            f"the gradient (norm {norm(a):.1e}) is too small here for finite differences to "
            f"test its relative accuracy; it agrees with them within the resolution reached, "
            f"{resolution:.1e} (limited by {limit}): passed on absolute agreement"
        )
    else:
        notes.append(
            f"at the loss's {noise.precision} precision, finite differences resolve this gradient "
            f"(norm {norm(a):.1e}) only to {resolution:.1e} (limited by {limit}); it agrees "
            "with them within that: passed on absolute agreement"
        )
    return result("pass", "absolute", "resolution")


def _near_stationary(
    c: Coordinates,
    a: FloatArray,
    resolved: np.ndarray,
    threshold: float,
    f0: float,
    noise: Noise,
    work: FloatArray,
) -> bool:
    """Whether every coordinate that fails the relative test has a gradient indistinguishable
    from zero: within its error bar, or smaller than the change of the derivative over a move
    of ``eps**(1/5) max(|x_i|, 1)`` (the loss curves more than it slopes there).

    Near an optimum a loss's values are tiny against the rounding of its terms, so its scatter
    looks large relative to its value although the check resolves the gradient well; a loss
    that is noisy away from any optimum is another matter.
    """
    n, ar = c.values[resolved], a[resolved]
    bars = c.errors[resolved] + (0.0 if c.allowance is None else c.allowance[resolved])
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        fails = np.abs(ar - n) > threshold * (np.abs(ar) + np.abs(n))
        h = c.steps[resolved]
        second = np.abs(c.f_plus[resolved] - 2.0 * f0 + c.f_minus[resolved])
        # The curvature counts only where the stencil resolved it above the loss's scatter.
        curve = np.where(second > MARGIN * NOISE_BOUND * noise.level, second / (h * h), 0.0)
        move = noise.eps**0.2 * np.maximum(np.abs(work.reshape(-1)[resolved]), 1.0)
        reach = np.where(np.isfinite(curve), curve * move, 0.0)
        small = (np.abs(ar) <= np.maximum(bars, reach)) | ~fails
    return bool(np.all(small))


def _allowance(c: Coordinates, resolved: np.ndarray) -> FloatArray | float:
    return 0.0 if c.allowance is None else c.allowance[resolved]


def _along_gradient(n: FloatArray, a: FloatArray, bars: FloatArray) -> str | None:
    """A discrepancy along the gradient itself (``a = c n`` in every coordinate: a missing or
    extra factor) beyond the error bars of that one component, or None.

    Each coordinate may agree within its own bar while their common part does not: the
    component of ``a - n`` along ``a`` has an error bar of ``sqrt(sum (e_i a_i)^2) / ||a||``,
    about ``sqrt(n)`` times below the bars of single coordinates.
    """
    size = norm(a)
    if n.size < 2 or not 0.0 < size < math.inf:
        return None
    unit = a / size
    with np.errstate(over="ignore", invalid="ignore"):
        gap = float(np.dot(a - n, unit))
        bar = norm(bars * unit)
    if not (math.isfinite(gap) and math.isfinite(bar)) or abs(gap) <= MARGIN * bar:
        return None
    factor = size / (size - gap) if size != gap else math.inf
    return (
        f"every coordinate agrees within its own error bar, but together they disagree along "
        f"the gradient itself by {abs(gap):.1e}, {abs(gap) / bar:.0f}x the error bar of that "
        f"component: the analytical gradient is about {factor:.6g} x the numerical one (a "
        "missing or extra factor)"
    )


def _limit(c: Coordinates, resolved: np.ndarray) -> str:
    causes = [c.causes.get(int(i)) for i in resolved]
    if causes.count("truncation") > causes.count("rounding"):
        return "truncation error"
    return "the loss's rounding"
