"""The one structlog event per check. Never configures structlog or logging.

Passing checks are logged at *info*: a check is a rare, sampled and comparatively costly event
the user asked for, and seeing that it ran (and its relative error) is the point of leaving it
on. Failures are logged at *error*, before the decorator raises or warns; checks that could
not decide ("inconclusive", "nondeterministic") at *warning*.
"""

from __future__ import annotations

from typing import Any

import structlog

from .result import CheckResult

EVENT = "gradient_check"
LOGGER_NAME = "verigrad"

_logger: Any = structlog.get_logger(LOGGER_NAME)


def report(result: CheckResult, **context: Any) -> None:
    """Log ``result`` as one ``gradient_check`` event with ``context`` added."""
    fields = result.to_event()
    head: dict[str, Any] = {k: fields.pop(k) for k in ("function", "call_index") if k in fields}
    fields = {**head, **context, **fields}
    if result.passed:
        _logger.info(EVENT, **fields)
    elif result.failed:
        _logger.error(EVENT, **fields)
    else:
        _logger.warning(EVENT, **fields)
