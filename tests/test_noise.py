"""The noise probe: the loss's own scatter, measured rather than assumed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from verigrad._evaluate import Evaluator
from verigrad._noise import EPS32, EPS64, measure_noise, noise_level, spike

X = np.random.default_rng(3).normal(size=50)
A = np.random.default_rng(4).normal(size=(80, 50))
B = np.random.default_rng(5).normal(size=80)


def _measure(loss, x: np.ndarray = X, seed: int = 0):  # type: ignore[no-untyped-def]
    work = np.array(x, dtype=np.float64)
    ev = Evaluator(loss, "loss", point_nbytes=work.nbytes)
    f0 = ev.at(work)
    return measure_noise(ev, work, f0, np.random.default_rng(seed)), ev


def _wobbled(v: np.ndarray, size: float) -> float:
    base = float(np.sum(v**2))
    h = int(np.frombuffer(np.ascontiguousarray(v).tobytes(), dtype=np.uint64).sum() % 1000003)
    return base * (1.0 + size * (h / 1000003 - 0.5))


class TestPrecision:
    def test_float64_loss_rounds_at_float64(self) -> None:
        """A float64 least-squares loss scatters by a few ulps of its value: float64."""
        noise, _ = _measure(lambda v: float(np.sum((A @ v - B) ** 2)))
        assert noise.precision == "float64"
        assert noise.cause is None
        assert noise.level <= 64 * EPS64 * noise.scale

    def test_float32_loss_is_float32(self) -> None:
        """A loss computed in float32 is measured as float32, from its scatter."""
        a32, b32 = A.astype(np.float32), B.astype(np.float32)
        noise, _ = _measure(lambda v: float(np.sum((a32 @ v.astype(np.float32) - b32) ** 2)))
        assert noise.precision == "float32"
        assert EPS32 / 30 <= noise.eps <= 50 * EPS32

    def test_float32_term_in_a_float64_sum_is_float32(self) -> None:
        """A float32 data term plus a float64 penalty is float32, though its result is not."""
        a32, b32 = A.astype(np.float32), B.astype(np.float32)

        def loss(v: np.ndarray) -> float:
            r = a32 @ v.astype(np.float32) - b32
            return float(np.mean(r * r, dtype=np.float32)) + 0.5 * float(v @ v)

        for scale in (1.0, 0.01):
            noise, _ = _measure(loss, X * scale)
            assert noise.precision == "float32", scale

    def test_scatter_beyond_rounding_is_noisy(self) -> None:
        """A deterministic relative wobble of 1e-9 is 'noisy', at about its own size."""
        noise, _ = _measure(lambda v: _wobbled(v, 1e-9))
        assert noise.precision == "noisy"
        assert 1e-11 < noise.level / noise.scale < 1e-8

    def test_a_kink_at_x_is_not_noise(self) -> None:
        """An L1 term at zero coordinates (a kink at x itself) does not pass for noise."""
        x = X.copy()
        x[::2] = 0.0
        noise, _ = _measure(lambda v: float(np.sum((A @ v - B) ** 2) + np.abs(v).sum()), x)
        assert noise.precision == "float64"


class TestNeverZero:
    def test_exact_zero_loss_has_a_positive_level(self) -> None:
        """At the exact minimum of noise-free least squares (loss 0) the level is not 0."""
        w = np.random.default_rng(0).normal(size=50)
        b = A @ w
        noise, _ = _measure(lambda v: float(np.sum((A @ v - b) ** 2)), w)
        assert noise.level > 0.0

    def test_constant_loss_has_a_positive_level(self) -> None:
        """A loss that never changes is 'flat', with a level above zero."""
        noise, _ = _measure(lambda v: 0.0)
        assert noise.cause == "flat"
        assert noise.level > 0.0


class TestCost:
    def test_two_windows_of_nine_points_for_a_float64_loss(self) -> None:
        """A smooth float64 loss costs two windows; a float32 one settles in the first."""
        _, ev = _measure(lambda v: float(np.sum(np.exp(v))))
        assert ev.n_evals == 1 + 18
        _, ev32 = _measure(lambda v: float(np.sum(np.exp(v.astype(np.float32)))))
        assert ev32.n_evals == 1 + 9

    def test_domain_edge_moves_stay_inside(self) -> None:
        """Parameters just above 0 under a log: the probe stays where the loss is finite."""
        x = np.abs(X) * 1e-9
        noise, _ = _measure(lambda v: float(np.sum(v * np.log(v))), x)
        assert noise.cause is None
        assert noise.precision == "float64"


class TestNoiseLevel:
    @pytest.mark.parametrize("sigma", [1e-12, 1e-9, 1e-6, 1e-4])
    def test_white_noise_on_a_smooth_curve_is_found(self, sigma: float) -> None:
        """Gaussian noise of size sigma on a smooth curve: over 200 windows (fixed seeds) the
        estimate's median lies within a factor of 2, and 95 % within a factor of 4."""
        t = np.arange(9.0)
        smooth = 1.0 + 1e-3 * t + 1e-5 * t * t
        ratios = []
        for seed in range(200):
            values = smooth + sigma * np.random.default_rng(seed).normal(size=9)
            found = noise_level(values)
            assert found is not None
            ratios.append(found[0] / sigma)
        r = np.array(ratios)
        assert 0.5 <= float(np.median(r)) <= 2.0
        assert np.mean((r >= 0.25) & (r <= 4.0)) >= 0.95

    @given(coefficients=st.lists(st.integers(-50, 50), min_size=1, max_size=3))
    def test_an_exact_low_degree_polynomial_has_no_noise(self, coefficients: list[int]) -> None:
        """Exactly computed values of a polynomial of degree <= 2 carry no noise beyond the
        rounding of scaling them."""
        t = np.arange(9.0)
        values = sum(c * t**k for k, c in enumerate(coefficients)) + 1000.0
        found = noise_level(values)
        assert found is not None
        assert found[0] <= EPS64 * float(np.max(np.abs(values)))


class TestKinksCrossedInPassing:
    """A window that crosses a kink of a piecewise-smooth loss is not read as noise."""

    def test_a_piecewise_quadratic_window_is_a_spike(self) -> None:
        s = np.arange(1.0, 10.0)
        smooth = 0.5 + 1e-3 * s + 1e-6 * s**2
        kinked = smooth + 3e-4 * np.maximum(s - 4.3, 0.0) + 2e-4 * np.maximum(6.6 - s, 0.0)
        assert spike(kinked)
        assert not spike(smooth)

    def test_scatter_is_not_a_spike(self) -> None:
        """Rounding or noise scatters every second difference alike: fewer than 1 window in
        100 looks kinked."""
        rng = np.random.default_rng(3)
        s = np.arange(1.0, 10.0)
        hits = sum(spike(1.0 + 1e-3 * s + 1e-8 * rng.standard_normal(9)) for _ in range(2000))
        assert hits < 20

    def test_dense_kinks_leave_a_float64_loss_at_float64(self) -> None:
        """A sum of 20,000 ReLU hinges in 500 parameters: a probe along a long direction
        crosses some in passing, yet the level stays at float64's rounding (5 seeds)."""
        rng = np.random.default_rng(4)
        a = rng.normal(size=(20000, 500))
        b = rng.normal(size=20000) * 1e-5

        def loss(v: np.ndarray) -> float:
            return float(np.maximum(a @ v + b, 0.0).sum() / 2e4 + 0.5 * v @ v)

        x = rng.normal(size=500) * 1e-3
        for seed in range(5):
            noise, _ = _measure(loss, x, seed)
            assert noise.precision == "float64", noise

    def test_a_float32_grid_is_not_a_spike(self) -> None:
        """A float32 term rounds to a grid: equal second differences with others a whole
        number of grid steps away are rounding, not kinks (2,000 windows, none a spike)."""
        rng = np.random.default_rng(8)
        s = np.arange(1.0, 10.0)
        hits = 0
        for _ in range(2000):
            z = rng.normal(size=64).astype(np.float32)
            w = rng.normal()
            data = [
                float(np.mean(np.logaddexp(np.float32(0), z * np.float32(w + 1e-6 * k)))) for k in s
            ]
            hits += spike(np.asarray(data) + 0.05 * (w + 1e-6 * s) ** 2)
        assert hits == 0
