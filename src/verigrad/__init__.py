"""verigrad: catch wrong gradients while you train.

Decorate a hand-written gradient with :func:`verified_gradient` and a sampled fraction of its
calls is compared with a finite-difference gradient of the loss; or check once with
:func:`check_gradient` / :func:`assert_gradient`.

The names below are imported on first use (PEP 562): ``import verigrad`` alone, as pytest
does when it loads verigrad's plugin in every session, costs no numpy import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

    __version__: str

#: Each public name and the private module that defines it.
_HOMES = {
    "Settings": "._config",
    "configure": "._config",
    "current_mode": "._config",
    "debug": "._config",
    "get_settings": "._config",
    "reset_defaults": "._config",
    "CheckStats": "._decorator",
    "GradientChecker": "._decorator",
    "verified_gradient": "._decorator",
    "assert_gradient": ".check",
    "check_gradient": ".check",
    "Coordinate": ".compare",
    "relative_error": ".compare",
    "directional_derivative": ".estimators",
    "numerical_gradient": ".estimators",
    "GradientMismatchError": ".exceptions",
    "GradientMismatchWarning": ".exceptions",
    "InconclusiveCheckError": ".exceptions",
    "InconclusiveCheckWarning": ".exceptions",
    "InvalidArgumentError": ".exceptions",
    "InvalidTypeError": ".exceptions",
    "VerigradError": ".exceptions",
    "VerigradWarning": ".exceptions",
    "CheckResult": ".result",
}

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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("verigrad")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    else:
        raise AttributeError(f"module 'verigrad' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
