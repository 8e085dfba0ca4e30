"""Tests for verigrad.compare: relative error, worst coordinates, verdicts and scale fits."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import verigrad as vg
from verigrad.compare import Coordinate, judge, scale_factor, worst_coordinates

FAST = settings(max_examples=60, deadline=None)

reals = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two finite float64 arrays of one shape."""
    shape = draw(shapes)
    n = draw(hnp.arrays(np.float64, shape, elements=reals))
    a = draw(hnp.arrays(np.float64, shape, elements=reals))
    return n, a


class TestRelativeError:
    """relative_error: ||n - a|| / (||n|| + ||a||)."""

    def test_known_value(self) -> None:
        """(3, 4) against (0, 0) is 1, and against (3, 0) is 4 / (5 + 3) = 0.5."""
        assert vg.relative_error([3.0, 4.0], [0.0, 0.0]) == 1.0
        assert vg.relative_error([3.0, 4.0], [3.0, 0.0]) == pytest.approx(0.5, rel=1e-15)

    def test_equal_gradients_give_zero(self) -> None:
        """Identical gradients have relative error exactly 0."""
        g = np.array([[1.5, -2.0], [1e-3, 7.0]])
        assert vg.relative_error(g, g.copy()) == 0.0

    def test_two_zero_vectors_give_zero(self) -> None:
        """Two zero gradients agree: 0, not 0/0."""
        assert vg.relative_error(np.zeros(5), np.zeros(5)) == 0.0

    def test_flipped_sign_gives_exactly_one(self) -> None:
        """A gradient against its own negative has relative error exactly 1."""
        g = np.array([0.3, -1.7, 2.2])
        assert vg.relative_error(g, -g) == 1.0

    def test_empty_gradients_give_zero(self) -> None:
        """Two empty gradients agree."""
        assert vg.relative_error(np.zeros(0), np.zeros(0)) == 0.0

    def test_returns_a_python_float(self) -> None:
        """The result is a plain float, for logging and comparisons."""
        assert type(vg.relative_error(np.ones(2, dtype=np.float32), [1, 2])) is float

    @FAST
    @given(pairs())
    def test_symmetric(self, pair: tuple[np.ndarray, np.ndarray]) -> None:
        """Swapping numerical and analytical does not change the error."""
        n, a = pair
        assert vg.relative_error(n, a) == vg.relative_error(a, n)

    @FAST
    @given(pairs())
    def test_between_zero_and_one(self, pair: tuple[np.ndarray, np.ndarray]) -> None:
        """For finite inputs the error lies in [0, 1]."""
        n, a = pair
        assert 0.0 <= vg.relative_error(n, a) <= 1.0

    @FAST
    @given(hnp.arrays(np.float64, shapes, elements=reals))
    def test_zero_against_itself(self, g: np.ndarray) -> None:
        """Any gradient compared with itself gives 0."""
        assert vg.relative_error(g, g) == 0.0

    @FAST
    @given(hnp.arrays(np.float64, shapes, elements=reals))
    def test_one_when_exactly_one_side_is_zero(self, g: np.ndarray) -> None:
        """A zero gradient against a non-zero one gives 1, whichever side is zero."""
        assume(np.any(g))
        z = np.zeros_like(g)
        assert vg.relative_error(g, z) == 1.0
        assert vg.relative_error(z, g) == 1.0

    @FAST
    @given(pairs(), st.floats(1e-200, 1e200))
    def test_scale_invariant(self, pair: tuple[np.ndarray, np.ndarray], c: float) -> None:
        """Multiplying both gradients by a positive constant leaves the error unchanged."""
        n, a = pair
        assume(np.all(np.isfinite(c * n)) and np.all(np.isfinite(c * a)))
        # Scaling tiny entries into the subnormal range loses digits: keep them normal.
        assume(np.all((n == 0) | (np.abs(c * n) > 1e-290)))
        assume(np.all((a == 0) | (np.abs(c * a) > 1e-290)))
        assert vg.relative_error(c * n, c * a) == pytest.approx(
            vg.relative_error(n, a), rel=1e-9, abs=1e-12
        )

    @FAST
    @given(pairs(), st.integers(0, 63), st.sampled_from([np.nan, np.inf, -np.inf]), st.booleans())
    def test_inf_when_either_side_is_not_finite(
        self, pair: tuple[np.ndarray, np.ndarray], pos: int, bad: float, left: bool
    ) -> None:
        """A NaN or inf anywhere makes the error inf, so it can never pass a threshold."""
        n, a = pair
        target = n if left else a
        target.reshape(-1)[pos % target.size] = bad
        assert vg.relative_error(n, a) == math.inf

    @pytest.mark.parametrize("magnitude", [1e300, 1e-300, 5e-324])
    def test_no_overflow_or_underflow_at_extreme_magnitudes(self, magnitude: float) -> None:
        """Gradients near 1e300 or 1e-300 give the same error as at unit scale."""
        n = np.array([3.0, 4.0, -1.0])
        a = np.array([3.0, 4.5, -1.0])
        unit = vg.relative_error(n, a)
        if magnitude == 5e-324:  # the smallest subnormal: only exact multiples survive
            n, a, unit = np.array([1.0, 0.0]), np.array([0.0, 0.0]), 1.0
        assert vg.relative_error(n * magnitude, a * magnitude) == pytest.approx(unit, rel=1e-12)

    def test_huge_opposite_gradients_do_not_overflow(self) -> None:
        """1e300 against -1e300, whose difference overflows, still gives a finite error of 1."""
        assert vg.relative_error([1e300, 1e300], [-1e300, -1e300]) == 1.0
        assert vg.relative_error([1e300, -1e300], [1e300, 1e300]) == pytest.approx(
            math.sqrt(0.5), rel=1e-12
        )

    def test_shape_mismatch_raises_naming_both_shapes(self) -> None:
        """Gradients of different shapes raise InvalidArgumentError instead of broadcasting."""
        with pytest.raises(vg.InvalidArgumentError, match=r"\(3,\) but analytical has shape \(1,"):
            vg.relative_error(np.ones(3), np.ones((1, 3)))
        with pytest.raises(vg.InvalidArgumentError, match="shape"):
            vg.relative_error(np.ones(1), np.ones(3))

    def test_non_real_input_raises(self) -> None:
        """A boolean or complex gradient raises InvalidTypeError naming which side."""
        with pytest.raises(vg.InvalidTypeError, match=r"^numerical"):
            vg.relative_error([True, False], [1.0, 0.0])
        with pytest.raises(vg.InvalidTypeError, match=r"^analytical"):
            vg.relative_error([1.0], [1j])


class TestCoordinate:
    """Coordinate: one entry of a comparison."""

    def test_difference_is_analytical_minus_numerical(self) -> None:
        """difference is analytical - numerical, with its sign."""
        c = Coordinate((1, 2), analytical=2.5, numerical=3.0)
        assert c.difference == -0.5

    def test_immutable(self) -> None:
        """A coordinate cannot be modified."""
        c = Coordinate((0,), 1.0, 1.0)
        with pytest.raises(dataclasses.FrozenInstanceError):
            c.analytical = 2.0  # type: ignore[misc]


class TestWorstCoordinates:
    """worst_coordinates: the largest discrepancies, largest first."""

    def test_largest_first_with_multi_dim_indices(self) -> None:
        """The worst entries come sorted by |difference| with their (row, col) index."""
        n = np.zeros((3, 4))
        a = np.zeros((3, 4))
        a[2, 1], a[0, 3], a[1, 0] = 5.0, -7.0, 0.5
        worst = worst_coordinates(n, a, k=3)
        assert [c.index for c in worst] == [(0, 3), (2, 1), (1, 0)]
        assert [c.difference for c in worst] == [-7.0, 5.0, 0.5]
        assert all(type(i) is int for c in worst for i in c.index)

    def test_k_is_capped_at_the_size(self) -> None:
        """Asking for more coordinates than exist returns them all."""
        worst = worst_coordinates(np.array([1.0, 2.0]), np.array([1.5, 2.0]), k=10)
        assert len(worst) == 2
        assert worst[0].index == (0,)

    def test_non_finite_ranks_first(self) -> None:
        """A NaN or inf outranks any finite difference, however large."""
        n = np.array([0.0, 1.0, 0.0])
        a = np.array([1e300, np.nan, -1e300])
        worst = worst_coordinates(n, a, k=1)
        assert worst[0].index == (1,)
        assert math.isnan(worst[0].analytical)

    def test_empty_and_zero_k(self) -> None:
        """No coordinates, or k = 0, gives an empty tuple."""
        assert worst_coordinates(np.zeros(0), np.zeros(0)) == ()
        assert worst_coordinates(np.ones(3), np.zeros(3), k=0) == ()

    def test_zero_dimensional_index_is_empty_tuple(self) -> None:
        """A scalar parameter's only coordinate has the index ()."""
        (only,) = worst_coordinates(np.array(1.0), np.array(2.0))
        assert only.index == ()
        assert only.difference == 1.0


class TestJudge:
    """judge: pass, mismatch or nonfinite, and how many coordinates are wrong."""

    def test_pass_within_rtol(self) -> None:
        """A relative error at or below rtol passes with no mismatched coordinates."""
        n = np.array([1.0, 2.0, 3.0])
        j = judge(n, n * (1 + 1e-7), rtol=1e-5)
        assert j.verdict == "pass"
        assert j.relative_error < 1e-7
        assert j.n_mismatched == 0
        assert j.where is None

    def test_mismatch_counts_only_the_wrong_coordinates(self) -> None:
        """One bad entry among a hundred is counted as one mismatched coordinate."""
        rng = np.random.default_rng(3)
        n = rng.normal(size=(10, 10))
        a = n + 1e-12
        a[4, 6] += 0.5
        j = judge(n, a, rtol=1e-5)
        assert j.verdict == "mismatch"
        assert j.n_mismatched == 1
        assert j.worst[0].index == (4, 6)
        assert j.max_abs_error == pytest.approx(0.5, rel=1e-9)

    @pytest.mark.parametrize("magnitude", [1e200, 1e-170])
    def test_mismatch_count_at_extreme_magnitudes(self, magnitude: float) -> None:
        """The mismatch count is scale-free: no overflow for 1e200, no underflow for 1e-170."""
        rng = np.random.default_rng(4)
        n = rng.normal(size=50) * magnitude
        a = n * (1 + 1e-12)
        a[7] *= 1.5
        j = judge(n, a, rtol=1e-5)
        assert j.verdict == "mismatch"
        assert j.n_mismatched == 1
        assert j.worst[0].index == (7,)

    def test_nonfinite_analytical_names_the_coordinate(self) -> None:
        """A NaN in the analytical gradient gives 'nonfinite' naming where it is."""
        n = np.ones((2, 2))
        a = np.ones((2, 2))
        a[1, 0] = np.nan
        j = judge(n, a, rtol=1e-5)
        assert j.verdict == "nonfinite"
        assert j.relative_error == math.inf
        assert j.where is not None
        assert "analytical" in j.where
        assert "(1, 0)=nan" in j.where
        assert j.worst[0].index == (1, 0)

    def test_nonfinite_numerical_blames_the_loss(self) -> None:
        """An inf in the numerical gradient is reported as a problem of the loss near x."""
        j = judge(np.array([1.0, np.inf]), np.ones(2), rtol=1e-5)
        assert j.verdict == "nonfinite"
        assert j.where is not None
        assert "loss near x" in j.where
        assert "(1,)=inf" in j.where

    def test_many_nonfinite_entries_are_abbreviated(self) -> None:
        """Only the first three non-finite coordinates are listed, then a count."""
        j = judge(np.ones(10), np.full(10, np.nan), rtol=1e-5)
        assert j.where is not None
        assert "10 coordinate(s)" in j.where
        assert "and 7 more" in j.where

    def test_shape_mismatch_raises(self) -> None:
        """Arrays of different shapes cannot be judged."""
        with pytest.raises(vg.InvalidArgumentError, match="shape"):
            judge(np.ones(2), np.ones(3), rtol=1e-5)


class TestScaleFactor:
    """scale_factor: the c with analytical ~ c * numerical, to recognise sign and factor bugs."""

    @pytest.mark.parametrize("c", [-1.0, 0.5, 2.0, -3.0])
    def test_recovers_a_constant_factor(self, c: float) -> None:
        """For analytical = c * numerical the fit returns c with a zero residual."""
        n = np.array([[0.4, -1.3], [2.0, 0.7]])
        fit = scale_factor(n, c * n)
        assert fit is not None
        assert fit[0] == pytest.approx(c, rel=1e-12)
        assert fit[1] < 1e-15

    def test_unrelated_gradients_leave_a_large_residual(self) -> None:
        """Gradients that are not multiples of each other fit badly."""
        fit = scale_factor(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
        assert fit is not None
        assert fit[0] == 0.0
        assert fit[1] == 1.0

    def test_zero_numerical_gradient_gives_none(self) -> None:
        """No factor can be fitted to a zero numerical gradient."""
        assert scale_factor(np.zeros(3), np.ones(3)) is None
        assert scale_factor(np.zeros(0), np.zeros(0)) is None

    def test_non_finite_gives_none(self) -> None:
        """A NaN or inf on either side gives no fit."""
        assert scale_factor(np.array([1.0, np.inf]), np.ones(2)) is None
        assert scale_factor(np.ones(2), np.array([1.0, np.nan])) is None

    @pytest.mark.parametrize("magnitude", [1e200, 1e-200])
    def test_fit_at_extreme_magnitudes(self, magnitude: float) -> None:
        """A flipped sign is recognised for gradients near 1e200 and 1e-200 alike."""
        n = np.array([3.0, -4.0, 0.5]) * magnitude
        fit = scale_factor(n, -n)
        assert fit is not None
        assert fit[0] == pytest.approx(-1.0, rel=1e-12)
        assert fit[1] < 1e-15
