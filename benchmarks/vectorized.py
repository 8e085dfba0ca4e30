"""Speed-up of vectorized=True on a cs231n-style softmax loss: batched vs one point at a time.

Run by hand:  python benchmarks/vectorized.py [--quick] [--examples 100 300] [--threads 1]

The setting of the cs231n softmax assignment: CIFAR-10-like data (D = 3073 features including
the bias, C = 10 classes, N examples), W of shape (D, C), so n = 30,730 parameters; and D = 1000
for n = 10,000. The loss is written as a user would write it for ``vectorized=True``: for a
batch of B points (B, D, C) it computes all scores with one GEMM, X (N, D) @ (D, B*C).

For each n it times, in one run, interleaved and repeated (medians reported):

- the bare loss, no verigrad: a plain in-place loop of the 2n single-point evaluations of a
  full central check, and the batched evaluation of the same 2n points, B at a time;
- verigrad's full central check (``check_gradient(..., method="central")``), one point at a
  time and with ``vectorized=True``.

and prints vectorized/serial side by side for both, and verigrad over the bare loss. ``--quick``
estimates 1,000 coordinates (``method="coordinates"``, 4 evaluations each) instead of all of
them and compares times per evaluation. BLAS threads are set before numpy is imported
(``--threads 0`` leaves the library's default). On the project's 2-core machine the full run
takes about 7 minutes at N = 100 (3 repeats), ``--quick`` under a minute.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # before numpy is imported: BLAS reads these once, at load time
    _threads = "1"
    if "--threads" in sys.argv[:-1]:
        _threads = sys.argv[sys.argv.index("--threads") + 1]
    if _threads != "0":
        for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[_var] = _threads

import ctypes
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import verigrad
from verigrad.estimators import DEFAULT_BATCH_BYTES

C = 10
REG = 1e-3
QUICK_COORDINATES = 1000


def make(n_examples: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-10-like data: N examples of d - 1 features plus a bias column, 10 classes."""
    rng = np.random.default_rng(0)
    x = np.hstack([rng.normal(size=(n_examples, d - 1)), np.ones((n_examples, 1))])
    return x, rng.integers(0, C, n_examples), 1e-4 * rng.normal(size=(d, C))


def softmax_loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Mean cross-entropy plus L2; ``w`` is one (D, C) matrix or a batch (B, D, C)."""
    n = len(y)
    if w.ndim == 3:  # one GEMM for the whole batch: (N, D) @ (D, B*C) -> (N, B, C)
        b, d, c = w.shape
        scores = (x @ w.transpose(1, 0, 2).reshape(d, b * c)).reshape(n, b, c)
    else:
        scores = x @ w
    scores = scores - scores.max(axis=-1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=-1, keepdims=True))
    data = -log_probs[np.arange(n), ..., y].mean(axis=0)
    penalty = REG * (w * w).sum(axis=(-2, -1))
    return data + penalty if w.ndim == 3 else float(data + penalty)


def softmax_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    scores = x @ w
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(len(y)), y] -= 1.0
    grad: np.ndarray = x.T @ probs / len(y) + 2.0 * REG * w
    return grad


def batch_points(batch_bytes: int, point_nbytes: int) -> int:
    """The points per batch verigrad uses for a central check (whole coordinates per batch)."""
    size = max(1, batch_bytes // point_nbytes)
    return size - size % 2 if size >= 2 else size


def bare_loop(w: np.ndarray, x: np.ndarray, y: np.ndarray, coords: int) -> float:
    """2 * coords single-point evaluations, perturbing one private copy in place."""
    work = w.copy()
    flat = work.reshape(-1)
    start = time.perf_counter()
    for i in range(coords):
        v = float(flat[i])
        flat[i] = v + 1e-5
        softmax_loss(work, x, y)
        flat[i] = v - 1e-5
        softmax_loss(work, x, y)
        flat[i] = v
    return time.perf_counter() - start


def bare_batched(w: np.ndarray, x: np.ndarray, y: np.ndarray, coords: int, size: int) -> float:
    """The same 2 * coords points, ``size`` at a time, in one reused buffer of copies of w."""
    flat = w.reshape(-1)
    buffer = np.empty((size, flat.size))
    buffer[...] = flat
    rows = np.arange(size)
    columns = np.arange(coords).repeat(2)
    moved = flat[columns] + np.tile([1e-5, -1e-5], coords)
    batch = buffer.reshape(size, *w.shape)
    start = time.perf_counter()
    for a in range(0, columns.size, size):
        k = min(size, columns.size - a)
        if a:
            previous = columns[a - size : a]
            buffer[rows, previous] = flat[previous]
        buffer[rows[:k], columns[a : a + k]] = moved[a : a + k]
        softmax_loss(batch[:k], x, y)
    return time.perf_counter() - start


def verigrad_check(
    w: np.ndarray, x: np.ndarray, y: np.ndarray, quick: bool, vectorized: bool, batch_bytes: int
) -> tuple[float, int]:
    start = time.perf_counter()
    result = verigrad.check_gradient(
        softmax_loss,
        w,
        softmax_grad,
        args=(x, y),
        method="coordinates" if quick else "central",
        n_coordinates=QUICK_COORDINATES,
        seed=0,
        vectorized=vectorized,
        batch_bytes=batch_bytes,
    )
    elapsed = time.perf_counter() - start
    if not result.passed:
        raise SystemExit(f"the check did not pass: {result.verdict} {result.notes}")
    return elapsed, result.n_evals


def blas_threads() -> str:
    """Threads the loaded BLAS will use, asked from the library itself where it can be."""
    try:
        with open("/proc/self/maps") as maps:
            libs = {line.split()[-1] for line in maps if "openblas" in line.lower()}
        for path in libs:
            lib = ctypes.CDLL(path)
            for name in (
                "scipy_openblas_get_num_threads64_",
                "openblas_get_num_threads64_",
                "openblas_get_num_threads",
            ):
                if hasattr(lib, name):
                    return f"{getattr(lib, name)()} (OpenBLAS)"
    except OSError:
        pass
    return os.environ.get("OPENBLAS_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "default"))


@dataclass
class Row:
    n: int
    examples: int
    batch: int
    times: dict[str, float]  # medians, seconds: loop, batched, serial, vectorized


def bench(n_examples: int, d: int, args: argparse.Namespace) -> Row:
    x, y, w = make(n_examples, d)
    size = batch_points(args.batch_bytes, w.nbytes)
    coords = QUICK_COORDINATES if args.quick else w.size
    runs: dict[str, list[float]] = {k: [] for k in ("loop", "batched", "serial", "vectorized")}
    timers: dict[str, Callable[[], float]] = {
        "loop": lambda: bare_loop(w, x, y, coords),
        "batched": lambda: bare_batched(w, x, y, coords, size),
    }
    for _ in range(args.repeat):  # interleaved, so that load on a shared machine hits all four
        for key, timer in timers.items():
            runs[key].append(timer())
        for key, vectorized in (("serial", False), ("vectorized", True)):
            elapsed, evals = verigrad_check(w, x, y, args.quick, vectorized, args.batch_bytes)
            # scaled to the bare loops' 2 * coords evaluations (a full check spends 2n + 2,
            # a quick one 4 per coordinate + 2)
            runs[key].append(elapsed * 2 * coords / evals)
    return Row(w.size, n_examples, size, {k: statistics.median(v) for k, v in runs.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 coordinates, not all")
    parser.add_argument("--examples", type=int, nargs="+", default=[100], help="N; default 100")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--threads", default="1", help="BLAS threads; 0: library default")
    parser.add_argument(
        "--batch-bytes",
        type=int,
        default=DEFAULT_BATCH_BYTES,
        help="verigrad's batch_bytes (default: verigrad's default)",
    )
    args = parser.parse_args()
    print(
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}, "
        f"verigrad {verigrad.__version__}, BLAS threads {blas_threads()}"
    )
    what = (
        f"Richardson on {QUICK_COORDINATES:,} random coordinates (--quick)"
        if args.quick
        else "full central check"
    )
    print(
        f"softmax loss (C = {C}), {what}, median of {args.repeat} "
        f"runs; batch_bytes = {args.batch_bytes / 2**20:g} MiB"
    )
    print(
        "     n     N    B | bare loss: loop  batched  ratio | verigrad: serial  vectorized"
        "  ratio | verigrad/bare: serial  vectorized"
    )
    for n_examples in args.examples:
        for d in (1000, 3073):
            r = bench(n_examples, d, args)
            t = r.times
            print(
                f"{r.n:6,} {r.examples:5} {r.batch:4} | {t['loop']:13.2f}s {t['batched']:7.2f}s "
                f"{t['batched'] / t['loop']:6.2f} | {t['serial']:14.2f}s {t['vectorized']:10.2f}s"
                f" {t['vectorized'] / t['serial']:6.2f} | {t['serial'] / t['loop']:19.2f}"
                f" {t['vectorized'] / t['batched']:11.2f}",
                flush=True,
            )
    if args.quick:
        print(f"(--quick: times scaled to 2 x {QUICK_COORDINATES:,} evaluations)")


if __name__ == "__main__":
    main()
