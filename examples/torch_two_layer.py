"""A PyTorch training loop whose hand-written backward pass is checked while it trains.

A two-layer tanh network is a ``torch.autograd.Function`` with its own ``backward``. The
function that computes the parameters' gradients through it is decorated with
``verigrad.verified_gradient``: the first call and a sample of later ones compare the
hand-written backward with finite differences of the loss, while ``torch.optim.SGD`` trains.
Then the same loop runs with a classic slip in the backward (the tanh derivative forgotten),
which the first check catches, naming the wrong parameters.

The parameters are passed as they are, ``nn.Parameter`` tensors with ``requires_grad``: the
check evaluates the loss on detached float64 copies, with autograd off, so nothing reaches
the parameters' ``.grad`` or the optimizer's state; the loss receives tensors.

Run:  python examples/torch_two_layer.py   (needs torch: pip install "verigrad[torch]")
"""

from __future__ import annotations

from typing import Any

import torch

import verigrad

Params = dict[str, torch.Tensor]


class TwoLayer(torch.autograd.Function):
    """``tanh(X @ W1 + b1) @ W2 + b2`` with a hand-written backward."""

    slip = False  # the bug switched on in the second run

    @staticmethod
    def forward(ctx: Any, X: torch.Tensor, W1: Any, b1: Any, W2: Any, b2: Any) -> torch.Tensor:
        hidden = torch.tanh(X @ W1 + b1)
        ctx.save_for_backward(X, W2, hidden)
        return hidden @ W2 + b2

    @staticmethod
    def backward(ctx: Any, d_out: torch.Tensor) -> tuple[Any, ...]:
        X, W2, hidden = ctx.saved_tensors
        d_hidden = d_out @ W2.T
        if not TwoLayer.slip:
            d_hidden = d_hidden * (1 - hidden**2)  # the tanh derivative
        return None, X.T @ d_hidden, d_hidden.sum(0), hidden.T @ d_out, d_out.sum(0)


def loss(p: Params, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the network, through the custom Function."""
    out = TwoLayer.apply(X, p["W1"], p["b1"], p["W2"], p["b2"])
    return ((out[:, 0] - y) ** 2).mean()


@verigrad.verified_gradient(loss=loss, sample_rate=0.05, first=1, seed=0)
def gradient(p: Params, X: torch.Tensor, y: torch.Tensor) -> Params:
    """The parameters' gradients through the hand-written backward."""
    leaves = {k: v.detach().requires_grad_() for k, v in p.items()}
    grads = torch.autograd.grad(loss(leaves, X, y), list(leaves.values()))
    return dict(zip(leaves, grads, strict=True))


def train(steps: int = 150, lr: float = 0.2) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g, dtype=torch.float64)
    y = torch.sin(X[:, 0]) + 0.5 * X[:, 1]
    params = {
        "W1": torch.nn.Parameter(0.5 * torch.randn(4, 8, generator=g, dtype=torch.float64)),
        "b1": torch.nn.Parameter(torch.zeros(8, dtype=torch.float64)),
        "W2": torch.nn.Parameter(0.5 * torch.randn(8, 1, generator=g, dtype=torch.float64)),
        "b2": torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)),
    }
    opt = torch.optim.SGD(params.values(), lr=lr)
    with torch.no_grad():
        start = float(loss(params, X, y))
    for _ in range(steps):
        grads = gradient(params, X, y)
        for name, p in params.items():
            p.grad = grads[name]
        opt.step()
    with torch.no_grad():
        return start, float(loss(params, X, y))


def main() -> None:
    start, final = train()
    stats = gradient.verigrad.stats
    print(f"loss {start:.4f} -> {final:.4f}")
    print(f"{stats.calls} calls, {stats.checks} checked, {stats.failures} failed")
    TwoLayer.slip = True
    gradient.verigrad.reset()
    try:
        train()
    except verigrad.GradientMismatchError as err:
        print(err)
    finally:
        TwoLayer.slip = False


if __name__ == "__main__":
    main()
