"""What the decorator's defaults cost a training run: decorated with no options vs. undecorated.

Run by hand (never in the test suite):

    python benchmarks/defaults_overhead.py [--seconds S] [--repeat R] [--clock wall|cpu]

Two full-batch gradient-descent runs, the same steps side by side in one process:

- a two-layer numpy network with 771 parameters (20 inputs, 32 tanh units, 3 outputs), the
  network that the old default (``sample_rate=0.01``) made 13.6x slower;
- the 30,730-parameter softmax classifier (3,073 features, 10 classes, as in cs231n), the
  shape of ``examples/softmax_classifier.py`` at CIFAR size.

Each run is sized to take about ``--seconds`` undecorated. Bare and decorated runs alternate,
``--repeat`` times each, and the ratio of the medians is printed, with the decorated run's
checks and ``stats.overhead`` (the checks' own share of the decorated run's wall time, which
other load on a shared machine does not blur as it blurs the ratio: runs of the same code
vary by 10-20 % there). The defaults check the first call, then keep checks within 5 % of
the wall time (``budget=0.05``); the ratio should stay near 1.05 or below once a run is long
against one check (about 20 checks' worth of training).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from structlog.testing import capture_logs

import verigrad

# -- the 771-parameter network -------------------------------------------------------------------

D_IN, HIDDEN, D_OUT, N_NET = 20, 32, 3, 64


def net_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_NET, D_IN))
    Y = np.tanh(X @ rng.normal(size=(D_IN, D_OUT)))
    return X, Y


def net_unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a = D_IN * HIDDEN
    b = a + HIDDEN
    c = b + HIDDEN * D_OUT
    return p[:a].reshape(D_IN, HIDDEN), p[a:b], p[b:c].reshape(HIDDEN, D_OUT), p[c:]


N_PARAMS_NET = D_IN * HIDDEN + HIDDEN + HIDDEN * D_OUT + D_OUT  # 771


def net_loss(p: np.ndarray, X: np.ndarray, Y: np.ndarray) -> float:
    W1, b1, W2, b2 = net_unpack(p)
    out = np.tanh(X @ W1 + b1) @ W2 + b2
    return 0.5 * float(np.mean(np.sum((out - Y) ** 2, axis=1)))


def net_grad(p: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    W1, b1, W2, b2 = net_unpack(p)
    H = np.tanh(X @ W1 + b1)
    d_out = (H @ W2 + b2 - Y) / len(X)
    d_h = (d_out @ W2.T) * (1 - H * H)
    return np.concatenate([(X.T @ d_h).ravel(), d_h.sum(0), (H.T @ d_out).ravel(), d_out.sum(0)])


# -- the 30,730-parameter softmax classifier ------------------------------------------------------

D_SM, C_SM, N_SM = 3073, 10, 200


def softmax_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N_SM, D_SM)) * 0.1, rng.integers(0, C_SM, size=N_SM)


def softmax_loss(W: np.ndarray, X: np.ndarray, labels: np.ndarray) -> float:
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean() + 5e-4 * np.sum(W * W))


def softmax_grad(W: np.ndarray, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(len(labels)), labels] -= 1.0
    return X.T @ probs / len(labels) + 1e-3 * W


# -- the runs -------------------------------------------------------------------------------------


#: The clock the runs are timed with: wall time, or with ``--clock cpu`` this process's CPU
#: time (other processes' load on a shared machine does not enter it; run with one BLAS
#: thread, OPENBLAS_NUM_THREADS=1, so that it counts what the wall clock would on a quiet one).
CLOCK: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def train(
    grad: Callable[..., np.ndarray], p0: np.ndarray, data: tuple[Any, ...], steps: int, lr: float
) -> float:
    """Gradient descent for ``steps`` steps; the time in seconds on :data:`clock`."""
    p = p0.copy()
    start = clock()
    for _ in range(steps):
        p -= lr * grad(p, *data)
    return clock() - start


def compare(
    name: str,
    loss: Callable[..., float],
    grad: Callable[..., np.ndarray],
    p0: np.ndarray,
    data: tuple[Any, ...],
    lr: float,
    seconds: float,
    repeat: int,
) -> None:
    per_step = train(grad, p0, data, 50, lr) / 50
    steps = max(100, int(seconds / per_step))
    bare: list[float] = []
    decorated: list[float] = []
    checks: list[int] = []
    overheads: list[float] = []
    for _ in range(repeat):
        bare.append(train(grad, p0, data, steps, lr))
        checked = verigrad.verified_gradient(loss=loss)(grad)  # the defaults, fresh each run
        with capture_logs():
            decorated.append(train(checked, p0, data, steps, lr))
        stats = checked.verigrad.stats
        assert stats.failures == 0, stats.last_result
        checks.append(stats.checks)
        overheads.append(stats.overhead)
    ratio = statistics.median(decorated) / statistics.median(bare)
    print(
        f"{name:<34} n={p0.size:>6,}  {steps:>6} steps  bare {statistics.median(bare):6.2f} s  "
        f"decorated {statistics.median(decorated):6.2f} s  ratio {ratio:5.3f} "
        f"(of minimums {min(decorated) / min(bare):5.3f})  "
        f"checks {statistics.median(checks):>4.0f}  stats.overhead "
        f"{statistics.median(overheads):5.3f} (max {max(overheads):5.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one bare run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind")
    parser.add_argument(
        "--clock", choices=sorted(CLOCK), default="wall", help="time runs by wall or CPU time"
    )
    args = parser.parse_args()
    global clock
    clock = CLOCK[args.clock]
    print(
        f"verigrad {verigrad.__version__}: decorator defaults vs no decorator, "
        f"ratio of medians over {args.repeat} runs each ({args.clock} time)"
    )
    X, Y = net_data()
    p_net = np.random.default_rng(1).normal(scale=0.3, size=N_PARAMS_NET)
    compare(
        "two-layer network (20-32-3, tanh)",
        net_loss,
        net_grad,
        p_net,
        (X, Y),
        0.05,
        args.seconds,
        args.repeat,
    )
    Xs, labels = softmax_data()
    W0 = np.random.default_rng(2).normal(scale=1e-3, size=(D_SM, C_SM))
    compare(
        "softmax classifier (3073 x 10)",
        softmax_loss,
        softmax_grad,
        W0,
        (Xs, labels),
        0.5,
        args.seconds,
        args.repeat,
    )


if __name__ == "__main__":
    main()
