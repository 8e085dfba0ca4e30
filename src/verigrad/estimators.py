"""Finite-difference estimates of a gradient: step rules and difference schemes.

No logging, no results: the functions here take a scalar function and a point and return
numbers, computed in numpy. The public helpers :func:`numerical_gradient` and
:func:`directional_derivative` are thin wrappers over the same machinery the checks use; for a
torch, JAX or CuPy point they evaluate the function on that library's arrays, through the
checks' own evaluator and workspace (:mod:`._evaluate`, :mod:`._backend`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import loss_value, working_copy
from ._backend import Workspace, array_kind, host_array, loss_caller
from ._schemes import SCHEMES
from ._typing import METHODS, ArrayLike, Epsilon, FloatArray, Method
from .exceptions import InvalidArgumentError, InvalidTypeError

__all__ = ["Estimate", "directional_derivative", "numerical_gradient", "step_sizes"]

_EPS = float(np.finfo(np.float64).eps)
#: Relative step that balances truncation (~h^2) against rounding (~eps/h) for central differences.
CENTRAL_STEP = _EPS ** (1.0 / 3.0)  # about 6.1e-6
#: Relative step that balances truncation (~h) against rounding (~eps/h) for one-sided differences.
ONE_SIDED_STEP = _EPS**0.5  # about 1.5e-8

ScalarFunction = Callable[[FloatArray], float]


@dataclass(frozen=True)
class Estimate:
    """A numerical gradient and what it cost.

    Attributes:
        values: the derivative estimates, shaped like the parameter.
        steps: the step actually taken along each coordinate (the exactly representable
            half-width of the stencil for central differences).
        n_evals: loss evaluations spent, not counting the one at the point itself.
        method: the difference scheme.
        f_plus, f_minus: the loss at ``x + h e_i`` and ``x - h e_i`` (NaN where not evaluated),
            from which rounding errors and one-sided derivatives follow without new evaluations.
    """

    values: FloatArray
    steps: FloatArray
    n_evals: int
    method: str
    f_plus: FloatArray | None = None
    f_minus: FloatArray | None = None


def validate_method(method: object) -> Method:
    """Return ``method`` if it names a supported scheme, else raise naming the argument."""
    if method not in METHODS:
        raise InvalidArgumentError(
            f"method={method!r} is not supported; choose one of {', '.join(map(repr, METHODS))}"
        )
    return method  # type: ignore[return-value,unused-ignore]


def validate_epsilon(epsilon: object) -> Epsilon:
    """Return ``epsilon`` if it is "auto" or a positive finite number, else raise naming it."""
    if isinstance(epsilon, str):
        if epsilon == "auto":
            return "auto"
        raise InvalidArgumentError(f"epsilon={epsilon!r}: use a positive number or 'auto'")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating, np.integer)):
        raise InvalidTypeError(
            f"epsilon must be a positive number or 'auto', not {type(epsilon).__name__}"
        )
    value = float(epsilon)
    if not (math.isfinite(value) and value > 0.0):
        raise InvalidArgumentError(f"epsilon={epsilon!r}: the step must be positive and finite")
    return value


def step_sizes(x: FloatArray, epsilon: Epsilon, method: str, eps: float = _EPS) -> FloatArray:
    """The step for each coordinate of ``x``.

    A fixed ``epsilon`` is used as it is, as an absolute step. ``"auto"`` scales the step to the
    coordinate, ``h_i = c * max(|x_i|, 1)``, with ``c = eps**(1/3)`` (about 6e-6) for central
    differences and ``c = sqrt(eps)`` (about 1.5e-8) for one-sided ones, ``eps`` being float64's
    machine epsilon. These are the steps that balance the truncation error of the scheme against
    the rounding error of evaluating the loss; scaling with ``|x_i|`` keeps the relative
    perturbation constant for large parameters, where a fixed step would vanish in rounding.
    Richardson extrapolation (error O(h^4)) takes ``c = eps**(1/5)``; the complex step, which
    forms no difference, ``c = 1e-20``. ``eps`` is the precision the loss computes in (float32's
    for a loss that rounds to float32).
    """
    if epsilon == "auto":
        c = 1e-20 if method == "complex" else eps ** SCHEMES[method].step_exponent
        steps: FloatArray = c * np.maximum(np.abs(x), 1.0)
        return steps
    return np.full(x.shape, float(epsilon))


def _add_note(exc: BaseException, note: str) -> None:
    # BaseException.add_note exists from Python 3.11 on. On 3.10 the note goes into the same
    # ``__notes__`` list by hand: tracebacks there do not print it, but code can read it.
    add_note = getattr(exc, "add_note", None)
    if add_note is not None:
        add_note(note)
        return
    with contextlib.suppress(AttributeError, TypeError):  # an exception without __dict__
        exc.__notes__ = [*getattr(exc, "__notes__", ()), note]


def _note_coordinate(exc: BaseException, flat_index: int, shape: tuple[int, ...]) -> None:
    index = tuple(int(c) for c in np.unravel_index(flat_index, shape)) if shape else ()
    _add_note(exc, f"verigrad: raised while evaluating the loss at coordinate {index}")


def shifted_values(
    f: ScalarFunction,
    x: FloatArray,
    indices: Sequence[int],
    steps: Sequence[float],
    multipliers: Sequence[float],
    target: Any = None,
) -> tuple[FloatArray, FloatArray]:
    """Evaluate ``f`` with coordinate ``indices[k]`` moved by ``multipliers[j] * steps[k]``.

    ``x`` is a private working copy, perturbed in place one coordinate at a time and restored
    exactly after each; the tool's own work per evaluation is O(1). Returns the loss values and
    the offsets actually applied (as stored in floating point), both of shape
    ``(len(indices), len(multipliers))``. An exception from ``f`` propagates with a note naming
    the coordinate. ``target``, if given, is what ``f`` is handed instead of ``x``: an array
    of another library that shares ``x``'s memory (a torch CPU tensor), so it moves with it.
    """
    if not x.flags.c_contiguous:  # pragma: no cover - x is always C-contiguous here
        raise AssertionError("working copy must be contiguous")
    if isinstance(f, BatchedLoss):
        return _shifted_batches(f, x, indices, steps, multipliers)
    executor = getattr(f, "executor", None)
    if executor is not None and len(indices) > 1:
        return _shifted_on(executor, f, x, indices, steps, multipliers)
    flat = x.reshape(-1)
    m = len(multipliers)
    # Plain Python lists in the loop: numpy scalar item access costs more than the loss for
    # cheap losses, and the tool's own work per evaluation must stay O(1) and small. For the
    # same reason a ScalarLoss is unwrapped: its checks run inline, on values that are not
    # already Python floats only.
    fn, name, read = (f.fn, f.name, f.read) if type(f) is ScalarLoss else (f, "f", loss_value)
    arg = x if target is None else target
    vals: list[float] = []
    offs: list[float] = []
    hs = list(steps)
    i = 0
    v = 0.0
    try:
        if m == 2:
            m0, m1 = multipliers
            for k, i in enumerate(indices):
                v = float(flat[i])
                up, down = v + m0 * hs[k], v + m1 * hs[k]
                flat[i] = up
                y = fn(arg)
                vals.append(y if type(y) is float else read(y, name))
                flat[i] = down
                y = fn(arg)
                vals.append(y if type(y) is float else read(y, name))
                flat[i] = v
                offs.append(up - v)
                offs.append(down - v)
        else:
            for k, i in enumerate(indices):
                v = float(flat[i])
                for mult in multipliers:
                    moved = v + mult * hs[k]
                    flat[i] = moved
                    y = fn(arg)
                    vals.append(y if type(y) is float else read(y, name))
                    offs.append(moved - v)
                flat[i] = v
    except BaseException as exc:
        if len(indices):
            flat[i] = v
            _note_coordinate(exc, i, x.shape)
        raise
    values = np.array(vals, dtype=np.float64).reshape(len(indices), m)
    offsets = np.array(offs, dtype=np.float64).reshape(len(indices), m)
    return values, offsets


#: Default memory for one batch of perturbed points handed to a vectorized loss. Batches that
#: stay in cache beat large ones on a CPU: for the one-GEMM softmax loss of
#: benchmarks/vectorized.py (N = 100, one BLAS thread) a vectorized check took 0.56x the time of
#: the one-point check at n = 30,730 and 0.83x at n = 10,000 with 2 MiB batches, about 0.8x and
#: 1.5x with 64 MiB ones. A loss on a GPU wants far larger batches: pass batch_bytes.
DEFAULT_BATCH_BYTES = 2 * 2**20


class BatchedLoss:
    """A vectorized loss: called with points stacked along a leading axis, one value each.

    Calling the object evaluates one point (as a batch of one); :meth:`batch` evaluates many.
    ``batch_size`` points fit in ``max_bytes``.
    """

    def __init__(
        self,
        loss: Callable[[FloatArray], Any],
        point_nbytes: int,
        name: str = "loss",
        max_bytes: int = DEFAULT_BATCH_BYTES,
        read: Callable[[Any], Any] | None = None,
    ) -> None:
        self._loss = loss
        self.name = name
        self.batch_size = max(1, int(max_bytes) // max(1, point_nbytes))
        #: Reads the loss's values into something numpy takes (a framework array's host copy).
        self._read = read

    def batch(self, points: FloatArray) -> FloatArray:
        """The loss at each of ``points`` (shape ``(B, *x.shape)``) as a float64 array (B,)."""
        raw = self._loss(points)
        if self._read is not None:
            raw = self._read(raw)
        try:
            values = np.asarray(raw)
        except Exception as exc:  # pragma: no cover - exotic return types
            raise InvalidTypeError(f"{self.name} returned {type(raw).__name__}") from exc
        if values.dtype.kind not in "iuf":
            raise InvalidTypeError(
                f"{self.name} (vectorized) returned dtype {values.dtype}; it must return real "
                "numbers, one per point"
            )
        if values.shape != (len(points),):
            raise InvalidArgumentError(
                f"{self.name} is vectorized: given {len(points)} points stacked along axis 0 it "
                f"must return {len(points)} values, shape ({len(points)},), but returned shape "
                f"{values.shape}"
            )
        out: FloatArray = values.astype(np.float64, copy=False)
        return out

    def __call__(self, x: FloatArray) -> float:
        return float(self.batch(x[None])[0])


def moves(
    flat: FloatArray,
    indices: Sequence[int],
    steps: Sequence[float],
    multipliers: Sequence[float],
    dtype: np.dtype[Any] | None = None,
) -> tuple[np.ndarray, FloatArray, FloatArray]:
    """For batched evaluation: the indices as an array, the moved values of coordinate
    ``indices[k]`` by ``multipliers[j] * steps[k]`` (rounded to ``dtype`` when it is not
    float64, as a point of that dtype stores them) and the offsets they make, both
    ``(len(indices), len(multipliers))``."""
    idx = np.asarray(indices, dtype=np.intp)
    h = np.asarray(steps, dtype=np.float64)
    base = flat[idx]
    moved = base[:, None] + np.asarray(multipliers, dtype=np.float64)[None, :] * h[:, None]
    if dtype is not None and dtype != np.float64:
        moved = moved.astype(dtype).astype(np.float64)
    return idx, moved, moved - base[:, None]


def _shifted_batches(
    f: BatchedLoss,
    x: FloatArray,
    indices: Sequence[int],
    steps: Sequence[float],
    multipliers: Sequence[float],
) -> tuple[FloatArray, FloatArray]:
    """:func:`shifted_values` for a vectorized loss: the perturbed points evaluated in batches.

    Point ``k`` is coordinate ``indices[k // m]`` moved by ``multipliers[k % m] * steps[k // m]``
    (``m = len(multipliers)``): the points of the one-at-a-time loop, bit for bit, in its order,
    with its offsets. One buffer of ``B`` copies of ``x`` is filled once and reused: before each
    batch only the entries the previous batch moved are reset to their values in ``x`` and the
    new ones are set, so the tool's own work per batch is O(B), not the O(B n) of building each
    batch afresh. ``B`` is a multiple of ``m`` where it can be, so the points of one coordinate
    share a batch.
    """
    flat = x.reshape(-1)
    m = len(multipliers)
    idx, moved, offsets = moves(flat, indices, steps, multipliers)
    values = np.empty(moved.shape)
    total = moved.size
    if total == 0:
        return values, offsets
    columns = idx.repeat(m)
    flat_moved = moved.reshape(-1)
    flat_values = values.reshape(-1)
    size = _batch_size(f.batch_size, m, total)
    buffer = np.empty((size, flat.size))
    buffer[...] = flat
    rows = np.arange(size)
    whole = buffer.reshape(size, *x.shape)
    batch = f.batch
    start = 0
    try:
        for start in range(0, total, size):
            stop = min(start + size, total)
            if start:  # the previous batch was a full one: undo its moves
                previous = columns[start - size : start]
                buffer[rows, previous] = flat[previous]
            k = stop - start
            buffer[rows[:k], columns[start:stop]] = flat_moved[start:stop]
            # A shorter last batch hands over only its own rows.
            flat_values[start:stop] = batch(whole if k == size else whole[:k])
    except BaseException as exc:
        _note_batch(exc, columns[start : start + size], x.shape)
        raise
    return values, offsets


def _batch_size(batch_size: int, m: int, total: int) -> int:
    """Points per batch: at most ``batch_size`` and ``total``, a multiple of ``m`` (the points
    of one coordinate) where it can be."""
    return min(batch_size - batch_size % m if batch_size >= m else batch_size, total)


def _note_batch(exc: BaseException, columns: np.ndarray, shape: tuple[int, ...]) -> None:
    first, last = (
        tuple(int(c) for c in np.unravel_index(int(i), shape)) if shape else ()
        for i in (columns[0], columns[-1])
    )
    _add_note(
        exc,
        f"verigrad: raised while evaluating the loss on a batch of {columns.size} points, "
        f"coordinates {first} to {last}",
    )


def _evaluate_chunk(
    f: ScalarFunction,
    x: FloatArray,
    indices: Sequence[int],
    steps: Sequence[float],
    multipliers: Sequence[float],
) -> tuple[FloatArray, FloatArray]:
    """One task of a parallel check: runs in a worker on its own copy of the point."""
    return shifted_values(f, np.array(x, order="C"), indices, steps, multipliers)


def _unpicklable(executor: Executor, exc: BaseException) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"the loss cannot be sent to {type(executor).__name__}: {exc}. Process and cluster "
        "executors pickle the loss: define it (and what it uses) at module level, not as a "
        "lambda or a local function, or use a thread executor"
    )


def run_tasks(
    executor: Executor, shipped: Any, task: Callable[..., Any], arguments: list[tuple[Any, ...]]
) -> list[Any]:
    """``task(shipped, *args)`` for each ``args`` on ``executor``, results in order. A loss that
    cannot be pickled for a process or cluster executor gets an error that says so.

    Tasks run with checking off (a loss calling a decorated gradient neither checks nor counts
    there). When a task fails, or the wait is interrupted (Ctrl-C), the tasks not yet started
    are cancelled before the exception propagates, so at most the chunks already running
    finish after it."""
    if isinstance(executor, ProcessPoolExecutor):
        try:  # a process pool pickles lazily, in a feeder thread: find out here, clearly
            pickle.dumps(shipped)
        except Exception as exc:
            raise _unpicklable(executor, exc) from exc
    from ._config import Unchecked  # checking off in the workers (see Unchecked)

    guarded = Unchecked(task)
    futures: list[Any] = []
    try:
        for args in arguments:
            futures.append(executor.submit(guarded, shipped, *args))
        return [future.result() for future in futures]
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        message = str(exc).lower()
        if not any(word in message for word in ("pickle", "local object", "serializ")):
            raise
        raise _unpicklable(executor, exc) from exc
    finally:
        # On an error or KeyboardInterrupt, work not yet started is dropped: only the chunks
        # already running finish (no-op for futures that are done).
        for future in futures:
            future.cancel()


def _shifted_on(
    executor: Executor,
    f: Any,
    x: FloatArray,
    indices: Sequence[int],
    steps: Sequence[float],
    multipliers: Sequence[float],
    task: Callable[..., tuple[FloatArray, FloatArray]] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """:func:`shifted_values` split into chunks of coordinates run as tasks on ``executor``,
    assembled in order. Each task gets its own copy of the point. ``task``, if given, runs
    each chunk as ``task(f, x, indices, steps, multipliers)`` instead of
    :func:`_evaluate_chunk` (``f`` is then shipped as it is)."""
    workers = getattr(executor, "_max_workers", None) or os.cpu_count() or 1
    n_chunks = max(1, min(len(indices), 4 * int(workers)))
    bounds = np.linspace(0, len(indices), n_chunks + 1).astype(int)
    idx, hs = list(indices), list(steps)
    shipped = ScalarLoss(f.fn, f.name) if task is None and isinstance(f, ScalarLoss) else f
    parts = run_tasks(
        executor,
        shipped,
        _evaluate_chunk if task is None else task,
        [
            (x, idx[a:b], hs[a:b], multipliers)
            for a, b in itertools.pairwise(bounds.tolist())
            if b > a
        ],
    )
    values = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, len(multipliers)))
    offsets = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, len(multipliers)))
    return values, offsets


_MULTIPLIERS: dict[str, tuple[float, ...]] = {
    name: SCHEMES[name].multipliers for name in ("central", "forward", "backward", "richardson")
}


def coordinate_differences(
    f: ScalarFunction,
    x: FloatArray,
    steps: FloatArray,
    method: str,
    f0: float | None = None,
    indices: Sequence[int] | None = None,
    shifter: Any = None,
    dtype: np.dtype[Any] | None = None,
) -> Estimate:
    """Estimate partial derivatives of ``f`` at ``x`` by finite differences.

    Every coordinate, or only ``indices`` (flat indices; the other entries are NaN). One-sided
    schemes need ``f0 = f(x)``. The divisor is the difference of the perturbed coordinates as
    stored in floating point, so the representation error of ``x_i + h`` does not enter the
    estimate. ``"richardson"`` combines central differences at ``h`` and ``2h`` into
    ``(4 D(h) - D(2h)) / 3``, whose truncation error is O(h^4). ``shifter``, if given, makes
    the evaluations instead of ``f`` (an ``Evaluator``, whose points may be a framework's
    arrays stored in ``dtype``).
    """
    if method not in _MULTIPLIERS:
        raise InvalidArgumentError(f"method={method!r} is not a coordinate-wise difference scheme")
    if method in ("forward", "backward") and f0 is None:
        raise InvalidArgumentError(f"method={method!r} needs the loss at the point itself (f0)")
    flat = x.reshape(-1)
    h_flat = steps.reshape(-1)
    idx = list(range(flat.size)) if indices is None else [int(i) for i in indices]
    sel = np.asarray(idx, dtype=np.intp)
    _check_resolution(flat[sel], h_flat[sel], method, dtype)
    if shifter is None:
        vals, offs = shifted_values(f, x, idx, h_flat[sel].tolist(), _MULTIPLIERS[method])
    else:
        vals, offs = shifter.shifted(x, idx, h_flat[sel].tolist(), _MULTIPLIERS[method])
    out = np.full(flat.size, np.nan)
    used = np.full(flat.size, np.nan)
    f_plus = np.full(flat.size, np.nan)
    f_minus = np.full(flat.size, np.nan)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if method in ("central", "richardson"):
            d1 = (vals[:, 0] - vals[:, 1]) / (offs[:, 0] - offs[:, 1])
            f_plus[sel], f_minus[sel] = vals[:, 0], vals[:, 1]
            used[sel] = 0.5 * (offs[:, 0] - offs[:, 1])
            if method == "central":
                out[sel] = d1
            else:
                d2 = (vals[:, 2] - vals[:, 3]) / (offs[:, 2] - offs[:, 3])
                out[sel] = (4.0 * d1 - d2) / 3.0
        else:
            assert f0 is not None
            out[sel] = (vals[:, 0] - f0) / offs[:, 0]
            used[sel] = np.abs(offs[:, 0])
            (f_plus if method == "forward" else f_minus)[sel] = vals[:, 0]
    n_evals = len(idx) * len(_MULTIPLIERS[method])
    return Estimate(
        out.reshape(x.shape),
        used.reshape(x.shape),
        n_evals,
        method,
        f_plus.reshape(x.shape),
        f_minus.reshape(x.shape),
    )


def complex_step(f: Callable[[Any], complex], x: FloatArray, steps: FloatArray) -> Estimate:
    """The complex-step derivative ``Im f(x + i h e_k) / h`` of every coordinate.

    Exact to machine precision for a loss that is real-analytic and evaluates complex input
    faithfully (no ``abs``, no comparisons on the perturbed values, no casts to float), since no
    difference of nearby values is formed. ``f`` must return a complex scalar.
    """
    work = x.astype(np.complex128)
    flat = work.reshape(-1)
    hs = steps.reshape(-1).tolist()
    out = np.empty(flat.size)
    i = 0
    try:
        for i in range(flat.size):
            v = flat[i]
            flat[i] = v + 1j * hs[i]
            out[i] = f(work).imag / hs[i]
            flat[i] = v
    except BaseException as exc:
        _note_coordinate(exc, i, x.shape)
        raise
    return Estimate(out.reshape(x.shape), steps.copy(), flat.size, "complex")


def _check_resolution(
    flat: FloatArray, h: FloatArray, method: str, dtype: np.dtype[Any] | None = None
) -> None:
    """Refuse steps too small to move a coordinate at all (x + h == x in floating point, in
    ``dtype``: float64 unless the points are stored in float32)."""
    dt = np.dtype(np.float64) if dtype is None else np.dtype(dtype)

    def stored(v: FloatArray) -> FloatArray:
        return v if dt == np.float64 else v.astype(dt).astype(np.float64)

    with np.errstate(over="ignore", invalid="ignore"):
        if method in ("central", "richardson"):
            dead = stored(flat + h) - stored(flat - h) == 0.0
        elif method == "forward":
            dead = stored(flat + h) - flat == 0.0
        else:
            dead = flat - stored(flat - h) == 0.0
    if dead.any():
        i = int(np.argmax(dead))
        raise InvalidArgumentError(
            f"epsilon={float(h[i]):g} is too small for the parameter value {float(flat[i])!r} at "
            f"flat index {i}: x + epsilon == x in {dt}; use epsilon='auto', which scales the "
            "step to the parameter"
        )


class ScalarLoss:
    """A loss as the estimators call it: one point in, a Python float out, or an error naming
    the loss. Picklable when the loss is, so chunks of a check can go to other processes; an
    ``executor`` attached to it spreads coordinate-wise checks over that executor."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str = "f",
        executor: Executor | None = None,
        read: Callable[[Any, str], float] = loss_value,
    ) -> None:
        self.fn = fn
        self.name = name
        self.executor = executor
        #: ``(value, name) -> float``: how a value that is not a Python float is read.
        self.read = read

    def __call__(self, x: FloatArray) -> float:
        return self.read(self.fn(x), self.name)

    def __getstate__(self) -> dict[str, Any]:
        return {"fn": self.fn, "name": self.name, "executor": None, "read": self.read}


def scalar_function(f: Callable[..., Any], name: str = "f") -> ScalarFunction:
    """Wrap ``f`` so that each call returns a Python float or raises naming ``name``."""
    return ScalarLoss(f, name)


def numerical_gradient(
    f: Callable[..., Any],
    x: ArrayLike,
    *,
    method: Method = "central",
    epsilon: Epsilon = "auto",
) -> Any:
    """The finite-difference gradient of a scalar function.

    Args:
        f: called as ``f(x)`` with arrays shaped like ``x``: float64 numpy arrays for a numpy
            ``x`` (or array-like); for a torch tensor, JAX array or CuPy array ``x``, arrays of
            that library on ``x``'s device, in float64 where the library allows it (JAX with
            x64 enabled) and ``f`` accepts it, else in ``x``'s own floating dtype (a torch
            model's float32 weights refuse float64 input: ``f`` is then called again in
            float32). Torch's autograd is off while ``f`` runs. Must return a real scalar.
        x: the point; left unchanged (a private copy is perturbed; a torch tensor's autograd
            graph is not touched).
        method: ``"central"`` (``(f(x+h) - f(x-h)) / 2h``, error O(h^2), 2 evaluations per
            coordinate), ``"forward"`` or ``"backward"`` (error O(h), 1 evaluation per coordinate
            plus one at ``x``).
        epsilon: a fixed absolute step, or ``"auto"`` for a step scaled to each coordinate and
            to the precision of the points (float64's, or float32's: see :func:`step_sizes`).

    Returns:
        The gradient shaped like ``x``: a float64 numpy array for a numpy ``x``; for a
        framework ``x``, an array of the same library on the same device, in the dtype the
        points were evaluated in (float64, or ``x``'s own floating dtype).

    Raises:
        InvalidArgumentError: an unknown method, a bad step, or ``f`` returned a non-scalar.
        InvalidTypeError: ``x`` is not real-valued, or ``f`` returned something not a number.
    """
    method = validate_method(method)
    epsilon = validate_epsilon(epsilon)
    if array_kind(x) != "numpy":
        return _framework_gradient(f, x, method, epsilon)
    work = working_copy(x, "x")
    g = scalar_function(f, "f")
    f0 = g(work) if method != "central" else None
    return coordinate_differences(g, work, step_sizes(work, epsilon, method), method, f0).values


class _Answered:
    """``f`` that remembers whether it has returned once: a loss that raises on its very first
    float64 point is tried again in the parameter's own dtype."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.answered = False

    def __call__(self, point: Any) -> Any:
        y = self.fn(point)
        self.answered = True
        return y


def _framework_gradient(f: Callable[..., Any], x: Any, method: Method, epsilon: Epsilon) -> Any:
    """:func:`numerical_gradient` of a torch, JAX or CuPy ``x``: the check's own evaluator,
    on a workspace in ``x``'s library and on its device."""
    from ._evaluate import Evaluator  # it imports this module

    ws = Workspace.of(x, "x", dtype="auto")
    loss = _Answered(f)
    with ws.evaluating():
        ev = Evaluator(loss, "f", point_nbytes=8 * max(1, ws.base.size), workspace=ws)
        while True:
            space = ev.workspace
            assert space is not None
            if space.shared and space.dtype == np.float64:
                work = space.host  # torch CPU: the very memory the loss's tensor shares
            else:
                work = np.array(space.base, dtype=np.float64, order="C", copy=True)
            eps = float(np.finfo(space.dtype).eps)
            try:
                f0 = ev.at(work) if method != "central" else None
                est = coordinate_differences(
                    ev.at,
                    work,
                    step_sizes(work, epsilon, method, eps),
                    method,
                    f0,
                    shifter=ev,
                    dtype=space.dtype,
                )
            except Exception:
                if loss.answered or not ev.use_native_dtype():
                    raise
                continue
            return space.to_device(est.values)


def directional_derivative(
    f: Callable[..., Any],
    x: ArrayLike,
    d: ArrayLike,
    *,
    epsilon: Epsilon = "auto",
) -> float:
    """The centered derivative of ``f`` at ``x`` along ``d``: ``(f(x+h d) - f(x-h d)) / 2h``.

    It approximates ``d . grad f(x)`` with two evaluations whatever the size of ``x``.

    Args:
        f: called as ``f(x)`` with arrays shaped like ``x``: float64 numpy arrays for a numpy
            ``x``; for a torch tensor, JAX array or CuPy array ``x``, arrays of that library on
            ``x``'s device, built there, in float64 where the library allows it and ``f``
            accepts it, else in ``x``'s own floating dtype (torch's autograd off). Must return
            a real scalar.
        x: the point; left unchanged.
        d: the direction, shaped like ``x`` (an array of any of these libraries); it is not
            normalised.
        epsilon: a fixed step ``h`` or ``"auto"``, which moves the coordinate that changes most
            by ``eps**(1/3) * max(max|x|, 1)``, ``eps`` the precision of the points (float64's,
            or float32's).

    Returns:
        The derivative as a float; 0.0 for a zero direction (no evaluation is made).
    """
    epsilon = validate_epsilon(epsilon)
    framework = array_kind(x) != "numpy"
    ws = Workspace.of(x, "x", dtype="auto") if framework else None
    work = working_copy(x, "x") if ws is None else np.asarray(ws.base, dtype=np.float64)
    direction = working_copy(host_array(d), "d")
    if direction.shape != work.shape:
        raise InvalidArgumentError(
            f"d has shape {direction.shape} but x has shape {work.shape}; they must match"
        )
    if not np.isfinite(direction).all():
        raise InvalidArgumentError("d contains NaN or inf; a direction must be finite")
    d_max = float(np.max(np.abs(direction))) if direction.size else 0.0
    if d_max == 0.0:
        return 0.0
    if ws is None:
        h, unit, length = _along_step(work, direction, d_max, epsilon, _EPS)
        plus, minus = work + h * unit, work - h * unit
        _check_moved(plus, minus, h)
        g = scalar_function(f, "f")
        fp = g(plus)
        fm = g(minus)
        return float((fp - fm) / (2.0 * h)) * length
    loss = _Answered(f)
    with ws.evaluating():
        while True:
            dtype = ws.dtype
            h, unit, length = _along_step(
                work, direction, d_max, epsilon, float(np.finfo(dtype).eps)
            )
            _check_moved((work + h * unit).astype(dtype), (work - h * unit).astype(dtype), h)
            call = loss_caller(loss, ws.info.kind, "f")
            u = ws.direction(unit)
            try:
                fp = call(ws.along(u, h))
            except Exception:
                if loss.answered or ws.dtype != np.float64 or ws.native_dtype == np.float64:
                    raise
                ws = ws.native()
                continue
            fm = call(ws.along(u, -h))
            return float((fp - fm) / (2.0 * h)) * length


def _along_step(
    work: FloatArray, direction: FloatArray, d_max: float, epsilon: Epsilon, eps: float
) -> tuple[float, FloatArray, float]:
    """``(h, unit, length)``: the step along ``unit`` and the factor that scales the derivative
    along ``unit`` back to one along ``direction``."""
    if epsilon == "auto":
        # Step along d / max|d| and scale back: h / max|d| would overflow for a tiny d.
        x_max = float(np.max(np.abs(work))) if work.size else 0.0
        return eps ** (1.0 / 3.0) * max(x_max, 1.0), direction / d_max, d_max
    return float(epsilon), direction, 1.0


def _check_moved(plus: Any, minus: Any, h: float) -> None:
    if np.array_equal(plus, minus):
        raise InvalidArgumentError(
            f"epsilon={h:g} is too small to move x along d: x + epsilon * d == x in "
            f"{np.asarray(plus).dtype}; use epsilon='auto', which scales the step to the parameter"
        )
