"""Random directions that cost one byte per coordinate.

A check of a million parameters moves along a handful of random directions. Kept as float64
arrays, each would cost as much memory as the parameter, and every point ``x + t u`` two
passes over both. A :class:`Direction` keeps only the signs (one byte per coordinate, +-1) and a
rule for how far each coordinate moves (a function of ``x_i``), and builds points and dot
products chunk by chunk, in pieces that stay in the processor's cache.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ._typing import FloatArray

__all__ = ["CACHE_MAX", "CHUNK", "Direction", "point"]

#: Coordinates per chunk: 256 KiB of float64, a piece that stays in cache while it is built.
CHUNK = 1 << 15
#: Up to this many coordinates a direction keeps its float64 values once built (512 KiB): for
#: small parameters the passes that build each point from the signs cost more than the memory.
CACHE_MAX = 1 << 16

#: How far coordinate ``i`` moves per unit of ``t``: ``"step"``, ``max(|x_i|, 1)`` (as the
#: difference steps); ``"inside"``, ``|x_i|`` (1 where ``x_i`` is 0), which keeps a positive
#: parameter positive; ``"capped"``, ``max(|x_i|, 1)`` capped at ``100 |x_i|`` (1 at 0).
Rule = Literal["step", "inside", "capped"]


class Direction:
    """A direction ``u`` over the flat parameter: signs (or, for Gaussian directions, values)
    times a length per coordinate that follows from ``x`` by ``rule``.

    Picklable (an executor's workers build their own points from it).
    """

    __slots__ = ("_cache", "hi", "lo", "rule", "signs", "values")

    def __init__(
        self,
        signs: np.ndarray | None,
        rule: Rule,
        values: FloatArray | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        self.signs = signs
        self.rule = rule
        self.values = values
        size = (signs if signs is not None else values).size  # type: ignore[union-attr]
        #: Coordinates outside ``[lo, hi)`` do not move (the halves of a bisection).
        self.lo, self.hi = span if span is not None else (0, int(size))
        self._cache: tuple[FloatArray, FloatArray] | None = None  # (the x it was built for, u)

    @classmethod
    def random(
        cls, rng: np.random.Generator, n: int, rule: Rule, gaussian: bool = False
    ) -> Direction:
        """Random signs (or standard normal values) for ``n`` coordinates."""
        if gaussian:
            return cls(None, rule, rng.standard_normal(n))
        signs = rng.integers(0, 2, size=n, dtype=np.int8)
        signs *= 2
        signs -= 1
        return cls(signs, rule)

    def with_rule(self, rule: Rule) -> Direction:
        """The same signs with another length rule."""
        return Direction(self.signs, rule, self.values, (self.lo, self.hi))

    def within(self, lo: int, hi: int) -> Direction:
        """The same direction with only the coordinates ``lo .. hi - 1`` moving."""
        return Direction(self.signs, self.rule, self.values, (lo, hi))

    def __getstate__(self) -> tuple[np.ndarray | None, Rule, FloatArray | None, int, int]:
        return self.signs, self.rule, self.values, self.lo, self.hi

    def __setstate__(
        self, state: tuple[np.ndarray | None, Rule, FloatArray | None, int, int]
    ) -> None:
        self.signs, self.rule, self.values, self.lo, self.hi = state
        self._cache = None

    def _chunk(self, x: FloatArray, a: int, b: int, buf: FloatArray | None = None) -> FloatArray:
        """``u[a:b]`` for the flat point ``x``, written into ``buf`` (at least ``b - a`` long)
        when given: one buffer reused for every chunk of a pass."""
        size = np.abs(x[a:b], out=None if buf is None else buf[: b - a])
        if self.rule == "step":
            np.maximum(size, 1.0, out=size)
        elif self.rule == "capped":
            # In place: on a parameter of a few chunks, each temporary is a third of the
            # parameter's bytes at the check's peak.
            zero = size == 0.0
            cap = np.multiply(size, 100.0)
            np.maximum(size, 1.0, out=size)
            np.minimum(size, cap, out=size)
            del cap
            size[zero] = 1.0
        else:
            size[size == 0.0] = 1.0
        if self.values is not None:
            size *= self.values[a:b]
        else:
            assert self.signs is not None
            size *= self.signs[a:b]  # int8 +-1: a masked negation is seven times slower
        return size

    def _buffer(self) -> FloatArray:
        return np.empty(min(CHUNK, self.hi - self.lo), dtype=np.float64)

    def point(self, work: FloatArray, t: float) -> FloatArray:
        """A new array ``work + t * u``, shaped like ``work``."""
        x = work.reshape(-1)
        if x.size <= CACHE_MAX:
            cache = self._cache
            if cache is None or cache[0] is not work:
                cache = self._cache = (work, self.array(work).reshape(-1))
            moved: FloatArray = np.multiply(cache[1], t)
            moved += x
            return moved.reshape(work.shape)
        out = np.empty(work.shape, dtype=np.float64)
        flat = out.reshape(-1)
        flat[: self.lo] = x[: self.lo]
        flat[self.hi :] = x[self.hi :]
        buf = self._buffer()
        for a in range(self.lo, self.hi, CHUNK):
            b = min(a + CHUNK, self.hi)
            u = self._chunk(x, a, b, buf)
            u *= t
            np.add(x[a:b], u, out=flat[a:b])
        return out

    def dot(self, work: FloatArray, g: FloatArray) -> float:
        """``g . u`` (``g`` flat); inf, without a warning, for a gradient near 1e308."""
        x = work.reshape(-1)
        total = 0.0
        buf = self._buffer()
        with np.errstate(over="ignore", invalid="ignore"):
            for a in range(self.lo, self.hi, CHUNK):
                b = min(a + CHUNK, self.hi)
                total += float(g[a:b] @ self._chunk(x, a, b, buf))
        return total

    def array(self, work: FloatArray) -> FloatArray:
        """``u`` as a float64 array shaped like ``work`` (for the rare paths that need it)."""
        x = work.reshape(-1)
        out = np.zeros(x.size, dtype=np.float64)
        for a in range(self.lo, self.hi, CHUNK):
            b = min(a + CHUNK, self.hi)
            out[a:b] = self._chunk(x, a, b)
        return out.reshape(work.shape)


def point(work: FloatArray, u: FloatArray | Direction, t: float) -> FloatArray:
    """A new array ``work + t * u``: one allocation, whatever ``u`` is."""
    if isinstance(u, Direction):
        return u.point(work, t)
    out: FloatArray = np.multiply(u, t)
    out += work
    return out
