"""The policy layer: when to check a decorated function, which coordinates, and at what cost.

:class:`Policy` is the one interface the decorator talks to. Behind it, the
:class:`Schedule` turns ``first``, ``every`` and ``sample_rate`` into "the next call index that
is due for a check", so that an unchecked call costs one integer comparison (random gaps for
sampling are drawn only when a sampled check happens, from the schedule's own generator); the
:class:`Budget` keeps checks to a share of the wall time; the :class:`Rotation` hands out the
coordinates of partial checks.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .exceptions import InvalidArgumentError, InvalidTypeError

NEVER = sys.maxsize


def locked(lock: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` holding ``lock``: taken, called and released on one line, so that no
    line event (where a trace hook can raise) falls between taking and releasing it, and an
    exception raised inside ``fn`` releases it as any ``with`` does."""
    with lock: return fn(*args)  # noqa: E701  # fmt: skip


def validate_schedule(*, first: object, every: object, sample_rate: object, seed: object) -> None:
    """Raise naming the option unless each of them is valid (None: not given)."""
    _count(first, "first")
    _count(every, "every")
    if sample_rate is not None:
        _rate(sample_rate)
    _seed(seed)


def _seed(seed: object) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise InvalidTypeError(f"seed must be an int or None, not {type(seed).__name__}")
    return None if seed is None else int(seed)


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
        self.seed = _seed(seed)
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

    def next_due_from(self, i: int, sampled: bool = True) -> int:
        """The smallest index ``>= i`` that is due (for ``first`` and ``every`` alone, when
        ``sampled`` is false)."""
        if i < self.first:
            return i
        due = NEVER
        if sampled:
            due = self.next_sample if self.next_sample >= i else i
        if self.every is not None:
            due = min(due, i + (-(i + 1)) % self.every)
        return due

    def exact_reason(self, i: int) -> str | None:
        """``"first"`` or ``"every"`` if call ``i`` is due for that reason, else None."""
        if i < self.first:
            return "first"
        if self.every is not None and (i + 1) % self.every == 0:
            return "every"
        return None

    def draw(self, i: int) -> None:
        """Call ``i`` took the pending sample: draw the gap to the next one."""
        self.next_sample = i + self._gap()

    def take(self, i: int) -> str | None:
        """Decide for call ``i`` and advance the schedule; return why it is checked, or None.

        The reason is ``"first"``, ``"every"`` or ``"sample"``. A sample that came due while
        checking was off, or was overtaken by another thread's call, is taken by the next call
        that gets here.
        """
        reason = self.exact_reason(i)
        if i >= self.next_sample:
            reason = reason or "sample"
            self.draw(i)
        self.next_due = self.next_due_from(i + 1)
        return reason


#: What the budget expects the second check of a run to cost, in units of the first: for a
#: check of every coordinate, and for a partial one (random directions and a few coordinates,
#: whose later checks grow less: 1.4x on the softmax classifier, measured).
FIRST_GROWTH = 3.0
FIRST_GROWTH_PARTIAL = 1.5


class Budget:
    """A cap on the share of wall time that checks take: the time policy.

    After a check that took ``c`` seconds, the next sampled check may start once the run has
    spent ``c (1/b - 1)`` more seconds outside checks, and once all checks so far plus one more
    of ``c`` would take at most the fraction ``b`` of the wall time since the first check: the
    share stays at most ``b`` whenever a check ends, as long as checks cost what the last one
    did. After the run's first check, the next one is expected to cost ``FIRST_GROWTH`` times
    as much (``FIRST_GROWTH_PARTIAL`` for a partial check): the first check is made at the
    starting point, and a full check later in a run takes a closer look at coordinates whose
    derivatives have shrunk (three to four times the evaluations on a small network,
    measured). That wait is turned into a number of calls at the time per call measured so
    far, so the unchecked path stays one integer comparison; when that call comes and the
    clock says it is still too early, the check is pushed back again.

    Not thread-safe by itself: :class:`Policy` calls it under its lock.
    """

    __slots__ = ("_allowed_at", "_checks", "_mark", "_rate", "fraction", "next_allowed")

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.reset()

    def reset(self) -> None:
        """Forget all timing: the next call may be checked."""
        self.next_allowed = 0  # the first call index the budget lets a sampled check have
        self._allowed_at = 0.0  # the time from which it does
        self._mark = (0, 0.0)  # (call index, time) at the end of the last sampled check
        self._rate = 0.0  # seconds per call between the last two checks
        self._checks = 0  # checks spent so far

    def allows(self, i: int, now: float, t0: float, check_time: float) -> bool:
        """Whether call ``i`` may have a sampled check now; if not, push the next one back."""
        if now >= self._allowed_at:
            return True
        self._defer(i, now, t0, check_time)
        return False

    def spent(
        self,
        i: int,
        seconds: float,
        now: float,
        t0: float,
        check_time: float,
        growth: float = FIRST_GROWTH,
    ) -> None:
        """Call ``i``'s check took ``seconds`` (ending ``now``): schedule the next one.

        ``check_time`` (this check included) is all checks' time since ``t0``. The next check
        waits ``seconds (1/b - 1)`` after this one, and until the run's total would stay
        within the fraction ``b`` were it to cost as much as this one did (``growth`` times
        as much after the first check): the first check of a run, which no budget
        allowed, is paid back too, and a long pause without calls earns no burst of checks
        afterwards.
        """
        b = self.fraction
        self._checks += 1
        expected = seconds * (growth if self._checks == 1 else 1.0)
        self._allowed_at = max(
            now + seconds * (1.0 / b - 1.0),
            t0 + (check_time + expected) / b - expected,
        )
        if i > self._mark[0]:
            # Training since the last check: up to this check.
            self._rate = (now - seconds - self._mark[1]) / (i - self._mark[0])
        self._mark = (i, now)
        self._defer(i, now, t0, check_time)

    def _defer(self, i: int, now: float, t0: float, check_time: float) -> None:
        # Calls until the budget allows the next check, at the time per call measured so far;
        # an estimate, so the check is re-examined (and deferred again) when it comes due. The
        # gap never exceeds the calls seen so far: early on the rate is barely measured.
        if i > self._mark[0]:  # the rate since the last check: follows a loss that changes speed
            per_call = (now - self._mark[1]) / (i - self._mark[0])
        elif self._rate > 0:  # right after a check: the rate between the last two checks
            per_call = self._rate
        else:
            per_call = max(now - t0 - check_time, 0.0) / (i + 1)
        wait = max(self._allowed_at - now, 0.0)
        gap = max(1, math.ceil(wait / per_call)) if per_call > 0 else 1
        self.next_allowed = i + min(gap, i + 1)


class Rotation:
    """Hands out coordinates for subset checks: a seeded order, consumed without repeats, a
    fresh one for each pass; and records how many coordinates have been checked.

    The order of a pass is ``k -> (a k + b) mod n`` with ``a`` coprime to ``n``: every
    coordinate once per pass, spread over the parameter, kept in two integers (a permutation
    of a million coordinates would keep 8 MB alive between checks). What has been checked is
    one bit per coordinate.

    Thread-safe: checks running at once in several threads take disjoint coordinates.
    """

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)
        self._n = 0
        self._a = 1
        self._b = 0
        self._next = 0
        self._bits = np.zeros(0, dtype=np.uint8)
        self._size = 0
        self._count = 0

    def take(self, n: int, m: int) -> np.ndarray:
        """The next ``m`` coordinates of ``n`` in this pass's order."""
        return locked(self._lock, self._take, n, m)  # type: ignore[no-any-return]

    def _take(self, n: int, m: int) -> np.ndarray:
        picked: list[np.ndarray] = []
        while m > 0 and n > 0:
            if self._n != n or self._next >= n:
                self._n, self._next = n, 0
                self._a = self._coprime(n)
                self._b = int(self._rng.integers(n))
            k = np.arange(self._next, min(self._next + m, n), dtype=np.int64)
            chunk = ((self._a * k + self._b) % n).astype(np.intp)
            self._next += chunk.size
            picked.append(chunk)
            m -= chunk.size
        return np.unique(np.concatenate(picked)) if picked else np.empty(0, dtype=np.intp)

    def _coprime(self, n: int) -> int:
        while True:
            a = int(self._rng.integers(1, n)) if n > 2 else 1
            if math.gcd(a, n) == 1:
                return a

    def cover(self, n: int, indices: np.ndarray | None) -> None:
        """Record a check of ``indices`` (None: all ``n`` coordinates)."""
        locked(self._lock, self._cover, n, indices)

    def _cover(self, n: int, indices: np.ndarray | None) -> None:
        if self._size != n:
            self._bits = np.zeros((n + 7) // 8, dtype=np.uint8)
            self._size, self._count = n, 0
        if indices is None:
            self._bits[:] = 0xFF
            self._count = n
            return
        idx = np.unique(np.asarray(indices, dtype=np.intp).reshape(-1))
        byte, bit = idx >> 3, (1 << (idx & 7)).astype(np.uint8)
        self._count += int(np.count_nonzero((self._bits[byte] & bit) == 0))
        np.bitwise_or.at(self._bits, byte, bit)

    @property
    def coverage(self) -> float:
        """The fraction of coordinates checked at least once (0.0 before any check)."""
        return self._count / self._size if self._size else 0.0


#: The schedule a decorator gets when none of ``first``, ``every``, ``sample_rate`` and
#: ``budget`` is given: the first call, then as often as 5 % of the wall time allows.
DEFAULT_FIRST = 1
DEFAULT_BUDGET = 0.05


def validate_budget(value: object) -> float | None:
    """Return ``value`` as a fraction in (0, 1), or None; else raise naming ``budget``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidTypeError(f"budget must be a number or None, not {type(value).__name__}")
    fraction = float(value)
    if not (0.0 < fraction < 1.0):
        raise InvalidArgumentError(
            f"budget={value!r}: the fraction of time for checks must lie in (0, 1)"
        )
    return fraction


class Policy:
    """Every decision of one decorated function about checking, behind one interface.

    - *when*: :class:`Schedule` (``first``, ``every``, ``sample_rate``) and :class:`Budget`
      (the share of wall time). ``first`` and ``every`` checks always happen; sampled checks
      come from ``sample_rate``, or from every call when only a budget is given, and the budget
      then drops those that would exceed it.
    - *which coordinates*: :class:`Rotation`, for checks of large parameters.
    - *what it cost*: the time spent in checks since the first checked call.

    The decorator reads :attr:`next_due` without a lock on every call (one comparison), and
    calls :meth:`take` and :meth:`spent` under :attr:`lock`.
    """

    def __init__(
        self,
        *,
        first: int | None,
        every: int | None,
        sample_rate: float | None,
        budget: float | None,
        seed: int | None,
    ) -> None:
        self.budget = None if budget is None else Budget(budget)
        if sample_rate is None:
            sample_rate = 1.0 if budget is not None else 0.0
        self.schedule = Schedule(sample_rate=sample_rate, every=every, first=first, seed=seed)
        self.seed = seed
        self.lock = threading.Lock()
        self._start()

    def reset(self) -> None:
        """Start over: no calls seen, the generators re-seeded, no time spent."""
        self.schedule.reset()
        if self.budget is not None:
            self.budget.reset()
        self._start()

    def _start(self) -> None:
        self.rotation = Rotation(self.seed)
        self.t0: float | None = None  # when the first checked call started
        self.check_time = 0.0
        self.next_due = self._next_due_from(0)

    def _next_due_from(self, i: int) -> int:
        schedule = self.schedule
        exact = schedule.next_due_from(i, sampled=False)
        sampled = max(schedule.next_sample, i)
        if self.budget is not None:
            sampled = max(sampled, self.budget.next_allowed)
        return min(exact, sampled)

    def take(self, i: int, now: float) -> str | None:
        """Decide for call ``i`` (made at ``now``) and advance: why it is checked, or None."""
        if self.t0 is None:
            self.t0 = now
        schedule = self.schedule
        reason = schedule.exact_reason(i)
        if i >= schedule.next_sample and (
            self.budget is None
            or (
                i >= self.budget.next_allowed
                and self.budget.allows(i, now, self.t0, self.check_time)
            )
        ):
            schedule.draw(i)
            reason = reason or "sample"
        self.next_due = self._next_due_from(i + 1)
        return reason

    def spent(
        self, i: int, seconds: float, now: float, trigger: str, partial: bool = False
    ) -> None:
        """Call ``i``'s check (``trigger`` said why; ``partial``: of a subset of coordinates)
        took ``seconds``, ending ``now``."""
        if self.t0 is None:
            self.t0 = now - seconds
        self.check_time += seconds
        if self.budget is not None and trigger != "debug":
            growth = FIRST_GROWTH_PARTIAL if partial else FIRST_GROWTH
            self.budget.spent(i, seconds, now, self.t0, self.check_time, growth)
            self.next_due = self._next_due_from(i + 1)

    def overhead(self, now: float) -> float:
        """The time spent in checks as a fraction of the wall time since the first check."""
        if self.t0 is None:
            return 0.0
        wall = now - self.t0
        return self.check_time / wall if wall > 0 else 0.0
