"""Tests for the command line's PNG plots."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import verigrad as vg
from verigrad._logreport import read_events, summarise
from verigrad._plots import (
    INSTALL_HINT,
    PlotUnavailableError,
    check_plot,
    report_plot,
    sweep_plot,
)
from verigrad._sweep import log_steps, sweep

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > 1_000 and data.startswith(PNG_SIGNATURE)


def _loss(x: np.ndarray) -> float:
    return float(np.sum(x**4))


class TestPlots:
    """Each plot writes a PNG without touching pyplot."""

    def test_check_plot(self, tmp_path: Path) -> None:
        """A mismatch of one coordinate among many is drawn, with the y = x line."""
        x = np.linspace(-1, 1, 50)
        g = 4 * x**3
        g[7] += 1.0
        result = vg.check_gradient(_loss, x, g)
        assert _is_png(check_plot(result, tmp_path / "c.png"))

    def test_check_plot_partial(self, tmp_path: Path) -> None:
        """A check that estimated only some coordinates plots those (NaN elsewhere)."""
        x = np.linspace(-1, 1, 3_000)
        result = vg.check_gradient(_loss, x, 4 * x**3, seed=0)
        assert result.n_checked is not None
        assert _is_png(check_plot(result, tmp_path / "c.png"))

    def test_sweep_plot(self, tmp_path: Path) -> None:
        """The sweep plot is written, also with steps lost to rounding (NaN errors)."""
        x = np.array([1e6, 1.0])
        result = sweep(_loss, x, 4 * x**3, log_steps(1e-2, 1e-13))
        assert math.isnan(result.errors[-1])
        assert _is_png(sweep_plot(result, tmp_path / "s.png"))

    def test_report_plot_extremes(self, tmp_path: Path) -> None:
        """Zero, infinite and missing errors and events without call index are drawn."""
        base = {"event": "gradient_check", "function": "g", "threshold": 1e-5}
        lines = [
            json.dumps({**base, "verdict": "pass", "passed": True, "relative_error": 0.0}),
            json.dumps(
                {**base, "verdict": "nonfinite", "passed": False, "relative_error": math.inf}
            ),
            json.dumps({**base, "verdict": "pass", "passed": True}),
        ]
        summary = summarise(*read_events(lines))
        assert _is_png(report_plot(summary, tmp_path / "r.png"))

    def test_pyplot_untouched(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Plotting works with pyplot unimportable: no global figure state, no GUI backend."""
        monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
        x = np.array([0.5, -0.25])
        assert _is_png(check_plot(vg.check_gradient(_loss, x, 4 * x**3), tmp_path / "c.png"))


class TestWithoutMatplotlib:
    """matplotlib is optional."""

    def test_clear_error(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without matplotlib a plot raises PlotUnavailableError saying what to install."""
        monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
        x = np.array([0.5, -0.25])
        result = vg.check_gradient(_loss, x, 4 * x**3)
        with pytest.raises(PlotUnavailableError, match=r'pip install "verigrad\[plot\]"'):
            check_plot(result, tmp_path / "c.png")
        assert not (tmp_path / "c.png").exists()
        assert "verigrad[plot]" in INSTALL_HINT


class TestReadablePlots:
    """Plot scales and markers that say what happened (issue 12, items 5 and 6)."""

    def test_sweep_scale_of_a_wrong_gradient(self) -> None:
        """Errors all near 0.33 are not zoomed into a sliver: six decades at least, the
        threshold in view, and the title says the gradient disagrees."""
        from verigrad._plots import MIN_DECADES, sweep_figure

        x = np.linspace(0.5, 1.5, 4)
        result = sweep(_loss, x, 2 * x**3, log_steps())  # the true gradient is 4 x**3
        ax = sweep_figure(result).axes[0]
        low, high = ax.get_ylim()
        assert math.log10(high / low) >= MIN_DECADES - 1e-9
        assert low < result.threshold < high
        assert "disagrees at every step" in ax.get_title()

    def test_report_marks_each_verdict(self) -> None:
        """Passes, failures, kinks and undecided checks each get a marker and a legend entry;
        an inconclusive check is not drawn like a pass."""
        from verigrad._plots import VERDICT_STYLES, report_figure

        def line(i: int, verdict: str, passed: bool, error: float | None) -> str:
            return json.dumps(
                {
                    "event": "gradient_check",
                    "function": "grad",
                    "call_index": i,
                    "verdict": verdict,
                    "passed": passed,
                    "relative_error": error,
                    "threshold": 1e-5,
                }
            )

        events, skipped = read_events(
            [
                line(0, "pass", True, 1e-9),
                line(1, "inconclusive", False, None),
                line(2, "nondeterministic", False, 1e-3),
                line(3, "kink", True, 1e-2),
                line(4, "mismatch", False, 0.5),
                line(5, "nonfinite", False, None),
            ]
        )
        ax = report_figure(summarise(events, skipped)).axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        for verdict in ("pass", "inconclusive", "nondeterministic", "kink", "mismatch"):
            assert any(label.startswith(f"{verdict}: ") for label in labels), labels
        markers = {
            line.get_label().split(":")[0]: line.get_marker()
            for line in ax.get_lines()
            if ":" in str(line.get_label())
        }
        assert markers["inconclusive"] != markers["pass"]
        assert len(set(markers.values())) == len(markers)
        assert set(markers) <= set(VERDICT_STYLES)
        assert "1 undecided" not in ax.get_title()
        assert "2 undecided" in ax.get_title()

    @pytest.mark.parametrize("name", ["plot.gif", "plot", "plot.PNG.txt"])
    def test_unknown_extension(self, tmp_path: Path, name: str) -> None:
        """The library's plot functions refuse a path whose extension names no format."""
        result = vg.check_gradient(_loss, np.ones(3), lambda x: 4 * x**3)
        with pytest.raises(vg.InvalidArgumentError, match="names no plot format"):
            check_plot(result, tmp_path / name)
        assert not (tmp_path / name).exists()

    def test_extension_case(self, tmp_path: Path) -> None:
        """.PDF in capitals is a PDF too."""
        result = vg.check_gradient(_loss, np.ones(3), lambda x: 4 * x**3)
        check_plot(result, tmp_path / "p.PDF")
        assert (tmp_path / "p.PDF").read_bytes().startswith(b"%PDF")
