"""Tests for the pytest plugin (``verigrad.pytest_plugin``), run through pytest's ``pytester``."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import verigrad
from verigrad import _config, _reporting, pytest_plugin
from verigrad.result import CheckResult

pytest_plugins = ["pytester"]

#: Gradients for the inner test sessions: ``good`` is right, ``bad`` misses a factor of 2.
#: ``first=0, sample_rate=0.0``: in the default mode they never check; in debug, every call.
GRADIENTS = """
import threading

import numpy as np
import pytest
import verigrad

W = np.array([1.0, -2.0, 0.5])


def loss(w):
    return float(w @ w)


def _good(w):
    return 2 * w


def _bad(w):
    return w


good = verigrad.verified_gradient(loss=loss, first=0, sample_rate=0.0)(_good)
bad = verigrad.verified_gradient(loss=loss, first=0, sample_rate=0.0)(_bad)
bad_warn = verigrad.verified_gradient(loss=loss, first=0, sample_rate=0.0, on_failure="warn")(_bad)
bad_log = verigrad.verified_gradient(loss=loss, first=0, sample_rate=0.0, on_failure="log")(_bad)
bad_off = verigrad.verified_gradient(loss=loss, mode="off", on_failure="log")(_bad)
bad_raise = verigrad.verified_gradient(
    loss=loss, first=0, sample_rate=0.0, on_failure="raise"
)(_bad)


def _close(w):
    return 2 * w * (1 + 1e-3)


#: Relative error about 5e-4: fails verigrad's default rtol 1e-5, passes rtol 1e-2.
close = verigrad.verified_gradient(loss=loss, first=0, sample_rate=0.0)(_close)
close_strict = verigrad.verified_gradient(loss=loss, first=0, sample_rate=0.0, rtol=1e-5)(_close)
"""

#: A correct gradient whose loss drifts between calls: every check says "nondeterministic".
UNDECIDED = (
    "import itertools; _drift = itertools.count()\n"
    "undecided = verigrad.verified_gradient(\n"
    "    loss=lambda w: loss(w) + 1e-3 * next(_drift), first=0, sample_rate=0.0\n"
    ")(_good)"
)

#: The first line of verigrad's report for a failed check of ``bad*``.
REPORT_HEAD = "*gradient check FAILED for _bad (call 0): verdict 'mismatch'*"


def _write(pytester: pytest.Pytester, body: str) -> None:
    """A test module with the gradients above and the tests in ``body``."""
    pytester.makepyfile(test_inner=GRADIENTS + "\n\n" + textwrap.dedent(body).strip() + "\n")


class TestOptions:
    """The command-line and ini options."""

    def test_command_line_sets_mode(self, pytester: pytest.Pytester) -> None:
        """--verigrad=debug sets the mode and names its source in the header."""
        _write(pytester, "def test_mode():\n    assert verigrad.current_mode() == 'debug'")
        result = pytester.runpytest("--verigrad=debug")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["verigrad: mode debug (from --verigrad)"])

    def test_ini_sets_mode(self, pytester: pytest.Pytester) -> None:
        """The ini option verigrad_mode sets the mode when the command line does not."""
        pytester.makeini("[pytest]\nverigrad_mode = debug\n")
        _write(pytester, "def test_mode():\n    assert verigrad.current_mode() == 'debug'")
        result = pytester.runpytest()
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["verigrad: mode debug (from ini verigrad_mode)"])

    def test_command_line_wins_over_ini(self, pytester: pytest.Pytester) -> None:
        """--verigrad overrides the ini option."""
        pytester.makeini("[pytest]\nverigrad_mode = debug\n")
        _write(pytester, "def test_mode():\n    assert verigrad.current_mode() == 'off'")
        result = pytester.runpytest("--verigrad=off")
        result.assert_outcomes(passed=1)

    def test_invalid_command_line_value_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """An unknown --verigrad value stops pytest with a usage error listing the modes."""
        _write(pytester, "def test_nothing():\n    pass")
        result = pytester.runpytest("--verigrad=loud")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--verigrad: invalid choice: 'loud'*off*sample*debug*"])

    def test_invalid_ini_value_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """An unknown verigrad_mode in the ini file stops pytest with a usage error."""
        pytester.makeini("[pytest]\nverigrad_mode = loud\n")
        _write(pytester, "def test_nothing():\n    pass")
        result = pytester.runpytest()
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*verigrad_mode='loud' is not a verigrad mode*"])

    @pytest.mark.parametrize("value", ["0", "2", "tight"])
    def test_invalid_rtol_is_a_usage_error(self, pytester: pytest.Pytester, value: str) -> None:
        """A --verigrad-rtol outside (0, 1] stops pytest with a usage error."""
        _write(pytester, "def test_nothing():\n    pass")
        result = pytester.runpytest(f"--verigrad-rtol={value}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--verigrad-rtol=*must be a number in (0, 1]*"])

    def test_help_lists_the_options(self, pytester: pytest.Pytester) -> None:
        """pytest --help shows the options and the ini settings."""
        result = pytester.runpytest("--help")
        result.stdout.fnmatch_lines(
            ["*--verigrad={off,sample,debug}*", "*--verigrad-rtol=RTOL*", "*verigrad_mode*"]
        )


class TestDebugSession:
    """A session run with --verigrad=debug."""

    def test_correct_gradient_passes(self, pytester: pytest.Pytester) -> None:
        """A correct gradient is checked and the test passes."""
        _write(
            pytester,
            """
            def test_good():
                good(W)
                assert good.verigrad.stats.checks == 1
            """,
        )
        pytester.runpytest("--verigrad=debug").assert_outcomes(passed=1)

    def test_raised_failure_fails_the_test_once(self, pytester: pytest.Pytester) -> None:
        """A raised GradientMismatchError fails the test with the report, not repeated."""
        _write(pytester, "def test_bad():\n    bad(W)")
        result = pytester.runpytest("--verigrad=debug")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"*GradientMismatchError: {REPORT_HEAD.lstrip('*')}"])
        result.stdout.no_fnmatch_line("*not raised as an error*")

    @pytest.mark.parametrize("grad", ["bad_warn", "bad_log"])
    def test_warn_and_log_decorators_keep_their_choice(
        self, pytester: pytest.Pytester, grad: str
    ) -> None:
        """A decorator's own on_failure="warn" or "log" is its choice, as outside pytest: the
        check is made and listed, and the test does not fail (the plugin used to fail it)."""
        _write(
            pytester,
            f"def test_bad():\n    {grad}(W)\n    assert {grad}.verigrad.stats.failures == 1",
        )
        result = pytester.runpytest("--verigrad=debug", "-W", "default", "-rP")
        result.assert_outcomes(passed=1, warnings=1 if grad == "bad_warn" else 0)
        result.stdout.fnmatch_lines(["  FAILED    mismatch         _bad (call 0, debug)*"])
        result.stdout.no_fnmatch_line("*not raised as an error*")

    def test_warning_raised_as_error_is_reported_once(self, pytester: pytest.Pytester) -> None:
        """A GradientMismatchWarning turned into an error fails the test, not repeated."""
        _write(pytester, "def test_bad():\n    bad_warn(W)")
        result = pytester.runpytest("--verigrad=debug", "-W", "error")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*GradientMismatchWarning*", REPORT_HEAD])
        result.stdout.no_fnmatch_line("*not raised as an error*")

    def test_undecided_warning_shown_once_per_test(self, pytester: pytest.Pytester) -> None:
        """100 undecided checks in each of two tests give one warning per test, one line each."""
        tests = """
            def test_one():
                for _ in range(100):
                    undecided(W)

            def test_two():
                for _ in range(100):
                    undecided(W)
            """
        _write(pytester, UNDECIDED + "\n\n" + textwrap.dedent(tests))
        result = pytester.runpytest("--verigrad=debug", "-W", "default")
        result.assert_outcomes(passed=2, warnings=2)
        result.stdout.fnmatch_lines(
            ["*InconclusiveCheckWarning: verigrad: a check of test_inner._good could not decide*"]
        )
        result.stdout.no_fnmatch_line("*call 1*")

    def test_undecided_warning_as_error_fails_with_the_report(
        self, pytester: pytest.Pytester
    ) -> None:
        """``-W error::verigrad.InconclusiveCheckWarning`` fails the test, and the report
        section shows the check's full report."""
        _write(pytester, f"{UNDECIDED}\n\ndef test_drift():\n    undecided(W)")
        result = pytester.runpytest(
            "--verigrad=debug", "-W", "error::verigrad.InconclusiveCheckWarning"
        )
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*InconclusiveCheckWarning: verigrad: a check of test_inner._good*",
                "*checks behind verigrad warnings raised as errors:*",
                "*_good (call 0)*verdict 'nondeterministic'*",
            ]
        )

    def test_expected_error_passes(self, pytester: pytest.Pytester) -> None:
        """A test that expects the GradientMismatchError (pytest.raises) passes in debug mode."""
        _write(
            pytester,
            """
            def test_catches_the_bug():
                with pytest.raises(verigrad.GradientMismatchError):
                    bad(W)
            """,
        )
        result = pytester.runpytest("--verigrad=debug", "-rP")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["  FAILED    mismatch         _bad (call 0, debug)*"])

    def test_check_in_a_thread_is_made_and_listed(self, pytester: pytest.Pytester) -> None:
        """A gradient called in a thread the test starts is checked (the session's configured
        mode reaches the thread) and listed in the test's report section."""
        _write(
            pytester,
            """
            def test_bad_in_thread():
                t = threading.Thread(target=bad_log, args=(W,))
                t.start()
                t.join()
                assert bad_log.verigrad.stats.failures == 1
            """,
        )
        result = pytester.runpytest("--verigrad=debug", "-rP")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["  FAILED    mismatch         _bad (call 0, debug)*"])

    def test_debug_overrides_a_decorators_own_mode(self, pytester: pytest.Pytester) -> None:
        """In debug, a gradient declared with mode="off" is checked in the test's thread
        (its own on_failure="log" still holds: the test passes)."""
        _write(
            pytester,
            "def test_bad():\n    bad_off(W)\n    assert bad_off.verigrad.stats.checks == 1",
        )
        pytester.runpytest("--verigrad=debug").assert_outcomes(passed=1)

    def test_failure_in_a_fixture_errors_the_test(self, pytester: pytest.Pytester) -> None:
        """A failed check in a fixture's setup is reported as an error at setup."""
        _write(
            pytester,
            """
            @pytest.fixture
            def trained():
                bad(W)

            def test_uses(trained):
                pass
            """,
        )
        result = pytester.runpytest("--verigrad=debug")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*ERROR at setup of test_uses*", "*GradientMismatchError*"])

    def test_report_section_lists_the_checks(self, pytester: pytest.Pytester) -> None:
        """Each test gets a report section listing its checks (shown here with -rP)."""
        _write(pytester, "def test_good():\n    good(W)\n    good(W)")
        result = pytester.runpytest("--verigrad=debug", "-rP")
        result.stdout.fnmatch_lines(
            [
                "*Captured verigrad call*",
                "2 gradient checks:",
                "  passed    pass             _good (call 0, debug): relative error *",
                "  passed    pass             _good (call 1, debug): relative error *",
            ]
        )

    def test_failure_outside_a_test_fails_the_session(self, pytester: pytest.Pytester) -> None:
        """A failed check at import time raises (the configured on_failure): a collection
        error, which fails the session."""
        _write(pytester, "bad(W)\n\ndef test_nothing():\n    pass")
        result = pytester.runpytest("--verigrad=debug")
        result.assert_outcomes(errors=1)
        assert result.ret != pytest.ExitCode.OK
        result.stdout.fnmatch_lines(["*GradientMismatchError*"])


class TestDefaultSession:
    """A session without the option: the plugin changes nothing."""

    def test_nothing_changes_without_the_option(self, pytester: pytest.Pytester) -> None:
        """The mode stays, a logged failure does not fail the test, no header is shown."""
        _write(
            pytester,
            """
            def test_unchanged():
                assert verigrad.current_mode() == "sample"
                bad(W)
                assert bad.verigrad.stats.checks == 0
                once = verigrad.verified_gradient(loss=loss, on_failure="log")(_bad)
                once(W)
                assert once.verigrad.stats.failures == 1
            """,
        )
        result = pytester.runpytest()
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line("*verigrad: mode*")

    def test_no_observer_without_the_option(self, pytester: pytest.Pytester) -> None:
        """Without the option and the marker, no check observer is registered."""
        _write(
            pytester,
            """
            def test_unobserved():
                from verigrad import _reporting
                assert _reporting._observers == ()
            """,
        )
        pytester.runpytest().assert_outcomes(passed=1)

    def test_plugin_module_imports_only_stdlib_and_pytest(self) -> None:
        """The plugin's top-level imports are the standard library and pytest only."""
        tree = ast.parse(inspect.getsource(pytest_plugin))
        modules: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
        stdlib = {
            "__future__",
            "collections",
            "contextlib",
            "dataclasses",
            "math",
            "os",
            "sys",
            "threading",
        }
        assert modules <= stdlib | {"typing", "pytest"}

    def test_loading_the_plugin_imports_no_numpy(self) -> None:
        """Loading the plugin (and so the package) imports none of numpy, structlog, wrapt."""
        code = (
            "import sys, verigrad.pytest_plugin\n"
            "print(sorted(m for m in ('numpy', 'structlog', 'wrapt') if m in sys.modules))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[]"


class TestUsersFrames:
    """A failed check shows the user's frames, not verigrad's (issue 12, item 7)."""

    BODY = """
        def train(w):
            return bad(w)

        def test_decorated():
            train(W)

        def test_assert():
            verigrad.assert_gradient(loss, W, _bad)

        def test_fixture(assert_gradient):
            assert_gradient(loss, W, _bad)

        def test_loss_raises():
            def broken(w):
                raise ValueError("broken loss")
            verigrad.check_gradient(broken, W, _good)
        """

    def _internal_lines(self, lines: list[str]) -> list[str]:
        return [line for line in lines if "verigrad/" in line.replace("\\", "/")]

    def test_no_verigrad_frames(self, pytester: pytest.Pytester) -> None:
        """Each failure ends at the user's line, followed by verigrad's report; it used to
        start with three frames inside verigrad."""
        _write(pytester, self.BODY)
        result = pytester.runpytest("--verigrad=debug", "-k", "not loss_raises")
        result.assert_outcomes(failed=3)
        assert self._internal_lines(result.stdout.lines) == []
        result.stdout.fnmatch_lines(
            [
                "*return bad(w)*",
                "test_inner.py:*: GradientMismatchError",
                "*verigrad.assert_gradient(loss, W, _bad)*",
                "*assert_gradient(loss, W, _bad)*",
            ]
        )
        assert sum("hint: analytical = 0.5 x numerical" in line for line in result.stdout.lines)

    def test_full_trace_shows_everything(self, pytester: pytest.Pytester) -> None:
        """--full-trace keeps verigrad's frames, for debugging verigrad itself."""
        _write(pytester, self.BODY)
        result = pytester.runpytest("--verigrad=debug", "-k", "decorated", "--full-trace")
        result.assert_outcomes(failed=1)
        assert self._internal_lines(result.stdout.lines)

    def test_other_exceptions_keep_their_frames(self, pytester: pytest.Pytester) -> None:
        """A loss that raises inside a check is not a check report: the whole path shows."""
        _write(pytester, self.BODY)
        result = pytester.runpytest("-k", "loss_raises")
        result.assert_outcomes(failed=1)
        assert self._internal_lines(result.stdout.lines)
        result.stdout.fnmatch_lines(["*ValueError: broken loss*"])


class TestOptionsAreConfiguration:
    """The plugin maps its options onto verigrad's public configuration, as typeguard's does."""

    def test_no_private_state(self) -> None:
        """The plugin sets and restores settings through the public API only."""
        source = inspect.getsource(pytest_plugin)
        assert "_HOLDER" not in source
        assert "from verigrad import _config" not in source

    def test_option_is_the_configured_mode(self, pytester: pytest.Pytester) -> None:
        """With --verigrad=sample the configuration says sample, in tests and their threads."""
        _write(
            pytester,
            """
            def test_configured():
                assert verigrad.get_settings().mode == "sample"
                seen = []
                t = threading.Thread(target=lambda: seen.append(verigrad.current_mode()))
                t.start()
                t.join()
                assert seen == ["sample"]
            """,
        )
        pytester.runpytest("--verigrad=sample").assert_outcomes(passed=1)


class TestSettingsRestored:
    """The session's settings do not outlive it."""

    def test_settings_restored_after_session(self, pytester: pytest.Pytester) -> None:
        """After an in-process debug session, settings, context and observers are as before."""
        verigrad.configure(mode="off")
        before = verigrad.get_settings()
        _write(
            pytester,
            """
            def test_changes_settings():
                verigrad.configure(mode="sample")
                assert verigrad.current_mode() == "debug"
            """,
        )
        pytester.runpytest_inprocess("--verigrad=debug").assert_outcomes(passed=1)
        assert verigrad.get_settings() == before
        assert _config._CONTEXT_MODE.get() is None
        assert _reporting._observers == ()

    def test_phase_settings_restored_between_tests(self, pytester: pytest.Pytester) -> None:
        """A test's own configure() does not leak into the next test of a debug session."""
        _write(
            pytester,
            """
            def test_a():
                verigrad.reset_defaults()

            def test_b():
                assert verigrad.get_settings().mode == "debug"
            """,
        )
        pytester.runpytest("--verigrad=debug").assert_outcomes(passed=2)


class TestMarker:
    """``@pytest.mark.verigrad``."""

    def test_marker_runs_one_test_in_debug(self, pytester: pytest.Pytester) -> None:
        """The marked test checks and fails; the unmarked one is unchanged."""
        _write(
            pytester,
            """
            @pytest.mark.verigrad
            def test_marked():
                bad(W)

            def test_unmarked():
                assert verigrad.current_mode() == "sample"
                bad(W)
            """,
        )
        result = pytester.runpytest("--strict-markers")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["FAILED test_inner.py::test_marked - *"])

    def test_marker_mode_off_in_a_debug_session(self, pytester: pytest.Pytester) -> None:
        """mode="off" on a test of a debug session turns its checks off."""
        _write(
            pytester,
            """
            @pytest.mark.verigrad(mode="off")
            def test_off():
                assert verigrad.current_mode() == "off"
                bad(W)
            """,
        )
        pytester.runpytest("--verigrad=debug").assert_outcomes(passed=1)

    def test_marker_on_a_class(self, pytester: pytest.Pytester) -> None:
        """A marker on a class applies to each of its tests."""
        _write(
            pytester,
            """
            @pytest.mark.verigrad("debug")
            class TestAll:
                def test_one(self):
                    bad(W)

                def test_two(self):
                    good(W)
            """,
        )
        pytester.runpytest().assert_outcomes(passed=1, failed=1)

    def test_allow_failures_lists_without_failing(self, pytester: pytest.Pytester) -> None:
        """allow_failures=True keeps a failed check from failing the test."""
        _write(
            pytester,
            """
            @pytest.mark.verigrad(allow_failures=True)
            def test_catches_bug():
                with pytest.raises(verigrad.GradientMismatchError):
                    bad(W)
            """,
        )
        result = pytester.runpytest("-rP")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["  FAILED    mismatch         _bad (call 0, debug)*"])

    def test_bad_marker_arguments_error_the_test(self, pytester: pytest.Pytester) -> None:
        """An unknown mode or keyword in the marker errors the test with a clear message."""
        _write(
            pytester,
            """
            @pytest.mark.verigrad(mode="loud")
            def test_mode():
                pass

            @pytest.mark.verigrad(sample_rate=1.0)
            def test_keyword():
                pass
            """,
        )
        result = pytester.runpytest()
        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines(
            [
                "*@pytest.mark.verigrad: mode='loud' is not a verigrad mode*",
                "*@pytest.mark.verigrad: unexpected arguments*sample_rate*",
            ]
        )


class TestFixture:
    """The ``assert_gradient`` fixture."""

    def test_fixture_checks_with_session_rtol(self, pytester: pytest.Pytester) -> None:
        """The fixture uses --verigrad-rtol and returns the passing result."""
        _write(
            pytester,
            """
            def test_fixture(assert_gradient):
                result = assert_gradient(loss, W, _good)
                assert result.passed and result.threshold == 1e-4
            """,
        )
        pytester.runpytest("--verigrad-rtol=1e-4").assert_outcomes(passed=1)

    def test_fixture_rtol_from_ini_and_marker(self, pytester: pytest.Pytester) -> None:
        """The marker's rtol beats the ini's; keyword arguments in the call beat both."""
        pytester.makeini("[pytest]\nverigrad_rtol = 1e-3\n")
        _write(
            pytester,
            """
            def test_ini(assert_gradient):
                assert assert_gradient(loss, W, _good).threshold == 1e-3

            @pytest.mark.verigrad(rtol=1e-2)
            def test_marker(assert_gradient):
                assert assert_gradient(loss, W, _good).threshold == 1e-2
                assert assert_gradient(loss, W, _good, rtol=1e-6).threshold == 1e-6
            """,
        )
        pytester.runpytest().assert_outcomes(passed=2)

    def test_fixture_failure_fails_with_the_report(self, pytester: pytest.Pytester) -> None:
        """A wrong gradient fails the test with verigrad's report."""
        _write(
            pytester,
            """
            def test_fixture(assert_gradient):
                assert_gradient(loss, W, _bad)
            """,
        )
        result = pytester.runpytest()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*GradientMismatchError: gradient check FAILED*"])


class TestObserving:
    """``_reporting.observing``, the hook the plugin watches checks through."""

    @staticmethod
    def _check() -> None:
        grad = verigrad.verified_gradient(loss=lambda w: float(w @ w), mode="debug")(
            lambda w: 2 * w
        )
        grad(np.ones(2))

    def test_observer_sees_each_check_with_its_context(self) -> None:
        """An observer receives every reported result and its context inside the block."""
        seen: list[tuple[CheckResult, dict[str, object]]] = []
        with _reporting.observing(lambda result, context: seen.append((result, dict(context)))):
            self._check()
        self._check()
        assert len(seen) == 1
        assert seen[0][0].passed
        assert seen[0][1] == {"trigger": "debug", "raises": False}

    def test_observer_learns_when_the_decorator_raises(self) -> None:
        """The context says whether the failure is raised (on_failure='raise') or not."""
        seen: list[dict[str, object]] = []

        def loss(w: np.ndarray) -> float:
            return float(w @ w)

        raising = verigrad.verified_gradient(loss=loss, mode="debug")(lambda w: w)
        logging_only = verigrad.verified_gradient(loss=loss, mode="debug", on_failure="log")(
            lambda w: w
        )
        with _reporting.observing(lambda result, context: seen.append(dict(context))):
            with pytest.raises(verigrad.GradientMismatchError):
                raising(np.ones(2))
            logging_only(np.ones(2))
        assert [c["raises"] for c in seen] == [True, False]

    def test_nested_registrations_are_removed_in_turn(self) -> None:
        """The same observer registered twice is called twice, and each block removes one."""
        calls: list[int] = []

        def observer(result: CheckResult, context: object) -> None:
            calls.append(1)

        with _reporting.observing(observer):
            with _reporting.observing(observer):
                self._check()
            assert _reporting._observers == (observer,)
            self._check()
        assert _reporting._observers == ()
        assert len(calls) == 3


class TestDecoratorDefaults:
    """--verigrad-rtol and --verigrad-on-failure configure decorated gradients (issue 12, 7)."""

    def test_rtol_option_reaches_a_decorated_function(self, pytester: pytest.Pytester) -> None:
        """--verigrad-rtol is configure(rtol=...): a decorator without rtol= follows it, one
        with its own rtol= keeps it."""
        _write(
            pytester,
            """
            def test_follows():
                assert verigrad.get_settings().rtol == 1e-2
                close(W)
                assert close.verigrad.last_result.threshold == 1e-2

            def test_own_rtol_wins():
                with pytest.raises(verigrad.GradientMismatchError):
                    close_strict(W)
            """,
        )
        pytester.runpytest("--verigrad=debug", "--verigrad-rtol=1e-2").assert_outcomes(passed=2)

    def test_default_rtol_fails_the_close_gradient(self, pytester: pytest.Pytester) -> None:
        """Without the option the same gradient fails verigrad's default threshold."""
        _write(pytester, "def test_close():\n    close(W)")
        pytester.runpytest("--verigrad=debug").assert_outcomes(failed=1)

    def test_rtol_from_ini_and_marker_reach_decorators(self, pytester: pytest.Pytester) -> None:
        """The ini's verigrad_rtol and the marker's rtol configure decorated gradients too."""
        pytester.makeini("[pytest]\nverigrad_rtol = 1e-3\n")
        _write(
            pytester,
            """
            @pytest.mark.verigrad
            def test_ini():
                close(W)
                assert close.verigrad.last_result.threshold == 1e-3

            @pytest.mark.verigrad(rtol=1e-2)
            def test_marker():
                close(W)
                assert close.verigrad.last_result.threshold == 1e-2
            """,
        )
        pytester.runpytest().assert_outcomes(passed=2)

    def test_on_failure_option_reaches_decorators_without_one(
        self, pytester: pytest.Pytester
    ) -> None:
        """--verigrad-on-failure=warn: a decorator without on_failure= warns; one declared
        with on_failure="raise" still raises."""
        _write(
            pytester,
            """
            def test_warns():
                assert verigrad.get_settings().on_failure == "warn"
                with pytest.warns(verigrad.GradientMismatchWarning):
                    bad(W)

            def test_own_choice_wins():
                with pytest.raises(verigrad.GradientMismatchError):
                    bad_raise(W)
            """,
        )
        result = pytester.runpytest("--verigrad=debug", "--verigrad-on-failure=warn")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["verigrad: configure(on_failure='warn')"])

    def test_on_failure_from_ini_and_marker(self, pytester: pytest.Pytester) -> None:
        """The ini's verigrad_on_failure and the marker's on_failure configure it too."""
        pytester.makeini("[pytest]\nverigrad_on_failure = log\n")
        _write(
            pytester,
            """
            @pytest.mark.verigrad
            def test_ini():
                bad(W)
                assert bad.verigrad.stats.failures == 1

            @pytest.mark.verigrad(on_failure="raise")
            def test_marker():
                with pytest.raises(verigrad.GradientMismatchError):
                    bad(W)
            """,
        )
        pytester.runpytest().assert_outcomes(passed=2)

    def test_invalid_on_failure_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """An unknown value on the command line or in the ini file stops pytest."""
        _write(pytester, "def test_nothing():\n    pass")
        result = pytester.runpytest("--verigrad-on-failure=shout")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        pytester.makeini("[pytest]\nverigrad_on_failure = shout\n")
        result = pytester.runpytest()
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*verigrad_on_failure='shout' is not an on_failure action*"])

    def test_settings_restored_after_the_session(self, pytester: pytest.Pytester) -> None:
        """rtol and on_failure configured by the options do not outlive the session."""
        verigrad.configure(rtol=1e-4, on_failure="log")
        try:
            before = verigrad.get_settings()
            _write(
                pytester,
                """
                def test_configured():
                    settings = verigrad.get_settings()
                    assert (settings.rtol, settings.on_failure) == (1e-2, "warn")
                """,
            )
            result = pytester.runpytest_inprocess(
                "--verigrad-rtol=1e-2", "--verigrad-on-failure=warn"
            )
            result.assert_outcomes(passed=1)
            assert verigrad.get_settings() == before
            assert _reporting._observers == ()
        finally:
            verigrad.reset_defaults()

    def test_fixture_follows_a_configured_rtol(self, pytester: pytest.Pytester) -> None:
        """The fixture's threshold is the configured rtol, whoever configured it."""
        _write(
            pytester,
            """
            def test_fixture(assert_gradient):
                verigrad.configure(rtol=1e-2)
                assert assert_gradient(loss, W, _close).threshold == 1e-2
            """,
        )
        pytester.runpytest().assert_outcomes(passed=1)
