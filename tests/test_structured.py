"""Structured parameters of torch tensors and JAX pytrees: one flat vector, leaves by path."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import pytest

from verigrad._backend import array_kind, host_array
from verigrad._structured import Structured, leaf_library, to_host
from verigrad._tree import Tree
from verigrad.exceptions import InvalidArgumentError, InvalidTypeError


def snapshot(params: dict[str, Any]) -> dict[str, bytes]:
    return {k: host_array(v).tobytes() for k, v in params.items()}


class TestDottedKeys:
    def test_torch_style_keys_read_as_paths(self) -> None:
        """Keys such as "layer1.weight" and "0.bias" name coordinates as paths."""
        tree, _ = Tree.of({"layer1.weight": np.zeros((4, 2)), "0.bias": np.zeros(3)})
        assert tree.label(7) == "layer1.weight[3, 1]"
        assert tree.label(9) == "0.bias[1]"

    def test_other_string_keys_stay_quoted(self) -> None:
        """A key that is not a dotted name keeps its quoted form."""
        tree, _ = Tree.of({"a b": np.zeros(2)})
        assert tree.label(1) == "['a b'][1]"


class TestTorch:
    @pytest.fixture
    def model(self) -> Any:
        torch = pytest.importorskip("torch")
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))

    def test_named_parameters_are_labelled_by_path(self, model: Any) -> None:
        """Coordinates of dict(model.named_parameters()) are named like the parameters."""
        s = Structured.of(dict(model.named_parameters()))
        assert s.kind == "torch"
        assert s.tree.size == 21
        assert [s.label(i) for i in (5, 12, 16, 20)] == [
            "0.weight[1, 2]",
            "0.bias[0]",
            "2.weight[0, 0]",
            "2.bias[0]",
        ]

    def test_leaves_are_tensors_that_move_one_entry(self, model: Any) -> None:
        """The loss gets tensors; moving one coordinate moves that leaf's entry only."""
        params = dict(model.named_parameters())
        before = snapshot(params)
        s = Structured.of(params)
        built = s.build(s.workspace.point)
        assert all(array_kind(v) == "torch" for v in built.values())
        assert not any(v.requires_grad for v in built.values())
        start = {k: host_array(v).copy() for k, v in built.items()}
        s.workspace.set(13, 100.0)  # 0.bias[1]
        for k, v in s.build(s.workspace.point).items():
            moved = host_array(v) != start[k]
            assert moved.sum() == (1 if k == "0.bias" else 0)
        s.workspace.reset(13)
        assert snapshot(params) == before
        assert all(p.grad is None and p.requires_grad for p in params.values())

    def test_a_loss_through_the_model_functionally(self, model: Any) -> None:
        """A loss that calls the model with the built parameters matches the model."""
        torch = pytest.importorskip("torch")
        x = torch.ones(2, 3, dtype=torch.float64)
        s = Structured.of(dict(model.named_parameters()))
        loss = s.loss(lambda p: torch.func.functional_call(model.double(), p, (x,)).sum())
        with s.workspace.evaluating():
            assert float(loss(s.workspace.point)) == pytest.approx(float(model(x).sum()))

    def test_state_dict_in_its_own_dtype(self, model: Any) -> None:
        """A float32 state_dict is checked in float32 when asked for its native dtype."""
        s = Structured.of(model.state_dict(), dtype="native")
        assert s.workspace.dtype == np.float32

    def test_gradient_of_tensors_in_a_graph(self, model: Any) -> None:
        """A gradient structure of tensors (even in a graph) flattens like the parameter."""
        torch = pytest.importorskip("torch")
        params = dict(model.named_parameters())
        s = Structured.of(params)
        g = {k: v * 2 for k, v in params.items()}  # tensors that require grad
        flat = s.gradient(g)
        want = np.concatenate([2 * host_array(v).reshape(-1) for v in params.values()])
        np.testing.assert_array_equal(flat, want.astype(np.float64))
        with pytest.raises(InvalidArgumentError, match=r"missing \['2.bias'\]"):
            s.gradient({k: v for k, v in g.items() if k != "2.bias"})
        del torch

    def test_mixed_libraries_are_refused_by_name(self) -> None:
        """A numpy array beside a tensor names both leaves."""
        torch = pytest.importorskip("torch")
        with pytest.raises(InvalidTypeError, match=r"^p.b is a numpy array but p.W is a torch"):
            Structured.of({"W": torch.zeros(2), "b": np.zeros(2)}, "p")

    def test_numbers_may_sit_beside_tensors(self) -> None:
        """A plain number in a tensor structure is a leaf of its own."""
        torch = pytest.importorskip("torch")
        s = Structured.of({"W": torch.zeros(2), "scale": 1.5})
        assert s.build(s.workspace.point)["scale"] == 1.5
        assert leaf_library({"a": 1.0}) == ("numpy", None)

    def test_to_host_keeps_the_structure(self) -> None:
        """Host copies keep dicts, lists, tuples and namedtuples as they were."""
        torch = pytest.importorskip("torch")
        P = collections.namedtuple("P", "w b")
        out = to_host({"a": [torch.ones(1), (torch.zeros(1),)], "p": P(torch.ones(1), 2.0)})
        assert isinstance(out["a"][0], np.ndarray)
        assert isinstance(out["a"][1], tuple)
        assert isinstance(out["p"], P)
        assert out["p"].b == 2.0


class TestJax:
    @pytest.fixture
    def jax(self) -> Any:
        return pytest.importorskip("jax")

    def test_pytree_labels_and_rebuild(self, jax: Any) -> None:
        """A pytree with namedtuples and None is labelled by field and rebuilt as given."""
        P = collections.namedtuple("P", "w b")
        jnp = jax.numpy
        params = {"layer1": P(jnp.ones((2, 2)), jnp.zeros(2)), "layer2": [jnp.ones(3)], "z": None}
        s = Structured.of(params, dtype="native")
        assert s.treedef is not None
        labels = [s.label(i) for i in range(s.tree.size)]
        assert labels[:3] == ["layer1.w[0, 0]", "layer1.w[0, 1]", "layer1.w[1, 0]"]
        assert labels[4:] == ["layer1.b[0]", "layer1.b[1]", "layer2[0][0]", "layer2[0][1]",
                              "layer2[0][2]"]  # fmt: skip
        built = s.build(s.workspace.set(5, 9.0))
        assert isinstance(built["layer1"], P)
        assert built["z"] is None
        assert host_array(built["layer1"].b).tolist() == [0.0, 9.0]

    def test_jit_loss_over_a_pytree(self, jax: Any) -> None:
        """A jit-compiled loss of a pytree runs on the built structure."""
        jnp = jax.numpy
        params = {"w": jnp.arange(3.0), "b": jnp.float32(1.0)}
        loss = jax.jit(lambda p: (p["w"] ** 2).sum() + p["b"])
        s = Structured.of(params, dtype="native")
        assert float(s.loss(loss)(s.workspace.point)) == 6.0

    def test_gradient_structure_mismatch(self, jax: Any) -> None:
        """A gradient pytree of another structure is refused showing both."""
        jnp = jax.numpy
        P = collections.namedtuple("P", "w b")
        s = Structured.of({"p": P(jnp.ones(2), jnp.ones(1))}, dtype="native")
        assert s.gradient({"p": P(jnp.ones(2), jnp.ones(1))}).tolist() == [1.0, 1.0, 1.0]
        with pytest.raises(InvalidArgumentError, match="different structure"):
            s.gradient({"p": (jnp.ones(2), jnp.ones(1))})
