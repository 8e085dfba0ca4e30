"""Error-aware verdicts: bugs confirmed, kinks and noise told apart from bugs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

import verigrad as vg
from verigrad._noise import PROBE_EVALS

RNG = np.random.default_rng(7)
Y = RNG.normal(size=20)


def relu_sum(v: np.ndarray) -> float:
    return float(np.maximum(v, 0.0).sum())


def l1(v: np.ndarray) -> float:
    return float(np.abs(v).sum())


def at_kinks() -> np.ndarray:
    x = np.random.default_rng(1).normal(size=20)
    x[[2, 5]] = 0.0
    return x


def _wobbled(v: np.ndarray, size: float) -> float:
    base = float(np.sum(v**2))
    h = int(np.frombuffer(np.ascontiguousarray(v).tobytes(), dtype=np.uint64).sum() % 1000003)
    return base * (1.0 + size * (h / 1000003 - 0.5))


def hash_noise_loss(v: np.ndarray) -> float:
    """sum(v^2) with a deterministic relative wobble of 1e-9: noise far above float64's."""
    return _wobbled(v, 1e-9)


def very_noisy_loss(v: np.ndarray) -> float:
    """sum(v^2) with a deterministic relative wobble of 1e-4: no step resolves 1e-5 here."""
    return _wobbled(v, 1e-4)


class TestConfirmedMismatch:
    def test_one_coordinate_off_by_1e_3_among_5000_is_caught(self) -> None:
        """A 1e-3 error on one of 5,000 coordinates is a mismatch though diluted below rtol."""
        a = np.random.default_rng(2).uniform(0.5, 2.0, 5000)
        x = np.random.default_rng(3).normal(size=5000)
        g = 2 * a * x
        g[1234] *= 1.001
        r = vg.check_gradient(lambda v: float(a @ (v * v)), x, g, method="central")
        assert r.relative_error < 1e-5  # the global measure alone would pass it
        assert r.verdict == "mismatch"
        assert r.failed
        assert r.criterion == "coordinate"  # the report names the criterion that failed
        assert "failed on the coordinate criterion" in r.summary()
        assert r.mismatched == ((1234,),)
        assert r.worst[0].index == (1234,)
        assert "confirmed" in r.summary()

    def test_correct_gradient_of_5000_passes(self) -> None:
        """The same loss with the exact gradient passes, with no second opinion needed."""
        a = np.random.default_rng(2).uniform(0.5, 2.0, 5000)
        x = np.random.default_rng(3).normal(size=5000)
        r = vg.check_gradient(lambda v: float(a @ (v * v)), x, 2 * a * x, method="central")
        assert r.verdict == "pass"
        assert r.n_evals == 2 * 5000 + 2 + PROBE_EVALS

    def test_error_estimates_are_reported_and_small_for_smooth_losses(self) -> None:
        """Each derivative carries an error estimate, far below the gradient for smooth losses."""
        r = vg.check_gradient(lambda v: float(np.sum(np.exp(v))), Y, np.exp(Y))
        assert r.errors is not None
        assert r.errors.shape == Y.shape
        assert np.all(r.errors > 0)
        assert np.all(r.errors < 1e-6 * np.abs(np.exp(Y)).max())
        assert np.all(np.abs(r.numerical - np.exp(Y)) < 10 * r.errors + 1e-9)
        assert "est. error" in r.summary() or r.passed


class TestKinks:
    def test_relu_at_its_kinks_is_a_kink_not_a_mismatch(self) -> None:
        """ReLU with subgradient 0 at x_i = 0 gets verdict 'kink', listing those coordinates."""
        x = at_kinks()
        r = vg.check_gradient(relu_sum, x, (x > 0).astype(float))
        assert r.verdict == "kink"
        assert r.passed
        assert not r.failed
        assert set(r.kinks) == {(2,), (5,)}
        assert "not differentiable" in r.summary()

    def test_l1_at_zero_is_a_kink_even_when_central_differences_agree(self) -> None:
        """|x| at 0: the central difference is 0 = sign(0), but the kink is still reported."""
        x = at_kinks()
        r = vg.check_gradient(l1, x, np.sign(x))
        assert r.verdict == "kink"
        assert set(r.kinks) == {(2,), (5,)}

    def test_hinge_at_the_margin_is_a_kink(self) -> None:
        """max(0, 1 - v) at v = 1 is a kink."""
        x = np.random.default_rng(4).normal(size=30)
        x[3] = 1.0
        r = vg.check_gradient(
            lambda v: float(np.maximum(0.0, 1.0 - v).sum()), x, -(x < 1).astype(float)
        )
        assert r.verdict == "kink"
        assert r.kinks == ((3,),)

    def test_a_value_outside_the_subgradient_interval_is_a_mismatch(self) -> None:
        """At a kink, a gradient outside [left, right] derivative is still a bug."""
        x = at_kinks()
        wrong = (x > 0).astype(float)
        wrong[2] = 3.0
        r = vg.check_gradient(relu_sum, x, wrong)
        assert r.verdict == "mismatch"
        assert (2,) in r.mismatched

    def test_kink_fails_makes_a_kink_a_failure(self) -> None:
        """``kink_fails=True`` turns the kink verdict into a failure."""
        x = at_kinks()
        r = vg.check_gradient(relu_sum, x, (x > 0).astype(float), kink_fails=True)
        assert r.verdict == "kink"
        assert r.failed
        assert not r.passed
        with pytest.raises(vg.GradientMismatchError):
            vg.assert_gradient(relu_sum, x, (x > 0).astype(float), kink_fails=True)

    def test_relu_at_random_points_passes(self) -> None:
        """Away from kinks a piecewise-linear loss passes."""
        r = vg.check_gradient(relu_sum, Y, (Y > 0).astype(float))
        assert r.verdict == "pass"


class TestNondeterministic:
    def test_a_loss_with_fresh_noise_is_nondeterministic(self) -> None:
        """A loss that draws new noise per call is reported as such, not as a gradient bug."""
        rng = np.random.default_rng(5)
        r = vg.check_gradient(lambda v: float(np.sum(v**2) + 1e-3 * rng.normal()), Y, 2 * Y)
        assert r.verdict == "nondeterministic"
        assert not r.passed
        assert not r.failed
        assert "Fix the seed or the batch" in r.summary()
        assert "could not decide" in r.summary()

    def test_assert_gradient_raises_inconclusive_not_mismatch(self) -> None:
        """assert_gradient cannot vouch for a nondeterministic loss: InconclusiveCheckError."""
        rng = np.random.default_rng(6)
        with pytest.raises(vg.InconclusiveCheckError) as info:
            vg.assert_gradient(lambda v: float(np.sum(v**2) + rng.normal()), Y, 2 * Y)
        assert isinstance(info.value, AssertionError)
        assert not isinstance(info.value, vg.GradientMismatchError)
        assert info.value.result.verdict == "nondeterministic"


class TestInconclusive:
    def test_converged_least_squares_passes_on_absolute_agreement(self) -> None:
        """At a converged fit (|g| ~ 1e-15) a correct gradient passes on absolute agreement, with
        the resolution reached and the reason, and a bug above that resolution still fails."""
        rng = np.random.default_rng(0)
        A = rng.normal(size=(100, 5))
        b = A @ rng.normal(size=5) + 0.1 * rng.normal(size=100)
        w = np.linalg.lstsq(A, b, rcond=None)[0]

        def loss(v: np.ndarray) -> float:
            r = b - A @ v
            return float(r @ r / 200)

        g = -(b - A @ w) @ A / 100
        assert np.linalg.norm(g) < 1e-13
        r = vg.check_gradient(loss, w, g)
        assert r.verdict == "pass"
        assert r.agreement == "absolute"
        assert r.cause == "resolution"
        assert r.resolution is not None
        assert r.resolution < 1e-9
        assert "too small here for finite differences to test" in r.summary()
        assert "noisy" not in r.summary()
        # A bug far above that resolution is still caught at the optimum.
        wrong = g.copy()
        wrong[2] += 1e-7
        assert vg.check_gradient(loss, w, wrong).verdict == "mismatch"
        # The same gradient away from the optimum is tested and passes.
        w2 = w + 0.5
        assert vg.check_gradient(loss, w2, -(b - A @ w2) @ A / 100).passed

    def test_measured_noise_sets_the_steps(self) -> None:
        """A loss noisy at 1e-9 is still checked to 1e-5: its steps follow the measured scatter."""
        r = vg.check_gradient(hash_noise_loss, Y, 2 * Y)
        assert r.verdict == "pass"
        assert r.precision == "noisy"
        assert r.noise is not None
        assert r.loss_value is not None
        assert 1e-11 < r.noise / r.loss_value < 1e-8
        assert vg.check_gradient(hash_noise_loss, Y, 2 * Y * 1.001).verdict == "mismatch"

    def test_noise_dominated_loss_is_inconclusive(self) -> None:
        """A loss whose noise swamps the finite differences gets 'inconclusive', with a reason."""
        r = vg.check_gradient(very_noisy_loss, Y, 2 * Y)
        assert r.verdict == "inconclusive"
        assert r.cause == "noise"
        assert not r.passed
        assert not r.failed
        assert "too noisy" in r.summary()


class TestPrecision:
    def test_float32_loss_is_checked_at_float32_precision(self) -> None:
        """A loss that rounds to float32 passes with a float32 threshold, and the result says so."""
        r = vg.check_gradient(lambda v: float(np.sum(v.astype(np.float32) ** 2)), Y, 2 * Y)
        assert r.precision == "float32"
        assert r.verdict == "pass"
        assert r.threshold > 1e-5
        assert "float32" in r.summary()

    def test_float32_parameters_with_a_float64_loss_run_in_float64(self) -> None:
        """float32 parameters are checked in float64 when the loss computes in float64."""
        x = Y.astype(np.float32)
        r = vg.check_gradient(lambda v: float(np.sum(v**2)), x, 2 * x)
        assert r.precision == "float64"
        assert r.dtype == "float32"
        assert r.relative_error < 1e-9


class TestMethods:
    def test_richardson_is_more_accurate_than_central(self) -> None:
        """Richardson extrapolation beats plain central differences on a smooth loss."""

        def f(v: np.ndarray) -> float:
            return float(np.sum(np.exp(v)))

        central = vg.check_gradient(f, Y, np.exp(Y), method="central")
        richardson = vg.check_gradient(f, Y, np.exp(Y), method="richardson")
        assert richardson.passed
        assert richardson.relative_error < central.relative_error
        assert richardson.n_evals == 4 * Y.size + 2 + PROBE_EVALS

    def test_complex_step_is_exact_to_rounding(self) -> None:
        """The complex step reaches machine precision on a loss that takes complex input."""

        def f(v: np.ndarray) -> complex:
            return np.sum(np.exp(v) * np.sin(v))

        exact = np.exp(Y) * (np.sin(Y) + np.cos(Y))
        r = vg.check_gradient(f, Y, exact, method="complex")
        assert r.method == "complex"
        assert r.relative_error < 1e-15
        assert r.n_evals == Y.size + 2 + PROBE_EVALS

    def test_complex_step_falls_back_to_richardson_and_says_why(self) -> None:
        """A loss that drops the imaginary part falls back to richardson, noted in the result."""
        r = vg.check_gradient(lambda v: float(np.sum(v**2)), Y, 2 * Y, method="complex")
        assert r.method == "richardson"
        assert r.passed
        assert any("used 'richardson' instead" in note for note in r.notes)


class TestDecoratorVerdicts:
    def test_inconclusive_check_warns_and_counts_as_undecided(self) -> None:
        """Under the decorator an undecided check warns (never raises) and is counted."""
        grad = vg.verified_gradient(loss=very_noisy_loss, mode="debug")(lambda v: 2 * v)
        with capture_logs() as logs, pytest.warns(vg.InconclusiveCheckWarning):
            grad(Y)
        assert logs[0]["log_level"] == "warning"
        assert logs[0]["verdict"] == "inconclusive"
        assert "explanation" in logs[0]
        stats = grad.verigrad.stats
        assert (stats.checks, stats.failures, stats.undecided) == (1, 0, 1)

    def test_kink_passes_under_the_decorator_unless_told_to_fail(self) -> None:
        """A kink is logged at info by default, and raises with ``kink_fails=True``."""
        x = at_kinks()

        def relu_grad(v: np.ndarray) -> np.ndarray:
            return (v > 0).astype(float)

        lenient = vg.verified_gradient(loss=relu_sum, mode="debug")(relu_grad)
        strict = vg.verified_gradient(loss=relu_sum, mode="debug", kink_fails=True)(relu_grad)
        with capture_logs() as logs:
            lenient(x)
        assert logs[0]["verdict"] == "kink"
        assert logs[0]["log_level"] == "info"
        assert logs[0]["kinks"] == [[2], [5]]
        with pytest.raises(vg.GradientMismatchError):
            strict(x)


N_CIFAR = 30_730  # a CIFAR-10 linear classifier's parameters, as in the cs231n notes
A_BIG = np.random.default_rng(2).uniform(0.5, 2.0, N_CIFAR)
X_BIG = np.random.default_rng(3).normal(size=N_CIFAR)


def big_loss(v: np.ndarray) -> float:
    return float(A_BIG @ (v * v))


class TestDirectional:
    @pytest.mark.parametrize("error", [1e-2, 1e-3])
    def test_auto_names_one_wrong_coordinate_among_30730(self, error: float) -> None:
        """Beyond 2,000 parameters auto uses directions and bisects down to the wrong one."""
        g = 2 * A_BIG * X_BIG
        g[1234] *= 1 + error
        r = vg.check_gradient(big_loss, X_BIG, g, seed=0)
        assert r.verdict == "mismatch"
        assert r.mismatched == ((1234,),)
        assert r.n_evals < 600  # not 2n = 61,460
        assert "random directions" in (r.strategy or "")

    def test_a_1e_5_error_is_still_seen_along_the_directions(self) -> None:
        """A 1e-5 error on one of 30,730 coordinates still fails, from the directions alone."""
        g = 2 * A_BIG * X_BIG
        g[1234] *= 1 + 1e-5
        r = vg.check_gradient(big_loss, X_BIG, g, seed=0)
        assert r.verdict == "mismatch"
        assert "random directions disagree" in r.summary()

    def test_correct_gradient_passes_with_a_cost_independent_of_n(self) -> None:
        """The correct gradient passes; the evaluation count is the same at 5,000 and 30,730."""
        costs = []
        for n in (5_000, N_CIFAR):
            a, x = A_BIG[:n], X_BIG[:n]
            r = vg.check_gradient(lambda v, a=a: float(a @ (v * v)), x, 2 * a * x, seed=1)
            assert r.verdict == "pass"
            costs.append(r.n_evals)
        assert max(costs) <= 1.1 * min(costs)

    def test_same_seed_same_directions(self) -> None:
        """The check's generator is seeded: the same seed gives the same numbers."""
        g = 2 * A_BIG * X_BIG
        r1 = vg.check_gradient(big_loss, X_BIG, g, seed=3)
        r2 = vg.check_gradient(big_loss, X_BIG, g, seed=3)
        assert r1.directions == r2.directions
        assert r1.n_checked == r2.n_checked == 32

    def test_coordinates_method_checks_a_random_subset(self) -> None:
        """method='coordinates' estimates n_coordinates coordinates and NaN elsewhere."""
        x = np.random.default_rng(4).normal(size=500)
        r = vg.check_gradient(
            lambda v: float(np.sum(np.exp(v))),
            x,
            np.exp(x),
            method="coordinates",
            n_coordinates=20,
            seed=0,
        )
        assert r.verdict == "pass"
        assert r.n_checked == 20
        assert np.count_nonzero(np.isfinite(r.numerical)) == 20

    def test_global_random_state_untouched(self) -> None:
        """Random directions come from the check's own generator, never numpy's global one."""
        before = np.random.get_state()  # noqa: NPY002
        vg.check_gradient(big_loss, X_BIG, 2 * A_BIG * X_BIG)
        after = np.random.get_state()  # noqa: NPY002
        assert all(np.array_equal(a, b) for a, b in zip(before[1:2], after[1:2], strict=True))
        assert before[2:] == after[2:]


class TestDirectionOptions:
    def test_gaussian_directions_also_catch_a_wrong_coordinate(self) -> None:
        """directions='gaussian' finds the same single-coordinate bug."""
        g = 2 * A_BIG * X_BIG
        g[1234] *= 1.01
        r = vg.check_gradient(big_loss, X_BIG, g, seed=0, directions="gaussian")
        assert r.verdict == "mismatch"
        assert r.mismatched == ((1234,),)

    def test_options_are_validated(self) -> None:
        """Bad direction options are refused, naming the argument."""
        with pytest.raises(vg.InvalidArgumentError, match="directions="):
            vg.check_gradient(big_loss, X_BIG, 2 * A_BIG * X_BIG, directions="uniform")  # type: ignore[arg-type]
        with pytest.raises(vg.InvalidArgumentError, match="n_directions"):
            vg.verified_gradient(loss=big_loss, n_directions=0)

    def test_decorator_passes_its_options_to_the_check(self) -> None:
        """The decorator's n_coordinates decides how many coordinates a large check estimates."""
        grad = vg.verified_gradient(loss=big_loss, mode="debug", n_coordinates=5, seed=0)(
            lambda v: 2 * A_BIG * v
        )
        with capture_logs() as logs:
            grad(X_BIG)
        assert logs[0]["n_checked"] == 5
        assert grad.verigrad.stats.coverage == pytest.approx(5 / N_CIFAR)


class TestVerdictLaws:
    @settings(max_examples=40, deadline=None)
    @given(
        n=st.integers(1, 40),
        seed=st.integers(0, 2**32 - 1),
        which=st.integers(0, 39),
        rel=st.sampled_from([1e-2, -1e-2, 1e-1, -2.0]),
    )
    def test_smooth_composition_correct_passes_and_perturbed_fails(
        self, n: int, seed: int, which: int, rel: float
    ) -> None:
        """For random smooth losses the exact gradient passes and a wrong coordinate is named."""
        rng = np.random.default_rng(seed)
        a = rng.uniform(0.5, 2.0, n)
        b = rng.normal(size=n)
        x = rng.normal(size=n)

        def loss(v: np.ndarray) -> float:
            return float(np.sum(a * np.log1p(np.exp(b * v))) + 0.5 * np.sum(v**2))

        exact = a * b / (1.0 + np.exp(-b * x)) + x
        good = vg.check_gradient(loss, x, exact)
        assert good.verdict == "pass", good.summary()
        k = which % n
        if abs(exact[k]) < 1e-3:
            return  # a relative error of a near-zero entry is below any sensible threshold
        bad_grad = exact.copy()
        bad_grad[k] *= 1 + rel
        bad = vg.check_gradient(loss, x, bad_grad)
        assert bad.verdict == "mismatch", bad.summary()
        assert (k,) in bad.mismatched


# -- issue 10: verdicts that hold up in real training ------------------------------------------

A20 = np.random.default_rng(11).normal(size=(60, 20))


def _no_warnings(fn, *args):  # type: ignore[no-untyped-def]
    """Call ``fn`` and return (value, the verigrad warnings it emitted)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn(*args)
    return value, [w for w in caught if issubclass(w.category, vg.VerigradWarning)]


class TestStationaryPoints:
    def test_exact_zero_loss_with_a_zero_gradient_passes(self) -> None:
        """Least squares at the true weights of noise-free data (loss 0) is not a mismatch."""
        w = np.random.default_rng(1).normal(size=20)
        b = A20 @ w

        def loss(v: np.ndarray) -> float:
            r = A20 @ v - b
            return float(r @ r)

        r = vg.check_gradient(loss, w, 2 * (A20 @ w - b) @ A20)
        assert r.passed
        wrong = 2 * (A20 @ w - b) @ A20
        wrong[3] += 1e-6
        assert vg.check_gradient(loss, w, wrong).verdict == "mismatch"

    def test_kl_of_a_distribution_with_itself_passes(self) -> None:
        """KL(p || q) at q = p (exactly 0) with its exact gradient passes."""
        p = np.random.default_rng(2).dirichlet(np.ones(30))

        def kl(q: np.ndarray) -> float:
            return float(np.sum(p * np.log(p / q)))

        assert vg.check_gradient(kl, p.copy(), -p / p).passed

    def test_converged_logistic_regression_bug_is_caught(self) -> None:
        """A 1 % error on one coordinate of a gradient shrunk a millionfold still raises."""
        rng = np.random.default_rng(3)
        X, y = rng.normal(size=(200, 10)), rng.integers(0, 2, 200).astype(float)

        def loss(w: np.ndarray) -> float:
            z = X @ w
            return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.05 * w @ w)

        def grad(w: np.ndarray) -> np.ndarray:
            return np.asarray(X.T @ (1 / (1 + np.exp(-X @ w)) - y) / len(y) + 0.1 * w)

        w = np.zeros(10)
        start = np.linalg.norm(grad(w))
        while np.linalg.norm(grad(w)) > 1e-6 * start:  # gradient descent, a millionfold down
            w -= 0.5 * grad(w)
        g = grad(w)
        assert vg.check_gradient(loss, w, g).passed
        wrong = g.copy()
        k = int(np.argmax(np.abs(g)))
        wrong[k] *= 1.01
        assert vg.check_gradient(loss, w, wrong).verdict == "mismatch"

    def test_stationary_check_under_the_decorator_is_quiet(self) -> None:
        """A pass on absolute agreement logs at info, with its resolution, and never warns."""
        rng = np.random.default_rng(0)
        b = rng.normal(size=60)
        w = np.linalg.lstsq(A20, b, rcond=None)[0]

        def loss(v: np.ndarray) -> float:
            r = A20 @ v - b
            return float(r @ r / 2)

        grad = vg.verified_gradient(loss=loss, mode="debug")(lambda v: (A20 @ v - b) @ A20)
        with capture_logs() as logs:
            _, warned = _no_warnings(grad, w)
        assert not warned
        assert logs[0]["log_level"] == "info"
        assert logs[0]["agreement"] == "absolute"
        assert logs[0]["resolution"] > 0.0
        assert logs[0]["cause"] == "resolution"


class TestPrecisionEverywhere:
    def test_mixed_precision_passes_and_bugs_fail(self) -> None:
        """A float32 data term plus a float64 penalty passes when right, fails when wrong."""
        a32 = A20.astype(np.float32)
        b32 = np.random.default_rng(4).normal(size=60).astype(np.float32)

        def loss(v: np.ndarray) -> float:
            r = a32 @ v.astype(np.float32) - b32
            return float(np.float32(0.5) * np.mean(r * r, dtype=np.float32)) + 0.5 * float(v @ v)

        def grad(v: np.ndarray) -> np.ndarray:
            r = a32 @ v.astype(np.float32) - b32
            return (a32.T @ r / np.float32(60)).astype(np.float64) + v

        for scale in (1.0, 0.01):
            w = scale * np.random.default_rng(5).normal(size=20)
            r = vg.check_gradient(loss, w, grad)
            assert r.passed, r.summary()
            assert r.precision == "float32"
            wrong = grad(w)
            wrong[7] = -wrong[7]
            assert vg.check_gradient(loss, w, wrong).verdict == "mismatch"

    def test_a_small_factor_on_every_coordinate_is_caught_along_the_gradient(self) -> None:
        """0.1 % on every coordinate of a float32 model: each coordinate agrees within its
        error bar, their common part along the gradient does not."""
        a32 = np.random.default_rng(12).normal(size=(200, 300)).astype(np.float32)
        b32 = np.random.default_rng(13).normal(size=200).astype(np.float32)

        def loss(v: np.ndarray) -> float:
            r = a32 @ v.astype(np.float32) - b32
            return float(np.float32(0.5) * np.mean(r * r, dtype=np.float32)) + 0.5 * float(v @ v)

        def grad(v: np.ndarray) -> np.ndarray:
            r = a32 @ v.astype(np.float32) - b32
            return (a32.T @ r / np.float32(200)).astype(np.float64) + v

        w = 0.05 * np.random.default_rng(14).normal(size=300)
        assert vg.check_gradient(loss, w, grad).passed
        r = vg.check_gradient(loss, w, 1.001 * grad(w))
        assert r.verdict == "mismatch", r.summary()

    def test_common_part_along_the_gradient_is_judged_as_one(self) -> None:
        """5,000 coordinates each within their error bar, off by a common factor of 1.001: the
        component along the gradient is 20x beyond its own bar; random scatter of the same
        size per coordinate is not."""
        from verigrad._decide import _along_gradient

        rng = np.random.default_rng(15)
        a = rng.normal(size=5000)
        bars = np.full(5000, 3e-3)  # each coordinate's bar: about 3x its 0.1 % discrepancy
        found = _along_gradient(a / 1.001, a, bars)
        assert found is not None
        assert "1.001 x the numerical one" in found
        scatter = a + 1e-3 * np.abs(a) * rng.choice((-1.0, 1.0), size=5000)
        assert _along_gradient(scatter, a, bars) is None

    def test_float32_loss_past_the_full_check_size(self) -> None:
        """A float32 loss of 2,500 parameters passes with its exact gradient (5 seeds)."""
        a = np.random.default_rng(6).uniform(0.5, 2.0, 2500).astype(np.float32)
        x = np.random.default_rng(7).normal(size=2500)

        def loss(v: np.ndarray) -> float:
            v32 = v.astype(np.float32)
            return float(np.sum(a * v32 * v32, dtype=np.float32))

        g = 2 * a.astype(np.float64) * x.astype(np.float32).astype(np.float64)
        for seed in range(5):
            r = vg.check_gradient(loss, x, g, seed=seed)
            assert r.passed, r.summary()
            assert r.strategy is not None
            assert r.precision == "float32"

    def test_a_loss_that_does_not_change_never_confirms_zero(self) -> None:
        """A loss quantised far coarser than the step is 'flat', never a mismatch."""
        r = vg.check_gradient(lambda v: float(np.round(np.sum(v * v), 1)), Y, 2 * Y)
        assert r.verdict in ("inconclusive", "pass")
        assert not r.failed


class TestDomainBoundaries:
    @pytest.mark.parametrize(
        ("loss", "grad", "x"),
        [
            (lambda v: float(np.sum(np.sqrt(v))), lambda v: 0.5 / np.sqrt(v), 1e-12),
            (lambda v: float(np.sum(v * np.log(v))), lambda v: np.log(v) + 1.0, 1e-7),
        ],
        ids=["sqrt", "xlogx"],
    )
    def test_positive_parameter_near_zero(self, loss, grad, x) -> None:  # type: ignore[no-untyped-def]
        """The stencil stays inside the domain: a pass, the cause named, bugs still caught."""
        v = np.array([x, 3 * x, 0.5, 2.0])
        r = vg.check_gradient(loss, v, grad)
        assert r.passed, r.summary()
        assert r.cause == "domain"
        wrong = grad(v)
        wrong[0] = -wrong[0]
        assert vg.check_gradient(loss, v, wrong).verdict == "mismatch"

    def test_gaussian_nll_with_a_tiny_variance_under_the_decorator(self) -> None:
        """A variance of 1.3e-6 does not make the decorator raise on a correct gradient."""
        y = np.random.default_rng(8).normal(size=50) * 1e-3

        def nll(theta: np.ndarray) -> float:
            mu, var = theta
            return float(np.mean(0.5 * np.log(var) + (y - mu) ** 2 / (2 * var)))

        def grad(theta: np.ndarray) -> np.ndarray:
            mu, var = theta
            return np.array(
                [np.mean(-(y - mu) / var), np.mean(0.5 / var - (y - mu) ** 2 / (2 * var**2))]
            )

        checked = vg.verified_gradient(loss=nll, mode="debug")(grad)
        _, warned = _no_warnings(checked, np.array([0.0, 1.3e-6]))
        assert not warned
        assert checked.verigrad.stats.failures == 0

    def test_nan_at_x_itself_still_fails(self) -> None:
        """'nonfinite' is kept for the loss being NaN at x itself."""
        r = vg.check_gradient(lambda v: float(np.sum(np.log(v))), np.array([0.0, 1.0]), [1.0, 1.0])
        assert r.verdict == "nonfinite"


class TestAliasing:
    def test_identity_cache_is_recognised(self) -> None:
        """A loss that caches by the identity of its input passes, and the report says why."""

        class Cached:
            def __init__(self) -> None:
                self.last: np.ndarray | None = None
                self.value = 0.0

            def __call__(self, v: np.ndarray) -> float:
                if v is self.last:
                    return self.value
                self.last, self.value = v, float(np.sum(v**2))
                return self.value

        r = vg.check_gradient(Cached(), Y, 2 * Y)
        assert r.passed, r.summary()
        assert any("cache by identity" in note for note in r.notes)

    def test_loss_that_writes_into_its_input_is_recognised(self) -> None:
        """A loss that scribbles on its input passes, and the report says why."""

        def scribbling(v: np.ndarray) -> float:
            value = float(np.sum(v**2))
            v *= 0.5
            return value

        x = Y.copy()
        r = vg.check_gradient(scribbling, x, 2 * Y)
        assert r.passed, r.summary()
        assert any("writes into the array" in note for note in r.notes)
        np.testing.assert_array_equal(x, Y)


class TestKinksAlongDirections:
    def test_l1_past_the_full_check_size_is_never_a_mismatch(self) -> None:
        """An L1 model with 3,000 parameters, half of them at 0, never fails (5 seeds)."""
        rng = np.random.default_rng(9)
        a = rng.normal(size=(40, 3000)) / 40
        b = rng.normal(size=40)
        x = rng.normal(size=3000)
        x[::2] = 0.0

        def loss(v: np.ndarray) -> float:
            r = a @ v - b
            return float(r @ r + 0.1 * np.abs(v).sum())

        g = 2 * (a @ x - b) @ a + 0.1 * np.sign(x)
        for seed in range(5):
            r = vg.check_gradient(loss, x, g, seed=seed)
            assert not r.failed, r.summary()

    @staticmethod
    def _relu_network() -> tuple[object, np.ndarray, np.ndarray]:
        """A 48-100-1 ReLU regression network (4,900 weights) a few steps into training: a
        random direction over all weights crosses a kink about every 1e-6."""
        rng = np.random.default_rng(21)
        d, h = 48, 100
        X = rng.normal(size=(200, d))
        y = np.maximum(X @ rng.normal(size=(d, 8)) / np.sqrt(d), 0.0) @ rng.normal(size=8)
        y += 0.1 * rng.normal(size=len(y))

        def parts(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            W1, w2 = theta[: d * h].reshape(d, h), theta[d * h :]
            z = X @ W1
            return z, w2, (np.maximum(z, 0.0) @ w2 - y) / len(y)

        def loss(theta: np.ndarray) -> float:
            _, _, r = parts(theta)
            return float(r @ r) * len(y) / 2

        def grad(theta: np.ndarray) -> np.ndarray:
            z, w2, r = parts(theta)
            dz = np.outer(r, w2) * (z > 0)
            return np.concatenate([(X.T @ dz).reshape(-1), np.maximum(z, 0.0).T @ r])

        theta = np.concatenate([rng.normal(size=d * h) / np.sqrt(d), rng.normal(size=h) / 10])
        for _ in range(60):
            theta = theta - 0.05 * grad(theta)
        return loss, theta, grad(theta)

    def test_relu_network_past_the_full_check_size(self) -> None:
        """Its exact gradient never fails; a 1 % error on its largest coordinate, millions of
        times the central-difference error there, is a mismatch at every seed: the directions
        narrow their stencils until no kink lies inside, instead of giving up on them."""
        loss, theta, g = self._relu_network()
        i = int(np.argmax(np.abs(g)))
        wrong = g.copy()
        wrong[i] *= 1.01
        for seed in range(6):
            ok = vg.check_gradient(loss, theta, g, seed=seed)
            assert ok.verdict in ("pass", "kink"), ok.summary()
            bad = vg.check_gradient(loss, theta, wrong, seed=seed)
            assert bad.verdict == "mismatch", bad.summary()
            assert bad.noise is not None, bad.summary()
            assert bad.noise < 1e-12, bad.summary()


class TestEvent:
    def test_event_says_how_the_check_was_decided(self) -> None:
        """The log event carries agreement, resolution, and for failures the criterion."""
        good = vg.check_gradient(lambda v: float(np.sum(v**2)), Y, 2 * Y).to_event()
        assert good["agreement"] == "relative"
        assert good["resolution"] > 0.0
        bad = vg.check_gradient(lambda v: float(np.sum(v**2)), Y, -2 * Y).to_event()
        assert bad["criterion"] == "relative"
        assert "agreement" not in bad
