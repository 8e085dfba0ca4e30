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
