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

Then it lists every case whose verdict was not among its expected ones.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

import verigrad

if __package__:
    from .cases import GROUPS, KINK, MISMATCH, Case, all_cases
else:  # run as a script: benchmarks/accuracy is on sys.path
    from cases import GROUPS, KINK, MISMATCH, Case, all_cases  # type: ignore[no-redef,import-not-found,unused-ignore]

__all__ = ["VERDICTS", "evaluate", "format_table", "is_false_alarm", "main", "summarize"]

#: Verdicts in report order; a verdict not listed here is reported after them.
VERDICTS = ("pass", "mismatch", "nonfinite", "kink", "nondeterministic", "inconclusive")
#: What a case that raised counts as.
ERROR = "error"
#: Verdicts that are false alarms on a correct gradient.
ALARMS = frozenset({"mismatch", "nonfinite"})

Outcome = tuple[Case, Any]  # (case, CheckResult or the exception it raised)


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
        for u in unexpected:
            if "error" in u:
                what = u["error"]
            elif isinstance(u["relative_error"], float):
                what = f"relative error {u['relative_error']:.3g}, {u['n_evals']} evals"
            else:
                what = f"relative error {u['relative_error']}, {u['n_evals']} evals"
            lines.append(
                f"  {u['group']:<7}  {u['name']:<{width}}  got {u['verdict']!r}, "
                f"expected {' or '.join(map(repr, u['expected']))}  ({what})"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the catalogue, print the table, optionally write the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--method", help="check_gradient's method (default: verigrad's default)")
    parser.add_argument("--seed", type=int, default=0, help="the catalogue's seed (default 0)")
    parser.add_argument("--group", choices=GROUPS, action="append", help="only these groups")
    parser.add_argument("--json", metavar="PATH", help="also write the summary as JSON to PATH")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case's verdict")
    args = parser.parse_args(argv)

    check_kwargs: dict[str, Any] = {}
    if args.method is not None:
        check_kwargs["method"] = args.method
    cases = [c for c in all_cases(args.seed) if not args.group or c.group in args.group]
    start = time.perf_counter()
    results = evaluate(cases, **check_kwargs)
    wall = time.perf_counter() - start
    summary = summarize(results)
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
        for case, result in results:
            verdict = verdict_of(result)
            mark = " " if verdict in case.expected else "!"
            extra = (
                f"{type(result).__name__}"
                if isinstance(result, BaseException)
                else f"rel {result.relative_error:.2e}  evals {result.n_evals}"
            )
            print(f"{mark} {case.group:<7}  {case.name:<{width}}  {verdict:<12}  {extra}")
        print()
    print(format_table(summary))
    print(f"\nwall time {wall:.1f}s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2, sort_keys=False)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
