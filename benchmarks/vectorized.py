"""Speed-up of vectorized=True on a softmax loss: batched vs one-point-at-a-time full checks.

Run by hand:  python benchmarks/vectorized.py [--features D]

Times ``check_gradient(..., method="central")`` on a linear softmax classifier (W of shape
(D, 10), N = 100 examples) with and without ``vectorized=True``, in one run, and prints the
ratio. Both checks spend the same 2n + 2 loss evaluations.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import verigrad

N, C = 100, 10


def make(d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, d)), rng.integers(0, C, N), 1e-3 * rng.normal(size=(d, C))


def softmax_loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Mean cross-entropy; ``w`` is one (D, C) matrix or a batch (B, D, C)."""
    if w.ndim == 3:  # one GEMM for the whole batch: (N, D) @ (D, B*C) -> (B, N, C)
        b = w.shape[0]
        scores = (x @ w.transpose(1, 0, 2).reshape(w.shape[1], b * C)).reshape(N, b, C)
        scores = scores.transpose(1, 0, 2)
    else:
        scores = x @ w
    scores = scores - scores.max(axis=-1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=-1, keepdims=True))
    picked = log_probs[..., np.arange(N), y]
    return -picked.mean(axis=-1) if w.ndim == 3 else float(-picked.mean())


def softmax_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    scores = x @ w
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(N), y] -= 1.0
    return x.T @ probs / N


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=1000, help="D (n = 10 D); default 1000")
    args = parser.parse_args()
    x, y, w = make(args.features)
    print(f"{platform.platform()}, numpy {np.__version__}, verigrad {verigrad.__version__}")
    print(f"softmax loss, W {w.shape} (n = {w.size:,}), N = {N}")
    times = {}
    for vectorized in (False, True):
        start = time.perf_counter()
        r = verigrad.check_gradient(
            softmax_loss, w, softmax_grad, args=(x, y), method="central", vectorized=vectorized
        )
        times[vectorized] = time.perf_counter() - start
        label = "vectorized (batches)" if vectorized else "one point at a time"
        print(f"  {label:22s} {times[vectorized]:8.2f} s  {r.n_evals:,} evaluations  {r.verdict}")
    print(f"  ratio batched / plain: {times[True] / times[False]:.2f}")


if __name__ == "__main__":
    main()
