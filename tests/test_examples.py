"""The examples run as scripts, so they cannot rot: each is executed as a user would run it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


class TestExamples:
    def test_linear_regression_checks_every_step_and_converges(self) -> None:
        """The debug-mode regression example logs one passing check per gradient step."""
        out = run_example("linear_regression.py")
        events = [line for line in out.splitlines() if "gradient_check" in line]
        assert len(events) == 25
        assert all("verdict=pass" in line for line in events)
        assert "calls=25, checks=25, failures=0" in out

    def test_softmax_classifier_samples_checks_as_json_lines(self) -> None:
        """The softmax example checks a sample of calls, logs JSON lines, and learns."""
        out = run_example("softmax_classifier.py")
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert events, out
        assert events[0]["call_index"] == 0
        assert events[0]["trigger"] == "first"
        assert all(e["event"] == "gradient_check" and e["verdict"] == "pass" for e in events)
        assert all(e["shape"] == [10, 4] for e in events)
        assert "training accuracy 1.000" in out
        assert f"200 gradient calls, {len(events)} checked, 0 failed" in out

    def test_catch_a_bug_shows_the_missing_factor(self) -> None:
        """The bug example prints a report that names the missing factor of 2."""
        out = run_example("catch_a_bug.py")
        assert "gradient check FAILED for mse_grad (call 0): verdict 'mismatch'" in out
        assert "relative error 3.333e-01 > threshold 1.0e-05" in out
        assert "a missing factor of 2" in out
        ratio_rows = [line for line in out.splitlines() if line.rstrip().endswith(" 0.5")]
        assert len(ratio_rows) == 3

    def test_two_layer_network_names_the_wrong_leaves(self) -> None:
        """The dict-parameter example trains cleanly, then names layer1's leaves as wrong."""
        out = run_example("two_layer_network.py")
        assert "200 calls, 10 checked, 0 failed" in out
        assert "per parameter: layer1.W: 0.26, layer1.b: 0.33, layer2.W: " in out
        assert "hint: the gradient of layer1.W, layer1.b is wrong; the others agree" in out


def needs(module: str) -> pytest.MarkDecorator:
    """Skip a framework's example where the framework is not installed."""
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"{module} is not installed")


class TestFrameworkExamples:
    @needs("torch")
    def test_torch_two_layer_trains_then_names_the_slip(self) -> None:
        """The custom autograd.Function's backward passes its checks while SGD trains, and
        the forgotten tanh derivative is caught at once, naming W1 and b1."""
        out = run_example("torch_two_layer.py")
        assert "150 calls, 9 checked, 0 failed" in out
        final = float(out.split("loss ", 1)[1].split(" -> ")[1].split()[0])
        assert final < 0.05
        assert "gradient check FAILED for gradient (call 0): verdict 'mismatch'" in out
        assert "hint: the gradient of W1, b1 is wrong; the others agree" in out

    @needs("jax")
    def test_jax_linear_trains_then_catches_the_dropped_factor(self) -> None:
        """The jit-compiled float32 gradient passes its checks, and the dropped factor of 2
        fails the first check."""
        out = run_example("jax_linear.py")
        assert "100 calls, 8 checked, 0 failed" in out
        assert "gradient check FAILED for grad_with_slip (call 0): verdict 'mismatch'" in out
        assert "precision: the loss computes in float32" in out


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_is_covered(name: str) -> None:
    """Each example file has a dedicated test above."""
    covered = {
        "linear_regression.py",
        "softmax_classifier.py",
        "catch_a_bug.py",
        "two_layer_network.py",
        "torch_two_layer.py",
        "jax_linear.py",
    }
    assert name in covered
