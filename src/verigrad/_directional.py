"""Checks whose cost does not grow with the number of parameters: random directions.

A random direction ``u`` compares ``u . g`` with the derivative of the loss along ``u``
(a handful of evaluations whatever ``n`` is). One wrong coordinate among ``n`` shows in that
comparison diluted by about ``sqrt(n)``, too little for a relative threshold but far above the
numerical error of a smooth loss's directional derivative; so a direction is judged against
its own measured error, and a suspicious direction is bisected (two evaluations per step) down
to the coordinates responsible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._typing import FloatArray

#: Loss values are trusted to about this many ulps of |f| (see check._NOISE_ULPS).
NOISE_ULPS = 8.0


@dataclass
class DirectionalOutcome:
    """What the directions found: per-direction numbers and the coordinates they point at."""

    numerical: list[float] = field(default_factory=list)
    analytical: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    suspicious: list[int] = field(default_factory=list)
    localized: list[int] = field(default_factory=list)
    n_evals: int = 0

    @property
    def worst_ratio(self) -> float:
        """The largest discrepancy in units of its estimated error."""
        with np.errstate(over="ignore"):  # a gap near 1e308 over a tiny error is inf
            ratios = [
                abs(n - a) / e if e > 0 else np.inf
                for n, a, e in zip(self.numerical, self.analytical, self.errors, strict=True)
            ]
        return max(ratios, default=0.0)


def _dot(a: FloatArray, u: FloatArray) -> float:
    """``a . u`` as a float; inf, without a warning, for a gradient near 1e308."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(a @ u)


def _along(f: Callable[[FloatArray], float], work: FloatArray, u: FloatArray, t: float) -> float:
    """Centered derivative of ``f`` at ``work`` along ``u`` with step ``t`` (2 evaluations)."""
    return (f(work + t * u) - f(work - t * u)) / (2.0 * t)


def directional_check(
    f: Callable[[FloatArray], float],
    work: FloatArray,
    analytical: FloatArray,
    f0: float,
    *,
    k: int,
    rng: np.random.Generator,
    eps: float,
    margin: float,
    gaussian: bool = False,
    max_localized: int = 8,
) -> DirectionalOutcome:
    """Compare ``u . g`` with the loss's derivative along ``k`` random directions ``u``.

    Each direction is scaled per coordinate by ``max(|x_i|, 1)`` so that every coordinate moves
    in proportion to its size. The derivative along it comes from a Richardson table of central
    differences at steps ``t, 2t, 4t`` (``t = eps**(1/5)``), which also measures its own
    truncation error. A direction whose discrepancy exceeds ``margin`` times its error is
    bisected until single coordinates are named (at most ``max_localized`` of them).
    """
    out = DirectionalOutcome()
    flat_x = work.reshape(-1)
    flat_a = analytical.reshape(-1)
    n = flat_x.size
    if n == 0 or k <= 0:
        return out
    scale = np.maximum(np.abs(flat_x), 1.0)
    noise = NOISE_ULPS * eps * max(abs(f0), np.finfo(float).tiny)
    t0 = eps**0.2
    for j in range(k):
        signs = rng.standard_normal(n) if gaussian else rng.choice((-1.0, 1.0), size=n)
        u = (signs * scale).reshape(work.shape)
        r1, d1, t, err, spent = _richardson_along(f, work, u, t0, noise)
        out.n_evals += spent
        ana = _dot(flat_a, u.reshape(-1))
        out.numerical.append(r1)
        out.analytical.append(ana)
        out.errors.append(err)
        if abs(r1 - ana) > margin * err:
            out.suspicious.append(j)
            if len(out.localized) < max_localized:
                # Bisection uses plain central differences at step t, whose truncation error
                # along the whole direction was measured as |D(t) - R|; halves have less.
                found, spent = _bisect(
                    f,
                    work,
                    u,
                    flat_a,
                    t,
                    4.0 * noise / t + abs(d1 - r1),
                    margin,
                    max_localized - len(out.localized),
                )
                out.n_evals += spent
                out.localized.extend(i for i in found if i not in out.localized)
    return out


def _richardson_along(
    f: Callable[[FloatArray], float],
    work: FloatArray,
    u: FloatArray,
    t0: float,
    noise: float,
    max_shrink: int = 4,
) -> tuple[float, float, float, float, int]:
    """The derivative along ``u`` from a Richardson table, with a step chosen for ``u``.

    Starts at ``t0`` with central differences at ``t, 2t, 4t``; while the table's truncation
    (the spread of the two extrapolations) dominates the rounding error ``noise / t``, the step
    shrinks fourfold, reusing the evaluations already made. A long direction (a random one over
    many coordinates) curves much more than one coordinate does, so its best step is smaller.

    Returns the extrapolated derivative, the plain central one at the final step, that step,
    the estimated error and the evaluations spent.
    """
    table = {m: _along(f, work, u, t0 * m) for m in (1.0, 2.0, 4.0)}
    spent = 6
    best: tuple[float, float, float, float] | None = None
    m = 1.0
    for level in range(max_shrink + 1):
        d1, d2, d4 = table[m], table[2 * m], table[4 * m]
        r1, r2 = (4.0 * d1 - d2) / 3.0, (4.0 * d2 - d4) / 3.0
        t = t0 * m
        rounding = 2.0 * noise / t
        err = rounding + abs(r1 - r2)
        if best is None or err < best[3]:
            best = (r1, d1, t, err)
        if abs(r1 - r2) <= 4.0 * rounding or level == max_shrink:
            break
        m /= 4.0
        for mm in (m, 2 * m):
            table[mm] = _along(f, work, u, t0 * mm)
        spent += 4
    assert best is not None
    if not np.isfinite(list(table.values())).all():  # a NaN or inf seen at any step is kept
        return (np.nan, *best[1:], spent)
    return (*best, spent)


def _bisect(
    f: Callable[[FloatArray], float],
    work: FloatArray,
    u: FloatArray,
    flat_a: FloatArray,
    t: float,
    err: float,
    margin: float,
    limit: int,
) -> tuple[list[int], int]:
    """Halve the support of ``u`` while a half keeps a discrepancy beyond ``margin * err``.

    Two evaluations per step: the derivative along the left half is measured, the right half's
    discrepancy is the parent's minus the left's.
    """
    flat_u = u.reshape(-1)
    support = np.flatnonzero(flat_u)
    delta = _along(f, work, u, t) - _dot(flat_a, flat_u)
    spent = 2
    stack = [(support, delta)]
    found: list[int] = []
    while stack and len(found) < limit:
        part, d = stack.pop()
        if part.size == 1:
            found.append(int(part[0]))
            continue
        left, right = part[: part.size // 2], part[part.size // 2 :]
        u_left = np.zeros_like(flat_u)
        u_left[left] = flat_u[left]
        d_left = _along(f, work, u_left.reshape(work.shape), t) - _dot(flat_a, u_left)
        spent += 2
        d_right = d - d_left
        # Look into the larger discrepancy first: with one wrong coordinate that is the path.
        halves = sorted(((left, d_left), (right, d_right)), key=lambda h: abs(h[1]))
        stack.extend(h for h in halves if abs(h[1]) > margin * err)
    return found, spent
