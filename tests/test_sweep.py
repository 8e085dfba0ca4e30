"""Tests for the step sweep behind ``verigrad sweep``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from verigrad import InvalidArgumentError
from verigrad._sweep import format_table, log_steps, sweep


def loss(x: np.ndarray) -> float:
    """A smooth loss with curvature in every coordinate."""
    return float(np.sum(np.sin(x) * x**3))


def grad(x: np.ndarray) -> np.ndarray:
    """The exact gradient of :func:`loss`."""
    return np.cos(x) * x**3 + 3 * x**2 * np.sin(x)


X = np.random.default_rng(0).standard_normal(10)


class TestLogSteps:
    """The grid of steps."""

    def test_default_grid(self) -> None:
        """The default grid runs from 1e-1 down to 1e-13, one step per decade."""
        steps = log_steps()
        assert len(steps) == 13
        assert steps[0] == pytest.approx(1e-1)
        assert steps[-1] == pytest.approx(1e-13)
        assert np.all(np.diff(steps) < 0)

    def test_per_decade(self) -> None:
        """Three steps per decade over four decades give 13 steps."""
        assert len(log_steps(1e-2, 1e-6, per_decade=3)) == 13

    @pytest.mark.parametrize(
        ("largest", "smallest", "per_decade"),
        [(1e-1, 1.0, 1), (0.0, 1e-3, 1), (1e-1, math.nan, 1), (1e-1, 1e-3, 0)],
    )
    def test_refuses_bad_grids(self, largest: float, smallest: float, per_decade: int) -> None:
        """Non-positive steps, a reversed range or zero steps per decade are refused."""
        with pytest.raises(InvalidArgumentError):
            log_steps(largest, smallest, per_decade)


class TestSweep:
    """The relative error over the steps."""

    def test_v_shape(self) -> None:
        """The error is far smaller near the auto step than at either end of the range."""
        result = sweep(loss, X, grad(X), log_steps())
        assert result.auto_error < 1e-9
        assert result.errors[0] > 1e3 * result.auto_error  # truncation at h = 1e-1
        assert result.errors[-1] > 1e3 * result.auto_error  # rounding at h = 1e-13
        best = result.best_index
        assert best is not None
        assert 1e-7 <= result.steps[best] <= 1e-4
        # Both arms of the V are monotone away from the bottom.
        assert np.all(np.diff(result.errors[: best + 1]) < 0)
        assert np.all(np.diff(result.errors[best:]) > 0)

    def test_auto_steps_follow_the_rule(self) -> None:
        """The auto steps are cbrt(eps) * max(|x_i|, 1), and auto_step is their median."""
        point = np.array([0.5, 2.0, -8.0])
        result = sweep(loss, point, grad(point), log_steps(1e-2, 1e-4))
        c = np.finfo(np.float64).eps ** (1 / 3)
        np.testing.assert_allclose(result.auto_steps, c * np.array([1.0, 2.0, 8.0]))
        assert result.auto_step == pytest.approx(2.0 * c)

    def test_vanishing_step_is_nan(self) -> None:
        """A step lost next to a large coordinate (x + h == x) gives NaN, not an error."""
        point = np.array([1e6, 1.0])
        result = sweep(loss, point, grad(point), log_steps(1e-2, 1e-12))
        assert math.isnan(result.errors[-1])
        assert math.isfinite(result.errors[0])
        assert "x + h == x" in format_table(result)

    def test_shape_mismatch(self) -> None:
        """A gradient shaped unlike the point is refused with both shapes named."""
        with pytest.raises(InvalidArgumentError, match=r"\(3,\).*\(10,\)"):
            sweep(loss, X, np.zeros(3), log_steps())

    def test_to_dict(self) -> None:
        """The JSON form lists one error per step and the auto rule's numbers."""
        result = sweep(loss, X, grad(X), log_steps(1e-1, 1e-3))
        data = result.to_dict()
        assert data["size"] == 10
        assert len(data["relative_errors"]) == len(data["steps"]) == 3
        assert data["auto_relative_error"] == result.auto_error


class TestFormatTable:
    """The text table."""

    def test_marks_the_regimes(self) -> None:
        """Rows above the bottom are truncation, below it rounding; auto is its own row."""
        text = format_table(sweep(loss, X, grad(X), log_steps()))
        lines = text.splitlines()
        assert "truncation" in lines[2]
        assert "rounding" in lines[-2]
        assert sum("<- smallest" in line for line in lines) == 1
        assert lines[-1].lstrip().startswith("auto")
        assert 'epsilon="auto"' in lines[-1]


class TestDisagreement:
    """A gradient that disagrees at every step is named a bug (issue 12, item 6)."""

    def test_wrong_gradient(self) -> None:
        """Half the gradient: every row says "disagrees", none "truncation", and the plain
        statement says it is a bug in the gradient, not a step problem."""
        from verigrad._sweep import disagreement

        result = sweep(loss, X, 0.5 * grad(X), log_steps())
        assert result.disagrees
        assert result.smallest_error == pytest.approx(1 / 3, rel=0.05)
        table = format_table(result)
        assert "truncation" not in table
        assert "rounding" not in table
        assert table.count("disagrees") == len(result.steps)
        text = disagreement(result, "model:grad")
        assert "model:grad disagrees with the loss at every step" in text
        assert "not a step-size problem" in text
        assert result.to_dict()["disagrees_at_every_step"] is True

    def test_right_gradient(self) -> None:
        """The exact gradient agrees at the bottom of the V: no disagreement."""
        result = sweep(loss, X, grad(X), log_steps())
        assert not result.disagrees
        assert "truncation" in format_table(result)
        assert result.to_dict()["disagrees_at_every_step"] is False

    def test_threshold(self) -> None:
        """rtol decides: a 1e-4 relative bug passes a 1e-3 threshold and fails a 1e-6 one."""
        slightly = grad(X) * (1 + 1e-4)
        assert not sweep(loss, X, slightly, log_steps(), rtol=1e-3).disagrees
        assert sweep(loss, X, slightly, log_steps(), rtol=1e-6).disagrees

    @pytest.mark.parametrize("rtol", [0.0, -1.0, math.nan, math.inf])
    def test_bad_rtol(self, rtol: float) -> None:
        with pytest.raises(InvalidArgumentError, match="rtol"):
            sweep(loss, X, grad(X), log_steps(), rtol=rtol)

    def test_command_line(self, tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
        """``verigrad sweep`` exits 1 for the wrong gradient, 0 for the right one."""
        import sys
        from pathlib import Path

        from verigrad.cli import EXIT_FAILED, EXIT_OK, main

        folder = Path(str(tmp_path))
        model = folder / "sweepmodel.py"
        model.write_text(
            "import numpy as np\n"
            "def loss(x):\n    return float(np.sum(np.sin(x) * x**3))\n"
            "def grad(x):\n    return np.cos(x) * x**3 + 3 * x**2 * np.sin(x)\n"
            "def half(x):\n    return 0.5 * grad(x)\n",
            encoding="utf-8",
        )
        try:
            assert main(["sweep", f"{model}:loss", f"{model}:half", "--shape", "4"]) == EXIT_FAILED
            out = capsys.readouterr().out
            assert "disagrees with the loss at every step" in out
            assert main(["sweep", f"{model}:loss", f"{model}:grad", "--shape", "4"]) == EXIT_OK
            assert "disagrees" not in capsys.readouterr().out
        finally:
            sys.modules.pop("sweepmodel", None)
