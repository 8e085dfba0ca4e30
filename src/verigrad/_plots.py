"""PNG plots for the command line. matplotlib is optional (``pip install "verigrad[plot]"``).

matplotlib is imported when a plot is drawn, never at import time. Figures are built with
``matplotlib.figure.Figure`` and rendered by the Agg canvas directly, so pyplot's global state,
the configured backend and any GUI are left alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .exceptions import VerigradError

if TYPE_CHECKING:
    from ._logreport import LogSummary
    from ._sweep import SweepResult
    from .result import CheckResult

__all__ = ["PlotUnavailableError", "check_plot", "report_plot", "sweep_plot"]

INSTALL_HINT = 'plots need matplotlib: pip install "verigrad[plot]"'
#: Relative errors of exactly zero are drawn here on log axes.
ERROR_FLOOR = 1e-17


class PlotUnavailableError(VerigradError, ImportError):
    """matplotlib is not installed."""


def _figure(width: float = 6.4, height: float = 4.8) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailableError(INSTALL_HINT) from exc
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    out = Path(path)
    fig.savefig(out, format="png", dpi=120)
    return out


def check_plot(result: CheckResult, path: str | Path) -> Path:
    """Numerical against analytical derivative per coordinate, with the line ``y = x``.

    A correct gradient puts every point on the line; a flipped sign or a missing factor puts
    them on a line of another slope; a few wrong coordinates stand out on their own.

    Raises:
        PlotUnavailableError: matplotlib is not installed.
    """
    fig = _figure()
    ax = fig.add_subplot()
    numerical = np.asarray(result.numerical, dtype=np.float64).ravel()
    analytical = np.asarray(result.analytical, dtype=np.float64).ravel()
    shown = np.isfinite(numerical) & np.isfinite(analytical)
    bad = np.zeros(numerical.shape, dtype=bool)
    for index in result.mismatched:
        bad[np.ravel_multi_index(index, result.shape)] = True
    ok = shown & ~bad
    size = 12 if shown.sum() <= 1_000 else 3
    ax.scatter(numerical[ok], analytical[ok], s=size, color="tab:blue", label="coordinates")
    if (shown & bad).any():
        ax.scatter(
            numerical[shown & bad],
            analytical[shown & bad],
            s=size * 2,
            color="tab:red",
            marker="x",
            label="confirmed mismatches",
        )
    values = np.concatenate([numerical[shown], analytical[shown]])
    span = float(np.max(np.abs(values))) if values.size else 1.0
    span = span if span > 0 else 1.0
    ax.plot([-span, span], [-span, span], color="0.4", lw=1, ls="--", label="y = x")
    n_shown, a_shown = numerical[shown], analytical[shown]
    norm = float(n_shown @ n_shown)
    if norm > 0:
        slope = float(n_shown @ a_shown) / norm
        if abs(slope - 1.0) > 1e-3:
            ax.plot(
                [-span, span],
                [-slope * span, slope * span],
                color="tab:orange",
                lw=1,
                label=f"least squares: y = {slope:.3g} x",
            )
    ax.set_xlim(-1.05 * span, 1.05 * span)
    ax.set_ylim(-1.05 * span, 1.05 * span)
    ax.set_aspect("equal")
    ax.set_xlabel("numerical derivative (finite differences)")
    ax.set_ylabel("analytical derivative (your gradient)")
    who = f"{result.function}: " if result.function else ""
    ax.set_title(
        f"{who}{result.verdict}, relative error {result.relative_error:.2e}"
        + ("" if shown.all() else f" ({int(shown.sum())} of {shown.size} coordinates)"),
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def sweep_plot(result: SweepResult, path: str | Path) -> Path:
    """Relative error against step size on log axes, the ``epsilon="auto"`` step marked.

    Raises:
        PlotUnavailableError: matplotlib is not installed.
    """
    fig = _figure()
    ax = fig.add_subplot()
    finite = np.isfinite(result.errors)
    errors = np.maximum(result.errors[finite], ERROR_FLOOR)
    ax.loglog(result.steps[finite], errors, "o-", color="tab:blue", label="fixed step h")
    auto_h = result.auto_step
    if math.isfinite(auto_h) and auto_h > 0:
        ax.axvline(auto_h, color="tab:green", ls="--", lw=1)
        ax.plot(
            [auto_h],
            [max(result.auto_error, ERROR_FLOOR)],
            marker="*",
            ms=12,
            color="tab:green",
            ls="none",
            label=f'epsilon="auto" (median step {auto_h:.1e})',
        )
    ax.set_xlabel("step h")
    ax.set_ylabel("relative error of central differences")
    ax.set_title(
        f"step sweep, {result.size} coordinates: "
        "rounding error (left) meets truncation error (right)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def report_plot(summary: LogSummary, path: str | Path) -> Path:
    """Relative error of each check over the run, one line per function, log y axis.

    The x axis is the call index of the checked function when every event of it has one, the
    check's line in the log otherwise. Failed checks are marked with a red cross, non-finite
    errors are drawn at the top of the axis, and each threshold is a dashed line.

    Raises:
        PlotUnavailableError: matplotlib is not installed.
    """
    fig = _figure(8.0, 4.8)
    ax = fig.add_subplot()
    finite_all = [
        e.relative_error
        for e in summary.events
        if math.isfinite(e.relative_error) and e.relative_error > 0
    ]
    thresholds = sorted(
        {e.threshold for e in summary.events if math.isfinite(e.threshold) and e.threshold > 0}
    )
    top = 10 * max([*finite_all, *thresholds, ERROR_FLOOR])
    by_call = all(e.call_index is not None for e in summary.events)
    for f in summary.functions:
        xs = [
            float(e.call_index if by_call and e.call_index is not None else e.line)
            for e in f.events
        ]
        ys = [
            top if math.isinf(e.relative_error) else max(e.relative_error, ERROR_FLOOR)
            for e in f.events
        ]
        keep = [i for i, e in enumerate(f.events) if not math.isnan(e.relative_error)]
        ax.plot(
            [xs[i] for i in keep],
            [ys[i] for i in keep],
            marker="o",
            ms=3,
            lw=1,
            label=f"{f.function} ({f.checks} checks)",
        )
        failed = [i for i in keep if f.events[i].failed]
        if failed:
            ax.plot(
                [xs[i] for i in failed],
                [ys[i] for i in failed],
                ls="none",
                marker="x",
                ms=9,
                color="tab:red",
            )
    for t in thresholds:
        ax.axhline(t, color="tab:red", ls="--", lw=1, label=f"threshold {t:.0e}")
    ax.set_yscale("log")
    ax.set_xlabel("call index of the checked function" if by_call else "line in the log")
    ax.set_ylabel("relative error")
    ax.set_title(
        f"{summary.checks} gradient checks, {summary.failures} failed (red crosses)", fontsize=10
    )
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)
