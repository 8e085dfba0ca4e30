"""The ``verigrad`` command line (also ``python -m verigrad``).

Subcommands:

- ``verigrad check MODULE:LOSS MODULE:GRAD``: one gradient check at a random or saved point;
- ``verigrad sweep MODULE:LOSS MODULE:GRAD``: the relative error over a range of step sizes;
- ``verigrad report LOG.jsonl``: a summary of the ``gradient_check`` events of a training run.

Exit statuses (the same for every subcommand; see :data:`EXIT_STATUSES`):

- 0: a check ran and passed (``check``); the gradient agrees at some step (``sweep``); every
  check event of the log was read, none failed, and at least one passed (``report``);
- 1: the gradient is wrong: a failing verdict (``check``), disagreement at every step
  (``sweep``), at least one failed check in the log (``report``). Nothing else exits 1;
- 2: a usage or input error, and nothing was checked: bad options, a module or attribute that
  cannot be found, a module that raises or exits while it is imported, a point file that
  cannot be read, an output path that cannot be written (checked before the check runs), a
  plot extension that names no format, a loss or gradient that raised (the traceback is
  printed), a missing optional dependency; for ``report``, no check events, or lines that
  mention ``gradient_check`` but cannot be read (a failed check may be among them);
- 3: the check could not decide (``check``: ``inconclusive`` or ``nondeterministic``; not a
  gradient bug, but not a pass either); for ``report``, no failure but no check passed;
- 4: verigrad itself failed (an internal error; the traceback is printed: please report it).

An interrupt gives 130, a closed output pipe 141, as the shell reports for those signals.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import sys
import traceback
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from ._typing import METHODS, Epsilon

if TYPE_CHECKING:
    from .result import CheckResult

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_STATUSES",
    "EXIT_UNDECIDED",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNDECIDED = 3
EXIT_INTERNAL = 4

#: What each exit status means, for ``--help`` and the documentation.
EXIT_STATUSES: dict[int, str] = {
    EXIT_OK: "a check ran and passed",
    EXIT_FAILED: "the gradient is wrong",
    EXIT_USAGE: "usage or input error: nothing was checked",
    EXIT_UNDECIDED: "the check could not decide",
    EXIT_INTERNAL: "internal error in verigrad (please report it)",
}

_FORMATS_HELP = "the format its extension names: .png, .pdf, .svg, .eps, .jpg, ..."

#: Full checks of at least this many coordinates show a progress bar on a terminal.
PROGRESS_MIN_SIZE = 1_000


class UsageError(Exception):
    """The command cannot run as given (exit status 2); the message says why."""


class UserCodeError(Exception):
    """The user's module, loss or gradient raised (exit status 2, with its traceback)."""

    def __init__(self, what: str, exc: BaseException) -> None:
        super().__init__(what)
        self.what = what
        self.exc = exc


# -- loading MODULE:ATTR -----------------------------------------------------------------------


def _is_path(module: str) -> bool:
    return module.endswith(".py") or "/" in module or os.sep in module


def _load_path(module: str) -> ModuleType:
    path = Path(module)
    if not path.is_file():
        raise UsageError(f"no such file: {module}")
    path = path.resolve()
    for existing in list(sys.modules.values()):
        if getattr(existing, "__file__", None) == str(path):
            return existing
    name = path.stem if path.stem.isidentifier() else "model"
    if name in sys.modules:
        name = f"_verigrad_cli_{name}_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {module}: not a Python source file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    # Like ``python path/to/model.py``: the file's folder comes first for its own imports.
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
    except SystemExit as exc:
        del sys.modules[name]
        raise _exited(module, exc) from None
    except Exception as exc:
        del sys.modules[name]
        raise UserCodeError(f"importing {module} raised", exc) from exc
    return mod


def _exited(module: str, exc: SystemExit) -> UsageError:
    """The usage error for a module that calls ``sys.exit`` (or ``exit()``) while imported."""
    return UsageError(
        f"importing {module} exited (SystemExit({exc.code!r})), so nothing was checked: "
        "put the module's script part under 'if __name__ == \"__main__\":'"
    )


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise UsageError(
                f"no module named {module!r} (looked in the current directory and sys.path); "
                f"for a file, give its path: path/to/{module.rsplit('.', 1)[-1]}.py:FUNCTION"
            ) from None
        raise UserCodeError(f"importing {module} raised", exc) from exc
    except SystemExit as exc:
        raise _exited(module, exc) from None
    except Exception as exc:
        raise UserCodeError(f"importing {module} raised", exc) from exc


def resolve(spec: str, modules: dict[str, ModuleType] | None = None) -> Callable[..., Any]:
    """The callable named by ``spec``: ``package.module:name`` or ``path/to/file.py:name``.

    ``name`` may be dotted (``model:Net.loss``). Modules already loaded are taken from
    ``modules`` (and added to it).

    Raises:
        UsageError: a malformed spec, a module or attribute that does not exist, or an
            attribute that is not callable.
        UserCodeError: importing the module raised.
    """
    module, sep, attr = spec.rpartition(":")
    if not sep or not module or not attr:
        raise UsageError(
            f"{spec!r}: expected MODULE:FUNCTION, e.g. model:loss or path/to/model.py:loss"
        )
    cache = modules if modules is not None else {}
    if module not in cache:
        cache[module] = _load_path(module) if _is_path(module) else _import(module)
    obj: Any = cache[module]
    for i, part in enumerate(attr.split(".")):
        if not hasattr(obj, part):
            owner = module if i == 0 else f"{module}:{'.'.join(attr.split('.')[:i])}"
            available = sorted(
                n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))
            )
            shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
            raise UsageError(
                f"{owner} has no attribute {part!r}"
                + (f"; its callables: {shown}" if available else "")
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{spec} is a {type(obj).__name__}, not a function")
    return obj  # type: ignore[no-any-return]


# -- the point ---------------------------------------------------------------------------------


def load_point(path: str) -> np.ndarray | dict[str, np.ndarray]:
    """The point saved in a ``.npy`` or ``.npz`` file.

    An ``.npz`` holding one array gives that array; one holding several gives a dict
    ``{name: array}``. Pickled objects are refused. Each array's header is held to the bytes
    the file really holds before anything is allocated, so a truncated file or a header that
    claims more data than the file has is an error, not an attempt to allocate it.

    Raises:
        UsageError: the file is missing, unreadable, truncated, or holds no array.
    """
    file = Path(path)
    if not file.exists():
        raise UsageError(f"no such file: {path}")
    if file.is_dir():
        raise UsageError(f"--point {path} is a folder, not a .npy or .npz file")
    try:
        with open(file, "rb") as stream:
            magic = stream.read(6)
        if zipfile.is_zipfile(file):
            return _load_npz(file)
        if magic == b"\x93NUMPY":
            with open(file, "rb") as stream:
                return _read_array(stream, file.stat().st_size)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UsageError(f"cannot read a point from {path}: {exc}") from None
    except MemoryError:
        raise UsageError(f"cannot read a point from {path}: not enough memory") from None
    if magic.startswith(b"PK"):
        raise UsageError(f"cannot read a point from {path}: a damaged or truncated .npz file")
    raise UsageError(f"cannot read a point from {path}: not a .npy or .npz file")


def _read_array(stream: Any, size: int) -> np.ndarray:
    """The array in a ``.npy`` stream of ``size`` bytes, its header checked against ``size``."""
    fmt = np.lib.format
    version = fmt.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(stream)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    if dtype.hasobject:
        raise ValueError("it holds Python objects (pickles are refused)")
    count = math.prod(int(n) for n in shape)
    needed = count * dtype.itemsize
    held = size - stream.tell()
    if needed > held:
        raise ValueError(
            f"its header declares shape {tuple(shape)} of {dtype} ({needed:,} bytes) but only "
            f"{max(held, 0):,} bytes follow: the file is truncated or damaged"
        )
    array = np.empty(count, dtype=dtype)
    buffer = array.view(np.uint8)
    filled = 0
    while filled < needed:
        got = stream.readinto(buffer[filled:])
        if not got:
            raise ValueError(f"the file ended after {filled:,} of {needed:,} bytes: truncated")
        filled += got
    return array.reshape(shape, order="F" if fortran else "C")


def _load_npz(file: Path) -> np.ndarray | dict[str, np.ndarray]:
    with zipfile.ZipFile(file) as archive:
        members = [m for m in archive.infolist() if m.filename.endswith(".npy")]
        if not members:
            raise UsageError(f"{file} holds no array")
        arrays = {}
        for member in members:
            with archive.open(member) as stream:
                arrays[member.filename[: -len(".npy")]] = _read_array(stream, member.file_size)
    names = list(arrays)
    return arrays[names[0]] if len(names) == 1 else arrays


def _memory_bytes() -> int:
    """This machine's physical memory in bytes (a large number when it cannot be told)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        return 1 << 50


def _point(args: argparse.Namespace) -> np.ndarray | dict[str, np.ndarray]:
    if args.point is not None:
        return load_point(args.point)
    shape = tuple(args.shape)
    count = math.prod(shape)
    needed = 8 * count
    memory = _memory_bytes()
    # The point and the check's working copy, at least: refused before anything is allocated.
    if 2 * needed > memory:
        raise UsageError(
            f"--shape {' '.join(map(str, shape))}: a point of {count:,} float64 values "
            f"({needed / 2**30:,.1f} GiB) and a working copy need more than this machine's "
            f"{memory / 2**30:,.1f} GiB"
        )
    try:
        return np.random.default_rng(args.seed).standard_normal(shape)
    except (MemoryError, ValueError, OverflowError) as exc:
        raise UsageError(
            f"--shape {' '.join(map(str, shape))}: cannot make a random point of this shape "
            f"({type(exc).__name__}: {exc})"
        ) from None


def _size(point: np.ndarray | Mapping[str, np.ndarray]) -> int:
    if isinstance(point, Mapping):
        return sum(int(np.size(v)) for v in point.values())
    return int(np.size(point))


# -- progress bar ------------------------------------------------------------------------------


def want_progress(flag: bool | None, size: int, full: bool, stream: TextIO) -> bool:
    """Whether to show a progress bar.

    ``--progress`` / ``--no-progress`` decide when given; otherwise a bar is shown for full
    checks of at least :data:`PROGRESS_MIN_SIZE` coordinates when ``stream`` is a terminal.
    """
    if flag is not None:
        return flag
    isatty = getattr(stream, "isatty", None)
    return full and size >= PROGRESS_MIN_SIZE and callable(isatty) and bool(isatty())


@contextlib.contextmanager
def _progress(
    enabled: bool, total: int | None, forced: bool
) -> Iterator[Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """Yield a function that wraps a loss to advance a tqdm bar (or leaves it alone)."""
    from ._progress import INSTALL_HINT, progress_bar, tqdm_available

    if enabled and not tqdm_available():
        if forced:
            raise UsageError(f"--progress needs tqdm: {INSTALL_HINT}")
        enabled = False
    if not enabled:
        yield lambda loss: loss
        return
    with progress_bar(total) as wrap:
        yield wrap


def _estimated_evals(method: str, size: int) -> int | None:
    """Loss evaluations of a full check, or None for the checks that do not grow with n."""
    from ._progress import estimated_evals
    from .check import AUTO_FULL_MAX

    return estimated_evals(method, size, AUTO_FULL_MAX)


# -- options -----------------------------------------------------------------------------------


def _int_at_least(text: str, low: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{text!r}: {rule}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "must be at least 1")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number")
    return value


def _epsilon(text: str) -> Epsilon:
    if text == "auto":
        return "auto"
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: use a positive number or 'auto'") from None


def _seed(text: str) -> int:
    return _int_at_least(text, 0, "a seed must be 0 or more")


def _plot_path(text: str) -> Path:
    """``--plot FILE``: the extension must name a format (matplotlib is not imported here)."""
    from ._plots import plot_format
    from .exceptions import InvalidArgumentError

    try:
        plot_format(text)
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return Path(text)


def _check_writable(path: Path, option: str) -> None:
    """Refuse an output path that cannot be written, before any work is done.

    The file is opened for appending (which creates it, and truncates nothing), then removed
    again if it did not exist: the only reliable test, also for root and read-only mounts.
    """
    if path.is_dir():
        raise UsageError(
            f"{option} {path}: is a folder; give a file name, e.g. {path / 'plot.png'}"
        )
    if not path.parent.is_dir():
        what = "is not a folder" if path.parent.exists() else "does not exist"
        raise UsageError(f"{option} {path}: {path.parent} {what}")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write it ({exc.strerror or exc})") from None
    if not existed:
        with contextlib.suppress(OSError):
            path.unlink()


def _write_plot(draw: Callable[[Any, Path], Path], what: Any, path: Path) -> None:
    """Draw ``what`` into ``path`` with ``draw``; a failure to write is a usage error."""
    try:
        written = draw(what, path)
    except OSError as exc:
        raise UsageError(f"--plot {path}: cannot write it ({exc.strerror or exc})") from None
    print(f"wrote {written}", file=sys.stderr)


def _add_functions(p: argparse.ArgumentParser) -> None:
    p.add_argument("loss", metavar="MODULE:LOSS", help="the loss, e.g. model:loss or model.py:loss")
    p.add_argument("grad", metavar="MODULE:GRAD", help="its hand-written gradient, e.g. model:grad")


def _add_point(p: argparse.ArgumentParser, seed_help: str) -> None:
    group = p.add_argument_group("the point (one of)").add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--shape",
        nargs="+",
        type=_positive_int,
        metavar="N",
        help="a random standard-normal point of this shape (e.g. --shape 10, --shape 3 4)",
    )
    group.add_argument(
        "--point",
        metavar="FILE",
        help=".npy file, or .npz (one array: that array; several: a dict {name: array})",
    )
    p.add_argument("--seed", type=_seed, default=0, help=seed_help)


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"progress bar on stderr (default: for full checks of {PROGRESS_MIN_SIZE:,}+ "
        "coordinates when stderr is a terminal; needs verigrad[progress])",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``verigrad`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="verigrad",
        description="Check hand-written gradients against finite differences.",
        epilog="exit status:\n"
        + "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_STATUSES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"verigrad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="check a gradient at one point",
        description="Check MODULE:GRAD against finite differences of MODULE:LOSS at one point. "
        "Both are called with the point only. Exit status 0 pass, 1 the gradient is wrong, "
        "2 usage or input error (nothing checked), 3 could not decide, 4 internal error.",
    )
    _add_functions(check)
    _add_point(check, "seed of the random point and of the check's random draws (0)")
    check.add_argument("--method", choices=METHODS, default="auto", help="(default auto)")
    check.add_argument(
        "--epsilon", type=_epsilon, default="auto", help="step: a number or auto (default)"
    )
    check.add_argument("--rtol", type=float, default=1e-5, help="relative-error threshold (1e-5)")
    check.add_argument("--kink-fails", action="store_true", help="fail on a kink")
    check.add_argument("--json", action="store_true", help="print the log event as JSON")
    check.add_argument(
        "--plot",
        type=_plot_path,
        metavar="FILE",
        help=f"write numerical against analytical derivative per coordinate ({_FORMATS_HELP})",
    )
    _add_progress(check)
    check.set_defaults(run=_run_check)

    sweep = sub.add_parser(
        "sweep",
        help="relative error over a range of step sizes",
        description="The relative error of central differences at fixed steps from --largest "
        "down to --smallest, and at the steps epsilon='auto' chooses. Exit status 0 the "
        "gradient agrees at some step, 1 it disagrees at every step (the gradient is wrong), "
        "2 usage or input error, 4 internal error.",
    )
    _add_functions(sweep)
    _add_point(sweep, "seed of the random point (0)")
    sweep.add_argument(
        "--largest", type=_positive_float, default=1e-1, help="the largest step (1e-1)"
    )
    sweep.add_argument(
        "--smallest", type=_positive_float, default=1e-13, help="the smallest step (1e-13)"
    )
    sweep.add_argument(
        "--per-decade", type=_positive_int, default=1, help="steps per factor of ten (1)"
    )
    sweep.add_argument(
        "--rtol",
        type=_positive_float,
        default=1e-3,
        help="the gradient disagrees at every step (exit status 1) when even the smallest "
        "relative error is above this (1e-3)",
    )
    sweep.add_argument("--json", action="store_true", help="print the sweep as JSON")
    sweep.add_argument(
        "--plot", type=_plot_path, metavar="FILE", help=f"write the error curve ({_FORMATS_HELP})"
    )
    _add_progress(sweep)
    sweep.set_defaults(run=_run_sweep)

    report = sub.add_parser(
        "report",
        help="summarise the gradient checks in a JSON-lines log",
        description="Summarise the gradient_check events of a JSON-lines log ('-' reads "
        "stdin). Exit status 0 every check event read, none failed and some passed; 1 some "
        "check failed; 2 no file, no check events, or lines that mention gradient_check but "
        "cannot be read (a failure may be among them); 3 no failure but no check passed; "
        "4 internal error.",
    )
    report.add_argument("log", metavar="LOG.jsonl", help="the log file, or - for stdin")
    report.add_argument(
        "--top", type=_positive_int, default=3, help="worst checks listed per function (3)"
    )
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.add_argument(
        "--plot",
        type=_plot_path,
        metavar="FILE",
        help=f"write relative error over the run, each verdict marked ({_FORMATS_HELP})",
    )
    report.set_defaults(run=_run_report)
    return parser


# -- subcommands -------------------------------------------------------------------------------


def _require_matplotlib(path: Path | None) -> None:
    if path is not None and importlib.util.find_spec("matplotlib") is None:
        from ._plots import INSTALL_HINT

        raise UsageError(f"--plot: {INSTALL_HINT}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _call_user(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from .exceptions import VerigradError

    try:
        return fn(*args, **kwargs)
    except VerigradError:
        raise
    except SystemExit as exc:
        raise UsageError(
            f"{what.removesuffix(' raised')} exited (SystemExit({exc.code!r})), so nothing was "
            "checked"
        ) from None
    except Exception as exc:
        if _raised_in_verigrad(exc):
            raise  # a bug of verigrad's own: exit status 4, not the user's error
        raise UserCodeError(what, exc) from exc


_PACKAGE = str(Path(__file__).resolve().parent)


def _raised_in_verigrad(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is verigrad's own code (not the
    user's loss or gradient, which verigrad calls)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    try:
        return str(Path(filename).resolve()).startswith(_PACKAGE + os.sep)
    except (OSError, ValueError):  # pragma: no cover - a frame without a real file
        return False


def _prepare_plot(path: Path | None) -> None:
    """Everything ``--plot`` needs, checked before any work: matplotlib, a writable path."""
    if path is not None:
        _require_matplotlib(path)
        _check_writable(path, "--plot")


def _run_check(args: argparse.Namespace) -> int:
    from .check import check_gradient

    _prepare_plot(args.plot)
    modules: dict[str, ModuleType] = {}
    loss = resolve(args.loss, modules)
    grad = resolve(args.grad, modules)
    x = _point(args)
    size = _size(x)
    total = _estimated_evals(args.method, size)
    show = want_progress(args.progress, size, total is not None, sys.stderr)
    with _progress(show, total, forced=bool(args.progress)) as wrap:
        result = _call_user(
            "the check raised",
            check_gradient,
            wrap(loss),
            x,
            grad,
            method=args.method,
            epsilon=args.epsilon,
            rtol=args.rtol,
            seed=args.seed,
            kink_fails=args.kink_fails,
        )
    if args.json:
        print(json.dumps(result.to_event(), default=_jsonable))
    else:
        print(result.summary())
        print(f"verdict: {result.verdict} (exit status {_check_status(result)})")
    if args.plot is not None:
        from ._plots import check_plot

        _write_plot(check_plot, result, args.plot)
    return _check_status(result)


def _check_status(result: CheckResult) -> int:
    if result.passed:
        return EXIT_OK
    return EXIT_FAILED if result.failed else EXIT_UNDECIDED


def _run_sweep(args: argparse.Namespace) -> int:
    from ._sweep import disagreement, format_table, log_steps, sweep

    _prepare_plot(args.plot)
    steps = log_steps(args.largest, args.smallest, args.per_decade)
    modules: dict[str, ModuleType] = {}
    loss = resolve(args.loss, modules)
    grad = resolve(args.grad, modules)
    x = _point(args)
    if isinstance(x, Mapping):
        raise UsageError(
            f"sweep needs one array, but {args.point} holds several: {', '.join(x)}; "
            "save the parameter you want to sweep alone"
        )
    analytical = _call_user(f"the gradient {args.grad} raised", grad, x)
    total = 2 * x.size * (len(steps) + 1)
    show = want_progress(args.progress, x.size, True, sys.stderr)
    with _progress(show, total, forced=bool(args.progress)) as wrap:
        result = _call_user(
            "the sweep raised", sweep, wrap(loss), x, analytical, steps, rtol=args.rtol
        )
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        lo, hi = float(np.min(result.auto_steps)), float(np.max(result.auto_steps))
        span = f"{lo:.2e}" if math.isclose(lo, hi, rel_tol=1e-3) else f"{lo:.2e} .. {hi:.2e}"
        print(
            f"central differences of {args.loss} against {args.grad}, "
            f"{result.size} coordinates, point "
            + (
                args.point
                if args.point is not None
                else f"normal(shape {x.shape}, seed {args.seed})"
            )
        )
        print(
            f'epsilon="auto" steps eps**(1/3) * max(|x_i|, 1): {span} '
            f"(median {result.auto_step:.2e}: the dashed line on the plot)"
        )
        print()
        print(format_table(result))
        best = result.best_index
        if best is not None:
            print()
            print(
                f"smallest error {result.errors[best]:.2e} at h = {result.steps[best]:.1e}; "
                f'epsilon="auto": {result.auto_error:.2e}'
            )
        if result.disagrees:
            print()
            print(disagreement(result, args.grad))
    if args.plot is not None:
        from ._plots import sweep_plot

        _write_plot(sweep_plot, result, args.plot)
    return EXIT_FAILED if result.disagrees else EXIT_OK


def _run_report(args: argparse.Namespace) -> int:
    from ._logreport import format_summary, read_log, summarise

    _prepare_plot(args.plot)
    if args.log == "-":
        reading = read_log(sys.stdin)
        name = "stdin"
    else:
        if Path(args.log).is_dir():
            raise UsageError(f"{args.log} is a folder, not a log file")
        try:
            with open(args.log, encoding="utf-8", errors="replace", newline="") as lines:
                reading = read_log(lines)
        except FileNotFoundError:
            raise UsageError(f"no such file: {args.log}") from None
        except OSError as exc:
            raise UsageError(f"cannot read {args.log}: {exc.strerror or exc}") from None
        name = args.log
    summary = summarise(
        reading.events, reading.skipped, top=args.top, unreadable=reading.unreadable
    )
    if not summary.events and not summary.suspect:
        raise UsageError(
            f"no gradient_check events in {name} ({reading.skipped} non-empty lines): render "
            "verigrad's structlog events as JSON lines (structlog.processors.JSONRenderer)"
        )
    if args.json:
        print(json.dumps(summary.to_dict(), default=_jsonable))
    else:
        print(format_summary(summary))
    if args.plot is not None and summary.events:
        from ._plots import report_plot

        _write_plot(report_plot, summary, args.plot)
    status = _report_status(summary)
    if status == EXIT_USAGE:
        _error(
            f"{len(summary.suspect)} line(s) of {name} mention gradient_check but cannot be "
            "read; a failed check may be among them"
        )
    return status


def _report_status(summary: Any) -> int:
    """The exit status of ``report``: a failure wins; then unreadable check lines; then 3
    when no check passed (all undecided)."""
    if summary.failures:
        return EXIT_FAILED
    if summary.suspect:
        return EXIT_USAGE
    if summary.checks - summary.undecided == 0:
        return EXIT_UNDECIDED
    return EXIT_OK


# -- entry point -------------------------------------------------------------------------------


def _error(message: str) -> None:
    print(f"verigrad: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``verigrad`` command line with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 pass, 1 the gradient is wrong, 2 usage or input error (nothing
        checked), 3 undecided, 4 internal error; see :data:`EXIT_STATUSES`.
    """
    from ._plots import PlotUnavailableError
    from .exceptions import InvalidArgumentError, InvalidTypeError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse reported
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    saved_path = list(sys.path)
    # Like ``python -m``: modules in the current directory can be named.
    sys.path.insert(0, os.getcwd())
    try:
        return int(args.run(args))
    except (UsageError, PlotUnavailableError) as exc:
        _error(str(exc))
    except (InvalidArgumentError, InvalidTypeError) as exc:
        _error(str(exc))
    except UserCodeError as exc:
        traceback.print_exception(type(exc.exc), exc.exc, exc.exc.__traceback__)
        _error(f"{exc.what}: {type(exc.exc).__name__}: {exc.exc}")
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``verigrad sweep ... | head``): stop quietly, as a process
        # killed by SIGPIPE would, and keep Python from complaining while it flushes stdout.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    except MemoryError:
        _error("out of memory: nothing was checked; try a smaller point or --method directional")
    except SystemExit as exc:  # user code that exits from a thread or a finaliser we call
        _error(f"SystemExit({exc.code!r}) while checking: nothing was checked")
    except Exception:
        # Never Python's own exit status 1, which means "the gradient is wrong" here.
        traceback.print_exc()
        _error("internal error in verigrad (the traceback above): please report it")
        return EXIT_INTERNAL
    finally:
        sys.path[:] = saved_path
    return EXIT_USAGE
