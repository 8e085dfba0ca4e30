"""Exceptions and warnings raised by verigrad.

Every exception derives from :class:`VerigradError` and from the builtin it means, so
``except AssertionError`` (pytest), ``except ValueError`` and ``except TypeError`` keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .result import CheckResult

__all__ = [
    "GradientMismatchError",
    "GradientMismatchWarning",
    "InconclusiveCheckError",
    "InconclusiveCheckWarning",
    "InvalidArgumentError",
    "InvalidTypeError",
    "VerigradError",
    "VerigradWarning",
]


class VerigradError(Exception):
    """Root of every exception verigrad raises."""


class InvalidArgumentError(VerigradError, ValueError):
    """An argument has the right type but a wrong value: a shape, a range, an unknown option."""


class InvalidTypeError(VerigradError, TypeError):
    """An argument, or a value returned by a user function, has a type verigrad cannot check."""


class _CarriesResult(Exception):
    """Message = the result's summary; ``.result`` = the whole record; pickles with it."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.summary())
        self.result = result

    def __reduce__(self) -> tuple[type[_CarriesResult], tuple[CheckResult]]:
        return (type(self), (self.result,))


class GradientMismatchError(_CarriesResult, VerigradError, AssertionError):
    """A gradient check failed: the analytical gradient disagrees with the numerical one.

    Also raised for the verdict ``"nonfinite"``: a NaN or inf never passes a check.
    The full :class:`~verigrad.CheckResult` is available as :attr:`result`.
    """


class InconclusiveCheckError(_CarriesResult, VerigradError, AssertionError):
    """:func:`~verigrad.assert_gradient` could not decide: the verdict is ``"inconclusive"`` or
    ``"nondeterministic"``. Not a gradient bug; the message says what kept the check from a
    verdict (noise, a loss that changes between calls)."""


class VerigradWarning(UserWarning):
    """Root of every warning verigrad emits."""


class InconclusiveCheckWarning(_CarriesResult, VerigradWarning):
    """A decorated gradient's check could not decide (verdict ``"inconclusive"`` or
    ``"nondeterministic"``); :attr:`result` holds the details."""


class GradientMismatchWarning(_CarriesResult, VerigradWarning):
    """A failed check reported with ``on_failure="warn"``; :attr:`result` holds the details."""
