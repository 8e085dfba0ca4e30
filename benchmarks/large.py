"""Memory and time of a default check on large parameters (1e5 .. 1e7 float64 entries).

Run by hand (never in the test suite):

    python benchmarks/large.py                 # n = 1e5, 1e6, 1e7
    python benchmarks/large.py --sizes 1e6

For each size, a default ``check_gradient`` of a cheap loss (``0.5 * ||x||^2 + c . x``, one
streaming pass over ``x``) and its exact gradient, at a random point. Printed per size:

- peak memory during the check (``tracemalloc``, which numpy reports its buffers to) beyond
  what was allocated before it, as a multiple of the parameter's bytes (target: at most 3x);
- memory still held through the result after the call, as a multiple (the result returned by
  ``check_gradient`` is asked for; the decorator's ``last_result`` is measured separately);
- wall time of the check, time spent inside the loss, and the time outside it per loss
  evaluation, next to a bare ``x + t * u`` (the two streaming passes a directional evaluation
  cannot avoid): the ratio of the two is the overhead (target: at most 3x).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np

import verigrad


def _problem(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    return rng.normal(size=n), rng.normal(size=n), np.empty(0)


def _bare(x: np.ndarray, u: np.ndarray, reps: int) -> float:
    """Seconds per ``x + t * u`` into a fresh array (the irreducible work of one evaluation)."""
    start = time.perf_counter()
    for k in range(reps):
        y = x + (1e-6 * (k + 1)) * u
        del y
    return (time.perf_counter() - start) / reps


def measure(n: int) -> dict[str, float]:
    x, c, _ = _problem(n)
    inside = [0.0]
    calls = [0]

    def loss(v: np.ndarray) -> float:
        t = time.perf_counter()
        out = float(0.5 * (v @ v) + c @ v)
        inside[0] += time.perf_counter() - t
        calls[0] += 1
        return out

    g = x + c
    verigrad.check_gradient(loss, x, g, seed=0)  # warm-up: imports, caches
    inside[0] = 0.0
    start = time.perf_counter()
    result = verigrad.check_gradient(loss, x, g, seed=0)
    wall = time.perf_counter() - start
    inside_check = inside[0]
    del result
    gc.collect()
    # Memory in a second run: tracemalloc slows every allocation down.
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = verigrad.check_gradient(loss, x, g, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()

    decorated = verigrad.verified_gradient(loss=loss, mode="debug", seed=0, on_failure="raise")(
        lambda v: v + c
    )
    gc.collect()
    tracemalloc.start()
    base2 = tracemalloc.get_traced_memory()[0]
    out = decorated(x)
    del out
    gc.collect()
    kept_decorator = tracemalloc.get_traced_memory()[0] - base2
    tracemalloc.stop()

    u = np.sign(np.random.default_rng(1).normal(size=n))
    bare = _bare(x, u, 20)
    outside = (wall - inside_check) / max(result.n_evals, 1)
    return {
        "n": n,
        "verdict": result.verdict,
        "evals": result.n_evals,
        "peak_x": (peak - base) / x.nbytes,
        "kept_x": kept / x.nbytes,
        "kept_decorator_x": kept_decorator / x.nbytes,
        "wall_s": wall,
        "inside_s": inside_check,
        "outside_per_eval_ms": 1e3 * outside,
        "bare_ms": 1e3 * bare,
        "ratio": outside / bare,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    args = parser.parse_args(argv)
    print(f"verigrad {verigrad.__version__}, numpy {np.__version__}: default check_gradient")
    head = (
        f"{'n':>10}  {'verdict':>8}  {'evals':>5}  {'peak/x':>7}  {'kept/x':>6}  "
        f"{'dec kept/x':>10}  {'wall s':>7}  {'loss s':>7}  {'out/eval ms':>11}  "
        f"{'x+t*u ms':>8}  {'ratio':>5}"
    )
    print(head)
    print("-" * len(head))
    for size in args.sizes:
        r = measure(int(size))
        print(
            f"{r['n']:>10,}  {r['verdict']:>8}  {r['evals']:>5}  {r['peak_x']:>7.2f}  "
            f"{r['kept_x']:>6.2f}  {r['kept_decorator_x']:>10.2f}  {r['wall_s']:>7.3f}  "
            f"{r['inside_s']:>7.3f}  {r['outside_per_eval_ms']:>11.3f}  {r['bare_ms']:>8.3f}  "
            f"{r['ratio']:>5.2f}"
        )
    print("targets: peak/x <= 3, decorator kept/x ~ 0, ratio <= 3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
