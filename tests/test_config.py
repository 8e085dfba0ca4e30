"""Tests for process-wide settings: the mode from the environment, configure() and debug()."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pytest

import verigrad as vg
from verigrad import _config

W = np.array([0.5, -1.5])


def square_loss(w: np.ndarray) -> float:
    return float(w @ w)


def make_never_sampled() -> Any:
    """A decorated gradient whose own schedule never checks: only ``debug()`` can."""

    @vg.verified_gradient(loss=square_loss, sample_rate=0.0, first=0)
    def grad(w: np.ndarray) -> np.ndarray:
        return 2 * w

    return grad


def run_python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter with a clean VERIGRAD_MODE; return its stdout."""
    environ = {k: v for k, v in os.environ.items() if k != "VERIGRAD_MODE"}
    environ.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return proc.stdout.strip()


class TestSettings:
    def test_default_mode_is_sample(self) -> None:
        """Without configuration the mode is ``"sample"``."""
        assert vg.Settings().mode == "sample"
        assert vg.get_settings() == _config.settings_from_env(os.environ)

    def test_settings_are_immutable(self) -> None:
        """Settings cannot be changed in place; ``configure`` replaces them."""
        settings = vg.get_settings()
        with pytest.raises(AttributeError):
            settings.mode = "off"  # type: ignore[misc]

    def test_settings_validate_mode(self) -> None:
        """A Settings object with an unknown mode cannot be built."""
        with pytest.raises(vg.InvalidArgumentError, match="mode='loud'"):
            vg.Settings(mode="loud")  # type: ignore[arg-type]


class TestSettingsFromEnv:
    @pytest.mark.parametrize(
        ("raw", "mode"),
        [("debug", "debug"), ("off", "off"), ("sample", "sample"), (" DEBUG ", "debug")],
    )
    def test_valid_values(self, raw: str, mode: str) -> None:
        """VERIGRAD_MODE is read case-insensitively, ignoring surrounding spaces."""
        assert _config.settings_from_env({"VERIGRAD_MODE": raw}).mode == mode

    @pytest.mark.parametrize("environ", [{}, {"VERIGRAD_MODE": ""}, {"VERIGRAD_MODE": "  "}])
    def test_unset_or_empty_is_sample(self, environ: dict[str, str]) -> None:
        """An unset or blank VERIGRAD_MODE means the default ``"sample"``."""
        assert _config.settings_from_env(environ).mode == "sample"

    def test_bad_value_warns_and_falls_back(self) -> None:
        """An unknown VERIGRAD_MODE warns, naming the variable and value, and uses ``"sample"``."""
        with pytest.warns(vg.VerigradWarning, match=r"VERIGRAD_MODE='verbose'.*'sample'"):
            settings = _config.settings_from_env({"VERIGRAD_MODE": "verbose"})
        assert settings.mode == "sample"

    def test_environment_is_read_at_import(self) -> None:
        """VERIGRAD_MODE set before import is the process default, also after reset_defaults."""
        out = run_python(
            "import verigrad as vg\n"
            "print(vg.get_settings().mode)\n"
            "vg.configure(mode='off')\n"
            "print(vg.get_settings().mode)\n"
            "print(vg.reset_defaults().mode)\n",
            VERIGRAD_MODE="debug",
        )
        assert out.split() == ["debug", "off", "debug"]

    def test_bad_environment_at_import_warns_not_fails(self) -> None:
        """A bad VERIGRAD_MODE, read once when verigrad is first used, warns and falls back."""
        out = run_python(
            "import warnings\n"
            "with warnings.catch_warnings(record=True) as rec:\n"
            "    warnings.simplefilter('always')\n"
            "    import verigrad as vg\n"
            "    mode = vg.get_settings().mode\n"
            "print(mode)\n"
            "print(sum(issubclass(r.category, vg.VerigradWarning) for r in rec))\n",
            VERIGRAD_MODE="nonsense",
        )
        assert out.split() == ["sample", "1"]


class TestConfigure:
    def test_configure_changes_mode(self) -> None:
        """``configure(mode=...)`` changes the process-wide mode and returns the new settings."""
        assert vg.configure(mode="off") == vg.Settings(mode="off")
        assert vg.get_settings().mode == "off"
        assert vg.current_mode() == "off"

    def test_configure_none_keeps_mode(self) -> None:
        """``configure()`` with no arguments changes nothing."""
        vg.configure(mode="debug")
        assert vg.configure().mode == "debug"

    def test_invalid_mode_raises_naming_mode(self) -> None:
        """An unknown mode is an InvalidArgumentError naming ``mode`` and the valid choices."""
        with pytest.raises(vg.InvalidArgumentError, match=r"mode='loud'.*'off'.*'sample'.*'debug'"):
            vg.configure(mode="loud")  # type: ignore[arg-type]
        assert vg.get_settings().mode == "sample"

    def test_invalid_mode_is_a_value_error(self) -> None:
        """The error is also a ValueError, for callers that catch builtins."""
        with pytest.raises(ValueError, match="mode"):
            vg.configure(mode="Debug")  # type: ignore[arg-type]

    def test_reset_defaults_restores(self) -> None:
        """``reset_defaults`` undoes ``configure``."""
        vg.configure(mode="off")
        assert vg.reset_defaults() == _config.settings_from_env(os.environ)
        assert vg.get_settings() == _config.settings_from_env(os.environ)

    def test_configure_applies_to_existing_functions(self) -> None:
        """Changing the mode affects functions decorated before the change."""
        grad = make_never_sampled()
        vg.configure(mode="debug")
        grad(W)
        vg.configure(mode="off")
        grad(W)
        assert grad.verigrad.stats.checks == 1
        assert grad.verigrad.stats.calls == 1  # "off" calls through and counts nothing


class TestCurrentMode:
    def test_override_beats_configure(self) -> None:
        """A function's own mode beats the process-wide one."""
        vg.configure(mode="off")
        assert vg.current_mode("debug") == "debug"
        assert vg.current_mode(None) == "off"

    def test_debug_beats_override(self) -> None:
        """A ``debug()`` block beats a function's own ``mode="off"``."""
        with vg.debug():
            assert vg.current_mode("off") == "debug"


class TestDebug:
    def test_debug_forces_checks(self) -> None:
        """Inside ``debug()`` every call of a decorated gradient is checked."""
        grad = make_never_sampled()
        with vg.debug():
            for _ in range(4):
                grad(W)
        grad(W)
        assert grad.verigrad.stats.checks == 4

    def test_debug_restores_after_exit(self) -> None:
        """The mode returns to what it was when the block ends."""
        vg.configure(mode="off")
        with vg.debug():
            assert vg.current_mode() == "debug"
        assert vg.current_mode() == "off"

    def test_debug_restores_after_exception(self) -> None:
        """The mode is restored also when the block raises, and the exception propagates."""
        with pytest.raises(RuntimeError, match="boom"), vg.debug():
            raise RuntimeError("boom")
        assert vg.current_mode() == "sample"

    def test_debug_nests(self) -> None:
        """Nested blocks stack: leaving the inner one keeps the outer one in force."""
        with vg.debug():
            with vg.debug():
                assert vg.current_mode() == "debug"
            assert vg.current_mode() == "debug"
        assert vg.current_mode() == "sample"

    def test_debug_false_turns_forcing_off_inside(self) -> None:
        """``debug(False)`` inside a debug block falls back to the normal mode, then restores."""
        grad = make_never_sampled()
        with vg.debug():
            with vg.debug(False):
                assert vg.current_mode() == "sample"
                assert vg.current_mode("off") == "off"
                grad(W)
            assert vg.current_mode() == "debug"
            grad(W)
        assert grad.verigrad.stats.checks == 1

    def test_debug_does_not_change_settings(self) -> None:
        """``get_settings`` reports the process-wide settings even inside ``debug()``."""
        with vg.debug():
            assert vg.get_settings().mode == "sample"

    def test_debug_is_thread_local(self) -> None:
        """A ``debug()`` block in one thread does not make calls in another thread checked."""
        grad = make_never_sampled()
        entered = threading.Event()
        main_done = threading.Event()
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                with vg.debug():
                    entered.set()
                    assert main_done.wait(10)
                    grad(W)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                entered.set()

        thread = threading.Thread(target=worker)
        thread.start()
        assert entered.wait(10)
        for _ in range(20):
            grad(W)
        checks_from_main = grad.verigrad.stats.checks
        assert vg.current_mode() == "sample"
        main_done.set()
        thread.join(10)
        assert not errors
        assert checks_from_main == 0
        assert grad.verigrad.stats.checks == 1
        assert grad.verigrad.stats.calls == 21

    def test_debug_is_task_local(self) -> None:
        """A ``debug()`` block in one asyncio task does not affect a concurrently running task."""
        grad = make_never_sampled()

        async def main() -> tuple[int, int]:
            entered = asyncio.Event()
            other_done = asyncio.Event()
            seen: dict[str, Any] = {}

            async def debugging() -> None:
                with vg.debug():
                    entered.set()
                    await other_done.wait()
                    grad(W)
                    grad(W)
                seen["debug_task_mode_after"] = vg.current_mode() == "sample"

            async def plain() -> None:
                await entered.wait()
                for _ in range(10):
                    grad(W)
                    await asyncio.sleep(0)
                seen["plain_checks"] = grad.verigrad.stats.checks
                seen["plain_mode_debug"] = vg.current_mode() == "debug"
                other_done.set()

            await asyncio.gather(debugging(), plain())
            assert seen["debug_task_mode_after"]
            assert not seen["plain_mode_debug"]
            return seen["plain_checks"], grad.verigrad.stats.checks

        plain_checks, total_checks = asyncio.run(main())
        assert plain_checks == 0
        assert total_checks == 2


def close_grad(w: np.ndarray) -> np.ndarray:
    """Off by a relative 1e-3: fails the default rtol 1e-5, passes rtol 1e-2."""
    return 2 * w * (1 + 1e-3)


class TestDecoratorDefaults:
    """``configure`` carries the decorator defaults ``rtol`` and ``on_failure`` (issue 12, 7)."""

    def test_built_in_defaults(self) -> None:
        """Unconfigured, the defaults are rtol 1e-5 and on_failure "raise"."""
        settings = vg.Settings()
        assert (settings.rtol, settings.on_failure) == (1e-5, "raise")
        assert vg.get_settings().rtol == 1e-5
        assert vg.get_settings().on_failure == "raise"

    def test_configure_sets_and_keeps_them(self) -> None:
        """Each argument changes its own field; None keeps the others."""
        vg.configure(rtol=1e-3)
        settings = vg.configure(on_failure="warn")
        assert settings == vg.Settings(rtol=1e-3, on_failure="warn")
        assert vg.configure(mode="off") == vg.Settings(mode="off", rtol=1e-3, on_failure="warn")
        assert vg.reset_defaults() == _config.settings_from_env(os.environ)

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"rtol": 0.0}, vg.InvalidArgumentError, r"rtol=0\.0"),
            ({"rtol": 2}, vg.InvalidArgumentError, "rtol=2"),
            ({"rtol": float("nan")}, vg.InvalidArgumentError, "rtol=nan"),
            ({"rtol": "1e-3"}, vg.InvalidTypeError, "rtol must be a number"),
            ({"rtol": True}, vg.InvalidTypeError, "rtol must be a number"),
            ({"on_failure": "shout"}, vg.InvalidArgumentError, r"on_failure='shout'.*'raise'"),
        ],
    )
    def test_invalid_values_name_the_argument(
        self, kwargs: dict[str, Any], error: type[Exception], match: str
    ) -> None:
        """A bad value raises naming its argument, as the decorator does, and changes nothing
        (also when another argument in the same call was valid)."""
        before = vg.get_settings()
        with pytest.raises(error, match=match):
            vg.configure(mode="off", **kwargs)
        assert vg.get_settings() == before
        with pytest.raises(error, match=match):
            vg.Settings(**kwargs)
        with pytest.raises(error, match=match):
            vg.verified_gradient(loss=square_loss, **kwargs)

    def test_numpy_rtol_is_accepted(self) -> None:
        """A numpy scalar is a number."""
        assert vg.configure(rtol=np.float32(0.5)).rtol == 0.5

    def test_rtol_reaches_a_decorator_without_its_own(self) -> None:
        """configure(rtol=...) changes a decorator without rtol, not one with rtol, including
        functions decorated before the call."""
        follows = vg.verified_gradient(loss=square_loss, mode="debug")(close_grad)
        own = vg.verified_gradient(loss=square_loss, mode="debug", rtol=1e-5)(close_grad)
        with pytest.raises(vg.GradientMismatchError):
            follows(W)
        vg.configure(rtol=1e-2)
        follows(W)
        assert follows.verigrad.last_result is not None
        assert follows.verigrad.last_result.threshold == 1e-2
        with pytest.raises(vg.GradientMismatchError):
            own(W)
        assert own.verigrad.last_result is not None
        assert own.verigrad.last_result.threshold == 1e-5
        vg.reset_defaults()
        with pytest.raises(vg.GradientMismatchError):
            follows(W)

    def test_on_failure_reaches_a_decorator_without_its_own(self) -> None:
        """configure(on_failure=...) changes a decorator without on_failure, not one with it."""

        def bad(w: np.ndarray) -> np.ndarray:
            return w

        follows = vg.verified_gradient(loss=square_loss, mode="debug")(bad)
        own = vg.verified_gradient(loss=square_loss, mode="debug", on_failure="raise")(bad)
        vg.configure(on_failure="warn")
        with pytest.warns(vg.GradientMismatchWarning):
            follows(W)
        with pytest.raises(vg.GradientMismatchError):
            own(W)
        vg.configure(on_failure="log")
        follows(W)
        assert follows.verigrad.stats.failures == 2

    def test_options_record_what_was_given(self) -> None:
        """The decorator's options say None for defaults it takes from the configuration."""
        options = vg.verified_gradient(loss=square_loss)(close_grad).verigrad.options
        assert (options.rtol, options.on_failure) == (None, None)
        options = vg.verified_gradient(loss=square_loss, rtol=1e-3, on_failure="log")(
            close_grad
        ).verigrad.options
        assert (options.rtol, options.on_failure) == (1e-3, "log")

    def test_unchecked_calls_do_not_read_the_defaults(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The hot path reads the mode only: rtol and on_failure are read on checked calls."""
        reads: list[str] = []

        class Watched:
            mode = "sample"

            @property
            def rtol(self) -> float:
                reads.append("rtol")
                return 1e-5

            @property
            def on_failure(self) -> str:
                reads.append("on_failure")
                return "raise"

        grad = vg.verified_gradient(loss=square_loss, sample_rate=0.0, first=0, every=5)(
            lambda w: 2 * w
        )
        monkeypatch.setattr(_config._HOLDER, "settings", Watched())
        for _ in range(4):
            grad(W)
        assert reads == []
        grad(W)  # call 5: checked
        assert sorted(reads) == ["on_failure", "rtol"]

    def test_debug_still_outranks_a_decorators_own_mode(self) -> None:
        """Unchanged: a debug() block checks a decorator declared mode="off"; configure's
        mode does not."""
        grad = vg.verified_gradient(loss=square_loss, mode="off")(lambda w: 2 * w)
        vg.configure(mode="debug")
        grad(W)
        assert grad.verigrad.stats.checks == 0
        with vg.debug():
            grad(W)
        assert grad.verigrad.stats.checks == 1
