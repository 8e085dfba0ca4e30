"""Process-wide settings: the checking mode, from the environment, ``configure()`` and ``debug()``.

Precedence for the mode, highest first: a ``debug()`` context, the decorator's own ``mode=``,
``configure()``, the ``VERIGRAD_MODE`` environment variable (read once, at import), the default
``"sample"``.
"""

from __future__ import annotations

import contextvars
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from ._typing import MODES, Mode
from .exceptions import InvalidArgumentError, VerigradWarning

__all__ = ["Settings", "configure", "current_mode", "debug", "get_settings", "reset_defaults"]

ENV_MODE = "VERIGRAD_MODE"


def validate_mode(mode: object, name: str = "mode") -> Mode:
    """Return ``mode`` if it is one of "off", "sample", "debug", else raise naming ``name``."""
    if mode not in MODES:
        raise InvalidArgumentError(
            f"{name}={mode!r} is not a mode; choose one of {', '.join(map(repr, MODES))}"
        )
    return mode  # type: ignore[return-value,unused-ignore]


@dataclass(frozen=True)
class Settings:
    """Process-wide defaults. Immutable: change them with :func:`configure`."""

    mode: Mode = "sample"

    def __post_init__(self) -> None:
        validate_mode(self.mode)


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


def configure(*, mode: Mode | None = None) -> Settings:
    """Change process-wide settings; arguments left as None keep their value.

    Args:
        mode: ``"off"`` (decorated functions only call through), ``"sample"`` (check on the
            schedule each decorator sets: ``first``, ``every``, ``sample_rate``) or ``"debug"``
            (check every call).

    Returns:
        The new settings.
    """
    settings = _HOLDER.settings
    if mode is not None:
        settings = replace(settings, mode=validate_mode(mode))
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
