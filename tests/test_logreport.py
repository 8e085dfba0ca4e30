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
