"""The one structlog event per check. Never configures structlog or logging.

Passing checks are logged at *info*: a check is a rare, sampled and comparatively costly event
the user asked for, and seeing that it ran (and its relative error) is the point of leaving it
on. Failures are logged at *error*, before the decorator raises or warns; checks that could
not decide ("inconclusive", "nondeterministic") at *warning*.

Internally, observers (:func:`observing`) also receive each result: the pytest plugin uses
them to fail the test that triggered a failing check. With no observer, a check costs one
extra look-up of an empty tuple.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog

from .result import CheckResult

EVENT = "gradient_check"
LOGGER_NAME = "verigrad"

_logger: Any = structlog.get_logger(LOGGER_NAME)

#: Called as ``observer(result, context)`` after each check is logged, in the checking thread.
Observer = Callable[[CheckResult, Mapping[str, Any]], None]

#: The registered observers; replaced whole under the lock, so ``report`` reads it lock-free.
_observers: tuple[Observer, ...] = ()
_observers_lock = threading.Lock()


@contextmanager
def observing(observer: Observer) -> Iterator[None]:
    """Call ``observer(result, context)`` for every check reported inside the ``with`` block.

    Process-wide: checks made by any thread while the block is open are observed. Observers
    run in the checking thread, after the event is logged and before the decorator applies
    ``on_failure``; they must be quick and must not raise. Registering the same observer twice
    calls it twice; each block removes its own registration.
    """
    global _observers
    with _observers_lock:
        _observers = (*_observers, observer)
    try:
        yield
    finally:
        with _observers_lock:
            rest = list(_observers)
            # The last registration of this observer: blocks nest, so it is this block's.
            for i in range(len(rest) - 1, -1, -1):
                if rest[i] == observer:  # bound methods are equal, not identical
                    del rest[i]
                    break
            _observers = tuple(rest)


def report(result: CheckResult, *, raises: bool = False, **context: Any) -> None:
    """Log ``result`` as one ``gradient_check`` event with ``context`` added.

    Observers also learn whether the caller is about to raise the failure (``raises``).
    """
    fields = result.to_event()
    head: dict[str, Any] = {k: fields.pop(k) for k in ("function", "call_index") if k in fields}
    fields = {**head, **context, **fields}
    if result.passed:
        _logger.info(EVENT, **fields)
    elif result.failed:
        _logger.error(EVENT, **fields)
    else:
        _logger.warning(EVENT, **fields)
    if _observers:
        observed = {**context, "raises": raises}
        for observer in _observers:
            observer(result, observed)
