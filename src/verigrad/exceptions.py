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
    """``.result`` = the whole record; the message is ``message``, by default the class's
    rendering of the result (:meth:`_default_message`); pickles with both."""

    def __init__(self, result: CheckResult, message: str | None = None) -> None:
        super().__init__(self._default_message(result) if message is None else message)
        self.result = result

    @classmethod
    def _default_message(cls, result: CheckResult) -> str:
        return result.summary()

    def __reduce__(self) -> tuple[type[_CarriesResult], tuple[CheckResult, str]]:
        return (type(self), (self.result, str(self.args[0]) if self.args else ""))


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


def warning_text(result: CheckResult, function: str | None = None) -> str:
    """The one-line message of a check's warning: no call index and no numbers, so that
    Python's warning registry and filters see one message per function and verdict.

    ``function`` is the name to show (default: the result's); the details are in the
    ``gradient_check`` log event and in the warning's :attr:`~_CarriesResult.result`.
    """
    name = function or result.function
    outcome = "failed" if result.failed else "could not decide"
    where = f"{name}.verigrad.last_result" if name else "the warning's .result"
    name = name or "a gradient function"
    return (
        f"verigrad: a check of {name} {outcome} (verdict {result.verdict!r}); details in the "
        f"'gradient_check' log events and in {where}"
    )


class _CheckWarning(_CarriesResult, VerigradWarning):
    """A decorated gradient's check, warned with a stable one-line message
    (:func:`warning_text`); the full report is ``result.summary()``."""

    @classmethod
    def _default_message(cls, result: CheckResult) -> str:
        return warning_text(result)


class InconclusiveCheckWarning(_CheckWarning):
    """A decorated gradient's check could not decide (verdict ``"inconclusive"`` or
    ``"nondeterministic"``); :attr:`result` holds the details (``result.summary()``).

    The decorator warns once per decorated function and verdict (see
    :func:`~verigrad.verified_gradient`); every check is logged."""


class GradientMismatchWarning(_CheckWarning):
    """A failed check reported with ``on_failure="warn"``; :attr:`result` holds the details
    (``result.summary()``). Warned once per decorated function and verdict, like
    :class:`InconclusiveCheckWarning`."""
