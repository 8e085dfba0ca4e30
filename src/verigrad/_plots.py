"""Plots for the command line. matplotlib is optional (``pip install "verigrad[plot]"``).

A plot is written in the format its file name's extension names (:data:`FORMATS`: ``.png``,
``.pdf``, ``.svg``, ...); any other extension is refused before anything is drawn.

matplotlib is imported when a plot is drawn, never at import time. Figures are built with
``matplotlib.figure.Figure`` and rendered by the Agg canvas directly, so pyplot's global state,
the configured backend and any GUI are left alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .exceptions import InvalidArgumentError, VerigradError

if TYPE_CHECKING:
    from ._logreport import CheckEvent, LogSummary
    from ._sweep import SweepResult
    from .result import CheckResult

__all__ = [
    "FORMATS",
    "VERDICT_STYLES",
    "PlotUnavailableError",
    "check_plot",
    "plot_format",
    "report_figure",
    "report_plot",
    "sweep_figure",
    "sweep_plot",
]

INSTALL_HINT = 'plots need matplotlib: pip install "verigrad[plot]"'
#: Relative errors of exactly zero are drawn here on log axes.
ERROR_FLOOR = 1e-17
#: The sweep plot's error axis spans at least this many factors of ten.
MIN_DECADES = 6.0


#: The file name extensions a plot can be written as, each with matplotlib's format name.
#: Formats that need more than matplotlib and Pillow (``.pgf``: LaTeX) are left out.
FORMATS: dict[str, str] = {
    ".png": "png",
    ".pdf": "pdf",
    ".svg": "svg",
    ".svgz": "svgz",
    ".eps": "eps",
    ".ps": "ps",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
}


class PlotUnavailableError(VerigradError, ImportError):
    """matplotlib is not installed."""


def plot_format(path: str | Path) -> str:
    """The format a plot written to ``path`` takes, named by the path's extension.

    Raises:
        InvalidArgumentError: the extension is missing or names no format in :data:`FORMATS`.
    """
    suffix = Path(path).suffix
    fmt = FORMATS.get(suffix.lower())
    if fmt is None:
        what = f"the extension {suffix!r}" if suffix else "no extension"
        raise InvalidArgumentError(
            f"{str(path)!r} has {what}, which names no plot format; "
            f"end the name with one of {', '.join(FORMATS)}"
        )
    return fmt


def _figure(width: float = 6.4, height: float = 4.8) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailableError(INSTALL_HINT) from exc
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fmt = plot_format(path)
    FigureCanvasAgg(fig)
    out = Path(path)
    fig.savefig(out, format=fmt, dpi=120)
    return out


def check_plot(result: CheckResult, path: str | Path) -> Path:
    """Numerical against analytical derivative per coordinate, with the line ``y = x``.

    A correct gradient puts every point on the line; a flipped sign or a missing factor puts
    them on a line of another slope; a few wrong coordinates stand out on their own.

    Raises:
        PlotUnavailableError: matplotlib is not installed.
        InvalidArgumentError: the extension of ``path`` names no format in :data:`FORMATS`.
        OSError: the file cannot be written.
    """
    plot_format(path)
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
        InvalidArgumentError: the extension of ``path`` names no format in :data:`FORMATS`.
        OSError: the file cannot be written.
    """
    plot_format(path)
    return _save(sweep_figure(result), path)


def sweep_figure(result: SweepResult) -> Any:
    """The figure :func:`sweep_plot` writes (a ``matplotlib.figure.Figure``)."""
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
    threshold = result.threshold
    ax.axhline(threshold, color="tab:red", ls=":", lw=1, label=f"threshold {threshold:.0e}")
    # A readable scale: at least MIN_DECADES of relative error, the threshold always in view,
    # so that a flat line of errors near 1 is not zoomed into 0.99998 .. 1.0.
    shown = [float(e) for e in errors] + [threshold]
    if math.isfinite(result.auto_error):
        shown.append(max(result.auto_error, ERROR_FLOOR))
    low, high = min(shown) / 3, max(shown) * 3
    if math.log10(high / low) < MIN_DECADES:
        middle = math.sqrt(low * high)
        half = 10 ** (MIN_DECADES / 2)
        low, high = middle / half, middle * half
    ax.set_ylim(max(low, ERROR_FLOOR / 10), high)
    ax.set_xlabel("step h")
    ax.set_ylabel("relative error of central differences")
    if result.disagrees:
        title = (
            f"step sweep, {result.size} coordinates: the gradient disagrees at every step\n"
            "a bug in the gradient (or the loss), not a step-size problem"
        )
    else:
        title = (
            f"step sweep, {result.size} coordinates: "
            "rounding error (left) meets truncation error (right)"
        )
    ax.set_title(title, fontsize=9, color="tab:red" if result.disagrees else "black")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


#: How each verdict is marked on the report plot: marker, colour, and what it means.
VERDICT_STYLES: dict[str, tuple[str, str, str]] = {
    "pass": ("o", "tab:blue", "passed"),
    "kink": ("d", "tab:green", "kink"),
    "mismatch": ("x", "tab:red", "failed"),
    "nonfinite": ("X", "darkred", "failed, NaN or inf"),
    "inconclusive": ("^", "tab:orange", "undecided"),
    "nondeterministic": ("v", "tab:purple", "undecided"),
}
_OTHER_STYLE = ("s", "black", "other")


def report_plot(summary: LogSummary, path: str | Path) -> Path:
    """Relative error of each check over the run, each verdict marked its own way.

    One thin line per function joins its checks; every check is marked by its verdict
    (:data:`VERDICT_STYLES`: passes, kinks, failures, undecided checks each in their own
    marker and colour, with a legend entry and count). The x axis is the call index of the
    checked function when every event has one, the check's line in the log otherwise.
    Non-finite errors, and checks that logged no error, are drawn at the top of the axis; each
    threshold is a dashed line.

    Raises:
        PlotUnavailableError: matplotlib is not installed.
        InvalidArgumentError: the extension of ``path`` names no format in :data:`FORMATS`.
        OSError: the file cannot be written.
    """
    plot_format(path)
    return _save(report_figure(summary), path)


def report_figure(summary: LogSummary) -> Any:
    """The figure :func:`report_plot` writes (a ``matplotlib.figure.Figure``)."""
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

    def x_of(e: CheckEvent) -> float:
        return float(e.call_index if by_call and e.call_index is not None else e.line)

    def y_of(e: CheckEvent) -> float:
        if not math.isfinite(e.relative_error):
            return top
        return max(e.relative_error, ERROR_FLOOR)

    for f in summary.functions:
        ax.plot(
            [x_of(e) for e in f.events],
            [y_of(e) for e in f.events],
            lw=0.8,
            alpha=0.6,
            label=f"{f.function} ({f.checks} checks)",
        )
    verdicts: dict[str, list[CheckEvent]] = {}
    for e in summary.events:
        verdicts.setdefault(e.verdict if e.verdict in VERDICT_STYLES else "", []).append(e)
    for verdict, events in verdicts.items():
        marker, color, meaning = VERDICT_STYLES.get(verdict, _OTHER_STYLE)
        if verdict == "kink" and any(e.failed for e in events):
            meaning = "failed (kink_fails)"
        hollow = marker in ("^", "v", "d")
        ax.plot(
            [x_of(e) for e in events],
            [y_of(e) for e in events],
            ls="none",
            marker=marker,
            ms=4 if verdict == "pass" else 8,
            color=color,
            markerfacecolor="none" if hollow else color,
            label=f"{verdict or 'other verdicts'}: {meaning} ({len(events)})",
        )
    for t in thresholds:
        ax.axhline(t, color="tab:red", ls="--", lw=1, label=f"threshold {t:.0e}")
    ax.set_yscale("log")
    ax.set_xlabel("call index of the checked function" if by_call else "line in the log")
    ax.set_ylabel("relative error (no error logged, or not finite: at the top)")
    ax.set_title(
        f"{summary.checks} gradient checks: {summary.failures} failed, "
        f"{summary.undecided} undecided",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    return fig
