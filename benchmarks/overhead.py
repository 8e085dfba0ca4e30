"""Cost of verigrad on the calls it does not check, and of one full check, side by side.

Run by hand (never in the test suite):  python benchmarks/overhead.py [--instructions]

Prints, measured in one run on this machine: a bare call, a functools.wraps pass-through, a
wrapt pass-through and a verigrad-decorated function in "sample" mode between checks, for a
trivial function and for a 1,000-parameter numpy gradient; then a full central check against
the bare loop of 2n + 1 loss evaluations it needs.

Wall-clock nanoseconds on a shared machine swing by 2x from run to run. ``--instructions``
counts the CPU instructions per call instead, under valgrind's callgrind (each variant runs in
its own process, twice, with 0 and with N calls; the difference divided by N), which is
deterministic and independent of the machine's load.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import re
import subprocess
import sys
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np
import wrapt

import verigrad


def best_ns(fn: Callable[[], Any], number: int, repeat: int = 7) -> float:
    """Best-of-``repeat`` time per call in nanoseconds."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def plain_wrap(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def inner(*args: Any, **kwargs: Any) -> Any:
        return f(*args, **kwargs)

    return inner


@wrapt.decorator
def wrapt_pass(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


rng = np.random.default_rng(0)
W = rng.normal(size=1000)
A = rng.normal(size=1000)
OUT = np.empty(1000)


def trivial(w: Any) -> Any:
    return w


def grad(w: np.ndarray) -> np.ndarray:
    np.multiply(A, w, out=OUT)
    return OUT


def loss(w: np.ndarray) -> float:
    return 0.5 * float(A @ (w * w))


class Model:
    """The same gradient as a method, to time verigrad's wrapper for methods."""

    def loss(self, w: np.ndarray) -> float:
        return loss(w)

    def grad(self, w: np.ndarray) -> np.ndarray:
        return grad(w)


def linear_grad(w: np.ndarray) -> np.ndarray:
    """A least-squares gradient X^T (X w - y) / m with X of shape (20, 1,000)."""
    return XT @ (X @ w - Y) / 20


X = rng.normal(size=(20, 1000))
XT = np.ascontiguousarray(X.T)
Y = rng.normal(size=20)

FUNCTIONS = {
    "trivial function": trivial,
    "1,000-parameter numpy gradient (one in-place multiply)": grad,
    "1,000-parameter least-squares gradient (20 x 1,000)": linear_grad,
}
VARIANTS = ("bare call", "functools.wraps", "wrapt pass-through", "verigrad (unchecked)")


def variant(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    if name == "bare call":
        return func
    if name == "functools.wraps":
        return plain_wrap(func)
    if name == "wrapt pass-through":
        return wrapt_pass(func)  # type: ignore[no-any-return]
    # first=0 and sample_rate=0: every call takes the unchecked path.
    return verigrad.verified_gradient(loss=loss, sample_rate=0.0, first=0)(func)


def print_table(label: str, cost: dict[str, float], unit: str) -> None:
    print(f"\nunchecked call, {label}:")
    base, wr = cost["bare call"], cost["wrapt pass-through"]
    for name, c in cost.items():
        print(f"  {name:22s} {c:8.0f} {unit}   x{c / base:5.2f} bare   x{c / wr:5.2f} wrapt")


def unchecked_overhead() -> None:
    for label, func in FUNCTIONS.items():
        number = {trivial: 200_000, grad: 50_000}.get(func, 10_000)
        cost = {}
        for name in VARIANTS:
            f = variant(name, func)
            cost[name] = best_ns(lambda f=f: f(W), number)
        print_table(label, cost, "ns")


def _count_instructions(label: str, name: str, calls: int) -> int:
    """Instructions callgrind counts for a process that sets up a variant and calls it."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--calls",
            str(calls),
            "--label",
            label,
            "--variant",
            name,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))  # type: ignore[union-attr]


def unchecked_instructions(calls: int = 20_000) -> None:
    for label in FUNCTIONS:
        cost = {
            name: (_count_instructions(label, name, calls) - _count_instructions(label, name, 0))
            / calls
            for name in VARIANTS
        }
        print_table(label, cost, "instructions")


def _run_calls(label: str, name: str, calls: int) -> None:
    f = variant(name, FUNCTIONS[label])
    f(W)  # warm up the first call's one-time work in both runs alike
    for _ in range(calls):
        f(W)


def full_check(n: int) -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2.0, size=n)
    x = rng.normal(size=n)

    def loss(w: np.ndarray) -> float:
        return float(np.dot(a, w * w))

    g = 2 * a * x

    def bare_loop() -> None:
        work = x.copy()
        loss(work)
        loss(work)
        for i in range(n):
            v = work[i]
            work[i] = v + 1e-5
            loss(work)
            work[i] = v - 1e-5
            loss(work)
            work[i] = v

    t_bare = best_ns(bare_loop, 1, repeat=3)
    t_check = best_ns(lambda: verigrad.check_gradient(loss, x, g, method="central"), 1, repeat=3)
    print(
        f"\nfull central check, n = {n:,}: bare loop of 2n+2 evaluations {t_bare / 1e6:8.1f} ms, "
        f"check_gradient {t_check / 1e6:8.1f} ms, ratio x{t_check / t_bare:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    parser.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calls is not None:  # a child process of --instructions
        _run_calls(args.label, args.variant, args.calls)
        return
    print(
        f"{platform.machine()} {platform.processor() or ''} "
        f"Python {platform.python_version()} numpy {np.__version__}"
    )
    if args.instructions:
        unchecked_instructions()
        return
    unchecked_overhead()
    for n in (1_000, 10_000):
        full_check(n)


if __name__ == "__main__":
    main()
