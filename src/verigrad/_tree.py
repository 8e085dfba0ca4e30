"""Structured parameters: nested dicts, lists and tuples of arrays and numbers, as one vector.

A check runs on one flat float64 vector. :class:`Tree` records where each leaf of a structured
parameter lives in that vector, rebuilds the structure around a (perturbed) vector for the
loss, flattens a gradient of the same structure, and names coordinates by their leaf
(``"layer2.W[1, 0]"``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import _real_array
from ._typing import FloatArray
from .compare import relative_error
from .exceptions import InvalidArgumentError, InvalidTypeError

__all__ = ["Leaf", "Tree", "TreeLoss", "is_tree"]


def is_tree(value: object) -> bool:
    """Whether ``value`` is a structured parameter rather than one array-like.

    Mappings always are. A list or tuple is one when it holds an array, a mapping, or another
    structured list or tuple; a (nested) list of plain numbers stays an array-like, as numpy
    reads it.
    """
    if isinstance(value, Mapping):
        return True
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, (np.ndarray, Mapping)) or is_tree(v) for v in value)
    return False


@dataclass(frozen=True)
class Leaf:
    """One array (or number) of a structured parameter, and its place in the flat vector."""

    path: str
    shape: tuple[int, ...]
    offset: int
    dtype: str
    number: bool  # a Python number, handed to the loss as a Python scalar

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def describe(self) -> str:
        return "float" if self.number else str(self.shape)


#: A key that already reads as a path: "w", "layer1.weight", "0.bias" (torch's
#: named_parameters() and state_dict()), "layers[0].b" (a flattened JAX pytree).
_PATH_KEY = re.compile(r"(?:[^\W\d]\w*|\d+)(?:\[\d+\])*(?:\.(?:[^\W\d]\w*|\d+)(?:\[\d+\])*)*")


def _key_path(prefix: str, key: object) -> str:
    if isinstance(key, str) and _PATH_KEY.fullmatch(key):
        return f"{prefix}.{key}" if prefix else key
    return f"{prefix}[{key!r}]"


def _rebuild(kind: type, items: list[Any]) -> Any:
    if kind is list:
        return items
    if kind is tuple:
        return tuple(items)
    if issubclass(kind, tuple) and hasattr(kind, "_fields"):  # a namedtuple
        return kind(*items)
    return kind(items)


@dataclass(frozen=True)
class Tree:
    """The layout of a structured parameter (see the module docstring)."""

    spec: Any
    leaves: tuple[Leaf, ...]
    size: int

    @classmethod
    def of(cls, value: Any, name: str = "x") -> tuple[Tree, FloatArray]:
        """The layout of ``value`` and a private flat float64 copy of its numbers."""
        leaves: list[Leaf] = []
        parts: list[FloatArray] = []
        offset = 0

        def walk(node: Any, path: str) -> Any:
            nonlocal offset
            if isinstance(node, Mapping):
                keys = list(node)
                return ("map", type(node), keys, [walk(node[k], _key_path(path, k)) for k in keys])
            if isinstance(node, (list, tuple)) and is_tree(node):
                kind = type(node)
                return ("seq", kind, [walk(v, f"{path}[{i}]") for i, v in enumerate(node)])
            if not name or not path:
                where = path or name
            else:
                where = f"{name}{path}" if path.startswith("[") else f"{name}.{path}"
            arr = _real_array(node, where, "a parameter")
            number = isinstance(node, (int, float)) and not isinstance(node, bool)
            leaf = Leaf(path or "<root>", arr.shape, offset, str(arr.dtype), number)
            leaves.append(leaf)
            parts.append(np.asarray(arr, dtype=np.float64).reshape(-1))
            offset += leaf.size
            return ("leaf", len(leaves) - 1)

        spec = walk(value, "")
        flat = np.concatenate(parts) if parts else np.empty(0)
        flat = np.array(flat, dtype=np.float64, order="C", copy=True)
        return cls(spec, tuple(leaves), offset), flat

    # -- the structure around a vector --------------------------------------------------------

    def build(self, flat: Any) -> Any:
        """The structure with leaves read from ``flat`` (shape ``(..., size)``): array leaves
        are views, numbers are Python scalars (arrays when ``flat`` has a batch axis)."""
        batch = flat.shape[:-1]

        def make(spec: Any) -> Any:
            tag = spec[0]
            if tag == "leaf":
                leaf = self.leaves[spec[1]]
                part = flat[..., leaf.offset : leaf.offset + leaf.size]
                if leaf.number:
                    return part[..., 0] if batch else part[0].item()
                return part.reshape(batch + leaf.shape)
            if tag == "map":
                _, kind, keys, children = spec
                items = [(k, make(c)) for k, c in zip(keys, children, strict=True)]
                return dict(items) if kind is dict else _rebuild_map(kind, items)
            _, kind, children = spec
            return _rebuild(kind, [make(c) for c in children])

        return make(self.spec)

    def gradient(self, g: Any, name: str = "analytical gradient") -> FloatArray:
        """``g`` flattened like the parameter; an error showing both structures if it differs."""
        parts: list[FloatArray] = []

        def mismatch(detail: str) -> InvalidArgumentError:
            return InvalidArgumentError(
                f"{name} has a different structure than the parameter ({detail}):\n"
                f"  parameter: {self.describe()}\n"
                f"  {name}: {_describe_value(g)}"
            )

        def walk(spec: Any, node: Any, path: str) -> None:
            tag = spec[0]
            at = f" at {path}" if path else ""
            if tag == "leaf":
                leaf = self.leaves[spec[1]]
                if isinstance(node, Mapping) or is_tree(node):
                    raise mismatch(f"a container where the parameter has {leaf.path}")
                if node is None:
                    raise InvalidTypeError(
                        f"{name} is None at {leaf.path}: the gradient function left it unset"
                    )
                arr = _real_array(node, f"{name} at {leaf.path}", "a gradient")
                if arr.shape != leaf.shape:
                    raise mismatch(f"{leaf.path} has shape {arr.shape}, the parameter {leaf.shape}")
                parts.append(np.asarray(arr, dtype=np.float64).reshape(-1))
                return
            if tag == "map":
                _, _, keys, children = spec
                if not isinstance(node, Mapping):
                    raise mismatch(f"a {type(node).__name__}{at} where the parameter has a mapping")
                if set(node) != set(keys):
                    missing = [k for k in keys if k not in node]
                    extra = [k for k in node if k not in keys]
                    parts_ = [
                        f"missing {missing}" if missing else "",
                        f"extra {extra}" if extra else "",
                    ]
                    raise mismatch(f"keys{at}: " + ", ".join(p for p in parts_ if p))
                for k, c in zip(keys, children, strict=True):
                    walk(c, node[k], _key_path(path, k))
                return
            _, _, children = spec
            if not isinstance(node, (list, tuple)):
                raise mismatch(f"a {type(node).__name__}{at} where the parameter has a sequence")
            if len(node) != len(children):
                raise mismatch(f"{len(node)} entries{at} where the parameter has {len(children)}")
            for i, (c, v) in enumerate(zip(children, node, strict=True)):
                walk(c, v, f"{path}[{i}]")

        if g is None:
            raise InvalidTypeError(
                f"{name} is None: the gradient function returned nothing (a missing `return`?)"
            )
        walk(self.spec, g, "")
        out = np.concatenate(parts) if parts else np.empty(0)
        out = np.array(out, dtype=np.float64, copy=True)
        out.setflags(write=False)
        return out

    # -- naming coordinates -------------------------------------------------------------------

    def locate(self, flat_index: int) -> tuple[Leaf, tuple[int, ...]]:
        """The leaf holding coordinate ``flat_index`` of the flat vector, and its index there."""
        offsets = [leaf.offset for leaf in self.leaves]
        k = int(np.searchsorted(offsets, flat_index, side="right")) - 1
        # Empty leaves share their offset with the next one: skip to the leaf that holds it.
        while self.leaves[k].size == 0 or flat_index >= self.leaves[k].offset + self.leaves[k].size:
            k += 1
        leaf = self.leaves[k]
        local = flat_index - leaf.offset
        index = tuple(int(c) for c in np.unravel_index(local, leaf.shape)) if leaf.shape else ()
        return leaf, index

    def label(self, flat_index: int) -> str:
        """``"layer2.W[1, 0]"`` for a coordinate of the flat vector."""
        leaf, index = self.locate(flat_index)
        return f"{leaf.path}[{', '.join(map(str, index))}]" if index else leaf.path

    def describe(self) -> str:
        """The structure with each leaf's shape: ``{'W': (3, 2), 'b': (2,)}``."""

        def show(spec: Any) -> str:
            tag = spec[0]
            if tag == "leaf":
                leaf: Leaf = self.leaves[spec[1]]
                return leaf.describe()
            if tag == "map":
                _, _, keys, children = spec
                inner = ", ".join(f"{k!r}: {show(c)}" for k, c in zip(keys, children, strict=True))
                return "{" + inner + "}"
            _, kind, children = spec
            inner = ", ".join(show(c) for c in children)
            return (
                f"({inner}{',' if len(children) == 1 else ''})"
                if kind is not list
                else f"[{inner}]"
            )

        return show(self.spec)

    def leaf_errors(
        self, numerical: FloatArray, analytical: FloatArray, checked: np.ndarray | None
    ) -> tuple[tuple[str, float], ...]:
        """Each leaf's relative error over its coordinates that were estimated. ``numerical``
        holds the estimates of the flat indices ``checked`` (sorted), or of every coordinate
        when ``checked`` is None."""
        out = []
        flat = analytical.reshape(-1)
        for leaf in self.leaves:
            start, stop = leaf.offset, leaf.offset + leaf.size
            if checked is None:
                num, ana = numerical.reshape(-1)[start:stop], flat[start:stop]
            else:
                lo, hi = np.searchsorted(checked, (start, stop))
                if leaf.size and lo == hi:
                    continue
                num, ana = numerical[lo:hi], flat[checked[lo:hi]]
            out.append((leaf.path, relative_error(num, ana)))
        return tuple(out)


def _rebuild_map(kind: type, items: list[tuple[Any, Any]]) -> Any:
    try:
        return kind(items)
    except Exception:  # a Mapping type that cannot be built from pairs: hand a dict
        return dict(items)


def _describe_value(value: Any) -> str:
    """A structure as the user gave it, with shapes for leaves (for error messages)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_describe_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) and (is_tree(value) or not value):
        inner = ", ".join(_describe_value(v) for v in value)
        return (
            f"[{inner}]"
            if isinstance(value, list)
            else f"({inner}{',' if len(value) == 1 else ''})"
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "float"
    if value is None:
        return "None"
    try:
        return str(np.shape(value))
    except Exception:
        return type(value).__name__


class TreeLoss:
    """``flat -> loss(structure around flat)``; picklable when the loss is."""

    def __init__(self, fn: Any, tree: Tree) -> None:
        self.fn, self.tree = fn, tree

    def __call__(self, flat: Any) -> Any:
        return self.fn(self.tree.build(flat))
