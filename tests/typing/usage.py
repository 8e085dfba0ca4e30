"""How users' code reads to a type checker: ``mypy --strict`` must accept this file.

Checked by tests/test_typing.py; never imported by the suite otherwise.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import verigrad as vg

Array = npt.NDArray[np.float64]


def loss(w: Array, a: Array) -> float:
    return float(np.sum(a * w**2))


@vg.verified_gradient(loss=loss)
def grad(w: Array, a: Array) -> Array:
    return 2 * a * w


class Model:
    def __init__(self, a: Array) -> None:
        self.a = a

    def loss(self, w: Array) -> float:
        return float(np.sum(self.a * w**2))

    @vg.verified_gradient(loss="loss", every=10)
    def grad(self, w: Array) -> Array:
        return 2 * self.a * w

    @vg.verified_gradient(loss=loss, wrt="w")
    @staticmethod
    def static_grad(w: Array, a: Array) -> Array:
        return 2 * a * w

    @staticmethod
    @vg.verified_gradient(loss=loss)
    def static_grad_below(w: Array, a: Array) -> Array:
        return 2 * a * w

    @vg.verified_gradient(loss=loss)
    @classmethod
    def class_grad(cls, w: Array, a: Array) -> Array:
        return 2 * a * w


def use() -> None:
    w = np.ones(3)
    a = np.full(3, 2.0)
    g: Array = grad(w, a)
    stats: vg.CheckStats = grad.verigrad.stats
    calls: int = stats.calls
    last: vg.CheckResult | None = grad.verigrad.last_result
    grad.verigrad.reset()

    model = Model(a)
    g = model.grad(w)
    checks: int = model.grad.verigrad.stats.checks
    g = Model.grad(model, w)
    g = Model.static_grad(w, a)
    overhead: float = Model.static_grad.verigrad.stats.overhead
    g = Model.static_grad_below(w, a)
    g = model.class_grad(w, a)
    failures: int = model.class_grad.verigrad.stats.failures
    # Known mypy limits: mypy reads @staticmethod/@classmethod in a decorator stack as flags on
    # the function, so a decorated staticmethod looked up on an *instance*, and a decorated
    # classmethod looked up on the *class*, are typed as if bound like a method.

    bound = vg.verified_gradient(loss=model.loss)(model.grad)
    g = bound(w)
    mode: str = bound.verigrad.mode
    print(g, stats, calls, last, checks, overhead, failures, mode)
