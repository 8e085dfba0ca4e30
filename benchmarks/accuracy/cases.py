"""The accuracy suite's catalogue: losses with correct, buggy and kinked gradients.

Each :class:`Case` pairs a loss, a point and a gradient function under test with the verdicts
a trustworthy check may give on it (issue 3):

- ``"correct"``: the gradient is right; only ``"pass"`` is acceptable. The cases are chosen to
  be hard for a fixed-step, fixed-threshold check: ill-conditioned, coordinates of very
  different scales, huge parameters, tiny losses, float32, sizes from 1 to 5,000.
- ``"buggy"``: the gradient has a real bug; only ``"mismatch"`` is acceptable.
- ``"kink"``: ReLU, hinge and L1 losses. At random points (away from the kinks) the gradient
  is ordinary and must pass; a point closer to a kink than a difference step may also give
  ``"kink"``; exactly at a kink a valid subgradient must be reported as ``"kink"``, and a
  value outside the subgradient interval as ``"mismatch"``.

Issue 10 adds a group per class of hard point, each with correct and buggy gradients (the
correct ones expect ``"pass"``, or ``"pass"``/``"kink"`` at random points of kinked losses, the
buggy ones ``"mismatch"``):

- ``"stationary"``: minimisers (gradients of rounding size), exact zeros (loss and gradient
  exactly 0), a logistic regression near convergence (gradient 1e-6 of its start);
- ``"precision"``: losses computed in float32 at 2,001 to 30,000 parameters, and a
  mixed-precision loss (float32 data term, float64 penalty) at 10 to 5,000;
- ``"large_kink"``: a ReLU network, a hinge loss and the lasso past 2,000 parameters;
- ``"boundary"``: points a step of 1e-5 max(|x_i|, 1) away from leaving the loss's domain;
- ``"aliasing"``: losses that cache by array identity or write into their input, with correct
  gradients: ``"pass"`` or ``"inconclusive"``, never ``"mismatch"``.

Every bug in them stands at least 10x above the best central difference that could see it
(``tests/test_accuracy.py`` measures it), so a check can and must find it.

``all_cases(seed)`` is deterministic: each case draws from its own generator, seeded by
``seed`` and the case's name, so adding a case never changes another. The parameter arrays are
read-only. Gradient functions take the parameter as given (float32 stays float32); the losses
accept whatever array the check evaluates them at.
"""

from __future__ import annotations

import importlib.util
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "BASE_GROUPS",
    "GROUPS",
    "HARD_GROUPS",
    "KINK",
    "MISMATCH",
    "PASS",
    "PASS_OR_INCONCLUSIVE",
    "PASS_OR_KINK",
    "Case",
    "all_cases",
    "by_group",
]

Array = npt.NDArray[Any]
Loss = Callable[[Array], float]
Grad = Callable[[Array], Array]
Group = Literal[
    "correct", "buggy", "kink", "stationary", "precision", "large_kink", "boundary", "aliasing"
]

#: The groups of issue 3's catalogue: correct gradients, buggy gradients, kinks.
BASE_GROUPS: tuple[Group, ...] = ("correct", "buggy", "kink")
#: The groups issue 10 added, one per class of hard point; each holds correct and buggy cases.
HARD_GROUPS: tuple[Group, ...] = ("stationary", "precision", "large_kink", "boundary", "aliasing")
#: The groups of the catalogue, in report order.
GROUPS: tuple[Group, ...] = (*BASE_GROUPS, *HARD_GROUPS)

PASS = frozenset({"pass"})
MISMATCH = frozenset({"mismatch"})
KINK = frozenset({"kink"})
PASS_OR_KINK = frozenset({"pass", "kink"})
#: A loss that caches by identity or writes into its input: the check may say it cannot tell.
PASS_OR_INCONCLUSIVE = frozenset({"pass", "inconclusive"})

#: Closer to a kink than this (relative to max(|x_i|, 1)) a random point may give "kink".
NEAR_KINK = 1e-3


@dataclass(frozen=True, eq=False)
class Case:
    """One loss, point and gradient under test, with the verdicts a check may give on it.

    ``twin`` and ``correct_grad`` serve the catalogue's own tests, never the check:

    - ``twin``: for a loss that rounds (computed in float32, or partly so), the same formula in
      float64, against which the gradient is verified;
    - ``correct_grad``: for a buggy case, the correct gradient the bug was injected into, so
      that the bug's size can be compared with what finite differences resolve.
    """

    name: str
    group: Group
    loss: Loss
    x: Array
    grad: Grad
    expected: frozenset[str]
    twin: Loss | None = None
    correct_grad: Grad | None = None

    def __post_init__(self) -> None:
        self.x.setflags(write=False)

    def __repr__(self) -> str:
        return (
            f"Case({self.name!r}, {self.group!r}, shape={self.x.shape}, dtype={self.x.dtype}, "
            f"expected={sorted(self.expected)})"
        )


# -- helpers -----------------------------------------------------------------------------------


def _rng(seed: int, name: str) -> np.random.Generator:
    """The case's own generator: independent of every other case."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _problems() -> ModuleType:
    """``tests/problems.py``, the problems the unit tests share (loaded by path)."""
    name = "_verigrad_accuracy_problems"
    module = sys.modules.get(name)
    if module is None:
        path = Path(__file__).resolve().parents[2] / "tests" / "problems.py"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - the file is in the repo
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def _named(f: Callable[..., Any], name: str) -> Callable[..., Any]:
    f.__name__ = f.__qualname__ = name
    return f


def _bind(f: Callable[..., Any], *args: Any, name: str | None = None) -> Callable[[Array], Any]:
    """``x -> f(x, *args)``, named after ``f`` (or ``name``) for reports."""

    def bound(x: Array) -> Any:
        return f(x, *args)

    return _named(bound, name or f.__name__)


def _const(g: Array, name: str) -> Grad:
    """A gradient function that returns the precomputed ``g``."""

    def grad(x: Array) -> Array:
        return g.copy()

    return _named(grad, name)


def _modified(grad: Grad, edit: Callable[[Array, Array], Array], name: str) -> Grad:
    """``grad`` with ``edit(x, g)`` applied to a copy of its result: a bug injected afterwards."""

    def buggy(x: Array) -> Array:
        return edit(x, np.array(grad(x), copy=True))

    return _named(buggy, name)


def _stale(grad: Grad, lr: float, name: str) -> Grad:
    """The gradient at ``x - lr * grad(x)``: computed after an in-place update of ``x``."""

    def stale(x: Array) -> Array:
        return grad(x - lr * grad(x))

    return _named(stale, name)


def _signed(rng: np.random.Generator, lo: float, hi: float, size: Any) -> Array:
    """Random magnitudes in ``[lo, hi]`` with random signs."""
    out: Array = rng.choice([-1.0, 1.0], size=size) * rng.uniform(lo, hi, size=size)
    return out


def _spd(rng: np.random.Generator, n: int) -> Array:
    """A well-conditioned symmetric positive definite matrix (eigenvalues about 1 to 5)."""
    m = rng.normal(size=(n, n))
    a = m @ m.T / n + np.eye(n)
    return (a + a.T) / 2


def _orthogonal(rng: np.random.Generator, n: int) -> Array:
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    out: Array = q * np.sign(np.diag(r))
    return out


def _median_index(g: Array) -> int:
    """The flat index of a coordinate of median magnitude: a typical one, neither 0 nor the max."""
    flat = np.abs(np.asarray(g, dtype=np.float64)).reshape(-1)
    return int(np.argsort(flat, kind="stable")[flat.size // 2])


def _near_kink(distance: float) -> frozenset[str]:
    """Expected verdicts at a random point whose nearest kink lies ``distance`` away (relative)."""
    return PASS_OR_KINK if distance < NEAR_KINK else PASS


def _sigmoid(z: Array) -> Array:
    out: Array = 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warning for large |z|
    return out


def _scaled(
    f: Callable[..., Any], factor: float | np.floating[Any], name: str
) -> Callable[[Array], Any]:
    """``x -> factor * f(x)``: a loss or a gradient multiplied by a constant."""

    def scaled(x: Array) -> Any:
        return factor * f(x)

    return _named(scaled, name)


def _flip_one(index: int) -> Callable[[Array, Array], Array]:
    """An edit for :func:`_modified`: the sign of one coordinate (flat index) flipped."""

    def edit(x: Array, g: Array) -> Array:
        g.reshape(-1)[index] *= -1.0
        return g

    return edit


def _scale_one(index: int, factor: float) -> Callable[[Array, Array], Array]:
    """An edit for :func:`_modified`: one coordinate (flat index) multiplied by ``factor``."""

    def edit(x: Array, g: Array) -> Array:
        g.reshape(-1)[index] *= factor
        return g

    return edit


def _set_one(index: int, value: float) -> Callable[[Array, Array], Array]:
    """An edit for :func:`_modified`: one coordinate (flat index) set to ``value``."""

    def edit(x: Array, g: Array) -> Array:
        g.reshape(-1)[index] = value
        return g

    return edit


def _negated(x: Array, g: Array) -> Array:
    """An edit for :func:`_modified`: the whole gradient's sign flipped."""
    return -g


# -- losses and gradients ----------------------------------------------------------------------


def _quiet() -> np.errstate:
    """Outside its domain a loss returns NaN (or inf) as numpy computes it, without a warning:
    a check that steps out must see the value, not an exception raised by a warnings filter
    (pytest's ``filterwarnings = error``)."""
    return np.errstate(divide="ignore", invalid="ignore")


# Module-level functions of (x, *data), bound to their data with _bind: no closure ever sees a
# variable that a later case reassigns.


def quadratic_loss(x: Array, a: Array, b: Array) -> float:
    """0.5 x^T A x - b^T x (A symmetric)."""
    return float(0.5 * x @ (a @ x) - b @ x)


def quadratic_grad(x: Array, a: Array, b: Array) -> Array:
    """A x - b."""
    out: Array = a @ x - b
    return out


def quadratic_loss_f32(x: Array, a: Array, b: Array) -> float:
    """:func:`quadratic_loss` computed in float32 throughout (the parameter cast to float32)."""
    x32 = np.asarray(x, dtype=np.float32)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    return float(np.float32(0.5) * x32 @ (a32 @ x32) - b32 @ x32)


def quadratic_form(x: Array, w: Array) -> float:
    """x^T W x with W not symmetric."""
    return float(x @ w @ x)


def quadratic_form_grad_symmetric(x: Array, w: Array) -> Array:
    """Transpose ignored: 2 W x, where the gradient is (W + W^T) x."""
    out: Array = 2.0 * w @ x
    return out


def least_squares(x: Array, b: Array, t: Array) -> float:
    """0.5 ||B x - t||^2 (Frobenius for a matrix parameter)."""
    r = b @ x - t
    return float(0.5 * np.sum(r * r))


def least_squares_grad(x: Array, b: Array, t: Array) -> Array:
    """B^T (B x - t)."""
    out: Array = b.T @ (b @ x - t)
    return out


def least_squares_grad_transposed(x: Array, b: Array, t: Array) -> Array:
    """Transpose bug: B (B x - t) instead of B^T (B x - t), B square."""
    out: Array = b @ (b @ x - t)
    return out


def mean_squares(x: Array, b: Array, t: Array) -> float:
    """0.5 mean((B x - t)^2)."""
    r = b @ x - t
    return float(0.5 * np.mean(r * r))


def mean_squares_grad(x: Array, b: Array, t: Array) -> Array:
    """B^T (B x - t) / m."""
    out: Array = b.T @ (b @ x - t) / len(t)
    return out


def matrix_mse(m: Array, a: Array, c: Array) -> float:
    """mean((A M - C)^2) over all entries of the residual matrix."""
    r = a @ m - c
    return float(np.mean(r * r))


def matrix_mse_grad_rows(m: Array, a: Array, c: Array) -> Array:
    """Wrong reduction: divides by the number of rows, not the number of entries."""
    out: Array = 2.0 * a.T @ (a @ m - c) / a.shape[0]
    return out


def scaled_least_squares(x: Array, b: Array, t: Array, s: Array) -> float:
    """0.5 ||B (x / s) - t||^2: coordinate i lives on the scale s_i."""
    r = b @ (x / s) - t
    return float(0.5 * r @ r)


def scaled_least_squares_grad(x: Array, b: Array, t: Array, s: Array) -> Array:
    """B^T (B (x / s) - t) / s."""
    out: Array = b.T @ (b @ (x / s) - t) / s
    return out


def scaled_least_squares_grad_no_scale(x: Array, b: Array, t: Array, s: Array) -> Array:
    """Dropped chain-rule factor: the 1/s of the reparametrisation forgotten."""
    out: Array = b.T @ (b @ (x / s) - t)
    return out


def scaled_log(x: Array, s: Array) -> float:
    """sum log(1 + (x / s)^2): coordinate i curves on the scale s_i."""
    return float(np.sum(np.log1p((x / s) ** 2)))


def scaled_log_grad(x: Array, s: Array) -> Array:
    """2 x / (s^2 + x^2)."""
    out: Array = 2 * x / (s * s + x * x)
    return out


def chain_loss(x: Array, a: Array, b: Array) -> float:
    """0.5 sum (x_{i+1} - x_i)^2 + 0.5 sum a_i x_i^2 - b^T x: a tridiagonal quadratic, O(n)."""
    d = np.diff(x)
    return float(0.5 * d @ d + 0.5 * (a * x) @ x - b @ x)


def chain_grad(x: Array, a: Array, b: Array) -> Array:
    """The gradient of :func:`chain_loss`."""
    d = np.diff(x)
    g: Array = a * x - b
    g[:-1] -= d
    g[1:] += d
    return g


def chain_grad_off_by_one(x: Array, a: Array, b: Array) -> Array:
    """Off by one: the +d_i term lands on x_{i+2} instead of x_{i+1}."""
    d = np.diff(x)
    g: Array = a * x - b
    g[:-1] -= d
    g[2:] += d[:-1]
    return g


def wide_loss(x: Array, w: Array, v: Array) -> float:
    """sum softplus(x) + 0.5 sum w x^2 + 0.5 (v.x)^2: smooth, O(n), all coordinates coupled."""
    s = v @ x
    return float(np.sum(np.logaddexp(0.0, x)) + 0.5 * (w * x) @ x + 0.5 * s * s)


def wide_grad(x: Array, w: Array, v: Array) -> Array:
    """The gradient of :func:`wide_loss`."""
    out: Array = _sigmoid(x) + w * x + v * (v @ x)
    return out


def weighted_log(x: Array, w: Array) -> float:
    """sum w_i log(1 + x_i^2)."""
    return float(np.sum(w * np.log1p(x * x)))


def weighted_log_grad_shifted(x: Array, w: Array) -> Array:
    """Off by one: w_{i-1} where w_i belongs."""
    out: Array = np.roll(w, 1) * 2 * x / (1 + x * x)
    return out


def exp_sin_log(x: Array) -> float:
    """sum exp(sin x) + log(1 + x^2)."""
    return float(np.sum(np.exp(np.sin(x)) + np.log1p(x * x)))


def exp_sin_log_grad(x: Array) -> Array:
    """cos(x) exp(sin x) + 2 x / (1 + x^2)."""
    out: Array = np.cos(x) * np.exp(np.sin(x)) + 2 * x / (1 + x * x)
    return out


def exp_of_sin(x: Array) -> float:
    """sum exp(sin x)."""
    return float(np.sum(np.exp(np.sin(x))))


def exp_of_sin_grad_no_inner(x: Array) -> Array:
    """Dropped chain-rule factor: exp(sin x) without the cos x."""
    out: Array = np.exp(np.sin(x))
    return out


def sin_of_square(x: Array) -> float:
    """sum sin(x^2)."""
    return float(np.sum(np.sin(x * x)))


def sin_of_square_grad(x: Array) -> Array:
    """2 x cos(x^2)."""
    out: Array = 2 * x * np.cos(x * x)
    return out


def sin_of_square_grad_no_inner(x: Array) -> Array:
    """Dropped chain-rule factor: cos(x^2) without the 2x."""
    out: Array = np.cos(x * x)
    return out


def logsumexp_affine(x: Array, a: Array, c: Array) -> float:
    """log sum exp(A x + c), computed stably."""
    z = a @ x + c
    m = np.max(z)
    return float(m + np.log(np.sum(np.exp(z - m))))


def logsumexp_affine_grad(x: Array, a: Array, c: Array) -> Array:
    """A^T softmax(A x + c)."""
    z = a @ x + c
    e = np.exp(z - np.max(z))
    out: Array = a.T @ (e / e.sum())
    return out


def rosenbrock(x: Array) -> float:
    """The chained Rosenbrock function."""
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosenbrock_grad(x: Array) -> Array:
    """The gradient of :func:`rosenbrock`."""
    t = x[1:] - x[:-1] ** 2
    g: Array = np.zeros(x.shape, dtype=np.float64)
    g[:-1] = -400.0 * x[:-1] * t - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * t
    return g


def quartic_tensor(t: Array, c: Array) -> float:
    """0.25 sum t^4 + sum c t, for a 3-d parameter."""
    return float(0.25 * np.sum(t**4) + np.sum(c * t))


def quartic_tensor_grad(t: Array, c: Array) -> Array:
    """t^3 + c."""
    out: Array = t**3 + c
    return out


def xlogx(x: Array) -> float:
    """sum x log x, for x > 0 (NaN outside, quietly: see :func:`_quiet`)."""
    with _quiet():
        return float(np.sum(x * np.log(x)))


def xlogx_grad(x: Array) -> Array:
    """log x + 1."""
    out: Array = np.log(x) + 1.0
    return out


def far_target(x: Array, t: Array, sigma: Array) -> float:
    """0.5 sum ((x - t) / sigma)^2, with x and t ~ 1e6 .. 1e8."""
    return float(0.5 * np.sum(((x - t) / sigma) ** 2))


def far_target_grad(x: Array, t: Array, sigma: Array) -> Array:
    """(x - t) / sigma^2."""
    out: Array = (x - t) / sigma**2
    return out


def sqrt_log(x: Array) -> float:
    """sum sqrt(x) - 1000 log x, for x > 0."""
    return float(np.sum(np.sqrt(x) - 1e3 * np.log(x)))


def sqrt_log_grad(x: Array) -> Array:
    """0.5 / sqrt(x) - 1000 / x."""
    out: Array = 0.5 / np.sqrt(x) - 1e3 / x
    return out


def near_minimum(x: Array, c: Array) -> float:
    """sum cosh(x - c) - 1, as 2 sinh((x - c) / 2)^2 so that no cancellation spoils a ~1e-12."""
    return float(np.sum(2.0 * np.sinh(0.5 * (x - c)) ** 2))


def near_minimum_grad(x: Array, c: Array) -> Array:
    """sinh(x - c)."""
    out: Array = np.sinh(x - c)
    return out


def regression_grad_sum(beta: Array, x: Array, y: Array) -> Array:
    """Wrong reduction: the seed regression's gradient summed where the loss averages."""
    out: Array = -((y - x @ beta) @ x)
    return out


def logistic_loss(w: Array, x: Array, y: Array, lam: float) -> float:
    """Mean logistic loss of labels y in {0, 1} plus lam/2 ||w||^2."""
    z = x @ w
    return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * (w @ w))


def logistic_grad(w: Array, x: Array, y: Array, lam: float) -> Array:
    """X^T (sigmoid(X w) - y) / n + lam w."""
    out: Array = x.T @ (_sigmoid(x @ w) - y) / len(y) + lam * w
    return out


def logistic_grad_sum(w: Array, x: Array, y: Array, lam: float) -> Array:
    """Wrong reduction: the data term summed over the samples, not averaged."""
    out: Array = x.T @ (_sigmoid(x @ w) - y) + lam * w
    return out


def logistic_loss_f32(w: Array, x: Array, y: Array, lam: float) -> float:
    """:func:`logistic_loss` computed in float32 throughout (the parameter cast to float32)."""
    w32 = np.asarray(w, dtype=np.float32)
    z = x.astype(np.float32) @ w32
    y32 = y.astype(np.float32)
    data = np.mean(np.logaddexp(np.float32(0), z) - y32 * z, dtype=np.float32)
    return float(data + np.float32(0.5 * lam) * (w32 @ w32))


def softmax_loss_f32(w: Array, x: Array, labels: Array, reg: float) -> float:
    """tests/problems.py's softmax loss computed in float32 throughout."""
    w32 = np.asarray(w, dtype=np.float32)
    scores = x.astype(np.float32) @ w32
    scores = scores - scores.max(axis=1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    data = -log_probs[np.arange(len(labels)), labels].mean(dtype=np.float32)
    return float(data + np.float32(0.5 * reg) * np.sum(w32 * w32))


def tanh_net_loss(w: Array, x: Array, v: Array, y: Array) -> float:
    """Mean squared error of tanh(X W) v: a one-hidden-layer tanh network, W of shape (D, H)."""
    r = np.tanh(x @ w) @ v - y
    return float(r @ r / len(y))


def tanh_net_grad(w: Array, x: Array, v: Array, y: Array) -> Array:
    """The gradient of :func:`tanh_net_loss` with respect to W."""
    h = np.tanh(x @ w)
    dh = np.outer(2.0 * (h @ v - y) / len(y), v)
    out: Array = x.T @ (dh * (1.0 - h * h))
    return out


def tanh_net_grad_no_derivative(w: Array, x: Array, v: Array, y: Array) -> Array:
    """Dropped chain-rule factor: the tanh derivative (1 - h^2) forgotten."""
    h = np.tanh(x @ w)
    out: Array = x.T @ np.outer(2.0 * (h @ v - y) / len(y), v)
    return out


def relu_net_loss(w: Array, x: Array, v: Array, y: Array) -> float:
    """Mean squared error of relu(X W) v, W of shape (D, H)."""
    r = np.maximum(x @ w, 0.0) @ v - y
    return float(r @ r / len(y))


def relu_net_grad(w: Array, x: Array, v: Array, y: Array) -> Array:
    """The gradient of :func:`relu_net_loss` (mask z > 0)."""
    z = x @ w
    dh = np.outer(2.0 * (np.maximum(z, 0.0) @ v - y) / len(y), v)
    out: Array = x.T @ (dh * (z > 0))
    return out


def relu_net_grad_no_mask(w: Array, x: Array, v: Array, y: Array) -> Array:
    """Dropped chain-rule factor: the ReLU mask forgotten in the backward pass."""
    z = x @ w
    out: Array = x.T @ np.outer(2.0 * (np.maximum(z, 0.0) @ v - y) / len(y), v)
    return out


def relu_sum(x: Array) -> float:
    """sum relu(x)."""
    return float(np.sum(np.maximum(x, 0.0)))


def relu_sum_grad(x: Array) -> Array:
    """[x > 0]: at x = 0 the subgradient 0."""
    out: Array = (x > 0).astype(np.float64)
    return out


def relu_sum_grad_ge(x: Array) -> Array:
    """[x >= 0]: at x = 0 the subgradient 1."""
    out: Array = (x >= 0).astype(np.float64)
    return out


def relu_sum_grad_half(x: Array) -> Array:
    """[x > 0], with the subgradient 1/2 at x = 0."""
    out: Array = np.where(x == 0, 0.5, (x > 0).astype(np.float64))
    return out


def relu_layer(x: Array, a: Array, bias: Array) -> float:
    """sum relu(A x - bias): a ReLU layer's output summed."""
    return float(np.sum(np.maximum(a @ x - bias, 0.0)))


def relu_layer_grad(x: Array, a: Array, bias: Array) -> Array:
    """A^T [A x - bias > 0]."""
    out: Array = a.T @ (a @ x - bias > 0).astype(np.float64)
    return out


def l1(x: Array) -> float:
    """||x||_1."""
    return float(np.sum(np.abs(x)))


def l1_grad(x: Array) -> Array:
    """sign(x): at x = 0 the subgradient 0."""
    out: Array = np.sign(x).astype(np.float64)
    return out


def lasso_loss(x: Array, a: Array, b: Array, lam: float) -> float:
    """0.5/m ||A x - b||^2 + lam ||x||_1."""
    r = a @ x - b
    return float(0.5 * (r @ r) / len(b) + lam * np.sum(np.abs(x)))


def lasso_grad(x: Array, a: Array, b: Array, lam: float) -> Array:
    """A^T (A x - b) / m + lam sign(x): sign(0) = 0 is a valid subgradient."""
    out: Array = a.T @ (a @ x - b) / len(b) + lam * np.sign(x)
    return out


def lasso_grad_flipped(x: Array, a: Array, b: Array, lam: float) -> Array:
    """Sign error in the smooth part of :func:`lasso_grad`."""
    out: Array = -(a.T @ (a @ x - b)) / len(b) + lam * np.sign(x)
    return out


def hinge_loss(w: Array, x: Array, y: Array, lam: float) -> float:
    """Mean hinge loss max(0, 1 - y_i x_i.w) of labels y in {-1, 1} plus lam/2 ||w||^2."""
    return float(np.mean(np.maximum(0.0, 1.0 - y * (x @ w))) + 0.5 * lam * (w @ w))


def hinge_grad(w: Array, x: Array, y: Array, lam: float, inclusive: bool = False) -> Array:
    """A subgradient of :func:`hinge_loss`: samples with margin < 1 (or <= 1) are active."""
    m = y * (x @ w)
    active = m <= 1.0 if inclusive else m < 1.0
    out: Array = -(x.T @ (y * active)) / len(y) + lam * w
    return out


def hinge_grad_summed(w: Array, x: Array, y: Array, lam: float) -> Array:
    """Wrong reduction: :func:`hinge_grad` without the mean's 1/n."""
    active = y * (x @ w) < 1.0
    out: Array = -(x.T @ (y * active)) + lam * w
    return out


# -- correct gradients -------------------------------------------------------------------------


def _smooth_cases(seed: int) -> list[Case]:
    """Smooth losses of every-day models, and sizes from 1 to 5,000."""
    p = _problems()
    cases = [
        Case(f"seed_{ex.name}", "correct", ex.f, np.array(ex.x), _const(ex.grad, "grad"), PASS)
        for ex in p.SEED_EXAMPLES
    ]

    def add(name: str, loss: Loss, x: Array, grad: Grad) -> None:
        cases.append(Case(name, "correct", loss, x, grad, PASS))

    rng = _rng(seed, "seed_linear_regression")
    xs, ys = p.regression_data()
    add(
        "seed_linear_regression",
        _bind(p.regression_loss, xs, ys),
        rng.normal(size=2),
        _bind(p.regression_grad, xs, ys),
    )

    rng = _rng(seed, "softmax_classifier")
    xs, labels = p.softmax_data()
    add(
        "softmax_classifier",
        _bind(p.softmax_loss, xs, labels),
        0.5 * rng.normal(size=(5, 3)),
        _bind(p.softmax_grad, xs, labels),
    )

    rng = _rng(seed, "logistic_regression")
    xs = rng.normal(size=(100, 10))
    ys = (rng.random(100) < _sigmoid(xs @ rng.normal(size=10))).astype(float)
    add(
        "logistic_regression",
        _bind(logistic_loss, xs, ys, 0.1),
        rng.normal(size=10),
        _bind(logistic_grad, xs, ys, 0.1),
    )

    rng = _rng(seed, "exp_sin_log")
    add("exp_sin_log", exp_sin_log, 2.0 * rng.normal(size=50), exp_sin_log_grad)
    rng = _rng(seed, "sin_of_square")
    add("sin_of_square", sin_of_square, rng.uniform(-2, 2, 30), sin_of_square_grad)

    rng = _rng(seed, "logsumexp_affine")
    a, c = rng.normal(size=(20, 30)), rng.normal(size=20)
    add(
        "logsumexp_affine",
        _bind(logsumexp_affine, a, c),
        rng.normal(size=30),
        _bind(logsumexp_affine_grad, a, c),
    )

    rng = _rng(seed, "tanh_network")
    xs, v, ys = rng.normal(size=(40, 6)), rng.normal(size=8), rng.normal(size=40)
    add(
        "tanh_network",
        _bind(tanh_net_loss, xs, v, ys),
        0.5 * rng.normal(size=(6, 8)),
        _bind(tanh_net_grad, xs, v, ys),
    )

    add("rosenbrock_2d", rosenbrock, np.array([-1.2, 1.0]), rosenbrock_grad)
    rng = _rng(seed, "rosenbrock_100")
    add("rosenbrock_100", rosenbrock, rng.uniform(-1.5, 1.5, 100), rosenbrock_grad)

    rng = _rng(seed, "quartic_tensor_3d")
    c = rng.normal(size=(3, 4, 5))
    add(
        "quartic_tensor_3d",
        _bind(quartic_tensor, c),
        rng.normal(size=(3, 4, 5)),
        _bind(quartic_tensor_grad, c),
    )

    for n in (1, 2, 10, 100):
        name = f"quadratic_n{n}"
        rng = _rng(seed, name)
        a, b = _spd(rng, n), rng.normal(size=n)
        add(name, _bind(quadratic_loss, a, b), rng.normal(size=n), _bind(quadratic_grad, a, b))
    for n in (500, 2000):
        name = f"chain_quadratic_n{n}"
        rng = _rng(seed, name)
        a, b = rng.uniform(0.5, 2.0, n), rng.normal(size=n)
        add(name, _bind(chain_loss, a, b), rng.normal(size=n), _bind(chain_grad, a, b))
    for n in (1000, 5000):
        name = f"wide_smooth_n{n}"
        rng = _rng(seed, name)
        w, v = rng.uniform(0.5, 2.0, n), rng.normal(size=n) / np.sqrt(n)
        add(name, _bind(wide_loss, w, v), rng.normal(size=n), _bind(wide_grad, w, v))
    return cases


def _illcond_matrix(rng: np.random.Generator, n: int) -> Array:
    """A symmetric positive definite matrix with eigenvalues 1 .. 1e8 in random directions."""
    q = _orthogonal(rng, n)
    a = (q * np.logspace(0, 8, n)) @ q.T
    out: Array = (a + a.T) / 2
    return out


def _hard_cases(seed: int) -> list[Case]:
    """Correct gradients that a fixed step and a fixed threshold get wrong."""
    p = _problems()
    cases: list[Case] = []

    def add(name: str, loss: Loss, x: Array, grad: Grad) -> None:
        cases.append(Case(name, "correct", loss, x, grad, PASS))

    # Ill-conditioned: condition number 1e8.
    rng = _rng(seed, "illcond_quadratic_1e8")
    a, zero = _illcond_matrix(rng, 40), np.zeros(40)
    add(
        "illcond_quadratic_1e8",
        _bind(quadratic_loss, a, zero),
        rng.normal(size=40),
        _bind(quadratic_grad, a, zero),
    )
    rng = _rng(seed, "illcond_diagonal_1e8")
    a, zero = np.diag(np.logspace(0, 8, 20)), np.zeros(20)
    add(
        "illcond_diagonal_1e8",
        _bind(quadratic_loss, a, zero),
        rng.normal(size=20),
        _bind(quadratic_grad, a, zero),
    )
    rng = _rng(seed, "illcond_least_squares_1e8")
    u, v = _orthogonal(rng, 60)[:, :30], _orthogonal(rng, 30)
    b = (u * np.logspace(0, 4, 30)) @ v.T  # cond(B^T B) = 1e8
    t = rng.normal(size=60)
    add(
        "illcond_least_squares_1e8",
        _bind(least_squares, b, t),
        rng.normal(size=30),
        _bind(least_squares_grad, b, t),
    )

    # Coordinates of very different scales, 1e-6 .. 1e6.
    rng = _rng(seed, "scales_least_squares")
    s = np.logspace(-6, 6, 25)
    b, t = rng.normal(size=(40, 25)), rng.normal(size=40)
    add(
        "scales_least_squares",
        _bind(scaled_least_squares, b, t, s),
        s * _signed(rng, 0.5, 2.0, 25),
        _bind(scaled_least_squares_grad, b, t, s),
    )
    rng = _rng(seed, "scales_smooth")
    s = np.logspace(-6, 6, 13)
    add(
        "scales_smooth",
        _bind(scaled_log, s),
        s * _signed(rng, 0.5, 2.0, 13),
        _bind(scaled_log_grad, s),
    )
    rng = _rng(seed, "scales_polynomial_fit")
    grid = np.linspace(0.0, 100.0, 50)
    vander = grid[:, None] ** np.arange(5)  # columns 1 .. 1e8
    coef = rng.normal(size=5) * 10.0 ** (-2.0 * np.arange(5))
    t = vander @ coef + rng.normal(size=50)
    add(
        "scales_polynomial_fit",
        _bind(mean_squares, vander, t),
        coef * (1 + 0.1 * rng.normal(size=5)),
        _bind(mean_squares_grad, vander, t),
    )

    # Large-magnitude parameters, |x| ~ 1e6 .. 1e8.
    rng = _rng(seed, "large_xlogx")
    add("large_xlogx", xlogx, 10 ** rng.uniform(6, 8, 20), xlogx_grad)
    rng = _rng(seed, "large_far_target")
    x = _signed(rng, 1e6, 1e8, 20)
    sigma = 1e-2 * np.abs(x)
    t = x + sigma * rng.normal(size=20)
    add("large_far_target", _bind(far_target, t, sigma), x, _bind(far_target_grad, t, sigma))
    rng = _rng(seed, "large_sqrt_log")
    add("large_sqrt_log", sqrt_log, 10 ** rng.uniform(6, 8, 20), sqrt_log_grad)

    # Tiny losses, ~1e-12.
    rng = _rng(seed, "tiny_scaled_quadratic")
    a, b = _spd(rng, 20), rng.normal(size=20)
    add(
        "tiny_scaled_quadratic",
        _scaled(_bind(quadratic_loss, a, b), 1e-12, "tiny_quadratic_loss"),
        rng.normal(size=20),
        _scaled(_bind(quadratic_grad, a, b), 1e-12, "tiny_quadratic_grad"),
    )
    rng = _rng(seed, "tiny_scaled_softmax")
    xs, labels = p.softmax_data()
    add(
        "tiny_scaled_softmax",
        _scaled(_bind(p.softmax_loss, xs, labels), 1e-12, "tiny_softmax_loss"),
        0.5 * rng.normal(size=(5, 3)),
        _scaled(_bind(p.softmax_grad, xs, labels), 1e-12, "tiny_softmax_grad"),
    )
    rng = _rng(seed, "tiny_near_minimum")
    c = rng.normal(size=20)
    add(
        "tiny_near_minimum",
        _bind(near_minimum, c),
        c + 1e-6 * rng.normal(size=20),
        _bind(near_minimum_grad, c),
    )

    # float32 parameters: losses computing in float64, and losses computing in float32.
    rng = _rng(seed, "float32_logistic_f64_loss")
    xs32 = rng.normal(size=(200, 10)).astype(np.float32)
    ys32 = (rng.random(200) < 0.5).astype(np.float32)
    add(
        "float32_logistic_f64_loss",
        _bind(logistic_loss, xs32.astype(np.float64), ys32.astype(np.float64), 0.1),
        rng.normal(size=10).astype(np.float32),
        _bind(logistic_grad, xs32, ys32, np.float32(0.1)),
    )
    rng = _rng(seed, "float32_quadratic_f64_loss")
    a, b = _spd(rng, 50), rng.normal(size=50)
    add(
        "float32_quadratic_f64_loss",
        _bind(quadratic_loss, a, b),
        rng.normal(size=50).astype(np.float32),
        _bind(quadratic_grad, a, b),
    )
    rng = _rng(seed, "float32_quadratic_f32_loss")
    a, b = _spd(rng, 50), rng.normal(size=50)
    add(
        "float32_quadratic_f32_loss",
        _bind(quadratic_loss_f32, a, b),
        rng.normal(size=50).astype(np.float32),
        _bind(quadratic_grad, a.astype(np.float32), b.astype(np.float32)),
    )
    rng = _rng(seed, "float32_logistic_f32_loss")
    xs32 = rng.normal(size=(200, 10)).astype(np.float32)
    ys32 = (rng.random(200) < 0.5).astype(np.float32)
    add(
        "float32_logistic_f32_loss",
        _bind(logistic_loss_f32, xs32, ys32, 0.1),
        rng.normal(size=10).astype(np.float32),
        _bind(logistic_grad, xs32, ys32, np.float32(0.1)),
    )
    rng = _rng(seed, "float32_softmax_f32_loss")
    xs, labels = p.softmax_data()
    xs32 = xs.astype(np.float32)
    add(
        "float32_softmax_f32_loss",
        _bind(softmax_loss_f32, xs32, labels, 0.1),
        (0.5 * rng.normal(size=(5, 3))).astype(np.float32),
        _bind(p.softmax_grad, xs32, labels, np.float32(0.1)),
    )
    return cases


# -- buggy gradients ---------------------------------------------------------------------------


def _buggy_cases(seed: int) -> list[Case]:
    """Real bugs: signs, factors, terms, transposes, single coordinates, stale points, ..."""
    p = _problems()
    cases: list[Case] = []

    def add(name: str, loss: Loss, x: Array, grad: Grad) -> None:
        cases.append(Case(name, "buggy", loss, x, grad, MISMATCH))

    # tests/problems.py's regression (the blog seed) and softmax classifier.
    rng = _rng(seed, "regression")
    xs, ys = p.regression_data()
    loss = _bind(p.regression_loss, xs, ys)
    x = rng.normal(size=2)
    add("regression_sign_flipped", loss, x, _bind(p.regression_grad_flipped, xs, ys))
    add("regression_missing_factor_2", loss, x, _bind(p.regression_grad_halved, xs, ys))
    add("regression_sum_instead_of_mean", loss, x, _bind(regression_grad_sum, xs, ys))

    rng = _rng(seed, "softmax")
    xs, labels = p.softmax_data()
    loss, grad = _bind(p.softmax_loss, xs, labels), _bind(p.softmax_grad, xs, labels)
    x = 0.5 * rng.normal(size=(5, 3))
    add("softmax_missing_regulariser", loss, x, _bind(p.softmax_grad_no_reg, xs, labels))
    add("softmax_one_wrong_1pct", loss, x, _bind(p.softmax_grad_one_wrong, xs, labels))
    flip = _flip_one(_median_index(grad(x)))
    add("softmax_single_sign_2d", loss, x, _modified(grad, flip, "softmax_grad"))
    add("softmax_stale_point", loss, x, _stale(grad, 0.01, "softmax_grad"))

    rng = _rng(seed, "logistic")
    xs = rng.normal(size=(100, 10))
    ys = (rng.random(100) < _sigmoid(xs @ rng.normal(size=10))).astype(float)
    loss, grad = _bind(logistic_loss, xs, ys, 0.1), _bind(logistic_grad, xs, ys, 0.1)
    x = rng.normal(size=10)
    add("logistic_sign_flipped", loss, x, _modified(grad, _negated, "logistic_grad"))
    add("logistic_missing_regulariser", loss, x, _bind(logistic_grad, xs, ys, 0.0))
    add("logistic_sum_instead_of_mean", loss, x, _bind(logistic_grad_sum, xs, ys, 0.1))
    add("logistic_stale_point", loss, x, _stale(grad, 0.01, "logistic_grad"))

    # Quadratics: a missing factor 2, one flipped sign, a stale point.
    rng = _rng(seed, "least_squares_no_half")
    b, t = rng.normal(size=(30, 10)), rng.normal(size=30)
    add(
        "least_squares_missing_factor_2",
        _scaled(_bind(least_squares, b, t), 2.0, "sum_of_squares"),  # ||Bx - t||^2, no 1/2
        rng.normal(size=10),
        _bind(least_squares_grad, b, t),  # B^T r: the 2 forgotten
    )
    rng = _rng(seed, "quadratic_n100")
    a, b = _spd(rng, 100), rng.normal(size=100)
    loss, grad = _bind(quadratic_loss, a, b), _bind(quadratic_grad, a, b)
    x = rng.normal(size=100)
    flip = _flip_one(_median_index(grad(x)))
    add("quadratic_single_sign_n100", loss, x, _modified(grad, flip, "quadratic_grad"))
    add("quadratic_stale_point_n100", loss, x, _stale(grad, 0.01, "quadratic_grad"))

    # Transposes: W.T with W square and not symmetric.
    rng = _rng(seed, "transpose")
    w, t = rng.normal(size=(20, 20)), rng.normal(size=20)
    add(
        "least_squares_transposed",
        _bind(least_squares, w, t),
        rng.normal(size=20),
        _bind(least_squares_grad_transposed, w, t),
    )
    add(
        "quadratic_form_transpose_ignored",
        _bind(quadratic_form, w),
        rng.normal(size=20),
        _bind(quadratic_form_grad_symmetric, w),
    )
    w, t = rng.normal(size=(6, 6)), rng.normal(size=(6, 4))
    add(
        "matrix_least_squares_transposed",
        _bind(least_squares, w, t),
        rng.normal(size=(6, 4)),
        _bind(least_squares_grad_transposed, w, t),
    )

    # One wrong coordinate among thousands, by a relative 1e-3.
    for n in (1000, 5000):
        name = f"one_wrong_1e-3_of_{n}"
        rng = _rng(seed, name)
        w, v = rng.uniform(0.5, 2.0, n), rng.normal(size=n) / np.sqrt(n)
        loss, grad = _bind(wide_loss, w, v), _bind(wide_grad, w, v)
        x = rng.normal(size=n)
        add(name, loss, x, _modified(grad, _scale_one(_median_index(grad(x)), 1.001), "wide_grad"))

    # Dropped chain-rule factors.
    rng = _rng(seed, "sin_of_square_chain")
    add(
        "sin_of_square_dropped_chain_factor",
        sin_of_square,
        rng.uniform(-2, 2, 30),
        sin_of_square_grad_no_inner,
    )
    rng = _rng(seed, "exp_of_sin_chain")
    add(
        "exp_of_sin_dropped_chain_factor", exp_of_sin, rng.normal(size=30), exp_of_sin_grad_no_inner
    )
    rng = _rng(seed, "tanh_network_chain")
    xs, v, ys = rng.normal(size=(40, 6)), rng.normal(size=8), rng.normal(size=40)
    add(
        "tanh_network_dropped_derivative",
        _bind(tanh_net_loss, xs, v, ys),
        0.5 * rng.normal(size=(6, 8)),
        _bind(tanh_net_grad_no_derivative, xs, v, ys),
    )
    rng = _rng(seed, "relu_network_mask")
    xs, v, ys = rng.normal(size=(40, 6)), rng.normal(size=8), rng.normal(size=40)
    add(
        "relu_network_missing_mask",
        _bind(relu_net_loss, xs, v, ys),
        0.5 * rng.normal(size=(6, 8)),
        _bind(relu_net_grad_no_mask, xs, v, ys),
    )

    # Wrong reduction: the loss averages over a matrix, the gradient over rows only.
    rng = _rng(seed, "matrix_mean_reduction")
    a, c = rng.normal(size=(30, 8)), rng.normal(size=(30, 5))
    add(
        "matrix_mse_wrong_reduction",
        _bind(matrix_mse, a, c),
        rng.normal(size=(8, 5)),
        _bind(matrix_mse_grad_rows, a, c),
    )

    # Off-by-one indices.
    rng = _rng(seed, "chain_off_by_one")
    a, b = rng.uniform(0.5, 2.0, 200), rng.normal(size=200)
    add(
        "chain_off_by_one",
        _bind(chain_loss, a, b),
        rng.normal(size=200),
        _bind(chain_grad_off_by_one, a, b),
    )
    rng = _rng(seed, "weighted_off_by_one")
    w = rng.uniform(0.5, 2.0, 50)
    add(
        "weighted_off_by_one",
        _bind(weighted_log, w),
        rng.normal(size=50),
        _bind(weighted_log_grad_shifted, w),
    )

    # Bugs under the conditions that make correct gradients hard to check.
    rng = _rng(seed, "illcond_stale")
    a, zero = _illcond_matrix(rng, 40), np.zeros(40)
    add(
        "illcond_quadratic_stale_point",
        _bind(quadratic_loss, a, zero),
        rng.normal(size=40),
        _stale(_bind(quadratic_grad, a, zero), 1e-9, "quadratic_grad"),
    )
    rng = _rng(seed, "large_single_sign")
    x = 10 ** rng.uniform(6, 8, 20)
    add(
        "large_xlogx_single_sign",
        xlogx,
        x,
        _modified(xlogx_grad, _flip_one(_median_index(xlogx_grad(x))), "xlogx_grad"),
    )
    rng = _rng(seed, "tiny_missing_factor")
    a, b = _spd(rng, 20), rng.normal(size=20)
    add(
        "tiny_quadratic_missing_factor_2",
        _scaled(_bind(quadratic_loss, a, b), 1e-12, "tiny_quadratic_loss"),
        rng.normal(size=20),
        _scaled(_bind(quadratic_grad, a, b), 0.5e-12, "tiny_quadratic_grad"),
    )
    rng = _rng(seed, "scales_dropped_factor")
    s = np.logspace(-6, 6, 25)
    b, t = rng.normal(size=(40, 25)), rng.normal(size=40)
    add(
        "scales_dropped_chain_factor",
        _bind(scaled_least_squares, b, t, s),
        s * _signed(rng, 0.5, 2.0, 25),
        _bind(scaled_least_squares_grad_no_scale, b, t, s),
    )
    rng = _rng(seed, "float32_sign")
    xs32 = rng.normal(size=(200, 10)).astype(np.float32)
    ys32 = (rng.random(200) < 0.5).astype(np.float32)
    x = rng.normal(size=10).astype(np.float32)
    grad = _bind(logistic_grad, xs32, ys32, np.float32(0.1))
    add(
        "float32_logistic_single_sign",
        _bind(logistic_loss, xs32.astype(np.float64), ys32.astype(np.float64), 0.1),
        x,
        _modified(grad, _flip_one(_median_index(grad(x))), "logistic_grad"),
    )
    rng = _rng(seed, "float32_f32_loss_factor")
    a, b = _spd(rng, 50), rng.normal(size=50)
    add(
        "float32_f32_loss_missing_factor_2",
        _bind(quadratic_loss_f32, a, b),
        rng.normal(size=50).astype(np.float32),
        _scaled(
            _bind(quadratic_grad, a.astype(np.float32), b.astype(np.float32)),
            np.float32(0.5),
            "quadratic_grad",
        ),
    )
    return cases


# -- kinks -------------------------------------------------------------------------------------


def _with_zeros(rng: np.random.Generator, x: Array, fraction: float) -> tuple[Array, Array]:
    """``x`` with a random ``fraction`` of its entries set to exactly 0, and their flat indices."""
    flat = x.reshape(-1).copy()
    k = max(1, round(fraction * flat.size))
    zeros = np.sort(rng.choice(flat.size, size=k, replace=False))
    flat[zeros] = 0.0
    return flat.reshape(x.shape), zeros


def _dyadic(rng: np.random.Generator, size: Any, lo: int, hi: int, denom: int) -> Array:
    """Random multiples of ``1/denom`` in ``[lo/denom, hi/denom]``: sums of products are exact."""
    out: Array = rng.integers(lo, hi + 1, size=size) / denom
    return out


def _hinge_data(
    rng: np.random.Generator, n: int, d: int, at_kink: bool
) -> tuple[Array, Array, Array]:
    """Dyadic SVM data and weights; with ``at_kink`` sample 0 has margin exactly 1.

    The margins of all other samples stay at least 1/8 away from 1, so the only kinks near the
    point are sample 0's (along every coordinate where its features are non-zero).
    """
    while True:
        x = _dyadic(rng, (n, d), -8, 8, 4)
        w = _dyadic(rng, d, -8, 8, 8)
        w[-1] = 0.5
        y = rng.choice([-1.0, 1.0], size=n)
        if at_kink:
            y[0] = 1.0
            x[0, -1] = (1.0 - x[0, :-1] @ w[:-1]) / w[-1]  # exact: dyadic over a power of 2
        m = y * (x @ w)
        rest = m[1:] if at_kink else m
        if np.all(np.abs(1.0 - rest) >= 0.125) and (not at_kink or m[0] == 1.0):
            return x, y, w


def _hinge_distance(x: Array, y: Array, w: Array) -> float:
    """The smallest move of one coordinate of w that reaches a kink, relative to max(|w_j|, 1)."""
    gap = np.abs(1.0 - y * (x @ w))[:, None]
    along = np.where(x != 0, gap / np.where(x != 0, np.abs(x), 1.0), np.inf)
    return float(np.min(along / np.maximum(np.abs(w), 1.0)[None, :]))


def _relu_net_distance(x: Array, w: Array) -> float:
    """As :func:`_hinge_distance` for :func:`relu_net_loss`: W[k, j] moves z[:, j] by X[:, k]."""
    z = np.abs(x @ w)  # (samples, hidden)
    ax = np.abs(x)[:, :, None]  # (samples, inputs, 1)
    along = np.where(ax != 0, z[:, None, :] / np.where(ax != 0, ax, 1.0), np.inf)
    return float(np.min(along.min(axis=0) / np.maximum(np.abs(w), 1.0)))


def _kink_cases(seed: int) -> list[Case]:
    """ReLU, hinge and L1 losses: at random points, near kinks, exactly at kinks."""
    cases: list[Case] = []

    def add(name: str, loss: Loss, x: Array, grad: Grad, expected: frozenset[str]) -> None:
        cases.append(Case(name, "kink", loss, x, grad, expected))

    # Random points, away from every kink (by construction, or as measured).
    for n in (100, 1000):
        name = f"relu_random_n{n}"
        rng = _rng(seed, name)
        add(name, relu_sum, _signed(rng, 0.1, 2.0, n), relu_sum_grad, PASS)
    rng = _rng(seed, "l1_random")
    add("l1_random", l1, _signed(rng, 0.1, 2.0, 100), l1_grad, PASS)
    rng = _rng(seed, "lasso_random")
    a, b = rng.normal(size=(30, 20)), rng.normal(size=30)
    add(
        "lasso_random",
        _bind(lasso_loss, a, b, 0.1),
        _signed(rng, 0.1, 2.0, 20),
        _bind(lasso_grad, a, b, 0.1),
        PASS,
    )
    rng = _rng(seed, "hinge_random")
    xs, ys, w = _hinge_data(rng, 60, 8, at_kink=False)
    w = w + 0.01 * rng.normal(size=8)  # a generic point, not a dyadic one
    add(
        "hinge_random",
        _bind(hinge_loss, xs, ys, 0.01),
        w,
        _bind(hinge_grad, xs, ys, 0.01),
        _near_kink(_hinge_distance(xs, ys, w)),
    )
    rng = _rng(seed, "relu_network_random")
    xs, v, ys = rng.normal(size=(40, 6)), rng.normal(size=8), rng.normal(size=40)
    w = 0.5 * rng.normal(size=(6, 8))
    add(
        "relu_network_random",
        _bind(relu_net_loss, xs, v, ys),
        w,
        _bind(relu_net_grad, xs, v, ys),
        _near_kink(_relu_net_distance(xs, w)),
    )

    # Closer to a kink than the step of a central difference (about 6e-6 here).
    rng = _rng(seed, "relu_near_kink")
    x = _signed(rng, 0.1, 2.0, 50)
    x[[3, 17]] = [1e-7, -2e-6]
    add("relu_near_kink", relu_sum, x, relu_sum_grad, PASS_OR_KINK)
    rng = _rng(seed, "l1_near_kink")
    x = _signed(rng, 0.1, 2.0, 50)
    x[[5, 30]] = [3e-6, -1e-8]
    add("l1_near_kink", l1, x, l1_grad, PASS_OR_KINK)

    # Exactly at kinks: valid subgradients are "kink", values outside the interval "mismatch".
    rng = _rng(seed, "relu_at_kink")
    x, zeros = _with_zeros(rng, _signed(rng, 0.1, 2.0, 50), 0.1)
    add("relu_at_kink_subgradient_0", relu_sum, x, relu_sum_grad, KINK)
    add("relu_at_kink_subgradient_1", relu_sum, x, relu_sum_grad_ge, KINK)
    add("relu_at_kink_subgradient_half", relu_sum, x, relu_sum_grad_half, KINK)
    outside = _modified(relu_sum_grad, _set_one(int(zeros[0]), -1.0), "relu_sum_grad")
    add("relu_at_kink_outside_interval", relu_sum, x, outside, MISMATCH)  # not in [0, 1]

    rng = _rng(seed, "relu_layer_at_kink")
    a = rng.integers(-3, 4, size=(30, 10)).astype(np.float64)
    x = _dyadic(rng, 10, -16, 16, 8)
    offsets = _dyadic(rng, 30, 2, 16, 8) * rng.choice([-1.0, 1.0], size=30)
    offsets[rng.choice(30, size=5, replace=False)] = 0.0
    bias = a @ x - offsets  # exact (integers times dyadics): 5 units sit exactly at 0
    add("relu_layer_at_kink", _bind(relu_layer, a, bias), x, _bind(relu_layer_grad, a, bias), KINK)

    add("abs_scalar_at_kink", l1, np.zeros(1), l1_grad, KINK)

    rng = _rng(seed, "l1_at_kink")
    x, zeros = _with_zeros(rng, _signed(rng, 0.1, 2.0, 50), 0.2)
    add("l1_at_kink", l1, x, l1_grad, KINK)
    outside = _modified(l1_grad, _set_one(int(zeros[0]), 2.0), "l1_grad")
    add("l1_at_kink_outside_interval", l1, x, outside, MISMATCH)  # not in [-1, 1]

    rng = _rng(seed, "l1_matrix_at_kink")
    x, _ = _with_zeros(rng, _signed(rng, 0.1, 2.0, (6, 5)), 0.3)
    add("l1_matrix_at_kink", l1, x, l1_grad, KINK)

    rng = _rng(seed, "lasso_at_kink")
    a, b = rng.normal(size=(30, 20)), rng.normal(size=30)
    x, _ = _with_zeros(rng, _signed(rng, 0.1, 2.0, 20), 0.5)
    loss = _bind(lasso_loss, a, b, 0.1)
    add("lasso_at_kink", loss, x, _bind(lasso_grad, a, b, 0.1), KINK)
    add("lasso_at_kink_sign_flipped", loss, x, _bind(lasso_grad_flipped, a, b, 0.1), MISMATCH)

    rng = _rng(seed, "hinge_at_kink")
    xs, ys, w = _hinge_data(rng, 60, 8, at_kink=True)
    loss = _bind(hinge_loss, xs, ys, 0.01)
    add("hinge_at_kink_strict", loss, w, _bind(hinge_grad, xs, ys, 0.01), KINK)
    add("hinge_at_kink_inclusive", loss, w, _bind(hinge_grad, xs, ys, 0.01, True), KINK)
    add("hinge_at_kink_missing_mean", loss, w, _bind(hinge_grad_summed, xs, ys, 0.01), MISMATCH)
    return cases


# -- issue 10: the hard classes ----------------------------------------------------------------
# Five classes of point where a check must still be right, each in its own group, each with
# correct and buggy gradients. Every buggy case records the correct gradient it corrupts
# (``correct_grad``) and its comment says why finite differences resolve the bug: the bug is
# at least 10x the best central-difference error at that point (tests/test_accuracy.py
# measures that margin, along a coordinate and along a random direction).


def ridge_loss(x: Array, b: Array, t: Array, lam: float) -> float:
    """0.5 ||B x - t||^2 + 0.5 lam ||x||^2."""
    r = b @ x - t
    return float(0.5 * (r @ r) + 0.5 * lam * (x @ x))


def ridge_grad(x: Array, b: Array, t: Array, lam: float) -> Array:
    """B^T (B x - t) + lam x."""
    out: Array = b.T @ (b @ x - t) + lam * x
    return out


def kl_generalised(q: Array, p: Array) -> float:
    """sum p log(p / q) - p + q: exactly 0, with an exactly 0 gradient, at q = p."""
    with _quiet():
        return float(np.sum(p * np.log(p / q) - p + q))


def kl_generalised_grad(q: Array, p: Array) -> Array:
    """1 - p / q."""
    out: Array = 1.0 - p / q
    return out


def _log_softmax(z: Array) -> Array:
    m = np.max(z)
    out: Array = z - m - np.log(np.sum(np.exp(z - m)))
    return out


def kl_logits(z: Array, p: Array) -> float:
    """KL(p || softmax(z)) = sum p (log p - log softmax(z)): about 1e-17 at z = log p."""
    return float(np.sum(p * (np.log(p) - _log_softmax(z))))


def kl_logits_grad(z: Array, p: Array) -> Array:
    """softmax(z) - p."""
    out: Array = np.exp(_log_softmax(z)) - p
    return out


def quartic_sum(x: Array, w: Array, c: Array, b: Array, v: Array) -> float:
    """sum (w x^2 / 2 + c x^4 / 4 - b x) + (v.x)^2 / 2: smooth, O(n), all coordinates coupled.

    Computes in the dtype of its arguments: float32 data and a float32 ``x`` keep it float32.
    """
    s, x2 = v @ x, x * x
    return float(np.sum(x2 * (0.5 * w + 0.25 * c * x2) - b * x) + 0.5 * s * s)


def quartic_sum_grad(x: Array, w: Array, c: Array, b: Array, v: Array) -> Array:
    """w x + c x^3 - b + v (v.x)."""
    out: Array = x * (w + c * x * x) - b + v * (v @ x)
    return out


def quartic_sum_f32(x: Array, w: Array, c: Array, b: Array, v: Array) -> float:
    """:func:`quartic_sum` in float32 throughout (the parameter cast, the data float32)."""
    return quartic_sum(np.asarray(x, dtype=np.float32), w, c, b, v)


def wide_loss_f32(x: Array, w: Array, v: Array) -> float:
    """:func:`wide_loss` in float32 throughout (the parameter cast, the data float32)."""
    return wide_loss(np.asarray(x, dtype=np.float32), w, v)


def logistic_data_f32(w: Array, x: Array, y: Array) -> np.float32:
    """The mean logistic loss of float32 data, computed in float32 (``w`` cast to float32)."""
    z = x @ np.asarray(w, dtype=np.float32)
    out: np.float32 = np.mean(np.logaddexp(np.float32(0), z) - y * z, dtype=np.float32)
    return out


def mixed_logistic_l2(w: Array, x: Array, y: Array, lam: float) -> float:
    """Mixed precision: the float32 data term of :func:`logistic_data_f32` plus a float64 L2
    penalty lam/2 ||w||^2. Its values are not float32 numbers, yet round like them."""
    w64 = np.asarray(w, dtype=np.float64)
    return float(logistic_data_f32(w, x, y)) + 0.5 * lam * float(w64 @ w64)


def mixed_logistic_l2_grad(w: Array, x: Array, y: Array, lam: float) -> Array:
    """The data term's gradient in float32 (as its loss), the penalty's in float64."""
    w32 = np.asarray(w, dtype=np.float32)
    data = x.T @ (_sigmoid(x @ w32) - y) / np.float32(len(y))
    out: Array = data.astype(np.float64) + lam * np.asarray(w, dtype=np.float64)
    return out


def hinge_grad_mask_dropped(w: Array, x: Array, y: Array, lam: float) -> Array:
    """Dropped mask: every sample counted as active, whatever its margin."""
    out: Array = -(x.T @ y) / len(y) + lam * w
    return out


def lasso_grad_no_sign(x: Array, a: Array, b: Array, lam: float) -> Array:
    """Dropped term: the lam sign(x) of the L1 penalty forgotten."""
    out: Array = a.T @ (a @ x - b) / len(b)
    return out


def gaussian_nll(theta: Array, y: Array) -> float:
    """sum 0.5 log(2 pi v) + (y - mu)^2 / (2 v) of theta = [mu, v] (shape (2, n)); v > 0."""
    mu, v = theta[0], theta[1]
    with _quiet():
        return float(np.sum(0.5 * np.log(2 * np.pi * v) + (y - mu) ** 2 / (2 * v)))


def gaussian_nll_grad(theta: Array, y: Array) -> Array:
    """[(mu - y) / v, 0.5 / v - (y - mu)^2 / (2 v^2)]."""
    mu, v = theta[0], theta[1]
    out: Array = np.stack([(mu - y) / v, 0.5 / v - (y - mu) ** 2 / (2 * v * v)])
    return out


def gaussian_nll_grad_no_log_term(theta: Array, y: Array) -> Array:
    """Dropped term: the 0.5 / v of the log-variance forgotten in d/dv."""
    mu, v = theta[0], theta[1]
    out: Array = np.stack([(mu - y) / v, -((y - mu) ** 2) / (2 * v * v)])
    return out


def xlogx_grad_no_one(x: Array) -> Array:
    """Dropped term: log x, without the + 1 of the product rule."""
    out: Array = np.log(x)
    return out


def sqrt_sum(x: Array) -> float:
    """sum sqrt(x), for x >= 0."""
    with _quiet():
        return float(np.sum(np.sqrt(x)))


def sqrt_sum_grad(x: Array) -> Array:
    """0.5 / sqrt(x)."""
    out: Array = 0.5 / np.sqrt(x)
    return out


def sqrt_sum_grad_no_half(x: Array) -> Array:
    """Missing factor: 1 / sqrt(x)."""
    out: Array = 1.0 / np.sqrt(x)
    return out


def entropy(p: Array) -> float:
    """-sum p log p, for p > 0."""
    with _quiet():
        return float(-np.sum(p * np.log(p)))


def entropy_grad(p: Array) -> Array:
    """-(log p + 1)."""
    out: Array = -(np.log(p) + 1.0)
    return out


def entropy_grad_no_one(p: Array) -> Array:
    """Dropped term: -log p, without the - 1 of the product rule."""
    out: Array = -np.log(p)
    return out


class IdentityCache:
    """A loss that returns its last value when called with the very same array object.

    A common memoisation (``if x is self.last: return self.value``) that is right for callers
    who never write into an array they passed, and wrong for a check that perturbs one working
    array in place.
    """

    def __init__(self, f: Loss) -> None:
        self.f = f
        self.last: Array | None = None
        self.value = 0.0
        self.__name__ = self.__qualname__ = f"cached_{getattr(f, '__name__', 'loss')}"

    def __call__(self, x: Array) -> float:
        if x is self.last:
            return self.value
        self.last, self.value = x, self.f(x)
        return self.value


def clip_in_place(x: Array) -> float:
    """:func:`exp_sin_log` of x clipped to [-10, 10], clipped in place (``out=x``)."""
    np.clip(x, -10.0, 10.0, out=x)
    return exp_sin_log(x)


def clip_in_place_grad(x: Array) -> Array:
    """The gradient of :func:`clip_in_place` away from +-10: 0 where |x| > 10."""
    out: Array = np.where(np.abs(x) < 10.0, exp_sin_log_grad(np.clip(x, -10.0, 10.0)), 0.0)
    return out


def decay_after_value(x: Array, a: Array, b: Array) -> float:
    """:func:`quadratic_loss`, then a weight decay ``x *= 0.99`` written into its input."""
    value = quadratic_loss(x, a, b)
    x *= 0.99
    return value


def _margin_at(x: Array, gap: float) -> Array:
    """``x`` with every |x_i| at least ``gap`` (those closer to 0 pushed out, sign kept)."""
    out: Array = np.where(np.abs(x) < gap, np.where(x < 0, -gap, gap), x)
    return out


def _median_where(g: Array, allowed: Array) -> int:
    """The flat index of a coordinate of median magnitude among the ``allowed`` ones."""
    flat = np.abs(np.asarray(g, dtype=np.float64)).reshape(-1)
    idx = np.flatnonzero(np.asarray(allowed).reshape(-1))
    return int(idx[np.argsort(flat[idx], kind="stable")[idx.size // 2]])


def _add_one(index: int, value: float) -> Callable[[Array, Array], Array]:
    """An edit for :func:`_modified`: ``value`` added to one coordinate (flat index)."""

    def edit(x: Array, g: Array) -> Array:
        g.reshape(-1)[index] += value
        return g

    return edit


def _times(factor: float) -> Callable[[Array, Array], Array]:
    """An edit for :func:`_modified`: the whole gradient multiplied by ``factor``."""

    def edit(x: Array, g: Array) -> Array:
        out: Array = g * np.asarray(factor, dtype=g.dtype)
        return out

    return edit


def _relu_net_distances(x: Array, w: Array) -> Array:
    """Per weight W[k, j], the distance to its nearest kink, relative to max(|W[k, j]|, 1)."""
    z = np.abs(x @ w)  # (samples, hidden)
    ax = np.abs(x)[:, :, None]  # (samples, inputs, 1)
    along = np.where(ax != 0, z[:, None, :] / np.where(ax != 0, ax, 1.0), np.inf)
    out: Array = along.min(axis=0) / np.maximum(np.abs(w), 1.0)
    return out


def _hinge_distances(x: Array, y: Array, w: Array) -> Array:
    """Per coordinate w_k, the distance to its nearest kink, relative to max(|w_k|, 1)."""
    gap = np.abs(1.0 - y * (x @ w))[:, None]
    along = np.where(x != 0, gap / np.where(x != 0, np.abs(x), 1.0), np.inf)
    out: Array = along.min(axis=0) / np.maximum(np.abs(w), 1.0)
    return out


def _stationary_cases(seed: int) -> list[Case]:
    """Stationary points and exact zeros: gradients of 1e-15, 0, and 1e-6 of their start."""
    cases: list[Case] = []

    def add(name: str, loss: Loss, x: Array, grad: Grad, correct: Grad | None = None) -> None:
        expected = PASS if correct is None else MISMATCH
        cases.append(Case(name, "stationary", loss, x, grad, expected, correct_grad=correct))

    # Least squares at its exact minimiser: the gradient is rounding, ~1e-14, the loss ~20.
    rng = _rng(seed, "least_squares_at_minimiser")
    b, t = rng.normal(size=(50, 10)), rng.normal(size=50)
    x = np.linalg.lstsq(b, t, rcond=None)[0]
    add(
        "least_squares_at_minimiser",
        _bind(least_squares, b, t),
        x,
        _bind(least_squares_grad, b, t),
    )

    # Noise-free data at the true weights: integer features, dyadic weights, so B w is exact,
    # the residual, the loss and the gradient exactly 0.
    rng = _rng(seed, "least_squares_noise_free")
    b = rng.integers(-4, 5, size=(40, 8)).astype(np.float64)
    w = _dyadic(rng, 8, -16, 16, 8)
    t = b @ w
    loss, grad = _bind(least_squares, b, t), _bind(least_squares_grad, b, t)
    add("least_squares_noise_free_true_weights", loss, w, grad)
    # A constant 1e-6 on one coordinate of an exact 0. At an exact zero of a quadratic the
    # central difference is exact but for the rounding of h^2-sized losses: along the
    # coordinate it errs by 0, along a random direction by ~1e-14 (measured): 1e8 below.
    add(
        "least_squares_noise_free_offset_1e-6",
        loss,
        w,
        _modified(grad, _add_one(3, 1e-6), "least_squares_grad"),
        grad,
    )

    # Ridge regression at its minimiser; forgetting the penalty leaves -lam x (~0.1 here)
    # where the gradient is ~1e-15: 1e5 above any difference error (~1e-10 at most).
    rng = _rng(seed, "ridge_at_minimiser")
    b, t, lam = rng.normal(size=(40, 12)), rng.normal(size=40), 0.5
    x = np.linalg.solve(b.T @ b + lam * np.eye(12), b.T @ t)
    loss, grad = _bind(ridge_loss, b, t, lam), _bind(ridge_grad, b, t, lam)
    add("ridge_at_minimiser", loss, x, grad)
    add(
        "ridge_at_minimiser_missing_regulariser",
        loss,
        x,
        _bind(least_squares_grad, b, t),
        grad,
    )

    # KL(p || p): exactly 0 with an exactly 0 gradient (generalised KL over q), and ~1e-17
    # with a ~1e-17 gradient (over the logits of q).
    rng = _rng(seed, "kl_self")
    p = rng.dirichlet(np.ones(20))
    loss, grad = _bind(kl_generalised, p), _bind(kl_generalised_grad, p)
    add("kl_self_generalised", loss, p, grad)
    add("kl_self_logits", _bind(kl_logits, p), np.log(p), _bind(kl_logits_grad, p))
    # 1e-6 added at an exact zero (p_7 ~ 2e-3): the central difference there is odd in the
    # step, O(h^2 / p^2), and exactly 0 along the coordinate at small steps; along a random
    # direction the bug still stands ~300x above the best difference (measured).
    add(
        "kl_self_offset_1e-6",
        loss,
        p,
        _modified(grad, _add_one(7, 1e-6), "kl_generalised_grad"),
        grad,
    )

    # Logistic regression near convergence: the gradient ~1e6 times smaller than at the start
    # w = 0 (about 2e-7 against 0.3).
    rng = _rng(seed, "logistic_converged")
    xs = rng.normal(size=(200, 10))
    ys = (rng.random(200) < _sigmoid(xs @ rng.normal(size=10))).astype(float)
    lam = 1e-3
    loss, grad = _bind(logistic_loss, xs, ys, lam), _bind(logistic_grad, xs, ys, lam)
    w = np.zeros(10)
    start = float(np.linalg.norm(grad(w)))
    for _ in range(50):  # Newton's method: converges to the rounding of the gradient
        s = _sigmoid(xs @ w)
        hess = (xs.T * (s * (1 - s))) @ xs / len(ys) + lam * np.eye(10)
        w = w - np.linalg.solve(hess, grad(w))
    # Step back toward the start until the gradient is 1e-6 of the start's (linear there).
    back = 1e-6 * start / float(np.linalg.norm(hess @ w))
    x = w - back * w
    add("logistic_converged", loss, x, grad)
    # The bugs below are small against a gradient of ~1e-7 per coordinate, with a loss ~0.3:
    # the best central difference errs by ~5e-12 (rounding 1e-16 * 0.3 / h against a
    # truncation h^2 f''' / 6, balanced at h ~ 1e-5). Measured: a 1 % error on one coordinate
    # (~1.3e-9) stands ~240x above it; 0.1 % on every coordinate ~60x along the largest
    # coordinate and ~110x along a random direction, where the 10 coordinates add up.
    i = _median_index(grad(x))
    add(
        "logistic_converged_one_coordinate_1pct",
        loss,
        x,
        _modified(grad, _scale_one(i, 1.01), "logistic_grad"),
        grad,
    )
    add(
        "logistic_converged_whole_0.1pct",
        loss,
        x,
        _modified(grad, _times(1.001), "logistic_grad"),
        grad,
    )
    add(
        "logistic_converged_missing_regulariser",  # lam w ~ 1e-3 against 1e-7: obvious
        loss,
        x,
        _bind(logistic_grad, xs, ys, 0.0),
        grad,
    )
    return cases


def _precision_cases(seed: int) -> list[Case]:
    """float32 losses and a mixed-precision loss, up to 30,000 parameters.

    Why the bugs are resolvable. A float32 loss f rounds by ~6e-8 |f|, so a central difference
    of step h along a direction u errs by ~6e-8 |f| / h, plus a truncation ~h^2 |D_u^3 f| / 6.
    For the sums here |f| grows like n, while the derivative along a random +-1 direction
    grows like sqrt(n) only: at best such a difference errs by ~3e-5 to 8e-5 of the
    directional derivative at n = 2,001, and ~1e-4 to 1e-3 at n = 30,000 (measured, varying
    with the direction; about (6e-8 sqrt(n))^(2/3), float32's cube-root resolution), and
    along one coordinate it does no better. A bug of 0.1 % on the whole gradient would stand
    only 10-13x above that at n = 2,001 (measured) and at or below it at n = 30,000 (1 % there
    stands only 6-10x above), so the whole-gradient bugs are sized well above the
    resolution: 1 % at n = 2,001 (100x along the largest coordinate, 350x along a random
    direction) and 5 % at n = 30,000 (30x and 400x). A sign flipped on one coordinate changes
    it by 2 |g_i| ~ 2, while that coordinate's best difference errs by ~5e-3 at n = 30,000
    (~470x; ~850x at n = 2,001).

    The mixed-precision data term is a mean (|f| ~ 0.7, rounding ~4e-8) plus a float64
    penalty: a coordinate's difference errs by ~5e-6 at best, and 0.1 % of the whole gradient
    (2.3e-4 on the largest coordinate) stands ~50x above it (a random direction, along which
    the data term curves strongly, resolves it only ~6x); a flipped sign (~0.08) and the
    dropped penalty (lam w ~ 6e-3 on the largest coordinate) stand 1,000x above and more.
    """
    cases: list[Case] = []

    def add(
        name: str,
        loss: Loss,
        x: Array,
        grad: Grad,
        twin: Loss,
        correct: Grad | None = None,
    ) -> None:
        expected = PASS if correct is None else MISMATCH
        cases.append(
            Case(name, "precision", loss, x, grad, expected, twin=twin, correct_grad=correct)
        )

    # float32 losses past 2,000 parameters (named "f32_loss": they round to float32 whatever
    # array they are evaluated at).
    rng = _rng(seed, "f32_loss_wide_n2001")
    n = 2001
    w32 = rng.uniform(0.5, 2.0, n).astype(np.float32)
    v32 = (rng.normal(size=n) / np.sqrt(n)).astype(np.float32)
    x = rng.normal(size=n).astype(np.float32)
    loss, grad = _bind(wide_loss_f32, w32, v32), _bind(wide_grad, w32, v32, name="wide_grad")
    twin = _bind(wide_loss, w32.astype(np.float64), v32.astype(np.float64))
    add("f32_loss_wide_n2001", loss, x, grad, twin)
    i = _median_index(grad(x))
    add(
        "f32_loss_wide_n2001_single_sign",
        loss,
        x,
        _modified(grad, _flip_one(i), "wide_grad"),
        twin,
        grad,
    )
    add(
        "f32_loss_wide_n2001_whole_1pct",
        loss,
        x,
        _modified(grad, _times(1.01), "wide_grad"),
        twin,
        grad,
    )
    for n in (5000, 30000):
        name = f"f32_loss_quartic_n{n}"
        rng = _rng(seed, name)
        data = (
            rng.uniform(0.5, 2.0, n),
            rng.uniform(0.0, 0.5, n),
            rng.normal(size=n),
            rng.normal(size=n) / np.sqrt(n),
        )
        data32 = tuple(d.astype(np.float32) for d in data)
        x = rng.normal(size=n).astype(np.float32)
        loss = _bind(quartic_sum_f32, *data32)
        grad = _bind(quartic_sum_grad, *data32, name="quartic_sum_grad")
        twin = _bind(quartic_sum, *(d.astype(np.float64) for d in data32))
        add(name, loss, x, grad, twin)
        if n == 30000:
            i = _median_index(grad(x))
            flip = _modified(grad, _flip_one(i), "quartic_sum_grad")
            add(f"{name}_single_sign", loss, x, flip, twin, grad)
            whole = _modified(grad, _times(1.05), "quartic_sum_grad")
            add(f"{name}_whole_5pct", loss, x, whole, twin, grad)

    # Mixed precision: a float32 data term plus a float64 penalty, float64 parameters.
    for n in (10, 500, 2000, 5000):
        name = f"mixed_logistic_l2_n{n}"
        rng = _rng(seed, name)
        m, lam = 64, 0.1
        xs32 = rng.normal(size=(m, n)).astype(np.float32)
        w = rng.normal(size=n) / np.sqrt(n)
        ys32 = (rng.random(m) < _sigmoid(xs32.astype(np.float64) @ w)).astype(np.float32)
        x = w + 0.5 * rng.normal(size=n) / np.sqrt(n)
        loss = _bind(mixed_logistic_l2, xs32, ys32, lam)
        grad = _bind(mixed_logistic_l2_grad, xs32, ys32, lam)
        twin = _bind(logistic_loss, xs32.astype(np.float64), ys32.astype(np.float64), lam)
        add(name, loss, x, grad, twin)
        if n in (500, 5000):
            i = _median_index(grad(x))
            flip = _modified(grad, _flip_one(i), "mixed_logistic_l2_grad")
            add(f"{name}_single_sign", loss, x, flip, twin, grad)
        if n == 5000:
            whole = _modified(grad, _times(1.001), "mixed_logistic_l2_grad")
            add(f"{name}_whole_0.1pct", loss, x, whole, twin, grad)
            penalty = _bind(mixed_logistic_l2_grad, xs32, ys32, 0.0)
            add(f"{name}_penalty_dropped", loss, x, penalty, twin, grad)
    return cases


def _large_kink_cases(seed: int) -> list[Case]:
    """ReLU, hinge and L1 losses past 2,000 parameters, at random (training-like) points.

    Their losses are piecewise quadratic, so inside a piece a central difference is exact but
    for rounding (~1e-16 |f| / h): every bug below, on a coordinate (or many) at least 1e-2 of
    its scale away from the nearest kink, stands many orders of magnitude above it.
    """
    cases: list[Case] = []

    def add(
        name: str,
        loss: Loss,
        x: Array,
        grad: Grad,
        expected: frozenset[str],
        correct: Grad | None = None,
    ) -> None:
        cases.append(Case(name, "large_kink", loss, x, grad, expected, correct_grad=correct))

    # A one-hidden-layer ReLU regression: 70 inputs x 70 hidden units = 4,900 weights, at a
    # He-initialised point; 32 samples put some weights within 1e-3 of a kink.
    rng = _rng(seed, "relu_network_n4900")
    xs, v, ys = rng.normal(size=(32, 70)), rng.normal(size=70) / np.sqrt(70), rng.normal(size=32)
    w = rng.normal(size=(70, 70)) * np.sqrt(2 / 70)
    loss, grad = _bind(relu_net_loss, xs, v, ys), _bind(relu_net_grad, xs, v, ys)
    far = _relu_net_distances(xs, w)
    add("relu_network_n4900", loss, w, grad, _near_kink(float(far.min())))
    add(
        "relu_network_n4900_missing_mask",
        loss,
        w,
        _bind(relu_net_grad_no_mask, xs, v, ys),
        MISMATCH,
        grad,
    )
    flip = _flip_one(_median_where(grad(w), far > 1e-2))
    add(
        "relu_network_n4900_single_sign",
        loss,
        w,
        _modified(grad, flip, "relu_net_grad"),
        MISMATCH,
        grad,
    )

    # A linear SVM (hinge loss) with 2,500 features and 64 samples.
    rng = _rng(seed, "hinge_n2500")
    d = 2500
    xs, ys = rng.normal(size=(64, d)) / np.sqrt(d), rng.choice([-1.0, 1.0], size=64)
    w = rng.normal(size=d)
    loss, grad = _bind(hinge_loss, xs, ys, 0.01), _bind(hinge_grad, xs, ys, 0.01)
    far = _hinge_distances(xs, ys, w)
    add("hinge_n2500", loss, w, grad, _near_kink(float(far.min())))
    add(
        "hinge_n2500_mask_dropped",
        loss,
        w,
        _bind(hinge_grad_mask_dropped, xs, ys, 0.01),
        MISMATCH,
        grad,
    )
    flip = _flip_one(_median_where(grad(w), far > 1e-2))
    add("hinge_n2500_single_sign", loss, w, _modified(grad, flip, "hinge_grad"), MISMATCH, grad)

    # The lasso with 3,000 coefficients: at a point with every |x_i| >= 0.1 (no kink within
    # 0.1), and at a sparse point (half the coefficients exactly 0, sign(0) = 0 valid there).
    rng = _rng(seed, "lasso_n3000")
    n = 3000
    a, b = rng.normal(size=(64, n)) / np.sqrt(n), rng.normal(size=64)
    loss, grad = _bind(lasso_loss, a, b, 0.01), _bind(lasso_grad, a, b, 0.01)
    x = _signed(rng, 0.1, 2.0, n)
    add("lasso_n3000", loss, x, grad, PASS)
    add(
        "lasso_n3000_sign_term_dropped",  # 0.01 per coordinate against gradients ~0.01
        loss,
        x,
        _bind(lasso_grad_no_sign, a, b, 0.01),
        MISMATCH,
        grad,
    )
    flip = _flip_one(_median_index(grad(x)))
    add("lasso_n3000_single_sign", loss, x, _modified(grad, flip, "lasso_grad"), MISMATCH, grad)
    sparse, _ = _with_zeros(rng, x, 0.5)
    add("lasso_n3000_sparse_at_kink", loss, sparse, grad, KINK)
    return cases


def _boundary_cases(seed: int) -> list[Case]:
    """Points next to the edge of the loss's domain: a step of max(|x|, 1) * 1e-5 leaves it.

    Why the bugs are resolvable: every coordinate here curves on its own scale |x_i|, so a
    difference with a step ~1e-5 |x_i| stays in the domain and errs by ~1e-10 of the
    derivative (truncation (h / x)^2, rounding eps |f| / h); every bug below changes a
    derivative by 1/70 (the entropy's missing 1 against log p ~ -70) or much more (measured:
    1e5x or more above the best difference along a coordinate).

    One caveat: a Dirichlet entry p_i below ~1e-14 cannot be resolved by any difference of
    an entropy ~5 (the step must stay below p_i, and the loss rounds by ~1e-15): a check can
    neither confirm nor refute those coordinates' derivatives, and must not call them a
    mismatch. The single-sign bug therefore sits on the smallest entry above 1e-10.
    """
    cases: list[Case] = []

    def add(name: str, loss: Loss, x: Array, grad: Grad, correct: Grad | None = None) -> None:
        expected = PASS if correct is None else MISMATCH
        cases.append(Case(name, "boundary", loss, x, grad, expected, correct_grad=correct))

    # A Gaussian negative log-likelihood with variances around 1.3e-6 (one exactly).
    rng = _rng(seed, "gaussian_nll_small_variance")
    n = 10
    y = rng.normal(size=n)
    var = 1.3e-6 * rng.uniform(0.5, 2.0, n)
    var[0] = 1.3e-6
    theta = np.stack([y + np.sqrt(var) * rng.normal(size=n), var])
    loss, grad = _bind(gaussian_nll, y), _bind(gaussian_nll_grad, y)
    add("gaussian_nll_small_variance", loss, theta, grad)
    add(
        "gaussian_nll_small_variance_log_term_dropped",  # 0.5 / v ~ 4e5 missing
        loss,
        theta,
        _bind(gaussian_nll_grad_no_log_term, y),
        grad,
    )
    flip = _flip_one(_median_index(grad(theta)[0]))  # one mean's derivative (~1e3)
    add(
        "gaussian_nll_small_variance_single_sign",
        loss,
        theta,
        _modified(grad, flip, "gaussian_nll_grad"),
        grad,
    )

    # sum x log x with x ~ 1e-7: the derivative log x + 1 ~ -15.
    rng = _rng(seed, "xlogx_near_zero")
    x = 1e-7 * rng.uniform(0.5, 2.0, 20)
    add("xlogx_near_zero", xlogx, x, xlogx_grad)
    add("xlogx_near_zero_missing_one", xlogx, x, xlogx_grad_no_one, xlogx_grad)  # 1 in 15
    flip = _flip_one(_median_index(xlogx_grad(x)))
    add(
        "xlogx_near_zero_single_sign",
        xlogx,
        x,
        _modified(xlogx_grad, flip, "xlogx_grad"),
        xlogx_grad,
    )

    # sum sqrt(x) with x ~ 1e-12: the derivative ~5e5, the curvature ~1e17.
    rng = _rng(seed, "sqrt_near_zero")
    x = 1e-12 * rng.uniform(0.5, 2.0, 20)
    add("sqrt_near_zero", sqrt_sum, x, sqrt_sum_grad)
    add("sqrt_near_zero_missing_half", sqrt_sum, x, sqrt_sum_grad_no_half, sqrt_sum_grad)

    # The entropy of Dirichlet(0.1) probability vectors: entries from ~1e-2 down to ~1e-30
    # (floored at 1e-30, then renormalised), derivatives from ~3 to ~70.
    for n in (500, 5000):
        name = f"dirichlet_entropy_n{n}"
        rng = _rng(seed, name)
        p = np.maximum(rng.dirichlet(np.full(n, 0.1)), 1e-30)
        p /= p.sum()
        add(name, entropy, p, entropy_grad)
        if n == 500:  # 1 against derivatives of 3 .. 70
            add(f"{name}_missing_one", entropy, p, entropy_grad_no_one, entropy_grad)
        else:  # the sign of the smallest entry above 1e-10 (its derivative ~22)
            small = int(np.flatnonzero(p >= 1e-10)[np.argmin(p[p >= 1e-10])])
            flip = _modified(entropy_grad, _flip_one(small), "entropy_grad")
            add(f"{name}_single_sign_small", entropy, p, flip, entropy_grad)
    return cases


def _aliasing_cases(seed: int) -> list[Case]:
    """Losses that cache by array identity, or write into the array they are given.

    Their gradients are correct: a check may see through them ("pass") or say that it cannot
    ("inconclusive"), never call them a mismatch.
    """
    cases: list[Case] = []

    def add(name: str, loss: Loss, x: Array, grad: Grad) -> None:
        cases.append(Case(name, "aliasing", loss, x, grad, PASS_OR_INCONCLUSIVE))

    rng = _rng(seed, "identity_cache_quadratic_n10")
    a, b = _spd(rng, 10), rng.normal(size=10)
    add(
        "identity_cache_quadratic_n10",
        IdentityCache(_bind(quadratic_loss, a, b)),
        rng.normal(size=10),
        _bind(quadratic_grad, a, b),
    )
    rng = _rng(seed, "identity_cache_wide_n3000")
    w, v = rng.uniform(0.5, 2.0, 3000), rng.normal(size=3000) / np.sqrt(3000)
    add(
        "identity_cache_wide_n3000",
        IdentityCache(_bind(wide_loss, w, v)),
        rng.normal(size=3000),
        _bind(wide_grad, w, v),
    )
    # np.clip(x, -10, 10, out=x): writes, but changes nothing where every |x_i| < 10 ...
    rng = _rng(seed, "clip_in_place_inside")
    add("clip_in_place_inside", clip_in_place, rng.uniform(-3, 3, 50), clip_in_place_grad)
    # ... and moves 5 coordinates from |x_i| in [12, 15] to +-10 (the loss is flat there).
    rng = _rng(seed, "clip_in_place_active")
    x = rng.uniform(-3, 3, 50)
    x[rng.choice(50, size=5, replace=False)] = _signed(rng, 12.0, 15.0, 5)
    add("clip_in_place_active", clip_in_place, x, clip_in_place_grad)
    # The value of the point it was given, then a weight decay written into it.
    rng = _rng(seed, "decay_after_value_n20")
    a, b = _spd(rng, 20), rng.normal(size=20)
    add(
        "decay_after_value_n20",
        _bind(decay_after_value, a, b),
        rng.normal(size=20),
        _bind(quadratic_grad, a, b),
    )
    return cases


def all_cases(seed: int = 0) -> list[Case]:
    """The whole catalogue, deterministic for a given ``seed``, in :data:`GROUPS` order."""
    cases = [
        *_smooth_cases(seed),
        *_hard_cases(seed),
        *_buggy_cases(seed),
        *_kink_cases(seed),
        *_stationary_cases(seed),
        *_precision_cases(seed),
        *_large_kink_cases(seed),
        *_boundary_cases(seed),
        *_aliasing_cases(seed),
    ]
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:  # pragma: no cover - a catalogue bug
        raise AssertionError(f"duplicate case names: {duplicates}")
    return cases


def by_group(cases: Iterable[Case]) -> dict[str, list[Case]]:
    """The cases of each group, in :data:`GROUPS` order."""
    out: dict[str, list[Case]] = {g: [] for g in GROUPS}
    for c in cases:
        out[c.group].append(c)
    return out
