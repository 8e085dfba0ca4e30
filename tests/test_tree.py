"""Structured parameters: nested dicts, lists and tuples of arrays and numbers."""

from __future__ import annotations

import pickle
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import verigrad
from verigrad._tree import Tree, TreeLoss, is_tree

RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 3))
Y = RNG.normal(size=(20, 2))


def make_params() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    return {
        "layer1": {"W": rng.normal(size=(3, 4)), "b": np.zeros(4)},
        "layer2": {"W": rng.normal(size=(4, 2)), "b": 0.1 * np.ones(2)},
        "scale": 1.5,
    }


def _forward(p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    h = np.tanh(X @ p["layer1"]["W"] + p["layer1"]["b"])
    return h, p["scale"] * (h @ p["layer2"]["W"] + p["layer2"]["b"])


def mlp_loss(p: dict[str, Any]) -> float:
    _, out = _forward(p)
    return float(0.5 * np.sum((out - Y) ** 2) / len(X))


def mlp_grad(p: dict[str, Any], bug: str | None = None) -> dict[str, Any]:
    h, out = _forward(p)
    d = (out - Y) / len(X)
    s = p["scale"]
    g2w = s * h.T @ d
    g2b = s * d.sum(0)
    dh = s * d @ p["layer2"]["W"].T * (1 - h**2)
    g = {
        "layer1": {"W": X.T @ dh, "b": dh.sum(0)},
        "layer2": {"W": g2w, "b": g2b},
        "scale": float(np.sum(d * (h @ p["layer2"]["W"] + p["layer2"]["b"]))),
    }
    if bug == "sign":
        g["layer2"]["W"] = -g2w
    elif bug == "factor":
        g["layer1"]["b"] = 2 * g["layer1"]["b"]
    return g


class TestIsTree:
    def test_mappings_and_sequences_of_arrays_are_structured(self) -> None:
        """Dicts, and lists/tuples holding arrays or dicts, are structured parameters."""
        assert is_tree({"w": 1.0})
        assert is_tree([np.zeros(2), np.zeros(3)])
        assert is_tree((np.zeros(2),))
        assert is_tree([[np.zeros(2)], [np.zeros(1)]])

    def test_nested_lists_of_numbers_stay_array_likes(self) -> None:
        """A (nested) list of plain numbers is one array, as numpy reads it."""
        assert not is_tree([1.0, 2.0])
        assert not is_tree([[1.0, 2.0], [3.0, 4.0]])
        assert not is_tree(np.zeros(3))
        assert not is_tree(2.0)


class TestTree:
    def test_flat_vector_holds_the_leaves_in_order(self) -> None:
        """The flat copy concatenates the leaves depth first, in the order given."""
        tree, flat = Tree.of({"a": np.array([1.0, 2.0]), "b": [np.array([[3.0]]), 4.0]})
        assert flat.tolist() == [1.0, 2.0, 3.0, 4.0]
        assert [leaf.path for leaf in tree.leaves] == ["a", "b[0]", "b[1]"]
        assert tree.describe() == "{'a': (2,), 'b': [(1, 1), float]}"

    def test_build_gives_views_and_python_numbers(self) -> None:
        """Rebuilt array leaves are views of the vector; numbers come back as Python floats."""
        tree, flat = Tree.of({"w": np.zeros((2, 2)), "s": 1.5})
        built = tree.build(flat)
        assert isinstance(built["s"], float)
        assert built["s"] == 1.5
        flat[0] = 7.0
        assert built["w"][0, 0] == 7.0

    def test_build_keeps_tuples_and_namedtuples(self) -> None:
        """Tuples come back as tuples, namedtuples as the same namedtuple type."""
        pair = namedtuple("pair", "w b")
        tree, flat = Tree.of((pair(np.ones(2), 0.5), [np.zeros(1)]))
        built = tree.build(flat)
        assert type(built) is tuple
        assert type(built[0]) is pair
        assert built[0].b == 0.5
        assert type(built[1]) is list

    def test_batch_axis_is_kept_in_front(self) -> None:
        """A batch of flat vectors gives leaves with the batch axis first."""
        tree, flat = Tree.of({"w": np.zeros((2, 3)), "s": 1.0})
        built = tree.build(np.stack([flat, flat + 1]))
        assert built["w"].shape == (2, 2, 3)
        assert built["s"].tolist() == [1.0, 2.0]

    def test_labels_name_the_leaf_and_its_index(self) -> None:
        """Flat indices map to ``path[index]`` across leaves, skipping empty ones."""
        tree, _ = Tree.of({"a": np.zeros(2), "e": np.zeros(0), "W": np.zeros((2, 3)), "s": 1.0})
        assert tree.label(0) == "a[0]"
        assert tree.label(2) == "W[0, 0]"
        assert tree.label(7) == "W[1, 2]"
        assert tree.label(8) == "s"

    def test_odd_keys_are_quoted(self) -> None:
        """Keys that are not identifiers appear in brackets."""
        tree, _ = Tree.of({"my layer": {0: np.zeros(1)}})
        assert tree.leaves[0].path == "['my layer'][0]"

    def test_tree_loss_pickles(self) -> None:
        """The loss wrapper pickles with its layout (for process-pool executors)."""
        tree, flat = Tree.of({"w": np.arange(3.0)})
        again = pickle.loads(pickle.dumps(TreeLoss(_sum_w, tree)))
        assert again(flat) == 3.0


def _sum_w(p: dict[str, Any]) -> float:
    return float(np.sum(p["w"]))


class TestCheckStructured:
    def test_correct_gradient_of_a_two_layer_network_passes(self) -> None:
        """A dict-of-dicts gradient that is right passes, with tiny per-leaf errors."""
        p = make_params()
        r = verigrad.check_gradient(mlp_loss, p, mlp_grad(p))
        assert r.passed
        assert r.size == 27
        assert [path for path, _ in r.leaf_errors] == [
            "layer1.W",
            "layer1.b",
            "layer2.W",
            "layer2.b",
            "scale",
        ]
        assert max(err for _, err in r.leaf_errors) < 1e-8

    def test_a_wrong_leaf_is_named_with_its_error(self) -> None:
        """A sign error in layer2.W shows as that leaf's error 1.0, the others near zero."""
        p = make_params()
        r = verigrad.check_gradient(mlp_loss, p, mlp_grad(p, bug="sign"))
        assert r.verdict == "mismatch"
        errors = dict(r.leaf_errors)
        assert errors["layer2.W"] == pytest.approx(1.0)
        assert errors["layer2.b"] < 1e-8
        text = r.summary()
        assert "per parameter: layer1.W: " in text
        assert "layer2.W: 1," in text
        assert (
            "hint: layer2.W: analytical = -1 x numerical in every coordinate: a flipped sign"
            in (text)
        )
        assert r.worst[0].index[0] in range(16, 24)  # layer2.W's place in the flat vector
        assert "layer2.W[" in text

    def test_a_missing_factor_is_named_by_leaf(self) -> None:
        """An extra factor 2 in layer1.b is reported as such, for that leaf only."""
        p = make_params()
        r = verigrad.check_gradient(mlp_loss, p, mlp_grad(p, bug="factor"))
        assert r.verdict == "mismatch"
        assert "layer1.b: analytical = 2 x numerical" in (r.hint() or "")

    def test_log_event_has_leaf_fields(self) -> None:
        """The event names the worst leaf, its index in the leaf, and per-leaf errors."""
        p = make_params()
        event = verigrad.check_gradient(mlp_loss, p, mlp_grad(p, bug="sign")).to_event()
        assert event["worst_leaf"] == "layer2.W"
        assert len(event["worst_index"]) == 2
        assert set(event["leaf_errors"]) == {
            "layer1.W",
            "layer1.b",
            "layer2.W",
            "layer2.b",
            "scale",
        }

    def test_unflatten_gives_the_numerical_gradient_in_the_structure(self) -> None:
        """``result.unflatten(result.numerical)`` is the numerical gradient as a dict."""
        p = make_params()
        r = verigrad.check_gradient(mlp_loss, p, mlp_grad(p))
        num = r.unflatten(r.numerical)
        np.testing.assert_allclose(num["layer2"]["W"], mlp_grad(p)["layer2"]["W"], rtol=1e-6)
        assert num["scale"] == pytest.approx(mlp_grad(p)["scale"], rel=1e-6)

    def test_parameters_are_left_bit_for_bit_unchanged(self) -> None:
        """Every leaf of the caller's structure is untouched, also when the loss raises."""
        p = make_params()
        before = pickle.dumps(p)
        verigrad.check_gradient(mlp_loss, p, mlp_grad(p, bug="sign"))
        calls = []

        def failing(q: dict[str, Any]) -> float:
            calls.append(1)
            if len(calls) == 7:
                raise KeyboardInterrupt
            return mlp_loss(q)

        with pytest.raises(KeyboardInterrupt):
            verigrad.check_gradient(failing, p, mlp_grad(p))
        assert pickle.dumps(p) == before

    def test_list_and_tuple_parameters(self) -> None:
        """A list of arrays and a tuple of (array, float) are checked leaf by leaf."""

        def loss(ws: list[np.ndarray]) -> float:
            return float(np.sum(ws[0] ** 2) + np.sum(np.sin(ws[1])))

        ws = [np.arange(3.0), np.ones((2, 2))]
        good = [2 * ws[0], np.cos(ws[1])]
        assert verigrad.check_gradient(loss, ws, good).passed
        r = verigrad.check_gradient(loss, ws, [2 * ws[0], np.sin(ws[1])])
        assert r.verdict == "mismatch"
        assert dict(r.leaf_errors)["[0]"] < 1e-8
        assert dict(r.leaf_errors)["[1]"] > 0.1

    def test_vectorized_loss_gets_batched_leaves(self) -> None:
        """With vectorized=True each leaf carries the batch axis first."""

        def loss(p: dict[str, Any]) -> Any:
            return np.sum(p["w"] ** 2, axis=-1) + p["s"] ** 3

        p = {"w": np.arange(4.0), "s": 0.5}
        r = verigrad.check_gradient(loss, p, {"w": 2 * p["w"], "s": 0.75}, vectorized=True)
        assert r.passed

    def test_executor_checks_structured_parameters(self) -> None:
        """Chunks of a structured check run on an executor with the same numbers."""
        p = make_params()
        serial = verigrad.check_gradient(mlp_loss, p, mlp_grad(p), method="central")
        with ThreadPoolExecutor(2) as pool:
            pooled = verigrad.check_gradient(
                mlp_loss, p, mlp_grad(p), method="central", executor=pool
            )
        np.testing.assert_array_equal(serial.numerical, pooled.numerical)

    def test_large_structure_gets_a_partial_check_with_leaf_errors(self) -> None:
        """Beyond auto's full-check size, per-leaf errors cover the coordinates estimated."""
        rng = np.random.default_rng(2)
        p = {"a": rng.normal(size=3000), "b": rng.normal(size=10)}

        def loss(q: dict[str, Any]) -> float:
            return float(np.sum(q["a"] ** 2) + np.sum(q["b"] ** 4))

        r = verigrad.check_gradient(loss, p, {"a": 2 * p["a"], "b": 4 * p["b"] ** 3}, seed=0)
        assert r.passed
        assert r.strategy is not None
        assert dict(r.leaf_errors)["a"] < 1e-7


class TestStructureMismatch:
    @pytest.mark.parametrize(
        ("gradient", "detail"),
        [
            ({"w": np.zeros(2)}, "keys: missing ['s']"),
            ({"w": np.zeros(2), "s": 0.0, "t": 1.0}, "keys: extra ['t']"),
            ({"w": np.zeros(3), "s": 0.0}, "w has shape (3,), the parameter (2,)"),
            ([np.zeros(2), 0.0], "a list where the parameter has a mapping"),
            ({"w": {"x": np.zeros(2)}, "s": 0.0}, "a container where the parameter has w"),
        ],
    )
    def test_error_shows_both_structures(self, gradient: Any, detail: str) -> None:
        """A gradient shaped unlike the parameter is refused, naming the difference."""
        p = {"w": np.ones(2), "s": 1.0}
        with pytest.raises(verigrad.InvalidArgumentError) as info:
            verigrad.check_gradient(_sum_w, p, gradient)
        text = str(info.value)
        assert detail in text
        assert "parameter: {'w': (2,), 's': float}" in text
        assert "analytical gradient: " in text

    def test_sequence_length_is_checked(self) -> None:
        """A list gradient with a different number of entries is refused."""
        with pytest.raises(
            verigrad.InvalidArgumentError, match="1 entries where the parameter has 2"
        ):
            verigrad.check_gradient(_first_sum, [np.ones(2), np.ones(1)], [np.ones(2)])

    def test_bad_leaf_dtype_names_the_leaf(self) -> None:
        """A boolean leaf is refused with its path in the message."""
        with pytest.raises(verigrad.InvalidTypeError, match=r"x\.layer\.b has dtype bool"):
            verigrad.check_gradient(_sum_w, {"layer": {"b": np.ones(2, dtype=bool)}}, {})


def _first_sum(ws: list[np.ndarray]) -> float:
    return float(np.sum(ws[0]))


class TestDecoratorStructured:
    def test_dict_parameter_through_the_decorator(self) -> None:
        """A decorated gradient of a dict parameter is checked, and a wrong leaf raises."""

        @verigrad.verified_gradient(loss=lambda p, bug=None: mlp_loss(p), mode="debug")
        def grad(p: dict[str, Any], bug: str | None = None) -> dict[str, Any]:
            return mlp_grad(p, bug)

        p = make_params()
        grad(p)
        assert grad.verigrad.stats.failures == 0
        with pytest.raises(verigrad.GradientMismatchError, match=r"layer2\.W: 1,"):
            grad(p, bug="sign")


def linear_loss(W: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> float:
    r = X @ W + b - y
    return float(0.5 * r @ r / len(y))


def linear_grads(W: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> tuple[Any, float]:
    r = (X @ W + b - y) / len(y)
    return X.T @ r, float(r.sum())


class TestSeveralWrt:
    @pytest.mark.parametrize("wrt", [("W", "b"), (0, 1), ["W", 1]])
    def test_tuple_of_gradients_is_checked_per_argument(self, wrt: Any) -> None:
        """wrt naming two arguments checks the tuple the gradient function returns."""

        @verigrad.verified_gradient(loss=linear_loss, wrt=wrt, mode="debug")
        def grad(W: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> tuple[Any, float]:
            return linear_grads(W, b, X, y)

        W = np.arange(3.0)
        grad(W, 0.3, X, Y[:, 0])
        grad(W, b=0.3, X=X, y=Y[:, 0])
        result = grad.verigrad.last_result
        assert result is not None
        assert result.passed
        assert [path for path, _ in result.leaf_errors] == ["W", "b"]

    def test_wrong_argument_gradient_is_named(self) -> None:
        """A factor-2 bug in b's gradient names b, with W's gradient passing."""

        @verigrad.verified_gradient(loss=linear_loss, wrt=("W", "b"), mode="debug")
        def grad(W: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> tuple[Any, float]:
            gw, gb = linear_grads(W, b, X, y)
            return gw, 2 * gb

        with pytest.raises(verigrad.GradientMismatchError) as info:
            grad(np.arange(3.0), 0.3, X, Y[:, 0])
        errors = dict(info.value.result.leaf_errors)
        assert errors["W"] < 1e-8
        assert errors["b"] == pytest.approx(1 / 3, rel=1e-6)
        assert "b: analytical = 2 x numerical" in str(info.value)

    def test_wrong_number_of_gradients_is_refused(self) -> None:
        """Returning one gradient for two wrt arguments gives a structure error."""

        @verigrad.verified_gradient(loss=linear_loss, wrt=("W", "b"), mode="debug")
        def grad(W: np.ndarray, b: float, X: np.ndarray, y: np.ndarray) -> Any:
            return linear_grads(W, b, X, y)[0]

        with pytest.raises(verigrad.InvalidArgumentError, match="different structure"):
            grad(np.arange(3.0), 0.3, X, Y[:, 0])

    @pytest.mark.parametrize(
        ("wrt", "match"),
        [((), "at least one"), (("W", "W"), "twice"), (("W", "nope"), "names no parameter")],
    )
    def test_bad_wrt_tuples_are_refused_at_decoration(self, wrt: Any, match: str) -> None:
        """Empty, repeated or unknown names in wrt fail when decorating."""
        with pytest.raises(verigrad.InvalidArgumentError, match=match):
            verigrad.verified_gradient(loss=linear_loss, wrt=wrt)(linear_grads)
