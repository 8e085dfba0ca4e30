"""A small training run whose ``gradient_check`` events are written as JSON lines.

Shared by the tests of ``verigrad report`` and of its log reader. structlog is never configured
globally: the events are captured with ``structlog.testing.capture_logs`` and rendered line by
line with ``JSONRenderer``, as a JSON-lines log of a real run would hold them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog
from structlog.testing import capture_logs

import verigrad as vg
from problems import regression_data, regression_grad, regression_grad_halved, regression_loss

X, Y = regression_data(n=20, seed=0)
#: From this step on the buggy gradient drops a factor of 2.
BUG_FROM = 10

#: For the tests that write a log: the same checks in a session run with ``--verigrad=debug``
#: (the plugin's mode would override the decorators' own), and the deliberate failures of
#: ``bad_grad`` do not fail the test.
PINNED = pytest.mark.verigrad(mode="sample", allow_failures=True)


def loss(beta: np.ndarray, step: int = 0) -> float:
    """The regression loss on the fixed data (``step`` is the training step, unused)."""
    return regression_loss(beta, X, Y)


# mode="sample" and sample_rate=0 pin the checks to calls 0, 4, 9, 14, 19 whatever the
# session's mode (the pytest plugin may turn on debug mode).
@vg.verified_gradient(loss=loss, every=5, sample_rate=0.0, mode="sample", on_failure="log")
def good_grad(beta: np.ndarray) -> np.ndarray:
    """The correct gradient."""
    return regression_grad(beta, X, Y)


@vg.verified_gradient(loss=loss, every=5, sample_rate=0.0, mode="sample", on_failure="log")
def bad_grad(beta: np.ndarray, step: int) -> np.ndarray:
    """Correct before step ``BUG_FROM``, a missing factor of 2 after."""
    if step < BUG_FROM:
        return regression_grad(beta, X, Y)
    return regression_grad_halved(beta, X, Y)


def run(steps: int = 20) -> list[dict[str, Any]]:
    """Train both gradients for ``steps`` steps; return the captured check events."""
    good_grad.verigrad.reset()
    bad_grad.verigrad.reset()
    beta = np.zeros(2)
    with capture_logs() as events:
        for step in range(steps):
            beta = beta - 0.1 * good_grad(beta)
            bad_grad(beta, step)
    return events


def write_log(path: Path, steps: int = 20, noise: bool = True) -> list[dict[str, Any]]:
    """Write the run's check events to ``path`` as JSON lines; return the events.

    With ``noise``, other lines are mixed in as in a real log: a plain-text line, another
    JSON event, and an empty line.
    """
    events = run(steps)
    render = structlog.processors.JSONRenderer()
    lines = [render(None, "info", dict(e)) for e in events]
    if noise:
        lines.insert(0, "starting training")
        lines.insert(2, json.dumps({"event": "epoch", "epoch": 1}))
        lines.append("")
    path.write_text("\n".join(str(line) for line in lines) + "\n", encoding="utf-8")
    return events
