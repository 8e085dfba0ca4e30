"""The difference schemes: one record each, exact on polynomials up to their order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verigrad._schemes import SCHEMES

FINITE_DIFFERENCES = [name for name in SCHEMES if name != "complex"]


@pytest.mark.parametrize("name", FINITE_DIFFERENCES)
@settings(max_examples=30, deadline=None)
@given(
    coefficients=st.lists(st.integers(-20, 20), min_size=5, max_size=5),
    x=st.integers(-4, 4),
    step=st.sampled_from([0.5, 0.25, 0.125]),
)
def test_exact_on_polynomials_up_to_the_order(
    name: str, coefficients: list[int], x: int, step: float
) -> None:
    """A scheme of order k differentiates a polynomial of degree <= k exactly (dyadic steps)."""
    scheme = SCHEMES[name]
    degree = scheme.order
    c = coefficients[: degree + 1]

    def p(t: float) -> float:
        return float(sum(ck * t**k for k, ck in enumerate(c)))

    exact = float(sum(k * ck * x ** (k - 1) for k, ck in enumerate(c) if k))
    offsets = np.array([[m * step for m in scheme.multipliers]])
    values = np.array([[p(x + o) for o in offsets[0]]])
    estimate = scheme.combine(values, offsets, p(x))[0]
    assert estimate == pytest.approx(exact, abs=1e-9)


def test_step_exponent_balances_truncation_and_rounding() -> None:
    """The automatic step's exponent is 1/(order + 1): 1/3 central, 1/5 Richardson."""
    assert SCHEMES["central"].step_exponent == pytest.approx(1 / 3)
    assert SCHEMES["forward"].step_exponent == pytest.approx(1 / 2)
    assert SCHEMES["richardson"].step_exponent == pytest.approx(1 / 5)
    assert SCHEMES["table"].evals_per_coordinate == 6
