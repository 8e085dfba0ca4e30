"""Tests for verigrad.result: the CheckResult record, its summary and its log event."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable

import numpy as np
import pytest

import verigrad as vg
from verigrad._noise import PROBE_EVALS


def _sq(x: np.ndarray) -> float:
    return float(np.sum(x**2))


def _passing() -> vg.CheckResult:
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.5]])
    return vg.check_gradient(_sq, x, 2 * x)


def _one_wrong() -> vg.CheckResult:
    """A (10, 20) parameter whose gradient is wrong at (3, 7) only."""
    x = np.linspace(-2.0, 2.0, 200).reshape(10, 20)
    g = 2 * x
    g[3, 7] += 1.0
    return vg.check_gradient(_sq, x, g)


class TestCheckResultRecord:
    """CheckResult: an immutable record of one check."""

    def test_attributes_cannot_be_set(self) -> None:
        """Assigning to any field raises FrozenInstanceError."""
        r = _passing()
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.passed = False  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.relative_error = 0.5  # type: ignore[misc]

    @pytest.mark.parametrize("field", ["numerical", "analytical", "steps"])
    def test_arrays_are_read_only(self, field: str) -> None:
        """Writing into numerical, analytical or steps raises ValueError."""
        arr = getattr(_passing(), field)
        assert not arr.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            arr[0, 0] = 123.0

    def test_fields_of_a_passing_check(self) -> None:
        """A passing check records its verdict, error, threshold, arrays and settings."""
        x = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.5]])
        r = vg.check_gradient(_sq, x, 2 * x, rtol=1e-6)
        assert r.passed is True
        assert r.verdict == "pass"
        assert 0.0 <= r.relative_error < 1e-9
        assert r.threshold == 1e-6
        assert r.numerical.shape == r.analytical.shape == r.steps.shape == (2, 3)
        assert r.numerical.dtype == r.analytical.dtype == np.float64
        np.testing.assert_allclose(r.numerical, 2 * x, rtol=1e-9)
        np.testing.assert_array_equal(r.analytical, 2 * x)
        assert r.max_abs_error == pytest.approx(float(np.max(np.abs(r.numerical - 2 * x))))
        assert r.method == "central"
        assert r.epsilon == "auto"
        assert r.shape == (2, 3)
        assert r.size == 6
        assert r.dtype == "float64"
        assert r.n_mismatched == 0
        assert r.where is None
        assert r.loss_value == pytest.approx(_sq(x))
        assert r.duration_s > 0.0

    @pytest.mark.parametrize(
        ("method", "evals"),
        [
            ("central", 14 + PROBE_EVALS),
            ("forward", 8 + PROBE_EVALS),
            ("backward", 8 + PROBE_EVALS),
        ],
    )
    def test_n_evals_counts_every_loss_call(self, method: str, evals: int) -> None:
        """n_evals is 2n + 2 for central and n + 2 for one-sided differences (f(x) twice), plus
        the noise probe's evaluations."""
        calls = [0]

        def loss(x: np.ndarray) -> float:
            calls[0] += 1
            return _sq(x)

        x = np.arange(6.0)
        r = vg.check_gradient(loss, x, 2 * x, method=method, rtol=1e-4)  # type: ignore[arg-type]
        assert r.n_evals == evals == calls[0]
        assert r.method == method

    def test_worst_is_sorted_largest_first(self) -> None:
        """worst lists coordinates by decreasing |difference|, each with both values."""
        r = _one_wrong()
        assert len(r.worst) == 5
        diffs = [abs(c.difference) for c in r.worst]
        assert diffs == sorted(diffs, reverse=True)
        top = r.worst[0]
        assert top.index == (3, 7)
        assert top.analytical == pytest.approx(r.analytical[3, 7])
        assert top.numerical == pytest.approx(r.numerical[3, 7])
        assert top.difference == pytest.approx(1.0, rel=1e-6)

    def test_fixed_epsilon_and_steps_are_recorded(self) -> None:
        """A fixed epsilon is recorded as given and used as the step everywhere."""
        x = np.array([1.0, 2.0])
        r = vg.check_gradient(_sq, x, 2 * x, epsilon=1e-4)
        assert r.epsilon == 1e-4
        np.testing.assert_allclose(r.steps, 1e-4, rtol=1e-9)

    def test_repr_is_short(self) -> None:
        """repr shows the verdict and error, not whole arrays."""
        text = repr(_one_wrong())
        assert text.startswith("CheckResult(verdict='mismatch'")
        assert "shape=(10, 20)" in text
        assert "array" not in text
        assert len(text) < 200


class TestSummary:
    """CheckResult.summary: the report a person reads."""

    def test_passing_summary(self) -> None:
        """A pass says so, with error, threshold, shapes, method, step and evaluations."""
        text = _passing().summary()
        assert text.startswith("gradient check passed")
        assert "relative error" in text
        assert "<= threshold 1.0e-05" in text
        assert "parameter shape (2, 3) (float64), gradient shape (2, 3)" in text
        assert "method central" in text
        assert "(auto)" in text
        assert f"{14 + PROBE_EVALS} loss evaluations" in text
        assert "hint" not in text

    def test_mismatch_summary_has_a_table_with_multi_dim_indices(self) -> None:
        """A failure lists the worst coordinates with their (row, col) index and both values."""
        r = _one_wrong()
        text = r.summary()
        lines = text.splitlines()
        assert lines[0] == "gradient check FAILED: verdict 'mismatch'"
        assert "> threshold 1.0e-05" in text
        assert "1 of 200 coordinates disagree; worst first:" in text
        header = next(i for i, line in enumerate(lines) if "index" in line)
        for word in ("analytical", "numerical", "difference", "ratio"):
            assert word in lines[header]
        first_row = lines[header + 1].split()
        assert first_row[0:2] == ["(3,", "7)"]
        assert float(first_row[2]) == pytest.approx(r.analytical[3, 7])
        assert "hint: only 1 of 200 coordinates disagree ((3, 7))" in text

    def test_one_dimensional_indices_use_brackets(self) -> None:
        """A 1-d parameter's coordinates appear as [i] in the table."""
        x = np.array([3.0, 4.0])
        text = vg.check_gradient(_sq, x, np.array([6.0, 80.0])).summary()
        assert "\n    [1] " in text

    def test_flipped_sign_hint_and_ratio(self) -> None:
        """A gradient with the wrong sign is called a flipped sign with ratio -1 in the table."""
        x = np.array([3.0, 4.0])
        r = vg.check_gradient(_sq, x, -2 * x)
        assert r.relative_error == pytest.approx(1.0, abs=1e-9)
        hint = r.hint()
        assert hint is not None
        assert "flipped sign" in hint
        rows = [line.split() for line in r.summary().splitlines() if line.startswith("    [")]
        assert [row[-1] for row in rows] == ["-1", "-1"]
        assert r.to_event()["hint"] == hint  # the log (and `verigrad report`) carries it too
        assert "hint" not in vg.check_gradient(_sq, x, 2 * x).to_event()

    @pytest.mark.parametrize(
        ("factor", "words"),
        [(0.5, "missing factor of 2"), (3.0, "extra factor of 3"), (-2.0, "flipped sign and")],
    )
    def test_constant_factor_hints(self, factor: float, words: str) -> None:
        """A gradient off by a constant factor is named as such in the hint and summary."""
        x = np.array([1.0, -2.0, 0.5])
        r = vg.check_gradient(_sq, x, factor * 2 * x)
        assert r.hint() is not None
        assert words in (r.hint() or "")
        assert f"hint: analytical = {factor:.4g} x numerical" in r.summary()

    def test_all_zero_gradient_hint(self) -> None:
        """A gradient of zeros is called a missing term or a gradient never filled in."""
        r = vg.check_gradient(_sq, np.array([1.0, 2.0]), np.zeros(2))
        assert "all zeros" in (r.hint() or "")

    def test_nonfinite_summary_names_where(self) -> None:
        """A non-finite check says where the NaN is and gives the NaN hint."""
        r = vg.check_gradient(_sq, np.array([1.0, 2.0]), np.array([2.0, np.nan]))
        text = r.summary()
        assert "verdict 'nonfinite'" in text
        assert "relative error inf > threshold" in text
        assert "the analytical gradient is not finite at 1 coordinate(s): (1,)=nan" in text
        assert "largest discrepancies of 2 coordinates" in text
        assert "hint: a NaN or inf never passes" in text

    def test_no_hint_for_a_diffuse_bug(self) -> None:
        """A gradient wrong everywhere by different amounts gets no misleading hint."""
        x = np.array([1.0, 2.0, 3.0, 4.0])
        r = vg.check_gradient(_sq, x, 2 * x + np.array([0.1, -0.3, 0.2, 0.5]))
        assert r.verdict == "mismatch"
        assert r.hint() is None
        assert "hint" not in r.summary()

    def test_fixed_step_is_shown(self) -> None:
        """The step taken is printed, without '(auto)' when it was fixed."""
        text = vg.check_gradient(_sq, np.array([1.0]), np.array([2.0]), epsilon=1e-4).summary()
        assert "step 0.0001," in text
        assert "(auto)" not in text


class TestToEvent:
    """CheckResult.to_event: flat key/value pairs for a structured log."""

    @pytest.mark.parametrize("make", [_passing, _one_wrong], ids=["pass", "mismatch"])
    def test_only_scalars_and_short_lists(self, make: Callable[[], vg.CheckResult]) -> None:
        """Every value is a str, bool, int, float or short list of ints: never an array."""
        for key, value in make().to_event().items():
            assert not isinstance(value, np.ndarray), key
            assert isinstance(value, (str, bool, int, float, list)), key
            if isinstance(value, list):
                assert len(value) <= 8, key
                assert all(type(v) is int for v in value), key
            if isinstance(value, float):
                assert type(value) is float, key

    def test_json_serialisable(self) -> None:
        """The event of a failed check round-trips through json."""
        event = _one_wrong().to_event()
        decoded = json.loads(json.dumps(event))
        assert decoded["verdict"] == "mismatch"
        assert decoded["passed"] is False
        assert decoded["shape"] == [10, 20]
        assert decoded["worst_index"] == [3, 7]
        assert decoded["n_mismatched"] == 1
        assert decoded["n_evals"] >= 402  # 2n + 2, plus the second opinion on suspects
        assert decoded["epsilon"] == "auto"
        assert decoded["threshold"] == 1e-5

    def test_nonfinite_event_has_where_and_inf(self) -> None:
        """A non-finite check logs where it happened and an infinite relative error."""
        r = vg.check_gradient(_sq, np.array([1.0, 2.0]), np.array([np.inf, 4.0]))
        event = r.to_event()
        assert event["verdict"] == "nonfinite"
        assert event["relative_error"] == math.inf
        assert "(0,)=inf" in event["where"]
        assert json.loads(json.dumps(event))["relative_error"] == math.inf

    def test_function_name_recorded_for_a_callable_gradient(self) -> None:
        """A gradient passed as a function is named in the event and the summary."""

        def my_grad(x: np.ndarray) -> np.ndarray:
            return 2 * x

        r = vg.check_gradient(_sq, np.array([1.0, 2.0]), my_grad)
        assert r.to_event()["function"].endswith("my_grad")
        assert "for " in r.summary().splitlines()[0]
        assert "my_grad" in r.summary().splitlines()[0]

    def test_empty_parameter_has_no_worst_entry(self) -> None:
        """With no coordinates there is no worst index to log."""
        event = vg.check_gradient(lambda x: 0.0, np.zeros(0), np.zeros(0)).to_event()
        assert "worst_index" not in event
        assert event["shape"] == [0]


def test_a_result_without_arrays_keeps_its_report() -> None:
    """What a decorator keeps of a large check: every scalar field, the summary and the hint;
    the four parameter-sized arrays read NaN and take no memory."""
    x = np.array([3.0, 4.0, -1.0])
    r = vg.check_gradient(_sq, x, -2 * x)
    light = r.without_arrays()
    assert r.arrays
    assert not light.arrays
    assert light.summary() == r.summary()
    assert light.hint() == r.hint()
    assert (light.verdict, light.relative_error, light.worst) == (
        r.verdict,
        r.relative_error,
        r.worst,
    )
    for arr in (light.numerical, light.analytical, light.steps):
        assert arr.shape == x.shape
        assert np.isnan(arr).all()
        assert arr.strides == (0,)
    assert light.without_arrays() is light


def test_a_leaf_hint_names_the_leaves_of_the_wrong_coordinates() -> None:
    """A leaf whose relative error passes the threshold on rounding alone (a float32 loss) is
    not blamed when the coordinates confirmed wrong all lie in another leaf."""
    import dataclasses

    params = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([0.5, -1.0])}

    def loss(p: dict[str, np.ndarray]) -> float:
        return float(p["a"] @ p["a"] + p["b"] @ p["b"])

    wrong = {"a": 2 * params["a"] * np.array([1.0, -1.0, 1.0]), "b": 2 * params["b"]}
    r = vg.check_gradient(loss, params, wrong)
    assert r.verdict == "mismatch"
    assert r.hint() == "the gradient of a is wrong; the others agree"
    noisy = dataclasses.replace(r, leaf_errors=(("a", 0.5), ("b", 10 * r.threshold)))
    assert noisy.hint() == "the gradient of a is wrong; the others agree"


class TestHintsOfPartialChecks:
    """A large parameter is checked along random directions and at a sample of coordinates:
    the hint speaks of what was checked, not of the whole parameter."""

    N = 5_000

    def _check(self, wrong: Callable[[np.ndarray], np.ndarray]) -> vg.CheckResult:
        rng = np.random.default_rng(0)
        a, x = rng.normal(size=self.N), rng.normal(size=self.N)
        result = vg.check_gradient(lambda w: float(0.5 * np.sum(a * w * w)), x, wrong(a * x))
        assert result.checked_indices is not None
        assert result.verdict == "mismatch", result.summary()
        return result

    @pytest.mark.parametrize(
        ("scale", "says"), [(-1.0, "a flipped sign"), (0.5, "a missing factor of 2")]
    )
    def test_a_scaled_gradient_is_named(self, scale: float, says: str) -> None:
        """It used to say "only 40 of 5000 coordinates disagree": all 40 checked did."""
        result = self._check(lambda g: scale * g)
        hint = result.hint()
        assert hint is not None
        assert f"analytical = {scale:.4g} x numerical in every coordinate checked" in hint
        assert f"({result.n_checked} of {self.N})" in hint
        assert hint.endswith(says)
        assert f"of the {result.n_checked} coordinates checked one by one (of {self.N})" in (
            result.summary()
        )

    def test_one_wrong_coordinate_is_one_of_those_checked(self) -> None:
        def one_wrong(g: np.ndarray) -> np.ndarray:
            g = g.copy()
            g[7] = 0.0
            return g

        result = self._check(one_wrong)
        hint = result.hint()
        assert hint == (
            f"only 1 of the {result.n_checked} coordinates checked one by one disagree ([7]): "
            "look at the code that computes those entries"
        )

    def test_half_the_parameter_scaled_is_no_scale(self) -> None:
        """The coordinates checked and the directions must all fit one factor."""

        def half(g: np.ndarray) -> np.ndarray:
            g = g.copy()
            g[: self.N // 2] *= 0.5
            return g

        hint = self._check(half).hint()
        assert hint is None or "every coordinate" not in hint
