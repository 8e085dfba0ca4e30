"""Coordinate-wise estimates with error bars, and the sharper second look at suspicious ones.

Error bars come from the loss's measured noise (see :mod:`verigrad._noise`) and, where the
check can see it, from the truncation error measured between step sizes. A coordinate whose
estimate disagrees with the gradient gets a Richardson table at its own, larger step (error
O(h^4), rounding about a hundred times below central differences'); a coordinate whose
one-sided derivatives disagree gets a stencil eight times narrower, which tells a kink from
a smooth curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._evaluate import Shifter
from ._noise import EPS64, Noise
from ._schemes import Scheme, scheme
from ._typing import FloatArray
from .compare import MARGIN, refine

__all__ = ["MARGIN", "NOISE_BOUND", "Coordinates", "estimate", "examine", "kink_suspects"]

#: A loss value is trusted to within this many standard deviations of its measured noise.
NOISE_BOUND = 4.0


@dataclass
class Coordinates:
    """Per-coordinate numbers over the flat parameter (NaN where not estimated).

    Mutable while the check runs (the second look replaces values and errors); the check
    copies what it keeps into the frozen result.
    """

    values: FloatArray
    errors: FloatArray
    steps: FloatArray
    f_plus: FloatArray
    f_minus: FloatArray
    scheme: str
    #: flat index -> what the second look concluded ("ok", "bad", "kink", "kink-bad",
    #: "noisy", "domain", "flat") and why the first estimate was off ("truncation", ...).
    labels: dict[int, str] = field(default_factory=dict)
    causes: dict[int, str] = field(default_factory=dict)
    #: coordinates whose stencil was moved to stay inside the loss's domain
    adapted: set[int] = field(default_factory=set)
    #: coordinates a narrower stencil cleared of a kink that the first one straddled
    narrowed: set[int] = field(default_factory=set)
    #: the analytical gradient's own rounding, per coordinate (see :func:`allowance`)
    allowance: FloatArray | None = None

    def bar(self, i: int) -> float:
        """The error bar a discrepancy at ``i`` is measured against: the numerical estimate's
        error and the analytical gradient's rounding."""
        extra = 0.0 if self.allowance is None else float(self.allowance[i])
        return float(self.errors[i]) + extra


def allowance(c: Coordinates, work: FloatArray, f0: float, eps: float) -> FloatArray:
    """The rounding error of a correctly coded analytical gradient, per coordinate.

    A gradient is computed from terms about the size of the curvature times the parameter's
    scale (``X^T X w`` against ``X^T y``; ``(mean(y) - mu) / v``), and near an optimum they
    cancel: their rounding, a few ulps of ``|f''_ii| max(|x_i|, 1)`` in the gradient's own
    precision ``eps``, then stands out against the small result.
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        curve = np.abs(c.f_plus - 2.0 * f0 + c.f_minus) / (c.steps * c.steps)
        out = 8.0 * eps * curve * np.maximum(np.abs(work.reshape(-1)), 1.0)
    return np.where(np.isfinite(out), out, 0.0)


def _rounding(
    s: Scheme, noise: Noise, h: FloatArray, values: FloatArray | None = None
) -> FloatArray:
    """The rounding error of scheme ``s`` at steps ``h``: the measured noise, and at least a
    quarter ulp of the largest loss value the stencil saw (``values``, one row per step), which
    may lie far above the values near ``x`` that the probe measured."""
    level = np.full(np.shape(h), noise.level)
    if values is not None and values.size:
        top = np.where(np.isfinite(values), np.abs(values), 0.0).max(axis=1)
        level = np.fmax(level, 0.25 * EPS64 * top)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = s.rounding * NOISE_BOUND * level / np.abs(h)
    return out


def _table_errors(
    vals: FloatArray, offs: FloatArray, noise: Noise
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Richardson table at h, 2h, 4h: the extrapolated value, its error bar, and D(h)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        d1 = (vals[:, 0] - vals[:, 1]) / (offs[:, 0] - offs[:, 1])
        d2 = (vals[:, 2] - vals[:, 3]) / (offs[:, 2] - offs[:, 3])
        d4 = (vals[:, 4] - vals[:, 5]) / (offs[:, 4] - offs[:, 5])
        r1 = (4.0 * d1 - d2) / 3.0
        r2 = (4.0 * d2 - d4) / 3.0
        h = 0.5 * (offs[:, 0] - offs[:, 1])
        # R(h) - R(2h) = -15 (R(h) - f'): the table measures its own truncation error.
        err = _rounding(scheme("table"), noise, h, vals) + 2.0 * np.abs(r1 - r2) / 15.0
    return r1, err, d1


def _evaluate(
    ev: Shifter,
    work: FloatArray,
    f0: float,
    s: Scheme,
    idx: np.ndarray,
    h: FloatArray,
    noise: Noise,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Values, error bars, steps, f(x+h), f(x-h) of scheme ``s`` at flat indices ``idx``."""
    vals, offs = ev.shifted(work, idx.tolist(), h.tolist(), s.multipliers)
    nan = np.full(idx.size, np.nan)
    steps = np.abs(offs[:, 0]) if idx.size else nan
    if s.name == "table":
        values, errors, _ = _table_errors(vals, offs, noise)
        return values, errors, steps, vals[:, 0], vals[:, 1]
    values = s.combine(vals, offs, f0)
    errors = _rounding(s, noise, steps, vals)
    fp, fm = nan.copy(), nan.copy()
    if s.name in ("central", "richardson"):
        fp, fm = vals[:, 0], vals[:, 1]
        # The length on which the coordinate curves, as the step rule assumed it: max(|x_i|, 1)
        # for the usual steps, |x_i| for steps shrunk to stay inside the loss's domain.
        scale = steps / noise.step_eps**s.step_exponent if s.step_exponent else steps
        with np.errstate(invalid="ignore", over="ignore"):
            # Truncation h^2 f'''/6, with f''' guessed from the stencil's f'' over the
            # coordinate's scale; a measured figure replaces it where the check looks closer.
            errors = errors + np.abs(fp - 2.0 * f0 + fm) / (6.0 * scale)
    elif s.name in ("forward", "forward2"):
        fp = vals[:, 0]
    else:
        fm = vals[:, 0]
    return values, errors, steps, fp, fm


def estimate(
    ev: Shifter,
    work: FloatArray,
    f0: float,
    s: Scheme,
    steps: FloatArray,
    noise: Noise,
    indices: np.ndarray | None = None,
) -> Coordinates:
    """Estimate the partial derivatives at ``indices`` (all when None) with scheme ``s``.

    A coordinate whose stencil leaves the loss's domain (a NaN or inf there, while ``f(x)`` is
    finite) is estimated again with a step relative to ``|x_i|``, then one-sidedly on the side
    where the loss is finite; if neither works it stays NaN and is labelled ``"domain"``.
    """
    flat = work.reshape(-1)
    n = flat.size
    idx = np.arange(n, dtype=np.intp) if indices is None else np.asarray(indices, dtype=np.intp)
    h_all = steps.reshape(-1)
    out = Coordinates(
        values=np.full(n, np.nan),
        errors=np.full(n, np.nan),
        steps=np.full(n, np.nan),
        f_plus=np.full(n, np.nan),
        f_minus=np.full(n, np.nan),
        scheme=s.name,
    )
    _store(out, idx, _evaluate(ev, work, f0, s, idx, h_all[idx], noise))
    if np.isfinite(f0):
        _stay_inside(ev, work, f0, s, h_all, noise, out, idx)
    return out


def _store(
    out: Coordinates,
    idx: np.ndarray,
    parts: tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray],
) -> None:
    values, errors, steps, fp, fm = parts
    out.values[idx], out.errors[idx], out.steps[idx] = values, errors, steps
    out.f_plus[idx], out.f_minus[idx] = fp, fm


def _stay_inside(
    ev: Shifter,
    work: FloatArray,
    f0: float,
    s: Scheme,
    h_all: FloatArray,
    noise: Noise,
    out: Coordinates,
    idx: np.ndarray,
) -> None:
    flat = work.reshape(-1)
    outside = idx[~np.isfinite(out.values[idx])]
    if outside.size == 0:
        return
    x = np.abs(flat[outside])
    relative = h_all[outside] / np.maximum(x, 1.0) * x
    # First: the same scheme with a step relative to |x_i| (a positive parameter near 0).
    shrink = (x > 0) & (relative < h_all[outside])
    tries: list[tuple[Scheme, np.ndarray, FloatArray]] = []
    if shrink.any():
        tries.append((s, outside[shrink], relative[shrink]))
    for one_sided in ("forward2", "backward2"):
        tries.append((scheme(one_sided), outside, np.where(shrink, relative, h_all[outside])))
    for sch, where, h in tries:
        todo = ~np.isfinite(out.values[where])
        if not todo.any():
            continue
        sel, hs = where[todo], h[todo]
        values, errors, steps, fp, fm = _evaluate(ev, work, f0, sch, sel, hs, noise)
        ok = np.isfinite(values)
        if ok.any():
            _store(out, sel[ok], (values[ok], errors[ok], steps[ok], fp[ok], fm[ok]))
            out.adapted.update(int(i) for i in sel[ok])
    for i in idx[~np.isfinite(out.values[idx])]:
        out.labels[int(i)] = "domain"


def own_scale_truncation(c: Coordinates, work: FloatArray, f0: float) -> None:
    """Near a domain edge (the loss was NaN or inf beside ``x``), a coordinate below 1 likely
    curves on its own scale (``log``, ``sqrt`` of a positive parameter): its truncation guess
    uses ``|x_i|`` as that scale rather than 1. The error bars only grow."""
    flat = np.abs(work.reshape(-1))
    small = np.flatnonzero((flat > 0.0) & (flat < 1.0) & np.isfinite(c.values))
    if small.size == 0:
        return
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # Four times the leading term: the step is a sizeable fraction of that scale here.
        guess = 4.0 * np.abs(c.f_plus[small] - 2.0 * f0 + c.f_minus[small]) / (6.0 * flat[small])
    guess = np.where(np.isfinite(guess), guess, 0.0)
    c.errors[small] = np.fmax(c.errors[small], guess)


def kink_suspects(c: Coordinates, f0: float, noise: Noise, analytical: FloatArray) -> np.ndarray:
    """Flat indices whose one-sided derivatives differ by more than 0.1 %.

    Free: it reuses the central stencil's values. For a smooth loss the gap between forward and
    backward differences is ``h f''``, small next to the derivative; at a kink inside the stencil
    it is the jump of the derivative. A narrower stencil tells the two apart.
    """
    if c.scheme not in ("central", "richardson", "table"):
        return np.empty(0, dtype=np.intp)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        gap = np.abs(c.f_plus - 2.0 * f0 + c.f_minus) / c.steps
        rnd = NOISE_BOUND * noise.level / c.steps
        a = analytical
        floor = 1e-3 * float(np.sqrt(np.mean(a * a))) if a.size else 0.0
        flagged = (gap > 1e-3 * (np.abs(c.values) + np.abs(a)) + floor) & (gap > MARGIN * 4.0 * rnd)
    flagged &= np.isfinite(c.values)
    return np.flatnonzero(flagged)


def examine(
    ev: Shifter,
    work: FloatArray,
    f0: float,
    c: Coordinates,
    analytical: FloatArray,
    noise: Noise,
    threshold: float,
    candidates: np.ndarray,
    kinky: np.ndarray,
) -> None:
    """Take a second look at ``candidates`` (a Richardson table) and ``kinky`` (a narrower
    stencil), replacing their values and errors in ``c`` and labelling them.

    Each candidate climbs a ladder of Richardson tables (a wider step first, then steps on the
    coordinate's own scale and narrower ones) until two estimates agree within their error bars;
    the sharper of the two is kept. A candidate is ``"bad"`` when that estimate still disagrees
    with the gradient by more than ``MARGIN`` times its error bar and by more than ``threshold``
    relative to the coordinate; ``"ok"`` otherwise, with the cause of the first estimate's
    discrepancy (``"truncation"`` when the sharper estimate moved by more than rounding
    explains, else ``"rounding"``); ``"noisy"`` when no two estimates agreed.
    """
    flat = work.reshape(-1)
    looked: dict[int, tuple[float, float]] = {}
    if kinky.size:
        looked = _narrow(ev, work, f0, c, analytical, noise, threshold, kinky)
    settled = ("domain", "kink", "kink-bad")
    todo = np.asarray(
        [i for i in candidates if c.labels.get(int(i)) not in settled and i not in c.narrowed],
        dtype=np.intp,
    )
    if todo.size == 0:
        return
    a = analytical.reshape(-1)
    central = scheme(c.scheme)
    rnd0 = _rounding(central, noise, c.steps[todo])
    # The pool of estimates per coordinate: (value, error bar). The first estimate enters with
    # its rounding error only: it corroborates a sharper one only where truncation was small.
    pool: dict[int, list[tuple[float, float]]] = {
        int(i): [(float(c.values[i]), float(c.errors[i] if int(i) in c.labels else r))]
        for i, r in zip(todo, rnd0, strict=True)
    }
    # So does the narrow stencil's estimate, where it just looked (a stationary point makes every
    # coordinate a kink suspect): a sharper table it agrees with need not wait for another.
    for i in pool:
        if i in looked:
            pool[i].append(looked[i])
    given = {i: len(p) for i, p in pool.items()}
    chosen: dict[int, tuple[float, float]] = {}
    x = np.abs(flat)
    base = np.maximum(x, 1.0)
    wide = noise.eps ** scheme("table").step_exponent
    edge = np.zeros(flat.size, dtype=bool)
    edge[list(c.adapted)] = True
    # The rungs of the ladder, per coordinate (NaN: no such rung for that coordinate).
    ladder = [
        wide * base,  # rounding-optimal for a loss that curves on the scale 1
        np.where((x > 0.0) & (x < 0.1 * base), wide * x, np.nan),  # on its own scale
        # For a coordinate whose stencil was shrunk to stay inside the loss's domain: the
        # widest table that stays inside |x_i| (its stencil reaches 4h = |x_i|/8). Where the
        # loss's size comes from other coordinates, its rounding is far below the own scale's.
        np.where(edge & (x > 0.0) & (x < 0.1 * base), x / 32.0, np.nan),
        # Narrower, for a first estimate limited by truncation. Factors of 3 rather than 2 or 4:
        # a stencil of x + h k/3 stays off the points the first one evaluated at.
        c.steps / 3.0,
        c.steps / 24.0,
        c.steps / 192.0,
    ]
    left = todo
    for step, rung in enumerate(ladder):
        if left.size == 0:
            break
        h = rung[left]
        # A rung at the first estimate's own step would only repeat it: no corroboration.
        fresh = np.isfinite(h) & (h > 0) & ~np.isclose(h, c.steps[left], rtol=0.05, atol=0.0)
        go = left[fresh]
        if go.size:
            hs = h[fresh]
            values, errors, *_ = _evaluate(ev, work, f0, scheme("table"), go, hs, noise)
            # Off the loss's domain on one side: the other side; but not with a stencil far
            # wider than a small coordinate, which would span the scale the loss curves on near
            # its edge (log, sqrt, x log x) while its error bar assumed a smooth curve. The
            # rungs on the coordinate's own scale stay inside.
            wider = (x[go] > 0.0) & (x[go] < 0.1 * base[go]) & (hs > 0.25 * x[go])
            for sign in (1.0, -1.0):
                out = ~np.isfinite(values) & ~wider
                if out.any():
                    v, e = _one_sided_table(ev, work, f0, go[out], hs[out], noise, sign)
                    values[out], errors[out] = v, e
            for k, i in enumerate(go.tolist()):
                if np.isfinite(values[k]) and np.isfinite(errors[k]):
                    pool[i].append((float(values[k]), float(errors[k])))
        still = []
        # A bar within 4x of the rounding of the widest table still to come cannot be sharpened.
        later = np.stack([r[left] for r in ladder[step + 1 :]] or [np.full(left.size, np.nan)])
        later = np.where(np.isfinite(later) & (later > 0.0), later, 0.0).max(axis=0)
        floor = 4.0 * _rounding(scheme("table"), noise, np.minimum(wide * base[left], later))
        for k, i in enumerate(left.tolist()):
            best = _corroborated(pool[i], given[i])
            if best is not None:
                chosen[i] = best
                gap = abs(a[i] - best[0])
                local = threshold * (abs(a[i]) + abs(best[0]))
                extra = 0.0 if c.allowance is None else float(c.allowance[i])
                if gap > MARGIN * (best[1] + extra) or gap <= local or best[1] <= floor[k]:
                    continue
            still.append(i)
        left = np.asarray(still, dtype=np.intp)
    for i in todo.tolist():
        if i not in chosen:
            c.labels[i] = "noisy"
            continue
        value, err = chosen[i]
        moved = abs(c.values[i] - value)
        rnd = float(_rounding(central, noise, np.asarray([c.steps[i]]))[0])
        c.causes[i] = "truncation" if moved > 2.0 * (rnd + err) else "rounding"
        c.values[i], c.errors[i] = value, err
        gap = abs(a[i] - value)
        local = threshold * (abs(a[i]) + abs(value))
        c.labels[i] = "bad" if gap > MARGIN * c.bar(i) and gap > local else "ok"
    # Every table of the ladder may straddle the same kink and agree with each other: a "bad"
    # whose first stencil's one-sided slopes bracket the gradient gets narrower stencils.
    straddled = [
        i
        for i in todo.tolist()
        if c.labels.get(i) == "bad" and i not in c.narrowed and _brackets(c, f0, a, noise, i)
    ]
    if straddled:
        _narrow(ev, work, f0, c, analytical, noise, threshold, np.asarray(straddled))


def _brackets(c: Coordinates, f0: float, a: FloatArray, noise: Noise, i: int) -> bool:
    """Whether coordinate ``i``'s first stencil looks as if it straddled a kink: its one-sided
    slopes differ beyond rounding, and the gradient lies between them, near one of them rather
    than near their mean (on a smooth curve the mean, the central difference, is the closest;
    past a kink the slope on the kink-free side is)."""
    h = float(c.steps[i])
    if not (h > 0 and np.isfinite(c.f_plus[i]) and np.isfinite(c.f_minus[i])):
        return False
    fwd, bwd = (c.f_plus[i] - f0) / h, (f0 - c.f_minus[i]) / h
    rnd = MARGIN * NOISE_BOUND * max(noise.level, 0.25 * EPS64 * abs(f0)) / h
    lo, hi = min(fwd, bwd), max(fwd, bwd)
    near_end = min(abs(a[i] - fwd), abs(a[i] - bwd)) < 0.5 * abs(a[i] - 0.5 * (fwd + bwd))
    return bool(hi - lo > rnd and lo - rnd <= a[i] <= hi + rnd and near_end)


def _one_sided_table(
    ev: Shifter,
    work: FloatArray,
    f0: float,
    idx: np.ndarray,
    h: FloatArray,
    noise: Noise,
    sign: float,
) -> tuple[FloatArray, FloatArray]:
    """Second-order one-sided differences at ``h`` and ``2h`` on one side of ``x``, with the
    error bar their difference measures (``D(h) - D(2h) = -3 (D(h) - f')``)."""
    vals, offs = ev.shifted(work, idx.tolist(), h.tolist(), (sign, 2 * sign, 4 * sign))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        t = offs[:, 0]
        d1 = (-3.0 * f0 + 4.0 * vals[:, 0] - vals[:, 1]) / (2.0 * t)
        d2 = (-3.0 * f0 + 4.0 * vals[:, 1] - vals[:, 2]) / (4.0 * t)
        err = _rounding(scheme("forward2"), noise, t, vals) + 2.0 * np.abs(d1 - d2) / 3.0
    return d1, err


def _corroborated(pool: list[tuple[float, float]], given: int = 1) -> tuple[float, float] | None:
    """The sharpest estimate that another one agrees with, within both error bars; its error
    bar is widened to the distance between the two (a loose estimate corroborates loosely)."""
    best: tuple[float, float] | None = None
    for k, (v, e) in enumerate(pool):
        if k < given:
            continue  # the estimates it started with corroborate, they are not the ones kept
        for j, (w, f) in enumerate(pool):
            bar = max(e, abs(v - w))
            if j != k and abs(v - w) <= 2.0 * (e + f) and (best is None or bar < best[1]):
                best = (v, bar)
    return best


def _narrow(
    ev: Shifter,
    work: FloatArray,
    f0: float,
    c: Coordinates,
    analytical: FloatArray,
    noise: Noise,
    threshold: float,
    where: np.ndarray,
) -> dict[int, tuple[float, float]]:
    """Stencils eight and sixty-four times narrower for suspected kinks (see ``refine``).

    Returns, per coordinate labelled ``"ok"``, the narrowest estimate and its error bar: its
    rounding, or the change from the wider stencil if that is larger.
    """
    h = c.steps[where]
    wide = (c.f_plus[where], c.f_minus[where], h, -h)
    a = analytical.reshape(-1)[where]
    vals, offs = ev.shifted(work, where.tolist(), h.tolist(), (0.125, -0.125))
    narrow = (vals[:, 0], vals[:, 1], offs[:, 0], offs[:, 1])
    seen = np.fmax(np.abs(wide[0]), np.abs(wide[1]))
    level = NOISE_BOUND * np.fmax(noise.level, 0.25 * EPS64 * np.nan_to_num(seen))
    verdicts = refine(a, f0, wide, narrow, level, threshold)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # One-sided gaps: a smooth curve's shrinks eightfold with the step; a kink that the
        # first stencil straddled and the narrow one does not leaves far less than that.
        gap1 = np.abs((wide[0] - f0) / h - (f0 - wide[1]) / h)
        gap2 = np.abs((narrow[0] - f0) / narrow[2] - (narrow[1] - f0) / narrow[3])
        d2 = (narrow[0] - narrow[1]) / (narrow[2] - narrow[3])
    labels = np.array(verdicts.labels)
    values, errors = verdicts.values, verdicts.errors
    # The narrowest central estimate, the one before it, and its rounding.
    last, before, last_rnd = d2.copy(), c.values[where].copy(), level / np.abs(narrow[2])
    redo = np.flatnonzero((labels == "noisy") | (labels == "kink-bad"))
    if redo.size:
        # Curvature on a scale below the step: narrow once more while undecided. A gradient
        # outside the one-sided slopes must stay outside at the narrower step too: with many
        # kinks about (a ReLU network) a second one may sit inside the first narrow stencil.
        prev = (narrow[0][redo], narrow[1][redo], narrow[2][redo], narrow[3][redo])
        vals2, offs2 = ev.shifted(work, where[redo].tolist(), prev[2].tolist(), (0.125, -0.125))
        again = refine(
            a[redo],
            f0,
            prev,
            (vals2[:, 0], vals2[:, 1], offs2[:, 0], offs2[:, 1]),
            level[redo],
            threshold,
        )
        labels[redo] = again.labels
        values[redo], errors[redo] = again.values, again.errors
        before[redo] = last[redo]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            last[redo] = (vals2[:, 0] - vals2[:, 1]) / (offs2[:, 0] - offs2[:, 1])
            last_rnd[redo] = level[redo] / np.abs(offs2[:, 0])
    wide_values = c.values[where].copy()
    looked: dict[int, tuple[float, float]] = {}
    for k, i in enumerate(where.tolist()):
        c.labels[i] = str(labels[k])
        if labels[k] in ("kink", "kink-bad", "ok", "bad") and np.isfinite(values[k]):
            c.values[i], c.errors[i] = values[k], max(errors[k], 0.0)
        rounding = level[k] / (abs(h[k]) / 8.0)  # the narrow estimate's own rounding
        between = abs(wide_values[k] - values[k]) > MARGIN * rounding or gap2[k] < 0.02 * gap1[k]
        if labels[k] == "ok" and between and abs(d2[k] - a[k]) <= MARGIN * rounding:
            # The narrow stencil disagrees with the first one and agrees with the gradient: a
            # kink lies between them. Wider second looks would only straddle it again.
            c.values[i] = d2[k]
            c.narrowed.add(i)
        bar = max(last_rnd[k], abs(before[k] - last[k]))
        if labels[k] == "ok" and np.isfinite(last[k]) and np.isfinite(bar):
            looked[i] = (float(last[k]), float(bar))
    return looked
