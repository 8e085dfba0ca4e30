"""Finding the differentiated argument of a call and building ``x -> loss(x, <other args>)``."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._arrays import _real_array
from ._backend import array_kind, inspect_array
from ._structured import framework_structure, leaf_library
from ._tree import is_tree
from .exceptions import InvalidArgumentError, InvalidTypeError

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _underlying(func: Any) -> Any:
    if isinstance(func, (staticmethod, classmethod)):
        return func.__func__
    return func


def _describe(func: Any, sig: inspect.Signature) -> str:
    return f"{getattr(func, '__qualname__', func)!s}{sig}"


class Binder:
    """Resolves ``wrt`` and ``loss`` for one decorated function.

    The signature is computed once. When the function is called as a method (wrapt hands the
    wrapper an ``instance``), positions in ``wrt`` count after ``self``/``cls``, as the caller
    sees them. ``wrt`` may list several arguments: the parameter is then a dict of them by
    name, and the gradient function returns one gradient per argument, in ``wrt``'s order.
    """

    __slots__ = ("_func", "_loss", "_signatures", "_unbound_method", "loss_name", "several", "wrt")

    def __init__(
        self,
        func: Any,
        wrt: int | str | Sequence[int | str],
        loss: Callable[..., Any] | str,
        *,
        kind: str = "auto",
    ) -> None:
        self._func = _underlying(func)
        try:
            full = inspect.signature(self._func)
        except (TypeError, ValueError) as exc:
            raise InvalidTypeError(
                f"cannot read the signature of {func!r} to find the argument wrt={wrt!r}: {exc}"
            ) from exc
        params = list(full.parameters.values())
        bound = full.replace(parameters=params[1:]) if params else full
        self._signatures = (full, bound)
        # A method ("method": a function from a class body whose first parameter is
        # ``self``/``cls``, or a classmethod) receives its instance or class as the first
        # argument; "function" (bound methods, partials, staticmethods...) receives none.
        # "auto" tells them apart by that first parameter.
        if kind == "auto":
            owner = str(getattr(self._func, "__qualname__", "")).rpartition(".")[0]
            self._unbound_method = (
                bool(owner)
                and not owner.endswith("<locals>")
                and bool(params)
                and params[0].name in ("self", "cls")
                and params[0].kind in _POSITIONAL
            )
        else:
            self._unbound_method = kind == "method" and bool(params)
        if self._unbound_method:  # positions count after self/cls, as the caller sees them
            full, params = bound, params[1:]
        self.several = isinstance(wrt, (list, tuple))
        if self.several:
            wrts = tuple(wrt)  # type: ignore[arg-type]
            if not wrts:
                raise InvalidArgumentError("wrt=(): name at least one argument")
            for w in wrts:
                self._validate_wrt(w, full, params)
            if len(set(wrts)) != len(wrts):
                raise InvalidArgumentError(f"wrt={wrt!r} names an argument twice")
            self.wrt: int | str | tuple[int | str, ...] = wrts
        else:
            self._validate_wrt(wrt, full, params)
            self.wrt = wrt  # type: ignore[assignment]
        self.validate_loss(loss)
        self._loss = loss
        self.loss_name = (
            loss if isinstance(loss, str) else getattr(loss, "__qualname__", repr(loss))
        )

    @staticmethod
    def validate_loss(loss: object) -> None:
        """Raise naming ``loss`` unless it is a callable or a method's name."""
        if isinstance(loss, str):
            if not loss.isidentifier():
                raise InvalidArgumentError(f"loss={loss!r} is not an attribute name")
        elif not callable(loss):
            raise InvalidTypeError(
                f"loss must be a callable or the name of a method, not {type(loss).__name__}"
            )

    def _validate_wrt(self, wrt: object, full: inspect.Signature, params: list[Any]) -> None:
        if isinstance(wrt, bool) or not isinstance(wrt, (int, str)):
            raise InvalidTypeError(
                "wrt must be an argument position (int), a name (str), or a tuple of them, "
                f"not {type(wrt).__name__}"
            )
        if isinstance(wrt, str):
            if wrt not in full.parameters:
                raise InvalidArgumentError(
                    f"wrt={wrt!r} names no parameter of {_describe(self._func, full)}"
                )
            kind = full.parameters[wrt].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise InvalidArgumentError(f"wrt={wrt!r} names a *args/**kwargs parameter")
        else:
            n_pos = sum(p.kind in _POSITIONAL for p in params)
            if wrt < 0 or wrt >= n_pos:
                raise InvalidArgumentError(
                    f"wrt={wrt} is not a positional parameter of {_describe(self._func, full)} "
                    f"(it has {n_pos})"
                )

    def _name(self, sig: inspect.Signature, wrt: int | str) -> str:
        if isinstance(wrt, str):
            return wrt
        params = [p for p in sig.parameters.values() if p.kind in _POSITIONAL]
        if wrt >= len(params):
            raise InvalidArgumentError(
                f"wrt={wrt} is not a positional parameter of "
                f"{_describe(self._func, sig)} when called as a method"
            )
        return params[wrt].name

    def gradient(self, returned: Any, x: Any) -> Any:
        """The gradient function's return value in the structure of ``x`` (from :meth:`bind`):
        with several ``wrt``, a tuple of gradients becomes a dict by argument name."""
        if self.several and isinstance(returned, (tuple, list)) and len(returned) == len(x):
            return dict(zip(x, returned, strict=True))
        return returned

    def bind(
        self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, Callable[[Any], Any]]:
        """Return the parameter and a function evaluating the loss at another parameter value."""
        if instance is None and self._unbound_method and args:
            instance, args = args[0], args[1:]
        sig = self._signatures[instance is not None]
        wrts = self.wrt if isinstance(self.wrt, tuple) else (self.wrt,)
        names = [self._name(sig, w) for w in wrts]
        try:
            ba = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(
                f"cannot match the call to {_describe(self._func, sig)}: {exc}"
            ) from exc
        ba.apply_defaults()
        for name in names:
            if name not in ba.arguments:
                raise InvalidArgumentError(
                    f"wrt={self.wrt!r}: the call passed no argument {name!r}"
                )
        loss = self._resolve_loss(instance)
        call_args = list(ba.args)
        call_kwargs = dict(ba.kwargs)
        # Only a positional parameter sits in ``ba.args`` at its index in the signature; a
        # keyword-only one after ``*args`` must be replaced by name, not by position.
        positions = []
        for name in names:
            kind = sig.parameters[name].kind
            position = list(sig.parameters).index(name) if kind in _POSITIONAL else None
            positions.append(
                position if position is not None and position < len(call_args) else None
            )
        if self.several:
            x = {name: ba.arguments[name] for name in names}
            return x, _AtArguments(
                loss, tuple(call_args), call_kwargs, tuple(positions), tuple(names)
            )
        name, position = names[0], positions[0]
        x = ba.arguments[name]
        if position is not None:
            before, after = tuple(call_args[:position]), tuple(call_args[position + 1 :])
            return x, _AtPosition(loss, before, after, call_kwargs, name)
        return x, _AtKeyword(loss, tuple(call_args), call_kwargs, name)

    def _resolve_loss(self, instance: Any) -> Callable[..., Any]:
        loss = self._loss
        if isinstance(loss, str):
            if instance is None:
                raise InvalidArgumentError(
                    f"loss={loss!r} names an attribute of the instance, but "
                    f"{getattr(self._func, '__qualname__', self._func)} was called without one "
                    "(not as a method)"
                )
            try:
                resolved = getattr(instance, loss)
            except AttributeError as exc:
                raise InvalidArgumentError(
                    f"loss={loss!r}: {type(instance).__name__} has no attribute {loss!r}"
                ) from exc
            if not callable(resolved):
                raise InvalidTypeError(
                    f"loss={loss!r}: {type(instance).__name__}.{loss} is not callable"
                )
            return resolved  # type: ignore[no-any-return]
        if instance is not None and self._same_class_body(loss):
            # A plain function from the same class body (``loss=loss`` written under the
            # method) is a method too: bind it like Python would.
            return loss.__get__(instance, type(instance))  # type: ignore[no-any-return]
        return loss

    def _same_class_body(self, loss: Any) -> bool:
        if not inspect.isfunction(loss):
            return False
        owner = str(getattr(self._func, "__qualname__", "")).rpartition(".")[0]
        return bool(owner) and loss.__qualname__.rpartition(".")[0] == owner


class _AtPosition:
    """``point -> loss(*before, point, *after, **kwargs)``; picklable (for process pools)."""

    def __init__(
        self,
        loss: Callable[..., Any],
        before: tuple[Any, ...],
        after: tuple[Any, ...],
        kwargs: dict[str, Any],
        param: str = "x",
    ) -> None:
        self.loss, self.before, self.after, self.kwargs = loss, before, after, kwargs
        self.param = param  # the argument's name, for messages

    def __call__(self, point: Any) -> Any:
        return self.loss(*self.before, point, *self.after, **self.kwargs)


class _AtArguments:
    """``point -> loss(...)`` with several arguments replaced from the dict ``point`` (by
    position where they were passed positionally, else by name); picklable."""

    def __init__(
        self,
        loss: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        positions: tuple[int | None, ...],
        names: tuple[str, ...],
    ) -> None:
        self.loss, self.args, self.kwargs = loss, args, kwargs
        self.positions, self.names = positions, names
        self.param = ""  # leaves are named by argument name alone

    def __call__(self, point: Any) -> Any:
        args, kwargs = list(self.args), dict(self.kwargs)
        for position, name in zip(self.positions, self.names, strict=True):
            if position is None:
                kwargs[name] = point[name]
            else:
                args[position] = point[name]
        return self.loss(*args, **kwargs)


class _AtKeyword:
    """``point -> loss(*args, **kwargs, name=point)``; picklable (for process pools)."""

    def __init__(
        self, loss: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str
    ) -> None:
        self.loss, self.args, self.kwargs, self.name = loss, args, kwargs, name
        self.param = name

    def __call__(self, point: Any) -> Any:
        return self.loss(*self.args, **{**self.kwargs, self.name: point})


def validate_point(value: Any, name: str = "x") -> None:
    """Raise naming ``name`` unless ``value`` is a parameter verigrad can check: real numbers,
    as an array-like or a structure (dicts, lists, tuples) of them, or torch, JAX or CuPy
    arrays and structures of them. Arrays are not copied."""
    if array_kind(value) != "numpy":
        inspect_array(value, name)
    elif framework_structure(value):
        leaf_library(value, name)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            validate_point(item, f"{name}[{key!r}]")
    elif isinstance(value, (list, tuple)) and is_tree(value):
        for k, item in enumerate(value):
            validate_point(item, f"{name}[{k}]")
    else:
        _real_array(value, name, "the parameter")


# -- the snapshot of the differentiated argument ------------------------------------------------

#: Values that cannot change after the call: handed over as they are.
_IMMUTABLE = (int, float, complex, bool, str, bytes, type(None), np.generic)


def snapshot(value: Any) -> Any:
    """A private copy of a differentiated argument, taken before the gradient function runs.

    The check then runs at the point the gradient was computed at, even when the gradient
    function updates its parameter in place afterwards (a fused gradient-and-update step) or
    another thread writes into it (Hogwild). Arrays are copied (dtype, shape, subclass and
    memory layout kept); structured parameters (nested dicts, lists, tuples, namedtuples of
    arrays) are rebuilt around copies of their leaves; numbers are immutable and kept. A torch
    tensor is copied detached from its graph, on its device (the caller's graph and ``.grad``
    are never reached); a JAX array is immutable and kept; a CuPy array is copied on its
    device. Any other object is deep-copied; one that cannot be copied is kept as it is, and
    the check reads it as before.
    """
    if isinstance(value, np.ndarray):
        return value.copy(order="K")
    library = array_kind(value)
    if library == "torch":
        return value.detach().clone()
    if library == "jax":
        return value
    if library == "cupy":
        return value.copy()
    if isinstance(value, _IMMUTABLE):
        return value
    if isinstance(value, Mapping):
        items = [(k, snapshot(v)) for k, v in value.items()]
        mapping: Any = type(value)
        if mapping is dict:
            return dict(items)
        try:
            return mapping(items)
        except Exception:  # a Mapping type that cannot be built from pairs
            return dict(items)
    if isinstance(value, (list, tuple)):
        copied = [snapshot(v) for v in value]
        kind = type(value)
        if kind is list:
            return copied
        if kind is tuple:
            return tuple(copied)
        try:
            if issubclass(kind, tuple) and hasattr(kind, "_fields"):  # a namedtuple
                return kind(*copied)
            return kind(copied)
        except Exception:  # a subclass with another constructor
            return copied if isinstance(value, list) else tuple(copied)
    try:
        return copy.deepcopy(value)
    except Exception:  # an object that refuses to be copied: the check reads it live
        return value
