"""Process-wide settings: the checking mode and the decorator defaults, from the environment,
``configure()`` and ``debug()``.

Precedence for the mode, highest first: a ``debug()`` context, the decorator's own ``mode=``,
``configure()``, the ``VERIGRAD_MODE`` environment variable (read once, at import), the default
``"sample"``. A ``debug()`` block is the only thing that outranks a decorator's own ``mode=``.

Precedence for the decorator defaults ``rtol`` and ``on_failure``: the decorator's own
argument, else ``configure()``, else the built-in default (``1e-5``, ``"raise"``). They are read
when a call is checked, so ``configure()`` also changes functions decorated before it.
"""

from __future__ import annotations

import contextvars
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from numbers import Real
from typing import Any

from ._typing import MODES, ON_FAILURE, Mode, OnFailure
from .exceptions import InvalidArgumentError, InvalidTypeError, VerigradWarning

__all__ = ["Settings", "configure", "current_mode", "debug", "get_settings", "reset_defaults"]

ENV_MODE = "VERIGRAD_MODE"


def validate_mode(mode: object, name: str = "mode") -> Mode:
    """Return ``mode`` if it is one of "off", "sample", "debug", else raise naming ``name``."""
    if mode not in MODES:
        raise InvalidArgumentError(
            f"{name}={mode!r} is not a mode; choose one of {', '.join(map(repr, MODES))}"
        )
    return mode  # type: ignore[return-value,unused-ignore]


def validate_on_failure(on_failure: object) -> OnFailure:
    """Return ``on_failure`` if it is one of "raise", "warn", "log", else raise naming it."""
    if on_failure not in ON_FAILURE:
        raise InvalidArgumentError(
            f"on_failure={on_failure!r}; choose one of {', '.join(map(repr, ON_FAILURE))}"
        )
    return on_failure  # type: ignore[return-value,unused-ignore]


def validate_rtol(rtol: object) -> float:
    """Return ``rtol`` as a float if it is a number in (0, 1], else raise naming it.

    The same rule and messages as the check options' own validation, without importing numpy
    (numpy's scalars are :class:`numbers.Real`)."""
    if isinstance(rtol, bool) or not isinstance(rtol, Real):
        raise InvalidTypeError(f"rtol must be a number, not {type(rtol).__name__}")
    value = float(rtol)
    if not (0.0 < value <= 1.0):
        raise InvalidArgumentError(
            f"rtol={rtol!r}: the relative-error threshold must lie in (0, 1]"
        )
    return value


#: The built-in decorator defaults, used when neither the decorator nor ``configure`` sets them.
DEFAULT_RTOL = 1e-5
DEFAULT_ON_FAILURE: OnFailure = "raise"


@dataclass(frozen=True)
class Settings:
    """Process-wide defaults. Immutable: change them with :func:`configure`.

    Attributes:
        mode: the checking mode of decorated functions without their own ``mode=``.
        rtol: the relative-error threshold of decorated functions without their own ``rtol=``.
        on_failure: what a failed check of a decorated function without its own
            ``on_failure=`` does: ``"raise"``, ``"warn"`` or ``"log"``.
    """

    mode: Mode = "sample"
    rtol: float = DEFAULT_RTOL
    on_failure: OnFailure = DEFAULT_ON_FAILURE

    def __post_init__(self) -> None:
        validate_mode(self.mode)
        object.__setattr__(self, "rtol", validate_rtol(self.rtol))
        validate_on_failure(self.on_failure)


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    """Settings as the environment asks; an invalid value warns and falls back to the default."""
    raw = environ.get(ENV_MODE)
    if raw is None or raw.strip() == "":
        return Settings()
    mode = raw.strip().lower()
    if mode not in MODES:
        warnings.warn(
            f"{ENV_MODE}={raw!r} is not a mode ({', '.join(MODES)}); using 'sample'",
            VerigradWarning,
            stacklevel=2,
        )
        return Settings()
    return Settings(mode=mode)  # type: ignore[arg-type,unused-ignore]


class _Holder:
    """Mutable cell for the current settings; swapped whole, so readers never see a mix."""

    __slots__ = ("env", "settings")

    def __init__(self, settings: Settings) -> None:
        self.env = settings
        self.settings = settings


_HOLDER = _Holder(settings_from_env(os.environ))
#: The mode forced by the innermost ``debug()`` context of this thread or task, if any.
_CONTEXT_MODE: contextvars.ContextVar[Mode | None] = contextvars.ContextVar(
    "verigrad_mode", default=None
)


class Unchecked:
    """``task(*args)`` with checking off, in a private copy of the worker's context.

    The check runner hands its executor tasks wrapped in this: a loss that calls a decorated
    gradient on a pool thread or another process neither starts a nested check (which, in
    debug mode, would wait on the same pool: a deadlock) nor counts as a call, as on the
    caller's thread. Picklable when ``task`` is.
    """

    __slots__ = ("task",)

    def __init__(self, task: Callable[..., Any]) -> None:
        self.task = task

    def __call__(self, *args: Any) -> Any:
        return contextvars.copy_context().run(self._run, *args)

    def _run(self, *args: Any) -> Any:
        _CONTEXT_MODE.set("off")
        return self.task(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Unchecked, (self.task,))


def get_settings() -> Settings:
    """The process-wide settings in force now (ignoring any ``debug()`` context)."""
    return _HOLDER.settings


def configure(
    *,
    mode: Mode | None = None,
    rtol: float | None = None,
    on_failure: OnFailure | None = None,
) -> Settings:
    """Change process-wide settings; arguments left as None keep their value.

    Every argument is validated before anything changes: a bad value raises
    :class:`InvalidArgumentError` or :class:`InvalidTypeError` naming the argument, and leaves
    the settings as they were.

    Args:
        mode: ``"off"`` (decorated functions only call through), ``"sample"`` (check on the
            schedule each decorator sets: ``first``, ``every``, ``sample_rate``) or ``"debug"``
            (check every call). A decorator's own ``mode=`` wins over it; only a
            :func:`debug` block outranks a decorator's own ``mode=``.
        rtol: the relative-error threshold, in (0, 1], of decorated functions declared without
            ``rtol=`` (built-in default ``1e-5``). A decorator's own ``rtol=`` wins.
        on_failure: what a failed check of a decorated function declared without
            ``on_failure=`` does: ``"raise"`` (the built-in default), ``"warn"`` or ``"log"``.
            A decorator's own ``on_failure=`` wins.

    The decorator defaults are read when a call is checked: they apply to functions decorated
    before the call too, and unchecked calls never read them.

    Returns:
        The new settings.
    """
    changes: dict[str, Any] = {}
    if mode is not None:
        changes["mode"] = validate_mode(mode)
    if rtol is not None:
        changes["rtol"] = validate_rtol(rtol)
    if on_failure is not None:
        changes["on_failure"] = validate_on_failure(on_failure)
    settings = replace(_HOLDER.settings, **changes) if changes else _HOLDER.settings
    _HOLDER.settings = settings
    return settings


def reset_defaults() -> Settings:
    """Undo :func:`configure`: back to the environment's settings, or the built-in defaults."""
    _HOLDER.settings = _HOLDER.env
    return _HOLDER.settings


def current_mode(override: Mode | None = None) -> Mode:
    """The mode a decorated function would use now; ``override`` stands for its own ``mode=``."""
    forced = _CONTEXT_MODE.get()
    if forced is not None:
        return forced
    if override is not None:
        return override
    return _HOLDER.settings.mode


@contextmanager
def debug(enabled: bool = True) -> Iterator[None]:
    """Check every call of every decorated gradient inside the ``with`` block.

    The effect holds for the current thread or asyncio task only (it lives in a context
    variable), nests, and ends with the block, also when it raises. ``debug(False)`` inside a
    debug block turns forcing off again for an inner block.
    """
    # Set inside the ``try``: an exception arriving at any line (a signal, a trace hook) finds
    # the context either untouched or restored.
    token: contextvars.Token[Mode | None] | None = None
    try:
        token = _CONTEXT_MODE.set("debug" if enabled else None)
        yield
    finally:
        if token is not None:
            _CONTEXT_MODE.reset(token)
