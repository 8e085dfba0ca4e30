"""The measured accuracy suite (issue 3): verigrad's default check against the catalogue.

The catalogue lives in ``benchmarks/accuracy/cases.py``; ``benchmarks/accuracy/run.py`` prints
the same figures for a person. Here the issue's targets are asserted with default settings:

- no correct gradient (nor a valid subgradient) is reported as "mismatch" or "nonfinite";
- at least 99% of the buggy gradients are reported as "mismatch";
- points exactly at a kink are reported as "kink", and a value outside the subgradient
  interval there as "mismatch".

Issue 10 adds five groups of hard points (stationary points and exact zeros, float32 and mixed
precision past 2,000 parameters, ReLU/hinge/L1 past 2,000, domain boundaries, identity caches
and losses that write into their input), with the same targets per group, and two more:

- the check spends at most twice today's loss evaluations on issue 3's cases
  (``benchmarks/accuracy/baseline_evals.json``);
- its error estimates under-estimate the actual error of at most 1 % of the numerical
  derivatives of correct gradients.

The catalogue itself is checked too, independently of verigrad: its correct gradients agree
with an extrapolated finite difference, and its buggy ones do not, by a margin that finite
differences resolve.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy.cases import (  # noqa: E402
    BASE_GROUPS,
    GROUPS,
    HARD_GROUPS,
    KINK,
    MISMATCH,
    PASS,
    PASS_OR_INCONCLUSIVE,
    PASS_OR_KINK,
    Case,
    IdentityCache,
    all_cases,
)
from benchmarks.accuracy.run import (  # noqa: E402
    calibration,
    compare_evals,
    evaluate,
    load_baseline,
    summarize,
    verdict_of,
)

Outcomes = list[tuple[Case, Any]]

#: The issue's detection target for buggy gradients.
DETECTION_TARGET = 0.99
#: Issue 10: at most this many times today's evaluations on the cases of the baseline.
EVALS_FACTOR = 2.0
#: Issue 10: at most this fraction of under-estimated errors on correct gradients.
UNDER_ESTIMATES = 0.01
#: Groups with correct gradients (or valid subgradients), and groups with buggy ones.
#: The hard classes of issue 10 are measured here, but the check that meets them (the verdict
#: pipeline) has not landed yet: their targets are recorded as expected failures until it does.
PENDING = pytest.mark.xfail(
    reason="issue 10: the verdict pipeline that meets this target has not landed yet",
    strict=False,
)


#: Per test, the groups whose target is not met yet.
STILL_PENDING: dict[str, frozenset[str]] = {
    "false_alarms": frozenset(),
    "detected": frozenset(),
    "at_kinks": frozenset(),
    "expected": frozenset(),
    "calibration": frozenset(),
}


def _pending(groups: tuple[str, ...] | list[str], test: str) -> list[Any]:
    """``groups`` as parameters, those whose target is not met yet marked as pending."""
    return [pytest.param(g, marks=PENDING) if g in STILL_PENDING[test] else g for g in groups]


CORRECT_GROUPS = tuple(g for g in GROUPS if g != "buggy")
BUGGY_GROUPS = ("buggy", *(g for g in HARD_GROUPS if g != "aliasing"))


@pytest.fixture(scope="module")
def catalogue() -> list[Case]:
    """The whole catalogue (seed 0)."""
    return all_cases()


@pytest.fixture(scope="module")
def outcomes(catalogue: list[Case]) -> Outcomes:
    """Every case checked once with verigrad's default settings (a few seconds in all)."""
    return evaluate(catalogue)


def _describe(case: Case, result: Any) -> str:
    if isinstance(result, BaseException):
        return f"{case.name}: raised {type(result).__name__}: {result}"
    return (
        f"{case.name}: {result.verdict!r} (relative error {result.relative_error:.3g}, "
        f"expected {sorted(case.expected)})"
    )


# -- the targets -------------------------------------------------------------------------------


class TestTargets:
    """Issue 3's targets, with default settings, per group (issue 10's hard groups too)."""

    @pytest.mark.parametrize("group", _pending(CORRECT_GROUPS, "false_alarms"))
    def test_no_false_alarms_on_correct_gradients(self, outcomes: Outcomes, group: str) -> None:
        """No correct gradient or valid subgradient is a mismatch, nonfinite, or an error."""
        alarms = [
            _describe(c, r)
            for c, r in outcomes
            if c.group == group
            and "mismatch" not in c.expected
            and verdict_of(r) in ("mismatch", "nonfinite", "error")
        ]
        assert not alarms, "false alarms:\n" + "\n".join(alarms)

    @pytest.mark.parametrize("group", _pending(BUGGY_GROUPS, "detected"))
    def test_buggy_gradients_are_detected(self, outcomes: Outcomes, group: str) -> None:
        """At least 99% of the buggy gradients are reported as mismatches."""
        buggy = [(c, r) for c, r in outcomes if c.group == group and c.expected == MISMATCH]
        assert buggy
        missed = [_describe(c, r) for c, r in buggy if verdict_of(r) != "mismatch"]
        rate = 1 - len(missed) / len(buggy)
        assert rate >= DETECTION_TARGET, (
            f"detection rate {rate:.1%} < {DETECTION_TARGET:.0%}; missed:\n" + "\n".join(missed)
        )

    @pytest.mark.parametrize("group", _pending(["kink", "large_kink"], "at_kinks"))
    def test_points_at_kinks_are_reported_as_kinks(self, outcomes: Outcomes, group: str) -> None:
        """A valid subgradient exactly at a kink gives the verdict "kink"."""
        at_kink = [(c, r) for c, r in outcomes if c.group == group and c.expected == KINK]
        assert at_kink
        wrong = [_describe(c, r) for c, r in at_kink if verdict_of(r) != "kink"]
        assert not wrong, "not reported as kink:\n" + "\n".join(wrong)

    def test_invalid_subgradients_at_kinks_are_mismatches(self, outcomes: Outcomes) -> None:
        """A kink does not excuse a gradient outside the subgradient interval."""
        invalid = [(c, r) for c, r in outcomes if c.group == "kink" and c.expected == MISMATCH]
        assert invalid
        missed = [_describe(c, r) for c, r in invalid if verdict_of(r) != "mismatch"]
        assert not missed, "invalid subgradients not reported:\n" + "\n".join(missed)

    def test_near_kinks_only_pass_or_kink(self, outcomes: Outcomes) -> None:
        """A correct gradient closer to a kink than the step is a pass or a kink, nothing else."""
        near = [(c, r) for c, r in outcomes if c.expected == PASS_OR_KINK]
        assert near
        other = [_describe(c, r) for c, r in near if verdict_of(r) not in PASS_OR_KINK]
        assert not other, "\n".join(other)

    @pytest.mark.parametrize("group", _pending(GROUPS, "expected"))
    def test_every_verdict_is_expected(self, outcomes: Outcomes, group: str) -> None:
        """Every case of the group gets one of its expected verdicts ("pass" for a correct
        gradient: not "inconclusive", "kink" or "nondeterministic" either)."""
        cases = [(c, r) for c, r in outcomes if c.group == group]
        assert cases
        wrong = [_describe(c, r) for c, r in cases if verdict_of(r) not in c.expected]
        assert not wrong, f"{len(wrong)} of {len(cases)} unexpected:\n" + "\n".join(wrong)


class TestCost:
    """Issue 10: the check's cost on issue 3's cases stays within twice today's."""

    def test_baseline_records_issue_3s_catalogue(self, catalogue: list[Case]) -> None:
        baseline = load_baseline()
        base = [c.name for c in catalogue if c.group in BASE_GROUPS]
        assert sorted(k for k in baseline if k != "total") == sorted(base)
        assert baseline["total"] == sum(baseline[n] for n in base)

    def test_evaluations_within_twice_the_baseline(self, outcomes: Outcomes) -> None:
        evals = compare_evals(outcomes, load_baseline())
        assert len(evals["cases"]) == len(load_baseline()) - 1
        worst = sorted(
            (r for r in evals["cases"] if r["ratio"] is not None), key=lambda r: -r["ratio"]
        )[:10]
        detail = "\n".join(f"{r['name']}: {r['baseline']} -> {r['now']}" for r in worst)
        assert evals["total"] <= EVALS_FACTOR * evals["baseline_total"], (
            f"{evals['total']} evaluations, {evals['ratio']:.2f}x the baseline's "
            f"{evals['baseline_total']}; the most grown:\n{detail}"
        )


class TestCalibration:
    """Issue 10: the check's error estimates bound its actual errors on correct gradients."""

    @pytest.mark.parametrize("group", _pending([*CORRECT_GROUPS, "total"], "calibration"))
    def test_few_under_estimates(self, outcomes: Outcomes, group: str) -> None:
        """At most 1 % of the numerical derivatives err by more than the check estimates."""
        cal = calibration(outcomes)
        figures = cal["total"] if group == "total" else cal["groups"].get(group)
        if figures is None or not figures["coordinates"]:
            pytest.skip(f"no error estimates in {group}")
        worst = "\n".join(
            f"{w['name']}: {w['under']:.1%} of {w['coordinates']}"
            for w in figures["cases_with_under"][:10]
        )
        assert figures["under"] <= UNDER_ESTIMATES, (
            f"{figures['under']:.2%} of {figures['coordinates']} derivatives under-estimated "
            f"(median actual/estimated {figures['median']}, max {figures['max']}):\n{worst}"
        )

    def test_every_correct_case_has_estimates(self, outcomes: Outcomes) -> None:
        """The calibration sees every correct gradient: none comes without error estimates."""
        assert not calibration(outcomes)["skipped"]


# -- the catalogue -----------------------------------------------------------------------------


def _finite_differences(
    loss: Callable[[np.ndarray], float],
    x: np.ndarray,
    indices: np.ndarray,
    rel: float,
    floor: float,
    richardson: bool,
) -> np.ndarray:
    """Partial derivatives at the flat ``indices``, stepping ``rel * max(|x_i|, floor)``.

    Central differences, Richardson-extrapolated (error O(h^4)) if asked. Independent of
    verigrad, with steps far larger than its own, so the two do not share their errors.
    """
    work = np.array(x, dtype=np.float64)
    flat = work.reshape(-1)
    out = np.empty(len(indices))
    for k, i in enumerate(indices):
        v = float(flat[i])
        h = rel * max(abs(v), floor) if v != 0.0 else rel
        f = []
        for d in (h, -h, 2 * h, -2 * h) if richardson else (h, -h):
            flat[i] = v + d
            f.append(loss(work))
        flat[i] = v
        if richardson:
            out[k] = (8 * (f[0] - f[1]) - (f[2] - f[3])) / (12 * h)
        else:
            out[k] = (f[0] - f[1]) / (2 * h)
    return out


#: Cases whose coordinates curve on their own scale, however small: steps relative to |x_i|.
_PURELY_RELATIVE = frozenset({"scales_smooth"})


def _reference(case: Case, indices: np.ndarray, richardson: bool = True) -> np.ndarray:
    """The reference partial derivatives of a case at the flat ``indices``."""
    if "f32_loss" in case.name:  # the loss rounds to float32: large steps
        return _finite_differences(case.loss, case.x, indices, 1e-2, 1.0, richardson)
    floor = 0.0 if case.name in _PURELY_RELATIVE else 1.0
    rel = 1e-3 if richardson else 1e-4
    if case.group == "kink":  # stay well inside the smooth piece (kinks are >= 1e-3 away)
        rel = 1e-5
    return _finite_differences(case.loss, case.x, indices, rel, floor, richardson)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))


class TestCatalogue:
    """The catalogue is what it claims to be, independently of verigrad."""

    def test_groups_and_expectations(self, catalogue: list[Case]) -> None:
        names = [c.name for c in catalogue]
        assert len(set(names)) == len(names)
        assert len(catalogue) < 200
        allowed = {
            "correct": [PASS],
            "buggy": [MISMATCH],
            "kink": [PASS, PASS_OR_KINK, KINK, MISMATCH],
            "stationary": [PASS, MISMATCH],
            "precision": [PASS, MISMATCH],
            "large_kink": [PASS, PASS_OR_KINK, KINK, MISMATCH],
            "boundary": [PASS, MISMATCH],
            "aliasing": [PASS_OR_INCONCLUSIVE],
        }
        assert set(allowed) == set(GROUPS)
        for c in catalogue:
            assert c.group in GROUPS, c.name
            assert c.expected in allowed[c.group], c.name
            # The hard groups' buggy cases carry the gradient their bug was injected into.
            if c.group in HARD_GROUPS and c.expected == MISMATCH:
                assert c.correct_grad is not None, c.name
        for expected in allowed["kink"]:
            assert any(c.group == "kink" and c.expected == expected for c in catalogue), expected
        for group in BASE_GROUPS:
            assert sum(c.group == group for c in catalogue) >= 20, group
        for group in HARD_GROUPS:  # correct and buggy cases in each (aliasing: correct only)
            assert sum(c.group == group for c in catalogue) >= 5, group
            assert any(c.group == group and "mismatch" not in c.expected for c in catalogue)
            if group != "aliasing":
                assert sum(c.group == group and c.expected == MISMATCH for c in catalogue) >= 3

    def test_covers_sizes_and_dtypes(self, catalogue: list[Case]) -> None:
        """Sizes from 1 to thousands; float32 parameters among the correct and the buggy."""
        sizes = [c.x.size for c in catalogue]
        assert min(sizes) == 1
        assert max(sizes) >= 2000
        # The suite must stay fast: issue 3's catalogue has few large cases, issue 10's classes
        # need them (past 2,000 parameters), with cheap losses (see test_large_losses_are_cheap).
        assert sum(c.x.size > 2000 for c in catalogue if c.group in BASE_GROUPS) <= 4
        assert sum(s > 2000 for s in sizes) <= 30
        for group in ("correct", "buggy"):
            assert any(c.group == group and c.x.dtype == np.float32 for c in catalogue)
        assert any(c.x.ndim == 2 for c in catalogue)
        assert any(c.x.ndim == 3 for c in catalogue)

    def test_deterministic(self, catalogue: list[Case]) -> None:
        again = all_cases()
        assert [c.name for c in again] == [c.name for c in catalogue]
        for a, b in zip(catalogue, again, strict=True):
            assert a.x.dtype == b.x.dtype, a.name
            assert a.x.tobytes() == b.x.tobytes(), a.name
            np.testing.assert_array_equal(a.grad(a.x), b.grad(b.x), err_msg=a.name)
            assert a.loss(a.x.copy()) == b.loss(b.x.copy()), a.name  # some losses write
        other = all_cases(seed=1)
        assert any(a.x.tobytes() != b.x.tobytes() for a, b in zip(catalogue, other, strict=True))

    def test_parameters_are_read_only(self, catalogue: list[Case]) -> None:
        assert all(not c.x.flags.writeable for c in catalogue)

    def test_correct_gradients_are_correct(self, catalogue: list[Case]) -> None:
        """Every correct gradient agrees with an independent estimate (on up to 300 coordinates)."""
        rng = np.random.default_rng(0)
        checked = 0
        for c in catalogue:
            if c.expected != PASS or c.group not in BASE_GROUPS:
                continue  # issue 10's groups: test_hard_gradients_are_correct
            n = c.x.size
            indices = np.arange(n) if n <= 300 else np.sort(rng.choice(n, 300, replace=False))
            g = np.asarray(c.grad(c.x), dtype=np.float64).reshape(-1)[indices]
            error = _relative(_reference(c, indices), g)
            # float64 agrees to ~1e-9 or better; float32 gradients and float32 losses are
            # rounder, and so are the small steps that stay clear of kinks.
            if "f32_loss" in c.name:
                tol = 1e-4
            elif c.x.dtype == np.float32 or c.group == "kink":
                tol = 1e-6
            else:
                tol = 1e-8
            assert error < tol, (c.name, error)
            checked += 1
        assert checked >= 40

    def test_float32_losses_compute_in_float32(self, catalogue: list[Case]) -> None:
        """The "f32_loss" cases round to float32 whatever array they are evaluated at."""
        f32 = [c for c in catalogue if "f32_loss" in c.name]
        assert len(f32) >= 4
        for c in f32:
            x64 = np.asarray(c.x, dtype=np.float64)
            value = c.loss(x64)
            assert np.float32(value) == value, c.name
            assert c.loss(x64 * (1 + 1e-12)) == value, c.name  # below float32's resolution

    def test_buggy_gradients_are_wrong(self, catalogue: list[Case]) -> None:
        """Every buggy gradient differs from an independent estimate far beyond its error."""
        for c in catalogue:
            if c.expected != MISMATCH or c.group != "buggy":
                continue  # kinks: against one-sided derivatives; issue 10's: by their margin
            indices = np.arange(c.x.size)  # all: some bugs sit in one coordinate
            ref = _reference(c, indices, richardson=False)
            g = np.asarray(c.grad(c.x), dtype=np.float64).reshape(-1)
            # The worst coordinate is off by at least 1e-4 of its own size (the subtlest bug,
            # one coordinate among thousands, by 1e-3) while the estimate is good to ~1e-7.
            worst = np.max(np.abs(g - ref) / np.maximum(np.abs(g) + np.abs(ref), 1e-300))
            assert worst > 1e-4, (c.name, worst)

    def test_kink_cases_sit_at_kinks(self, catalogue: list[Case]) -> None:
        """At (or near) a kink the one-sided derivatives differ; subgradients lie between them.

        A valid subgradient lies in [left, right] in every coordinate; an invalid one leaves it
        in some coordinate.
        """
        kinked = [
            c
            for c in catalogue
            if (c.group == "kink" and c.expected != PASS)
            or (c.group == "large_kink" and c.expected == KINK)
        ]
        assert len(kinked) >= 11
        for c in kinked:
            left, right = _one_sided(c.loss, c.x, 1e-5)
            g = np.asarray(c.grad(c.x), dtype=np.float64).reshape(-1)
            lo, hi = np.minimum(left, right), np.maximum(left, right)
            assert np.any(hi - lo > 1e-3 * np.maximum(np.abs(hi), 1.0)), c.name
            outside = np.maximum(lo - g, g - hi)
            if c.expected == MISMATCH:
                assert np.max(outside) > 0.1, c.name
            else:
                assert np.max(outside) < 1e-6, c.name


def _one_sided(
    loss: Callable[[np.ndarray], float], x: np.ndarray, rel: float
) -> tuple[np.ndarray, np.ndarray]:
    """Backward and forward differences of every coordinate, stepping ``rel * max(|x_i|, 1)``."""
    work = np.array(x, dtype=np.float64)
    flat = work.reshape(-1)
    f0 = loss(work)
    left, right = np.empty(flat.size), np.empty(flat.size)
    for i in range(flat.size):
        v = float(flat[i])
        h = rel * max(abs(v), 1.0)
        flat[i] = v + h
        right[i] = (loss(work) - f0) / h
        flat[i] = v - h
        left[i] = (f0 - loss(work)) / h
        flat[i] = v
    return left, right


# -- issue 10's groups: the catalogue ----------------------------------------------------------

#: Unit roundoff of float64.
_EPS = float(np.finfo(np.float64).eps)


def _call(loss: Callable[[np.ndarray], float], x: np.ndarray) -> float:
    """The loss at a fresh float64 copy: identity caches and losses that write see a new array."""
    return float(loss(np.array(x, dtype=np.float64, copy=True)))


def _scales(case: Case) -> np.ndarray:
    """Per coordinate, the scale a step is relative to: max(|x_i|, 1), or |x_i| itself where
    the loss curves on the coordinate's own scale (domain boundaries, KL of probabilities)."""
    x = np.asarray(case.x, dtype=np.float64).reshape(-1)
    if case.group == "boundary" or case.name.startswith("kl_"):
        out: np.ndarray = np.where(x != 0, np.abs(x), 1.0)
        return out
    out = np.maximum(np.abs(x), 1.0)
    return out


def _hard_reference(case: Case, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference partial derivatives of a hard case at the flat ``indices``.

    Differentiates the float64 ``twin`` where the case has one, else the loss, always on
    fresh copies. Smooth groups: Richardson-extrapolated central differences at steps 1e-3
    of the scale, with an error bound (rounding, plus the change from twice the step).
    ``large_kink``: central differences at steps 1e-6 of the scale (the losses are piecewise
    quadratic: exact inside a piece), and a coordinate whose one-sided differences disagree
    has a kink inside the step and is marked to skip.

    Returns the derivatives, their error bounds, and the skip mask.
    """
    loss = case.twin if case.twin is not None else case.loss
    shape = case.x.shape
    x = np.asarray(case.x, dtype=np.float64).reshape(-1)
    scales = _scales(case)
    kinked = case.group == "large_kink"
    f0 = _call(loss, x.reshape(shape))
    ref, bound = np.empty(len(indices)), np.empty(len(indices))
    skip = np.zeros(len(indices), dtype=bool)
    for k, i in enumerate(indices):
        h = (1e-6 if kinked else 1e-3) * scales[i]
        values = [abs(f0)]

        def at(d: float, i: int = i, values: list[float] = values) -> float:
            y = x.copy()
            y[i] += d
            v = _call(loss, y.reshape(shape))
            values.append(abs(v))
            return v

        if kinked:
            fp, fm = at(h), at(-h)
            ref[k] = (fp - fm) / (2 * h)
            forward, backward = (fp - f0) / h, (f0 - fm) / h
            bound[k] = 1e3 * _EPS * max(values) / h
            skip[k] = abs(forward - backward) > 1e-4 * (abs(forward) + abs(backward)) + bound[k]
        else:
            f = [at(d * h) for d in (1, -1, 2, -2, 4, -4)]
            ref[k] = (8 * (f[0] - f[1]) - (f[2] - f[3])) / (12 * h)
            coarse = (8 * (f[2] - f[3]) - (f[4] - f[5])) / (24 * h)
            bound[k] = 1e3 * _EPS * max(values) / h + abs(ref[k] - coarse)
    return ref, bound, skip


def _hard_gradient_error(case: Case, grad: Callable[..., Any], rng: np.random.Generator) -> str:
    """Why ``grad`` disagrees with the reference at (up to 300) coordinates; "" if it agrees.

    float64 gradients must agree to 1e-8 relative, gradients computed in float32 (or from a
    loss that rounds) to 1e-5 of the coordinate and of the gradient's root mean square.
    """
    n = case.x.size
    k = 300 if n <= 2000 else 100 if n <= 10000 else 30  # the largest losses cost the most
    indices = np.arange(n) if n <= k else np.sort(rng.choice(n, k, replace=False))
    ref, bound, skip = _hard_reference(case, indices)
    g = np.asarray(grad(case.x), dtype=np.float64).reshape(-1)[indices]
    rounded = np.asarray(grad(case.x)).dtype == np.float32 or case.twin is not None
    rtol = 1e-5 if rounded else 1e-8
    tol = rtol * (np.abs(ref) + np.abs(g)) + bound
    if rounded:
        tol = tol + 1e-5 * float(np.sqrt(np.mean(g * g)))
    bad = (np.abs(ref - g) > tol) & ~skip
    if skip.mean() > 0.05:
        return f"{skip.sum()} of {skip.size} coordinates sit at kinks"
    if bad.any():
        i = int(np.argmax(np.where(bad, np.abs(ref - g) / tol, 0)))
        return f"{bad.sum()} coordinates off, e.g. {g[i]!r} against {ref[i]!r} +- {tol[i]:.2g}"
    return ""


def _bug_margin(case: Case) -> tuple[float, str]:
    """How far the bug stands above the best central difference that could see it.

    The bug is ``d = grad - correct_grad``. Along two directions u, the coordinate where the
    bug is largest (relative to its scale) and a random +-1 direction (scaled), the bug
    changes the directional derivative by |u.d|; a central difference of the case's own loss
    (float32 rounding and all) along u errs by e(t) = |(L(x + t u) - L(x - t u)) / 2t - u.g|
    at step t. The best error is the least, over 30 steps from 1e-9 to 0.5, of e at three
    neighbouring steps (so that a lucky cancellation at one step does not count). Returns
    the larger of the two ratios |u.d| / best error, and a description.
    """
    assert case.correct_grad is not None
    shape = case.x.shape
    x = np.asarray(case.x, dtype=np.float64).reshape(-1)
    good = np.asarray(case.correct_grad(case.x), dtype=np.float64).reshape(-1)
    bug = np.asarray(case.grad(case.x), dtype=np.float64).reshape(-1) - good
    scales = _scales(case)
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    coordinate = np.zeros_like(x)
    i = int(np.argmax(np.abs(bug) * scales))
    coordinate[i] = scales[i]
    random = rng.choice([-1.0, 1.0], size=x.size) * scales
    steps = 10.0 ** np.linspace(-9, -0.3, 30)
    best, text = 0.0, []
    for label, u in (("coordinate", coordinate), ("random direction", random)):
        true, change = float(u @ good), abs(float(u @ bug))
        errors = np.array(
            [
                abs(
                    (
                        _call(case.loss, (x + t * u).reshape(shape))
                        - _call(case.loss, (x - t * u).reshape(shape))
                    )
                    / (2 * t)
                    - true
                )
                for t in steps
            ]
        )
        errors = np.where(np.isfinite(errors), errors, np.inf)
        robust = np.maximum(np.maximum(errors[:-2], errors[1:-1]), errors[2:])
        error = float(np.min(robust))
        margin = change / error if error > 0 else np.inf
        best = max(best, margin)
        text.append(f"{label}: bug {change:.3g}, best error {error:.3g}, margin {margin:.3g}")
    return best, "; ".join(text)


#: A bug must stand at least this many times above the best central-difference error.
BUG_MARGIN = 10.0


class TestHardCatalogue:
    """Issue 10's groups are what they claim to be, independently of verigrad."""

    def test_hard_gradients_are_correct(self, catalogue: list[Case]) -> None:
        """Every correct gradient, and the correct gradient under every bug, agrees with an
        independent estimate (of the float64 twin where the loss rounds)."""
        rng = np.random.default_rng(0)
        failures, checked = [], 0
        for c in catalogue:
            if c.group not in HARD_GROUPS or c.expected == KINK:
                continue
            grad = c.correct_grad if c.expected == MISMATCH else c.grad
            assert grad is not None, c.name
            why = _hard_gradient_error(c, grad, rng)
            if why:
                failures.append(f"{c.name}: {why}")
            checked += 1
        assert not failures, "\n".join(failures)
        assert checked >= 40

    def test_hard_bugs_are_resolvable(self, catalogue: list[Case]) -> None:
        """Every bug stands at least 10x above the best central difference along a coordinate
        or a random direction: a check can see it, and must."""
        small = []
        for c in catalogue:
            if c.group in HARD_GROUPS and c.expected == MISMATCH:
                margin, text = _bug_margin(c)
                if not margin >= BUG_MARGIN:
                    small.append(f"{c.name}: {text}")
        assert not small, "bugs too small to resolve:\n" + "\n".join(small)

    def test_twins_match_their_losses(self, catalogue: list[Case]) -> None:
        """A twin is its loss without the rounding: equal to float32 precision, not to float64."""
        twinned = [c for c in catalogue if c.twin is not None]
        assert len(twinned) >= 8
        for c in twinned:
            assert c.twin is not None
            value, exact = _call(c.loss, c.x), _call(c.twin, c.x)
            assert abs(value - exact) <= 1e-5 * abs(exact), c.name
            assert abs(value - exact) > 1e-13 * abs(exact), c.name  # it does round

    def test_precision_covers_the_sizes(self, catalogue: list[Case]) -> None:
        """float32 losses at 2,001, 5,000 and 30,000 parameters; mixed at 10 to 5,000."""
        group = [c for c in catalogue if c.group == "precision" and c.expected == PASS]
        f32 = {c.x.size for c in group if c.x.dtype == np.float32 and "f32_loss" in c.name}
        mixed = {c.x.size for c in group if c.name.startswith("mixed")}
        assert f32 == {2001, 5000, 30000}
        assert mixed == {10, 500, 2000, 5000}

    def test_large_losses_are_cheap(self, catalogue: list[Case]) -> None:
        """Past 2,000 parameters a loss evaluates in well under a millisecond (5 ms allows for a
        busy machine), so that even a check of every coordinate stays affordable."""
        for c in catalogue:
            if c.x.size <= 2000:
                continue
            x = np.array(c.x, dtype=np.float64)
            times = []
            for _ in range(5):
                start = time.perf_counter()
                c.loss(x.copy())
                times.append(time.perf_counter() - start)
            assert sorted(times)[2] < 5e-3, (c.name, sorted(times)[2])

    def test_stationary_points(self, catalogue: list[Case]) -> None:
        """Exact zeros are exact; the minimisers' gradients are rounding; the converged
        logistic regression's gradient is ~1e-6 of its start's."""
        by_name = {c.name: c for c in catalogue}
        for name in ("least_squares_noise_free_true_weights", "kl_self_generalised"):
            c = by_name[name]
            assert _call(c.loss, c.x) == 0.0, name
            assert not np.any(c.grad(c.x)), name
        for name in ("least_squares_at_minimiser", "ridge_at_minimiser", "kl_self_logits"):
            c = by_name[name]
            assert np.max(np.abs(c.grad(c.x))) < 1e-12, name
        c = by_name["logistic_converged"]
        shrink = np.linalg.norm(c.grad(c.x)) / np.linalg.norm(c.grad(np.zeros_like(c.x)))
        assert 1e-7 < shrink < 1e-5

    def test_boundary_points_are_near_the_edge(self, catalogue: list[Case]) -> None:
        """A step of 1e-5 max(|x_i|, 1) down some coordinate leaves the loss's domain."""
        cases = [c for c in catalogue if c.group == "boundary"]
        assert len(cases) >= 10
        for c in cases:
            x = np.asarray(c.x, dtype=np.float64).reshape(-1)
            assert np.isfinite(_call(c.loss, c.x)), c.name
            i = int(np.argmin(np.where(x > 0, x, np.inf)))
            y = x.copy()
            y[i] -= 1e-5 * max(abs(x[i]), 1.0)
            assert not np.isfinite(_call(c.loss, y.reshape(c.x.shape))), c.name

    def test_aliasing_losses_do_what_they_say(self, catalogue: list[Case]) -> None:
        """Identity caches return a stale value for the same array written to; the others write
        into their input (the clip at the active point, the decay everywhere)."""
        cases = {c.name: c for c in catalogue if c.group == "aliasing"}
        cached = [c for c in cases.values() if isinstance(c.loss, IdentityCache)]
        assert len(cached) >= 2
        for c in cached:
            x = np.array(c.x, dtype=np.float64)
            value = c.loss(x)
            x += 0.1
            assert c.loss(x) == value, c.name  # stale: the same object
            assert c.loss(x.copy()) != value, c.name  # a new object: recomputed
        for name, writes in [
            ("clip_in_place_inside", False),
            ("clip_in_place_active", True),
            ("decay_after_value_n20", True),
        ]:
            c = cases[name]
            x = np.array(c.x, dtype=np.float64)
            c.loss(x)
            assert (x.tobytes() != np.asarray(c.x, dtype=np.float64).tobytes()) == writes, name


# -- the report --------------------------------------------------------------------------------


def _fake(verdict: str, n_evals: int) -> SimpleNamespace:
    return SimpleNamespace(verdict=verdict, n_evals=n_evals, duration_s=0.001, relative_error=0.5)


class TestReport:
    """``summarize`` and the command line."""

    def test_summarize_counts_rates_and_unexpected(self, catalogue: list[Case]) -> None:
        by_name = {c.name: c for c in catalogue}
        pick = [
            (by_name["seed_cubic"], _fake("pass", 7)),
            (by_name["scales_smooth"], _fake("mismatch", 9)),
            (by_name["regression_sign_flipped"], _fake("mismatch", 5)),
            (by_name["regression_missing_factor_2"], ValueError("boom")),
            (by_name["abs_scalar_at_kink"], _fake("kink", 3)),
            (by_name["relu_at_kink_outside_interval"], _fake("pass", 3)),
        ]
        s = summarize(pick)
        assert list(s["groups"]) == ["correct", "buggy", "kink"]
        correct, buggy, kink = (s["groups"][g] for g in BASE_GROUPS)
        assert correct["cases"] == 2
        assert correct["false_alarms"] == 1
        assert correct["false_alarm_rate"] == 0.5
        assert correct["detection_rate"] is None
        assert buggy["errors"] == 1
        assert buggy["verdicts"]["mismatch"] == 1
        assert buggy["detection_rate"] == 0.5
        assert buggy["n_evals_total"] == 5  # an exception spends nothing countable
        assert kink["kink_rate"] == 1.0
        assert kink["detection_rate"] == 0.0
        assert s["total"]["cases"] == 6
        assert s["total"]["n_evals_total"] == 27
        assert [u["name"] for u in s["unexpected"]] == [
            "scales_smooth",
            "regression_missing_factor_2",
            "relu_at_kink_outside_interval",
        ]
        assert s["unexpected"][1]["error"] == "ValueError: boom"
        json.dumps(s)  # serialisable as it is

    def test_calibration_figures(self, catalogue: list[Case]) -> None:
        """Ratios, under- and over-estimates per group; no estimates: skipped; kinks: left out."""
        by_name = {c.name: c for c in catalogue}
        quad, near = by_name["quadratic_n2"], by_name["relu_near_kink"]
        g = np.asarray(quad.grad(quad.x), dtype=np.float64)
        fake = SimpleNamespace(
            verdict="pass",
            n_evals=5,
            numerical=g + np.array([1e-9, 0.0]),
            errors=np.array([1e-10, 1e-8]),  # 10x under; 1e-8 against 0: over
            checked_indices=None,
            kinks=(),
        )
        gn = np.asarray(near.grad(near.x), dtype=np.float64)
        kinked = SimpleNamespace(
            verdict="kink",
            n_evals=5,
            numerical=gn + 1.0,  # off everywhere; only 0 and 1 estimated, and 1 is a kink
            errors=np.full(gn.shape, 2.0),
            checked_indices=np.array([0, 1]),
            kinks=((1,),),
        )
        no_errors = SimpleNamespace(verdict="pass", n_evals=3, numerical=g, errors=None)
        pick = [
            (quad, fake),
            (near, kinked),
            (by_name["seed_cubic"], no_errors),
            (by_name["regression_sign_flipped"], fake),  # buggy: not calibrated
            (by_name["abs_scalar_at_kink"], fake),  # exactly at a kink: not calibrated
        ]
        cal = calibration(pick)
        assert list(cal["groups"]) == ["correct", "kink"]
        correct, kink = cal["groups"]["correct"], cal["groups"]["kink"]
        assert correct["coordinates"] == 2
        assert correct["under"] == 0.5
        assert correct["over"] == 0.5
        assert correct["max"] == pytest.approx(10.0)
        assert correct["cases_with_under"] == [
            {"name": "quadratic_n2", "under": 0.5, "coordinates": 2}
        ]
        assert kink["coordinates"] == 1
        assert kink["under"] == 0.0
        assert kink["median"] == pytest.approx(0.5)
        assert cal["total"]["coordinates"] == 3
        assert cal["skipped"] == ["seed_cubic"]
        json.dumps(cal, allow_nan=False)

    def test_compare_evals(self, catalogue: list[Case]) -> None:
        by_name = {c.name: c for c in catalogue}
        pick = [
            (by_name["quadratic_n2"], _fake("pass", 12)),
            (by_name["quadratic_n10"], ValueError("boom")),
            (by_name["lasso_n3000"], _fake("pass", 99)),  # not in the baseline
        ]
        evals = compare_evals(pick, {"quadratic_n2": 6, "quadratic_n10": 22, "total": 28})
        assert [r["name"] for r in evals["cases"]] == ["quadratic_n2", "quadratic_n10"]
        assert evals["cases"][0]["ratio"] == 2.0
        assert evals["cases"][1]["now"] is None
        assert evals["baseline_total"] == 28
        assert evals["total"] == 12 + 22  # an error counts its baseline
        assert evals["errors"] == ["quadratic_n10"]

    def test_script_prints_the_table_and_writes_json(self, tmp_path: Path) -> None:
        out = tmp_path / "summary.json"
        script = ROOT / "benchmarks" / "accuracy" / "run.py"
        proc = subprocess.run(
            [sys.executable, str(script), "--group", "kink", "--method=central", f"--json={out}"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "detection" in proc.stdout
        assert "false alarms" in proc.stdout
        assert "calibration" in proc.stdout
        assert "evaluations against the baseline" in proc.stdout
        summary = json.loads(out.read_text())
        assert list(summary["calibration"]["groups"]) == ["kink"]
        assert summary["evals_vs_baseline"]["baseline_total"] == sum(
            r["baseline"] for r in summary["evals_vs_baseline"]["cases"]
        )
        assert list(summary["groups"]) == ["kink"]
        assert summary["settings"]["check_kwargs"] == {"method": "central"}
        assert summary["total"]["cases"] == summary["groups"]["kink"]["cases"] > 0
