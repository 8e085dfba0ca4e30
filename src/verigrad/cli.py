"""The ``verigrad`` command line (also ``python -m verigrad``).

Subcommands:

- ``verigrad check MODULE:LOSS MODULE:GRAD``: one gradient check at a random or saved point;
- ``verigrad sweep MODULE:LOSS MODULE:GRAD``: the relative error over a range of step sizes;
- ``verigrad report LOG.jsonl``: a summary of the ``gradient_check`` events of a training run.

Exit statuses: 0 the check passed (``check``) or no logged check failed (``report``); 1 the
gradient is wrong (a failing verdict; for ``report``, at least one failed check in the log);
2 nothing was checked: a usage error, a module or attribute that cannot be found, a point file
that cannot be read, a loss or gradient that raised (the traceback is printed), an empty log,
a missing optional dependency; 3 the check could not decide (``inconclusive`` or
``nondeterministic``: not a gradient bug, but not a pass either). An interrupt gives 130, a
closed output pipe 141, as the shell reports for those signals.
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
    "EXIT_OK",
    "EXIT_UNDECIDED",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNDECIDED = 3

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
    except Exception as exc:
        del sys.modules[name]
        raise UserCodeError(f"importing {module} raised", exc) from exc
    return mod


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
    ``{name: array}``. Pickled objects are refused.

    Raises:
        UsageError: the file is missing, unreadable, or holds no array.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"cannot read a point from {path}: {exc}") from None
    if isinstance(data, np.ndarray):
        return data
    with data:
        names = list(data.files)
        if not names:
            raise UsageError(f"{path} holds no array")
        try:
            arrays = {name: data[name] for name in names}
        except ValueError as exc:
            raise UsageError(f"cannot read a point from {path}: {exc}") from None
    return arrays[names[0]] if len(names) == 1 else arrays


def _point(args: argparse.Namespace) -> np.ndarray | dict[str, np.ndarray]:
    if args.point is not None:
        return load_point(args.point)
    rng = np.random.default_rng(args.seed)
    return rng.standard_normal(tuple(args.shape))


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


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


def _png_path(text: str) -> Path:
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {path.parent} does not exist")
    return path


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
    p.add_argument("--seed", type=int, default=0, help=seed_help)


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
        epilog="exit status: 0 pass, 1 wrong gradient (failed checks), 2 usage error or "
        "nothing checked, 3 the check could not decide",
    )
    parser.add_argument("--version", action="version", version=f"verigrad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="check a gradient at one point",
        description="Check MODULE:GRAD against finite differences of MODULE:LOSS at one point. "
        "Both are called with the point only. Exit status 0 pass, 1 failed, "
        "2 usage error, 3 could not decide.",
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
        type=_png_path,
        metavar="FILE.png",
        help="write numerical against analytical derivative per coordinate",
    )
    _add_progress(check)
    check.set_defaults(run=_run_check)

    sweep = sub.add_parser(
        "sweep",
        help="relative error over a range of step sizes",
        description="The relative error of central differences at fixed steps from --largest "
        "down to --smallest, and at the steps epsilon='auto' chooses.",
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
    sweep.add_argument("--json", action="store_true", help="print the sweep as JSON")
    sweep.add_argument(
        "--plot", type=_png_path, metavar="FILE.png", help="write the error curve as a PNG"
    )
    _add_progress(sweep)
    sweep.set_defaults(run=_run_sweep)

    report = sub.add_parser(
        "report",
        help="summarise the gradient checks in a JSON-lines log",
        description="Summarise the gradient_check events of a JSON-lines log ('-' reads "
        "stdin). Exit status 0 no failed check, 1 some check failed, 2 no file or no "
        "check events.",
    )
    report.add_argument("log", metavar="LOG.jsonl", help="the log file, or - for stdin")
    report.add_argument(
        "--top", type=_positive_int, default=3, help="worst checks listed per function (3)"
    )
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.add_argument(
        "--plot", type=_png_path, metavar="FILE.png", help="write relative error over the run"
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
    except Exception as exc:
        raise UserCodeError(what, exc) from exc


def _run_check(args: argparse.Namespace) -> int:
    from .check import check_gradient

    _require_matplotlib(args.plot)
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

        print(f"wrote {check_plot(result, args.plot)}", file=sys.stderr)
    return _check_status(result)


def _check_status(result: CheckResult) -> int:
    if result.passed:
        return EXIT_OK
    return EXIT_FAILED if result.failed else EXIT_UNDECIDED


def _run_sweep(args: argparse.Namespace) -> int:
    from ._sweep import format_table, log_steps, sweep

    _require_matplotlib(args.plot)
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
        result = _call_user("the sweep raised", sweep, wrap(loss), x, analytical, steps)
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
    if args.plot is not None:
        from ._plots import sweep_plot

        print(f"wrote {sweep_plot(result, args.plot)}", file=sys.stderr)
    return EXIT_OK


def _run_report(args: argparse.Namespace) -> int:
    from ._logreport import format_summary, read_events, summarise

    _require_matplotlib(args.plot)
    if args.log == "-":
        events, skipped = read_events(sys.stdin)
        name = "stdin"
    else:
        try:
            with open(args.log, encoding="utf-8", errors="replace") as lines:
                events, skipped = read_events(lines)
        except FileNotFoundError:
            raise UsageError(f"no such file: {args.log}") from None
        except OSError as exc:
            raise UsageError(f"cannot read {args.log}: {exc.strerror or exc}") from None
        name = args.log
    if not events:
        raise UsageError(
            f"no gradient_check events in {name} ({skipped} non-empty lines): render "
            "verigrad's structlog events as JSON lines (see 'Logging recipes' in the README)"
        )
    summary = summarise(events, skipped, top=args.top)
    if args.json:
        print(json.dumps(summary.to_dict(), default=_jsonable))
    else:
        print(format_summary(summary))
    if args.plot is not None:
        from ._plots import report_plot

        print(f"wrote {report_plot(summary, args.plot)}", file=sys.stderr)
    return EXIT_FAILED if summary.failures else EXIT_OK


# -- entry point -------------------------------------------------------------------------------


def _error(message: str) -> None:
    print(f"verigrad: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``verigrad`` command line with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 pass, 1 failed, 2 usage error or nothing checked, 3 undecided.
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
    finally:
        sys.path[:] = saved_path
    return EXIT_USAGE
