"""Tests for reading back the ``gradient_check`` events of a JSON-lines log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from training_logs import PINNED, write_log
from verigrad._logreport import format_summary, parse_line, read_events, summarise

EVENT = {
    "event": "gradient_check",
    "function": "grad",
    "call_index": 3,
    "verdict": "pass",
    "passed": True,
    "relative_error": 1e-10,
    "threshold": 1e-5,
}


def _event(**changes: object) -> str:
    return json.dumps({**EVENT, **changes})


class TestParseLine:
    """One line of a log."""

    def test_structlog_json(self) -> None:
        """A structlog JSONRenderer line gives its fields."""
        fields = parse_line(_event())
        assert fields is not None
        assert fields["call_index"] == 3

    @pytest.mark.parametrize("key", ["message", "msg"])
    def test_stdlib_formatter(self, key: str) -> None:
        """A logging JSON formatter's line, the event name under message or msg, is read."""
        record = {k: v for k, v in EVENT.items() if k != "event"}
        record |= {key: "gradient_check", "levelname": "INFO", "name": "verigrad"}
        fields = parse_line(json.dumps(record))
        assert fields is not None
        assert fields["verdict"] == "pass"

    def test_nested_json_message(self) -> None:
        """structlog's JSON nested as a string in a formatter's message is unpacked."""
        fields = parse_line(json.dumps({"message": _event(), "levelname": "INFO"}))
        assert fields is not None
        assert fields["function"] == "grad"
        assert fields["levelname"] == "INFO"

    def test_text_prefix(self) -> None:
        """A text prefix before the JSON (a plain logging format) is skipped."""
        fields = parse_line("INFO:verigrad:" + _event())
        assert fields is not None
        assert fields["relative_error"] == 1e-10

    @pytest.mark.parametrize(
        "line",
        ["", "epoch 3 done", "{not json", json.dumps({"event": "epoch"}), "[1, 2]", "{}"],
    )
    def test_other_lines(self, line: str) -> None:
        """Lines that are not check events give None."""
        assert parse_line(line) is None


class TestReadEvents:
    """Reading a whole log."""

    def test_counts_skipped_lines(self) -> None:
        """Check events are kept with their line numbers; other non-empty lines are counted."""
        events, skipped = read_events(["hello", _event(), "", _event(verdict="mismatch")])
        assert [e.line for e in events] == [2, 4]
        assert skipped == 1

    def test_infinity(self) -> None:
        """A non-finite check's relative error, logged as Infinity, reads back as inf."""
        events, _ = read_events(
            [_event(verdict="nonfinite", passed=False, relative_error=math.inf)]
        )
        assert math.isinf(events[0].relative_error)
        assert events[0].failed

    def test_missing_fields(self) -> None:
        """An event without a function, call index or numbers still reads."""
        events, _ = read_events([json.dumps({"event": "gradient_check", "verdict": "pass"})])
        e = events[0]
        assert e.function == "<unknown>"
        assert e.call_index is None
        assert e.passed
        assert math.isnan(e.relative_error)

    def test_verdict_classes(self) -> None:
        """Mismatch fails; inconclusive is undecided; a kink that did not pass fails."""
        events, _ = read_events(
            [
                _event(verdict="mismatch", passed=False),
                _event(verdict="inconclusive", passed=False),
                _event(verdict="kink", passed=False),
                _event(verdict="kink", passed=True),
            ]
        )
        assert [e.failed for e in events] == [True, False, True, False]
        assert [e.undecided for e in events] == [False, True, False, False]


@PINNED
class TestSummarise:
    """The summary of a real training run's log."""

    def test_numbers(self, tmp_path: Path) -> None:
        """Checks, failures, verdicts and per-function worst errors match the run."""
        log = tmp_path / "train.jsonl"
        captured = write_log(log)
        with log.open(encoding="utf-8") as lines:
            events, skipped = read_events(lines)
        summary = summarise(events, skipped)
        failed = sum(not e["passed"] for e in captured)
        assert summary.checks == len(captured) >= 8
        assert summary.failures == failed == 2
        assert summary.undecided == 0
        assert summary.skipped == 2
        assert summary.verdicts == {"pass": len(captured) - 2, "mismatch": 2}
        by_name = {f.function: f for f in summary.functions}
        assert set(by_name) == {"good_grad", "bad_grad"}
        assert by_name["good_grad"].failures == 0
        assert by_name["bad_grad"].failures == 2
        worst = by_name["bad_grad"].worst
        assert len(worst) == 3
        assert worst[0].relative_error == pytest.approx(1 / 3, rel=1e-6)
        assert {e.call_index for e in worst[:2]} == {14, 19}
        assert by_name["good_grad"].worst[0].relative_error < 1e-8

    def test_failures_rank_first(self) -> None:
        """A failed check ranks above any pass, even with a NaN error."""
        events, _ = read_events(
            [
                _event(relative_error=0.5),
                _event(verdict="nonfinite", passed=False, relative_error=None),
            ]
        )
        (f,) = summarise(events).functions
        assert f.worst[0].verdict == "nonfinite"

    def test_to_dict_is_json(self, tmp_path: Path) -> None:
        """The JSON form round-trips through json and keeps the counts."""
        log = tmp_path / "train.jsonl"
        captured = write_log(log)
        with log.open(encoding="utf-8") as lines:
            summary = summarise(*read_events(lines))
        data = json.loads(json.dumps(summary.to_dict()))
        assert data["checks"] == len(captured)
        assert data["functions"]["bad_grad"]["failures"] == 2


@PINNED
class TestFormatSummary:
    """The text report."""

    def test_report_text(self, tmp_path: Path) -> None:
        """The report states the totals, verdict counts, one row per function, the failures."""
        log = tmp_path / "train.jsonl"
        n = len(write_log(log))
        with log.open(encoding="utf-8") as lines:
            text = format_summary(summarise(*read_events(lines)))
        assert text.startswith(f"{n} gradient checks of 2 functions: 2 failed, 0 undecided")
        assert f"verdicts: pass {n - 2}, mismatch 2" in text
        assert "failed checks, by explanation:" in text
        assert "bad_grad call 14 at [" in text
        assert sum(line.startswith(("good_grad", "bad_grad")) for line in text.splitlines()) == 2


_FAILED = {
    "verdict": "mismatch",
    "passed": False,
    "relative_error": 0.5,
    "explanation": "3 coordinate(s) disagree beyond 10x their error bars",
    "worst_index": [1],
    "worst_analytical": 1.0,
    "worst_numerical": 2.0,
}


def _read(*lines: str):  # type: ignore[no-untyped-def]
    from verigrad._logreport import read_log

    reading = read_log(list(lines))
    return reading, summarise(reading.events, reading.skipped, unreadable=reading.unreadable)


class TestNoFailureLost:
    """``report`` never loses a failure (issue 12, item 5): each case lost one before."""

    def test_two_events_on_one_line(self) -> None:
        """Processes appending to one file: both events are read, the failure with them."""
        _, summary = _read(_event() + _event(call_index=4, **_FAILED))
        assert summary.checks == 2
        assert summary.failures == 1
        assert not summary.unreadable

    def test_event_followed_by_text(self) -> None:
        """Text after the JSON (a second writer, a stray message) does not hide the event."""
        _, summary = _read(_event(**_FAILED) + " [pid 123] worker done {not json")
        assert summary.failures == 1

    def test_nul_padded_line(self) -> None:
        """NUL bytes around a line (a file padded after a crash) are ignored."""
        _, summary = _read("\x00" * 64 + _event(**_FAILED) + "\x00" * 16)
        assert summary.failures == 1
        assert summary.skipped == 0

    def test_nul_only_line_is_blank(self) -> None:
        """A line of NULs alone is blank, not a skipped line."""
        reading, _ = _read("\x00\x00\x00\n", _event())
        assert reading.skipped == 0

    def test_cut_event_is_unreadable(self) -> None:
        """An event cut short (the process died mid-line) is counted as unreadable."""
        cut = _event(**_FAILED)[:60]
        _, summary = _read(_event(), cut)
        assert summary.checks == 1
        assert [u.line for u in summary.unreadable] == [2]
        assert "broken JSON" in summary.unreadable[0].reason

    def test_console_rendered_event_is_unreadable(self) -> None:
        """structlog's key=value console line names a verdict: it may hold a failure."""
        line = "2026-01-01 [error    ] gradient_check  call_index=0 function=grad verdict=mismatch"
        _, summary = _read(_event(), line)
        assert len(summary.unreadable) == 1
        assert "not JSON" in summary.unreadable[0].reason

    def test_unknown_layout_is_unreadable(self) -> None:
        """A JSON object holding the event name under a key not read is not silently skipped."""
        _, summary = _read(_event(), json.dumps({"evt": "gradient_check", "verdict": "mismatch"}))
        assert len(summary.unreadable) == 1

    def test_verigrad_warning_text_is_not_suspect(self) -> None:
        """A captured verigrad warning names gradient_check but holds no check: skipped."""
        warning = json.dumps(
            {
                "message": "verigrad: a check of grad failed (verdict 'mismatch'); details in "
                "the 'gradient_check' log events and in grad.verigrad.last_result"
            }
        )
        reading, summary = _read(_event(), warning, "plain text about gradient_check runs")
        assert not summary.unreadable
        assert reading.skipped == 2

    def test_deep_nesting_is_no_recursion_error(self) -> None:
        """A line nested 100,000 deep: no RecursionError; unreadable when it names a check."""
        deep = '{"event": "gradient_check", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
        _, summary = _read(_event(), deep, "[" * 100_000)
        assert summary.checks == 1
        assert [u.reason for u in summary.unreadable] == ["JSON nested too deeply to read"]

    def test_huge_line(self, tmp_path: Path) -> None:
        """A line over MAX_LINE characters is not parsed; it is unreadable when it names a
        check (also past the part that is kept), skipped otherwise."""
        from verigrad._logreport import MAX_LINE, read_log

        log = tmp_path / "huge.jsonl"
        named_late = "x" * (MAX_LINE + 10) + "gradient_check"
        log.write_text(
            "\n".join([_event(), "y" * (2 * MAX_LINE), named_late, _event()]) + "\n",
            encoding="utf-8",
        )
        with log.open(encoding="utf-8") as lines:
            reading = read_log(lines)
        assert len(reading.events) == 2
        assert reading.skipped == 1
        assert [u.line for u in reading.unreadable] == [3]
        assert "longer than" in reading.unreadable[0].reason
        # The same from a plain list of lines.
        reading = read_log([_event(), named_late])
        assert [u.line for u in reading.unreadable] == [2]

    def test_many_fragments(self) -> None:
        """A line of thousands of braces gives up after MAX_VALUES_PER_LINE tries, quickly."""
        _, summary = _read('{"event": "gradient_check"' + "{x" * 10_000)
        assert len(summary.unreadable) == 1


class TestFailureGroups:
    """Failures are grouped by explanation, each group with its hint."""

    def test_grouped_once_with_hint(self) -> None:
        """Five failures with one explanation: one group, the explanation and hint once."""
        lines = [_event(call_index=i, **_FAILED) for i in range(5)]
        lines.append(_event(call_index=9, verdict="nonfinite", passed=False, relative_error=None))
        _, summary = _read(*lines)
        groups = summary.failure_groups
        assert [(g.verdict, len(g.events)) for g in groups] == [("mismatch", 5), ("nonfinite", 1)]
        text = format_summary(summary)
        assert text.count(_FAILED["explanation"]) == 1  # type: ignore[arg-type]
        assert "hint: analytical = 0.5 x numerical at [1]: a missing factor of 2?" in text
        assert "hint: a NaN or inf never passes a check" in text
        assert "mismatch: 5 checks, relative error 5.00e-01" in text

    def test_logged_hint_wins(self) -> None:
        """A hint carried by the event is shown as logged."""
        _, summary = _read(_event(hint="a flipped sign", **_FAILED))
        assert summary.failure_groups[0].hint == "a flipped sign"

    def test_json_groups_and_unreadable(self) -> None:
        """--json carries the groups and the unreadable lines."""
        _, summary = _read(_event(**_FAILED), _event(**_FAILED)[:50])
        data = json.loads(json.dumps(summary.to_dict()))
        assert data["failure_groups"][0]["checks"] == 1
        assert data["failure_groups"][0]["hint"].startswith("analytical = 0.5")
        assert data["unreadable_lines"][0]["line"] == 2


class TestReportExitStatus:
    """``verigrad report``'s exit status for each case of a log."""

    @pytest.mark.parametrize(
        ("lines", "status"),
        [
            ([_event()], 0),
            ([_event(), _event(**_FAILED)], 1),
            ([_event() + _event(**_FAILED)], 1),  # was 0: the failure hid on a shared line
            (["\x00\x00" + _event(**_FAILED)], 1),  # was 0: NUL padding
            ([_event(**_FAILED) + " trailing text"], 1),  # was 0
            ([_event(), _event(**_FAILED)[:70]], 2),  # was 0: a cut event may be a failure
            ([_event(), '{"event": "gradient_check", "a": ' + "[" * 50_000], 2),  # was a crash
            ([_event(verdict="inconclusive", passed=False)], 3),  # nothing passed
            ([_event(), _event(verdict="inconclusive", passed=False)], 0),
            (["no checks here"], 2),
        ],
    )
    def test_status(
        self, tmp_path: Path, lines: list[str], status: int, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from verigrad.cli import main

        log = tmp_path / "log.jsonl"
        log.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert main(["report", str(log)]) == status
        if status == 2 and "no checks" not in lines[0]:
            assert "cannot be read; a failed check may be among them" in capsys.readouterr().err
