"""verigrad: catch wrong gradients while you train.

Decorate a hand-written gradient with :func:`verified_gradient` and a sampled fraction of its
calls is compared with a finite-difference gradient of the loss; or check once with
:func:`check_gradient` / :func:`assert_gradient`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._config import Settings, configure, current_mode, debug, get_settings, reset_defaults
from ._decorator import CheckStats, GradientChecker, verified_gradient
from .check import assert_gradient, check_gradient
from .compare import Coordinate, relative_error
from .estimators import directional_derivative, numerical_gradient
from .exceptions import (
    GradientMismatchError,
    GradientMismatchWarning,
    InconclusiveCheckError,
    InconclusiveCheckWarning,
    InvalidArgumentError,
    InvalidTypeError,
    VerigradError,
    VerigradWarning,
)
from .result import CheckResult

try:
    __version__ = version("verigrad")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "CheckResult",
    "CheckStats",
    "Coordinate",
    "GradientChecker",
    "GradientMismatchError",
    "GradientMismatchWarning",
    "InconclusiveCheckError",
    "InconclusiveCheckWarning",
    "InvalidArgumentError",
    "InvalidTypeError",
    "Settings",
    "VerigradError",
    "VerigradWarning",
    "__version__",
    "assert_gradient",
    "check_gradient",
    "configure",
    "current_mode",
    "debug",
    "directional_derivative",
    "get_settings",
    "numerical_gradient",
    "relative_error",
    "reset_defaults",
    "verified_gradient",
]
