"""Measuring the loss's own noise: how much its values scatter around a smooth function.

The rounding error of a loss is not ``eps * |f|``: a loss that is exactly zero, or computed by
cancellation, rounds at the size of its terms; a float32 data term inside a float64 sum rounds
at float32's precision whatever dtype the result has. So the check measures it, with the
difference-table method of Moré and Wild ("Estimating computational noise", SIAM J. Sci.
Comput. 33, 2011): the loss at ``m + 1`` equally spaced points along a random direction, whose
``k``-th differences of a smooth function vanish like ``delta**k`` while those of noise do not.
The noise level is read at the first order where three successive levels agree and the
differences change sign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._direction import Direction
from ._evaluate import Evaluator
from ._typing import FloatArray

__all__ = ["EPS64", "PROBE_EVALS", "Noise", "measure_noise"]

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
TINY = float(np.finfo(np.float64).tiny)
#: Points of the probe: x + s delta u for s = 1 .. POINTS. The window starts beside x, not
#: around it: a loss with a kink at x itself (an L1 term at a zero coordinate) would show the
#: kink in every difference of a window centred on x, and pass it off as noise.
POINTS = 9
#: Loss evaluations of the noise probe of a smooth float64 loss (two windows).
PROBE_EVALS = 2 * POINTS
#: Moves tried, in units of each coordinate's step scale, while the loss does not change.
DELTAS = (1e-6, 1e-4, 1e-2)


@dataclass(frozen=True)
class Noise:
    """The measured noise of the loss near ``x``.

    Attributes:
        level: the standard deviation of one loss value's error around a smooth function
            (absolute; never below a quarter ulp of the values seen).
        scale: the largest ``|f|`` seen by the probe.
        eps: the loss's effective precision, ``max(eps64, 3 * level / scale)``: what steps and
            error bounds use as machine epsilon.
        precision: ``"float64"`` or ``"float32"`` when the scatter is that format's rounding
            (a float32 term anywhere in the loss makes it float32), else ``"noisy"``.
        cause: None when measured; ``"flat"`` (the loss did not change along the probe),
            ``"domain"`` (the probe left the loss's domain), ``"unsettled"`` (no order of
            differences settled: the loss is rough at every scale tried).
        values: the probe's loss values (for the explanation of a verdict).
    """

    level: float
    scale: float
    eps: float
    precision: str
    cause: str | None = None
    delta: float = 0.0

    @property
    def step_eps(self) -> float:
        """The precision the first difference steps follow: the measured one for a float32
        loss; float64's otherwise. A scatter between the two may come from kinks crossed by
        the probe (a ReLU network) rather than noise, and larger steps would cross more; the
        sharper second looks follow the measured scatter."""
        return self.eps if self.precision == "float32" else EPS64

    @property
    def relative(self) -> float:
        return self.level / self.scale if self.scale > 0 else 0.0


def _precision(eps: float) -> str:
    if eps <= 1e4 * EPS64:
        return "float64"
    if EPS32 / 30.0 <= eps <= 50.0 * EPS32:
        return "float32"
    return "noisy"


def probe_direction(
    work: FloatArray, rng: np.random.Generator, step_scale: bool = False
) -> Direction:
    """Random signs scaled by ``|x_i|`` (by 1 where ``x_i`` is 0): every coordinate moves in
    proportion to its size, so positive parameters stay positive and a coordinate that curves
    on its own small scale looks smooth. With ``step_scale``, by ``max(|x_i|, 1)`` as the
    difference steps are, capped at ``100 |x_i|``."""
    return Direction.random(rng, work.size, "capped" if step_scale else "inside")


def noise_level(values: FloatArray) -> tuple[float, bool] | None:
    """Moré and Wild's estimate from values at equally spaced points, and whether it settled.

    Unsettled (no three successive orders agree), the smallest level of order 2 or more is
    returned: an upper bound, since the differences of a smooth part only shrink with the
    order while noise's do not. None when the values are all zero or not finite.
    """
    levels: list[float] = []
    signs: list[bool] = []
    d = np.asarray(values, dtype=np.float64)
    top = float(np.max(np.abs(d))) if d.size else 0.0
    if not 0.0 < top < math.inf:
        return None
    d = d / top  # differences of values near 1e308 must not overflow
    gamma = 1.0
    m = d.size - 1
    for j in range(1, m + 1):
        d = np.diff(d)
        gamma *= j / (2.0 * (2 * j - 1))  # (j!)^2 / (2j)!
        levels.append(top * math.sqrt(gamma * float(np.mean(d * d))))
        signs.append(bool(d.min() < 0.0 < d.max()))
    for j in range(m - 2):
        window = levels[j : j + 3]
        low = min(window)
        if low > 0 and max(window) <= 4.0 * low and signs[j]:
            return levels[j], True
    return min(levels[1:]), False


def measure_noise(ev: Evaluator, work: FloatArray, f0: float, rng: np.random.Generator) -> Noise:
    """Probe the loss along one random direction and return its noise.

    A window of moves of 1e-6 of each coordinate's size; one where the loss does not change
    moves on to larger moves, one that leaves the loss's domain to smaller ones. Where that
    finds float64's rounding, a second window at the difference steps' scale looks for a float32
    part that the first moved too little to change (a float32 data term plus a float64
    penalty): if it settles at float32's level, and again at moves ten times larger along another
    direction (kinks crossed in passing scatter in proportion to the move, rounding does not),
    that level counts. ``2 * POINTS`` evaluations for a smooth float64 loss.
    """
    if work.size == 0:
        return Noise(_floor(abs(f0)), abs(f0), EPS64, "float64")
    u = probe_direction(work, rng)
    noise, scale, move, kinked = _window(ev, work, f0, u, abs(f0))
    if kinked and noise is not None and _precision(_eps(noise[0], scale)) != "float64":
        # The window crossed a kink in passing (a ReLU network has one every 1e-6 or so along
        # a long direction) and took its spike for scatter: a window a hundred times shorter
        # seldom reaches one.
        # Noise that happens to look kinked (a sawtooth) is not fooled twice: the shorter
        # level must hold along a second direction too.
        levels = []
        for v in (u, probe_direction(work, rng)):
            shorter, scale, _, _ = _window(ev, work, f0, v, scale, (move / 100.0,))
            if shorter is None or not shorter[1] or shorter[0] >= 0.25 * noise[0]:
                break
            levels.append(shorter[0])
        if len(levels) == 2 and max(levels) <= 4.0 * min(levels):
            noise = (max(levels), True)
    if noise is None or (noise[1] and _precision(_eps(noise[0], scale)) == "float64"):
        # A float32 part scatters by the same amount whatever the move; kinks crossed by the
        # larger moves (a ReLU network) scatter in proportion to the move: the level must hold
        # at moves ten times apart, along two directions.
        # A window may also cross a kink in passing (a ReLU network) and take its spike for
        # noise: float32 must show along every one of three directions.
        levels = []
        for move in (1e-6, 1e-6, 1e-5):
            at, scale, _, kinked = _window(
                ev, work, f0, probe_direction(work, rng, True), scale, (move,)
            )
            if at is None or not at[1] or kinked or _precision(_eps(at[0], scale)) != "float32":
                break
            levels.append(at[0])
        if len(levels) == 3 and max(levels) <= 4.0 * min(levels):
            noise = (max(levels), True)
    if noise is None:  # not measured: rounding at float64's precision of the values seen
        return Noise(_floor(scale), scale, EPS64, "float64", "flat")
    level = max(noise[0], _floor(scale))
    eps = _eps(level, scale)
    return Noise(level, scale, eps, _precision(eps), None if noise[1] else "unsettled")


def _eps(level: float, scale: float) -> float:
    return max(EPS64, 3.0 * level / scale) if scale > 0 else EPS64


def _window(
    ev: Evaluator,
    work: FloatArray,
    f0: float,
    u: Direction,
    scale: float,
    deltas: tuple[float, ...] = DELTAS,
) -> tuple[tuple[float, bool] | None, float, float, bool]:
    """The noise level along ``u`` and whether it settled (see :func:`noise_level`), trying
    the moves ``deltas`` in turn; the largest ``|f|`` seen; the last move tried; and whether
    the settled window's scatter is one spike (see :func:`spike`)."""
    todo = list(deltas)
    bounds: list[float] = []
    tried = 0
    while todo and tried < 4:
        delta = todo.pop(0)
        tried += 1
        vals = ev.along(work, [(u, s * delta) for s in range(1, POINTS + 1)])
        if not np.isfinite(vals).all():
            if delta > 1e-10:
                todo.insert(0, delta * 1e-3)
            continue
        scale = max(scale, float(np.max(np.abs(vals))))
        found = noise_level(vals) if np.unique(vals).size > 2 else None
        if found is None:
            continue
        if found[1]:
            return found, scale, delta, spike(vals)
        bounds.append(found[0])
        if delta > 1e-9:
            todo.insert(0, delta * 1e-2)
    return ((min(bounds), False) if bounds else None), scale, delta, False


def spike(values: FloatArray) -> bool:
    """Whether ``values`` look like a smooth curve broken by kinks: at least three of their
    second differences agree closely (a piecewise-quadratic curve's are equal between kinks)
    while another is far off (a slope jump crossed between two points). Rounding and noise
    scatter every second difference alike, with no such cluster; a float32 part rounds to a
    grid, and its second differences sit whole multiples of one power of two apart."""
    v = np.asarray(values, dtype=np.float64)
    d2 = np.diff(v, 2)
    if d2.size < 4:
        return False
    floor = 8.0 * EPS64 * float(np.max(np.abs(v)))
    for c in d2:
        off = np.abs(d2 - c)
        tol = 0.01 * abs(float(c)) + floor
        far = off > 30.0 * tol
        if np.count_nonzero(off <= tol) >= 3 and far.any():
            return not _on_a_grid(off[far])
    return False


def _on_a_grid(offsets: FloatArray) -> bool:
    """Whether ``offsets`` (positive) are whole multiples of one power of two, to 2 %: the
    steps of a float32 part's rounding grid (of whatever size its value has)."""
    p = 2.0 ** math.floor(math.log2(float(np.min(offsets))))
    for _ in range(4):
        ratio = offsets / p
        if np.all(np.abs(ratio - np.round(ratio)) <= 0.02):
            return True
        p /= 2.0
    return False


def _floor(scale: float) -> float:
    """A quarter ulp of the largest value seen, and never zero: an estimate of zero error would
    make any difference, however tiny, look like a bug."""
    return max(0.25 * EPS64 * scale, TINY)
