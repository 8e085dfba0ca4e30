"""Test problems shared by the tests and the benchmarks: losses with correct and buggy gradients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import verigrad


@dataclass(frozen=True)
class SeedExample:
    """A worked example from the coding-exercise seed: f, point, correct gradient."""

    name: str
    f: Callable[[np.ndarray], float]
    x: np.ndarray
    grad: np.ndarray


#: The exercise spec's three worked examples, checked with epsilon=1e-7 there.
SEED_EXAMPLES = (
    SeedExample(
        "sum_of_squares",
        lambda x: x[0] ** 2 + x[1] ** 2,
        np.array([3.0, 4.0]),
        np.array([6.0, 8.0]),
    ),
    SeedExample(
        "linear", lambda x: x[0] + x[1] + x[2], np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])
    ),
    SeedExample(
        "cubic", lambda x: x[0] ** 3 + x[1] ** 3, np.array([2.0, -1.0]), np.array([12.0, 3.0])
    ),
)


def regression_data(n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The blog seed's data: n points in R^2 and responses, standard normal."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)), rng.normal(size=n)


def regression_loss(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """1/(2n) ||y - X beta||^2."""
    resid = y - X @ beta
    return float(resid @ resid) / (2 * len(y))


def regression_grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-(1/n) (y - X beta)^T X, the correct gradient."""
    return -((y - X @ beta) @ X) / len(y)


def regression_grad_flipped(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A sign error: the leading minus forgotten."""
    return ((y - X @ beta) @ X) / len(y)


def regression_grad_halved(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A missing factor: divides by 2n as the loss does, forgetting the 2 from the square."""
    return -((y - X @ beta) @ X) / (2 * len(y))


def softmax_data(
    n: int = 30, d: int = 5, c: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random features and integer labels for a cs231n-style linear softmax classifier."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, c, size=n)


def softmax_loss(W: np.ndarray, X: np.ndarray, labels: np.ndarray, reg: float = 0.1) -> float:
    """Mean cross-entropy of softmax(X W) plus reg * ||W||^2 / 2."""
    scores = X @ W
    scores = scores - scores.max(axis=1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    data = -log_probs[np.arange(len(labels)), labels].mean()
    return float(data + 0.5 * reg * np.sum(W * W))


def softmax_grad(W: np.ndarray, X: np.ndarray, labels: np.ndarray, reg: float = 0.1) -> np.ndarray:
    """The correct gradient of :func:`softmax_loss` with respect to W (shape (D, C))."""
    scores = X @ W
    scores = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(len(labels)), labels] -= 1.0
    return X.T @ probs / len(labels) + reg * W


def softmax_grad_no_reg(
    W: np.ndarray, X: np.ndarray, labels: np.ndarray, reg: float = 0.1
) -> np.ndarray:
    """A missing term: the regularisation gradient forgotten."""
    return softmax_grad(W, X, labels, 0.0)


def softmax_grad_one_wrong(
    W: np.ndarray, X: np.ndarray, labels: np.ndarray, reg: float = 0.1
) -> np.ndarray:
    """One wrong coordinate: entry (1, 2) off by 1%."""
    g = softmax_grad(W, X, labels, reg)
    g[1, 2] *= 1.01
    return g


def quartic_loss(x: np.ndarray, a: np.ndarray) -> float:
    """sum(a * x^4) / 4: module level, so process pools can pickle it."""
    return float(np.sum(a * x**4)) / 4.0


def quartic_grad(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    return a * x**3


def failing_loss(x: np.ndarray) -> float:
    """Raises when coordinate 7 is moved up: an error from inside a worker."""
    if x.reshape(-1)[7] > 0.5:
        raise FloatingPointError("loss blew up")
    return float(np.sum(x**2))


@verigrad.verified_gradient(loss=quartic_loss, sample_rate=0.0, first=1)
def checked_quartic_grad(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A decorated gradient at module level: pickles by reference into other processes."""
    return a * x**3


class QuarticModel:
    """Methods decorated at module level, for pickling bound methods."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def loss(self, x: np.ndarray) -> float:
        return quartic_loss(x, self.a)

    @verigrad.verified_gradient(loss="loss", sample_rate=0.0, first=1)
    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.a * x**3


def call_in_child(n_calls: int) -> tuple[int, int, int]:
    """Calls the decorated gradient n times in this process; returns its own counts."""
    a = np.linspace(0.5, 2.0, 5)
    for _ in range(n_calls):
        checked_quartic_grad(np.ones(5), a)
    stats = checked_quartic_grad.verigrad.stats
    return stats.calls, stats.checks, stats.failures
