"""One full gradient check, timed with verigrad, scipy and numdifftools against the bare loop.

Run by hand (never in the test suite):

    python benchmarks/compare_tools.py                   # n = 1,000, 10,000 and 30,730
    python benchmarks/compare_tools.py --quick           # n = 1,000 and 10,000 only
    python benchmarks/compare_tools.py --sizes 1000 --repeat 5 --json compare_tools.json
    python benchmarks/compare_tools.py --losses softmax --sizes 30730 --once-above inf

After the full checks it times an unchecked call of a decorated gradient against a bare call,
a ``functools.wraps`` pass-through and a wrapt pass-through (``benchmarks/overhead.py``;
``--no-unchecked`` skips it, ``overhead.py --instructions`` counts instructions instead).

The default run takes about 4 minutes on a 2-core machine, most of it the softmax loss at
n = 30,730 (about 0.5 ms per evaluation on one thread, 61,460 evaluations per central row).

Needs scipy and numdifftools, which are benchmark-only (``pip install scipy numdifftools``; they
are not test dependencies). Without one of them its rows are left out and the header says so.

Two losses of a flat parameter vector of n float64 values, each with its analytical gradient:

- ``cheap``: ``0.5 * np.dot(a, x * x)``, a few microseconds, so a tool's own work per
  evaluation shows;
- ``softmax``: a cs231n-style linear softmax classifier, W of shape (D, 10) with n = 10 D
  (D = 100, 1,000 and 3,073 for n = 1,000, 10,000 and 30,730; the last feature is a bias
  column of ones), N = 100 synthetic examples, mean cross-entropy plus 0.5 * 1e-3 * ||W||^2.

Each row estimates the whole gradient, one coordinate at a time:

- ``bare loop``: 2n loss evaluations, each coordinate moved in place on one working copy and
  restored (no gradient is formed): the floor of any central coordinate-wise check;
- ``verigrad.numerical_gradient(loss, x, method="central")`` (2n evaluations) and
  ``verigrad.check_gradient(loss, x, g, method="central")``: the full check, which also
  evaluates twice at x (2n + 2); its gradients are correct, so no coordinate gets a second
  opinion, and the verdict is printed;
- ``scipy.optimize.approx_fprime(x, loss, sqrt(eps))`` and ``scipy.optimize.check_grad(loss,
  grad, x)``: FORWARD differences (n + 1 evaluations, error O(h)), so half the evaluations of
  the central rows and a less accurate result; check_grad returns only ``||g - estimate||_2``,
  shown in the accuracy column;
- ``scipy.optimize._numdiff.approx_derivative(loss, x, method="3-point")``: scipy's central
  scheme (2n + 1 evaluations; a private module, but the function behind ``approx_fprime`` and
  ``least_squares``). ``scipy.differentiate.jacobian`` (scipy >= 1.15) is central too, but it
  needs a loss vectorized over a batch of points and iterates an adaptive high-order stencil,
  so it is not the same check and is left out;
- ``numdifftools.Gradient(loss, method="central")``: adaptive, Richardson extrapolation over
  several steps (about 30 evaluations per coordinate). Skipped at a size where it would take
  more than 30 s: when a prediction (its evaluations per coordinate and its own work per
  evaluation measured at a smaller size, the loss's cost from this size's bare loop) exceeds
  80 % of that, when it already took longer at a smaller size, or when a timer stops it.

BLAS runs on one thread (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS are set to 1
unless already set): every tool evaluates the loss on one thread, and a threaded dot product
or matmul makes the loss's own cost noisy on a small machine.

Columns: the best time of up to ``--repeat`` runs (a tool whose first run takes more than
``--once-above`` seconds, 1 by default, runs once; the runs go round-robin over the tools so
that all see the same machine state), the ratio to the bare loop, the loss evaluations made
(counted by the loss itself), the tool's own work per evaluation in microseconds two ways, and
the largest absolute difference between the tool's gradient and the analytical one:

- ``own us/eval``: ``(time - evals * bare / 2n) / evals``, that is ``(time - bare) / 2n`` for
  the 2n-evaluation rows: what the tool adds to the bare loop's cost per evaluation;
- ``outside``: ``(time - time spent inside the loss) / evals``, the loss timing itself with two
  perf_counter calls: the time a run spends around the loss evaluations, the bare loop's own
  loop included. It does not move when the loss itself runs slower or faster from one run to
  the next, which on a shared machine moves the first column by several microseconds.

The figures move by 10 % or more from run to run on a shared machine, most of all the single
runs at the largest size; no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# One BLAS thread unless the environment already says otherwise, set before numpy loads
# OpenBLAS: a threaded np.dot or matmul on a busy 2-core machine makes the loss's own cost
# noisy (the cheap loss's dot product at n = 30,730 is slower with 2 threads than with 1), and
# every tool here evaluates the loss on one thread.
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
PINNED_HERE = [v for v in BLAS_THREAD_VARS if v not in os.environ]
for _var in PINNED_HERE:
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

import verigrad  # noqa: E402

try:
    import scipy
    import scipy.optimize
except ImportError:  # pragma: no cover - the rows are left out
    scipy = None  # type: ignore[assignment]

try:
    from scipy.optimize._numdiff import approx_derivative
except ImportError:  # pragma: no cover - a private module: the row is left out
    approx_derivative = None

try:
    import numdifftools
except ImportError:  # pragma: no cover - the row is left out
    numdifftools = None

SIZES = (1_000, 10_000, 30_730)
QUICK_SIZES = (1_000, 10_000)
N_EXAMPLES = 100
N_CLASSES = 10
REG = 1e-3
BARE_STEP = 1e-5
ONCE_ABOVE_S = 1.0  # a tool whose first run takes longer runs once
ND_LIMIT_S = 30.0  # numdifftools is skipped at a size where it would take longer
FORWARD_STEP = math.sqrt(np.finfo(np.float64).eps)  # approx_fprime's and check_grad's default


# --- the losses -----------------------------------------------------------------------------


@dataclass
class Problem:
    """A loss of a flat float64 vector, its analytical gradient at ``x``, and a meter: the loss
    counts its calls and the time spent inside it (two perf_counter calls and an addition per
    evaluation, paid alike by every tool)."""

    name: str
    n: int
    x: np.ndarray
    loss: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    take_count: Callable[[], tuple[int, float]]  # (calls, seconds inside) since the last take
    shape: str


def cheap_problem(n: int, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, size=n)
    x = rng.normal(size=n)
    clock = time.perf_counter
    calls, inside = 0, 0.0

    def loss(w: np.ndarray) -> float:
        nonlocal calls, inside
        t0 = clock()
        value = 0.5 * float(np.dot(a, w * w))
        inside += clock() - t0
        calls += 1
        return value

    def grad(w: np.ndarray) -> np.ndarray:
        return np.asarray(a * w)

    def take_count() -> tuple[int, float]:
        nonlocal calls, inside
        taken = calls, inside
        calls, inside = 0, 0.0
        return taken

    return Problem("cheap", n, x, loss, grad, take_count, "0.5 * dot(a, x * x)")


def softmax_problem(n: int, seed: int = 0) -> Problem:
    d = max(2, round(n / N_CLASSES))
    rng = np.random.default_rng(seed)
    X = np.empty((N_EXAMPLES, d))
    X[:, :-1] = rng.standard_normal((N_EXAMPLES, d - 1))
    X[:, -1] = 1.0
    y = rng.integers(0, N_CLASSES, size=N_EXAMPLES)
    x = 1e-3 * rng.standard_normal(d * N_CLASSES)
    rows = np.arange(N_EXAMPLES)
    clock = time.perf_counter
    calls, inside = 0, 0.0

    def loss(w: np.ndarray) -> float:
        nonlocal calls, inside
        t0 = clock()
        scores = X @ w.reshape(d, N_CLASSES)
        scores -= scores.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scores).sum(axis=1))
        data = float(np.mean(log_norm - scores[rows, y]))
        value = data + 0.5 * REG * float(np.dot(w, w))
        inside += clock() - t0
        calls += 1
        return value

    def grad(w: np.ndarray) -> np.ndarray:
        scores = X @ w.reshape(d, N_CLASSES)
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        p[rows, y] -= 1.0
        return np.asarray((X.T @ p / N_EXAMPLES).reshape(-1) + REG * w)

    def take_count() -> tuple[int, float]:
        nonlocal calls, inside
        taken = calls, inside
        calls, inside = 0, 0.0
        return taken

    shape = f"W ({d}, {N_CLASSES}), N = {N_EXAMPLES}"
    return Problem("softmax", d * N_CLASSES, x, loss, grad, take_count, shape)


PROBLEMS: dict[str, Callable[[int], Problem]] = {"cheap": cheap_problem, "softmax": softmax_problem}


# --- the tools ------------------------------------------------------------------------------


@dataclass
class Tool:
    """One way to estimate the whole gradient. ``run`` returns (gradient or None, accuracy
    text or None, note); the gradient is compared with the analytical one."""

    name: str
    scheme: str
    run: Callable[[Problem, np.ndarray], tuple[np.ndarray | None, str | None, str]]


def bare_loop(p: Problem, g: np.ndarray) -> tuple[None, None, str]:
    f, work = p.loss, p.x.copy()
    for i in range(p.n):
        v = work[i]
        work[i] = v + BARE_STEP
        f(work)
        work[i] = v - BARE_STEP
        f(work)
        work[i] = v
    return None, None, "the floor"


def vg_numerical(p: Problem, g: np.ndarray) -> tuple[np.ndarray, None, str]:
    return verigrad.numerical_gradient(p.loss, p.x, method="central"), None, ""


def vg_check(p: Problem, g: np.ndarray) -> tuple[np.ndarray, None, str]:
    result = verigrad.check_gradient(p.loss, p.x, g, method="central")
    return result.numerical, None, f"verdict {result.verdict}"


def sp_fprime(p: Problem, g: np.ndarray) -> tuple[np.ndarray, None, str]:
    return scipy.optimize.approx_fprime(p.x, p.loss, FORWARD_STEP), None, "forward, h = 1.5e-8"


def sp_check_grad(p: Problem, g: np.ndarray) -> tuple[None, str, str]:
    norm = scipy.optimize.check_grad(p.loss, p.grad, p.x)
    return None, f"||.||_2 {norm:.1e}", "forward; returns a norm only"


def sp_3point(p: Problem, g: np.ndarray) -> tuple[np.ndarray, None, str]:
    return approx_derivative(p.loss, p.x, method="3-point"), None, "central, private module"


def nd_gradient(p: Problem, g: np.ndarray) -> tuple[np.ndarray, None, str]:
    return numdifftools.Gradient(p.loss, method="central")(p.x), None, "adaptive"


def tools() -> list[Tool]:
    out = [
        Tool("bare loop (2n evaluations)", "central", bare_loop),
        Tool("verigrad numerical_gradient", "central", vg_numerical),
        Tool("verigrad check_gradient", "central", vg_check),
    ]
    if scipy is not None:
        out += [
            Tool("scipy approx_fprime", "forward", sp_fprime),
            Tool("scipy check_grad", "forward", sp_check_grad),
        ]
    if approx_derivative is not None:
        out.append(Tool("scipy approx_derivative 3-point", "central", sp_3point))
    if numdifftools is not None:
        out.append(Tool("numdifftools Gradient", "central", nd_gradient))
    return out


# --- timing ---------------------------------------------------------------------------------


class _TimeLimit(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise _TimeLimit in this thread after ``seconds`` (POSIX main thread; else no limit)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise _TimeLimit

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Row:
    loss: str
    n: int
    tool: str
    scheme: str
    times_s: list[float] = field(default_factory=list)
    outside_s: list[float] = field(default_factory=list)  # each run's time outside the loss
    evals: int | None = None
    max_abs_error: float | None = None
    accuracy: str | None = None
    note: str = ""
    skipped: str | None = None
    best_s: float | None = None
    ratio: float | None = None
    overhead_us: float | None = None  # (best - evals * bare / 2n) / evals
    outside_us: float | None = None  # min(outside_s) / evals


@dataclass
class NdState:
    """What the runs so far taught about numdifftools, for the skip decision at the next size."""

    evals_per_coordinate: float = 30.0  # its default: 15 steps, 2 evaluations each
    own_s_per_eval: float = 0.0  # its own work per evaluation, at size own_n
    own_n: int = 1
    stopped_at: dict[str, int] = field(default_factory=dict)  # loss -> size the timer hit


def nd_skip(p: Problem, bare_s: float, nd: NdState) -> str | None:
    """Why numdifftools is skipped at this size, or None to run it under a 30 s timer.

    The prediction: its evaluations per coordinate (measured at a smaller size) times n, each
    costing one loss evaluation (from this size's bare loop) plus its own work per evaluation
    (measured at a smaller size and scaled with n, since it builds a fresh vector for each
    evaluation). A prediction over 80 % of the limit skips it rather than spend the 30 s.
    """
    if p.name in nd.stopped_at:
        return f"skipped (> {ND_LIMIT_S:.0f} s already at n = {nd.stopped_at[p.name]:,})"
    own = nd.own_s_per_eval * max(1.0, p.n / nd.own_n)
    predicted = nd.evals_per_coordinate * p.n * (bare_s / (2 * p.n) + own)
    if predicted >= ND_LIMIT_S:
        return f"skipped (> {ND_LIMIT_S:.0f} s: predicted {predicted:.0f} s)"
    if predicted >= 0.8 * ND_LIMIT_S:
        return f"skipped (predicted {predicted:.0f} s, too close to the {ND_LIMIT_S:.0f} s limit)"
    return None


def measure(
    p: Problem, tool_list: list[Tool], repeat: int, once_above: float, nd: NdState
) -> list[Row]:
    """Round-robin over the tools, up to ``repeat`` rounds (a tool whose first run took more
    than ``once_above`` seconds runs once); the first run of each also records the evaluations
    and the accuracy. The bare loop runs first in each round."""
    g = p.grad(p.x)
    rows = [Row(p.name, p.n, t.name, t.scheme) for t in tool_list]
    for rnd in range(repeat):
        for tool, row in zip(tool_list, rows, strict=True):
            if row.skipped or (rnd and row.times_s[0] > once_above):
                continue
            limit: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
            if tool.run is nd_gradient:
                row.skipped = nd_skip(p, rows[0].times_s[0], nd)
                if row.skipped:
                    continue
                limit = time_limit(ND_LIMIT_S)
            p.take_count()
            try:
                with limit:
                    start = time.perf_counter()
                    estimate, accuracy, note = tool.run(p, g)
                    elapsed = time.perf_counter() - start
            except _TimeLimit:
                p.take_count()
                row.skipped = f"skipped (> {ND_LIMIT_S:.0f} s: stopped after {ND_LIMIT_S:.0f} s)"
                nd.stopped_at[p.name] = p.n
                continue
            evals, inside = p.take_count()
            row.times_s.append(elapsed)
            row.outside_s.append(elapsed - inside)
            if rnd == 0:
                row.evals, row.note, row.accuracy = evals, note, accuracy
                if estimate is not None:
                    row.max_abs_error = float(np.max(np.abs(np.asarray(estimate) - g)))
    bare_s = min(rows[0].times_s)
    for row in rows:
        if row.times_s:
            row.best_s = min(row.times_s)
            row.ratio = row.best_s / bare_s
            if row.evals:
                own = row.best_s - row.evals * bare_s / (2 * p.n)
                row.overhead_us = own / row.evals * 1e6
                row.outside_us = min(row.outside_s) / row.evals * 1e6
                if row.tool.startswith("numdifftools") and p.n >= nd.own_n:
                    nd.evals_per_coordinate = row.evals / p.n
                    nd.own_s_per_eval, nd.own_n = max(0.0, own / row.evals), p.n
    return rows


# --- output ---------------------------------------------------------------------------------


def _version(module: Any) -> str:
    return str(getattr(module, "__version__", "?")) if module is not None else "not installed"


def machine() -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = "?"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = {k: os.environ[k] for k in BLAS_THREAD_VARS if k in os.environ}
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "",
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "blas_threads_env": threads,
        "blas_threads_set_by_script": PINNED_HERE,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": _version(scipy),
        "numdifftools": _version(numdifftools),
        "verigrad": f"{verigrad.__version__} ({rev})",
    }


def print_machine(m: dict[str, Any]) -> None:
    print(f"{m['platform']} {m['machine']} {m['processor']}".rstrip())
    env = ", ".join(f"{k}={v}" for k, v in m["blas_threads_env"].items())
    how = " (set by this script)" if m["blas_threads_set_by_script"] else " (from the environment)"
    print(f"CPUs: {m['cpu_count']} ({m['cpus_usable']} usable); {env}{how}")
    print(
        f"Python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, "
        f"numdifftools {m['numdifftools']}, verigrad {m['verigrad']}"
    )


def print_table(p: Problem, rows: list[Row]) -> None:
    bare = rows[0]
    assert bare.best_s is not None
    per_eval = bare.best_s / (2 * p.n) * 1e6
    print(
        f"\n{p.name} loss, n = {p.n:,} ({p.shape}): one loss evaluation {per_eval:.1f} us, "
        f"max |g| {float(np.max(np.abs(p.grad(p.x)))):.2g}"
    )
    print(
        f"  {'tool':33s} {'scheme':8s} {'time':>9s} {'x bare':>7s} {'evals':>9s} "
        f"{'own us/eval':>11s} {'outside':>8s} {'max |est - g|':>14s}  note"
    )
    for r in rows:
        if r.skipped:
            print(f"  {r.tool:33s} {r.scheme:8s} {r.skipped}")
            continue
        if r.best_s is None or r.ratio is None:
            continue
        runs = f"{r.best_s:.3f} s"
        own = "-" if r is bare or r.overhead_us is None else f"{r.overhead_us:.2f}"
        outside = "-" if r.outside_us is None else f"{r.outside_us:.2f}"
        if r.accuracy is not None:
            acc = r.accuracy
        elif r.max_abs_error is not None:
            acc = f"{r.max_abs_error:.1e}"
        else:
            acc = "-"
        note = f"best of {len(r.times_s)}" + (f"; {r.note}" if r.note else "")
        print(
            f"  {r.tool:33s} {r.scheme:8s} {runs:>9s} {r.ratio:7.2f} {r.evals or 0:9,d} "
            f"{own:>11s} {outside:>8s} {acc:>14s}  {note}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 1,000 and 10,000 only")
    parser.add_argument("--sizes", type=int, nargs="+", help="parameter counts n")
    parser.add_argument(
        "--losses", nargs="+", choices=sorted(PROBLEMS), default=list(PROBLEMS), help="losses"
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (3)")
    parser.add_argument(
        "--once-above",
        type=float,
        default=ONCE_ABOVE_S,
        metavar="S",
        help=f"a tool whose first run takes more than S seconds runs once ({ONCE_ABOVE_S:g}; "
        "'inf' repeats every run)",
    )
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    parser.add_argument(
        "--no-unchecked",
        action="store_true",
        help="skip the unchecked-call timings (bare call, functools.wraps, wrapt, verigrad)",
    )
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes or (QUICK_SIZES if args.quick else SIZES))

    start = time.perf_counter()
    info = machine()
    print_machine(info)
    missing = [name for name, mod in (("scipy", scipy), ("numdifftools", numdifftools)) if not mod]
    if missing:
        names = " ".join(missing)
        print(f"not installed, their rows are left out: {names} (pip install {names})")
    print(
        "x bare = time / bare loop; own us/eval = (time - evals * bare / 2n) / evals; "
        "outside = (time - time inside the loss) / evals, in us"
    )
    tool_list = tools()
    results: list[Row] = []
    nd = NdState()
    for name in args.losses:
        for n in sizes:
            p = PROBLEMS[name](n)
            rows = measure(p, tool_list, max(1, args.repeat), args.once_above, nd)
            print_table(p, rows)
            results += rows
    if not args.no_unchecked:
        # The other cost users feel: a decorated gradient's calls that are not checked.
        from overhead import unchecked_overhead  # benchmarks/overhead.py, beside this script

        unchecked_overhead()
    total = time.perf_counter() - start
    print(f"\ntotal {total:.0f} s")
    if args.json:
        payload = {
            "machine": info,
            "argv": sys.argv[1:],
            "total_s": total,
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
