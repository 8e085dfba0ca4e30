"""What you see when a gradient has a bug: here the classic missing factor of 2.

The loss is the mean squared error (1/n) ||X w - y||^2; its gradient is (2/n) X^T (X w - y).
The buggy version below forgets the 2 that comes down from the square.

Run:  python examples/catch_a_bug.py
"""

from __future__ import annotations

import numpy as np

import verigrad


def mse(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of the linear model X w."""
    resid = X @ w - y
    return float(resid @ resid) / len(y)


@verigrad.verified_gradient(loss=mse)
def mse_grad(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Buggy: should be 2 * X.T @ (X @ w - y) / n."""
    return X.T @ (X @ w - y) / len(y)


def main() -> verigrad.CheckResult:
    """Take one training step and show the error verigrad raises on its first call."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=50)
    w = np.zeros(3)
    try:
        w -= 0.1 * mse_grad(w, X, y)
    except verigrad.GradientMismatchError as error:
        print(error)
        return error.result
    raise SystemExit("the bug went unnoticed")


if __name__ == "__main__":
    main()
