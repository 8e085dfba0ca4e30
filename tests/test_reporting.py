"""Tests for the structlog ``gradient_check`` event each check emits."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from structlog.testing import capture_logs

import verigrad as vg
from problems import regression_data, regression_grad, regression_grad_halved, regression_loss
from verigrad._noise import PROBE_EVALS
from verigrad._reporting import EVENT, report

X, Y = regression_data(n=15, seed=4)
BETA = np.array([0.25, -1.0])

#: The keys a user's log pipeline can rely on for every decorator check.
KEYS = {
    "event",
    "log_level",
    "function",
    "call_index",
    "relative_error",
    "threshold",
    "passed",
    "verdict",
    "method",
    "n_evals",
    "duration_s",
    "worst_index",
    "trigger",
}


class Model:
    """A model whose gradient can be switched between right and wrong."""

    def __init__(self, buggy: bool = False) -> None:
        self.buggy = buggy

    def loss(self, beta: np.ndarray) -> float:
        return regression_loss(beta, X, Y)

    @vg.verified_gradient(loss="loss", first=2, sample_rate=0.0, rtol=1e-6, on_failure="log")
    def grad(self, beta: np.ndarray) -> np.ndarray:
        if self.buggy:
            return regression_grad_halved(beta, X, Y)
        return regression_grad(beta, X, Y)


@pytest.fixture(autouse=True)
def _fresh_model() -> None:
    """Each test sees the shared Model's checker from zero."""
    Model.grad.verigrad.reset()


class TestEventContent:
    def test_passing_check_logs_one_info_event(self) -> None:
        """A passing check emits exactly one ``gradient_check`` event at info level."""
        with capture_logs() as logs:
            Model().grad(BETA)
        assert len(logs) == 1
        event = logs[0]
        assert event["event"] == "gradient_check"
        assert event["log_level"] == "info"
        assert event["passed"] is True
        assert event["verdict"] == "pass"

    def test_event_has_documented_keys_and_values(self) -> None:
        """The event carries the function, call index, error, threshold, verdict and cost."""
        with capture_logs() as logs:
            Model().grad(BETA)
            Model().grad(BETA)
        assert len(logs) == 2
        for k, event in enumerate(logs):
            assert set(event) >= KEYS
            assert event["function"] == "Model.grad"
            assert event["call_index"] == k
            assert event["threshold"] == 1e-6
            assert 0.0 <= event["relative_error"] <= 1e-6
            assert event["method"] == "central"
            # the point itself twice, the noise probe and two per coordinate
            assert event["n_evals"] == 6 + PROBE_EVALS
            assert isinstance(event["duration_s"], float)
            assert event["duration_s"] >= 0.0
            assert event["worst_index"] in ([0], [1])
            assert event["trigger"] == "first"

    def test_event_values_match_last_result(self) -> None:
        """The logged numbers are those of the CheckResult kept in ``stats.last_result``."""
        with capture_logs() as logs:
            Model().grad(BETA)
        result = Model.grad.verigrad.stats.last_result
        assert result is not None
        event = logs[0]
        assert event["relative_error"] == result.relative_error
        assert event["n_evals"] == result.n_evals
        assert event["worst_index"] == list(result.worst[0].index)
        assert event["shape"] == [2]

    def test_failing_check_logs_at_error(self) -> None:
        """A failed check emits its event at error level with ``passed`` False."""
        with capture_logs() as logs:
            Model(buggy=True).grad(BETA)
        assert len(logs) == 1
        event = logs[0]
        assert event["log_level"] == "error"
        assert event["passed"] is False
        assert event["verdict"] == "mismatch"
        assert event["relative_error"] == pytest.approx(1 / 3, rel=1e-6)
        assert set(event) >= KEYS

    def test_error_is_logged_before_raising(self) -> None:
        """With ``on_failure="raise"`` the error event is already logged when the error arrives."""

        @vg.verified_gradient(loss=regression_loss, mode="debug")
        def grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            return regression_grad_halved(beta, X, y)

        with capture_logs() as logs, pytest.raises(vg.GradientMismatchError) as info:
            grad(BETA, X, Y)
        assert len(logs) == 1
        assert logs[0]["log_level"] == "error"
        assert logs[0]["relative_error"] == info.value.result.relative_error

    def test_nonfinite_event_names_where(self) -> None:
        """A non-finite check logs ``verdict="nonfinite"``, an infinite error and where it was."""

        @vg.verified_gradient(loss=regression_loss, mode="debug", on_failure="log")
        def grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            g = regression_grad(beta, X, y)
            g[1] = np.nan
            return g

        with capture_logs() as logs:
            grad(BETA, X, Y)
        (event,) = logs
        assert event["verdict"] == "nonfinite"
        assert math.isinf(event["relative_error"])
        assert "analytical gradient" in event["where"]

    def test_trigger_names_the_reason(self) -> None:
        """``trigger`` says why the call was checked: first, every, sample or debug."""

        @vg.verified_gradient(loss=regression_loss, first=1, every=3, sample_rate=0.0)
        def grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            return regression_grad(beta, X, y)

        with capture_logs() as logs:
            for _ in range(3):
                grad(BETA, X, Y)
            with vg.debug():
                grad(BETA, X, Y)
        assert [(e["call_index"], e["trigger"]) for e in logs] == [
            (0, "first"),
            (2, "every"),
            (3, "debug"),
        ]

    def test_one_event_per_check_and_none_otherwise(self) -> None:
        """The number of events equals the number of checks; unchecked calls log nothing."""

        @vg.verified_gradient(loss=regression_loss, first=0, sample_rate=0.1, seed=3)
        def grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            return regression_grad(beta, X, y)

        with capture_logs() as logs:
            for _ in range(500):
                grad(BETA, X, Y)
        assert len(logs) == grad.verigrad.stats.checks
        assert 20 < len(logs) < 90
        assert all(e["trigger"] == "sample" for e in logs)


class TestReportFunction:
    def test_report_adds_context(self) -> None:
        """``report`` logs the result's event fields plus the context given."""
        result = vg.check_gradient(regression_loss, BETA, regression_grad, args=(X, Y))
        with capture_logs() as logs:
            report(result, trigger="manual", step=7)
        (event,) = logs
        assert event["event"] == EVENT == "gradient_check"
        assert event["trigger"] == "manual"
        assert event["step"] == 7
        expected = result.to_event()
        assert {k: event[k] for k in expected} == expected

    def test_report_level_follows_verdict(self) -> None:
        """``report`` logs a passing result at info and a failing one at error."""
        good = vg.check_gradient(regression_loss, BETA, regression_grad, args=(X, Y))
        bad = vg.check_gradient(regression_loss, BETA, regression_grad_halved, args=(X, Y))
        with capture_logs() as logs:
            report(good)
            report(bad)
        assert [e["log_level"] for e in logs] == ["info", "error"]


class TestNoLoggingConfiguration:
    def test_import_configures_nothing(self) -> None:
        """Importing verigrad neither configures structlog nor adds handlers to logging."""
        code = (
            "import logging, structlog\n"
            "root_before = list(logging.getLogger().handlers)\n"
            "import verigrad\n"
            "print(structlog.is_configured())\n"
            "print(logging.getLogger().handlers == root_before)\n"
            "print(len(logging.getLogger('verigrad').handlers))\n"
            "print(logging.getLogger().level == logging.WARNING)\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "VERIGRAD_MODE"}
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert proc.stdout.split() == ["False", "True", "0", "True"]

    def test_checking_configures_nothing(self) -> None:
        """Running a check (and logging it) still leaves structlog and logging unconfigured."""
        code = (
            "import logging, structlog\n"
            "import numpy as np\n"
            "import verigrad as vg\n"
            "@vg.verified_gradient(loss=lambda w: float(w @ w), mode='debug')\n"
            "def g(w):\n"
            "    return 2 * w\n"
            "g(np.ones(3))\n"
            "print(g.verigrad.stats.checks, structlog.is_configured(),"
            " len(logging.getLogger().handlers))\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "VERIGRAD_MODE"}
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert proc.stdout.strip().splitlines()[-1].split() == ["1", "False", "0"]
