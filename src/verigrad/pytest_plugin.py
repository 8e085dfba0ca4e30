"""pytest plugin: run decorated gradients in debug mode during tests, and fail on bad checks.

Registered through the ``pytest11`` entry point: installing verigrad is enough, no conftest.
Without any of the options below and without the marker, the plugin changes nothing.

Options (the command line wins over the ini file). As in typeguard's plugin, each option is
mapped onto verigrad's public configuration and nothing else: the mode through
:func:`verigrad.configure` (and :func:`verigrad.debug`, the one way to outrank a decorator's own
``mode=``), restored through :func:`verigrad.reset_defaults` and :func:`verigrad.configure`:

- ``--verigrad=debug|sample|off`` / ini ``verigrad_mode``: the mode for the whole session,
  set with :func:`verigrad.configure` from start to end (so threads a test starts follow it)
  and, in each test's setup, call and teardown, forced in the test's thread and its asyncio
  tasks as a :func:`verigrad.debug` block would (``debug`` then also overrides a decorator's
  own ``mode=``). The previous settings are restored after each test phase and at the end of
  the session. An unknown value is a usage error.
- ``--verigrad-rtol=RTOL`` / ini ``verigrad_rtol``: the threshold the ``assert_gradient``
  fixture uses (``verigrad.assert_gradient``'s own default otherwise).

While a mode is set, every check a decorated gradient makes is attributed to the test phase
running at the time. A failed check fails that test, with verigrad's report in the output,
also when the decorator was declared with ``on_failure="warn"`` or ``"log"``. A failure the
decorator raised as :class:`~verigrad.GradientMismatchError` is the test's business, as any
exception: it fails the test unless the test expects it (``pytest.raises``), and it is not
reported twice. Each test gets a "verigrad" report section listing its checks
(shown with a failure, or with ``-rP``). A failed check outside any test (at import during
collection, in a thread that outlived its test) makes the session fail and is shown in the
summary.

Marker ``@pytest.mark.verigrad(mode="debug", *, rtol=None, allow_failures=False)``: runs one
test (or every test of a class or module, through ``pytestmark``) in ``mode`` (positional or
keyword; ``"debug"`` by default, None for the session's mode) with the checking and
reporting described above, whatever the session's options. ``rtol`` sets the fixture's
threshold for this test; ``allow_failures=True`` lists failed checks without failing the
test, for tests that make a buggy gradient fail on purpose.

Fixture ``assert_gradient``: :func:`verigrad.assert_gradient` with the test's settings
(``rtol`` from the marker, the command line or the ini file; ``seed=0`` so the check is
reproducible); keyword arguments given in the call win. Its checks are listed in the test's
report section.

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
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
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
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
]

MODES = ("off", "sample", "debug")
MARKER = "verigrad"
MARKER_HELP = (
    'verigrad(mode="debug", *, rtol=None, allow_failures=False): run this test with '
    "decorated gradients in the given verigrad mode; a failed gradient check fails the test "
    "(unless allow_failures=True); rtol sets the assert_gradient fixture's threshold."
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


def _mode(raw: object, source: str) -> str | None:
    """``raw`` as a mode, None when unset; a usage error naming ``source`` otherwise."""
    if raw is None:
        return None
    mode = str(raw).strip().lower()
    if mode == "":
        return None
    if mode not in MODES:
        raise pytest.UsageError(
            f"{source}={raw!r} is not a verigrad mode; choose one of {', '.join(MODES)}"
        )
    return mode


@dataclass(frozen=True)
class _Spec:
    """What applies to one test: its mode, the fixture's threshold, whether failures fail."""

    mode: str | None
    rtol: float | None
    allow_failures: bool = False
    source: str = ""


@contextmanager
def _forced(mode: str) -> Iterator[None]:
    """``mode`` as verigrad's configuration (:func:`verigrad.configure`), and forced in this
    thread and its asyncio tasks as a :func:`verigrad.debug` block would (a decorator's own
    ``mode=`` outranks ``configure``); the previous configuration afterwards."""
    import verigrad

    previous = verigrad.get_settings()
    verigrad.configure(mode=mode)  # type: ignore[arg-type]
    try:
        with verigrad.debug(mode == "debug"):
            yield
    finally:
        _restore(previous)


def _restore(settings: Settings) -> None:
    """Put back ``settings`` with the public API: the defaults, then each field configured."""
    import verigrad

    verigrad.reset_defaults()
    verigrad.configure(**{f.name: getattr(settings, f.name) for f in fields(settings)})


class _Session:
    """The plugin's state for one pytest session: its settings and where checks go."""

    def __init__(self, mode: str | None, rtol: float | None, source: str) -> None:
        self.mode = mode
        self.rtol = rtol
        self.source = source
        self.outside: list[Record] = []
        self._sink: list[Record] | None = None
        self._lock = threading.Lock()
        self._stack = ExitStack()

    def start(self) -> None:
        """Apply the session's mode and observe every check until :meth:`stop`."""
        if self.mode is None:
            return
        from verigrad import _reporting

        self._stack.enter_context(_reporting.observing(self.observe))
        self._stack.enter_context(_forced(self.mode))

    def stop(self) -> None:
        """Restore the settings found at :meth:`start` and stop observing."""
        self._stack.close()

    def observe(self, result: CheckResult, context: Mapping[str, Any]) -> None:
        """Attribute one check to the test phase running now, or to the session."""
        with self._lock:
            sink = self._sink if self._sink is not None else self.outside
            sink.append((result, dict(context)))

    def record(self, result: CheckResult, context: Mapping[str, Any]) -> None:
        """Attribute a check made by the fixture to the current test phase, if it is watched."""
        with self._lock:
            if self._sink is not None:
                self._sink.append((result, dict(context)))

    @contextmanager
    def collecting(self, records: list[Record]) -> Iterator[None]:
        """Send the checks made inside the block to ``records``."""
        with ExitStack() as stack:
            if self.mode is None:  # nothing observes session-wide: observe this phase
                from verigrad import _reporting

                stack.enter_context(_reporting.observing(self.observe))
            with self._lock:
                previous, self._sink = self._sink, records
            try:
                yield
            finally:
                with self._lock:
                    self._sink = previous

    def spec(self, marker: pytest.Mark | None) -> _Spec:
        """The settings for a test carrying ``marker`` (or none)."""
        if marker is None:
            return _Spec(self.mode, self.rtol, source=self.source)
        kwargs = dict(marker.kwargs)
        unknown = sorted(set(kwargs) - {"mode", "rtol", "allow_failures"})
        if unknown or len(marker.args) > 1 or (marker.args and "mode" in kwargs):
            raise _marker_error(
                f"unexpected arguments {marker.args!r}, {kwargs!r}; expected "
                '(mode="debug", *, rtol=None, allow_failures=False)'
            )
        raw_mode = marker.args[0] if marker.args else kwargs.get("mode", "debug")
        try:
            mode = self.mode if raw_mode is None else _mode(raw_mode, "mode")
            rtol = _positive_rtol(kwargs.get("rtol"), "rtol")
        except pytest.UsageError as exc:
            raise _marker_error(str(exc)) from None
        allow = kwargs.get("allow_failures", False)
        if not isinstance(allow, bool):
            raise _marker_error(f"allow_failures must be True or False, not {allow!r}")
        return _Spec(
            mode, self.rtol if rtol is None else rtol, allow, source="@pytest.mark.verigrad"
        )

    def failures_outside(self) -> list[CheckResult]:
        """Failed checks that happened outside every test phase."""
        with self._lock:
            return [result for result, _ in self.outside if result.failed]


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
    """The body of the setup/call/teardown wrappers: mode, collection, and the verdict."""
    state = item.config.stash.get(_SESSION, None)
    marker = item.get_closest_marker(MARKER)
    if state is None or (state.mode is None and marker is None):
        return (yield)
    try:
        spec = state.spec(marker)
    except pytest.fail.Exception:
        if when == "setup":
            raise
        return (yield)  # already reported at setup
    records: list[Record] = []
    forced: AbstractContextManager[None] = _forced(spec.mode) if spec.mode else nullcontext()
    try:
        with state.collecting(records), forced:
            outcome = yield
    except BaseException as exc:
        if records:
            raised = _carried(exc)
            unreported = [
                r for r, c in records if r.failed and not c.get("raises") and id(r) not in raised
            ]
            warned = [r for r, _ in records if raised.get(id(r)) is False]
            text = _listing(records)
            if warned:
                text += "\n\nchecks behind verigrad warnings raised as errors:\n\n"
                text += "\n\n".join(r.summary() for r in warned)
            if unreported:
                text += "\n\nfailed checks not raised in this test:\n\n"
                text += "\n\n".join(r.summary() for r in unreported)
            item.add_report_section(when, "verigrad", text)
        raise
    if not records:
        return outcome
    item.add_report_section(when, "verigrad", _listing(records))
    # A failure raised as an error is the test's business: it failed the test, or the test
    # expected it (pytest.raises). Only failures that were never raised fail the test here.
    failed = [r for r, c in records if r.failed and not c.get("raises")]
    if failed and not spec.allow_failures:
        during = {"setup": "in setup", "call": "during the test", "teardown": "in teardown"}
        head = (
            f"verigrad: {_plural(len(failed), 'failed gradient check')} {during[when]} "
            f"(mode {spec.mode or 'unchanged'}, from {spec.source or 'the decorators'}), "
            "not raised as an error (on_failure='warn' or 'log'):"
        )
        pytest.fail("\n\n".join([head, *(r.summary() for r in failed)]), pytrace=False)
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
    """Add ``--verigrad``, ``--verigrad-rtol`` and their ini options."""
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
        help="relative-error threshold of the assert_gradient fixture "
        "(default: ini verigrad_rtol, else verigrad's own).",
    )
    parser.addini(
        "verigrad_mode", "verigrad mode for the test session: debug, sample or off", default=""
    )
    parser.addini("verigrad_rtol", "threshold of the assert_gradient fixture", default="")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; with a mode set, apply it and start observing checks."""
    config.addinivalue_line("markers", MARKER_HELP)
    option = config.getoption("verigrad_mode", None)
    if option is not None:
        mode, source = _mode(option, "--verigrad"), "--verigrad"
    else:
        mode, source = _mode(config.getini("verigrad_mode"), "verigrad_mode"), "ini verigrad_mode"
    raw_rtol = config.getoption("verigrad_rtol", None)
    if raw_rtol is not None:
        rtol = _positive_rtol(raw_rtol, "--verigrad-rtol")
    else:
        rtol = _positive_rtol(config.getini("verigrad_rtol"), "verigrad_rtol")
    state = _Session(mode, rtol, source if mode is not None else "")
    config.stash[_SESSION] = state
    state.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the settings found at the start of the session."""
    state = config.stash.get(_SESSION, None)
    if state is not None:
        state.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which verigrad mode the session runs in, when the plugin sets one."""
    state = config.stash.get(_SESSION, None)
    if state is None or state.mode is None:
        return None
    return f"verigrad: mode {state.mode} (from {state.source})"


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


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the session on a failed check made outside every test."""
    state = session.config.stash.get(_SESSION, None)
    if state is not None and state.failures_outside() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Show the failed checks made outside every test."""
    state = config.stash.get(_SESSION, None)
    failures = [] if state is None else state.failures_outside()
    if not failures:
        return
    terminalreporter.section("verigrad: failed gradient checks outside any test", red=True)
    for result in failures:
        terminalreporter.write_line(result.summary())


@pytest.fixture
def assert_gradient(request: pytest.FixtureRequest) -> Callable[..., CheckResult]:
    """:func:`verigrad.assert_gradient` with this test's settings.

    The threshold comes from the test's ``verigrad`` marker, ``--verigrad-rtol`` or the ini
    option ``verigrad_rtol``; the seed is 0. Keyword arguments given in the call win.
    """
    import verigrad

    state = request.config.stash.get(_SESSION, None)
    marker = request.node.get_closest_marker(MARKER)
    spec = state.spec(marker) if state is not None else _Spec(None, None)
    defaults: dict[str, Any] = {"seed": 0}
    if spec.rtol is not None:
        defaults["rtol"] = spec.rtol

    def check(loss: Any, x: Any, analytical: Any, **kwargs: Any) -> CheckResult:
        __tracebackhide__ = True  # a failure shows the test's line, not this one
        context = {"trigger": "assert_gradient fixture"}
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
