"""Turning user values into float64 arrays and scalars, with errors that name the culprit."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._typing import FloatArray
from .exceptions import InvalidArgumentError, InvalidTypeError


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


_NOTHING = object()


def _as_float64(arr: np.ndarray, name: str, what: str) -> np.ndarray:
    """``arr.astype(float64)``, refusing values beyond float64's range (10**400, long doubles)."""
    try:
        with np.errstate(over="raise"):
            return arr.astype(np.float64)
    except (OverflowError, FloatingPointError) as exc:
        raise InvalidArgumentError(
            f"{name} holds a value too large for float64 ({exc}); {what} must hold real "
            "numbers below 1.8e308 in magnitude"
        ) from exc


def _real_array(value: Any, name: str, what: str) -> np.ndarray:
    """``np.asarray(value)`` that refuses non-numeric, boolean and complex data."""
    if value is None:
        raise InvalidTypeError(f"{name} is None; {what} must be an array of real numbers")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged lists and the like; nothing else (a
        # timeout or KeyboardInterrupt raised during the conversion propagates as it is)
        raise InvalidTypeError(f"{name} cannot be converted to an array: {exc}") from exc
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.itemsize > 8:  # long double: may lie beyond float64's range
        return _as_float64(arr, name, what)
    if kind in "iuf":
        return arr
    if kind == "b":
        raise InvalidTypeError(
            f"{name} has dtype bool; {what} must hold real numbers (cast it to float)"
        )
    if kind == "c":
        raise InvalidTypeError(
            f"{name} has complex dtype {arr.dtype}; verigrad checks gradients of real parameters"
        )
    if kind == "O":
        # astype would parse numeric strings ("1.5"), turn True into 1.0 and None into NaN:
        # refuse all three.
        odd = next(
            (v for v in arr.flat if v is None or isinstance(v, (str, bytes, bool, np.bool_))),
            _NOTHING,
        )
        if odd is not _NOTHING:
            raise InvalidTypeError(
                f"{name} holds a {type(odd).__name__} ({odd!r}); {what} must hold real numbers"
            )
        try:
            return _as_float64(arr, name, what)
        except InvalidArgumentError:
            raise
        except (TypeError, ValueError) as exc:
            raise InvalidTypeError(
                f"{name} holds Python objects that are not real numbers ({exc})"
            ) from exc
    raise InvalidTypeError(f"{name} has dtype {arr.dtype}; {what} must hold real numbers")


def working_copy(x: Any, name: str = "x") -> FloatArray:
    """A private, C-contiguous float64 copy of the parameter ``x``.

    Integer and float32 parameters are checked as float64; the caller's array is never
    referenced again, so nothing a check does can reach it.
    """
    arr = _real_array(x, name, "the parameter")
    return np.array(arr, dtype=np.float64, order="C", copy=True)


#: Above this many entries a float64 gradient is not copied for the check (a read-only view).
COPY_MAX = 1 << 16


def gradient_array(g: Any, shape: tuple[int, ...], name: str = "analytical") -> FloatArray:
    """The analytical gradient as a read-only float64 array, checked against the parameter shape:
    a copy, or above :data:`COPY_MAX` entries of float64 a read-only view of it."""
    if g is None:
        raise InvalidTypeError(
            f"{name} is None: the gradient function returned nothing (a missing `return`?)"
        )
    arr = _real_array(g, name, "a gradient")
    if arr.shape != shape:
        hint = ""
        if arr.size == int(np.prod(shape)):
            hint = f" (same number of elements: reshape it with .reshape({shape}))"
        raise InvalidArgumentError(
            f"{name} has shape {arr.shape} but the parameter has shape {shape}{hint}"
        )
    if arr.size > COPY_MAX and arr.dtype == np.float64:
        # A read-only view: a copy of a large gradient would cost as much memory as the
        # parameter, and the check only reads it.
        out = arr.view()
    else:
        out = np.array(arr, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out


def loss_value(value: Any, name: str = "loss") -> float:
    """The scalar a loss returned, as a Python float (NaN and inf are kept for the verdict)."""
    if type(value) is float:
        return value
    if type(value) is np.float64:  # what np.sum, np.dot and friends return
        return float(value)
    if isinstance(value, (bool, np.bool_)):
        raise InvalidTypeError(f"{name} returned a bool ({value}); it must return a real number")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range: as good as infinite
            return math.inf if value > 0 else -math.inf
    if value is None:
        raise InvalidTypeError(
            f"{name} returned None; it must return a real number (missing return?)"
        )
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # only a failed conversion says "not a number"
        raise InvalidTypeError(f"{name} returned {_describe(value)}, not a real number") from exc
    if arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "c":
            raise InvalidTypeError(f"{name} returned a complex value ({value!r}); it must be real")
        raise InvalidTypeError(f"{name} returned {_describe(value)}, not a real number")
    if arr.size != 1:
        raise InvalidArgumentError(
            f"{name} must return a scalar, but returned an array of shape {arr.shape}; "
            "a gradient check needs one number per parameter point (did you forget a sum or mean?)"
        )
    return float(arr.reshape(()))
