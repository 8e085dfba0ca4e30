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
