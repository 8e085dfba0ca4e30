"""Run the accuracy catalogue through ``verigrad.check_gradient`` and report how it does.

    python benchmarks/accuracy/run.py                       # default settings
    python benchmarks/accuracy/run.py --method central --json accuracy.json

Every case is checked once with the given settings (verigrad's defaults unless told). An
exception counts as an error, never as a verdict. Per group the table gives the verdict counts
and:

- detection: of the cases whose only acceptable verdict is "mismatch" (the buggy gradients,
  and the invalid subgradients at kinks), the fraction reported as "mismatch";
- false alarms: of the cases with a correct gradient (or a valid subgradient), the fraction
  reported as "mismatch" or "nonfinite";
- at kink: of the cases exactly at a kink with a valid subgradient, the fraction reported
  as "kink";
- the loss evaluations spent (``result.n_evals``), in total and per case.

Then it lists every case whose verdict was not among its expected ones, and two more tables:

- calibration: for every case with a correct gradient (not those exactly at a kink), the
  actual error of each numerical derivative, ``|numerical_i - g_true_i|``, against the check's
  own estimate ``errors_i``, per group: the median, 95th percentile and maximum of
  actual/estimated, the fraction of under-estimates (actual > estimated: they make false
  alarms) and of over-estimates (estimated > 100x actual: they hide bugs);
- evaluations: per case and in total, against ``baseline_evals.json`` (today's evaluations,
  issue 10: a check may spend at most twice as many on the cases recorded there).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import verigrad

if __package__:
    from .cases import GROUPS, KINK, MISMATCH, Case, all_cases
else:  # run as a script: benchmarks/accuracy is on sys.path
    from cases import GROUPS, KINK, MISMATCH, Case, all_cases  # type: ignore[no-redef,import-not-found,unused-ignore]

__all__ = [
    "BASELINE",
    "VERDICTS",
    "calibration",
    "compare_evals",
    "evaluate",
    "format_calibration",
    "format_evals",
    "format_table",
    "is_false_alarm",
    "load_baseline",
    "main",
    "summarize",
]

#: Verdicts in report order; a verdict not listed here is reported after them.
VERDICTS = ("pass", "mismatch", "nonfinite", "kink", "nondeterministic", "inconclusive")
#: What a case that raised counts as.
ERROR = "error"
#: Verdicts that are false alarms on a correct gradient.
ALARMS = frozenset({"mismatch", "nonfinite"})

Outcome = tuple[Case, Any]  # (case, CheckResult or the exception it raised)

#: Today's loss evaluations per case (and their "total"), recorded with default settings at
#: commit dbea2a1, before issue 10's rewrite of the check: the cost it may at most double.
BASELINE = Path(__file__).resolve().with_name("baseline_evals.json")
#: An estimate this many times the actual error is an over-estimate: it could hide a bug.
OVER_FACTOR = 100.0


def evaluate(cases: Iterable[Case], **check_kwargs: Any) -> list[Outcome]:
    """Check every case with ``verigrad.check_gradient(case.loss, case.x, case.grad, ...)``.

    Returns ``(case, result)`` pairs, where ``result`` is the exception for a case that raised.
    """
    out: list[Outcome] = []
    for case in cases:
        try:
            result: Any = verigrad.check_gradient(case.loss, case.x, case.grad, **check_kwargs)
        except Exception as exc:
            result = exc
        out.append((case, result))
    return out


def verdict_of(result: Any) -> str:
    """The verdict of a result, or ``"error"`` for an exception."""
    return ERROR if isinstance(result, BaseException) else str(result.verdict)


def is_false_alarm(case: Case, verdict: str) -> bool:
    """A correct gradient (one that may not be a mismatch) reported as mismatch or nonfinite.

    An exception is not counted here: it is reported as an error, and listed.
    """
    return "mismatch" not in case.expected and verdict in ALARMS


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _group_summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    verdicts = [verdict_of(r) for _, r in outcomes]
    evals = [int(r.n_evals) for _, r in outcomes if not isinstance(r, BaseException)]
    seconds = [float(r.duration_s) for _, r in outcomes if not isinstance(r, BaseException)]
    buggy = [v for (c, _), v in zip(outcomes, verdicts, strict=True) if c.expected == MISMATCH]
    correct = [
        (c, v) for (c, _), v in zip(outcomes, verdicts, strict=True) if "mismatch" not in c.expected
    ]
    alarms = sum(is_false_alarm(c, v) for c, v in correct)
    at_kink = [v for (c, _), v in zip(outcomes, verdicts, strict=True) if c.expected == KINK]
    counts = Counter(verdicts)
    order = [*VERDICTS, *sorted(set(counts) - {*VERDICTS, ERROR})]
    return {
        "cases": len(outcomes),
        "verdicts": {v: counts.get(v, 0) for v in order},
        "errors": counts.get(ERROR, 0),
        "expected_mismatch": len(buggy),
        "detected": sum(v == "mismatch" for v in buggy),
        "detection_rate": _rate(sum(v == "mismatch" for v in buggy), len(buggy)),
        "correct_gradients": len(correct),
        "false_alarms": alarms,
        "false_alarm_rate": _rate(alarms, len(correct)),
        "at_kink": len(at_kink),
        "reported_kink": sum(v == "kink" for v in at_kink),
        "kink_rate": _rate(sum(v == "kink" for v in at_kink), len(at_kink)),
        "as_expected": sum(v in c.expected for (c, _), v in zip(outcomes, verdicts, strict=True)),
        "n_evals_total": sum(evals),
        "n_evals_mean": sum(evals) / len(evals) if evals else None,
        "seconds_total": sum(seconds),
    }


def summarize(results: Sequence[Outcome]) -> dict[str, Any]:
    """Per-group and overall figures, and the cases whose verdict was not expected.

    Returns a JSON-serialisable dict: ``groups`` (group -> figures), ``total`` (the same over
    all cases) and ``unexpected`` (one entry per case with an unexpected verdict or an error).
    """
    present = {c.group for c, _ in results}
    groups = [g for g in GROUPS if g in present] + sorted(present - set(GROUPS))
    unexpected = []
    for case, result in results:
        verdict = verdict_of(result)
        if verdict in case.expected:
            continue
        entry: dict[str, Any] = {
            "name": case.name,
            "group": case.group,
            "expected": sorted(case.expected),
            "verdict": verdict,
            "shape": list(case.x.shape),
            "dtype": str(case.x.dtype),
        }
        if isinstance(result, BaseException):
            entry["error"] = f"{type(result).__name__}: {result}"
        else:
            rel = float(result.relative_error)
            entry["relative_error"] = rel if math.isfinite(rel) else str(rel)
            entry["n_evals"] = int(result.n_evals)
        unexpected.append(entry)
    return {
        "groups": {g: _group_summary([o for o in results if o[0].group == g]) for g in groups},
        "total": _group_summary(list(results)),
        "unexpected": unexpected,
    }


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a plain-text table per group, then the unexpected verdicts."""
    rows = [*summary["groups"].items(), ("total", summary["total"])]
    verdicts: list[str] = []
    for _, s in rows:
        verdicts += [v for v in s["verdicts"] if v not in verdicts]
    header = [
        "group",
        "cases",
        *verdicts,
        ERROR,
        "detection",
        "false alarms",
        "at kink -> kink",
        "evals",
        "evals/case",
        "time",
    ]
    table = [header]
    for name, s in rows:
        table.append(
            [
                name,
                str(s["cases"]),
                *(str(s["verdicts"].get(v, 0)) for v in verdicts),
                str(s["errors"]),
                f"{_pct(s['detection_rate'])} ({s['detected']}/{s['expected_mismatch']})",
                f"{_pct(s['false_alarm_rate'])} ({s['false_alarms']}/{s['correct_gradients']})",
                f"{_pct(s['kink_rate'])} ({s['reported_kink']}/{s['at_kink']})",
                str(s["n_evals_total"]),
                "-" if s["n_evals_mean"] is None else f"{s['n_evals_mean']:.0f}",
                f"{s['seconds_total']:.2f}s",
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    unexpected = summary["unexpected"]
    lines.append("")
    if not unexpected:
        lines.append("every verdict was among the expected ones")
    else:
        lines.append(f"{len(unexpected)} case(s) with a verdict not among the expected ones:")
        width = max(len(u["name"]) for u in unexpected)
        gwidth = max(len(u["group"]) for u in unexpected)
        for u in unexpected:
            if "error" in u:
                what = u["error"]
            elif isinstance(u["relative_error"], float):
                what = f"relative error {u['relative_error']:.3g}, {u['n_evals']} evals"
            else:
                what = f"relative error {u['relative_error']}, {u['n_evals']} evals"
            lines.append(
                f"  {u['group']:<{gwidth}}  {u['name']:<{width}}  got {u['verdict']!r}, "
                f"expected {' or '.join(map(repr, u['expected']))}  ({what})"
            )
    return "\n".join(lines)


# -- calibration of the error estimates --------------------------------------------------------


def _true_gradient(case: Case) -> npt.NDArray[np.float64]:
    """``case.grad`` at the point in float64, flat: float32 data and gradients promote, so a
    float32 case's gradient is its formula's, free of float32 rounding."""
    x64 = np.array(case.x, dtype=np.float64)
    return np.asarray(case.grad(x64), dtype=np.float64).reshape(-1)


def _case_calibration(case: Case, result: Any) -> dict[str, Any] | None:
    """Actual and estimated errors of one correct case's numerical derivatives, or None."""
    errors = getattr(result, "errors", None)
    if isinstance(result, BaseException) or errors is None:
        return None
    numerical = np.asarray(result.numerical, dtype=np.float64).reshape(-1)
    estimated = np.asarray(errors, dtype=np.float64).reshape(-1)
    if numerical.size != case.x.size or estimated.size != case.x.size:
        return None
    index = np.arange(case.x.size)
    if result.checked_indices is not None:
        index = np.asarray(result.checked_indices, dtype=np.intp).reshape(-1)
    if "kink" in case.expected and result.kinks:  # no estimate is claimed across a kink
        kinks = np.ravel_multi_index(tuple(np.array(result.kinks).T), case.x.shape)
        index = np.setdiff1d(index, kinks)
    g_true = _true_gradient(case)[index]
    numerical, estimated = numerical[index], estimated[index]
    keep = np.isfinite(numerical) & np.isfinite(estimated)
    actual = np.abs(numerical[keep] - g_true[keep])
    estimated = estimated[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(estimated > 0, actual / estimated, np.where(actual > 0, np.inf, 0.0))
    return {
        "ratio": ratio,
        "under": actual > estimated,
        "over": estimated > OVER_FACTOR * actual,
    }


def _number(v: float) -> float | str:
    """A JSON-safe float: non-finite values as strings."""
    return float(v) if math.isfinite(v) else str(float(v))


def _calibration_figures(parts: Sequence[tuple[Case, dict[str, Any]]]) -> dict[str, Any]:
    ratio = np.concatenate([p["ratio"] for _, p in parts]) if parts else np.empty(0)
    under = np.concatenate([p["under"] for _, p in parts]) if parts else np.empty(0, bool)
    over = np.concatenate([p["over"] for _, p in parts]) if parts else np.empty(0, bool)
    worst = sorted(
        (
            {"name": c.name, "under": float(np.mean(p["under"])), "coordinates": p["under"].size}
            for c, p in parts
            if p["under"].size and np.any(p["under"])
        ),
        key=lambda w: -w["under"],
    )
    if not ratio.size:
        return {"cases": len(parts), "coordinates": 0, "cases_with_under": worst}
    return {
        "cases": len(parts),
        "coordinates": int(ratio.size),
        "median": _number(float(np.quantile(ratio, 0.5, method="higher"))),
        "p95": _number(float(np.quantile(ratio, 0.95, method="higher"))),
        "max": _number(float(np.max(ratio))),
        "under": float(np.mean(under)),
        "over": float(np.mean(over)),
        "cases_with_under": worst,
    }


def calibration(results: Sequence[Outcome]) -> dict[str, Any]:
    """How the check's error estimates compare with its actual errors, on correct gradients.

    For every case whose gradient is correct (``"mismatch"`` not expected), except those
    exactly at a kink (no true derivative there), every coordinate estimated on its own (all,
    or ``result.checked_indices``) with a finite numerical derivative and a finite estimate
    counts: actual ``|numerical_i - g_true_i|`` (``g_true`` the case's gradient evaluated in
    float64) against ``result.errors_i``. Coordinates the check reported as kinks are left
    out of cases that may be kinked. A case whose result has no ``errors`` is skipped.

    Returns ``groups`` (group -> figures), ``total``, and ``skipped`` (case names): figures are
    ``cases``, ``coordinates``, ``median``/``p95``/``max`` of actual/estimated, ``under``
    (fraction with actual > estimated), ``over`` (fraction with estimated > 100x actual), and
    ``cases_with_under`` (each case with an under-estimate and its fraction of them).
    """
    parts: list[tuple[Case, dict[str, Any]]] = []
    skipped: list[str] = []
    for case, result in results:
        if "mismatch" in case.expected or case.expected == KINK:
            continue
        part = _case_calibration(case, result)
        if part is None:
            skipped.append(case.name)
        else:
            parts.append((case, part))
    present = {c.group for c, _ in parts}
    groups = [g for g in GROUPS if g in present] + sorted(present - set(GROUPS))
    return {
        "groups": {g: _calibration_figures([p for p in parts if p[0].group == g]) for g in groups},
        "total": _calibration_figures(parts),
        "skipped": skipped,
    }


def _fmt_ratio(v: Any) -> str:
    return v if isinstance(v, str) else f"{v:.3g}"


def format_calibration(cal: dict[str, Any]) -> str:
    """The calibration as a table per group, then the cases with under-estimates."""
    header = ["group", "cases", "coords", "median", "p95", "max", "under", f">{OVER_FACTOR:g}x"]
    table = [header]
    rows = [*cal["groups"].items(), ("total", cal["total"])]
    for name, f in rows:
        if not f["coordinates"]:
            table.append([name, str(f["cases"]), "0", "-", "-", "-", "-", "-"])
            continue
        table.append(
            [
                name,
                str(f["cases"]),
                str(f["coordinates"]),
                _fmt_ratio(f["median"]),
                _fmt_ratio(f["p95"]),
                _fmt_ratio(f["max"]),
                f"{100 * f['under']:.2f}%",
                f"{100 * f['over']:.1f}%",
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    sep = "  ".join("-" * w for w in widths)
    lines = [
        "calibration: actual error / estimated error of the numerical derivatives "
        "(correct gradients)",
        "",
    ]
    for k, r in enumerate(table):
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if k == 0 or k == len(table) - 2:
            lines.append(sep)
    if cal["skipped"]:
        lines.append(f"no error estimates (skipped): {', '.join(cal['skipped'])}")
    worst = cal["total"]["cases_with_under"]
    if worst:
        lines.append("")
        lines.append(f"{len(worst)} case(s) with under-estimates (fraction of their coordinates):")
        width = max(len(w["name"]) for w in worst)
        for w in worst:
            lines.append(f"  {w['name']:<{width}}  {100 * w['under']:6.2f}% of {w['coordinates']}")
    return "\n".join(lines)


# -- evaluations against the baseline ----------------------------------------------------------


def load_baseline(path: Path | str = BASELINE) -> dict[str, int]:
    """The recorded evaluations per case name (and ``"total"``)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return {str(k): int(v) for k, v in data.items()}


def compare_evals(results: Sequence[Outcome], baseline: Mapping[str, int]) -> dict[str, Any]:
    """Loss evaluations of the cases recorded in ``baseline``, now against then.

    Returns ``cases`` (name, baseline, now, ratio; ``now`` is None for a case that raised),
    ``baseline_total`` and ``total`` over the cases that ran and are in the baseline (those
    that raised count their baseline, so that an error never looks cheap), and ``ratio``.
    """
    rows = []
    for case, result in results:
        if case.name not in baseline or case.name == "total":
            continue
        then = int(baseline[case.name])
        now = None if isinstance(result, BaseException) else int(result.n_evals)
        ratio = None if now is None or then == 0 else now / then
        rows.append({"name": case.name, "baseline": then, "now": now, "ratio": ratio})
    then_total = sum(r["baseline"] for r in rows)
    now_total = sum(r["baseline"] if r["now"] is None else r["now"] for r in rows)
    return {
        "cases": rows,
        "baseline_total": then_total,
        "total": now_total,
        "ratio": now_total / then_total if then_total else None,
        "errors": [r["name"] for r in rows if r["now"] is None],
    }


def format_evals(evals: dict[str, Any]) -> str:
    """Per case and in total, the evaluations now against the baseline."""
    rows = evals["cases"]
    if not rows:
        return "evaluations: no case of the baseline was run"
    ratio = "-" if evals["ratio"] is None else f"{evals['ratio']:.2f}"
    lines = [
        f"evaluations against the baseline ({len(rows)} cases): {evals['total']} now, "
        f"{evals['baseline_total']} then, ratio {ratio}",
        "",
    ]
    width = max(len(r["name"]) for r in rows)
    lines.append(f"  {'case':<{width}}  {'then':>6}  {'now':>6}  ratio")
    for r in rows:
        now = "error" if r["now"] is None else str(r["now"])
        rat = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"  {r['name']:<{width}}  {r['baseline']:>6}  {now:>6}  {rat:>5}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the catalogue, print the table, optionally write the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--method", help="check_gradient's method (default: verigrad's default)")
    parser.add_argument("--seed", type=int, default=0, help="the catalogue's seed (default 0)")
    parser.add_argument("--group", choices=GROUPS, action="append", help="only these groups")
    parser.add_argument("--json", metavar="PATH", help="also write the summary as JSON to PATH")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case's verdict")
    parser.add_argument(
        "--baseline",
        metavar="PATH",
        default=str(BASELINE),
        help="evaluations to compare with (default: baseline_evals.json next to this script)",
    )
    args = parser.parse_args(argv)

    check_kwargs: dict[str, Any] = {}
    if args.method is not None:
        check_kwargs["method"] = args.method
    cases = [c for c in all_cases(args.seed) if not args.group or c.group in args.group]
    start = time.perf_counter()
    results = evaluate(cases, **check_kwargs)
    wall = time.perf_counter() - start
    summary = summarize(results)
    summary["calibration"] = calibration(results)
    baseline_path = Path(args.baseline)
    if baseline_path.is_file():
        summary["evals_vs_baseline"] = compare_evals(results, load_baseline(baseline_path))
    summary["settings"] = {"seed": args.seed, "check_kwargs": check_kwargs}
    summary["environment"] = {
        "verigrad": verigrad.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "wall_s": wall,
    }

    settings = ", ".join(f"{k}={v!r}" for k, v in check_kwargs.items()) or "default settings"
    print(f"verigrad {verigrad.__version__} accuracy suite: {len(cases)} cases, {settings}")
    print()
    if args.verbose:
        width = max(len(c.name) for c in cases)
        gwidth = max(len(c.group) for c in cases)
        for case, result in results:
            verdict = verdict_of(result)
            mark = " " if verdict in case.expected else "!"
            extra = (
                f"{type(result).__name__}"
                if isinstance(result, BaseException)
                else f"rel {result.relative_error:.2e}  evals {result.n_evals}"
            )
            print(f"{mark} {case.group:<{gwidth}}  {case.name:<{width}}  {verdict:<16}  {extra}")
        print()
    print(format_table(summary))
    print()
    print(format_calibration(summary["calibration"]))
    print()
    if "evals_vs_baseline" in summary:
        print(format_evals(summary["evals_vs_baseline"]))
    else:
        print(f"evaluations: no baseline at {baseline_path}")
    print(f"\nwall time {wall:.1f}s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2, sort_keys=False)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
