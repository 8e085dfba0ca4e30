"""Type aliases and the option strings accepted by the public API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

#: Anything numpy can turn into a real array: an ndarray, a list of floats, a scalar.
ArrayLike = npt.ArrayLike
#: A float64 array, as verigrad returns them.
FloatArray = npt.NDArray[np.float64]

#: A scalar-valued function of the parameter array.
LossFunction = Callable[..., Any]
#: A function returning the analytical gradient, shaped like the parameter.
GradientFunction = Callable[..., Any]

#: How the numerical gradient is estimated: a difference scheme over every coordinate, or
#: "auto" (the full check while it is cheap).
Method = Literal[
    "auto", "central", "forward", "backward", "richardson", "complex", "directional", "coordinates"
]
METHODS: tuple[Method, ...] = (
    "auto",
    "central",
    "forward",
    "backward",
    "richardson",
    "complex",
    "directional",
    "coordinates",
)

#: Step size: a fixed absolute step, or "auto" for a per-coordinate step scaled to the parameter.
Epsilon = float | Literal["auto"]

#: Process-wide checking modes.
Mode = Literal["off", "sample", "debug"]
MODES: tuple[Mode, ...] = ("off", "sample", "debug")

#: What the decorator does when a check fails.
OnFailure = Literal["raise", "warn", "log"]
ON_FAILURE: tuple[OnFailure, ...] = ("raise", "warn", "log")

#: The outcome of one check.
Verdict = Literal["pass", "mismatch", "nonfinite", "kink", "nondeterministic", "inconclusive"]
#: Verdicts that are failures (``"kink"`` too when the check is told to fail on kinks).
FAILURES: tuple[Verdict, ...] = ("mismatch", "nonfinite")
