"""pytest plugin: map command-line and ini options onto verigrad's configuration for a session.

Registered through the ``pytest11`` entry point: installing verigrad is enough, no conftest.
Without any of the options below and without the marker, the plugin changes nothing.

As in typeguard's plugin, each option is mapped onto verigrad's public configuration and
nothing else: :func:`verigrad.configure` at the start of the session (and of each test phase),
:func:`verigrad.debug` for ``debug`` (the one way to outrank a decorator's own ``mode=``), and
the previous settings restored afterwards through :func:`verigrad.reset_defaults` and
:func:`verigrad.configure`. What a check does is then the decorator's business, exactly as
outside pytest: a decorator's own ``rtol=`` and ``on_failure=`` win over the options. The
command line wins over the ini file; a bad value is a usage error.

- ``--verigrad=debug|sample|off`` / ini ``verigrad_mode``: ``configure(mode=...)`` from the
  start of the session to its end (so threads a test starts follow it) and, in each test's
  setup, call and teardown, forced in the test's thread and its asyncio tasks as a
  :func:`verigrad.debug` block would (``debug`` then also overrides a decorator's own
  ``mode=``).
- ``--verigrad-rtol=RTOL`` / ini ``verigrad_rtol``: ``configure(rtol=...)``: the threshold of
  every decorated gradient declared without ``rtol=``, and of the ``assert_gradient``
  fixture.
- ``--verigrad-on-failure=raise|warn|log`` / ini ``verigrad_on_failure``:
  ``configure(on_failure=...)``: what a failed check of a gradient declared without
  ``on_failure=`` does. verigrad's default is ``"raise"``: a failed check raises
  :class:`~verigrad.GradientMismatchError` in the test, which fails it (unless the test expects
  it with ``pytest.raises``). A decorator declared with ``on_failure="warn"`` or ``"log"``
  warns or logs, and does not fail the test (``-W error::verigrad.GradientMismatchWarning``
  makes a warning fail it).

Each test phase's settings are restored after it (a test's own :func:`verigrad.configure`
does not leak into the next test), and the session's at its end.

Marker ``@pytest.mark.verigrad(mode="debug", *, rtol=None, on_failure=None,
allow_failures=False)``: the same mapping for one test (or every test of a class or module,
through ``pytestmark``), over the session's options: ``mode`` (positional or keyword;
``"debug"`` by default, None for the session's mode), ``rtol`` and ``on_failure`` (None for
the session's). ``allow_failures`` is accepted for compatibility and changes nothing: a check
that does not raise never fails a test.

Report section: in a test run with a mode, ``rtol`` or ``on_failure`` from the plugin, each
phase gets a "verigrad" report section listing the checks made while it ran, in any thread
(shown with a failure, or with ``-rP``); it reports, it decides nothing. A check whose
warning was raised as an error (``-W error``) has its full report there.

Fixture ``assert_gradient``: :func:`verigrad.assert_gradient` with the configured ``rtol``
(:func:`verigrad.get_settings`, so the marker, the command line or the ini file) and
``seed=0`` so the check is reproducible; keyword arguments given in the call win. Its checks
are listed in the test's report section.

Tracebacks: when a test fails on a check (a :class:`~verigrad.GradientMismatchError` or
:class:`~verigrad.InconclusiveCheckError`, or a verigrad warning raised as an error), verigrad's
own frames are left out: the traceback ends at the user's line that called the gradient or
``assert_gradient``, followed by verigrad's report. ``--full-trace`` shows them all; other
exceptions keep every frame.

The module imports only the standard library and pytest at the top: verigrad (and numpy) are
imported inside the hooks that need them, and only in sessions that use the plugin.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from verigrad import Settings
    from verigrad.result import CheckResult

__all__ = [
    "assert_gradient",
    "pytest_addoption",
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_call",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
    "pytest_runtest_teardown",
    "pytest_unconfigure",
]

MODES = ("off", "sample", "debug")
ON_FAILURE = ("raise", "warn", "log")
MARKER = "verigrad"
MARKER_HELP = (
    'verigrad(mode="debug", *, rtol=None, on_failure=None, allow_failures=False): run this '
    "test with verigrad configured so (mode, and the rtol and on_failure of decorated "
    "gradients that set none); allow_failures is accepted and changes nothing."
)
#: One check seen during a test phase: its result, and the context it was reported with.
Record = tuple["CheckResult", Mapping[str, Any]]


# -- settings --------------------------------------------------------------------------------


def _positive_rtol(raw: object, source: str) -> float | None:
    """``raw`` as a threshold in (0, 1], None when unset; a usage error naming ``source``."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(raw, bool) or not (0.0 < value <= 1.0):
        raise pytest.UsageError(f"{source}={raw!r}: the threshold must be a number in (0, 1]")
    return value


def _choice(raw: object, source: str, choices: tuple[str, ...], what: str) -> str | None:
    """``raw`` as one of ``choices``, None when unset; a usage error naming ``source``."""
    if raw is None:
        return None
    value = str(raw).strip().lower()
    if value == "":
        return None
    if value not in choices:
        raise pytest.UsageError(
            f"{source}={raw!r} is not {what}; choose one of {', '.join(choices)}"
        )
    return value


def _mode(raw: object, source: str) -> str | None:
    """``raw`` as a mode, None when unset; a usage error naming ``source`` otherwise."""
    return _choice(raw, source, MODES, "a verigrad mode")


def _on_failure(raw: object, source: str) -> str | None:
    """``raw`` as an ``on_failure`` action, None when unset; a usage error naming ``source``."""
    return _choice(raw, source, ON_FAILURE, "an on_failure action")


@dataclass(frozen=True)
class _Spec:
    """The configuration one test runs with; None keeps what is configured."""

    mode: str | None
    rtol: float | None
    on_failure: str | None = None
    source: str = ""

    @property
    def empty(self) -> bool:
        return self.mode is None and self.rtol is None and self.on_failure is None


@contextmanager
def _configured(spec: _Spec) -> Iterator[None]:
    """``spec`` as verigrad's configuration (:func:`verigrad.configure`), the mode also forced
    in this thread and its asyncio tasks as a :func:`verigrad.debug` block would (a decorator's
    own ``mode=`` outranks ``configure``); the previous configuration afterwards."""
    import verigrad

    previous = verigrad.get_settings()
    verigrad.configure(mode=spec.mode, rtol=spec.rtol, on_failure=spec.on_failure)  # type: ignore[arg-type]
    try:
        with verigrad.debug(spec.mode == "debug") if spec.mode else nullcontext():
            yield
    finally:
        _restore(previous)


def _restore(settings: Settings) -> None:
    """Put back ``settings`` with the public API: the defaults, then each field configured."""
    import verigrad

    verigrad.reset_defaults()
    verigrad.configure(**{f.name: getattr(settings, f.name) for f in fields(settings)})


class _Session:
    """The plugin's state for one pytest session: its settings and where checks are listed."""

    def __init__(self, spec: _Spec) -> None:
        self.options = spec
        self._sink: list[Record] | None = None
        self._lock = threading.Lock()
        self._previous: Settings | None = None

    @property
    def mode(self) -> str | None:
        return self.options.mode

    def start(self) -> None:
        """Configure verigrad as the session's options say, until :meth:`stop`."""
        if self.options.empty:
            return
        import verigrad

        self._previous = verigrad.get_settings()
        spec = self.options
        verigrad.configure(mode=spec.mode, rtol=spec.rtol, on_failure=spec.on_failure)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Restore the settings found at :meth:`start`."""
        previous, self._previous = self._previous, None
        if previous is not None:
            _restore(previous)

    def observe(self, result: CheckResult, context: Mapping[str, Any]) -> None:
        """List one check in the test phase running now (outside every phase: nowhere)."""
        with self._lock:
            if self._sink is not None:
                self._sink.append((result, dict(context)))

    record = observe  # a check made by the fixture

    @contextmanager
    def collecting(self, records: list[Record]) -> Iterator[None]:
        """Send the checks made inside the block, in any thread, to ``records``."""
        from verigrad import _reporting

        with _reporting.observing(self.observe):
            with self._lock:
                previous, self._sink = self._sink, records
            try:
                yield
            finally:
                with self._lock:
                    self._sink = previous

    def spec(self, marker: pytest.Mark | None) -> _Spec:
        """The configuration for a test carrying ``marker`` (or none)."""
        if marker is None:
            return self.options
        kwargs = dict(marker.kwargs)
        unknown = sorted(set(kwargs) - {"mode", "rtol", "on_failure", "allow_failures"})
        if unknown or len(marker.args) > 1 or (marker.args and "mode" in kwargs):
            raise _marker_error(
                f"unexpected arguments {marker.args!r}, {kwargs!r}; expected "
                '(mode="debug", *, rtol=None, on_failure=None, allow_failures=False)'
            )
        raw_mode = marker.args[0] if marker.args else kwargs.get("mode", "debug")
        try:
            mode = self.mode if raw_mode is None else _mode(raw_mode, "mode")
            rtol = _positive_rtol(kwargs.get("rtol"), "rtol")
            on_failure = _on_failure(kwargs.get("on_failure"), "on_failure")
        except pytest.UsageError as exc:
            raise _marker_error(str(exc)) from None
        allow = kwargs.get("allow_failures", False)
        if not isinstance(allow, bool):
            raise _marker_error(f"allow_failures must be True or False, not {allow!r}")
        return _Spec(
            mode,
            self.options.rtol if rtol is None else rtol,
            self.options.on_failure if on_failure is None else on_failure,
            source="@pytest.mark.verigrad",
        )


def _marker_error(message: str) -> BaseException:
    return pytest.fail.Exception(f"@pytest.mark.verigrad: {message}", pytrace=False)


_SESSION = pytest.StashKey[_Session]()


# -- reports ---------------------------------------------------------------------------------


def _carried(exc: BaseException | None) -> dict[int, bool]:
    """Identities of the check results an exception (its chain, its group) carries, each with
    whether the carrier's message is the full report: an error's is; a verigrad warning turned
    into an error (``-W error``) has a one-line message, and its report must still be shown."""
    seen: set[int] = set()
    found: dict[int, bool] = {}
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        result = getattr(e, "result", None)
        if result is not None:
            found[id(result)] = found.get(id(result), False) or not isinstance(e, Warning)
        stack.extend((e.__cause__, e.__context__))
        group = getattr(e, "exceptions", None)
        if isinstance(group, tuple):
            stack.extend(x for x in group if isinstance(x, BaseException))
    return found


def _line(result: CheckResult, context: Mapping[str, Any]) -> str:
    who = result.function or "assert_gradient"
    where = [] if result.call_index is None else [f"call {result.call_index}"]
    trigger = context.get("trigger")
    if trigger:
        where.append(str(trigger))
    at = f" ({', '.join(where)})" if where else ""
    status = "passed" if result.passed else "FAILED" if result.failed else "undecided"
    return (
        f"{status:<9} {result.verdict:<16} {who}{at}: relative error "
        f"{result.relative_error:.3e} (threshold {result.threshold:.1e})"
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _listing(records: list[Record]) -> str:
    lines = [f"{_plural(len(records), 'gradient check')}:"]
    lines.extend("  " + _line(result, context) for result, context in records)
    return "\n".join(lines)


def _phase(item: pytest.Item, when: str) -> Generator[None, object, object]:
    """The body of the setup/call/teardown wrappers: the test's configuration, and the list
    of its checks. Whether the phase passes is the checks' business (they raise or not)."""
    state = item.config.stash.get(_SESSION, None)
    marker = item.get_closest_marker(MARKER)
    if state is None or (state.options.empty and marker is None):
        return (yield)
    try:
        spec = state.spec(marker)
    except pytest.fail.Exception:
        if when == "setup":
            raise
        return (yield)  # already reported at setup
    records: list[Record] = []
    try:
        with state.collecting(records), _configured(spec):
            outcome = yield
    except BaseException as exc:
        if records:
            raised = _carried(exc)
            warned = [r for r, _ in records if raised.get(id(r)) is False]
            text = _listing(records)
            if warned:
                text += "\n\nchecks behind verigrad warnings raised as errors:\n\n"
                text += "\n\n".join(r.summary() for r in warned)
            item.add_report_section(when, "verigrad", text)
        raise
    if records:
        item.add_report_section(when, "verigrad", _listing(records))
    return outcome


# -- tracebacks ------------------------------------------------------------------------------

#: verigrad's installed folder: traceback entries inside it are verigrad's own frames.
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _is_check_report(exc: BaseException) -> bool:
    """Whether ``exc`` reports a check (its message is the report): a failed or undecided
    check raised by verigrad, or a verigrad warning turned into an error."""
    from verigrad.exceptions import GradientMismatchError, InconclusiveCheckError, VerigradWarning

    return isinstance(exc, (GradientMismatchError, InconclusiveCheckError, VerigradWarning))


def _drop_verigrad_frames(exc: BaseException) -> None:
    """Unlink verigrad's own frames from ``exc``'s traceback, in place.

    pytest rebuilds tracebacks from the raw ``tb_next`` chain (``Traceback.cut``), so the
    chain itself is rewired; filtering pytest's entries would not last.
    """
    chain = []
    tb = exc.__traceback__
    while tb is not None:
        chain.append(tb)
        tb = tb.tb_next
    kept = [t for t in chain if not t.tb_frame.f_code.co_filename.startswith(_PACKAGE)]
    if not kept or kept[0] is not chain[0] or len(kept) == len(chain):
        return
    for here, after in zip(kept, [*kept[1:], None], strict=True):
        here.tb_next = after


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Show the user's frames, not verigrad's, when a test fails on a check.

    For an exception that reports a check (:func:`_is_check_report`), verigrad's own frames
    (the decorator's wrapper, the check, this plugin's fixture) are dropped from the traceback:
    it ends at the user's line that called the gradient or ``assert_gradient``, followed by
    verigrad's report. Every other exception keeps its whole traceback. ``--full-trace`` shows
    everything.
    """
    excinfo = call.excinfo
    if (
        excinfo is not None
        and "verigrad" in sys.modules
        and not item.config.getoption("fulltrace", False)
        and _is_check_report(excinfo.value)
    ):
        _drop_verigrad_frames(excinfo.value)
        excinfo.traceback = type(excinfo.traceback)(excinfo.tb)
    return (yield)


# -- hooks -----------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--verigrad``, ``--verigrad-rtol``, ``--verigrad-on-failure`` and their ini options."""
    group = parser.getgroup("verigrad", "verigrad gradient checks")
    group.addoption(
        "--verigrad",
        dest="verigrad_mode",
        choices=MODES,
        default=None,
        help="run decorated gradients in this verigrad mode (debug: check every call); a "
        "failed check fails the test that made it. Default: the ini option verigrad_mode, "
        "else unchanged.",
    )
    group.addoption(
        "--verigrad-rtol",
        dest="verigrad_rtol",
        default=None,
        metavar="RTOL",
        help="configure(rtol=RTOL): the threshold of decorated gradients declared without "
        "rtol=, and of the assert_gradient fixture (default: ini verigrad_rtol, else "
        "verigrad's configured one).",
    )
    group.addoption(
        "--verigrad-on-failure",
        dest="verigrad_on_failure",
        choices=ON_FAILURE,
        default=None,
        help="configure(on_failure=...): what a failed check of a decorated gradient declared "
        "without on_failure= does (default: ini verigrad_on_failure, else verigrad's "
        "configured one, 'raise' unless changed).",
    )
    parser.addini(
        "verigrad_mode", "verigrad mode for the test session: debug, sample or off", default=""
    )
    parser.addini(
        "verigrad_rtol",
        "threshold of decorated gradients and the assert_gradient fixture",
        default="",
    )
    parser.addini(
        "verigrad_on_failure",
        "on_failure of decorated gradients declared without one: raise, warn or log",
        default="",
    )


def _option(
    config: pytest.Config, name: str, flag: str, parse: Callable[[object, str], Any]
) -> Any:
    """The option ``name``: from the command line (``flag``), else the ini file, parsed."""
    raw = config.getoption(name, None)
    if raw is not None:
        return parse(raw, flag)
    return parse(config.getini(name), name)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; map the options onto verigrad's configuration for the session."""
    config.addinivalue_line("markers", MARKER_HELP)
    mode = _option(config, "verigrad_mode", "--verigrad", _mode)
    from_command_line = config.getoption("verigrad_mode", None) is not None
    spec = _Spec(
        mode,
        _option(config, "verigrad_rtol", "--verigrad-rtol", _positive_rtol),
        _option(config, "verigrad_on_failure", "--verigrad-on-failure", _on_failure),
        source=("--verigrad" if from_command_line else "ini verigrad_mode") if mode else "",
    )
    state = _Session(spec)
    config.stash[_SESSION] = state
    state.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the settings found at the start of the session."""
    state = config.stash.get(_SESSION, None)
    if state is not None:
        state.stop()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """Say how the plugin configures verigrad, when it does."""
    state = config.stash.get(_SESSION, None)
    if state is None or state.options.empty:
        return None
    spec = state.options
    lines = [] if spec.mode is None else [f"verigrad: mode {spec.mode} (from {spec.source})"]
    defaults = [f"{k}={v!r}" for k, v in (("rtol", spec.rtol), ("on_failure", spec.on_failure))]
    set_ = [d for d, v in zip(defaults, (spec.rtol, spec.on_failure), strict=True) if v is not None]
    if set_:
        lines.append(f"verigrad: configure({', '.join(set_)})")
    return lines


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """Run the setup phase in the test's mode; fail it on a failed check."""
    return (yield from _phase(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Run the test in its mode; fail it on a failed check."""
    return (yield from _phase(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    """Run the teardown phase in the test's mode; fail it on a failed check."""
    return (yield from _phase(item, "teardown"))


@pytest.fixture
def assert_gradient(request: pytest.FixtureRequest) -> Callable[..., CheckResult]:
    """:func:`verigrad.assert_gradient` with the configured threshold and ``seed=0``.

    The threshold is :func:`verigrad.get_settings`'s ``rtol`` when the check is made: the
    test's ``verigrad`` marker, ``--verigrad-rtol`` or the ini option ``verigrad_rtol`` set it,
    as they set it for decorated gradients. Keyword arguments given in the call win.
    """
    import verigrad

    state = request.config.stash.get(_SESSION, None)

    def check(loss: Any, x: Any, analytical: Any, **kwargs: Any) -> CheckResult:
        __tracebackhide__ = True  # a failure shows the test's line, not this one
        context = {"trigger": "assert_gradient fixture"}
        defaults: dict[str, Any] = {"seed": 0, "rtol": verigrad.get_settings().rtol}
        try:
            result = verigrad.assert_gradient(loss, x, analytical, **{**defaults, **kwargs})
        except (verigrad.GradientMismatchError, verigrad.InconclusiveCheckError) as exc:
            if state is not None:
                state.record(exc.result, {**context, "raises": True})
            raise
        if state is not None:
            state.record(result, context)
        return result

    return check
