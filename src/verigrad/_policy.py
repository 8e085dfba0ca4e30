"""When to check: the sampling schedule of one decorated function.

The schedule turns ``first``, ``every`` and ``sample_rate`` into "the next call index that is
due for a check", so that an unchecked call costs one integer comparison. Random gaps for
sampling are drawn only when a sampled check happens, from the schedule's own generator.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from .exceptions import InvalidArgumentError, InvalidTypeError

NEVER = sys.maxsize


def _count(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"{name} must be an int or None, not {type(value).__name__}")
    if value < 0 or (name == "every" and value == 0):
        low = "1" if name == "every" else "0"
        raise InvalidArgumentError(f"{name}={value!r}: must be at least {low}")
    return int(value)


def _rate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidTypeError(f"sample_rate must be a number, not {type(value).__name__}")
    rate = float(value)
    if not (0.0 <= rate <= 1.0) or math.isnan(rate):
        raise InvalidArgumentError(f"sample_rate={value!r}: must be a probability in [0, 1]")
    return rate


class Schedule:
    """Which calls of a decorated function are checked in ``"sample"`` mode.

    A call with 0-based index ``i`` is due when any of these holds:

    - ``i < first``;
    - ``every`` is set and ``(i + 1) % every == 0`` (the every-th, 2*every-th, ... call);
    - it is the next sampled call. Sampled calls form a Bernoulli process with probability
      ``sample_rate`` per call, generated as geometric gaps between successes.

    Not thread-safe by itself; the decorator holds a lock around :meth:`take`.
    """

    __slots__ = ("_rng", "every", "first", "next_due", "next_sample", "sample_rate", "seed")

    def __init__(
        self,
        *,
        sample_rate: float = 0.0,
        every: int | None = None,
        first: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.sample_rate = _rate(sample_rate)
        self.every = _count(every, "every")
        self.first = _count(first, "first") or 0
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise InvalidTypeError(f"seed must be an int or None, not {type(seed).__name__}")
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Start over as if no call had been made (the generator is re-seeded too)."""
        self._rng = np.random.default_rng(self.seed)
        gap = self._gap()
        self.next_sample = NEVER if gap == NEVER else gap - 1
        self.next_due = self.next_due_from(0)

    def _gap(self) -> int:
        if self.sample_rate <= 0.0:
            return NEVER
        if self.sample_rate >= 1.0:
            return 1
        return int(self._rng.geometric(self.sample_rate))

    def next_due_from(self, i: int) -> int:
        """The smallest index ``>= i`` that is due."""
        if i < self.first:
            return i
        due = self.next_sample if self.next_sample >= i else i
        if self.every is not None:
            due = min(due, i + (-(i + 1)) % self.every)
        return due

    def take(self, i: int) -> str | None:
        """Decide for call ``i`` and advance the schedule; return why it is checked, or None.

        The reason is ``"first"``, ``"every"`` or ``"sample"``. A sample that came due while
        checking was off, or was overtaken by another thread's call, is taken by the next call
        that gets here.
        """
        reason: str | None = None
        if i < self.first:
            reason = "first"
        elif self.every is not None and (i + 1) % self.every == 0:
            reason = "every"
        if i >= self.next_sample:
            reason = reason or "sample"
            self.next_sample = i + self._gap()
        self.next_due = self.next_due_from(i + 1)
        return reason
