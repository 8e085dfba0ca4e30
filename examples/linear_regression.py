"""Linear regression trained by gradient descent, with every gradient call checked (debug mode).

The problem is the one from the seed blog post: n = 20 points in R^2, standard normal features
and responses, loss 1/(2n) ||y - X b||^2 and its gradient -(1/n) (y - X b)^T X.

Run:  python examples/linear_regression.py
"""

from __future__ import annotations

import numpy as np
import structlog

import verigrad


def loss(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """Half the mean squared residual."""
    resid = y - X @ beta
    return float(resid @ resid) / (2 * len(y))


@verigrad.verified_gradient(loss=loss)
def gradient(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-(1/n) (y - X beta)^T X."""
    return -((y - X @ beta) @ X) / len(y)


def train(steps: int = 25, learning_rate: float = 0.5, seed: int = 0) -> np.ndarray:
    """Fit beta by plain gradient descent from the blog's starting point (2, 3)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20, 2))
    y = rng.normal(size=20)
    beta = np.array([2.0, 3.0])
    with verigrad.debug():  # check every call while we develop
        for _ in range(steps):
            beta = beta - learning_rate * gradient(beta, X, y)
    least_squares = np.linalg.lstsq(X, y, rcond=None)[0]
    print(f"beta after {steps} steps: {beta}, least squares: {least_squares}")
    print(f"loss: {loss(beta, X, y):.6f}")
    print(gradient.verigrad.stats)
    return beta


if __name__ == "__main__":
    # An application configures logging; verigrad itself never does.
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=False, sort_keys=False),
        ]
    )
    train()
