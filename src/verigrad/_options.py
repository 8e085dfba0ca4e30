"""How to check, validated once: the frozen record that check_gradient, assert_gradient and
the decorator hand to the check runner."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._typing import Epsilon, Method
from .estimators import DEFAULT_BATCH_BYTES, validate_epsilon, validate_method
from .exceptions import InvalidArgumentError, InvalidTypeError

__all__ = ["CheckConfig", "positive_int", "validate_executor", "validate_rtol"]


def validate_directions(value: object) -> Literal["rademacher", "gaussian"]:
    """Return ``value`` if it names a kind of random direction, else raise naming it."""
    if value not in ("rademacher", "gaussian"):
        raise InvalidArgumentError(
            f"directions={value!r}: choose 'rademacher' (random signs) or 'gaussian'"
        )
    return value  # type: ignore[return-value,unused-ignore]


def validate_executor(value: object) -> Executor | None:
    """Return ``value`` if it is None or looks like an executor, else raise naming it."""
    if value is not None and not callable(getattr(value, "submit", None)):
        raise InvalidTypeError(
            f"executor must be a concurrent.futures.Executor (something with .submit), not "
            f"{type(value).__name__}"
        )
    return value  # type: ignore[return-value]


def positive_int(value: object, name: str) -> int:
    """Return ``value`` as an int if it is an integer of at least 1, else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise InvalidArgumentError(f"{name}={value!r}: must be at least 1")
    return int(value)


def validate_rtol(rtol: object) -> float:
    """Return ``rtol`` as a float if it is a finite number in (0, 1], else raise naming it."""
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating, np.integer)):
        raise InvalidTypeError(f"rtol must be a number, not {type(rtol).__name__}")
    value = float(rtol)
    if not (0.0 < value <= 1.0):
        raise InvalidArgumentError(
            f"rtol={rtol!r}: the relative-error threshold must lie in (0, 1]"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """The options of a check (see :func:`verigrad.check_gradient` for their meaning),
    validated and normalized on construction: a bad value raises naming the option."""

    method: Method = "auto"
    epsilon: Epsilon = "auto"
    rtol: float = 1e-5
    kink_fails: bool = False
    n_directions: int = 8
    n_coordinates: int = 32
    directions: Literal["rademacher", "gaussian"] = "rademacher"
    vectorized: bool | Literal["vmap"] = False
    batch_bytes: int = DEFAULT_BATCH_BYTES
    executor: Executor | None = None

    def __post_init__(self) -> None:
        normal = {
            "method": validate_method(self.method),
            "epsilon": validate_epsilon(self.epsilon),
            "rtol": validate_rtol(self.rtol),
            "kink_fails": bool(self.kink_fails),
            "n_directions": positive_int(self.n_directions, "n_directions"),
            "n_coordinates": positive_int(self.n_coordinates, "n_coordinates"),
            "directions": validate_directions(self.directions),
            "vectorized": "vmap" if self.vectorized == "vmap" else bool(self.vectorized),
            "batch_bytes": positive_int(self.batch_bytes, "batch_bytes"),
            "executor": validate_executor(self.executor),
        }
        for name, value in normal.items():
            object.__setattr__(self, name, value)
