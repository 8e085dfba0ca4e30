"""A linear softmax classifier (cs231n style, weights of shape (D, C)) with a sampled check.

The gradient is checked on the first call and then on about 2% of calls, which is what you
would leave on in a real training run. The check events go to the console as JSON lines.

Run:  python examples/softmax_classifier.py
"""

from __future__ import annotations

import numpy as np
import structlog

import verigrad


def softmax_loss(W: np.ndarray, X: np.ndarray, labels: np.ndarray, reg: float) -> float:
    """Mean cross-entropy of softmax(X W) plus (reg / 2) ||W||^2."""
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean() + 0.5 * reg * np.sum(W * W))


@verigrad.verified_gradient(loss=softmax_loss, sample_rate=0.02, first=1, seed=0)
def softmax_grad(W: np.ndarray, X: np.ndarray, labels: np.ndarray, reg: float) -> np.ndarray:
    """d loss / d W, shape (D, C)."""
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(len(labels)), labels] -= 1.0
    return X.T @ probs / len(labels) + reg * W


def make_data(
    n: int = 300, d: int = 10, c: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs, one per class, in d dimensions."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(c, d))
    labels = rng.integers(0, c, size=n)
    return centers[labels] + rng.normal(size=(n, d)), labels


def train(steps: int = 200, learning_rate: float = 0.5, reg: float = 1e-3) -> float:
    """Train by full-batch gradient descent; return the training accuracy."""
    X, labels = make_data()
    W = np.zeros((X.shape[1], 4))
    for step in range(steps):
        W -= learning_rate * softmax_grad(W, X, labels, reg)
        if step % 50 == 0:
            print(f"step {step:3d}  loss {softmax_loss(W, X, labels, reg):.4f}")
    accuracy = float(np.mean(np.argmax(X @ W, axis=1) == labels))
    stats = softmax_grad.verigrad.stats
    print(f"training accuracy {accuracy:.3f}")
    print(
        f"{stats.calls} gradient calls, {stats.checks} checked, {stats.failures} failed, "
        f"largest relative error {stats.max_relative_error:.2e}"
    )
    return accuracy


if __name__ == "__main__":
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ]
    )
    train()
