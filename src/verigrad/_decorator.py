"""``@verified_gradient``: a wrapt wrapper that checks a sampled fraction of gradient calls."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import itertools
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import wrapt

from . import _config
from ._binding import Binder, snapshot
from ._config import validate_mode
from ._options import CheckConfig
from ._policy import Schedule
from ._reporting import report
from ._typing import ON_FAILURE, Epsilon, Method, Mode, OnFailure
from .check import run_check
from .estimators import DEFAULT_BATCH_BYTES, _add_note
from .exceptions import (
    GradientMismatchError,
    GradientMismatchWarning,
    InconclusiveCheckWarning,
    InvalidArgumentError,
    InvalidTypeError,
    VerigradError,
    warning_text,
)
from .result import CheckResult

__all__ = ["CheckStats", "GradientChecker", "verified_gradient"]

F = TypeVar("F", bound=Callable[..., Any])

#: The context's forced mode: "debug" inside ``debug()``, and "off" while this thread or task
#: runs a check, so that a loss calling a decorated gradient neither starts a nested check
#: (that would recurse, and cost 2n checks per check) nor counts as a call.
_CONTEXT_MODE = _config._CONTEXT_MODE
#: The clock of the overhead budget (a module attribute, so tests can drive it).
_clock = time.perf_counter
_HOLDER = _config._HOLDER


@dataclass(frozen=True)
class CheckStats:
    """A snapshot of one decorated function's checking so far.

    Attributes:
        calls: calls made to the decorated function with checking on (modes "sample" and
            "debug"); calls in mode "off", and calls a loss makes during a check, are not
            counted.
        checks: calls that were checked.
        failures: checks that failed (verdicts "mismatch", "nonfinite"; "kink" if kinks fail).
        coverage: the fraction of the parameter's coordinates estimated one by one in at least
            one check so far (1.0 after any full check). Checks of large parameters estimate a
            subset; successive checks rotate through all coordinates without repeats, so
            coverage reaches 1.0 after about ``n / n_coordinates`` checks.
        check_time_s: wall time spent in checks.
        overhead: ``check_time_s`` as a fraction of the wall time since the first checked call
            (training and checks together); what ``budget=`` keeps near its value.
        undecided: checks that could not decide ("inconclusive", "nondeterministic"); the
            first of each verdict also emitted an :class:`InconclusiveCheckWarning`.
        max_relative_error: the largest relative error seen (``inf`` after a non-finite check,
            0.0 before any check).
        last_result: the most recent :class:`CheckResult`, or None.
    """

    calls: int
    checks: int
    failures: int
    max_relative_error: float
    last_result: CheckResult | None
    undecided: int = 0
    coverage: float = 0.0
    check_time_s: float = 0.0
    overhead: float = 0.0


@dataclass(frozen=True)
class CheckOptions:
    """The decorator's options, validated: when and what to check, and how (``check``)."""

    loss: Callable[..., Any] | str
    wrt: int | str | tuple[int | str, ...]
    sample_rate: float
    every: int | None
    first: int | None
    seed: int | None
    mode: Mode | None
    on_failure: OnFailure
    budget: float | None
    check: CheckConfig


class GradientChecker:
    """Per-function state and logic behind ``@verified_gradient``: reached as ``fn.verigrad``.

    Holds the call counter, the sampling schedule, the statistics and the last result. Safe to
    call from several threads: the counter is atomic, and a lock guards the schedule and the
    statistics (never the check itself, which runs on private copies).
    """

    def __init__(self, func: Any, options: CheckOptions) -> None:
        self.options = options
        target = _binding_target(func)
        self.function = str(getattr(target, "__qualname__", repr(func)))
        module = getattr(target, "__module__", None)
        #: The name warnings show: ``module.qualname``, where ``.verigrad`` can be looked up.
        self._qualified = (
            f"{module}.{self.function}"
            if isinstance(module, str) and hasattr(target, "__qualname__")
            else self.function
        )
        self._binder = Binder(func, options.wrt, options.loss)
        self._schedule = Schedule(
            sample_rate=1.0 if options.budget is not None else options.sample_rate,
            every=options.every,
            first=options.first,
            seed=options.seed,
        )
        self._func = func
        self._lock = threading.Lock()
        self._mode = options.mode
        # Read on every call by the closure wrapper of plain functions: kept here, not in the
        # closure's cells, so that a closure pickled by value (cloudpickle) carries nothing
        # but the function and this checker, which pickles as its options (see __reduce__).
        self._forced = _CONTEXT_MODE.get
        self._holder = _HOLDER
        self._reset_counters()

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy in another process starts afresh: its own counters, schedule and statistics.
        # An executor belongs to the process that made it and is not carried over.
        check = dataclasses.replace(self.options.check, executor=None)
        return (GradientChecker, (self._func, dataclasses.replace(self.options, check=check)))

    def _reset_counters(self) -> None:
        self._calls = itertools.count()
        self._next_due = self._schedule.next_due
        self._checks = 0
        self._failures = 0
        self._undecided = 0
        self._max_error = 0.0
        self._last: CheckResult | None = None
        self._rotation = Rotation(self.options.seed)
        self._t0: float | None = None
        self._check_time = 0.0
        self._allowed_at = 0.0
        self._mark = (0, 0.0)  # (call index, time) at the end of the last check
        self._rate = 0.0  # seconds per call between the last two checks
        # (warning class, verdict) -> the warning filters (the list object, and its items)
        # in force when that warning was last issued; see _warn.
        self._warned: dict[tuple[type[Warning], str], tuple[object, list[Any]]] = {}

    # -- the call path ------------------------------------------------------------------------

    def __call__(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        # The hot path: an unchecked call is two lookups, an atomic count and a comparison.
        mode = _CONTEXT_MODE.get() or self._mode or _HOLDER.settings.mode
        if mode == "off":
            return wrapped(*args, **kwargs)
        # ``_next_due`` is read *before* the index is taken: every value it ever holds is the
        # first due index at or after some index already handed out, so it cannot lie past a
        # due index handed out later. Read after, another thread's ``take`` could have moved it
        # past this call's index in between, and a ``first``/``every`` check would be lost.
        due = self._next_due
        i = next(self._calls)
        if mode == "sample" and i < due:
            return wrapped(*args, **kwargs)
        return self._maybe_check(i, mode, wrapped, instance, args, kwargs)

    def _maybe_check(
        self, i: int, mode: str, wrapped: Any, instance: Any, args: Any, kwargs: Any
    ) -> Any:
        if self._t0 is None:
            self._t0 = _clock()
        # Decide first: only a call that will be checked pays for the snapshot below.
        if mode == "debug":
            trigger: str | None = "debug"
        else:
            with self._lock:
                trigger = self._schedule.take(i)
                if trigger == "sample" and self.options.budget is not None:
                    trigger = self._within_budget(i)
                self._next_due = self._schedule.next_due
        if trigger is None:
            return wrapped(*args, **kwargs)
        # The point is read before the gradient function runs: the check is made where the
        # gradient was computed, even if the function then updates its argument in place (a
        # fused gradient-and-update step) or another thread writes into it (Hogwild).
        started = _clock()
        try:
            x, loss_at = self._binder.bind(instance, tuple(args), dict(kwargs))
        except VerigradError as exc:
            error: VerigradError | None = exc
        else:
            error = None
        if error is not None:
            # A call that does not match the signature fails in the function itself first,
            # as it would undecorated (outside the handler: its error has no verigrad context);
            # otherwise the binding error is the check's.
            wrapped(*args, **kwargs)
            _add_note(error, f"verigrad: raised while checking call {i} of {self.function}")
            raise error
        point = snapshot(x)
        prepared = _clock() - started
        gradient = wrapped(*args, **kwargs)  # training time, not check time
        started = _clock()
        result = self._check(i, point, loss_at, gradient)
        self._account(i, _clock() - started, trigger, prepared)
        report(
            result,
            trigger=trigger,
            raises=bool(result.failed) and self.options.on_failure == "raise",
        )
        if result.failed:
            self._fail(result)
        elif not result.passed:
            self._warn(InconclusiveCheckWarning, result)
        return gradient

    def _check(self, i: int, x: Any, loss_at: Callable[[Any], Any], gradient: Any) -> CheckResult:
        token = _CONTEXT_MODE.set("off")
        try:
            result = run_check(
                loss_at,
                x,
                self._binder.gradient(gradient, x),
                self.options.check,
                seed=None if self.options.seed is None else (self.options.seed, i),
                pick=self._rotation.take,
                loss_name=f"loss {self._binder.loss_name}",
                param_name=getattr(loss_at, "param", "x"),
                function=self.function,
                call_index=i,
            )
        except BaseException as exc:
            # The loss (or a bad argument) raised mid-check: the caller's arrays were never
            # touched (the check works on copies); say which call the check belonged to.
            _add_note(exc, f"verigrad: raised while checking call {i} of {self.function}")
            raise
        finally:
            _CONTEXT_MODE.reset(token)
        with self._lock:
            self._checks += 1
            if result.failed:
                self._failures += 1
            elif not result.passed:
                self._undecided += 1
            err = result.relative_error
            if err > self._max_error or math.isnan(err):
                self._max_error = err
            self._last = result
            if result.verdict != "nonfinite" or result.n_evals > 1:
                self._rotation.cover(result.size, result.checked_indices)
        return result

    def _account(self, i: int, spent: float, trigger: str, prepared: float = 0.0) -> None:
        """Add a check's time; with a budget, schedule the next sampled check from it.

        ``spent`` is the check itself, just finished; ``prepared`` the binding and snapshot
        taken before the gradient call (whose own time is training time).

        To keep checking at a fraction ``b`` of the wall time, a check that took ``c`` seconds
        must be followed by ``c (1/b - 1)`` seconds of training before the next one; at the
        mean time per call measured so far that is a number of calls.
        """
        with self._lock:
            self._check_time += spent + prepared
            budget = self.options.budget
            if budget is None or trigger == "debug" or self._t0 is None:
                return
            now = _clock()
            self._allowed_at = now + (spent + prepared) * (1.0 / budget - 1.0)
            if i > self._mark[0]:
                # Training since the last check: up to this check, less the snapshot's time.
                training = now - spent - prepared - self._mark[1]
                self._rate = training / (i - self._mark[0])
            self._mark = (i, now)
            self._defer_to(i, now)

    def _within_budget(self, i: int) -> str | None:
        """A sampled check comes due: take it if the budget allows, else push it back."""
        now = _clock()
        if now >= self._allowed_at:
            return "sample"
        self._defer_to(i, now)
        return None

    def _defer_to(self, i: int, now: float) -> None:
        # Calls until the budget allows the next check, at the time per call measured so far;
        # an estimate, so the check is re-examined (and deferred again) when it comes due. The
        # gap never exceeds the calls seen so far: early on the rate is barely measured.
        if i > self._mark[0]:  # the rate since the last check: follows a loss that changes speed
            per_call = (now - self._mark[1]) / (i - self._mark[0])
        elif self._rate > 0:  # right after a check: the rate between the last two checks
            per_call = self._rate
        else:
            training = max(now - (self._t0 or now) - self._check_time, 0.0)
            per_call = training / (i + 1)
        wait = max(self._allowed_at - now, 0.0)
        gap = max(1, math.ceil(wait / per_call)) if per_call > 0 else 1
        gap = min(gap, i + 1)
        self._schedule.next_sample = i + gap
        self._schedule.next_due = self._schedule.next_due_from(i + 1)
        self._next_due = self._schedule.next_due

    def _fail(self, result: CheckResult) -> None:
        action = self.options.on_failure
        if action == "raise":
            raise GradientMismatchError(result)
        if action == "warn":
            self._warn(GradientMismatchWarning, result)

    def _warn(
        self,
        category: type[InconclusiveCheckWarning | GradientMismatchWarning],
        result: CheckResult,
    ) -> None:
        """Warn about ``result`` once per warning class and verdict, pointing at the user's line.

        The message is stable (:func:`~verigrad.exceptions.warning_text`: no call index, no
        numbers), so Python's warning registry keeps one entry for it, not one per check.
        Further checks with the same verdict warn again only after the warning filters change
        (a ``warnings.catch_warnings()`` block, such as the one around each pytest test, or a
        new filter) or after :meth:`reset`; every check is still logged and counted. A warning
        that a filter turns into an error raises every time.
        """
        key = (category, result.verdict)
        filters = warnings.filters
        with self._lock:
            seen = self._warned.get(key)
            if seen is not None and seen[0] is filters and seen[1] == filters:
                return
            mark = (filters, list(filters))
            self._warned[key] = mark
        try:
            warnings.warn(
                category(result, warning_text(result, self._qualified)),
                stacklevel=_user_stacklevel(),
            )
        except BaseException:
            # Raised (a filter made it an error): the next such check raises too.
            with self._lock:
                if self._warned.get(key) is mark:
                    del self._warned[key]
            raise

    # -- the public face ----------------------------------------------------------------------

    @property
    def stats(self) -> CheckStats:
        """Counts so far, the largest relative error and the last result."""
        with self._lock:
            return CheckStats(
                calls=_peek(self._calls),
                checks=self._checks,
                failures=self._failures,
                undecided=self._undecided,
                coverage=self._rotation.coverage,
                check_time_s=self._check_time,
                overhead=self._overhead(),
                max_relative_error=self._max_error,
                last_result=self._last,
            )

    def _overhead(self) -> float:
        if self._t0 is None:
            return 0.0
        wall = _clock() - self._t0
        return self._check_time / wall if wall > 0 else 0.0

    @property
    def last_result(self) -> CheckResult | None:
        """The most recent check's result, or None before the first check."""
        return self._last

    @property
    def mode(self) -> Mode:
        """The mode this function would use for a call made now."""
        return _config.current_mode(self._mode)

    def reset(self) -> None:
        """Forget all calls and statistics, restart the sampling schedule from its seed, and
        let the next undecided or warned failed check warn again."""
        with self._lock:
            self._schedule.reset()
            self._reset_counters()

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<GradientChecker {self.function}: {s.calls} calls, {s.checks} checks, "
            f"{s.failures} failures>"
        )


class Rotation:
    """Hands out coordinates for subset checks: a seeded permutation, consumed without repeats,
    a fresh one for each pass; and records which coordinates have been checked.

    Thread-safe: checks running at once in several threads take disjoint coordinates.
    """

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)
        self._order = np.empty(0, dtype=np.intp)
        self._next = 0
        self._covered = np.zeros(0, dtype=bool)

    def take(self, n: int, m: int) -> np.ndarray:
        """The next ``m`` coordinates of ``n`` in this pass's order."""
        with self._lock:
            return self._take(n, m)

    def _take(self, n: int, m: int) -> np.ndarray:
        picked: list[np.ndarray] = []
        while m > 0:
            if self._order.size != n or self._next >= n:
                self._order = self._rng.permutation(n)
                self._next = 0
            chunk = self._order[self._next : self._next + m]
            self._next += chunk.size
            picked.append(chunk)
            m -= chunk.size
        return np.unique(np.concatenate(picked)) if picked else np.empty(0, dtype=np.intp)

    def cover(self, n: int, indices: np.ndarray | None) -> None:
        """Record a check of ``indices`` (None: all ``n`` coordinates)."""
        with self._lock:
            self._cover(n, indices)

    def _cover(self, n: int, indices: np.ndarray | None) -> None:
        if self._covered.size != n:
            self._covered = np.zeros(n, dtype=bool)
        if indices is None:
            self._covered[:] = True
        else:
            self._covered[indices] = True

    @property
    def coverage(self) -> float:
        return float(self._covered.mean()) if self._covered.size else 0.0


def _budget(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise InvalidTypeError(f"budget must be a number or None, not {type(value).__name__}")
    fraction = float(value)
    if not (0.0 < fraction < 1.0):
        raise InvalidArgumentError(
            f"budget={value!r}: the fraction of time for checks must lie in (0, 1)"
        )
    return fraction


def _peek(counter: itertools.count[int]) -> int:
    # itertools.count has no public accessor for its next value, but its repr is "count(N)";
    # reading it keeps the hot path a single atomic next() with no lock.
    return int(repr(counter)[6:-1])


def _binding_target(func: Any) -> Any:
    if isinstance(func, (staticmethod, classmethod)):
        return func.__func__
    return func


#: Directories whose frames a warning skips to reach the user's line: verigrad's and wrapt's.
_INTERNAL_DIRS: tuple[str, ...] = (
    os.path.dirname(os.path.abspath(__file__)),
    os.path.dirname(os.path.abspath(wrapt.__file__)),
)


def _user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the user's line, not at verigrad's."""
    # With a trailing separator: a sibling directory like ``verigrad_plugins/`` is user code.
    internal = tuple(os.path.join(d, "") for d in _INTERNAL_DIRS)
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(internal):
            return level
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _is_plain_function(func: Any) -> bool:
    """Whether ``func`` is a Python function defined outside any class body.

    Such a function is never bound to an instance, so a closure can wrap it: a closure call
    costs a fraction of a wrapt ``FunctionWrapper`` call. Methods, classmethods, staticmethods
    and other callables keep wrapt, which hands the wrapper the instance they are bound to.
    """
    if not inspect.isfunction(func):
        return False
    owner = func.__qualname__.rpartition(".")[0]
    return not owner or owner.endswith("<locals>")


def _checked_function(func: Callable[..., Any], checker: GradientChecker) -> Callable[..., Any]:
    """A closure with the same hot path as :meth:`GradientChecker.__call__`, for functions."""

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        mode = checker._forced() or checker._mode or checker._holder.settings.mode
        if mode == "sample":
            due = checker._next_due  # read before the index is taken: see GradientChecker.__call__
            i = next(checker._calls)
            if i < due:
                return func(*args, **kwargs)
        elif mode == "off":
            return func(*args, **kwargs)
        else:
            i = next(checker._calls)
        return checker._maybe_check(i, mode, func, None, args, kwargs)

    checked.verigrad = checker  # type: ignore[attr-defined]
    return checked


class _BoundCheckedFunction(wrapt.BoundFunctionWrapper):  # type: ignore[misc,type-arg,unused-ignore]
    @property
    def verigrad(self) -> GradientChecker:
        """The :class:`GradientChecker` of the decorated function."""
        return self._self_parent._self_checker  # type: ignore[no-any-return]

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # Like a bound method: the instance (or class), and the attribute to look up on it.
        owner = self._self_instance
        if owner is None:
            return (_by_name, (self.__module__, self.__qualname__))
        return (getattr, (owner, self.__name__))


def _by_name(module: str, qualname: str) -> Any:
    """The object a module holds under a dotted qualified name (unpickling by reference)."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class _CheckedFunction(wrapt.FunctionWrapper):  # type: ignore[misc,type-arg,unused-ignore]
    __bound_function_wrapper__ = _BoundCheckedFunction

    def __init__(self, wrapped: Any, checker: GradientChecker) -> None:
        super().__init__(wrapped, checker)
        self._self_checker = checker

    @property
    def verigrad(self) -> GradientChecker:
        """The :class:`GradientChecker` of the decorated function."""
        return self._self_checker

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # Pickled by reference, as Python pickles functions: the receiving process imports it.
        return (_by_name, (self.__module__, self.__qualname__))


def verified_gradient(
    *,
    loss: Callable[..., Any] | str,
    wrt: int | str | tuple[int | str, ...] | list[int | str] = 0,
    sample_rate: float = 0.01,
    every: int | None = None,
    first: int | None = 1,
    seed: int | None = None,
    mode: Mode | None = None,
    on_failure: OnFailure = "raise",
    method: Method = "auto",
    epsilon: Epsilon = "auto",
    rtol: float = 1e-5,
    kink_fails: bool = False,
    n_directions: int = 8,
    n_coordinates: int = 32,
    directions: Literal["rademacher", "gaussian"] = "rademacher",
    vectorized: bool = False,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    budget: float | None = None,
    executor: Executor | None = None,
) -> Callable[[F], F]:
    """Check a hand-written gradient function against finite differences of its loss.

    The decorated function is called as usual and its return value is returned unchanged (the
    same object). On the calls the schedule selects, the gradient is compared with the
    numerical gradient of ``loss`` at the same point; each check is logged as a structlog
    ``gradient_check`` event on the ``"verigrad"`` logger, and a failed check is handled as
    ``on_failure`` says.

    The point checked is the one the gradient was computed at: on a call that will be checked,
    the differentiated argument is copied *before* the function runs, and the loss is evaluated
    around that copy (the other arguments as passed). A function that updates its parameter in
    place after computing the gradient (``g = ...; w -= lr * g; return g``), or another thread
    writing into the parameter meanwhile, does not make a correct gradient fail. The cost is one
    copy of the differentiated argument (every array of a structured one) per checked call, held
    until the check ends; unchecked calls copy nothing.

    Checks that could not decide warn with :class:`InconclusiveCheckWarning`, and failures with
    ``on_failure="warn"`` with :class:`GradientMismatchWarning`; each is issued once per
    decorated function and verdict (again after the warning filters change, e.g. in each
    pytest test, or after ``.verigrad.reset()``), with a one-line message that names the
    function and the verdict; the warning's ``.result`` and the ``gradient_check`` events have
    the details. Use the usual warning filters to silence them or turn them into errors.

    Args:
        loss: the loss the gradient belongs to, called with the same arguments as the gradient
            function (the differentiated one replaced by the perturbed point). For a method,
            the name of the instance's loss method (``loss="loss"``) or a function from the
            same class body.
        wrt: the differentiated argument: a position (0 is the first argument after
            ``self``/``cls``) or a parameter name; or a tuple of them, when the gradient
            function returns a tuple with one gradient per argument. The argument may be an
            array or a structured parameter (nested dicts, lists, tuples of arrays).
        sample_rate: probability of checking any one call (default 0.01), from the decorator's
            own generator.
        every: also check every ``every``-th call.
        first: also check the first ``first`` calls (default 1: bugs often show at once).
        seed: seed of the sampling generator, for reproducible schedules.
        mode: this function's own mode (``"off"``, ``"sample"``, ``"debug"``); None follows
            :func:`verigrad.configure` and ``VERIGRAD_MODE``. A :func:`verigrad.debug` block
            overrides it.
        on_failure: ``"raise"`` :class:`GradientMismatchError` (its message is the full
            report), ``"warn"`` with :class:`GradientMismatchWarning` (once per verdict, see
            above), or ``"log"`` only.
        method: how the numerical gradient is estimated (see :func:`check_gradient`).
        epsilon: a fixed absolute step, or ``"auto"`` (scaled to each coordinate).
        rtol: the largest relative error that passes.
        kink_fails: treat a kink inside the stencil as a failure instead of a pass.
        n_directions, n_coordinates, directions: the size of checks of large parameters
            (see :func:`check_gradient`); the coordinates rotate through the whole parameter
            from one check to the next.
        budget: a fraction of the wall time (e.g. 0.05) that checks may take: the gap to the
            next sampled check is derived from the last check's duration and the measured
            time per call, instead of from ``sample_rate``, so the overhead stays near the
            budget as the loss gets faster or slower. ``first`` and ``every`` checks still
            happen; debug mode ignores the budget. ``stats.overhead`` reports the fraction.
        executor: spread each check's coordinates over this executor (see
            :func:`check_gradient`).
        vectorized, batch_bytes: the loss takes a batch of points stacked along a leading axis
            and returns one value per point (see :func:`check_gradient`).

    Returns:
        A decorator for functions, methods, classmethods and staticmethods. The decorated
        function keeps its name, signature and ``__wrapped__``, and exposes its
        :class:`GradientChecker` as ``.verigrad`` (statistics in ``.verigrad.stats``).

    Raises:
        InvalidArgumentError, InvalidTypeError: at decoration time, for a bad option or a
            ``wrt`` that names no parameter.
    """
    if on_failure not in ON_FAILURE:
        raise InvalidArgumentError(
            f"on_failure={on_failure!r}; choose one of {', '.join(map(repr, ON_FAILURE))}"
        )
    options = CheckOptions(
        loss=loss,
        wrt=tuple(wrt) if isinstance(wrt, (list, tuple)) else wrt,
        sample_rate=sample_rate,
        every=every,
        first=first,
        seed=seed,
        mode=None if mode is None else validate_mode(mode),
        on_failure=on_failure,
        budget=_budget(budget),
        check=CheckConfig(
            method=method,
            epsilon=epsilon,
            rtol=rtol,
            kink_fails=kink_fails,
            n_directions=n_directions,
            n_coordinates=n_coordinates,
            directions=directions,
            vectorized=vectorized,
            batch_bytes=batch_bytes,
            executor=executor,
        ),
    )

    def decorate(func: F) -> F:
        if not callable(func) and not isinstance(func, (staticmethod, classmethod)):
            raise InvalidArgumentError(
                f"@verified_gradient decorates functions, not {type(func).__name__}"
            )
        checker = GradientChecker(func, options)
        if _is_plain_function(func):
            return _checked_function(func, checker)  # type: ignore[return-value]
        return _CheckedFunction(func, checker)  # type: ignore[return-value]

    return decorate
