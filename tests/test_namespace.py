"""The public namespace: what ``import verigrad`` offers, declared once; argument-order help."""

from __future__ import annotations

import numpy as np
import pytest

import verigrad


def _loss(x: np.ndarray) -> float:
    return float(x @ x)


def _grad(x: np.ndarray) -> np.ndarray:
    return 2 * x


class TestScipyOrder:
    """``check_gradient(loss, grad, x)``, scipy.optimize.check_grad's order, is named as such."""

    @pytest.mark.parametrize("entry", [verigrad.check_gradient, verigrad.assert_gradient])
    def test_swapped_arguments(self, entry: object) -> None:
        """The error names the order and the right spelling, before anything is evaluated."""
        with pytest.raises(verigrad.InvalidTypeError) as info:
            entry(_loss, _grad, np.ones(3))  # type: ignore[operator]
        message = str(info.value)
        assert "scipy.optimize.check_grad" in message
        assert "check_gradient(loss, x, grad)" in message
        assert "_grad" in message

    def test_right_order_still_passes(self) -> None:
        """The usual order, with the gradient as a function or as an array, is untouched."""
        assert verigrad.check_gradient(_loss, np.ones(3), _grad).passed
        assert verigrad.check_gradient(_loss, np.ones(3), _grad(np.ones(3))).passed


class TestPublicNames:
    """``dir(verigrad)``, ``__all__`` and the block for type checkers agree, and are clean."""

    def test_dir_is_all(self) -> None:
        """dir() lists exactly the public names: no typing or importlib leftovers."""
        assert dir(verigrad) == sorted(verigrad.__all__)
        assert all(not name.startswith("_") or name == "__version__" for name in dir(verigrad))
        for leftover in ("Any", "importlib", "annotations", "TYPE_CHECKING"):
            assert leftover not in dir(verigrad)

    def test_every_name_resolves_where_declared(self) -> None:
        """Each public name is importable and comes from the module ``_HOMES`` names."""
        for name, home in verigrad._HOMES.items():
            value = getattr(verigrad, name)
            module = getattr(value, "__module__", None)
            assert module == "verigrad" + home, (name, module)

    def test_typing_block_matches_declaration(self) -> None:
        """The TYPE_CHECKING imports name exactly the declared names, from the same modules,
        each re-exported (``import X as X``) so that strict type checkers accept them."""
        import ast
        import inspect

        tree = ast.parse(inspect.getsource(verigrad))
        block = next(
            node
            for node in tree.body
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        )
        imported = {}
        for node in block.body:
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    assert alias.asname == alias.name, f"{alias.name} is not re-exported"
                    imported[alias.name] = "." * node.level + (node.module or "")
        assert imported == verigrad._HOMES

    def test_unknown_name(self) -> None:
        """A misspelt name is an AttributeError that names it."""
        with pytest.raises(AttributeError, match="check_gradients"):
            _ = verigrad.check_gradients  # type: ignore[attr-defined]

    def test_testing_submodule(self) -> None:
        """``verigrad.testing`` is reachable as an attribute."""
        assert callable(verigrad.testing.capture_checks)

    def test_import_costs_no_numpy(self) -> None:
        """``import verigrad`` alone (pytest loads the plugin in every session) imports no numpy."""
        import subprocess
        import sys

        code = "import sys, verigrad; dir(verigrad); print('numpy' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        assert out.stdout.strip() == "False"
