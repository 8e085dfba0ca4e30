"""Reading back the ``gradient_check`` events of a training run's JSON-lines log.

Accepts structlog's ``JSONRenderer`` output (the event name under ``"event"``), standard
``logging`` JSON formatters that put it under ``"message"`` or ``"msg"`` (with the fields next to
it, or with the structlog JSON nested as a string), and lines with a text prefix before the JSON
(``INFO:verigrad:{...}``). Every other line is counted and skipped.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ._typing import FAILURES

__all__ = [
    "CheckEvent",
    "FunctionSummary",
    "LogSummary",
    "format_summary",
    "parse_line",
    "read_events",
    "summarise",
]

EVENT = "gradient_check"
UNDECIDED = ("inconclusive", "nondeterministic")
UNKNOWN_FUNCTION = "<unknown>"


@dataclass(frozen=True)
class CheckEvent:
    """One ``gradient_check`` event read from a log.

    Attributes:
        line: the 1-based line number in the log.
        function: the checked gradient function (``"<unknown>"`` when the event has none).
        call_index: which call of the function was checked, when logged.
        verdict: the check's verdict.
        passed: whether the check passed.
        relative_error: the relative error (``inf`` for a non-finite check, NaN if missing).
        threshold: the relative-error threshold (NaN if missing).
        fields: every field of the event as logged.
    """

    line: int
    function: str
    call_index: int | None
    verdict: str
    passed: bool
    relative_error: float
    threshold: float
    fields: dict[str, Any] = field(repr=False, compare=False)

    @property
    def failed(self) -> bool:
        """True for a failing verdict: mismatch, nonfinite, or a kink that was made to fail."""
        return self.verdict in FAILURES or (not self.passed and self.verdict not in UNDECIDED)

    @property
    def undecided(self) -> bool:
        """True for the verdicts that could not decide: inconclusive, nondeterministic."""
        return self.verdict in UNDECIDED


def _event_dict(record: dict[str, Any]) -> dict[str, Any] | None:
    """The check event's fields if ``record`` is one, in any of the accepted layouts."""
    if record.get("event") == EVENT:
        return record
    for key in ("message", "msg"):
        value = record.get(key)
        if value == EVENT:
            return record
        if isinstance(value, str) and value.lstrip().startswith("{"):
            nested = _json_object(value)
            if nested is not None and nested.get("event") == EVENT:
                return {**{k: v for k, v in record.items() if k != key}, **nested}
    return None


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_line(text: str) -> dict[str, Any] | None:
    """The fields of the ``gradient_check`` event on one log line, or None for any other line."""
    text = text.strip()
    start = text.find("{")
    if start < 0:
        return None
    record = _json_object(text[start:])
    return None if record is None else _event_dict(record)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return math.nan
    try:
        return float(value)
    except ValueError:
        return math.nan


def _event(line: int, fields: dict[str, Any]) -> CheckEvent:
    verdict = str(fields.get("verdict", "unknown"))
    passed = fields.get("passed")
    call = fields.get("call_index")
    return CheckEvent(
        line=line,
        function=str(fields.get("function") or UNKNOWN_FUNCTION),
        call_index=call if isinstance(call, int) and not isinstance(call, bool) else None,
        verdict=verdict,
        passed=bool(passed) if isinstance(passed, bool) else verdict in ("pass", "kink"),
        relative_error=_number(fields.get("relative_error")),
        threshold=_number(fields.get("threshold")),
        fields=fields,
    )


def read_events(lines: Iterable[str]) -> tuple[list[CheckEvent], int]:
    """The check events among ``lines``, and how many other lines were skipped."""
    events: list[CheckEvent] = []
    skipped = 0
    for number, text in enumerate(lines, start=1):
        fields = parse_line(text)
        if fields is None:
            skipped += bool(text.strip())
            continue
        events.append(_event(number, fields))
    return events, skipped


class _Counts:
    """Counts over ``events`` shared by the per-function and the whole-log summaries."""

    events: tuple[CheckEvent, ...]

    @property
    def checks(self) -> int:
        """Number of checks."""
        return len(self.events)

    @property
    def failures(self) -> int:
        """Number of failed checks."""
        return sum(e.failed for e in self.events)

    @property
    def undecided(self) -> int:
        """Number of checks that could not decide."""
        return sum(e.undecided for e in self.events)


@dataclass(frozen=True)
class FunctionSummary(_Counts):
    """The checks of one gradient function in a log.

    Attributes:
        function: the function's name as logged.
        events: its check events, in log order.
        worst: its checks with the largest relative error, largest first.
    """

    function: str
    events: tuple[CheckEvent, ...]
    worst: tuple[CheckEvent, ...]

    @property
    def median_error(self) -> float:
        """The median relative error of the checks (NaN when none was logged)."""
        values = sorted(e.relative_error for e in self.events if not math.isnan(e.relative_error))
        if not values:
            return math.nan
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])


@dataclass(frozen=True)
class LogSummary(_Counts):
    """What a training run's log says about its gradient checks.

    Attributes:
        events: every check event, in log order.
        skipped: non-empty lines that were not check events.
        functions: one summary per function, in order of first appearance.
    """

    events: tuple[CheckEvent, ...]
    skipped: int
    functions: tuple[FunctionSummary, ...]

    @property
    def verdicts(self) -> dict[str, int]:
        """How many checks ended with each verdict, most frequent first."""
        return dict(Counter(e.verdict for e in self.events).most_common())

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values."""
        return {
            "checks": self.checks,
            "failures": self.failures,
            "undecided": self.undecided,
            "skipped_lines": self.skipped,
            "verdicts": self.verdicts,
            "functions": {
                f.function: {
                    "checks": f.checks,
                    "failures": f.failures,
                    "undecided": f.undecided,
                    "median_relative_error": f.median_error,
                    "worst": [
                        {
                            "line": e.line,
                            "call_index": e.call_index,
                            "verdict": e.verdict,
                            "relative_error": e.relative_error,
                        }
                        for e in f.worst
                    ],
                }
                for f in self.functions
            },
        }


def _severity(event: CheckEvent) -> float:
    return -math.inf if math.isnan(event.relative_error) else event.relative_error


def summarise(events: Iterable[CheckEvent], skipped: int = 0, top: int = 3) -> LogSummary:
    """Group check events by function and pick each function's ``top`` worst checks."""
    all_events = tuple(events)
    by_function: dict[str, list[CheckEvent]] = {}
    for e in all_events:
        by_function.setdefault(e.function, []).append(e)
    functions = tuple(
        FunctionSummary(
            function=name,
            events=tuple(group),
            # Failures first, then by relative error: a failed check is worse than any pass.
            worst=tuple(sorted(group, key=lambda e: (e.failed, _severity(e)), reverse=True)[:top]),
        )
        for name, group in by_function.items()
    )
    return LogSummary(events=all_events, skipped=skipped, functions=functions)


def _error_text(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2e}"


def _where(event: CheckEvent) -> str:
    where = f"call {event.call_index}" if event.call_index is not None else f"line {event.line}"
    index = event.fields.get("worst_index")
    if not event.passed and isinstance(index, list) and index:
        where += f" at {index}"
    return where


def format_summary(summary: LogSummary, max_failures: int = 10) -> str:
    """A report for a person: totals, verdict counts, a table per function, the failures."""
    n_functions = len(summary.functions)
    lines = [
        f"{summary.checks} gradient checks of {n_functions} "
        f"function{'s' if n_functions != 1 else ''}: "
        f"{summary.failures} failed, {summary.undecided} undecided"
        + (
            f" ({summary.skipped} other line{'s' if summary.skipped != 1 else ''} skipped)"
            if summary.skipped
            else ""
        ),
        "verdicts: " + ", ".join(f"{v} {n}" for v, n in summary.verdicts.items()),
        "",
    ]
    head = ("function", "checks", "failed", "undecided", "median error", "worst errors")
    rows = [head]
    for f in summary.functions:
        worst = ", ".join(f"{_error_text(e.relative_error)} ({_where(e)})" for e in f.worst)
        rows.append(
            (
                f.function,
                str(f.checks),
                str(f.failures),
                str(f.undecided),
                _error_text(f.median_error),
                worst,
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(head) - 1)]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [r[c].rjust(widths[c]) for c in range(1, len(widths))]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    failed = [e for e in summary.events if e.failed]
    if failed:
        lines += ["", "failed checks:"]
        for e in failed[:max_failures]:
            text = (
                f"  line {e.line}: {e.function} {_where(e)}: {e.verdict}, "
                f"relative error {_error_text(e.relative_error)}"
            )
            if not math.isnan(e.threshold):
                text += f" > {e.threshold:.1e}"
            explanation = e.fields.get("explanation")
            if isinstance(explanation, str) and explanation:
                text += f" ({explanation})"
            lines.append(text)
        if len(failed) > max_failures:
            lines.append(f"  ... and {len(failed) - max_failures} more")
    return "\n".join(lines)
