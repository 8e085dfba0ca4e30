"""verigrad: catch wrong gradients while you train.

Decorate a hand-written gradient with :func:`verified_gradient` and a sampled fraction of its
calls is compared with a finite-difference gradient of the loss; or check once with
:func:`check_gradient` / :func:`assert_gradient`. :mod:`verigrad.testing` captures the checks a
block of code makes, for your own tests.

The public names are declared once, in ``_HOMES`` below; ``__all__`` and ``dir(verigrad)`` are
made from it, and a test holds the block for type checkers to it. They are imported on first
use (PEP 562): ``import verigrad`` alone, as pytest does when it loads verigrad's plugin in
every session, costs no numpy import.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    # For type checkers and editors only: the same names as ``_HOMES``, which is what runs.
    from ._config import Settings as Settings
    from ._config import configure as configure
    from ._config import current_mode as current_mode
    from ._config import debug as debug
    from ._config import get_settings as get_settings
    from ._config import reset_defaults as reset_defaults
    from ._decorator import CheckStats as CheckStats
    from ._decorator import GradientChecker as GradientChecker
    from ._decorator import GradientDecorator as GradientDecorator
    from ._decorator import VerifiedFunction as VerifiedFunction
    from ._decorator import verified_gradient as verified_gradient
    from .check import assert_gradient as assert_gradient
    from .check import check_gradient as check_gradient
    from .compare import Coordinate as Coordinate
    from .compare import relative_error as relative_error
    from .estimators import directional_derivative as directional_derivative
    from .estimators import numerical_gradient as numerical_gradient
    from .exceptions import GradientMismatchError as GradientMismatchError
    from .exceptions import GradientMismatchWarning as GradientMismatchWarning
    from .exceptions import InconclusiveCheckError as InconclusiveCheckError
    from .exceptions import InconclusiveCheckWarning as InconclusiveCheckWarning
    from .exceptions import InvalidArgumentError as InvalidArgumentError
    from .exceptions import InvalidTypeError as InvalidTypeError
    from .exceptions import VerigradError as VerigradError
    from .exceptions import VerigradWarning as VerigradWarning
    from .result import CheckResult as CheckResult

    __version__: str

#: The public names, each with the private module that defines it: the one declaration.
_HOMES = {
    "Settings": "._config",
    "configure": "._config",
    "current_mode": "._config",
    "debug": "._config",
    "get_settings": "._config",
    "reset_defaults": "._config",
    "CheckStats": "._decorator",
    "GradientChecker": "._decorator",
    "GradientDecorator": "._decorator",
    "VerifiedFunction": "._decorator",
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
#: Public submodules, reachable as attributes (``verigrad.testing``) without an import.
_SUBMODULES = ("testing",)

__all__ = sorted([*_HOMES, "__version__"])


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("verigrad")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


if not _typing.TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name is an error

    def __getattr__(name):
        if name == "__version__":
            value = _version()
        elif name in _HOMES:
            value = getattr(_importlib.import_module(_HOMES[name], __name__), name)
        elif name in _SUBMODULES:
            value = _importlib.import_module(f".{name}", __name__)
        else:
            raise AttributeError(f"module 'verigrad' has no attribute {name!r}")
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    """The public names only (not the helpers this module uses)."""
    return list(__all__)
