"""Structured parameters whose leaves are torch tensors, JAX arrays or CuPy arrays.

``dict(model.named_parameters())``, a module's ``state_dict()``, a dict or list of tensors,
and any JAX pytree (``jax.tree_util``: dicts, lists, tuples, namedtuples, registered custom
nodes such as flax's or equinox's) become one flat working vector in the leaves' library and
on their device (see :class:`._backend.Workspace`). The loss receives the structure rebuilt
around the (perturbed) vector: torch leaves are views of it, so moving one coordinate moves
exactly one leaf's entry. Coordinates are named by path: ``layer1.weight[3, 1]``.

The layout, labels and error messages are :class:`._tree.Tree`'s, computed on host copies of
the leaves; this module only finds the leaves' library, walks pytrees that ``Tree`` does not
know, and rebuilds the user's kind of structure.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ._backend import Kind, WorkingDtype, Workspace, array_kind, host_array
from ._backend import inspect_array as _inspect
from ._tree import Tree, is_tree
from ._typing import FloatArray
from .exceptions import InvalidArgumentError, InvalidTypeError

__all__ = ["Structured", "framework_structure", "leaf_library", "to_host"]


def _framework_leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """``(path, leaf)`` for every torch/JAX/CuPy array in a dict/list/tuple structure."""
    if isinstance(value, Mapping):
        return [
            item
            for k, v in value.items()
            for item in _framework_leaves(v, f"{path}.{k}" if path else str(k))
        ]
    if isinstance(value, (list, tuple)):
        return [item for i, v in enumerate(value) for item in _framework_leaves(v, f"{path}[{i}]")]
    return [(path or "<root>", value)] if array_kind(value) != "numpy" else []


def framework_structure(x: Any) -> bool:
    """Whether ``x`` is a structure (dict, list, tuple, JAX pytree) of torch, JAX or CuPy
    arrays rather than one array or a numpy structure."""
    if isinstance(x, np.ndarray) or array_kind(x) != "numpy":
        return False
    if isinstance(x, (Mapping, list, tuple)):
        return bool(_framework_leaves(x))
    jax = sys.modules.get("jax")
    if jax is None or x is None or isinstance(x, (int, float, complex, str, bytes, np.generic)):
        return False
    leaves = jax.tree_util.tree_leaves(x)
    return any(array_kind(leaf) == "jax" for leaf in leaves) and not (
        len(leaves) == 1 and leaves[0] is x
    )


def _has_numpy_leaf(value: Any) -> str | None:
    if isinstance(value, np.ndarray):
        return "<root>"
    if isinstance(value, Mapping):
        for k, v in value.items():
            found = _has_numpy_leaf(v)
            if found is not None:
                return str(k) if found == "<root>" else f"{k}.{found}"
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _has_numpy_leaf(v)
            if found is not None:
                return f"[{i}]" if found == "<root>" else f"[{i}].{found}"
    return None


def leaf_library(value: Any, name: str = "x") -> tuple[Kind, Any | None]:
    """The one library of a structure's array leaves, and its first such leaf.

    Plain numbers may sit beside the arrays; numpy arrays may not sit beside framework
    arrays, nor may two frameworks or two devices mix.

    Raises:
        InvalidTypeError: leaves from two libraries (or devices), naming one of each.
    """
    leaves = _framework_leaves(value)
    if not leaves:
        return "numpy", None
    first_path, first = leaves[0]
    kind = array_kind(first)
    device = _inspect(first, f"{name}.{first_path}").device
    for path, leaf in leaves[1:]:
        other = array_kind(leaf)
        if other != kind:
            raise InvalidTypeError(
                f"{name}.{first_path} is a {kind} array but {name}.{path} is a {other} array; "
                "a structured parameter's arrays must come from one library"
            )
        where = _inspect(leaf, f"{name}.{path}").device
        if where != device:
            raise InvalidTypeError(
                f"{name}.{first_path} is on {device} but {name}.{path} is on {where}; "
                "a structured parameter's arrays must be on one device"
            )
    numpy_leaf = _has_numpy_leaf(value)
    if numpy_leaf is not None:
        raise InvalidTypeError(
            f"{name}.{numpy_leaf} is a numpy array but {name}.{first_path} is a {kind} array; "
            f"a structured parameter's arrays must come from one library (convert it to {kind})"
        )
    return kind, first


def to_host(value: Any) -> Any:
    """The same dict/list/tuple structure with every framework array a host numpy copy."""
    if isinstance(value, Mapping):
        items = [(k, to_host(v)) for k, v in value.items()]
        kind: Any = type(value)
        try:
            return kind(items)
        except Exception:  # a Mapping that cannot be built from pairs
            return dict(items)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(to_host(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(to_host(v) for v in value)
    return host_array(value)


# -- JAX pytrees ----------------------------------------------------------------------------


def _jax_label(path: tuple[Any, ...]) -> str:
    """``layer1.w`` / ``layers[0].b`` from a ``jax.tree_util`` key path."""
    out = ""
    for entry in path:
        cls = type(entry).__name__
        if cls == "DictKey":
            key = entry.key
            if isinstance(key, str) and key.isidentifier():
                out = f"{out}.{key}" if out else key
            else:
                out = f"{out}[{key!r}]"
        elif cls == "GetAttrKey":
            out = f"{out}.{entry.name}" if out else entry.name
        elif cls == "SequenceKey":
            out = f"{out}[{entry.idx}]"
        else:  # FlattenedIndexKey and anything newer
            out = f"{out}[{getattr(entry, 'key', entry)}]"
    return out or "<root>"


def _jax_flatten(value: Any) -> tuple[dict[str, Any], Any]:
    jax = sys.modules["jax"]
    pairs, treedef = jax.tree_util.tree_flatten_with_path(value)
    return {_jax_label(path): leaf for path, leaf in pairs}, treedef


def _needs_jax(value: Any) -> bool:
    """A structure with containers that ``Tree`` does not walk (registered pytree nodes)."""
    if isinstance(value, Mapping):
        return any(_needs_jax(v) for v in value.values())
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return True  # jax names a namedtuple's leaves by field: layer1.w, not layer1[0]
    if isinstance(value, (list, tuple)):
        return any(_needs_jax(v) for v in value)
    if value is None:
        return True  # an empty pytree node, which Tree would take for a missing value
    return array_kind(value) == "numpy" and not isinstance(value, (int, float, np.ndarray))


# -- the structured parameter -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Structured:
    """A structured parameter of one framework, laid out as one flat working vector.

    Attributes:
        tree: the layout and labels (over host copies of the leaves).
        kind: the leaves' library.
        workspace: the flat working vector in that library, on the leaves' device.
        treedef: for JAX pytrees walked by ``jax.tree_util``, their structure (the tree then
            holds one entry per leaf, keyed by its path); None otherwise.
    """

    tree: Tree
    kind: Kind
    workspace: Workspace
    treedef: Any = None

    @classmethod
    def of(cls, value: Any, name: str = "x", *, dtype: WorkingDtype = "float64") -> Structured:
        """Lay out ``value`` (see the module docstring); its arrays are copied, not kept.

        Raises:
            InvalidTypeError: leaves from several libraries or devices, or that hold no real
                numbers.
            InvalidArgumentError: float64 asked for where the library has none.
        """
        treedef = None
        if "jax" in sys.modules and (not is_tree(value) or _needs_jax(value)):
            flat_leaves, treedef = _jax_flatten(value)
            kind, first = leaf_library(flat_leaves, name)
            if kind != "jax":
                treedef = None
            else:
                value = flat_leaves
        if treedef is None:
            kind, first = leaf_library(value, name)
        if first is None:
            raise InvalidTypeError(
                f"{name} holds no torch, JAX or CuPy array; a numpy structure is checked by "
                "verigrad's own structured parameters"
            )
        tree, flat = Tree.of(to_host(value), name)
        info = _inspect(first, name)
        floats = {leaf.dtype for leaf in tree.leaves if not leaf.number}
        native = "float64" if "float64" in floats or not floats <= _FLOAT32 else "float32"
        like = dataclasses.replace(info, shape=flat.shape, dtype=native)
        ws = Workspace.from_host(flat, like, name, dtype=dtype)
        return cls(tree, kind, ws, treedef)

    def build(self, point: Any) -> Any:
        """The user's structure around a flat point (or a stack of them) of the workspace."""
        return _build(self.tree, self.treedef, point)

    def loss(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``flat point -> fn(structure around it)``; it does not keep the workspace alive."""
        return _StructuredLoss(fn, self.tree, self.treedef)

    def gradient(self, g: Any, name: str = "analytical gradient") -> FloatArray:
        """``g`` (a structure like the parameter's) as a read-only flat float64 host array;
        an error showing both structures when it differs. ``g`` itself is not modified."""
        if self.treedef is not None:
            leaves, treedef = _jax_flatten(g)
            if treedef != self.treedef:
                raise InvalidArgumentError(
                    f"{name} has a different structure than the parameter:\n"
                    f"  parameter: {self.treedef}\n  {name}: {treedef}"
                )
            g = leaves
        return self.tree.gradient(to_host(g), name)

    def label(self, flat_index: int) -> str:
        """``"layer1.weight[3, 1]"`` for a coordinate of the flat vector."""
        return self.tree.label(flat_index)


_FLOAT32 = frozenset({"float32", "float16", "bfloat16"})


def _build(tree: Tree, treedef: Any, point: Any) -> Any:
    built = tree.build(point)
    if treedef is None:
        return built
    jax = sys.modules["jax"]
    return jax.tree_util.tree_unflatten(treedef, list(built.values()))


class _StructuredLoss:
    """``point -> fn(structure around point)``; picklable when the loss is."""

    def __init__(self, fn: Callable[[Any], Any], tree: Tree, treedef: Any) -> None:
        self.fn, self.tree, self.treedef = fn, tree, treedef

    def __call__(self, point: Any) -> Any:
        return self.fn(_build(self.tree, self.treedef, point))
