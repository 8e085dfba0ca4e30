"""A two-layer network whose parameters live in a dict, trained with a sampled check.

The gradient function returns a dict shaped like the parameters; verigrad checks it leaf by
leaf. The run first trains with a correct gradient, then with a classic backprop slip (the
tanh derivative forgotten in layer 1), which the first check catches, naming the leaves.

Run:  python examples/two_layer_network.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

import verigrad

Params = dict[str, dict[str, np.ndarray]]


def init(d: int = 4, h: int = 8, seed: int = 0) -> Params:
    rng = np.random.default_rng(seed)
    return {
        "layer1": {"W": rng.normal(scale=0.5, size=(d, h)), "b": np.zeros(h)},
        "layer2": {"W": rng.normal(scale=0.5, size=(h, 1)), "b": np.zeros(1)},
    }


def loss(p: Params, X: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of a tanh network."""
    hidden = np.tanh(X @ p["layer1"]["W"] + p["layer1"]["b"])
    out = hidden @ p["layer2"]["W"] + p["layer2"]["b"]
    return float(np.mean((out[:, 0] - y) ** 2))


def backprop(p: Params, X: np.ndarray, y: np.ndarray, slip: bool = False) -> Params:
    hidden = np.tanh(X @ p["layer1"]["W"] + p["layer1"]["b"])
    out = hidden @ p["layer2"]["W"] + p["layer2"]["b"]
    d_out = 2 * (out - y[:, None]) / len(y)
    d_hidden = d_out @ p["layer2"]["W"].T
    if not slip:
        d_hidden = d_hidden * (1 - hidden**2)  # the tanh derivative
    return {
        "layer1": {"W": X.T @ d_hidden, "b": d_hidden.sum(axis=0)},
        "layer2": {"W": hidden.T @ d_out, "b": d_out.sum(axis=0)},
    }


@verigrad.verified_gradient(loss=loss, sample_rate=0.05, first=1, seed=0)
def grad(p: Params, X: np.ndarray, y: np.ndarray) -> Params:
    return backprop(p, X, y)


@verigrad.verified_gradient(loss=loss, seed=0)
def grad_with_slip(p: Params, X: np.ndarray, y: np.ndarray) -> Params:
    return backprop(p, X, y, slip=True)


def train(gradient: Any, steps: int = 200, lr: float = 0.1) -> tuple[Params, float]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 4))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    p = init()
    for _ in range(steps):
        g = gradient(p, X, y)
        for layer in p:
            for name in p[layer]:
                p[layer][name] -= lr * g[layer][name]
    return p, loss(p, X, y)


def main() -> None:
    _, final = train(grad)
    stats = grad.verigrad.stats
    print(
        f"final loss {final:.4f}; {stats.calls} calls, {stats.checks} checked, "
        f"{stats.failures} failed"
    )
    try:
        train(grad_with_slip)
    except verigrad.GradientMismatchError as err:
        print(err)


if __name__ == "__main__":
    main()
