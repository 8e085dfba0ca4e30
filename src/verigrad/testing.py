"""Helpers for your own tests: see which gradient checks a block of code made.

:func:`capture_checks` is to verigrad what :func:`structlog.testing.capture_logs` is to
structlog: a context manager that yields a list, and every check made while the block runs is
appended to it as its :class:`~verigrad.CheckResult`::

    import verigrad
    from verigrad.testing import capture_checks

    def test_training_checks_its_gradient():
        with verigrad.debug(), capture_checks() as checks:
            train(steps=3)  # calls a @verified_gradient function
        assert [c.verdict for c in checks] == ["pass", "pass", "pass"]

It captures the checks that functions decorated with :func:`~verigrad.verified_gradient` make
(whatever their ``on_failure``: a check that raises is captured before it raises), in any
thread of this process, while the block is open; :func:`~verigrad.check_gradient` returns its
result to its caller instead.
Checks made in other processes (a process pool, dask workers) are not seen. Capturing changes
nothing else: the checks are still logged, warned and raised as configured. Blocks nest; each
sees the checks made while it is open.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from . import _reporting
from .result import CheckResult

__all__ = ["capture_checks"]


@contextmanager
def capture_checks() -> Iterator[list[CheckResult]]:
    """Collect every gradient check made while the ``with`` block runs.

    Yields:
        A list that fills with one :class:`~verigrad.CheckResult` per check, in the order the
        checks finished. It stays readable after the block; later checks are not added.
    """
    captured: list[CheckResult] = []

    def observe(result: CheckResult, context: Mapping[str, Any]) -> None:
        captured.append(result)  # list.append is atomic: checking threads need no lock

    with _reporting.observing(observe):
        yield captured
