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

from ._evaluate import Evaluator
from ._typing import FloatArray

__all__ = ["EPS64", "PROBE_EVALS", "Noise", "measure_noise"]

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
TINY = float(np.finfo(np.float64).tiny)
#: Points on each side of x in the probe (m = 2 * HALF differences).
HALF = 4
#: Loss evaluations of the noise probe at a point where the loss behaves (one move size).
PROBE_EVALS = 2 * HALF
#: Relative moves tried, in order: a loss that does not change at one gets the next.
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
    def relative(self) -> float:
        return self.level / self.scale if self.scale > 0 else 0.0


def _precision(eps: float) -> str:
    if eps <= 1e4 * EPS64:
        return "float64"
    if EPS32 / 30.0 <= eps <= 50.0 * EPS32:
        return "float32"
    return "noisy"


def probe_direction(work: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Random signs scaled by ``|x_i|`` (by 1 where ``x_i`` is 0): every coordinate moves in
    proportion to its size, so positive parameters stay positive."""
    flat = work.reshape(-1)
    scale = np.where(flat != 0.0, np.abs(flat), 1.0)
    signs = rng.choice((-1.0, 1.0), size=flat.size)
    return (signs * scale).reshape(work.shape)


def noise_level(values: FloatArray) -> float | None:
    """Moré and Wild's estimate from values at equally spaced points, or None if unsettled."""
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
            return levels[j]
    return None


def measure_noise(ev: Evaluator, work: FloatArray, f0: float, rng: np.random.Generator) -> Noise:
    """Probe the loss along one random direction and return its noise.

    Starts with moves of 1e-6 relative and grows them 100-fold while the loss does not change
    at all; shrinks them when the loss leaves its domain. At most ``2 * HALF`` evaluations per
    move size tried; usually one size suffices.
    """
    if work.size == 0:
        return Noise(_floor(abs(f0)), abs(f0), EPS64, "float64")
    u = probe_direction(work, rng)

    def pairs_of(delta: float) -> list[tuple[FloatArray, float]]:
        return [(u, s * delta) for s in range(-HALF, HALF + 1) if s]

    cause = "flat"
    scale = abs(f0)
    deltas = list(DELTAS)
    tried = 0
    while deltas and tried < 4:
        delta = deltas.pop(0)
        tried += 1
        vals = ev.along(work, pairs_of(delta))
        if not np.isfinite(vals).all():
            cause = "domain"
            if delta > 1e-10:
                deltas = [delta * 1e-3]
            continue
        series = np.concatenate((vals[:HALF], [f0], vals[HALF:]))
        scale = max(scale, float(np.max(np.abs(series))))
        if np.unique(series).size <= 2:
            cause = "flat"
            continue
        level = noise_level(series)
        if level is None:
            cause = "unsettled"
            if delta > 1e-9:
                deltas = [delta * 1e-2]
            continue
        level = max(level, _floor(scale))
        eps = max(EPS64, 3.0 * level / scale) if scale > 0 else EPS64
        return Noise(level, scale, eps, _precision(eps), None, delta)
    # Not measured: fall back to rounding at float64's precision of the values seen.
    return Noise(_floor(scale), scale, EPS64, "float64", cause, 0.0)


def _floor(scale: float) -> float:
    """A quarter ulp of the largest value seen, and never zero: an estimate of zero error would
    make any difference, however tiny, look like a bug."""
    return max(0.25 * EPS64 * scale, TINY)
