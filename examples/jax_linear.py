"""A JAX training loop whose hand-derived gradient is checked while it trains.

Ridge regression with a jit-compiled loss and a hand-derived, jit-compiled gradient, in JAX's
default float32. The gradient function is decorated with ``verigrad.verified_gradient``: the
first call and a sample of later ones are compared with finite differences of the loss. Then
the same loop runs with a dropped factor of 2 in the penalty's gradient, which the first
check catches.

The loss receives JAX arrays on the parameter's device, in float32 (x64 is off; with
``jax.config.update("jax_enable_x64", True)`` the check would compute in float64), and the
check follows float32's precision.

Run:  python examples/jax_linear.py   (needs JAX: pip install "verigrad[jax]")
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import verigrad

PENALTY = 0.1


@jax.jit
def loss(w: Any, X: Any, y: Any) -> Any:
    """Mean squared error plus a ridge penalty."""
    r = X @ w - y
    return jnp.mean(r * r) + PENALTY * jnp.sum(w * w)


@jax.jit
def ridge_grad(w: Any, X: Any, y: Any) -> Any:
    return 2 * X.T @ (X @ w - y) / X.shape[0] + 2 * PENALTY * w


@jax.jit
def ridge_grad_slip(w: Any, X: Any, y: Any) -> Any:
    return 2 * X.T @ (X @ w - y) / X.shape[0] + PENALTY * w  # the penalty's 2 dropped


@verigrad.verified_gradient(loss=loss, sample_rate=0.05, first=1, seed=0)
def grad(w: Any, X: Any, y: Any) -> Any:
    return ridge_grad(w, X, y)


@verigrad.verified_gradient(loss=loss, seed=0)
def grad_with_slip(w: Any, X: Any, y: Any) -> Any:
    return ridge_grad_slip(w, X, y)


def train(gradient: Any, steps: int = 100, lr: float = 0.1) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(128, 5)), dtype=jnp.float32)
    y = X @ jnp.arange(1.0, 6.0) + 0.1 * jnp.asarray(rng.normal(size=128), dtype=jnp.float32)
    w = jnp.ones(5)
    start = float(loss(w, X, y))
    for _ in range(steps):
        w = w - lr * gradient(w, X, y)
    return start, float(loss(w, X, y))


def main() -> None:
    start, final = train(grad)
    stats = grad.verigrad.stats
    print(f"loss {start:.3f} -> {final:.3f}")
    print(f"{stats.calls} calls, {stats.checks} checked, {stats.failures} failed")
    try:
        train(grad_with_slip)
    except verigrad.GradientMismatchError as err:
        print(err)


if __name__ == "__main__":
    main()
