"""verigrad beside the frameworks' own checkers, and its per-evaluation cost on torch tensors.

Run by hand (never in the test suite):

    python benchmarks/frameworks.py              # both parts, about a minute on 2 cores
    python benchmarks/frameworks.py --part tools
    python benchmarks/frameworks.py --part overhead --json overhead.json

Part 1, "tools": the same losses, each with a hand-written gradient that is correct or carries
a bug, in float64 and float32, checked by

- ``verigrad.check_gradient``, given the torch tensors themselves: the loss gets tensors (in
  float64 where it accepts them) and the gradient is handed over as a tensor;
- ``torch.autograd.gradcheck`` in slow and fast mode, on a ``torch.autograd.Function`` whose
  backward is the hand-written gradient (how a custom backward is checked in PyTorch);
- ``jax.test_util.check_grads`` (reverse mode, order 1) on a ``jax.custom_vjp`` whose
  backward is the hand-written gradient.

Each row prints the loss evaluations the tool made (counted in the loss), the wall time and
the verdict; "FALSE ALARM" marks a correct gradient failed and "MISSED" a buggy one passed.

Part 2, "overhead": the cost per evaluation outside the loss, the issue's target being torch
CPU tensors within 1.5x of numpy arrays. The pipeline's inner loop (estimators.shifted_values:
move coordinate i in place, call the loss, read the value, restore) runs on a
``_backend.Workspace``: for torch CPU the point handed to the loss is a tensor sharing memory
with the numpy array the loop writes, so moving a coordinate costs the same as for numpy.
Measured twice: with a loss returning a constant Python float (the perturbation alone), and
with a loss returning the point's first entry, a 0-d tensor for torch (so reading a torch
scalar, ``Tensor.item()``, is counted). The loss's own time, measured alone on the same point,
is subtracted. Best of many interleaved rounds; nanoseconds swing on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import timeit
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

import verigrad

# -- the losses, written once for torch and jax.numpy ------------------------------------------


@dataclass(frozen=True)
class Case:
    """A loss of a flat parameter vector with its hand-written gradient and a buggy one."""

    name: str
    n: int
    loss: Callable[[Any, Any], Any]  # (xp, w) -> scalar
    grad: Callable[[Any, Any], Any]  # (xp, w) -> gradient
    buggy: Callable[[Any, Any], Any]
    bug: str


_rng = np.random.default_rng(0)
_X = _rng.normal(size=(40, 4))
_Y = np.sign(_rng.normal(size=40))
_T = np.tanh(_X @ _rng.normal(size=4))[:, None]
_C = np.logspace(-3, 3, 8)
LAM = 0.1
D, H = 4, 6


def _data(xp: Any, w: Any) -> tuple[Any, Any, Any]:
    def cast(a: np.ndarray) -> Any:
        return xp.asarray(a, dtype=w.dtype)

    return cast(_X), cast(_Y), cast(_T)


def logistic_loss(xp: Any, w: Any) -> Any:
    X, y, _ = _data(xp, w)
    z = -y * (X @ w)
    return xp.mean(xp.log1p(xp.exp(z))) + 0.5 * LAM * xp.sum(w * w)


def logistic_grad(xp: Any, w: Any, lam: float = LAM) -> Any:
    X, y, _ = _data(xp, w)
    s = 1 / (1 + xp.exp(y * (X @ w)))
    return X.T @ (-y * s) / X.shape[0] + lam * w


def _unpack(w: Any) -> tuple[Any, Any, Any, Any]:
    W1 = w[: D * H].reshape(D, H)
    b1 = w[D * H : D * H + H]
    W2 = w[D * H + H : D * H + 2 * H].reshape(H, 1)
    b2 = w[D * H + 2 * H :]
    return W1, b1, W2, b2


def mlp_loss(xp: Any, w: Any) -> Any:
    X, _, T = _data(xp, w)
    W1, b1, W2, b2 = _unpack(w)
    r = xp.tanh(X @ W1 + b1) @ W2 + b2 - T
    return 0.5 * xp.mean(r * r)


def mlp_grad(xp: Any, w: Any, exact_tanh: bool = True) -> Any:
    X, _, T = _data(xp, w)
    W1, b1, W2, b2 = _unpack(w)
    h = xp.tanh(X @ W1 + b1)
    r = (h @ W2 + b2 - T) / X.shape[0]
    dh = (r @ W2.T) * ((1 - h * h) if exact_tanh else (1 - h))
    parts = [(X.T @ dh).reshape(-1), xp.sum(dh, axis=0), (h.T @ r).reshape(-1), xp.sum(r, axis=0)]
    return xp.concat(parts) if hasattr(xp, "concat") else xp.cat(parts)


def stiff_loss(xp: Any, w: Any) -> Any:
    c = xp.asarray(_C, dtype=w.dtype)
    return xp.sum(c * w * w) + xp.sum(xp.exp(3 * w))


def stiff_grad(xp: Any, w: Any, factor: float = 1.0) -> Any:
    c = xp.asarray(_C, dtype=w.dtype)
    g = 2 * c * w + 3 * xp.exp(3 * w)
    return g * xp.asarray([factor] + [1.0] * 7, dtype=w.dtype)


CASES = (
    Case(
        "logistic",
        4,
        logistic_loss,
        logistic_grad,
        lambda xp, w: logistic_grad(xp, w, lam=0.0),
        "regulariser left out",
    ),
    Case(
        "two-layer tanh",
        D * H + 2 * H + 1,
        mlp_loss,
        mlp_grad,
        lambda xp, w: mlp_grad(xp, w, exact_tanh=False),
        "tanh' as 1 - h",
    ),
    Case(
        "stiff (1e-3..1e3)",
        8,
        stiff_loss,
        stiff_grad,
        lambda xp, w: stiff_grad(xp, w, factor=1.01),
        "one entry 1 % off",
    ),
)


def start_point(case: Case) -> np.ndarray:
    return np.random.default_rng(1).normal(scale=0.5, size=case.n)


# -- the tools --------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    dtype: str
    variant: str
    tool: str
    evals: int
    seconds: float
    passed: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "error"
        wrong = self.passed == (self.variant == "buggy")
        label = "pass" if self.passed else "FAIL"
        if wrong:
            label += " (FALSE ALARM)" if not self.passed else " (MISSED)"
        return label


class Counter:
    def __init__(self) -> None:
        self.n = 0


def run_verigrad(case: Case, dtype: str, buggy: bool) -> Row:
    """The torch loss and gradient handed over as they are: the loss receives tensors."""
    import torch

    tdt = getattr(torch, dtype)
    count = Counter()
    gradient = case.buggy if buggy else case.grad

    def loss(w: Any) -> Any:
        count.n += 1
        return case.loss(torch, w)

    w = torch.as_tensor(start_point(case), dtype=tdt)
    g = gradient(torch, w)
    t0 = time.perf_counter()
    result = verigrad.check_gradient(loss, w, g, seed=0)
    dt = time.perf_counter() - t0
    return Row(case.name, dtype, _variant(buggy), "verigrad", count.n, dt, result.passed,
               "tensors in")  # fmt: skip


def _torch_function(case: Case, buggy: bool, count: Counter) -> Callable[[Any], Any]:
    import torch

    gradient = case.buggy if buggy else case.grad

    class Checked(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, w: Any) -> Any:
            count.n += 1
            ctx.save_for_backward(w)
            return case.loss(torch, w)

        @staticmethod
        def backward(ctx: Any, go: Any) -> Any:
            (w,) = ctx.saved_tensors
            return go * gradient(torch, w)

    return Checked.apply  # type: ignore[no-any-return]


def run_gradcheck(case: Case, dtype: str, buggy: bool, fast: bool) -> Row:
    import torch

    count = Counter()
    f = _torch_function(case, buggy, count)
    w = torch.tensor(start_point(case), dtype=getattr(torch, dtype), requires_grad=True)
    note = ""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ok: bool | None = bool(
                torch.autograd.gradcheck(f, (w,), fast_mode=fast, raise_exception=False)
            )
        except Exception as exc:  # gradcheck refuses some inputs outright
            ok, note = None, f"{type(exc).__name__}: {exc}"[:60]
    dt = time.perf_counter() - t0
    if any("double precision" in str(c.message) for c in caught):
        note = note or "warns: not double precision"
    tool = "gradcheck fast" if fast else "gradcheck slow"
    return Row(case.name, dtype, _variant(buggy), tool, count.n, dt, ok, note)


@contextlib.contextmanager
def _jax_x64(on: bool) -> Iterator[None]:
    import jax

    with jax.enable_x64(on):
        yield


def run_check_grads(case: Case, dtype: str, buggy: bool) -> Row:
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    count = Counter()
    gradient = case.buggy if buggy else case.grad

    def tick() -> None:
        count.n += 1

    @jax.custom_vjp
    def f(w: Any) -> Any:
        # A callback counts executions; a Python counter would count traces only.
        jax.debug.callback(tick)
        return case.loss(jnp, w)

    def fwd(w: Any) -> tuple[Any, Any]:
        return f(w), w

    def bwd(w: Any, go: Any) -> tuple[Any]:
        return (go * gradient(jnp, w),)

    f.defvjp(fwd, bwd)
    with _jax_x64(dtype == "float64"):
        w = jnp.asarray(start_point(case), dtype=getattr(jnp, dtype))
        t0 = time.perf_counter()
        note = ""
        try:
            check_grads(f, (w,), order=1, modes=("rev",))
            ok: bool | None = True
        except AssertionError:
            ok = False
        except Exception as exc:
            ok, note = None, f"{type(exc).__name__}: {exc}"[:60]
        dt = time.perf_counter() - t0
    return Row(case.name, dtype, _variant(buggy), "jax check_grads", count.n, dt, ok, note)


def _variant(buggy: bool) -> str:
    return "buggy" if buggy else "correct"


def tools_table() -> list[Row]:
    have_torch = _importable("torch")
    have_jax = _importable("jax")
    # One untimed round first, so no row pays for a tool's imports and first-use set-up.
    if have_torch:
        run_verigrad(CASES[0], "float64", False)
        run_gradcheck(CASES[0], "float64", False, fast=False)
    if have_jax:
        run_check_grads(CASES[0], "float64", False)
    rows: list[Row] = []
    for case in CASES:
        for dtype in ("float64", "float32"):
            for buggy in (False, True):
                if have_torch:
                    rows.append(run_verigrad(case, dtype, buggy))
                    rows.append(run_gradcheck(case, dtype, buggy, fast=False))
                    rows.append(run_gradcheck(case, dtype, buggy, fast=True))
                if have_jax:
                    rows.append(run_check_grads(case, dtype, buggy))
    return rows


def print_tools(rows: list[Row]) -> None:
    print("Part 1: the same losses and hand-written gradients, checked by each tool.")
    print("verigrad is check_gradient given the tensors themselves (its loss gets tensors).\n")
    bugs = ", ".join(f"{c.name}: {c.bug}" for c in CASES)
    print(f"bugs: {bugs}\n")
    head = f"{'loss':<18} {'dtype':<8} {'gradient':<8} {'tool':<16} {'evals':>6} {'ms':>8}  verdict"
    print(head)
    print("-" * len(head))
    for r in rows:
        note = f"  [{r.note}]" if r.note else ""
        print(
            f"{r.case:<18} {r.dtype:<8} {r.variant:<8} {r.tool:<16} {r.evals:>6} "
            f"{r.seconds * 1e3:>8.1f}  {r.verdict}{note}"
        )
    print()
    tools = sorted({r.tool for r in rows})
    print(f"{'tool':<16} {'right':>5} {'false alarms':>13} {'missed':>7} {'evals':>7} {'ms':>8}")
    for t in tools:
        mine = [r for r in rows if r.tool == t]
        right = sum(1 for r in mine if "(" not in r.verdict and r.passed is not None)
        fa = sum(1 for r in mine if "FALSE ALARM" in r.verdict)
        missed = sum(1 for r in mine if "MISSED" in r.verdict)
        evals = sum(r.evals for r in mine)
        ms = sum(r.seconds for r in mine) * 1e3
        print(f"{t:<16} {right:>5} {fa:>13} {missed:>7} {evals:>7} {ms:>8.1f}")
    print()


# -- part 2: per-evaluation overhead ------------------------------------------------------------


def _inner_loop(
    host: np.ndarray, point: Any, fn: Callable[[Any], Any], steps: list[float], read: Any
) -> list[float]:
    """estimators.shifted_values's loop (two multipliers), the point handed to the loss."""
    flat = host.reshape(-1)
    vals: list[float] = []
    offs: list[float] = []
    for k in range(len(steps)):
        v = float(flat[k])
        up, down = v + steps[k], v - steps[k]
        flat[k] = up
        y = fn(point)
        vals.append(y if type(y) is float else read(y))
        flat[k] = down
        y = fn(point)
        vals.append(y if type(y) is float else read(y))
        flat[k] = v
        offs.append(up - v)
        offs.append(down - v)
    return vals


def _loss_alone(fn: Callable[[Any], Any], point: Any, n: int) -> None:
    for _ in range(n):
        fn(point)
        fn(point)


def _constant(w: Any) -> float:
    return 0.5


def _first(w: Any) -> Any:
    return w[0]


def _timed(
    ws: Any, loss: Callable[[Any], Any], steps: list[float], read: Any, n: int
) -> tuple[float, float]:
    """Nanoseconds per evaluation: the inner loop with the loss, and the loss alone."""
    with ws.evaluating():
        t = timeit.timeit(lambda: _inner_loop(ws.host, ws.point, loss, steps, read), number=3)
        lo = timeit.timeit(lambda: _loss_alone(loss, ws.point, n), number=3)
    return t / 3 / (2 * n) * 1e9, lo / 3 / (2 * n) * 1e9


def overhead(n: int = 500, rounds: int = 40) -> dict[str, Any]:
    """Nanoseconds per evaluation outside the loss, numpy vs torch CPU (and JAX's path)."""
    from verigrad._arrays import loss_value
    from verigrad._backend import Workspace, value_reader

    a = np.random.default_rng(0).normal(size=n)
    steps = [1e-5] * n
    libs: dict[str, Any] = {"numpy": a}
    if _importable("torch"):
        import torch

        libs["torch"] = torch.tensor(a)
    out: dict[str, Any] = {"n": n, "rounds": rounds}
    for loss_name, loss in (("constant float", _constant), ("0-d of the library", _first)):
        best: dict[str, list[float]] = {k: [np.inf, np.inf] for k in libs}
        spaces = {k: Workspace.of(v) for k, v in libs.items()}
        reads = {
            "numpy": lambda y: loss_value(y, "loss"),
            "torch": value_reader("torch") if "torch" in libs else None,
        }
        for _ in range(rounds):
            for k, ws in spaces.items():
                t, lo = _timed(ws, loss, steps, reads[k], n)
                best[k][0] = min(best[k][0], t)
                best[k][1] = min(best[k][1], lo)
        out[loss_name] = {
            k: {"total_ns": v[0], "loss_ns": v[1], "outside_ns": v[0] - v[1]}
            for k, v in best.items()
        }
    if _importable("jax"):
        out["jax set()"] = _jax_set_cost(n)
    out["pipeline"] = pipeline_overhead(n, max(4, rounds // 4))
    return out


def _evaluator(x: Any, loss: Callable[[Any], Any]) -> tuple[Any, np.ndarray, Any, Any]:
    """The check's own Evaluator for ``x``, as check._run builds it: the evaluator, the host
    point the pipeline moves, the point the loss gets, and the context the check runs in."""
    from verigrad._arrays import working_copy
    from verigrad._backend import Workspace, array_kind
    from verigrad._evaluate import Evaluator

    if array_kind(x) == "numpy":
        work = working_copy(x)
        return (
            Evaluator(loss, "loss", point_nbytes=work.nbytes),
            work,
            work,
            contextlib.nullcontext(),
        )
    ws = Workspace.of(x, dtype="auto")
    work = ws.host if ws.shared and ws.dtype == np.float64 else np.array(ws.base, dtype=np.float64)
    ev = Evaluator(loss, "loss", point_nbytes=work.nbytes, workspace=ws)
    return ev, work, ws.point, ws.evaluating()


def _pipeline_timed(
    x: Any, loss: Callable[[Any], Any], idx: list[int], steps: list[float], mult: Any
) -> tuple[float, float]:
    """Nanoseconds per evaluation: Evaluator.shifted with the loss, and the loss alone."""
    ev, work, point, context = _evaluator(x, loss)
    n = len(idx)
    with context:
        t = timeit.timeit(lambda: ev.shifted(work, idx, steps, mult), number=3)
        lo = timeit.timeit(lambda: _loss_alone(loss, point, n), number=3)
    return t / 3 / (2 * n) * 1e9, lo / 3 / (2 * n) * 1e9


def pipeline_overhead(n: int = 500, rounds: int = 10) -> dict[str, Any]:
    """Nanoseconds per evaluation outside the loss through the pipeline itself
    (``Evaluator.shifted``, central differences over every coordinate), numpy vs torch CPU
    vs JAX CPU."""
    a = np.random.default_rng(0).normal(size=n)
    libs: dict[str, Any] = {"numpy": a}
    if _importable("torch"):
        import torch

        libs["torch"] = torch.tensor(a)
    if _importable("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
        libs["jax"] = jax.numpy.asarray(a)
    idx, steps, mult = list(range(n)), [1e-5] * n, (1.0, -1.0)
    out: dict[str, Any] = {}
    for loss_name, loss in (("constant float", _constant), ("0-d of the library", _first)):
        best = {k: [np.inf, np.inf] for k in libs}
        for _ in range(rounds):
            for k, x in libs.items():
                t, lo = _pipeline_timed(x, loss, idx, steps, mult)
                best[k][0] = min(best[k][0], t)
                best[k][1] = min(best[k][1], lo)
        out[loss_name] = {
            k: {"total_ns": v[0], "loss_ns": v[1], "outside_ns": v[0] - v[1]}
            for k, v in best.items()
        }
    return out


def _jax_set_cost(n: int) -> dict[str, float]:
    """The compiled ``.at[i].set`` that builds each JAX point on the device (no host copy)."""
    import jax.numpy as jnp

    from verigrad._backend import Workspace

    ws = Workspace.of(jnp.asarray(np.zeros(n, dtype=np.float32)), dtype="native")
    ws.set(0, 1.0)

    def sweep() -> None:
        for i in range(n):
            ws.set(i, 1.0).block_until_ready()
            ws.reset(i)

    t = min(timeit.repeat(sweep, number=1, repeat=5))
    return {"set_ns": t / n * 1e9}


def print_overhead(res: dict[str, Any]) -> None:
    print(f"Part 2: per-evaluation cost outside the loss (n = {res['n']}, best of "
          f"{res['rounds']} interleaved rounds).\n")  # fmt: skip
    print(f"{'loss returns':<20} {'library':<8} {'total ns':>9} {'loss ns':>9} {'outside ns':>11}")
    for loss_name in ("constant float", "0-d of the library"):
        rows = res[loss_name]
        for k, v in rows.items():
            print(
                f"{loss_name:<20} {k:<8} {v['total_ns']:>9.0f} {v['loss_ns']:>9.0f} "
                f"{v['outside_ns']:>11.0f}"
            )
        if "torch" in rows:
            ratio = rows["torch"]["outside_ns"] / rows["numpy"]["outside_ns"]
            print(f"{'':<20} torch / numpy outside the loss: {ratio:.2f}x (target 1.5x)")
    pipe = res.get("pipeline")
    if pipe:
        print("\nThrough the pipeline (Evaluator.shifted, every coordinate, central):")
        for loss_name in ("constant float", "0-d of the library"):
            rows = pipe[loss_name]
            for k, v in rows.items():
                print(
                    f"{loss_name:<20} {k:<8} {v['total_ns']:>9.0f} {v['loss_ns']:>9.0f} "
                    f"{v['outside_ns']:>11.0f}"
                )
            if "torch" in rows:
                ratio = rows["torch"]["outside_ns"] / rows["numpy"]["outside_ns"]
                print(f"{'':<20} torch / numpy outside the loss: {ratio:.2f}x (target 1.5x)")
    if "jax set()" in res:
        print(
            f"\nJAX: one point built on the device by the compiled .at[i].set: "
            f"{res['jax set()']['set_ns'] / 1e3:.1f} us per evaluation"
        )
    print()


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("tools", "overhead", "all"), default="all")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    missing = [m for m in ("torch", "jax") if not _importable(m)]
    if missing:
        print(f"not installed, rows left out: {', '.join(missing)}\n")
    figures: dict[str, Any] = {}
    if args.part in ("tools", "all"):
        rows = tools_table()
        print_tools(rows)
        figures["tools"] = [dict(r.__dict__, verdict=r.verdict) for r in rows]
    if args.part in ("overhead", "all"):
        res = overhead()
        print_overhead(res)
        figures["overhead"] = res
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
