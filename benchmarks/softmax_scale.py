"""Directional checks at scale: a 30,730-parameter softmax classifier, correct and buggy.

Run by hand (never in the test suite):

    python benchmarks/softmax_scale.py                        # 10 trials per variant
    python benchmarks/softmax_scale.py --trials 50 --json softmax_scale.json
    python benchmarks/softmax_scale.py --sizes 307 3073 --full

A cs231n-style linear softmax classifier on synthetic data: W of shape (3073, 10), that is 3072
features plus a bias folded in as a constant-1 feature, 10 classes, N = 200 examples, the mean
cross-entropy plus 0.5 * reg * ||W||^2. Each gradient variant (the correct one and eight bugs)
is checked T times with verigrad's default ``check_gradient`` (``method="auto"``: beyond 2,000
parameters, random directions plus a random subset of coordinates), each trial with its own
``seed=`` and, for the bugs placed at a random index, its own index. The table gives the
verdict counts, the hit rate (the fraction of trials with the expected verdict: "mismatch" for
a bug, "pass" for the correct gradient, whose misses are false alarms), for the localized bugs
how often the wrong coordinate (or a coordinate of the wrong row) was named in
``result.mismatched``, and the mean loss evaluations and wall time per check.

A second table checks the correct gradient of the same loss at several sizes (``--sizes``, in
rows D of W, bias included) to show that the evaluations spent do not grow with n, next to
what a full central check would cost (2n + 2 evaluations: the point, 2n shifted values, one
re-evaluation). For n = 30,730 that cost is estimated from the measured time of one loss
evaluation; ``--full`` also runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import timeit
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import verigrad

N_EXAMPLES = 200
N_CLASSES = 10
REG = 1e-3
MAIN_D = 3073  # 3072 features + the bias column: n = 30,730
VERDICTS = ("pass", "mismatch", "inconclusive", "kink", "nonfinite", "nondeterministic")

Grad = Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]


# --- the model ------------------------------------------------------------------------------


def make_problem(d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic data and weights: X (N, d) standard normal with a ones column last, labels
    in 0..9, W = 1e-3 * standard normal of shape (d, 10)."""
    rng = np.random.default_rng(seed)
    X = np.empty((N_EXAMPLES, d))
    X[:, :-1] = rng.standard_normal((N_EXAMPLES, d - 1))
    X[:, -1] = 1.0
    y = rng.integers(0, N_CLASSES, size=N_EXAMPLES)
    W = 1e-3 * rng.standard_normal((d, N_CLASSES))
    return X, y, W


def softmax_loss(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> float:
    """Mean cross-entropy of softmax(X W) plus 0.5 * reg * ||W||^2 (stable softmax)."""
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scores).sum(axis=1))
    data = float(np.mean(log_norm - scores[np.arange(len(y)), y]))
    return data + 0.5 * reg * float(np.sum(W * W))


def _probs(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    return np.asarray(p)


def grad_correct(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> np.ndarray:
    """X^T (P - Y) / N + reg W."""
    p = _probs(W, X)
    p[np.arange(len(y)), y] -= 1.0
    return np.asarray(X.T @ p / len(y) + reg * W)


def grad_sign_flipped(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> np.ndarray:
    """The whole gradient negated."""
    return -grad_correct(W, X, y, reg)


def grad_no_reg(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> np.ndarray:
    """The regularisation term forgotten."""
    return grad_correct(W, X, y, 0.0)


def grad_double_data(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> np.ndarray:
    """A wrong reduction: the data term divided by N / 2 instead of N."""
    p = _probs(W, X)
    p[np.arange(len(y)), y] -= 1.0
    return np.asarray(X.T @ p / (len(y) / 2) + reg * W)


def grad_missing_minus_one(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> np.ndarray:
    """The -1 at each example's label forgotten: X^T P / N + reg W."""
    return np.asarray(X.T @ _probs(W, X) / len(y) + reg * W)


def grad_stale(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> np.ndarray:
    """The gradient at a stale point, one step behind: W - 0.01 * grad(W)."""
    return grad_correct(W - 0.01 * grad_correct(W, X, y, reg), X, y, reg)


def one_wrong(rel: float, flat_index: int) -> Grad:
    """The correct gradient with one coordinate off by a relative ``rel``."""

    def grad(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> np.ndarray:
        g = grad_correct(W, X, y, reg)
        g.reshape(-1)[flat_index] *= 1.0 + rel
        return g

    return grad


def row_zeroed(row: int) -> Grad:
    """The correct gradient with one feature's row (its 10 class weights) zeroed."""

    def grad(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> np.ndarray:
        g = grad_correct(W, X, y, reg)
        g[row] = 0.0
        return g

    return grad


# --- the variants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A gradient variant. ``make(rng, shape)`` returns the gradient function for one trial
    and the coordinates it corrupts when those are few (else None)."""

    name: str
    expected: str
    make: Callable[[np.random.Generator, tuple[int, int]], tuple[Grad, set[tuple[int, int]] | None]]
    where: str = ""  # "coordinate" or "row": what counts as naming the bug


def _fixed(grad: Grad) -> Callable[..., tuple[Grad, None]]:
    return lambda rng, shape: (grad, None)


def _one_wrong(rel: float) -> Callable[..., tuple[Grad, set[tuple[int, int]]]]:
    def make(rng: np.random.Generator, shape: tuple[int, int]) -> Any:
        k = int(rng.integers(shape[0] * shape[1]))
        return one_wrong(rel, k), {tuple(int(i) for i in np.unravel_index(k, shape))}

    return make


def _row(rng: np.random.Generator, shape: tuple[int, int]) -> Any:
    row = int(rng.integers(shape[0] - 1))  # a feature's row, not the bias
    return row_zeroed(row), {(row, c) for c in range(shape[1])}


VARIANTS = (
    Variant("correct", "pass", _fixed(grad_correct)),
    Variant("sign flipped", "mismatch", _fixed(grad_sign_flipped)),
    Variant("missing reg term", "mismatch", _fixed(grad_no_reg)),
    Variant("data term x2 (/(N/2))", "mismatch", _fixed(grad_double_data)),
    Variant("missing -1 at label", "mismatch", _fixed(grad_missing_minus_one)),
    Variant("one coord, 1e-3 rel", "mismatch", _one_wrong(1e-3), "coordinate"),
    Variant("one coord, 1e-2 rel", "mismatch", _one_wrong(1e-2), "coordinate"),
    Variant("stale point (-0.01 g)", "mismatch", _fixed(grad_stale)),
    Variant("one row zeroed", "mismatch", _row, "row"),
)


def run_variant(
    variant: Variant, X: np.ndarray, y: np.ndarray, W: np.ndarray, trials: int
) -> dict[str, Any]:
    """``trials`` default checks of one variant, each with its own seed and bug placement."""
    verdicts: Counter[str] = Counter()
    named = 0
    evals: list[int] = []
    times: list[float] = []
    rel_errors: list[float] = []
    misses: list[dict[str, Any]] = []
    for trial in range(trials):
        grad, bad = variant.make(np.random.default_rng([1234, trial]), W.shape)
        start = time.perf_counter()
        result = verigrad.check_gradient(softmax_loss, W, grad, args=(X, y, REG), seed=trial)
        times.append(time.perf_counter() - start)
        verdicts[result.verdict] += 1
        evals.append(result.n_evals)
        rel_errors.append(float(result.relative_error))
        if bad is not None and any(tuple(c) in bad for c in result.mismatched):
            named += 1
        if result.verdict != variant.expected:
            misses.append(
                {
                    "trial": trial,
                    "verdict": result.verdict,
                    "corrupted": sorted(bad)[:3] if bad else None,
                    "notes": list(result.notes),
                }
            )
    return {
        "variant": variant.name,
        "expected": variant.expected,
        "trials": trials,
        "verdicts": dict(verdicts),
        "hit_rate": verdicts[variant.expected] / trials,
        "named": named if variant.where else None,
        "mean_n_evals": float(np.mean(evals)),
        "max_n_evals": int(np.max(evals)),
        "mean_time_s": float(np.mean(times)),
        "median_relative_error": float(np.median(rel_errors)),
        "unexpected": misses,
    }


def loss_time(X: np.ndarray, y: np.ndarray, W: np.ndarray) -> float:
    """Best-of-5 seconds per loss evaluation."""
    number = 50
    return min(timeit.repeat(lambda: softmax_loss(W, X, y, REG), number=number, repeat=5)) / number


def run_sizes(sizes: Sequence[int], trials: int) -> list[dict[str, Any]]:
    """The correct gradient at each size D (rows of W): evaluations spent vs a full check."""
    rows = []
    for d in sizes:
        X, y, W = make_problem(d)
        n = W.size
        evals, times, passed = [], [], 0
        for trial in range(trials):
            start = time.perf_counter()
            r = verigrad.check_gradient(softmax_loss, W, grad_correct, args=(X, y, REG), seed=trial)
            times.append(time.perf_counter() - start)
            evals.append(r.n_evals)
            passed += r.verdict == "pass"
        t_eval = loss_time(X, y, W)
        rows.append(
            {
                "D": d,
                "n": n,
                "trials": trials,
                "passed": passed,
                "mean_n_evals": float(np.mean(evals)),
                "max_n_evals": int(np.max(evals)),
                "mean_time_s": float(np.mean(times)),
                "loss_eval_s": t_eval,
                "full_n_evals": 2 * n + 2,
                "full_time_estimate_s": (2 * n + 2) * t_eval,
            }
        )
    return rows


def run_full(X: np.ndarray, y: np.ndarray, W: np.ndarray) -> dict[str, Any]:
    """One full central check of the correct gradient (every coordinate)."""
    start = time.perf_counter()
    r = verigrad.check_gradient(softmax_loss, W, grad_correct, args=(X, y, REG), method="central")
    return {
        "n": W.size,
        "verdict": r.verdict,
        "n_evals": r.n_evals,
        "time_s": time.perf_counter() - start,
        "relative_error": float(r.relative_error),
    }


# --- output ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "verigrad": verigrad.__version__,
    }


def print_variants(rows: list[dict[str, Any]], n: int, t_eval: float) -> None:
    print(
        f"\ndefault check_gradient (method='auto') on a linear softmax classifier, n = {n:,} "
        f"(W {MAIN_D} x {N_CLASSES}), N = {N_EXAMPLES}, reg = {REG:g}; "
        f"one loss evaluation {t_eval * 1e3:.2f} ms"
    )
    head = (
        f"{'variant':24s} {'expect':8s} {'pass':>4s} {'mism':>4s} {'inc':>4s} {'other':>5s} "
        f"{'hit rate':>8s} {'named':>6s} {'evals':>6s} {'max':>5s} {'time ms':>8s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        v = r["verdicts"]
        other = r["trials"] - v.get("pass", 0) - v.get("mismatch", 0) - v.get("inconclusive", 0)
        named = f"{r['named']}/{r['trials']}" if r["named"] is not None else "-"
        print(
            f"{r['variant']:24s} {r['expected']:8s} {v.get('pass', 0):4d} "
            f"{v.get('mismatch', 0):4d} {v.get('inconclusive', 0):4d} {other:5d} "
            f"{r['hit_rate']:8.0%} {named:>6s} {r['mean_n_evals']:6.0f} {r['max_n_evals']:5d} "
            f"{r['mean_time_s'] * 1e3:8.1f}"
        )
    bugs = [r for r in rows if r["expected"] == "mismatch"]
    caught = sum(r["verdicts"].get("mismatch", 0) for r in bugs)
    total = sum(r["trials"] for r in bugs)
    correct = [r for r in rows if r["expected"] == "pass"]
    alarms = sum(r["trials"] - r["verdicts"].get("pass", 0) for r in correct)
    print(
        f"bugs reported as mismatch: {caught}/{total} ({caught / max(total, 1):.1%}); "
        f"correct gradient not passed (false alarms): "
        f"{alarms}/{sum(r['trials'] for r in correct)}"
    )
    print(
        "named: trials whose result.mismatched holds the corrupted coordinate (one coord) or a "
        "coordinate of the zeroed row"
    )
    for r in rows:
        for m in r["unexpected"][:3]:
            note = m["notes"][0] if m["notes"] else ""
            print(f"  {r['variant']}, trial {m['trial']}: {m['verdict']!r}. {note}")


def print_sizes(rows: list[dict[str, Any]]) -> None:
    print("\nevaluations vs size, correct gradient, default check (full check = 2n + 2)")
    head = (
        f"{'D':>6s} {'n':>9s} {'passed':>7s} {'evals':>6s} {'max':>5s} {'time ms':>8s} "
        f"{'loss ms':>8s} {'full evals':>11s} {'full est. s':>12s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['D']:6d} {r['n']:9,d} {r['passed']:3d}/{r['trials']:<3d} "
            f"{r['mean_n_evals']:6.0f} {r['max_n_evals']:5d} {r['mean_time_s'] * 1e3:8.1f} "
            f"{r['loss_eval_s'] * 1e3:8.3f} {r['full_n_evals']:11,d} "
            f"{r['full_time_estimate_s']:12.1f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="checks per variant (10)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[307, 3073, 12289],
        metavar="D",
        help="rows of W (bias included) for the scaling table (307 3073 12289)",
    )
    parser.add_argument(
        "--size-trials", type=int, default=5, help="checks per size in the scaling table (5)"
    )
    parser.add_argument(
        "--full", action="store_true", help="also run one full central check at n = 30,730"
    )
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.size_trials < 1 or any(d < 2 for d in args.sizes):
        parser.error("--trials and --size-trials must be >= 1, sizes D >= 2")

    started = time.perf_counter()
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))

    X, y, W = make_problem(MAIN_D)
    t_eval = loss_time(X, y, W)
    rows = [run_variant(v, X, y, W, args.trials) for v in VARIANTS]
    print_variants(rows, W.size, t_eval)
    g = grad_correct(W, X, y, REG)
    print(
        f"gradient entries: rms {np.sqrt(np.mean(g * g)):.2e}, median |g_i| "
        f"{np.median(np.abs(g)):.2e} (a one-coordinate error of rel r is r * |g_i| absolute)"
    )

    sizes = run_sizes(args.sizes, args.size_trials)
    print_sizes(sizes)
    n = W.size
    print(
        f"full central check at n = {n:,}: {2 * n + 2:,} evaluations, about "
        f"{(2 * n + 2) * t_eval:.1f} s at {t_eval * 1e3:.2f} ms each (estimated"
        + (", running it now)" if args.full else "; --full runs it)")
    )
    full = run_full(X, y, W) if args.full else None
    if full is not None:
        print(
            f"full central check ran: verdict {full['verdict']!r}, {full['n_evals']:,} "
            f"evaluations in {full['time_s']:.1f} s"
        )
    elapsed = time.perf_counter() - started
    print(f"\ntotal {elapsed:.1f} s")

    if args.json:
        out = {
            "machine": info,
            "setup": {
                "n": n,
                "shape": list(W.shape),
                "examples": N_EXAMPLES,
                "reg": REG,
                "trials": args.trials,
                "loss_eval_s": t_eval,
            },
            "variants": rows,
            "sizes": sizes,
            "full_check": full,
            "total_s": elapsed,
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2, default=str)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
