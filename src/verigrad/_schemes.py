"""The difference schemes: one record each, read by the step rule, the error model and the
progress count.

A scheme evaluates the loss at ``x + m h e_i`` for each multiplier ``m`` and combines the
values linearly. Its record says what the rest of the check needs to know about it: where it
steps, how its step scales with the loss's precision, how much it amplifies the rounding noise
of one loss value, and how many evaluations a coordinate costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._typing import FloatArray

__all__ = ["SCHEMES", "Scheme", "scheme"]


@dataclass(frozen=True)
class Scheme:
    """One difference scheme.

    Attributes:
        name: the method name users pass (``"central"``, ...).
        multipliers: the stencil, in units of the step ``h``.
        rounding: the estimate's rounding error is ``rounding * noise / h`` when each loss value
            carries an error of at most ``noise`` (the sum of the absolute weights, over ``h``).
        order: the power of ``h`` in the truncation error.
    """

    name: str
    multipliers: tuple[float, ...]
    rounding: float
    order: int

    @property
    def step_exponent(self) -> float:
        """``p`` in the automatic step ``h = eps**p * max(|x_i|, 1)``: the step that balances
        truncation (``h**order``) against rounding (``eps / h``)."""
        return 1.0 / (self.order + 1)

    @property
    def evals_per_coordinate(self) -> int:
        """Loss evaluations one coordinate costs (not counting ``f(x)``)."""
        return len(self.multipliers)

    def combine(self, values: FloatArray, offsets: FloatArray, f0: float | None) -> FloatArray:
        """The derivative estimates from ``values`` and ``offsets`` of shape ``(k, m)``.

        The divisor is built from the offsets actually applied (as stored in floating point),
        so the representation error of ``x_i + h`` does not enter the estimate.
        """
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            if self.name in ("central", "richardson", "table"):
                d1 = (values[:, 0] - values[:, 1]) / (offsets[:, 0] - offsets[:, 1])
                if self.name == "central":
                    return d1
                d2 = (values[:, 2] - values[:, 3]) / (offsets[:, 2] - offsets[:, 3])
                out: FloatArray = (4.0 * d1 - d2) / 3.0
                return out
            assert f0 is not None
            if self.name in ("forward", "backward"):
                one: FloatArray = (values[:, 0] - f0) / offsets[:, 0]
                return one
            # Second-order one-sided: (-3 f0 + 4 f(h) - f(2h)) / 2h, with h signed.
            h = offsets[:, 0]
            two: FloatArray = (-3.0 * f0 + 4.0 * values[:, 0] - values[:, 1]) / (2.0 * h)
            return two


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("central", (1.0, -1.0), 1.0, 2),
        Scheme("forward", (1.0,), 2.0, 1),
        Scheme("backward", (-1.0,), 2.0, 1),
        # (8 (f1 - f-1) - (f2 - f-2)) / 12h: weights 8, 8, 1, 1 over 12.
        Scheme("richardson", (1.0, -1.0, 2.0, -2.0), 1.5, 4),
        # Richardson with a third level (4h): measures its own truncation error. The sharper
        # estimate a check escalates to, and the estimate of partial checks' coordinates.
        Scheme("table", (1.0, -1.0, 2.0, -2.0, 4.0, -4.0), 1.5, 4),
        # The complex step forms no difference: no cancellation, so no rounding amplification.
        Scheme("complex", (1.0,), 0.0, 2),
        # Used at domain boundaries, where one side of the stencil leaves the loss's domain.
        Scheme("forward2", (1.0, 2.0), 4.0, 2),
        Scheme("backward2", (-1.0, -2.0), 4.0, 2),
    )
}


def scheme(name: str) -> Scheme:
    """The record of the scheme called ``name``."""
    return SCHEMES[name]
