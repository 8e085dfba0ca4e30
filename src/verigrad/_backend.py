"""The user's array library: numpy, torch, JAX or CuPy, seen through one small interface.

A check works on one private copy of the parameter, the *workspace*, kept in the library the
parameter came from and on its device, so the loss receives the kind of array it was written
for. The pipeline reads the base point as a host numpy array (for step sizes and the verdict)
and asks the workspace for the points it evaluates:

* :meth:`Workspace.set` / :meth:`Workspace.reset` move one coordinate and put it back. For
  numpy arrays and torch CPU tensors the point handed to the loss shares memory with a numpy
  array that is written in place, so a perturbation costs what it costs for numpy; for CUDA
  tensors and CuPy arrays the coordinate is written on the device; for JAX a compiled
  ``.at[i].set`` builds the new point on the device. No evaluation copies the point to or from
  the host.
* :meth:`Workspace.along` builds ``x + t * d`` on the device from a direction moved there once.
* :meth:`Workspace.batches` builds a vectorized loss's batches on the device: the base
  repeated, one coordinate scattered into each row; only those values cross from the host.
* :meth:`Workspace.remote` is what an executor's worker needs to build a workspace of its own
  (one transfer per task); its points are then built on the device as above.
* :meth:`Workspace.value` reads the loss back as a Python float.

Nothing here imports torch, JAX, CuPy or array-api-compat until a parameter comes from one of
them: :func:`array_kind` looks at the type's module before anything else. The caller's arrays
are copied, never written, and no random number generator is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from ._arrays import _real_array, loss_value
from ._typing import FloatArray
from .exceptions import InvalidArgumentError, InvalidTypeError

__all__ = [
    "ArrayInfo",
    "Batches",
    "Kind",
    "Remote",
    "WorkingDtype",
    "Workspace",
    "array_kind",
    "evaluating",
    "float64_available",
    "host_array",
    "inspect_array",
    "loss_caller",
    "value_reader",
]

#: The array libraries a parameter can come from.
Kind = Literal["numpy", "torch", "jax", "cupy"]
#: The dtype a check computes in: float64, the parameter's own floating dtype (float32 for
#: half precision and integers become float64), or float64 where the library allows it.
WorkingDtype = Literal["float64", "native", "auto"]


def _lib(name: str) -> Any:
    """The framework module ``name``, typed ``Any``: mypy never reads the frameworks' own
    annotations, and the import happens only on the paths that met one of its arrays."""
    return sys.modules.get(name) or importlib.import_module(name)


_ROOTS: dict[str, Kind] = {"torch": "torch", "jax": "jax", "jaxlib": "jax", "cupy": "cupy"}


def array_kind(value: object) -> Kind:
    """The library ``value`` comes from: ``"torch"``, ``"jax"``, ``"cupy"``, else ``"numpy"``.

    Anything numpy can read (arrays, lists, Python and numpy scalars) is ``"numpy"``. The test
    reads the module of the value's type, so no library is imported to answer it: a torch
    tensor can only exist once torch is imported.
    """
    if isinstance(value, np.ndarray):
        return "numpy"
    root = type(value).__module__.partition(".")[0]
    kind = _ROOTS.get(root)
    if kind is None:
        return "numpy"
    import array_api_compat as aac

    confirmed = {
        "torch": aac.is_torch_array,
        "jax": aac.is_jax_array,
        "cupy": aac.is_cupy_array,
    }[kind](value)
    return kind if confirmed else "numpy"


@dataclasses.dataclass(frozen=True)
class ArrayInfo:
    """What a check needs to know about one parameter array.

    Attributes:
        kind: the library it comes from.
        shape: its shape.
        dtype: its dtype's name as numpy spells it (``"float32"``, ``"bfloat16"``, ``"int64"``).
        device: the library's own device object (``"cpu"`` for numpy).
        requires_grad: a torch tensor that is part of an autograd graph.
    """

    kind: Kind
    shape: tuple[int, ...]
    dtype: str
    device: Any
    requires_grad: bool = False

    @property
    def on_host(self) -> bool:
        """Whether the array lives in host memory (numpy, a CPU tensor, a JAX CPU array)."""
        if self.kind == "numpy":
            return True
        if self.kind == "torch":
            return bool(self.device.type == "cpu")
        if self.kind == "jax":
            return bool(self.device.platform == "cpu")
        return False


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _refuse_dtype(name: str, dtype: str, what: str) -> None:
    if dtype == "bool":
        raise InvalidTypeError(
            f"{name} has dtype bool; {what} must hold real numbers (cast it to float)"
        )
    if dtype.startswith("complex"):
        raise InvalidTypeError(
            f"{name} has complex dtype {dtype}; verigrad checks gradients of real parameters"
        )


def _refuse_tracer(value: Any, name: str) -> None:
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(value, jax.core.Tracer):
        raise InvalidTypeError(
            f"{name} is a JAX tracer ({type(value).__name__}): verigrad was called inside a "
            "jax.jit, jax.grad or jax.vmap transformation; check with concrete arrays, outside "
            "the transformation (the loss itself may be jit-compiled)"
        )


def inspect_array(value: Any, name: str = "x", what: str = "the parameter") -> ArrayInfo:
    """Kind, shape, dtype and device of ``value``, refusing what cannot be checked.

    Raises:
        InvalidTypeError: ``value`` is boolean, complex, non-numeric, a sparse tensor or a JAX
            tracer; the message names ``name``.
    """
    kind = array_kind(value)
    if kind == "numpy":
        arr = _real_array(value, name, what)
        return ArrayInfo("numpy", arr.shape, str(arr.dtype), "cpu")
    if kind == "jax":
        _refuse_tracer(value, name)
    if kind == "torch" and value.layout is not sys.modules["torch"].strided:
        raise InvalidTypeError(
            f"{name} is a torch tensor with layout {value.layout}; {what} must be a dense tensor "
            "(call .to_dense() on it)"
        )
    dtype = _dtype_name(value.dtype)
    _refuse_dtype(name, dtype, what)
    import array_api_compat as aac

    return ArrayInfo(
        kind,
        tuple(int(n) for n in value.shape),
        dtype,
        aac.device(value),
        bool(kind == "torch" and value.requires_grad),
    )


def host_array(value: Any) -> Any:
    """A host numpy copy of a torch, JAX or CuPy array; anything else is returned as it is.

    Torch tensors are detached first (their autograd graph is not touched) and bfloat16
    becomes float32, which numpy lacks. Use it before numpy code reads a value that may come
    from a framework: a gradient the user's function returned, a leaf of a structure.
    """
    kind = array_kind(value)
    if kind == "numpy":
        return value
    if kind == "torch":
        torch = _lib("torch")

        t = value.detach()
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)
        return np.array(t.cpu().resolve_conj().resolve_neg().numpy(), copy=True)
    if kind == "cupy":
        return np.array(value.get(), copy=True)
    _refuse_tracer(value, "the value")
    return np.array(value, copy=True)


def host_view(value: Any) -> Any:
    """A read-only host numpy view of a torch CPU tensor or JAX CPU array that shares its
    memory where the library allows it, else :func:`host_array`'s copy: for reading a large
    gradient without a copy of it (a numpy gradient is read the same way)."""
    kind = array_kind(value)
    if kind == "torch":
        t = value.detach()
        if t.device.type == "cpu" and not (t.is_conj() or t.is_neg()) and t.dtype.is_floating_point:
            try:
                view = t.numpy()
            except (RuntimeError, TypeError):  # bfloat16 and the like: no numpy dtype
                return host_array(value)
            view = view.view()
            view.setflags(write=False)
            return view
    elif kind == "jax":
        _refuse_tracer(value, "the value")
        if all(d.platform == "cpu" for d in value.devices()):
            return np.asarray(value)  # immutable: a view can never change under the check
    return host_array(value)


def float64_available(info: ArrayInfo) -> bool:
    """Whether the library can compute in float64 for this array (JAX only with x64 enabled;
    Apple's MPS devices never)."""
    if info.kind == "jax":
        jax = _lib("jax")

        return bool(jax.config.jax_enable_x64)
    if info.kind == "torch":
        return bool(info.device.type != "mps")
    return True


def _native(dtype: str) -> np.dtype[Any]:
    if dtype in ("float64", "float32"):
        return np.dtype(dtype)
    if dtype in ("float16", "bfloat16"):  # differences in half precision say nothing
        return np.dtype(np.float32)
    return np.dtype(np.float64)  # integers, as the numpy pipeline does


def _working_dtype(info: ArrayInfo, dtype: WorkingDtype, name: str) -> np.dtype[Any]:
    if dtype == "native":
        return _native(info.dtype)
    if dtype not in ("float64", "auto"):
        raise InvalidArgumentError(f"dtype must be 'float64', 'native' or 'auto', not {dtype!r}")
    if float64_available(info):
        return np.dtype(np.float64)
    if dtype == "auto":
        return _native(info.dtype)
    hint = (
        "enable it with jax.config.update('jax_enable_x64', True)"
        if info.kind == "jax"
        else "this device has no float64"
    )
    raise InvalidArgumentError(
        f"{name} cannot be checked in float64 on {info.kind} ({hint}), or check in its own dtype"
    )


# -- JAX: compiled point builders, made once per process ---------------------------------------

_JAX_FNS: dict[str, Callable[..., Any]] = {}


def _jax_fns() -> dict[str, Callable[..., Any]]:
    if not _JAX_FNS:
        jax = _lib("jax")

        def set_one(base: Any, i: Any, v: Any) -> Any:
            return base.reshape(-1).at[i].set(v).reshape(base.shape)

        def along(base: Any, u: Any, t: Any) -> Any:
            return base + t * u

        _JAX_FNS["set"] = jax.jit(set_one)
        _JAX_FNS["along"] = jax.jit(along)
    return _JAX_FNS


def _to_device(kind: Kind, device: Any, dtype: np.dtype[Any], host: Any) -> Any:
    host = np.asarray(host, dtype=dtype)
    if kind == "numpy":
        return np.array(host, copy=True)
    if kind == "torch":
        torch = _lib("torch")

        return torch.tensor(host, device=device)
    if kind == "jax":
        jax = _lib("jax")

        if dtype == np.float64 and not jax.config.jax_enable_x64:
            # Only in an executor's worker: JAX would round the points to float32.
            raise InvalidArgumentError(
                "the check works in float64 but JAX in this worker has x64 off: the "
                "jax.enable_x64() context holds in its own thread only, and a process "
                "executor's worker does not inherit jax.config. Call "
                "jax.config.update('jax_enable_x64', True) instead, and in a process pool's "
                "workers too: ProcessPoolExecutor(initializer=f), f a module-level function "
                "calling it"
            )
        return jax.device_put(np.array(host, copy=True), device)
    cupy = _lib("cupy")

    with device:
        return cupy.array(host, copy=True)


class Remote:
    """What a worker needs to build its own :class:`Workspace` at a host point: the
    parameter's library, device and working dtype, without the workspace's arrays. Picklable
    (a JAX device is sent as None: the receiving process's default device)."""

    def __init__(self, info: ArrayInfo, dtype: np.dtype[Any], name: str) -> None:
        self.info, self.dtype, self.name = info, dtype, name

    def at(self, host: Any) -> Workspace:
        """A workspace whose base is ``host`` (copied): one transfer to the device."""
        return Workspace(
            self.info, np.array(host, dtype=self.dtype, order="C", copy=True), self.name
        )

    def __getstate__(self) -> tuple[ArrayInfo, np.dtype[Any], str]:
        info = self.info
        if info.kind == "jax":
            info = dataclasses.replace(info, device=None)
        return info, self.dtype, self.name

    def __setstate__(self, state: tuple[ArrayInfo, np.dtype[Any], str]) -> None:
        self.info, self.dtype, self.name = state


_BATCH_FNS: dict[str, Callable[..., Any]] = {}


def _jax_batch() -> Callable[..., Any]:
    """``(flat base, columns, values, shape) -> (k, *shape)``, row ``r`` the base with
    ``columns[r]`` at ``values[r]``; compiled once per process (and per batch shape)."""
    if not _BATCH_FNS:
        jax = _lib("jax")

        def build(base: Any, columns: Any, values: Any, shape: tuple[int, ...]) -> Any:
            k = columns.shape[0]
            rows = jax.numpy.arange(k)
            stack = jax.numpy.broadcast_to(base, (k, base.shape[0]))
            return stack.at[rows, columns].set(values).reshape((k, *shape))

        _BATCH_FNS["jax"] = jax.jit(build, static_argnums=3)
    return _BATCH_FNS["jax"]


class Batches:
    """Batches of points for a vectorized loss, built on the device from the workspace's base:
    point ``k`` is the base with flat coordinate ``columns[k]`` at ``values[k]``.

    The columns and values (one number per point) go to the device once; no point is copied
    from the host. For torch and CuPy one buffer of ``size`` copies of the base is made on the
    device and reused: before each batch only the entries the previous batch moved are put
    back, so the work per batch outside the loss is O(``size``), as for numpy. JAX arrays are
    immutable: each batch is the base broadcast and scattered by one compiled call.
    """

    def __init__(self, ws: Workspace, size: int, columns: Any, values: Any) -> None:
        self.size = size
        self.shape = ws.info.shape
        self.kind = ws.info.kind
        self.base = ws.device_base_flat()
        self.columns = ws.small(columns)
        self.values = ws.small(np.asarray(values, dtype=ws.dtype))
        if self.kind == "torch":
            torch = _lib("torch")

            with torch.no_grad():
                self.buffer = self.base.unsqueeze(0).repeat(size, 1)
            self.rows = torch.arange(size, device=self.base.device)
        elif self.kind == "cupy":
            cupy = _lib("cupy")

            with ws.info.device:
                self.buffer = cupy.repeat(self.base[None, :], size, axis=0)
                self.rows = cupy.arange(size)

    def get(self, start: int, stop: int) -> Any:
        """Points ``start`` to ``stop - 1`` stacked, shape ``(stop - start, *shape)``. Call with
        consecutive ranges of ``size`` points (the last one may be shorter); the array returned
        for a torch or CuPy workspace is overwritten by the next call."""
        k = stop - start
        columns = self.columns[start:stop]
        if self.kind == "jax":
            return _jax_batch()(self.base, columns, self.values[start:stop], self.shape)
        buffer, rows, size = self.buffer, self.rows, self.size
        if start:  # the previous batch was a full one: undo its moves
            previous = self.columns[start - size : start]
            buffer[rows, previous] = self.base[previous]
        buffer[rows[:k], columns] = self.values[start:stop]
        whole = buffer.reshape((size, *self.shape))
        # A shorter last batch hands over only its own rows.
        return whole if k == size else whole[:k]


# -- the workspace -----------------------------------------------------------------------------


class Workspace:
    """One check's private copy of the parameter, in the parameter's library and on its device.

    Build it with :meth:`of`. The caller's array is copied once and never referenced again.

    Attributes:
        info: the parameter as given (kind, shape, dtype, device).
        dtype: the working dtype (float64 or float32).
        base: the base point as a read-only host numpy array in the working dtype, shaped like
            the parameter; the pipeline reads step sizes and values from it.
        point: the library's array the loss receives; after :meth:`set` it holds the moved
            coordinate until :meth:`reset`.
        shared: whether :attr:`point` shares its memory with :attr:`host` (numpy arrays and
            torch CPU tensors): then writing ``host`` in place, as the numpy pipeline's inner
            loop does, moves the point, and that loop runs unchanged with ``point`` handed to
            the loss.
        host: a writable host array in the working dtype; the memory of :attr:`point` when
            :attr:`shared`, otherwise a spare copy of the base.
    """

    def __init__(self, info: ArrayInfo, host: FloatArray, name: str) -> None:
        self.info = info
        self.name = name
        self.dtype = host.dtype
        self.host: FloatArray = host  # backs the point when `shared`
        self._host_flat = host.reshape(-1)
        self._xp: Any = None
        self._moved = -1  # the coordinate :meth:`set` moved in `host`, and its value before
        self._saved: Any = 0.0
        kind = info.kind
        self.shared = kind == "numpy" or (kind == "torch" and info.on_host)
        # Where the point shares host's memory, the base is a read-only view of host: every
        # move is put back exactly (by reset, or by the pipeline's own loop), so a copy would
        # only cost the parameter's bytes once more. A JAX point never reads host again (its
        # moves are made on the device copy), and the pipeline puts back whatever it moves
        # in host: a view there too.
        self.base: FloatArray = host.view() if self.shared or kind == "jax" else host.copy()
        self.base.setflags(write=False)
        # A view, not a list of Python floats: a list would take 4x the parameter's memory.
        self._base_flat: FloatArray = self.base.reshape(-1)
        if kind == "numpy":
            self.point: Any = host
        elif self.shared:
            torch = _lib("torch")

            self.point = torch.from_numpy(host)  # shares the memory of host
        else:
            self.point = self.to_device(host)
            if kind in ("torch", "cupy"):
                self._dev_flat = self.point.reshape(-1)  # a view: point is contiguous
            else:
                self._dev_base = self.point

    @classmethod
    def of(cls, x: Any, name: str = "x", *, dtype: WorkingDtype = "float64") -> Workspace:
        """A workspace holding a private copy of ``x``.

        Args:
            x: the parameter: a numpy array or array-like, a torch tensor (any device, with or
                without ``requires_grad``), a JAX array or a CuPy array.
            name: names ``x`` in errors.
            dtype: ``"float64"`` (refused where the library cannot), ``"native"`` (the
                parameter's floating dtype; half precision as float32; integers as float64), or
                ``"auto"`` (float64 where available, else native).

        Raises:
            InvalidTypeError: ``x`` holds no real numbers (see :func:`inspect_array`).
            InvalidArgumentError: float64 was asked for where the library has none.
        """
        info = inspect_array(x, name)
        wd = _working_dtype(info, dtype, name)
        if info.kind == "numpy":
            arr = _real_array(x, name, "the parameter")
            if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
                arr = arr.astype(np.float64)
            host = np.array(arr, dtype=wd, order="C", copy=True)
        else:
            host = np.asarray(host_array(x), dtype=wd, order="C")  # host_array made a copy
        return cls(info, host, name)

    @classmethod
    def from_host(
        cls, host: Any, like: ArrayInfo, name: str = "x", *, dtype: WorkingDtype = "float64"
    ) -> Workspace:
        """A workspace for a host array (a structure's flat vector) in the library and on
        the device of ``like``; ``like.dtype`` is what ``dtype="native"`` keeps. ``host`` is
        copied."""
        info = dataclasses.replace(like, shape=tuple(np.shape(host)))
        wd = _working_dtype(info, dtype, name)
        return cls(info, np.array(host, dtype=wd, order="C", copy=True), name)

    # -- points ----------------------------------------------------------------------------------

    @property
    def namespace(self) -> Any:
        """The array API namespace of the point (array-api-compat's, or numpy itself)."""
        if self._xp is None:
            if self.info.kind == "numpy":
                self._xp = np
            else:
                import array_api_compat as aac

                self._xp = aac.array_namespace(self.point)
        return self._xp

    def to_device(self, host: Any) -> Any:
        """A host array (shaped like the parameter, or a stack of such) as a new array of the
        parameter's library, on its device, in the working dtype: one transfer. For rare
        points (a recheck) and for directions, moved once and reused with :meth:`along`."""
        return _to_device(self.info.kind, self.info.device, self.dtype, host)

    def remote(self) -> Remote:
        """What an executor's worker needs to build a workspace of its own (see
        :class:`Remote`): one transfer per task, then its points are built on the device."""
        return Remote(self.info, self.dtype, self.name)

    def small(self, host: Any) -> Any:
        """A short host vector (columns, values: one number per point) as an array of the
        library on the device, its dtype kept (JAX without x64 makes integers 32-bit)."""
        arr = np.ascontiguousarray(host)
        kind = self.info.kind
        if kind == "numpy":
            return arr.copy()
        if kind == "torch":
            return _lib("torch").as_tensor(arr, device=self.info.device)
        if kind == "jax":
            jax = _lib("jax")

            if arr.dtype.kind == "i" and not jax.config.jax_enable_x64:
                arr = arr.astype(np.int32)
            return jax.device_put(arr, self.info.device)
        cupy = _lib("cupy")

        with self.info.device:
            return cupy.asarray(arr)

    def device_base_flat(self) -> Any:
        """The base point on the device as a flat array of the library (not a copy: call it
        with no coordinate moved, and do not write into it)."""
        kind = self.info.kind
        if kind == "numpy":
            return self._base_flat
        if kind == "jax":
            return self._dev_base.reshape(-1)
        if self.shared:
            return self.point.reshape(-1)
        return self._dev_flat

    def batches(self, size: int, columns: Any, values: Any) -> Batches:
        """Batches of ``size`` points built on the device (see :class:`Batches`)."""
        return Batches(self, size, columns, values)

    def device_point(self, host: FloatArray) -> Any:
        """A host point of the pipeline as the array the loss receives: for a torch CPU
        workspace in the point's own dtype a tensor sharing its memory (a loss that writes
        into its input then shows it, as with numpy), otherwise :meth:`to_device`."""
        if (
            self.shared
            and self.info.kind == "torch"
            and host.dtype == self.dtype
            and host.flags.c_contiguous
            and host.flags.writeable
        ):
            return _lib("torch").from_numpy(host)
        return self.to_device(host)

    @property
    def native_dtype(self) -> np.dtype[Any]:
        """The parameter's own floating dtype (half precision as float32, integers as
        float64): what ``dtype="native"`` works in."""
        return _native(self.info.dtype)

    def native(self) -> Workspace:
        """A new workspace at the same point in :attr:`native_dtype` (the base, exactly: it
        came from that dtype)."""
        host = np.array(self.base, dtype=self.native_dtype, order="C", copy=True)
        return Workspace(self.info, host, self.name)

    def stored(self, value: float) -> float:
        """``value`` as :meth:`set` stores it: rounded to the working dtype."""
        return float(self.dtype.type(value))

    def set(self, i: int, value: float) -> Any:
        """The point with flat coordinate ``i`` at ``value`` (rounded to the working dtype) and
        every other coordinate at the base; call :meth:`reset` before moving another one.

        The returned array may be :attr:`point` itself, written in place: a loss that keeps
        a reference to its input sees it change (hand such losses :meth:`copy` of it).
        """
        kind = self.info.kind
        if self.shared:
            if self._moved != i:
                self._moved, self._saved = i, self._host_flat[i]
            self._host_flat[i] = value
            return self.point
        if kind == "jax":
            self.point = _jax_fns()["set"](self._dev_base, i, value)
            return self.point
        self._dev_flat[i] = value
        return self.point

    def reset(self, i: int) -> None:
        """Put flat coordinate ``i`` back to its base value, exactly."""
        if self.shared:
            if self._moved == i:
                self._host_flat[i] = self._saved
                self._moved = -1
        elif self.info.kind == "jax":
            self.point = self._dev_base
        else:
            self._dev_flat[i] = float(self._base_flat[i])

    def direction(self, u: Any) -> Any:
        """A host direction moved to the device once, for :meth:`along`. ``u`` is the
        caller's to give away: a torch CPU tensor or JAX CPU array may share its memory."""
        host = np.asarray(u, dtype=self.dtype).reshape(self.info.shape)
        kind = self.info.kind
        if kind == "torch":
            return _lib("torch").as_tensor(host, device=self.info.device)
        if kind == "jax" and not (
            self.dtype == np.float64 and not _lib("jax").config.jax_enable_x64
        ):
            return _lib("jax").device_put(host, self.info.device)
        return self.to_device(host)

    def along(self, direction: Any, t: float) -> Any:
        """A new array ``base + t * direction``, built on the device; ``direction`` comes from
        :meth:`direction`. Call it with no coordinate moved (after :meth:`reset`)."""
        kind = self.info.kind
        if kind == "numpy":
            return self.base + t * direction
        if kind == "jax":
            return _jax_fns()["along"](self._dev_base, direction, t)
        if kind == "torch":
            torch = _lib("torch")

            with torch.no_grad():
                return torch.add(self.point, direction, alpha=t)  # no t * direction temporary
        return self.point + t * direction

    def copy(self, point: Any) -> Any:
        """A fresh copy of ``point`` for losses that cache by identity or write into their
        input."""
        kind = self.info.kind
        if kind == "torch":
            return point.clone()
        if kind == "jax":
            return point  # immutable: a copy could not differ
        return point.copy()

    def stack(self, points: Sequence[Any]) -> Any:
        """Points stacked along a new leading axis, for a vectorized loss."""
        return self.namespace.stack(list(points))

    # -- values ----------------------------------------------------------------------------------

    def value(self, y: Any, name: str = "loss") -> float:
        """The loss value ``y`` as a Python float (see :func:`_arrays.loss_value`)."""
        return _value(y, name)

    def values(self, ys: Any, n: int, name: str = "loss") -> FloatArray:
        """A vectorized loss's ``n`` values as a host float64 array: one transfer."""
        arr = np.asarray(host_array(ys))
        if arr.dtype.kind not in "iuf":
            raise InvalidTypeError(
                f"{name} returned values of dtype {arr.dtype}; it must return real numbers"
            )
        if arr.shape != (n,):
            raise InvalidArgumentError(
                f"{name} must return one value per point, shape ({n},), not {arr.shape}"
            )
        return np.array(arr, dtype=np.float64, copy=True)

    def evaluating(self) -> contextlib.AbstractContextManager[None]:
        """Enter around the evaluations of a check in the calling thread (see
        :func:`evaluating`)."""
        return evaluating(self.info.kind)


def _value(y: Any, name: str) -> float:
    """``y`` as a float; a real one-element array of any library reads as its element."""
    cls = type(y)
    if cls is float:
        same: float = y
        return same
    if cls is np.float64:
        return float(y)
    if cls.__module__.partition(".")[0] in _ROOTS:
        try:
            v = y.item()  # one transfer; refuses arrays of more than one element
        except Exception:
            pass
        else:
            if type(v) is float:  # a real floating value: no bool, int or complex reaches here
                return v
    return loss_value(host_array(y), name)


@contextlib.contextmanager
def _no_grad() -> Iterator[None]:
    torch = _lib("torch")

    with torch.no_grad():
        yield


def evaluating(kind: Kind) -> contextlib.AbstractContextManager[None]:
    """Around a check's evaluations: torch's autograd off (no graph is built through the
    user's parameters or model, nothing reaches any ``.grad``); nothing for other libraries.
    Torch's grad mode is per thread: :func:`loss_caller` covers evaluations in other threads.
    """
    if kind == "torch":
        return _no_grad()
    return contextlib.nullcontext()


def value_reader(kind: Kind, name: str = "loss") -> Callable[[Any, str], float]:
    """The fastest ``loss value -> Python float`` for a loss of ``kind`` arrays, for the
    pipeline's inner loop (``y if type(y) is float else read(y)``); errors name ``name``.
    A second argument, if given, names the loss instead (the estimators' ``read(y, name)``).

    A plain closure, not a callable object: calling an instance costs a few hundred
    nanoseconds more per evaluation, as much as reading a torch scalar does.
    """
    if kind == "torch":
        tensor = _lib("torch").Tensor

        def read_torch(y: Any, called: str = name) -> float:
            if type(y) is tensor:
                try:
                    v = y.item()  # one transfer; refuses tensors of more than one element
                except RuntimeError:
                    return _value(y, called)
                if type(v) is float:
                    return v
            return _value(y, called)

        return read_torch

    def read(y: Any, called: str = name) -> float:
        return _value(y, called)

    return read


class _TorchLoss:
    """``point -> float(loss(point))`` with autograd off in whichever thread it runs;
    picklable when the loss is."""

    def __init__(self, fn: Callable[[Any], Any], name: str) -> None:
        self.fn, self.name = fn, name

    def __call__(self, point: Any) -> float:
        torch = _lib("torch")

        if torch.is_grad_enabled():
            with torch.no_grad():
                y = self.fn(point)
        else:
            y = self.fn(point)
        return y if type(y) is float else _value(y, self.name)


class _Loss:
    """``point -> float(loss(point))``; picklable when the loss is."""

    def __init__(self, fn: Callable[[Any], Any], name: str) -> None:
        self.fn, self.name = fn, name

    def __call__(self, point: Any) -> float:
        y = self.fn(point)
        return y if type(y) is float else _value(y, self.name)


def loss_caller(fn: Callable[[Any], Any], kind: Kind, name: str = "loss") -> Callable[[Any], float]:
    """``fn`` as a check calls it: one point in, a Python float out; for torch, with autograd
    off (cheaply, when :func:`evaluating` already turned it off in this thread)."""
    if kind == "torch":
        return _TorchLoss(fn, name)
    return _Loss(fn, name)
