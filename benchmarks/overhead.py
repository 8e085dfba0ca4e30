"""Cost of verigrad on the calls it does not check, and of one full check, side by side.

Run by hand (never in the test suite):  python benchmarks/overhead.py

Prints, measured in one run on this machine: a bare call, a functools.wraps pass-through, a
wrapt pass-through and a verigrad-decorated function in "sample" mode between checks, for a
trivial function and for a 1,000-parameter numpy gradient; then a full central check against
the bare loop of 2n + 1 loss evaluations it needs.
"""

from __future__ import annotations

import functools
import platform
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


def unchecked_overhead() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=1000)
    A = rng.normal(size=1000)
    out = np.empty(1000)

    def trivial(w: Any) -> Any:
        return w

    def grad(w: np.ndarray) -> np.ndarray:
        np.multiply(A, w, out=out)
        return out

    def loss(w: np.ndarray) -> float:
        return 0.5 * float(A @ (w * w))

    for label, func, number in (
        ("trivial function", trivial, 200_000),
        ("1,000-parameter numpy gradient", grad, 50_000),
    ):
        # first=0 and sample_rate=0: every call takes the unchecked path.
        checked = verigrad.verified_gradient(loss=loss, sample_rate=0.0, first=0)(func)
        variants = {
            "bare call": func,
            "functools.wraps": plain_wrap(func),
            "wrapt pass-through": wrapt_pass(func),
            "verigrad (unchecked)": checked,
        }
        times = {name: best_ns(lambda f=f: f(w), number) for name, f in variants.items()}
        print(f"\nunchecked call, {label}:")
        base, wr = times["bare call"], times["wrapt pass-through"]
        for name, t in times.items():
            print(f"  {name:22s} {t:8.0f} ns   x{t / base:5.2f} bare   x{t / wr:5.2f} wrapt")
        assert checked.verigrad.stats.checks == 0


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


if __name__ == "__main__":
    print(
        f"{platform.machine()} {platform.processor() or ''} "
        f"Python {platform.python_version()} numpy {np.__version__}"
    )
    unchecked_overhead()
    for n in (1_000, 10_000):
        full_check(n)
