"""The one way a check evaluates the loss: serially, in batches, or over an executor.

Every estimator (coordinates, random directions, the noise probe) goes through an
:class:`Evaluator`, so ``vectorized=`` and ``executor=`` apply to all of them, and the
evaluator counts what was spent.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

import numpy as np

from ._backend import Kind, Remote, Workspace, _lib, host_array, loss_caller, value_reader
from ._direction import Direction, point
from ._typing import FloatArray
from .estimators import (
    BatchedLoss,
    ScalarLoss,
    _add_note,
    _batch_size,
    _note_batch,
    _note_coordinate,
    _shifted_on,
    moves,
    run_tasks,
    shifted_values,
)

__all__ = ["Evaluator", "Shifter", "Subspace"]

#: Up to this size a framework parameter's evaluator keeps its last four directions on the
#: device; beyond it only the one in use (each is as large as the parameter).
DIRECTIONS_KEPT_BYTES = 1 << 20


def _moved(work: FloatArray, i: int, offset: float) -> FloatArray:
    point = work.copy()
    flat = point.reshape(-1)
    flat[i] = flat[i] + offset
    return point


class _Fresh:
    """``loss(copy of point)``: for losses that cache by the identity of their input or write
    into it. Picklable when the loss is (``copy`` too)."""

    def __init__(self, fn: Callable[[Any], Any], copy: Callable[[Any], Any] | None = None) -> None:
        self.fn = fn
        self.copy = copy

    def __call__(self, point: Any) -> Any:
        if self.copy is not None:
            return self.fn(self.copy(point))
        return self.fn(np.array(point, copy=True))


def _vmapped(loss: Callable[[Any], Any], kind: Kind) -> Callable[[Any], Any]:
    """A loss written for one point, mapped over a leading batch axis by the library."""
    if kind == "torch":
        return _lib("torch").func.vmap(loss)  # type: ignore[no-any-return]
    return _lib("jax").vmap(loss)  # type: ignore[no-any-return]


def _shifted_device(
    fn: Callable[[Any], Any],
    read: Callable[[Any, str], float],
    ws: Workspace,
    work: FloatArray,
    indices: Sequence[int],
    steps: Sequence[float],
    multipliers: Sequence[float],
    name: str = "loss",
) -> tuple[FloatArray, FloatArray]:
    """:func:`shifted_values` for a framework array: each point is the workspace with one
    coordinate set on the device (``ws.set``), the offsets those the working dtype stores.
    ``work`` is the float64 host base the pipeline reads; ``read`` reads a value that is not
    a Python float."""
    flat = work.reshape(-1)
    hs = list(steps)
    vals: list[float] = []
    offs: list[float] = []
    i = -1
    try:
        for k, i in enumerate(indices):
            v = float(flat[i])
            for mult in multipliers:
                moved = ws.stored(v + mult * hs[k])
                y = fn(ws.set(i, moved))
                vals.append(y if type(y) is float else read(y, name))
                offs.append(moved - v)
            ws.reset(i)
    except BaseException as exc:
        if i >= 0:
            ws.reset(i)
            _note_coordinate(exc, i, work.shape)
        raise
    m = len(multipliers)
    values = np.array(vals, dtype=np.float64).reshape(len(indices), m)
    offsets = np.array(offs, dtype=np.float64).reshape(len(indices), m)
    return values, offsets


def _shifted_device_batches(
    f: BatchedLoss,
    ws: Workspace,
    work: FloatArray,
    indices: Sequence[int],
    steps: Sequence[float],
    multipliers: Sequence[float],
) -> tuple[FloatArray, FloatArray]:
    """:func:`.estimators._shifted_batches` for a framework array: the same points, in the
    same order and batches, built on the device from the workspace's base (see
    :class:`._backend.Batches`); only the moved values, one per point, cross from the host.
    The offsets are those the working dtype stores (for float64, numpy's own)."""
    flat = work.reshape(-1)
    m = len(multipliers)
    idx, moved, offsets = moves(flat, indices, steps, multipliers, ws.dtype)
    values = np.empty(moved.shape)
    total = moved.size
    if total == 0:
        return values, offsets
    columns = idx.repeat(m)
    flat_values = values.reshape(-1)
    size = _batch_size(f.batch_size, m, total)
    batches = ws.batches(size, columns, moved.reshape(-1))
    batch = f.batch
    start = 0
    try:
        for start in range(0, total, size):
            stop = min(start + size, total)
            flat_values[start:stop] = batch(batches.get(start, stop))
    except BaseException as exc:
        _note_batch(exc, columns[start : start + size], work.shape)
        raise
    return values, offsets


class _DeviceTask:
    """What an executor's worker runs for a framework parameter: the loss (``point ->
    float``, autograd off in any thread) and how to build a workspace there. Picklable when
    the loss is."""

    def __init__(self, call: Callable[[Any], float], remote: Remote, name: str) -> None:
        self.call, self.remote, self.name = call, remote, name


def _device_chunk(
    task: _DeviceTask,
    work: FloatArray,
    indices: Sequence[int],
    steps: Sequence[float],
    multipliers: Sequence[float],
) -> tuple[FloatArray, FloatArray]:
    """One task of a parallel check of a framework parameter, in a worker: the point moves to
    the device once per task, then each evaluation moves one coordinate there."""
    ws = task.remote.at(work)
    read = value_reader(ws.info.kind, task.name)
    return _shifted_device(task.call, read, ws, work, indices, steps, multipliers, task.name)


#: A direction to move along: a float64 array shaped like the point, or a compact one.
Along = tuple[FloatArray | Direction, float]


def _along_chunk(f: ScalarLoss, work: FloatArray, pairs: list[Along]) -> list[float]:
    """One task of a parallel directional evaluation: runs in a worker."""
    return [f(point(work, u, t)) for u, t in pairs]


def _device_along_chunk(task: _DeviceTask, work: FloatArray, pairs: list[Along]) -> list[float]:
    """:func:`_along_chunk` for a framework parameter: the point moves to the device once per
    task, each direction once per run of pairs along it (only the one in use is kept: each is
    as large as the parameter), and ``x + t u`` is built there."""
    ws = task.remote.at(work)
    last: Any = None
    moved: Any = None
    out: list[float] = []
    for u, t in pairs:
        if u is not last:
            moved = None  # freed before the next one is built
            host = u.array(work) if isinstance(u, Direction) else u
            last, moved = u, ws.direction(host)
            del host
        out.append(task.call(ws.along(moved, t)))
    return out


class Evaluator:
    """Evaluates the loss for one check and counts the evaluations.

    Args:
        loss_at: ``point -> loss value`` (or, vectorized, ``points -> values``).
        name: names the loss in errors.
        point_nbytes: the size of one point, for batch sizes.
        vectorized: the loss takes points stacked along a leading axis; ``"vmap"``: the loss
            takes one point and is mapped over a batch by ``torch.func.vmap`` or ``jax.vmap``
            (a torch or JAX ``workspace`` only).
        batch_bytes: the memory of one batch of points.
        executor: spread coordinates and directions over this executor.
        workspace: for a torch, JAX or CuPy parameter, its workspace: the loss then receives
            that library's arrays on the parameter's device (see :mod:`._backend`), while the
            pipeline keeps reading float64 host arrays. Every point is built there, serially,
            in batches and in an executor's workers alike: no evaluation copies a point from
            the host. None for numpy (the points are the pipeline's own arrays, as always).
    """

    def __init__(
        self,
        loss_at: Callable[[Any], Any],
        name: str,
        *,
        point_nbytes: int,
        vectorized: bool | str = False,
        batch_bytes: int = 2 * 2**20,
        executor: Executor | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        self._loss = loss_at
        self.workspace = workspace
        #: ``device point -> float`` with autograd off in any thread: what workers run.
        self._call: Callable[[Any], float] | None = None
        #: The loss as the serial path calls it (in the check's thread, where autograd is
        #: already off: one call layer less per evaluation) and how its values are read.
        self._raw: Callable[[Any], Any] = loss_at
        self._read: Callable[[Any, str], float] = value_reader(
            "numpy" if workspace is None else workspace.info.kind, name
        )
        #: Directions moved to the device: ``id(u) -> (u, device u)``, the last few.
        self._directions: dict[int, tuple[Any, Any]] = {}
        self._name = name
        self._nbytes = point_nbytes
        self._vectorized = bool(vectorized)
        self._vmap = vectorized == "vmap"
        self._batch_bytes = batch_bytes
        self._executor = executor
        self.n_evals = 0
        self.fresh = False
        #: How to rebuild the first point where the loss was not finite (for a recheck).
        self.first_nonfinite: Callable[[FloatArray], FloatArray] | None = None
        self.n_nonfinite = 0
        self._f: ScalarLoss | BatchedLoss = self._build(loss_at)

    def _build(self, loss: Callable[[Any], Any]) -> ScalarLoss | BatchedLoss:
        ws = self.workspace
        if ws is not None:
            kind = ws.info.kind
            self._raw = loss
            self._call = loss_caller(loss, kind, self._name)
            if self._vectorized:
                # Handed batches built on the device (see _shifted_device_batches).
                batched = _vmapped(loss, kind) if self._vmap else loss
                return BatchedLoss(
                    batched, self._nbytes, self._name, self._batch_bytes, read=host_array
                )
            # An executor's workers run a _DeviceTask (see _device_task).
            return ScalarLoss(self._call, self._name, self._executor)
        if self._vectorized:
            return BatchedLoss(loss, self._nbytes, self._name, self._batch_bytes)
        return ScalarLoss(loss, self._name, self._executor)

    def use_fresh_copies(self) -> None:
        """From now on every evaluation gets its own copy of the point."""
        if not self.fresh:
            self.fresh = True
            ws = self.workspace
            copy = None if ws is None else ws.copy
            self._f = self._build(_Fresh(self._loss, copy))

    def use_native_dtype(self) -> bool:
        """Move a framework parameter's workspace to its own floating dtype (float32) when it
        works in float64 now; False when there is nothing to change. For a loss that refuses
        float64 input (a torch model's float32 weights)."""
        ws = self.workspace
        if ws is None or ws.dtype != np.float64 or ws.native_dtype == np.float64:
            return False
        self.workspace = ws.native()
        self._directions.clear()
        loss = _Fresh(self._loss, self.workspace.copy) if self.fresh else self._loss
        self._f = self._build(loss)
        return True

    def _device_point(self, point: FloatArray) -> Any:
        ws = self.workspace
        assert ws is not None
        if ws.shared and point is ws.host:
            return ws.point
        return ws.device_point(point)

    def at(self, point: FloatArray) -> float:
        """The loss at one point."""
        self.n_evals += 1
        if self._call is None:
            value = self._f(point)
        elif isinstance(self._f, BatchedLoss):
            value = float(self._f.batch(self._device_point(point)[None])[0])
        else:
            y = self._raw(self._device_point(point))
            value = y if type(y) is float else self._read(y, self._name)
        if not math.isfinite(value):
            self.n_nonfinite += 1
            if self.first_nonfinite is None:
                saved = point.copy()
                self.first_nonfinite = lambda w: saved
        return value

    def shifted(
        self,
        work: FloatArray,
        indices: Sequence[int],
        steps: Sequence[float],
        multipliers: Sequence[float],
    ) -> tuple[FloatArray, FloatArray]:
        """The loss with coordinate ``indices[k]`` moved by ``multipliers[j] * steps[k]``;
        values and the offsets actually applied, both ``(len(indices), len(multipliers))``."""
        ws = self.workspace
        if ws is None:
            values, offsets = shifted_values(self._f, work, indices, steps, multipliers)
        elif isinstance(self._f, BatchedLoss):
            values, offsets = _shifted_device_batches(
                self._f, ws, work, indices, steps, multipliers
            )
        elif self._executor is not None and len(indices) > 1:
            values, offsets = _shifted_on(
                self._executor,
                self._device_task(),
                work,
                indices,
                steps,
                multipliers,
                task=_device_chunk,
            )
        elif ws.shared and work is ws.host:
            # torch CPU in float64: numpy's own in-place loop, the loss handed the tensor that
            # shares the memory it writes.
            f = ScalarLoss(self._raw, self._name, read=self._read)
            values, offsets = shifted_values(f, work, indices, steps, multipliers, ws.point)
        else:
            values, offsets = _shifted_device(
                self._raw, self._read, ws, work, indices, steps, multipliers, self._name
            )
        self.n_evals += values.size
        bad = ~np.isfinite(values)
        if bad.any():
            self.n_nonfinite += int(bad.sum())
            if self.first_nonfinite is None:
                k, j = (int(v[0]) for v in np.nonzero(bad))
                i, off = int(indices[k]), float(offsets[k, j])
                self.first_nonfinite = lambda w: _moved(w, i, off)
        return values, offsets

    def along(self, work: FloatArray, pairs: Sequence[Along]) -> FloatArray:
        """The loss at ``work + t * u`` for each ``(u, t)`` in ``pairs``."""
        out = np.empty(len(pairs))
        if not pairs:
            return out
        try:
            ws = self.workspace
            if isinstance(self._f, BatchedLoss):
                size = self._f.batch_size
                for a in range(0, len(pairs), size):
                    chunk = pairs[a : a + size]
                    if ws is None:
                        points = np.stack([point(work, u, t) for u, t in chunk])
                    else:  # built on the device, from directions moved there once
                        points = ws.stack([ws.along(self._on_device(work, u), t) for u, t in chunk])
                    out[a : a + len(chunk)] = self._f.batch(points)
            elif self._executor is not None and len(pairs) > 1:
                workers = getattr(self._executor, "_max_workers", None) or os.cpu_count() or 1
                n_chunks = max(1, min(len(pairs), int(workers)))
                bounds = np.linspace(0, len(pairs), n_chunks + 1).astype(int).tolist()
                shipped: ScalarLoss | _DeviceTask
                task: Callable[..., list[float]]
                if ws is None:
                    shipped, task = ScalarLoss(self._f.fn, self._f.name), _along_chunk
                else:
                    shipped, task = self._device_task(), _device_along_chunk
                parts = run_tasks(
                    self._executor,
                    shipped,
                    task,
                    [(work, list(pairs[a:b])) for a, b in itertools.pairwise(bounds) if b > a],
                )
                out[:] = [v for part in parts for v in part]
            elif self.workspace is not None:
                ws = self.workspace
                raw, read, name = self._raw, self._read, self._name
                for k, (u, t) in enumerate(pairs):
                    y = raw(ws.along(self._on_device(work, u), t))
                    out[k] = y if type(y) is float else read(y, name)
            else:
                f = self._f
                for k, (u, t) in enumerate(pairs):
                    out[k] = f(point(work, u, t))
        except BaseException as exc:
            _add_note(exc, "verigrad: raised while evaluating the loss along a random direction")
            raise
        self.n_evals += len(pairs)
        bad = ~np.isfinite(out)
        if bad.any():
            self.n_nonfinite += int(bad.sum())
            if self.first_nonfinite is None:
                u, t = pairs[int(np.argmax(bad))]
                self.first_nonfinite = lambda w: point(w, u, t)
        return out

    def _device_task(self) -> _DeviceTask:
        """What an executor's workers run for a framework parameter."""
        ws = self.workspace
        assert ws is not None
        assert self._call is not None
        return _DeviceTask(self._call, ws.remote(), self._name)

    def _on_device(self, work: FloatArray, u: FloatArray | Direction) -> Any:
        """``u`` as a device array (materialised once, kept for the next few calls)."""
        hit = self._directions.get(id(u))
        if hit is not None and hit[0] is u:
            return hit[1]
        ws = self.workspace
        assert ws is not None
        # The few directions in use (signs, halves) are kept; for a large parameter only the
        # one in use, each being as large as the parameter (a direction's evaluations come
        # together: a Richardson table, then the next direction).
        keep = 4 if work.nbytes <= DIRECTIONS_KEPT_BYTES else 1
        while len(self._directions) >= keep:  # freed before the next one is built
            self._directions.pop(next(iter(self._directions)))
        host = u.array(work) if isinstance(u, Direction) else u
        moved = ws.direction(host)
        del host
        self._directions[id(u)] = (u, moved)
        return moved

    def recheck(self, work: FloatArray) -> float | None:
        """The loss once more at the first point where it was not finite (None if none was):
        a finite value now means the loss is not a function of its input alone."""
        if self.first_nonfinite is None:
            return None
        return self.at(self.first_nonfinite(work))


class Shifter(Protocol):
    """What the coordinate-wise stages need: the loss with single coordinates moved."""

    def shifted(
        self,
        work: FloatArray,
        indices: Sequence[int],
        steps: Sequence[float],
        multipliers: Sequence[float],
    ) -> tuple[FloatArray, FloatArray]: ...


class Subspace:
    """The coordinates ``checked`` of a large parameter as a small problem of their own.

    A check that estimates a few dozen coordinates of a million works on arrays of those
    coordinates only (their values in ``work[checked]``, the gradient's, their estimates),
    so that nothing parameter-sized is built per coordinate. Position ``k`` stands for flat
    index ``checked[k]``; evaluations move the full point ``work`` through ``ev``.
    """

    def __init__(self, ev: Evaluator, work: FloatArray, checked: np.ndarray) -> None:
        self._ev = ev
        self._work = work
        self.checked = checked

    def shifted(
        self,
        work: FloatArray,
        indices: Sequence[int],
        steps: Sequence[float],
        multipliers: Sequence[float],
    ) -> tuple[FloatArray, FloatArray]:
        """:meth:`Evaluator.shifted` at positions ``indices`` (``work`` is the compact point:
        the evaluations move the full one)."""
        flat = [int(self.checked[k]) for k in indices]
        return self._ev.shifted(self._work, flat, steps, multipliers)
