"""Training trajectories for the measured trajectory benchmark (issue 10).

Optimisers run to convergence with a decorated gradient in debug mode (every call checked)
with verigrad's default check settings and ``on_failure="raise"``. Each :class:`Problem` is a
loss, its correct gradient, data, and an optimiser loop that takes the gradient function to
use; :func:`run_variant` runs it once with the correct gradient or with one :class:`Bug`, and
returns an :class:`Outcome`: steps, checks, verdict counts, warnings, whether and where it
raised, and for a bug how large it was against the best central difference achievable.

The problems (``quick=True`` gives smaller, shorter versions for the tests):

1. gradient descent on least squares: noisy data, and noise-free integer data whose loss is
   exactly zero at the true weights (the run ends with a call there);
2. gradient descent on L2-regularised logistic regression;
3. scipy BFGS on Rosenbrock (n = 2, 10); L-BFGS-B on non-negative least squares (several
   parameters end exactly at the bound 0) and on a Gaussian negative log-likelihood whose
   variance parameters shrink to ~1e-6 (bounded below by 1e-12; it stalls once the gradient
   has shrunk ~1e3-fold, so its late bugs switch on there);
4. minibatch SGD on softmax regression, the batch passed to loss and gradient;
5. a float32 tanh network (float32 parameters, data and arithmetic; 2,177 parameters);
6. a ReLU regression network with 4,900 weights (48 x 100 + 100);
7. mixed precision: a float32 data term plus a float64 L2 penalty, n = 10 .. 2,000;
8. domain boundaries: the entropy ``sum p log p`` of a Dirichlet probability vector (n = 500,
   5,000) under mirror descent; ``sum x log x`` with optima down to 1e-7 and ``sqrt`` with
   optima down to 1e-12 under multiplicative updates; the Gaussian NLL of 3 under Fisher
   scoring, which drives its variances to ~1e-6 and the gradient down ~1e10-fold.

The entropy runs live on the simplex, where the gradient never vanishes (it tends to a constant
vector), and the runs of 4-7 do not converge to zero gradient: their late bugs switch on at a
fixed step.

The bugs (:data:`BUGS`) are variants of the correct gradient: a sign flip on one coordinate,
a 1 % error on one coordinate, a 0.1 % error on the whole gradient; each either from the first
call ("early") or only late in the run ("late": once the gradient norm has shrunk by the
problem's ``late_shrink``, or from step ``late_step`` for runs that do not converge). A
one-coordinate bug hits the coordinate with the largest true gradient at the call where it
switches on, and stays there.

At that first active call the bug's size is compared with the best central-difference error
achievable there (:func:`achievable_error`): ``(f(x + h e_i) - f(x - h e_i)) / 2h`` of the
loss as written, from a float64 point, at 12 steps ``h`` log-spaced over 1e-10 .. 1e-1 times
``max(|x_i|, 1)``, against the correct gradient; the minimum over ``h`` of the norm of the
error over all coordinates (over 64 coordinates for n > 2,000, the bug's own coordinate among
them). ``ratio = ||g_bug - g_true|| / achievable`` over the same coordinates. The target: every
bug with ``ratio >= 10`` raises ``GradientMismatchError`` at its first active call; no correct
run warns or fails.

Every generator is seeded (by the problem's name); ``numpy.random``'s global state is never
used. scipy is needed by the BFGS and L-BFGS-B problems only, imported when they run.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from structlog.testing import capture_logs

import verigrad

__all__ = [
    "ACHIEVABLE_STEPS",
    "BUGS",
    "SUBSET_ABOVE",
    "SUBSET_SIZE",
    "TARGET_RATIO",
    "VERDICTS",
    "Bug",
    "Outcome",
    "Problem",
    "Progress",
    "achievable_error",
    "problems",
    "run_variant",
    "start_point",
]

Array = npt.NDArray[Any]
Loss = Callable[..., float]
Grad = Callable[..., Array]

#: Verdicts in report order.
VERDICTS = ("pass", "mismatch", "kink", "inconclusive", "nondeterministic", "nonfinite")
#: A bug at least this many times the achievable central-difference error must be caught.
TARGET_RATIO = 10.0
#: The steps of the achievable-error scan, times max(|x_i|, 1).
ACHIEVABLE_STEPS = np.logspace(-10, -1, 12)
#: Above this many parameters the ratio is measured on a subset of coordinates...
SUBSET_ABOVE = 2_000
#: ...of this many.
SUBSET_SIZE = 64


# -- the bugs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bug:
    """A wrong variant of a correct gradient.

    ``kind`` is ``"flip"`` (one coordinate's sign flipped), ``"one"`` (one coordinate times
    ``factor``) or ``"all"`` (the whole gradient times ``factor``). A ``late`` bug switches on
    only late in the run (see :class:`Problem`), an early one on the first call.
    """

    name: str
    kind: Literal["flip", "one", "all"]
    factor: float
    late: bool

    def apply(self, g: Array, coord: int) -> Array:
        """The buggy gradient: ``g`` (unchanged) with the bug applied, in ``g``'s dtype."""
        out = np.array(g, copy=True)
        flat = out.reshape(-1)
        if self.kind == "flip":
            flat[coord] = -flat[coord]
        elif self.kind == "one":
            flat[coord] = flat[coord] * self.factor
        else:
            flat *= self.factor
        return out


#: Every bug, early and late.
BUGS: tuple[Bug, ...] = tuple(
    Bug(f"{'late_' if late else ''}{name}", kind, factor, late)
    for late in (False, True)
    for name, kind, factor in (
        ("flip1", "flip", -1.0),
        ("one1pct", "one", 1.01),
        ("all0.1pct", "all", 1.001),
    )
)


# -- problems ----------------------------------------------------------------------------------


@dataclass
class Progress:
    """The optimiser's iteration counter, advanced by its loop (read by the bug probes)."""

    step: int = 0


@dataclass(frozen=True, eq=False)
class Problem:
    """A loss, its correct gradient, and an optimiser loop that runs to convergence.

    ``optimise(grad, progress)`` runs the optimiser from its fixed start with ``grad`` as the
    gradient (called as ``grad(x, *data)``, the loss as ``loss(x, *data)``), advancing
    ``progress.step`` once per iteration. Late bugs switch on at the first call whose true
    gradient norm is at most ``late_shrink`` times the first call's, or at the first call of
    step ``late_step``, whichever comes first.
    """

    name: str
    group: str
    loss: Loss
    grad: Grad
    optimise: Callable[[Grad, Progress], None]
    n: int
    late_shrink: float | None = 1e-6
    late_step: int | None = None
    needs_scipy: bool = False
    #: The loss computes (part of) its value in float32.
    float32: bool = False
    #: The bugs it runs with.
    bugs: tuple[Bug, ...] = BUGS


def _rng(name: str, seed: int = 0) -> np.random.Generator:
    """The problem's own generator, seeded by ``seed`` and its name."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _norm(g: Any) -> float:
    return float(np.linalg.norm(np.asarray(g, dtype=np.float64).reshape(-1)))


def _gradient_descent(
    grad: Grad,
    x0: Array,
    data: tuple[Any, ...],
    lr: float | Array,
    steps: int,
    progress: Progress,
    tol: float = 0.0,
) -> Array:
    """``x <- x - lr * grad(x, *data)`` for ``steps`` steps or until ``||grad|| <= tol``."""
    x = x0.copy()
    for t in range(steps):
        progress.step = t
        g = grad(x, *data)
        if _norm(g) <= tol:
            break
        x = (x - lr * g).astype(x0.dtype, copy=False)
    return x


# 1. least squares ------------------------------------------------------------------------------


def lsq_loss(w: Array, X: Array, y: Array) -> float:
    """``||X w - y||^2 / (2m)``."""
    r = X @ w - y
    return float(r @ r) / (2 * len(y))


def lsq_grad(w: Array, X: Array, y: Array) -> Array:
    """The correct gradient of :func:`lsq_loss`: ``X^T (X w - y) / m``."""
    return X.T @ (X @ w - y) / len(y)


def _lsq_rate(X: Array) -> float:
    """The optimal constant step ``2 / (L + mu)`` for least squares on ``X``."""
    eig = np.linalg.eigvalsh(X.T @ X / len(X))
    return 2.0 / (eig[-1] + eig[0])


def least_squares(n: int, quick: bool) -> Problem:
    """Gradient descent on noisy least squares, to a gradient norm of 1e-11."""
    name = f"lsq_noisy{n}"
    rng = _rng(name)
    X = rng.normal(size=(4 * n, n))
    y = X @ rng.normal(size=n) + 0.1 * rng.normal(size=4 * n)
    lr = _lsq_rate(X)

    def optimise(grad: Grad, progress: Progress) -> None:
        _gradient_descent(grad, np.zeros(n), (X, y), lr, 400, progress, tol=1e-11)

    return Problem(name, "1 lsq", lsq_loss, lsq_grad, optimise, n)


def least_squares_exact(n: int, quick: bool) -> Problem:
    """Noise-free integer least squares: GD to a gradient norm of 1e-12, then the true weights.

    ``y = X w*`` exactly (small integers), so the loss and the gradient are exactly zero at
    ``w*``; the run ends with one call there.
    """
    name = f"lsq_exact{n}"
    rng = _rng(name)
    X = rng.integers(-2, 3, size=(3 * n, n)).astype(np.float64)
    w_true = rng.integers(-3, 4, size=n).astype(np.float64)
    y = X @ w_true
    lr = _lsq_rate(X)

    def optimise(grad: Grad, progress: Progress) -> None:
        _gradient_descent(grad, np.zeros(n), (X, y), lr, 400, progress, tol=1e-12)
        progress.step += 1
        grad(w_true.copy(), X, y)

    return Problem(name, "1 lsq", lsq_loss, lsq_grad, optimise, n)


# 2. logistic regression --------------------------------------------------------------------------


def _sigmoid(z: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def logistic_loss(w: Array, X: Array, y: Array, lam: float) -> float:
    """Mean logistic loss of labels ``y`` in {0, 1} plus ``lam ||w||^2 / 2``."""
    z = X @ w
    return float(np.mean(np.logaddexp(0.0, z) - y * z)) + 0.5 * lam * float(w @ w)


def logistic_grad(w: Array, X: Array, y: Array, lam: float) -> Array:
    """The correct gradient of :func:`logistic_loss`."""
    return X.T @ (_sigmoid(X @ w) - y) / len(y) + lam * w


def logistic(n: int, quick: bool) -> Problem:
    """Gradient descent on L2-regularised logistic regression until the gradient shrinks 1e9."""
    name = f"logistic{n}"
    rng = _rng(name)
    m = 10 * n
    X = rng.normal(size=(m, n))
    y = (rng.random(m) < _sigmoid(X @ rng.normal(size=n))).astype(np.float64)
    lam = 0.05
    lr = 1.0 / (np.linalg.eigvalsh(X.T @ X / m)[-1] / 4 + lam)
    g0 = _norm(logistic_grad(np.zeros(n), X, y, lam))

    def optimise(grad: Grad, progress: Progress) -> None:
        _gradient_descent(grad, np.zeros(n), (X, y, lam), lr, 600, progress, tol=1e-9 * g0)

    return Problem(name, "2 logistic", logistic_loss, logistic_grad, optimise, n)


# 3. scipy: BFGS on Rosenbrock, L-BFGS-B on bounded problems -----------------------------------


def rosen_loss(x: Array) -> float:
    """The Rosenbrock function ``sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``."""
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosen_grad(x: Array) -> Array:
    """The correct gradient of :func:`rosen_loss`."""
    g = np.zeros_like(x)
    t = x[1:] - x[:-1] ** 2
    g[:-1] = -400.0 * x[:-1] * t - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * t
    return g


def _minimize(
    loss: Loss,
    grad: Grad,
    x0: Array,
    data: tuple[Any, ...],
    method: str,
    progress: Progress,
    bounds: Sequence[tuple[float | None, float | None]] | None = None,
    **options: Any,
) -> None:
    from scipy.optimize import minimize

    def advance(*_: Any) -> None:
        progress.step += 1

    minimize(
        loss,
        x0,
        args=data,
        jac=grad,
        method=method,
        bounds=bounds,
        callback=advance,
        options=options,
    )


def rosenbrock(n: int, quick: bool) -> Problem:
    """scipy BFGS on Rosenbrock from a random start, ``gtol=1e-10``."""
    name = f"rosen{n}_bfgs"
    x0 = _rng(name).uniform(-1.5, 1.5, size=n)

    def optimise(grad: Grad, progress: Progress) -> None:
        _minimize(rosen_loss, grad, x0, (), "BFGS", progress, gtol=1e-10, maxiter=2000)

    return Problem(name, "3 scipy", rosen_loss, rosen_grad, optimise, n, needs_scipy=True)


def nnls(n: int, quick: bool) -> Problem:
    """scipy L-BFGS-B on least squares with ``x >= 0``: a third of the optimum at the bound."""
    name = f"nnls{n}_lbfgsb"
    rng = _rng(name)
    X = rng.normal(size=(3 * n, n))
    x_true = np.abs(rng.normal(size=n))
    x_true[: n // 3] *= -1.0  # the constrained optimum puts these at 0
    y = X @ x_true + 0.01 * rng.normal(size=3 * n)
    bounds = [(0.0, None)] * n

    def optimise(grad: Grad, progress: Progress) -> None:
        opts = {"ftol": 1e-16, "gtol": 1e-12, "maxiter": 500}
        _minimize(lsq_loss, grad, np.ones(n), (X, y), "L-BFGS-B", progress, bounds, **opts)

    # The gradient stays large at the bound: late bugs switch on by step.
    late = 15 if n >= 30 else 8
    return Problem(name, "3 scipy", lsq_loss, lsq_grad, optimise, n, None, late, needs_scipy=True)


def gauss_nll_loss(theta: Array, Y: Array) -> float:
    """Gaussian NLL per sample: ``sum_j S_j / (2 v_j) + log(v_j) / 2``, ``theta = (mu, v)``.

    ``S_j`` is the mean of ``(Y[:, j] - mu_j)^2``.
    """
    d = Y.shape[1]
    mu, v = theta[:d], theta[d:]
    S = np.mean((Y - mu) ** 2, axis=0)
    return float(np.sum(S / (2.0 * v) + 0.5 * np.log(v)))


def gauss_nll_grad(theta: Array, Y: Array) -> Array:
    """The correct gradient of :func:`gauss_nll_loss`."""
    d = Y.shape[1]
    mu, v = theta[:d], theta[d:]
    S = np.mean((Y - mu) ** 2, axis=0)
    g_mu = -(np.mean(Y, axis=0) - mu) / v
    g_v = -S / (2.0 * v**2) + 0.5 / v
    return np.concatenate([g_mu, g_v])


def gauss_nll(d: int, quick: bool) -> Problem:
    """scipy L-BFGS-B on a Gaussian NLL; variances (bounded by 1e-12) shrink to 1e-6 .. 1.

    Means and variances of ``d`` coordinates, from ``mu = 0, v = 1``. L-BFGS-B struggles with
    the curvature of the smallest variance (~1e12): the gradient stays large for ~170 calls,
    then shrinks ~1e3-fold. The quick version runs the early bugs only (the late ones sit
    below the target ratio there).
    """
    name = f"gauss_nll{2 * d}_lbfgsb"
    rng = _rng(name)
    std = np.logspace(-3, 0, d)
    Y = rng.normal(size=d) + std * rng.normal(size=(100, d))
    bounds = [(None, None)] * d + [(1e-12, None)] * d
    x0 = np.concatenate([np.zeros(d), np.ones(d)])

    def optimise(grad: Grad, progress: Progress) -> None:
        opts = {"ftol": 1e-16, "gtol": 1e-12, "maxiter": 1000, "maxcor": 30}
        _minimize(gauss_nll_loss, grad, x0, (Y,), "L-BFGS-B", progress, bounds, **opts)

    return Problem(
        name,
        "3 scipy",
        gauss_nll_loss,
        gauss_nll_grad,
        optimise,
        2 * d,
        late_shrink=1e-3,
        needs_scipy=True,
        bugs=tuple(b for b in BUGS if not b.late) if quick else BUGS,
    )


def gauss_fisher(d: int, quick: bool) -> Problem:
    """Fisher scoring (natural-gradient steps of 1/2) on the Gaussian NLL of :func:`gauss_nll`.

    ``mu <- mu - v g_mu / 2`` and ``v <- v - v^2 g_v``: the variances shrink geometrically from
    1 towards their optima (1e-6 .. 1) and the gradient by ~1e10.
    """
    name = f"gauss_nll{2 * d}_fisher"
    rng = _rng(name)
    std = np.logspace(-3, 0, d)
    Y = rng.normal(size=d) + std * rng.normal(size=(100, d))
    x0 = np.concatenate([np.zeros(d), np.ones(d)])

    def optimise(grad: Grad, progress: Progress) -> None:
        theta = x0.copy()
        for t in range(100):
            progress.step = t
            g = grad(theta, Y)
            v = theta[d:]
            if _norm(g[:d] * np.sqrt(v)) + _norm(g[d:] * v) <= 1e-14:
                break
            theta = np.concatenate([theta[:d] - 0.5 * v * g[:d], v - v * v * g[d:]])

    return Problem(name, "8 domain", gauss_nll_loss, gauss_nll_grad, optimise, 2 * d)


# 4. minibatch SGD on softmax regression --------------------------------------------------------


def softmax_loss(W: Array, X: Array, labels: Array, reg: float) -> float:
    """Mean cross-entropy of ``softmax(X W)`` plus ``reg ||W||^2 / 2``."""
    s = X @ W
    s = s - s.max(axis=1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean()) + 0.5 * reg * float(np.sum(W * W))


def softmax_grad(W: Array, X: Array, labels: Array, reg: float) -> Array:
    """The correct gradient of :func:`softmax_loss` (shape of ``W``)."""
    s = X @ W
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return X.T @ p / len(labels) + reg * W


def softmax_sgd(d: int, steps: int, quick: bool) -> Problem:
    """Minibatch SGD (batch 32, a fresh batch each step) on softmax regression, 5 classes."""
    c = 5
    name = f"softmax{d * c}_sgd"
    rng = _rng(name)
    m = 500
    X = rng.normal(size=(m, d))
    labels = np.argmax(X @ rng.normal(size=(d, c)) + rng.gumbel(size=(m, c)), axis=1)
    reg = 1e-3

    def optimise(grad: Grad, progress: Progress) -> None:
        batches = _rng(name, 1)
        W = np.zeros((d, c))
        for t in range(steps):
            progress.step = t
            idx = batches.choice(m, size=32, replace=False)
            W = W - 0.5 * grad(W, X[idx], labels[idx], reg)

    return Problem(
        name, "4 sgd", softmax_loss, softmax_grad, optimise, d * c, None, (2 * steps) // 3
    )


# 5. a float32 tanh network ----------------------------------------------------------------------


def _tanh_unpack(theta: Array, d: int) -> tuple[Array, Array, Array, Array]:
    h = (theta.size - 1) // (d + 2)
    W1 = theta[: d * h].reshape(d, h)
    b1 = theta[d * h : d * h + h]
    w2 = theta[d * h + h : d * h + 2 * h]
    return W1, b1, w2, theta[-1:]


def tanh32_loss(theta: Array, X: Array, y: Array) -> float:
    """Half the mean squared error of ``tanh(X W1 + b1) w2 + b2``, computed in float32."""
    p = np.asarray(theta, dtype=np.float32)
    W1, b1, w2, b2 = _tanh_unpack(p, X.shape[1])
    r = np.tanh(X @ W1 + b1) @ w2 + b2 - y
    return float(np.float32(0.5) * np.mean(r * r, dtype=np.float32))


def tanh32_grad(theta: Array, X: Array, y: Array) -> Array:
    """The correct gradient of :func:`tanh32_loss`, computed and returned in float32."""
    p = np.asarray(theta, dtype=np.float32)
    W1, b1, w2, b2 = _tanh_unpack(p, X.shape[1])
    a = np.tanh(X @ W1 + b1)
    r = (a @ w2 + b2 - y) / np.float32(len(y))
    da = np.outer(r, w2) * (np.float32(1.0) - a * a)
    parts = [(X.T @ da).reshape(-1), da.sum(axis=0), a.T @ r, r.sum(keepdims=True)]
    return np.concatenate(parts).astype(np.float32)


def tanh32(steps: int, quick: bool) -> Problem:
    """GD on a 32-64-1 tanh network in float32 (2,177 parameters), fitting a teacher."""
    d, h = 32, 64
    name = f"tanh32_{d * h + 2 * h + 1}"
    rng = _rng(name)
    X = rng.normal(size=(128, d)).astype(np.float32)
    size = d * h + 2 * h + 1
    teacher = (rng.normal(size=size) / np.sqrt(d)).astype(np.float32)
    W1, b1, w2, b2 = _tanh_unpack(teacher, d)
    y = (np.tanh(X @ W1 + b1) @ w2 + b2).astype(np.float32)
    x0 = (0.5 * rng.normal(size=size) / np.sqrt(d)).astype(np.float32)

    def optimise(grad: Grad, progress: Progress) -> None:
        _gradient_descent(grad, x0, (X, y), 0.2, steps, progress)

    return Problem(
        name,
        "5 float32",
        tanh32_loss,
        tanh32_grad,
        optimise,
        size,
        late_shrink=None,
        late_step=(2 * steps) // 3,
        float32=True,
    )


# 6. a ReLU regression network with 4,900 weights ------------------------------------------------


def relu_loss(theta: Array, X: Array, y: Array) -> float:
    """Half the mean squared error of ``relu(X W1) w2`` (no biases; ``theta = (W1, w2)``)."""
    d = X.shape[1]
    h = theta.size // (d + 1)
    a = np.maximum(X @ theta[: d * h].reshape(d, h), 0.0)
    r = a @ theta[d * h :] - y
    return float(r @ r) / (2 * len(y))


def relu_grad(theta: Array, X: Array, y: Array) -> Array:
    """The correct gradient of :func:`relu_loss` (0 as the derivative of relu at 0)."""
    d = X.shape[1]
    h = theta.size // (d + 1)
    W1, w2 = theta[: d * h].reshape(d, h), theta[d * h :]
    z = X @ W1
    a = np.maximum(z, 0.0)
    r = (a @ w2 - y) / len(y)
    dz = np.outer(r, w2) * (z > 0)
    return np.concatenate([(X.T @ dz).reshape(-1), a.T @ r])


def relu_net(steps: int, quick: bool) -> Problem:
    """GD on a 48-100-1 ReLU regression network (4,900 weights), fitting a teacher plus noise."""
    d, h = 48, 100
    name = f"relu{d * h + h}"
    rng = _rng(name)
    X = rng.normal(size=(200, d))
    t1, t2 = rng.normal(size=(d, 8)) / np.sqrt(d), rng.normal(size=8)
    y = np.maximum(X @ t1, 0.0) @ t2 + 0.1 * rng.normal(size=200)
    x0 = np.concatenate([rng.normal(size=d * h) / np.sqrt(d), rng.normal(size=h) / np.sqrt(h)])

    def optimise(grad: Grad, progress: Progress) -> None:
        _gradient_descent(grad, x0, (X, y), 0.05, steps, progress)

    return Problem(
        name, "6 relu", relu_loss, relu_grad, optimise, d * h + h, None, (2 * steps) // 3
    )


# 7. mixed precision ------------------------------------------------------------------------------


def mixed_loss(w: Array, X32: Array, y32: Array, lam: float) -> float:
    """A float32 data term ``mean((X w - y)^2) / 2`` plus a float64 penalty ``lam ||w||^2 / 2``."""
    r = X32 @ w.astype(np.float32) - y32
    data = float(np.float32(0.5) * np.mean(r * r, dtype=np.float32))
    return data + 0.5 * lam * float(w @ w)


def mixed_grad(w: Array, X32: Array, y32: Array, lam: float) -> Array:
    """The correct gradient of :func:`mixed_loss`: the data part in float32, then float64."""
    r = X32 @ w.astype(np.float32) - y32
    g32 = X32.T @ r / np.float32(len(y32))
    return g32.astype(np.float64) + lam * w


def mixed(n: int, steps: int, quick: bool) -> Problem:
    """GD on float32 least squares plus a float64 L2 penalty (lam = 0.1)."""
    name = f"mixed{n}"
    rng = _rng(name)
    m = max(2 * n, 50) if n <= 100 else 100
    X = rng.normal(size=(m, n))
    y = X @ (rng.normal(size=n) / np.sqrt(n)) + 0.1 * rng.normal(size=m)
    lam = 0.1
    eig = np.linalg.eigvalsh(X @ X.T / m if m < n else X.T @ X / m)
    lr = 1.0 / (eig[-1] + lam)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)

    def optimise(grad: Grad, progress: Progress) -> None:
        _gradient_descent(grad, np.zeros(n), (X32, y32, lam), lr, steps, progress)

    return Problem(
        name,
        "7 mixed",
        mixed_loss,
        mixed_grad,
        optimise,
        n,
        late_shrink=None,
        late_step=(2 * steps) // 3,
        float32=True,
    )


# 8. domain boundaries ----------------------------------------------------------------------------


def entropy_loss(p: Array, a: Array) -> float:
    """Negative entropy plus a linear term: ``sum p log p + a . p``."""
    return float(np.sum(p * np.log(p)) + a @ p)


def entropy_grad(p: Array, a: Array) -> Array:
    """The correct gradient of :func:`entropy_loss`: ``log p + 1 + a``."""
    return np.log(p) + 1.0 + a


def entropy(n: int, steps: int, quick: bool) -> Problem:
    """Mirror descent on the simplex from a Dirichlet(1) point (entries down to ~1/n^2)."""
    name = f"entropy{n}"
    rng = _rng(name)
    p0 = rng.dirichlet(np.ones(n))
    a = rng.normal(size=n)

    def optimise(grad: Grad, progress: Progress) -> None:
        p = p0.copy()
        for t in range(steps):
            progress.step = t
            q = p * np.exp(-0.5 * grad(p, a))
            p = q / q.sum()

    return Problem(name, "8 domain", entropy_loss, entropy_grad, optimise, n, None, steps // 2)


def xlogx_loss(x: Array, b: Array) -> float:
    """``sum x log x - b x``: minimised at ``x = exp(b - 1)``."""
    return float(np.sum(x * np.log(x) - b * x))


def xlogx_grad(x: Array, b: Array) -> Array:
    """The correct gradient of :func:`xlogx_loss`: ``log x + 1 - b``."""
    return np.log(x) + 1.0 - b


def xlogx(n: int, quick: bool) -> Problem:
    """Multiplicative updates ``x <- x exp(-g / 2)`` to optima log-spaced over 1e-7 .. 1."""
    name = f"xlogx{n}"
    b = 1.0 + np.log(np.logspace(-7, 0, n))

    def optimise(grad: Grad, progress: Progress) -> None:
        x = np.full(n, 0.5)
        for t in range(80):
            progress.step = t
            g = grad(x, b)
            if _norm(g) <= 1e-13:
                break
            x = x * np.exp(-0.5 * g)

    return Problem(name, "8 domain", xlogx_loss, xlogx_grad, optimise, n)


def sqrt_loss(x: Array, c: Array) -> float:
    """``sum c x - sqrt(x)``: minimised at ``x = 1 / (4 c^2)``."""
    return float(np.sum(c * x - np.sqrt(x)))


def sqrt_grad(x: Array, c: Array) -> Array:
    """The correct gradient of :func:`sqrt_loss`: ``c - 1 / (2 sqrt x)``."""
    return c - 0.5 / np.sqrt(x)


def sqrt_domain(n: int, quick: bool) -> Problem:
    """Multiplicative updates ``x <- x (1 - g / c)`` to optima log-spaced over 1e-12 .. 1e-2."""
    name = f"sqrt{n}"
    c = 0.5 / np.sqrt(np.logspace(-12, -2, n))

    def optimise(grad: Grad, progress: Progress) -> None:
        x = np.full(n, 0.25)
        for t in range(80):
            progress.step = t
            g = grad(x, c)
            if _norm(g / c) <= 1e-14:
                break
            x = x * (1.0 - g / c)

    return Problem(name, "8 domain", sqrt_loss, sqrt_grad, optimise, n)


def problems(quick: bool = False) -> list[Problem]:
    """Every problem, in report order; ``quick`` gives smaller and shorter ones."""
    if quick:
        return [
            least_squares(20, quick),
            least_squares_exact(20, quick),
            logistic(10, quick),
            rosenbrock(2, quick),
            rosenbrock(10, quick),
            nnls(15, quick),
            gauss_nll(4, quick),
            softmax_sgd(10, 60, quick),
            tanh32(30, quick),
            relu_net(15, quick),
            mixed(10, 60, quick),
            mixed(300, 15, quick),
            gauss_fisher(4, quick),
            entropy(500, 20, quick),
            entropy(5000, 20, quick),
            xlogx(20, quick),
            sqrt_domain(20, quick),
        ]
    return [
        least_squares(50, quick),
        least_squares_exact(30, quick),
        logistic(20, quick),
        rosenbrock(2, quick),
        rosenbrock(10, quick),
        nnls(30, quick),
        gauss_nll(4, quick),
        softmax_sgd(20, 200, quick),
        tanh32(200, quick),
        relu_net(100, quick),
        mixed(10, 200, quick),
        mixed(300, 60, quick),
        mixed(2000, 20, quick),
        gauss_fisher(10, quick),
        entropy(500, 40, quick),
        entropy(5000, 40, quick),
        xlogx(50, quick),
        sqrt_domain(50, quick),
    ]


class _Stop(Exception):
    """Ends an optimiser run from inside its gradient."""


def start_point(problem: Problem) -> tuple[Array, tuple[Any, ...]]:
    """The point and data of the optimiser's first gradient call (nothing checked)."""
    seen: list[tuple[Array, tuple[Any, ...]]] = []

    def capture(x: Array, *data: Any) -> Array:
        seen.append((np.array(x, copy=True), data))
        raise _Stop

    with contextlib.suppress(_Stop):
        problem.optimise(capture, Progress())
    return seen[0]


# -- measuring a bug ------------------------------------------------------------------------------


def _subset(n: int, coord: int | None, key: str) -> Array | None:
    """The coordinates the ratio is measured on: all (None) up to SUBSET_ABOVE, else 64.

    A one-coordinate bug's own coordinate is always among them.
    """
    if n <= SUBSET_ABOVE:
        return None
    picks = _rng(key, 2).permutation(n)[:SUBSET_SIZE]
    if coord is not None and coord not in picks:
        picks[-1] = coord
    return np.sort(picks)


def achievable_error(
    loss: Loss, x: Array, data: tuple[Any, ...], g_true: Array, indices: Array | None
) -> float:
    """The best central-difference error achievable at ``x``, over a scan of 12 steps.

    For each multiplier ``s`` in :data:`ACHIEVABLE_STEPS`, every coordinate ``i`` (of
    ``indices``, or all) is differenced with ``h_i = s max(|x_i|, 1)`` from a float64 copy of
    ``x`` (the step actually taken is the difference of the two perturbed floats); the result is
    the smallest ``||num - g_true||`` over the steps whose estimates are all finite (``inf`` when
    none is).
    """
    work = np.array(x, dtype=np.float64)
    flat = work.reshape(-1)
    idx = np.arange(flat.size) if indices is None else np.asarray(indices)
    truth = np.asarray(g_true, dtype=np.float64).reshape(-1)[idx]
    scale = np.maximum(np.abs(flat[idx]), 1.0)
    best = math.inf
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in ACHIEVABLE_STEPS:
            num = np.empty(idx.size)
            for k, i in enumerate(idx):
                old = flat[i]
                flat[i] = old + s * scale[k]
                up, f_up = flat[i], loss(work, *data)
                flat[i] = old - s * scale[k]
                down, f_down = flat[i], loss(work, *data)
                flat[i] = old
                num[k] = (f_up - f_down) / (up - down)
            err = float(np.linalg.norm(num - truth))
            if math.isfinite(err):
                best = min(best, err)
    return best


_ACHIEVABLE: dict[tuple[str, int, int], float] = {}


@dataclass
class _Probe:
    """A buggy gradient function's state: when the bug switched on, and where."""

    problem: Problem
    bug: Bug
    progress: Progress
    first_call: int | None = None
    first_step: int | None = None
    coord: int | None = None
    x: Array | None = None
    data: tuple[Any, ...] = ()
    g_true: Array | None = None
    g_bug: Array | None = None
    g0: float | None = None

    def gradient(self) -> Grad:
        """The correct gradient with the bug applied from its first active call on."""
        correct = self.problem.grad
        calls = itertools.count()

        @functools.wraps(correct)
        def buggy(x: Array, *data: Any) -> Array:
            i = next(calls)
            g = correct(x, *data)
            if self.first_call is None and self._switches_on(g):
                self.first_call, self.first_step = i, self.progress.step
                self.coord = int(np.argmax(np.abs(np.asarray(g).reshape(-1))))
                self.x, self.data, self.g_true = np.array(x, copy=True), data, np.array(g)
            if self.first_call is None:
                return g
            g_bug = self.bug.apply(g, 0 if self.coord is None else self.coord)
            if self.g_bug is None:
                self.g_bug = np.array(g_bug)
            return g_bug

        return buggy

    def _switches_on(self, g: Array) -> bool:
        norm = _norm(g)
        if self.g0 is None:
            self.g0 = norm
        if not self.bug.late:
            return True
        p = self.problem
        if p.late_step is not None and self.progress.step >= p.late_step:
            return True
        return p.late_shrink is not None and norm <= p.late_shrink * self.g0

    def ratio(self) -> tuple[float | None, float | None, float | None]:
        """``(discrepancy, achievable, ratio)`` at the first active call (None if never)."""
        if self.first_call is None or self.x is None or self.g_true is None:
            return None, None, None
        one = self.coord if self.bug.kind != "all" else None
        indices = _subset(self.x.size, one, f"{self.problem.name}/{self.bug.kind}")
        truth = np.asarray(self.g_true, dtype=np.float64).reshape(-1)
        wrong = np.asarray(self.g_bug, dtype=np.float64).reshape(-1)
        if indices is not None:
            truth, wrong = truth[indices], wrong[indices]
        discrepancy = float(np.linalg.norm(wrong - truth))
        key = (
            self.problem.name,
            self.first_call,
            hash((self.x.tobytes(), None if indices is None else indices.tobytes())),
        )
        if key not in _ACHIEVABLE:
            _ACHIEVABLE[key] = achievable_error(
                self.problem.loss, self.x, self.data, self.g_true, indices
            )
        achievable = _ACHIEVABLE[key]
        if discrepancy == 0.0:
            ratio = 0.0
        elif achievable == 0.0:
            ratio = math.inf
        else:
            # 0 when no step of the scan kept every estimate finite (achievable = inf)
            ratio = discrepancy / achievable
        return discrepancy, achievable, ratio


# -- running ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One run of a problem with the correct gradient or one bug."""

    run: str
    group: str
    gradient: str
    n: int
    steps: int
    calls: int
    checks: int
    verdicts: dict[str, int] = field(default_factory=dict)
    verigrad_warnings: int = 0
    other_warnings: int = 0
    #: The distinct warnings (category: first line), verigrad's and others'.
    verigrad_messages: list[str] = field(default_factory=list)
    other_messages: list[str] = field(default_factory=list)
    raised: bool = False
    raised_call: int | None = None
    raised_step: int | None = None
    error: str | None = None
    first_call: int | None = None
    first_step: int | None = None
    discrepancy: float | None = None
    achievable: float | None = None
    ratio: float | None = None
    n_evals: list[int] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def is_bug(self) -> bool:
        return self.gradient != "correct"

    @property
    def targeted(self) -> bool:
        """A bug large enough that the target says it must be caught at its first check."""
        return self.is_bug and self.ratio is not None and self.ratio >= TARGET_RATIO

    @property
    def caught(self) -> bool:
        """Raised GradientMismatchError at the bug's first active call."""
        return self.raised and self.first_call is not None and self.raised_call == self.first_call

    @property
    def missed(self) -> bool:
        return self.targeted and not self.caught

    @property
    def false_alarm(self) -> bool:
        """Raised GradientMismatchError before the bug switched on."""
        if not self.raised or self.raised_call is None:
            return False
        return self.first_call is None or self.raised_call < self.first_call

    @property
    def bad_correct(self) -> bool:
        """A correct run that warned, raised, erred, or gave a verdict other than pass/kink."""
        if self.is_bug:
            return False
        odd = any(v not in ("pass", "kink") for v, k in self.verdicts.items() if k)
        return self.raised or self.error is not None or self.verigrad_warnings > 0 or odd

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["n_evals_mean"] = float(np.mean(self.n_evals)) if self.n_evals else None
        del out["n_evals"]
        out.update(targeted=self.targeted, caught=self.caught, missed=self.missed)
        for k in ("ratio", "achievable"):
            if out[k] is not None and not math.isfinite(out[k]):
                out[k] = str(out[k])
        return out


def run_variant(problem: Problem, bug: Bug | None = None, seed: int = 0) -> Outcome:
    """Run ``problem``'s optimiser with its correct gradient (``bug=None``) or with ``bug``.

    The gradient is decorated with ``verified_gradient(loss=problem.loss, mode="debug",
    on_failure="raise", seed=seed)``: every call checked, default check settings. The run stops
    at the first exception. Warnings are recorded (never raised), and each check's verdict is
    read from its ``gradient_check`` log event.
    """
    progress = Progress()
    probe = _Probe(problem, bug, progress) if bug is not None else None
    raw = probe.gradient() if probe is not None else problem.grad
    fn = verigrad.verified_gradient(loss=problem.loss, mode="debug", on_failure="raise", seed=seed)(
        raw
    )
    out = Outcome(
        run=problem.name,
        group=problem.group,
        gradient="correct" if bug is None else bug.name,
        n=problem.n,
        steps=0,
        calls=0,
        checks=0,
    )
    with warnings.catch_warnings(record=True) as caught, capture_logs() as events:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            problem.optimise(fn, progress)
        except verigrad.GradientMismatchError:
            out.raised = True
            out.raised_call = fn.verigrad.stats.calls - 1  # debug mode: the last call
            out.raised_step = progress.step
        except Exception as exc:
            out.error = f"{type(exc).__name__}: {exc}"
        out.wall_s = time.perf_counter() - start
    stats = fn.verigrad.stats
    out.steps, out.calls, out.checks = progress.step + 1, stats.calls, stats.checks
    checks = [e for e in events if e.get("event") == "gradient_check"]
    out.verdicts = dict(Counter(str(e.get("verdict")) for e in checks))
    out.n_evals = [int(e["n_evals"]) for e in checks if e.get("n_evals") is not None]
    for w in caught:
        ours = issubclass(w.category, verigrad.VerigradWarning)
        if ours:
            out.verigrad_warnings += 1
        else:
            out.other_warnings += 1
        text = f"{w.category.__name__}: {(str(w.message).splitlines() or [''])[0][:100]}"
        messages = out.verigrad_messages if ours else out.other_messages
        if text not in messages:
            messages.append(text)
    if probe is not None:
        out.first_call, out.first_step = probe.first_call, probe.first_step
        out.discrepancy, out.achievable, out.ratio = probe.ratio()
    return out
