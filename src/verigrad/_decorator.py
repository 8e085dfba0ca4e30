"""``@verified_gradient``: one closure around a gradient function that checks the calls its
policy selects (by default the first call, then within 5 % of the wall time)."""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import itertools
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, overload

import wrapt

from . import _config
from ._arrays import COPY_MAX
from ._binding import Binder, snapshot, validate_point
from ._config import validate_mode, validate_on_failure
from ._options import CheckConfig
from ._policy import (
    DEFAULT_BUDGET,
    DEFAULT_FIRST,
    Policy,
    Rotation,
    locked,
    validate_budget,
    validate_schedule,
)
from ._reporting import report
from ._typing import Epsilon, Method, Mode, OnFailure
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

__all__ = [
    "CheckStats",
    "GradientChecker",
    "GradientDecorator",
    "Rotation",
    "VerifiedClassMethod",
    "VerifiedFunction",
    "VerifiedStaticMethod",
    "verified_gradient",
]

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
    """The decorator's options, validated: when and what to check, and how (``check``).

    ``on_failure`` and ``rtol`` are None when the decorator was not given them: a checked call
    then takes them from :func:`verigrad.configure` (``check.rtol`` holds the built-in default).
    """

    loss: Callable[..., Any] | str
    wrt: int | str | tuple[int | str, ...]
    sample_rate: float | None
    every: int | None
    first: int | None
    seed: int | None
    mode: Mode | None
    on_failure: OnFailure | None
    budget: float | None
    check: CheckConfig
    rtol: float | None = None


class GradientChecker:
    """Per-function state and logic behind ``@verified_gradient``: reached as ``fn.verigrad``.

    Holds the call counter, the :class:`~verigrad._policy.Policy` (when to check, which
    coordinates, the time spent), the statistics and the last result. Safe to call from
    several threads: the counter is atomic, and a lock guards the policy and the statistics
    (never the check itself, which runs on private copies).
    """

    def __init__(self, func: Any, options: CheckOptions, kind: str = "auto") -> None:
        self.options = options
        self._kind = kind
        target = _binding_target(func)
        self.function = str(getattr(target, "__qualname__", None) or _describe_callable(func))
        module = getattr(target, "__module__", None)
        #: The name warnings show: ``module.qualname``, where ``.verigrad`` can be looked up.
        self._qualified = (
            f"{module}.{self.function}"
            if isinstance(module, str) and hasattr(target, "__qualname__")
            else self.function
        )
        self._binder = Binder(func, options.wrt, options.loss, kind=kind)
        self._policy = Policy(
            first=options.first,
            every=options.every,
            sample_rate=options.sample_rate,
            budget=options.budget,
            seed=options.seed,
        )
        self._func = func
        self._lock = self._policy.lock
        self._mode = options.mode
        # Read on every call by the wrapper: kept here, not in the closure's cells, so that a
        # closure pickled by value (cloudpickle) carries nothing but the function and this
        # checker, which pickles as its options (see __reduce__).
        self._forced = _CONTEXT_MODE.get
        self._holder = _HOLDER
        #: ``options.check`` with the configured ``rtol``, and that ``rtol``: built on the
        #: first checked call that needs it, rebuilt only when the configuration changes.
        self._configured: tuple[float, CheckConfig] | None = None
        self._reset_counters()

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy in another process starts afresh: its own counters, schedule and statistics.
        # An executor belongs to the process that made it and is not carried over.
        check = dataclasses.replace(self.options.check, executor=None)
        options = dataclasses.replace(self.options, check=check)
        return (GradientChecker, (self._func, options, self._kind))

    def __copy__(self) -> GradientChecker:
        return self  # shared by every copy of the decorated function, like its code

    def __deepcopy__(self, memo: dict[int, Any]) -> GradientChecker:
        return self

    def _reset_counters(self) -> None:
        self._calls = itertools.count()
        self._next_due = self._policy.next_due
        self._checks = 0
        self._failures = 0
        self._undecided = 0
        self._max_error = 0.0
        self._last: CheckResult | None = None
        # (warning class, verdict) -> the warning filters (the list object, and its items)
        # in force when that warning was last issued; see _warn.
        self._warned: dict[tuple[type[Warning], str], tuple[object, list[Any]]] = {}

    # -- the call path ------------------------------------------------------------------------

    def _maybe_check(self, i: int, mode: str, wrapped: Any, args: Any, kwargs: Any) -> Any:
        # Decide first: only a call that will be checked pays for the snapshot below.
        trigger: str | None = locked(self._lock, self._decide, i, mode, _clock())
        if trigger is None:
            return wrapped(*args, **kwargs)
        # The point is read before the gradient function runs: the check is made where the
        # gradient was computed, even if the function then updates its argument in place (a
        # fused gradient-and-update step) or another thread writes into it (Hogwild).
        started = _clock()
        try:
            x, loss_at = self._binder.bind(None, tuple(args), dict(kwargs))
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
        try:
            # Refused before the user's gradient runs: a bool or str parameter is no point.
            validate_point(x, getattr(loss_at, "param", "x") or "x")
        except VerigradError as exc:
            _add_note(exc, f"verigrad: raised while checking call {i} of {self.function}")
            raise
        point = snapshot(x)
        prepared = _clock() - started
        gradient = wrapped(*args, **kwargs)  # training time, not check time
        started = _clock()
        # The configured defaults are read here, on a checked call only: unchecked calls never
        # look at them. The decorator's own rtol= and on_failure= win over them.
        settings = self._holder.settings
        on_failure = self.options.on_failure or settings.on_failure
        config = self._check_config(settings.rtol)
        # The check runs in a copy of this context in which checking is off: a loss that calls
        # the decorated gradient neither starts a nested check nor counts as a call, and
        # whatever happens inside, this thread's context is never changed (nothing to restore).
        result = contextvars.copy_context().run(self._check, i, point, loss_at, gradient, config)
        ended = _clock()
        partial = result.checked_indices is not None
        locked(self._lock, self._spent, i, ended - started + prepared, ended, trigger, partial)
        report(result, trigger=trigger, raises=bool(result.failed) and on_failure == "raise")
        if result.failed:
            self._fail(result, on_failure)
        elif not result.passed:
            self._warn(InconclusiveCheckWarning, result)
        return gradient

    def _check_config(self, configured_rtol: float) -> CheckConfig:
        """The check options for a check made now: the decorator's own, with the configured
        ``rtol`` when the decorator was given none."""
        check = self.options.check
        if self.options.rtol is not None or check.rtol == configured_rtol:
            return check
        cached = self._configured  # one read: another thread may replace it meanwhile
        if cached is None or cached[0] != configured_rtol:
            cached = (configured_rtol, dataclasses.replace(check, rtol=configured_rtol))
            self._configured = cached
        return cached[1]

    def _check(
        self,
        i: int,
        x: Any,
        loss_at: Callable[[Any], Any],
        gradient: Any,
        config: CheckConfig,
    ) -> CheckResult:
        """Run the check of call ``i`` with ``config``; called in a private copy of the context."""
        _CONTEXT_MODE.set("off")
        try:
            result = run_check(
                loss_at,
                x,
                self._binder.gradient(gradient, x),
                config,
                seed=None if self.options.seed is None else (self.options.seed, i),
                pick=self._policy.rotation.take,
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
        locked(self._lock, self._record, result)
        return result

    # The lock is only ever held through ``locked``: around one call, on one line, so that an
    # exception raised anywhere (a signal handler, a trace hook) cannot leave it held.

    def _decide(self, i: int, mode: str, now: float) -> str | None:
        if mode == "debug":
            if self._policy.t0 is None:
                self._policy.t0 = now
            return "debug"
        trigger = self._policy.take(i, now)
        self._next_due = self._policy.next_due
        return trigger

    def _spent(self, i: int, seconds: float, now: float, trigger: str, partial: bool) -> None:
        self._policy.spent(i, seconds, now, trigger, partial)
        self._next_due = self._policy.next_due

    def _record(self, result: CheckResult) -> None:
        self._checks += 1
        if result.failed:
            self._failures += 1
        elif not result.passed:
            self._undecided += 1
        err = result.relative_error
        if err > self._max_error or math.isnan(err):
            self._max_error = err
        # Kept between calls: nothing parameter-sized beyond a small parameter's arrays.
        self._last = result if result.size <= COPY_MAX else result.without_arrays()
        if result.verdict != "nonfinite" or result.n_evals > 1:
            self._policy.rotation.cover(result.size, result.checked_indices)

    def _fail(self, result: CheckResult, action: OnFailure) -> None:
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
        mark = locked(self._lock, self._mark_warned, key, warnings.filters)
        if mark is None:
            return
        try:
            warnings.warn(
                category(result, warning_text(result, self._qualified)),
                stacklevel=_user_stacklevel(),
            )
        except BaseException:
            # Raised (a filter made it an error): the next such check raises too.
            locked(self._lock, self._unmark_warned, key, mark)
            raise

    def _mark_warned(
        self, key: tuple[type[Warning], str], filters: list[Any]
    ) -> tuple[object, list[Any]] | None:
        """Record a warning about to be issued; None if these filters already saw it."""
        seen = self._warned.get(key)
        if seen is not None and seen[0] is filters and seen[1] == filters:
            return None
        mark = (filters, list(filters))
        self._warned[key] = mark
        return mark

    def _unmark_warned(self, key: tuple[type[Warning], str], mark: object) -> None:
        if self._warned.get(key) is mark:
            del self._warned[key]

    # -- the public face ----------------------------------------------------------------------

    @property
    def stats(self) -> CheckStats:
        """Counts so far, the largest relative error and the last result."""
        return locked(self._lock, self._stats)  # type: ignore[no-any-return]

    def _stats(self) -> CheckStats:
        return CheckStats(
            calls=_peek(self._calls),
            checks=self._checks,
            failures=self._failures,
            undecided=self._undecided,
            coverage=self._policy.rotation.coverage,
            check_time_s=self._policy.check_time,
            overhead=self._policy.overhead(_clock()),
            max_relative_error=self._max_error,
            last_result=self._last,
        )

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
        locked(self._lock, self._reset)

    def _reset(self) -> None:
        self._policy.reset()
        self._reset_counters()

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<GradientChecker {self.function}: {s.calls} calls, {s.checks} checks, "
            f"{s.failures} failures>"
        )


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


def _kind(func: Any) -> str:
    """How a callable given to the decorator receives its arguments.

    ``"method"``: its first argument is the instance (or class), as for a function written in a
    class body whose first parameter is ``self`` or ``cls``, or a classmethod; ``"function"``:
    every argument is the caller's (plain functions, staticmethods, bound methods,
    ``functools.partial`` objects, callable instances).
    """
    if isinstance(func, classmethod):
        return "method"
    if isinstance(func, staticmethod) or not inspect.isfunction(func):
        return "function"
    owner = func.__qualname__.rpartition(".")[0]
    if not owner or owner.endswith("<locals>"):
        return "function"
    params = list(inspect.signature(func).parameters.values())
    if params and params[0].name in ("self", "cls") and params[0].kind in _POSITIONAL:
        return "method"
    return "function"


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _describe_callable(func: Any) -> str:
    if isinstance(func, functools.partial):
        return f"partial({_describe_callable(func.func)})"
    name = getattr(func, "__qualname__", None)
    return str(name) if name else type(func).__qualname__


def _wrap(func: Callable[..., Any], checker: GradientChecker) -> Callable[..., Any]:
    """The decorated function: one closure for every kind of callable.

    This is the only call path. An unchecked call reads the mode (a context variable, the
    function's own mode, the process-wide one), takes the next index from an atomic counter
    and compares it with the next due index: no allocation, no random draw, no logging.
    A closure is a plain Python function: it binds as a method (``self`` arrives as the first
    argument), pickles by reference (by value under cloudpickle, carrying its checker), and
    ``copy``/``deepcopy`` return it as they return any function.
    """

    def checked(*args: Any, **kwargs: Any) -> Any:
        mode = checker._forced() or checker._mode or checker._holder.settings.mode
        if mode == "sample":
            # ``_next_due`` is read *before* the index is taken: every value it ever holds is
            # the first due index at or after some index already handed out, so it cannot lie
            # past a due index handed out later. Read after, another thread could have moved
            # it past this call's index in between, and a ``first``/``every`` check be lost.
            due = checker._next_due
            i = next(checker._calls)
            if i < due:
                return func(*args, **kwargs)
        elif mode == "off":
            return func(*args, **kwargs)
        else:
            i = next(checker._calls)
        return checker._maybe_check(i, mode, func, args, kwargs)

    if inspect.isfunction(func) or inspect.ismethod(func):
        functools.update_wrapper(checked, func)
    else:  # a partial or a callable instance: its name and docstring, never its attributes
        functools.update_wrapper(checked, func, updated=())
        checked.__name__ = checked.__qualname__ = _describe_callable(func)
    checked.verigrad = checker  # type: ignore[attr-defined]
    return checked


# -- the types a type checker sees --------------------------------------------------------------

P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
S = TypeVar("S")


class VerifiedFunction(Protocol[P, R_co]):
    """What ``@verified_gradient(...)`` returns for a function or method, for type checkers:
    a callable with the same signature and a ``.verigrad`` :class:`GradientChecker`.

    Accessed through an instance, a decorated method is a ``VerifiedFunction`` without its
    first parameter, so ``model.grad.verigrad.stats`` type-checks too.
    """

    @property
    def verigrad(self) -> GradientChecker:
        """The per-function state: statistics, last result, reset."""
        ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None, /
    ) -> VerifiedFunction[P, R_co]: ...

    @overload
    def __get__(
        self: VerifiedFunction[Concatenate[S, Q], R],
        instance: S,
        owner: type[Any] | None = None,
        /,
    ) -> VerifiedFunction[Q, R]: ...


class VerifiedStaticMethod(Protocol[P, R_co]):
    """What decorating a ``staticmethod`` object gives, for type checkers: looked up on the
    class or an instance, a :class:`VerifiedFunction` with the same signature."""

    def __get__(
        self, instance: Any, owner: type[Any] | None = None, /
    ) -> VerifiedFunction[P, R_co]: ...


class VerifiedClassMethod(Protocol[P, R_co]):
    """What decorating a ``classmethod`` object gives, for type checkers: looked up on the
    class or an instance, a :class:`VerifiedFunction` without the ``cls`` parameter."""

    def __get__(
        self, instance: Any, owner: type[Any] | None = None, /
    ) -> VerifiedFunction[P, R_co]: ...


class GradientDecorator:
    """The decorator ``verified_gradient(...)`` returns; its options are already validated."""

    __slots__ = ("_options",)

    def __init__(self, options: CheckOptions) -> None:
        self._options = options

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: staticmethod[P, R], /
    ) -> VerifiedStaticMethod[P, R]: ...

    @overload
    def __call__(self, func: classmethod[Any, P, R], /) -> VerifiedClassMethod[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> VerifiedFunction[P, R]: ...

    def __call__(self, func: Any, /) -> Any:
        """Decorate ``func``: a function, method, staticmethod, classmethod, bound method,
        ``functools.partial`` or callable instance."""
        if not callable(func) and not isinstance(func, (staticmethod, classmethod)):
            raise InvalidArgumentError(
                f"@verified_gradient decorates functions, not {type(func).__name__}"
            )
        options = self._options
        kind = _kind(func)
        target = _binding_target(func)
        if isinstance(options.loss, str):
            options = dataclasses.replace(options, loss=_loss_by_name(options.loss, func, kind))
        checker = GradientChecker(target, options, kind)
        checked = _wrap(target, checker)
        if isinstance(func, staticmethod):
            return staticmethod(checked)
        if isinstance(func, classmethod):
            return classmethod(checked)
        return checked


def _loss_by_name(name: str, func: Any, kind: str) -> Callable[..., Any] | str:
    """``loss="name"``: kept as a name for a method (looked up on each call's instance),
    resolved now for a bound method; anything else has no instance, and is refused now."""
    if kind == "method":
        return name
    if inspect.ismethod(func):
        owner = func.__self__
        try:
            resolved = getattr(owner, name)
        except AttributeError as exc:
            raise InvalidArgumentError(
                f"loss={name!r}: {type(owner).__name__} has no attribute {name!r}"
            ) from exc
        if not callable(resolved):
            raise InvalidTypeError(f"loss={name!r}: {type(owner).__name__}.{name} is not callable")
        return resolved  # type: ignore[no-any-return]
    what = _describe_callable(_binding_target(func))
    raise InvalidArgumentError(
        f"loss={name!r} names a method of the instance, but {what} is not called with one "
        f"(it is not a method taking self or cls); pass the loss function itself: "
        f"@verified_gradient(loss={name})"
    )


class _Required:
    """The default of ``loss``: says that it was not given."""

    def __repr__(self) -> str:
        return "<required>"


_REQUIRED: Any = _Required()


def verified_gradient(
    _func: None = None,
    /,
    *,
    loss: Callable[..., Any] | str = _REQUIRED,
    wrt: int | str | tuple[int | str, ...] | list[int | str] = 0,
    sample_rate: float | None = None,
    every: int | None = None,
    first: int | None = None,
    budget: float | None = None,
    seed: int | None = None,
    mode: Mode | None = None,
    on_failure: OnFailure | None = None,
    method: Method = "auto",
    epsilon: Epsilon = "auto",
    rtol: float | None = None,
    kink_fails: bool = False,
    n_directions: int = 8,
    n_coordinates: int = 32,
    directions: Literal["rademacher", "gaussian"] = "rademacher",
    vectorized: bool | Literal["vmap"] = False,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    executor: Executor | None = None,
) -> GradientDecorator:
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
    until the check ends; unchecked calls copy nothing. On a checked call the argument is
    validated first: a bool or str parameter is refused before the gradient function runs.

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
        sample_rate: probability of checking any one call, from the decorator's own
            generator (never the user's).
        every: check every ``every``-th call (calls ``every``, ``2 * every``, ...).
        first: check the first ``first`` calls.
        seed: seed of the sampling generator, for reproducible schedules.
        mode: this function's own mode (``"off"``, ``"sample"``, ``"debug"``); None follows
            :func:`verigrad.configure` and ``VERIGRAD_MODE``. It wins over
            :func:`verigrad.configure`; a :func:`verigrad.debug` block (and the pytest plugin's
            ``--verigrad=debug``, which opens one around each test) overrides it.
        on_failure: ``"raise"`` :class:`GradientMismatchError` (its message is the full
            report), ``"warn"`` with :class:`GradientMismatchWarning` (once per verdict, see
            above), or ``"log"`` only. None (the default) follows
            :func:`verigrad.configure`'s ``on_failure``, itself ``"raise"`` unless configured;
            given here, it wins over the configuration.
        method: how the numerical gradient is estimated (see :func:`check_gradient`).
        epsilon: a fixed absolute step, or ``"auto"`` (scaled to each coordinate).
        rtol: the largest relative error that passes. None (the default) follows
            :func:`verigrad.configure`'s ``rtol``, itself ``1e-5`` unless configured (the
            pytest plugin's ``--verigrad-rtol`` sets it); given here, it wins over the
            configuration. The configured value is read on each checked call, never on an
            unchecked one.
        kink_fails: treat a kink inside the stencil as a failure instead of a pass.
        n_directions, n_coordinates, directions: the size of checks of large parameters
            (see :func:`check_gradient`); the coordinates rotate through the whole parameter
            from one check to the next.
        budget: a fraction of the wall time (e.g. 0.05) that checks may take: after each
            check, the next sampled check waits until the run has spent ``1/budget - 1`` times
            that check's duration outside checks (converted into calls at the measured time
            per call), so the overhead stays near the budget as the loss gets faster or
            slower. Alone, every call is a candidate; with ``sample_rate``, the sampled calls
            are, and the budget drops those that would exceed it. ``first`` and ``every``
            checks always happen; debug mode ignores the budget. ``stats.overhead`` reports
            the fraction.

    When to check, in mode ``"sample"``: the options given are the whole schedule, and a call is
    checked when any of them selects it (``first`` or ``every`` or a sampled call that the
    budget allows). With none of ``first``, ``every``, ``sample_rate``, ``budget`` given, the
    default is ``first=1, budget=0.05``: the first call, then checks within about 5 % of the
    wall time, whatever the model's size. ``every=10`` alone checks calls 10, 20, 30, ... and
    nothing else.
        executor: spread each check's coordinates over this executor (see
            :func:`check_gradient`).
        vectorized, batch_bytes: the loss takes a batch of points stacked along a leading axis
            and returns one value per point; ``"vmap"``: a torch or JAX loss written for one
            point is mapped over batches (see :func:`check_gradient`).

    Returns:
        A :class:`GradientDecorator` for functions, methods (a first parameter named ``self``
        or ``cls``), classmethods and staticmethods (above or below them), bound methods,
        ``functools.partial`` objects and callable instances. The decorated function keeps
        its name, signature and ``__wrapped__``, and exposes its :class:`GradientChecker` as
        ``.verigrad`` (statistics in ``.verigrad.stats``); type checkers see it as a
        :class:`VerifiedFunction`, so ``grad.verigrad.stats`` type-checks.

    Raises:
        InvalidArgumentError, InvalidTypeError: at decoration time, for a bad option, a
            ``wrt`` that names no parameter, a missing ``loss``, a bare ``@verified_gradient``,
            or ``loss="name"`` on a function that is not called with an instance.
    """
    if _func is not None:
        name = getattr(_func, "__name__", "grad")
        raise InvalidArgumentError(
            "@verified_gradient needs the loss the gradient belongs to: write "
            f"@verified_gradient(loss=<your loss function>) above def {name}(...)"
        )
    if loss is _REQUIRED:
        raise InvalidArgumentError(
            "verified_gradient() needs loss=: the loss the gradient belongs to, e.g. "
            "@verified_gradient(loss=my_loss), or loss='loss' for a method of the instance"
        )
    if on_failure is not None:
        validate_on_failure(on_failure)
    budget = validate_budget(budget)
    if sample_rate is None and every is None and first is None and budget is None:
        # Nothing said about when to check: the first call, then within 5 % of the time.
        first, budget = DEFAULT_FIRST, DEFAULT_BUDGET
    options = CheckOptions(
        loss=loss,
        wrt=tuple(wrt) if isinstance(wrt, (list, tuple)) else wrt,
        sample_rate=sample_rate,
        every=every,
        first=first,
        seed=seed,
        mode=None if mode is None else validate_mode(mode),
        on_failure=on_failure,
        budget=budget,
        rtol=None if rtol is None else _config.validate_rtol(rtol),
        check=CheckConfig(
            method=method,
            epsilon=epsilon,
            rtol=_config.DEFAULT_RTOL if rtol is None else rtol,
            kink_fails=kink_fails,
            n_directions=n_directions,
            n_coordinates=n_coordinates,
            directions=directions,
            vectorized=vectorized,
            batch_bytes=batch_bytes,
            executor=executor,
        ),
    )
    # The schedule's options are validated now, not at the first call.
    validate_schedule(first=first, every=every, sample_rate=sample_rate, seed=seed)
    Binder.validate_loss(loss)
    return GradientDecorator(options)
