"""Reading back the ``gradient_check`` events of a training run's JSON-lines log.

Accepts structlog's ``JSONRenderer`` output (the event name under ``"event"``), standard
``logging`` JSON formatters that put it under ``"message"`` or ``"msg"`` (with the fields next to
it, or with the structlog JSON nested as a string), and lines with a text prefix before the JSON
(``INFO:verigrad:{...}``), several events on one line (processes appending to one file), text
after an event, and NUL bytes (a file padded after a crash). Other lines are counted and
skipped, except those that name ``gradient_check`` but cannot be read: they are listed as
:class:`Unreadable`, because a failed check may be among them. Pathological lines (nesting
too deep for the parser, lines over :data:`MAX_LINE` characters) are unreadable lines too,
never an exception.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._typing import FAILURES

__all__ = [
    "CheckEvent",
    "FailureGroup",
    "FunctionSummary",
    "LogReading",
    "LogSummary",
    "Unreadable",
    "format_summary",
    "parse_line",
    "read_events",
    "read_log",
    "summarise",
]

EVENT = "gradient_check"
#: Lines longer than this many characters are not parsed (an event is a few kB at most).
MAX_LINE = 1 << 20
#: JSON values tried per line before the rest of the line is given up as unreadable.
MAX_VALUES_PER_LINE = 64
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

    @property
    def explanation(self) -> str:
        """The check's explanation as logged ("" when none was)."""
        value = self.fields.get("explanation")
        return value if isinstance(value, str) else ""

    @property
    def hint(self) -> str:
        """The check's hint: as logged when the event carries one, else read from the logged
        worst coordinate, else a pointer to the verdict's meaning ("" for passes)."""
        value = self.fields.get("hint")
        if isinstance(value, str) and value:
            return value
        if not self.failed:
            return ""
        return _hint_from_fields(self.verdict, self.fields)


def _hint_from_fields(verdict: str, fields: dict[str, Any]) -> str:
    if verdict == "nonfinite":
        return "a NaN or inf never passes a check: look for log(0), 0/0, overflow or an unset value"
    a, n = _number(fields.get("worst_analytical")), _number(fields.get("worst_numerical"))
    where = fields.get("worst_leaf") or fields.get("worst_index")
    at = f" at {where}" if where is not None else ""
    if math.isfinite(a) and math.isfinite(n) and n != 0.0:
        c = a / n
        if a == 0.0:
            return f"the analytical gradient is 0{at} where the loss changes: a missing term?"
        if abs(c + 1.0) < 1e-3:
            return f"analytical = -numerical{at}: a flipped sign?"
        if abs(abs(c) - round(abs(c))) < 1e-3 and round(abs(c)) >= 2:
            return f"analytical = {c:.4g} x numerical{at}: an extra factor?"
        if abs(c) < 1 and abs(1 / abs(c) - round(1 / abs(c))) < 1e-3:
            return f"analytical = {c:.4g} x numerical{at}: a missing factor of {1 / abs(c):.4g}?"
    return (
        "recheck at that point with verigrad check or assert_gradient: result.summary() lists "
        "the coordinates that disagree"
    )


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


_DECODER = json.JSONDecoder()


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class _Scan(NamedTuple):
    events: list[dict[str, Any]]
    problem: str | None  # why part of the line that may hold a check could not be read


#: Text outside JSON that looks like a check event: structlog's key=value console lines, or a
#: JSON event cut short (``{"event": "gradient_check", "verd``).
_LOOKS_LIKE_EVENT = re.compile(
    r"verdict[\"']?\s*[=:]|[\"']?(?:event|message|msg)[\"']?\s*[=:]\s*[\"']?gradient_check"
)


def _odd_layout(record: Any) -> str | None:
    """Why a JSON value that is not a readable check event may still hold one, or None."""
    if not isinstance(record, dict):
        return None
    for key, value in record.items():
        if value == EVENT:
            return f"a JSON object with gradient_check under {key!r}, a layout not read"
        if isinstance(value, str) and EVENT in value and value.lstrip().startswith("{"):
            return f"a check event under {key!r} that is not complete JSON"
    return None


def _scan(text: str) -> _Scan:
    """Every check event among the JSON objects of one line, and what was left unread."""
    text = text.replace("\x00", "").strip()
    events: list[dict[str, Any]] = []
    rest: list[str] = []  # the text outside every JSON value that was read
    problem: str | None = None
    broken: str | None = None
    pos, tries = 0, 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            rest.append(text[pos:])
            break
        if tries == MAX_VALUES_PER_LINE:
            rest.append(text[pos:])
            broken = f"more than {MAX_VALUES_PER_LINE} JSON fragments on the line"
            break
        tries += 1
        rest.append(text[pos:start])
        try:
            value, end = _DECODER.raw_decode(text, start)
        except RecursionError:
            rest.append(text[start:])
            broken = "JSON nested too deeply to read"
            break
        except json.JSONDecodeError as exc:
            # Not JSON from here (a broken or cut event, a brace in text): skip this brace.
            rest.append("{")
            pos = start + 1
            broken = broken or (
                f"broken JSON: {exc.msg.removesuffix(' at').lower()} (column {exc.colno})"
            )
            continue
        pos = end
        fields = _event_dict(value) if isinstance(value, dict) else None
        if fields is not None:
            events.append(fields)
        else:
            problem = problem or _odd_layout(value)
    if problem is None:
        unread = "".join(rest)
        if EVENT in unread and (broken is not None or _LOOKS_LIKE_EVENT.search(unread)):
            problem = broken or "a check event that is not JSON (render events as JSON lines)"
    return _Scan(events, problem)


def parse_line(text: str) -> dict[str, Any] | None:
    """The fields of the first ``gradient_check`` event on one log line, or None if it has none."""
    events = _scan(text).events
    return events[0] if events else None


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


@dataclass(frozen=True)
class Unreadable:
    """A log line that names ``gradient_check`` but could not be read in full.

    Attributes:
        line: the 1-based line number.
        reason: what kept it from being read.
        text: the start of the line, for the report.
    """

    line: int
    reason: str
    text: str


class LogReading(NamedTuple):
    """What :func:`read_log` found: the events, other lines skipped, and unreadable lines."""

    events: list[CheckEvent]
    skipped: int
    unreadable: list[Unreadable]


def _bounded_lines(lines: Iterable[str]) -> Iterator[tuple[str, bool, bool]]:
    """Each line, whether it was cut, and whether it names ``gradient_check``. Lines over
    :data:`MAX_LINE` characters are never held whole when ``lines`` can ``readline``: the
    rest is only scanned for the event name."""
    readline = getattr(lines, "readline", None)
    if readline is None:
        for text in lines:
            yield text[:MAX_LINE], len(text) > MAX_LINE, EVENT in text
        return
    while True:
        text = readline(MAX_LINE + 1)
        if not text:
            return
        if len(text) <= MAX_LINE or text.endswith("\n"):
            yield text, False, EVENT in text
            continue
        head, tail, named = text, text[-len(EVENT) :], EVENT in text
        while not text.endswith("\n"):
            text = readline(MAX_LINE)
            if not text:
                break
            named = named or EVENT in tail + text
            tail = text[-len(EVENT) :]
        yield head, True, named


def read_log(lines: Iterable[str]) -> LogReading:
    """The check events among ``lines`` (a file, stdin, or any iterable of lines), how many
    other non-empty lines were skipped, and the lines that may hold a check but could not be
    read (any of which may hold a failed check)."""
    events: list[CheckEvent] = []
    unreadable: list[Unreadable] = []
    skipped = 0
    for number, (text, cut, named) in enumerate(_bounded_lines(lines), start=1):
        if cut:
            if named:
                reason = f"longer than {MAX_LINE:,} characters"
                unreadable.append(Unreadable(number, reason, _excerpt(text)))
            else:
                skipped += 1
            continue
        scan = _scan(text) if "{" in text or named else _Scan([], None)
        events.extend(_event(number, fields) for fields in scan.events)
        if scan.problem is not None:
            unreadable.append(Unreadable(number, scan.problem, _excerpt(text)))
        elif not scan.events:
            skipped += bool(text.replace("\x00", "").strip())
    return LogReading(events, skipped, unreadable)


def read_events(lines: Iterable[str]) -> tuple[list[CheckEvent], int]:
    """The check events among ``lines``, and how many other lines were skipped (unreadable
    lines included; :func:`read_log` tells them apart)."""
    reading = read_log(lines)
    return reading.events, reading.skipped + len(reading.unreadable)


def _excerpt(text: str, width: int = 80) -> str:
    text = text.replace("\x00", "").strip()
    return text if len(text) <= width else text[: width - 3] + "..."


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
class FailureGroup:
    """Failed checks that share a verdict, an explanation and a hint.

    Attributes:
        verdict: their verdict.
        explanation: their explanation as logged ("" when none was).
        hint: their hint (see :attr:`CheckEvent.hint`).
        events: the failed checks, in log order.
    """

    verdict: str
    explanation: str
    hint: str
    events: tuple[CheckEvent, ...]


@dataclass(frozen=True)
class LogSummary(_Counts):
    """What a training run's log says about its gradient checks.

    Attributes:
        events: every check event, in log order.
        skipped: non-empty lines that were not check events.
        functions: one summary per function, in order of first appearance.
        unreadable: lines that name ``gradient_check`` but could not be read; any of them may
            hold a failed check.
    """

    events: tuple[CheckEvent, ...]
    skipped: int
    functions: tuple[FunctionSummary, ...]
    unreadable: tuple[Unreadable, ...] = ()

    @property
    def suspect(self) -> tuple[Unreadable, ...]:
        """The unreadable lines that may hold a check (all of them: only such are kept)."""
        return self.unreadable

    @property
    def failure_groups(self) -> list[FailureGroup]:
        """The failed checks grouped by verdict, explanation and hint, largest group first."""
        groups: dict[tuple[str, str, str], list[CheckEvent]] = {}
        for e in self.events:
            if e.failed:
                groups.setdefault((e.verdict, e.explanation, e.hint), []).append(e)
        ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
        return [FailureGroup(v, x, h, tuple(events)) for (v, x, h), events in ordered]

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
            "unreadable_lines": [
                {"line": u.line, "reason": u.reason, "text": u.text} for u in self.unreadable
            ],
            "verdicts": self.verdicts,
            "failure_groups": [
                {
                    "verdict": g.verdict,
                    "explanation": g.explanation or None,
                    "hint": g.hint or None,
                    "checks": len(g.events),
                    "lines": [e.line for e in g.events],
                }
                for g in self.failure_groups
            ],
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


def summarise(
    events: Iterable[CheckEvent],
    skipped: int = 0,
    top: int = 3,
    unreadable: Iterable[Unreadable] = (),
) -> LogSummary:
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
    return LogSummary(
        events=all_events, skipped=skipped, functions=functions, unreadable=tuple(unreadable)
    )


def _error_text(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2e}"


def _where(event: CheckEvent) -> str:
    where = f"call {event.call_index}" if event.call_index is not None else f"line {event.line}"
    index = event.fields.get("worst_index")
    if not event.passed and isinstance(index, list) and index:
        where += f" at {index}"
    return where


def format_summary(summary: LogSummary, max_failures: int = 10) -> str:
    """A report for a person: totals, verdict counts, a table per function, the lines that
    could not be read, and the failures grouped by explanation, each group with its hint.

    ``max_failures`` bounds the checks listed per group (and the unreadable lines listed).
    """
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
    ]
    if summary.verdicts:
        lines.append("verdicts: " + ", ".join(f"{v} {n}" for v, n in summary.verdicts.items()))
    if summary.functions:
        lines.append("")
        lines.extend(_function_table(summary))
    if summary.unreadable:
        n = len(summary.unreadable)
        lines += [
            "",
            f"{n} line{'s name' if n != 1 else ' names'} gradient_check but could not be read; "
            "a failed check may be among them:",
        ]
        for u in summary.unreadable[:max_failures]:
            lines.append(f"  line {u.line}: {u.reason}: {u.text}")
        if n > max_failures:
            lines.append(f"  ... and {n - max_failures} more")
    groups = summary.failure_groups
    if groups:
        lines += ["", "failed checks, by explanation:"]
        for g in groups:
            errors = [e.relative_error for e in g.events if not math.isnan(e.relative_error)]
            span = ""
            if errors:
                lo, hi = min(errors), max(errors)
                span = f", relative error {_error_text(lo)}" + (
                    f" .. {_error_text(hi)}" if hi != lo else ""
                )
            n = len(g.events)
            lines.append(f"  {g.verdict}: {n} check{'s' if n != 1 else ''}{span}")
            if g.explanation:
                lines.append(f"    explanation: {g.explanation}")
            if g.hint:
                lines.append(f"    hint: {g.hint}")
            shown = [f"line {e.line} ({e.function} {_where(e)})" for e in g.events[:max_failures]]
            more = f", ... and {n - max_failures} more" if n > max_failures else ""
            lines.append(f"    at: {', '.join(shown)}{more}")
    return "\n".join(lines)


def _function_table(summary: LogSummary) -> list[str]:
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
    out = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [r[c].rjust(widths[c]) for c in range(1, len(widths))]
        out.append("  ".join([*cells, r[-1]]).rstrip())
    return out
