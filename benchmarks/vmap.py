"""``vectorized="vmap"`` against serial evaluation, on the CPU, for torch and JAX losses.

Run by hand (never in the test suite):

    python benchmarks/vmap.py            # a minute or so on 2 cores
    python benchmarks/vmap.py --json vmap.json

A loss written for one point (a small tanh network's mean squared error over a batch of
data, its parameters one flat vector) is checked at every coordinate, once serially (one call
per point) and once with ``vectorized="vmap"`` (torch.func.vmap / jax.vmap over batches of
points, ``batch_bytes`` at its default). The table gives the best wall time of a few repeats,
the speed-up, and the verdicts, which must agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import verigrad

HIDDEN, FEATURES, SAMPLES = 16, 8, 64


def _shapes() -> list[tuple[int, ...]]:
    return [(FEATURES, HIDDEN), (HIDDEN,), (HIDDEN, 1), (1,)]


def n_params() -> int:
    return sum(int(np.prod(s)) for s in _shapes())


def make_loss(xp: Any, X: Any, y: Any) -> Callable[[Any], Any]:
    """``w -> mean((tanh(X W1 + b1) W2 + b2 - y)**2)``, ``w`` the flat parameters."""

    def loss(w: Any) -> Any:
        parts, at = [], 0
        for shape in _shapes():
            size = int(np.prod(shape))
            parts.append(w[at : at + size].reshape(shape))
            at += size
        W1, b1, W2, b2 = parts
        out = xp.tanh(X @ W1 + b1) @ W2 + b2
        return ((out[:, 0] - y) ** 2).mean()

    return loss


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def run(library: str, repeats: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    X0 = rng.standard_normal((SAMPLES, FEATURES))
    y0 = np.sin(X0[:, 0])
    w0 = 0.5 * rng.standard_normal(n_params())
    if library == "torch":
        import torch

        X, y, w = (torch.tensor(a) for a in (X0, y0, w0))
        loss = make_loss(torch, X, y)
        wg = w.clone().requires_grad_()
        (g,) = torch.autograd.grad(loss(wg), wg)
    else:
        import jax

        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy
        X, y, w = (jnp.asarray(a) for a in (X0, y0, w0))
        loss = jax.jit(make_loss(jnp, X, y))
        g = jax.grad(loss)(w)
    out: dict[str, Any] = {"library": library, "n": n_params()}
    for mode in (False, "vmap"):
        t, r = _best(lambda m=mode: verigrad.check_gradient(loss, w, g, vectorized=m), repeats)
        out["vmap" if mode else "serial"] = {"seconds": t, "verdict": r.verdict, "evals": r.n_evals}
    out["speedup"] = out["serial"]["seconds"] / out["vmap"]["seconds"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    rows = []
    for library in ("torch", "jax"):
        try:
            __import__(library)
        except ImportError:
            print(f"{library} not installed: row left out")
            continue
        rows.append(run(library))
    print(f"{'library':<8} {'n':>5} {'serial s':>9} {'vmap s':>8} {'speed-up':>9}  verdicts")
    for r in rows:
        print(
            f"{r['library']:<8} {r['n']:>5} {r['serial']['seconds']:>9.3f} "
            f"{r['vmap']['seconds']:>8.3f} {r['speedup']:>8.1f}x  "
            f"{r['serial']['verdict']} / {r['vmap']['verdict']} ({r['serial']['evals']} evals)"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
