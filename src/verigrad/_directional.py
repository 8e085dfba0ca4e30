"""Checks whose cost does not grow with the number of parameters: random directions.

A random direction ``u`` compares ``u . g`` with the derivative of the loss along ``u``
(a handful of evaluations whatever ``n`` is). One wrong coordinate among ``n`` shows in that
comparison diluted by about ``sqrt(n)``, too little for a relative threshold but far above the
numerical error of a smooth loss's directional derivative; so a direction is judged against
its own measured error. A suspicious direction gets a second look at narrower steps, which
tells a bug (the discrepancy holds at every step) from a kink crossed by the stencil (a
narrower stencil agrees, or the one-sided slopes jump), and a confirmed one is bisected down
to the coordinates responsible.

Every evaluation goes through the check's :class:`~verigrad._evaluate.Evaluator`, so
``vectorized=`` and ``executor=`` apply here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._coordinates import NOISE_BOUND
from ._direction import Direction
from ._evaluate import Evaluator
from ._noise import Noise
from ._typing import FloatArray

__all__ = ["DirectionalOutcome", "directional_check"]

#: A direction off by this many error bars is suspect; in most directions at once, the
#: directions are bisected to the coordinates responsible, which are then checked one by one.
WEAK = 3.0


@dataclass
class DirectionalOutcome:
    """What the directions found: per-direction numbers, labels and localized coordinates.

    ``labels[j]`` is ``"ok"``, ``"bad"`` (the discrepancy holds at narrower steps: a bug),
    ``"kink"`` (the stencil crosses a kink: the one-sided slopes jump, and ``u . g`` lies
    between them), ``"unresolved"`` (neither), ``"weak"`` (off by a few error bars: evidence
    only when most directions are), or ``"domain"`` (the loss is not finite along
    it even at small steps; the direction is dropped).
    """

    numerical: list[float] = field(default_factory=list)
    analytical: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    localized: list[int] = field(default_factory=list)

    @property
    def suspicious(self) -> list[int]:
        """Directions confirmed to disagree."""
        return [j for j, label in enumerate(self.labels) if label == "bad"]

    def count(self, label: str) -> int:
        return sum(1 for x in self.labels if x == label)

    @property
    def worst_ratio(self) -> float:
        """The largest discrepancy in units of its estimated error."""
        with np.errstate(over="ignore"):
            ratios = [
                abs(n - a) / e if e > 0 else np.inf
                for n, a, e in zip(self.numerical, self.analytical, self.errors, strict=True)
                if np.isfinite(n)
            ]
        return max(ratios, default=0.0)


def _dot(a: FloatArray, u: FloatArray) -> float:
    """``a . u`` as a float; inf, without a warning, for a gradient near 1e308."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(a @ u)


#: What a direction may be: a compact random one, or an array (the halves of a bisection).
Ray = FloatArray | Direction


def _central(ev: Evaluator, work: FloatArray, u: Ray, ts: list[float]) -> list[float]:
    """Centered derivatives along ``u`` at each step in ``ts`` (two evaluations each)."""
    vals = ev.along(work, [p for t in ts for p in ((u, t), (u, -t))])
    return [(vals[2 * k] - vals[2 * k + 1]) / (2.0 * t) for k, t in enumerate(ts)]


def directional_check(
    ev: Evaluator,
    work: FloatArray,
    analytical: FloatArray,
    f0: float,
    *,
    k: int,
    rng: np.random.Generator,
    noise: Noise,
    margin: float,
    threshold: float,
    gaussian: bool = False,
    max_localized: int = 8,
) -> DirectionalOutcome:
    """Compare ``u . g`` with the loss's derivative along ``k`` random directions ``u``.

    Each direction is scaled per coordinate by ``max(|x_i|, 1)`` so that every coordinate moves
    in proportion to its size (by ``|x_i|`` when that leaves the loss's domain). The derivative
    along it comes from a Richardson table of central differences at steps ``t, 2t, 4t``
    (``t = eps**(1/5)``, ``eps`` the loss's measured precision), which also measures its own
    truncation error.
    """
    out = DirectionalOutcome()
    flat_x = work.reshape(-1)
    flat_a = analytical.reshape(-1)
    n = flat_x.size
    if n == 0 or k <= 0:
        return out
    level = NOISE_BOUND * noise.level
    t0 = noise.step_eps**0.2
    # (direction, discrepancy, its error bar, discrepancy in error bars, the step to bisect at):
    # the two most telling of the disagreeing directions (the only ones bisected; a million
    # signs each), and how many disagreed.
    directions: list[tuple[Direction, float, float, float, float]] = []
    disagreeing = 0

    def keep(d: tuple[Direction, float, float, float, float]) -> None:
        nonlocal disagreeing
        disagreeing += 1
        directions.append(d)
        directions.sort(key=lambda d: -d[3])
        del directions[2:]

    for _ in range(k):
        signs = Direction.random(rng, n, "step", gaussian)
        found = None
        for u, t in (
            (signs, t0),
            (signs.with_rule("inside"), t0),
            (signs.with_rule("inside"), t0 * 1e-3),
        ):
            r1, d1, t_used, err = _richardson_along(ev, work, u, t, level)
            if np.isfinite(r1):
                found = (u, r1, d1, t_used, err)
                break
        if found is None:
            out.numerical.append(float("nan"))
            out.analytical.append(signs.dot(work, flat_a))
            out.errors.append(float("nan"))
            out.labels.append("domain")
            continue
        u, r1, d1, t, err = found
        ana = u.dot(work, flat_a)
        out.numerical.append(r1)
        out.analytical.append(ana)
        out.errors.append(err)
        gap = abs(r1 - ana)
        if not gap > WEAK * err:
            out.labels.append("ok")
            continue
        if not gap > margin * err:
            # Alone, a few error bars prove nothing; in most directions at once, they do.
            out.labels.append("weak")
            keep((u, r1 - ana, err, gap / err, t0))
            continue
        label, best, best_err, step = _second_look(ev, work, u, f0, t, ana, level, margin, r1, err)
        out.labels.append(label)
        if label == "ok" or (label == "bad" and step < t):
            # A narrowed stencil that stays clear of the kinks the wide one crossed speaks
            # for the direction.
            out.numerical[-1], out.errors[-1] = best, best_err
        if label == "bad":
            keep((u, best - ana, best_err, np.inf, t0 if step >= t else step / 4.0))
        del u, signs, found
    if disagreeing >= max(2, (k + 1) // 2):
        # Localize from the most telling directions: the coordinates found are then checked
        # one by one, with their own error bars.
        for u, gap, err, _, at in directions:
            if len(out.localized) >= max_localized:
                break
            found_at = _bisect(
                ev, work, u, flat_a, gap, err, at, level, max_localized - len(out.localized)
            )
            out.localized.extend(i for i in found_at if i not in out.localized)
    return out


#: How many times a kinked direction's stencil is narrowed eightfold, past the first look's two
#: steps, looking for a step too small to reach the nearest kink (a ReLU network's kinks lie
#: about 1e-6 apart along a random direction over thousands of weights).
MAX_NARROWING = 6


def _second_look(
    ev: Evaluator,
    work: FloatArray,
    u: Ray,
    f0: float,
    t: float,
    ana: float,
    level: float,
    margin: float,
    wide: float,
    wide_err: float,
) -> tuple[str, float, float, float]:
    """Central differences along ``u`` at ``t/8``, ``t/64``, ..., with one-sided slopes.

    A kink crossed by the wide stencil lies outside a narrow enough one: the narrow estimate
    then disagrees with the wide one (``wide``, ``wide_err``) and agrees with ``u . g``. A
    narrow estimate that agrees with the wide one corroborates its discrepancy instead (its
    larger error bar alone proves nothing). While the one-sided slopes' gap does not shrink
    with the step as a smooth curve's does (eightfold), the stencil still crosses a kink and is
    narrowed further; two steps in a row that are smooth judge the direction on their own. A
    gap that never shrinks before rounding hides it is a kink at ``x`` itself.

    Returns the label, the best estimate, its error bar, and the step it was taken at.
    """
    ts = [t / 8.0, t / 64.0]
    vals = ev.along(work, [p for s in ts for p in ((u, s), (u, -s))])
    ups, downs = [float(v) for v in vals[0::2]], [float(v) for v in vals[1::2]]

    def smooth(k: int) -> bool:
        # The one-sided slopes' gap at the steps k-1 and k: hidden by rounding, or shrinking
        # with the step as a smooth curve's does (neither a kink inside both stencils nor one
        # between them).
        jump = [abs(ups[j] + downs[j] - 2.0 * f0) / ts[j] for j in (k - 1, k)]
        shrink = jump[1] / jump[0] if jump[0] > 0 else 1.0 / 8.0
        visible = max(jump) > margin * 2.0 * level / ts[k]
        return not visible or 0.02 <= shrink <= 0.3

    k = 1
    while not smooth(k):
        if k >= MAX_NARROWING + 1:
            # The gap stays at every step (a kink at x itself): such a direction is left to
            # the coordinates, which resolve kinks one at a time; it is never evidence of a bug
            # on its own.
            last = (ups[k] - downs[k]) / (2.0 * ts[k])
            return "kink", last, level / ts[k], ts[k]
        ts.append(ts[-1] / 8.0)
        pair = ev.along(work, [(u, ts[-1]), (u, -ts[-1])])
        ups.append(float(pair[0]))
        downs.append(float(pair[1]))
        k += 1
    d = [(ups[j] - downs[j]) / (2.0 * ts[j]) for j in (k - 1, k)]
    steps = ts[k - 1 : k + 1]
    err = [level / s + abs(d[0] - d[1]) for s in steps]
    corroborated = False
    for j in range(2):
        if k == 1 and abs(d[j] - wide) <= 2.0 * (err[j] + wide_err):
            # Only an unkinked wide stencil can corroborate: one that crossed a kink (k > 1)
            # measured something else.
            corroborated = True
        elif abs(d[j] - ana) <= margin * err[j]:
            return "ok", d[j], err[j], steps[j]
    if corroborated:
        return "bad", wide, wide_err, t
    consistent = abs(d[0] - d[1]) <= 0.25 * min(abs(d[0] - ana), abs(d[1] - ana))
    return ("bad" if consistent else "unresolved"), d[1], err[1], steps[1]


def _richardson_along(
    ev: Evaluator,
    work: FloatArray,
    u: Ray,
    t0: float,
    level: float,
    max_shrink: int = 4,
) -> tuple[float, float, float, float]:
    """The derivative along ``u`` from a Richardson table, with a step chosen for ``u``.

    Starts at ``t0`` with central differences at ``t, 2t, 4t``; while the table's truncation
    (the spread of the two extrapolations) dominates the rounding error ``level / t``, the step
    shrinks fourfold, reusing the evaluations already made. A long direction (a random one over
    many coordinates) curves much more than one coordinate does, so its best step is smaller.

    Returns the extrapolated derivative (NaN if the loss was not finite at any step), the plain
    central one at the final step, that step, and the estimated error.
    """
    table = dict(zip((1.0, 2.0, 4.0), _central(ev, work, u, [t0, 2 * t0, 4 * t0]), strict=True))
    best: tuple[float, float, float, float] | None = None
    m = 1.0
    for depth in range(max_shrink + 1):
        d1, d2, d4 = table[m], table[2 * m], table[4 * m]
        r1, r2 = (4.0 * d1 - d2) / 3.0, (4.0 * d2 - d4) / 3.0
        t = t0 * m
        rounding = 1.5 * level / t
        err = rounding + 2.0 * abs(r1 - r2) / 15.0
        if best is None or err < best[3]:
            best = (r1, d1, t, err)
        if abs(r1 - r2) <= 4.0 * rounding or depth == max_shrink:
            break
        m /= 4.0
        table.update(zip((m, 2 * m), _central(ev, work, u, [t0 * m, 2 * t0 * m]), strict=True))
    assert best is not None
    if not np.isfinite(list(table.values())).all():  # a NaN or inf seen at any step is kept
        return (float("nan"), *best[1:])
    return best


def _bisect(
    ev: Evaluator,
    work: FloatArray,
    u: Direction,
    flat_a: FloatArray,
    gap: float,
    err: float,
    t0: float,
    level: float,
    limit: int,
) -> list[int]:
    """Halve the support of ``u`` while a half keeps a discrepancy beyond ``WEAK`` times its
    error bar; ``gap`` and ``err`` are the whole direction's.

    The derivative along the left half comes from its own Richardson table (with its own error
    bar); the right half's discrepancy is the parent's minus the left's, with both error bars.
    """
    stack = [(u.lo, u.hi, gap, err)]
    found: list[int] = []
    while stack and len(found) < limit:
        lo, hi, d, e = stack.pop()
        if hi - lo == 1:
            found.append(lo)
            continue
        mid = (lo + hi) // 2
        left = u.within(lo, mid)
        r, _, _, e_left = _richardson_along(ev, work, left, t0, level)
        d_left = r - left.dot(work, flat_a)
        halves = [(lo, mid, d_left, e_left), (mid, hi, d - d_left, e + e_left)]
        # The clearer discrepancy is looked into first: with one wrong coordinate, that is it.
        halves.sort(key=lambda h: abs(h[2]) / h[3] if h[3] > 0 else np.inf)
        stack.extend(h for h in halves if abs(h[2]) > WEAK * h[3])
    return found
