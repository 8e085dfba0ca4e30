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
