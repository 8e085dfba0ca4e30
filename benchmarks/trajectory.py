"""The trajectory benchmark (issue 10): checked gradients through whole training runs.

    python benchmarks/trajectory.py                    # every run (about 3 minutes on 2 cores)
    python benchmarks/trajectory.py --quick            # smaller, shorter runs (under 30 s)
    python benchmarks/trajectory.py --json out.json    # also write every outcome as JSON
    python benchmarks/trajectory.py --only lsq --only rosen

Each problem of ``benchmarks/trajectories.py`` runs its optimiser to convergence with a
gradient decorated in debug mode (every call checked, verigrad's default check settings,
``on_failure="raise"``): once with the correct gradient and once per bug. One row per run:

- steps, calls of the gradient, checks (``stats.checks``), the checks' verdicts (from their
  ``gradient_check`` log events), the warnings recorded (verigrad's and others');
- for a bug: where it switched on (call and optimiser step), where the run raised, the bug's
  size against the best central-difference error achievable there (``ratio``), and the
  outcome: ``caught`` (raised at its first active call), ``MISSED`` (ratio >= 10 and not
  caught), ``late`` (caught later), ``FALSE ALARM`` (raised before it switched on), ``-``
  (ratio below 10 and not caught);
- the mean loss evaluations per check, and the wall time.

The summary counts the correct runs that warned, failed or gave a verdict other than
"pass" or "kink" (target 0) and the bugs with ratio >= 10 not caught at their first active
check (target 0). The exit status is 0 either way: this measures, it does not gate.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import verigrad

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.trajectories import (  # noqa: E402
    BUGS,
    TARGET_RATIO,
    VERDICTS,
    Outcome,
    problems,
    run_variant,
)

__all__ = ["format_row", "main", "status", "summarize"]

_SHORT = {
    "pass": "pass",
    "mismatch": "mism",
    "kink": "kink",
    "inconclusive": "inc",
    "nondeterministic": "nondet",
    "nonfinite": "nonf",
}
_HEADER = (
    "run",
    "gradient",
    "steps",
    "calls",
    "checks",
    *(_SHORT[v] for v in VERDICTS),
    "vgW",
    "othW",
    "active@call(step)",
    "raised@call(step)",
    "ratio",
    "outcome",
    "evals/chk",
    "wall",
)


def status(o: Outcome) -> str:
    """A run's outcome in a word (see the module docstring)."""
    if not o.is_bug:
        return "BAD" if o.bad_correct else "ok"
    if o.error is not None:
        return "ERROR"
    if o.false_alarm:
        return "FALSE ALARM"
    if o.caught:
        return "caught"
    if o.missed:
        return "MISSED"
    if o.raised:
        return "late"
    return "-" if o.first_call is not None else "never on"


def _at(call: int | None, step: int | None) -> str:
    return "-" if call is None else f"{call} ({step})"


def _ratio(o: Outcome) -> str:
    """The bug's ratio; "n/a" when no step of the scan kept every estimate finite."""
    if o.ratio is None:
        return "-"
    if o.achievable is not None and math.isinf(o.achievable):
        return "n/a"
    return "inf" if math.isinf(o.ratio) else f"{o.ratio:.3g}"


def format_row(o: Outcome) -> list[str]:
    """One table row for ``o``."""
    mean = f"{np.mean(o.n_evals):.0f}" if o.n_evals else "-"
    return [
        o.run,
        o.gradient,
        str(o.steps),
        str(o.calls),
        str(o.checks),
        *(str(o.verdicts.get(v, 0)) for v in VERDICTS),
        str(o.verigrad_warnings),
        str(o.other_warnings),
        _at(o.first_call, o.first_step) if o.is_bug else "",
        _at(o.raised_call, o.raised_step),
        _ratio(o) if o.is_bug else "",
        status(o),
        mean,
        f"{o.wall_s:.2f}s",
    ]


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def summarize(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The targets and totals over ``outcomes``."""
    correct = [o for o in outcomes if not o.is_bug]
    bugs = [o for o in outcomes if o.is_bug]
    targeted = [o for o in bugs if o.targeted]
    evals = [e for o in outcomes for e in o.n_evals]
    correct_evals = [e for o in correct for e in o.n_evals]
    verdicts: dict[str, int] = {}
    for o in correct:
        for v, k in o.verdicts.items():
            verdicts[v] = verdicts.get(v, 0) + k
    return {
        "correct_runs": len(correct),
        "correct_bad": [f"{o.run}: {_why_bad(o)}" for o in correct if o.bad_correct],
        "correct_other_warnings": [
            f"{o.run}: {o.other_warnings} ({'; '.join(o.other_messages)})"
            for o in correct
            if o.other_warnings
        ],
        "correct_verdicts": verdicts,
        "bug_runs": len(bugs),
        "targeted": len(targeted),
        "caught_targeted": sum(o.caught for o in targeted),
        "missed": [
            f"{o.run}/{o.gradient}: ratio {_ratio(o)}, {status(o)}"
            + (f" ({o.error})" if o.error else "")
            for o in targeted
            if o.missed
        ],
        "below_target": sum(1 for o in bugs if not o.targeted),
        "no_finite_estimate": sum(
            1 for o in bugs if o.achievable is not None and math.isinf(o.achievable)
        ),
        "caught_below_target": sum(o.caught for o in bugs if not o.targeted),
        "false_alarms": [f"{o.run}/{o.gradient}: {status(o)}" for o in bugs if o.false_alarm],
        "never_active": [f"{o.run}/{o.gradient}" for o in bugs if o.first_call is None],
        "checks": len(evals),
        "n_evals_mean": float(np.mean(evals)) if evals else None,
        "n_evals_mean_correct": float(np.mean(correct_evals)) if correct_evals else None,
        "wall_s": sum(o.wall_s for o in outcomes),
    }


def _why_bad(o: Outcome) -> str:
    parts = []
    if o.raised:
        parts.append(f"raised GradientMismatchError at call {o.raised_call} (step {o.raised_step})")
    if o.error:
        parts.append(o.error)
    odd = {v: k for v, k in o.verdicts.items() if v not in ("pass", "kink") and k}
    if odd:
        parts.append("verdicts " + ", ".join(f"{v} x{k}" for v, k in odd.items()))
    if o.verigrad_warnings:
        parts.append(f"{o.verigrad_warnings} verigrad warning(s)")
    return "; ".join(parts)


def _print_summary(s: dict[str, Any]) -> None:
    print()
    print(
        f"correct runs with a verigrad warning, a failure or a verdict other than pass/kink: "
        f"{len(s['correct_bad'])} of {s['correct_runs']} (target 0)"
    )
    for line in s["correct_bad"]:
        print(f"  {line}")
    print(f"  verdicts over all checks of correct runs: {s['correct_verdicts']}")
    if s["correct_other_warnings"]:
        print(f"correct runs with other warnings: {len(s['correct_other_warnings'])}")
        for line in s["correct_other_warnings"]:
            print(f"  {line}")
    print(
        f"bugs with ratio >= {TARGET_RATIO:g} not caught at their first active check: "
        f"{len(s['missed'])} of {s['targeted']} (target 0)"
    )
    for line in s["missed"]:
        print(f"  {line}")
    print(
        f"bugs below the target ratio: {s['below_target']} "
        f"({s['caught_below_target']} caught at their first active check anyway; "
        f"{s['no_finite_estimate']} with ratio n/a: no step of the scan kept every central "
        "difference finite)"
    )
    if s["false_alarms"]:
        print(f"buggy runs that raised before the bug switched on: {len(s['false_alarms'])}")
        for line in s["false_alarms"]:
            print(f"  {line}")
    if s["never_active"]:
        print(f"bugs that never switched on: {', '.join(s['never_active'])}")
    if s["n_evals_mean"] is not None:
        print(
            f"loss evaluations per check: {s['n_evals_mean']:.1f} mean over {s['checks']} "
            f"checks ({s['n_evals_mean_correct']:.1f} on correct runs)"
        )
    print(f"wall time in runs: {s['wall_s']:.1f}s")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run every problem with its correct gradient and each bug; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller, shorter runs (< 30 s)")
    parser.add_argument("--json", metavar="PATH", help="also write every outcome as JSON to PATH")
    parser.add_argument(
        "--only", action="append", metavar="TEXT", help="only problems whose name contains TEXT"
    )
    args = parser.parse_args(argv)

    has_scipy = importlib.util.find_spec("scipy") is not None
    chosen = [
        p
        for p in problems(args.quick)
        if (not args.only or any(t in p.name for t in args.only))
        and (has_scipy or not p.needs_scipy)
    ]
    print(
        f"verigrad {verigrad.__version__} trajectory benchmark"
        f"{' (quick)' if args.quick else ''}: {len(chosen)} problems x "
        f"(correct + up to {len(BUGS)} bugs), debug mode, default check settings"
        + ("" if has_scipy else "; scipy missing: its problems skipped")
    )
    print()
    start = time.perf_counter()
    outcomes: list[Outcome] = []
    rows = [list(_HEADER)]
    for problem in chosen:
        for bug in (None, *problem.bugs):
            o = run_variant(problem, bug)
            outcomes.append(o)
            rows.append(format_row(o))
            if sys.stdout.isatty():
                print("  " + "  ".join(rows[-1]), file=sys.stderr)
    wall = time.perf_counter() - start
    print(_table(rows))
    summary = summarize(outcomes)
    _print_summary(summary)
    print(f"total wall time {wall:.1f}s")
    if args.json:
        summary["environment"] = {
            "verigrad": verigrad.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "quick": args.quick,
            "wall_s": wall,
        }
        data = {"summary": summary, "outcomes": [o.to_json() for o in outcomes]}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
