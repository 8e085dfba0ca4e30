"""budget=: checks take about the given fraction of the wall time, on a simulated clock."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from structlog.testing import capture_logs

import verigrad as vg
from fake_clock import FakeClock


def make(clock: FakeClock, budget: float, eval_cost: float = 1e-3, **options: object):
    def loss(v: np.ndarray) -> float:
        clock.now += eval_cost  # each loss evaluation takes eval_cost seconds
        return float(np.sum(v**2))

    return vg.verified_gradient(loss=loss, budget=budget, seed=0, **options)(lambda v: 2 * v)


def train(clock: FakeClock, grad, steps: int, step_cost: float) -> None:
    w = np.linspace(-1.0, 1.0, 10)
    with capture_logs():
        for _ in range(steps):
            clock.now += step_cost
            grad(w)


def shares_after_checks(
    clock: FakeClock,
    grad,
    steps: int,
    step_cost: float,
    after_first_call: Callable[[], None] | None = None,
) -> list[float]:
    """Train; ``stats.overhead`` right after each check but the first."""
    w = np.linspace(-1.0, 1.0, 10)
    shares = []
    with capture_logs():
        for step in range(steps):
            clock.now += step_cost
            before = grad.verigrad.stats.checks
            grad(w)
            if step == 0 and after_first_call is not None:
                after_first_call()
            stats = grad.verigrad.stats
            if stats.checks > max(before, 1):
                shares.append(stats.overhead)
    return shares


class TestBudget:
    @pytest.mark.parametrize("budget", [0.02, 0.1, 0.3])
    def test_overhead_settles_near_the_budget(self, clock: FakeClock, budget: float) -> None:
        """Each check costs 22 ms of a 10 ms-per-step run; the overhead stays near the budget."""
        grad = make(clock, budget)
        train(clock, grad, 5_000, 0.010)
        stats = grad.verigrad.stats
        assert stats.overhead == pytest.approx(budget, rel=0.2)
        assert stats.checks > 5

    def test_adapts_when_the_training_step_slows_down(self, clock: FakeClock) -> None:
        """When steps get 5x slower, a check is a smaller share of a step: more checks per step,
        and the overhead stays at the budget."""
        grad = make(clock, 0.1)
        train(clock, grad, 2_000, 0.010)
        checks_fast = grad.verigrad.stats.checks
        train(clock, grad, 2_000, 0.050)
        stats = grad.verigrad.stats
        assert stats.overhead == pytest.approx(0.1, rel=0.2)
        assert stats.checks - checks_fast > 3 * checks_fast

    @pytest.mark.parametrize("budget", [0.05, 0.2])
    def test_the_share_stays_within_the_budget_whenever_a_check_ends(
        self, clock: FakeClock, budget: float
    ) -> None:
        """Checks of equal cost: right after each check after the first (which no budget
        allowed), checks have taken at most the budget's share of the time since the first
        check, and not one check's worth more (the first check is paid back too)."""
        shares = shares_after_checks(clock, make(clock, budget), 3_000, 0.010)
        assert len(shares) >= 3
        assert max(shares) <= 1.02 * budget

    def test_a_later_check_three_times_the_first_stays_within_the_budget(
        self, clock: FakeClock
    ) -> None:
        """Checks later in a run cost more than the first (a full check near convergence takes
        a closer look at many coordinates): the budget expects it, and the share stays within
        the budget when that check ends."""
        cost = [1e-3]

        def loss(v: np.ndarray) -> float:
            clock.now += cost[0]
            return float(np.sum(v**2))

        def costlier() -> None:
            cost[0] = 3e-3  # every check after the first costs three times as much

        grad = vg.verified_gradient(loss=loss, budget=0.05, seed=0)(lambda v: 2 * v)
        shares = shares_after_checks(clock, grad, 20_000, 0.001, after_first_call=costlier)
        assert len(shares) >= 3
        assert max(shares) <= 1.02 * 0.05

    def test_first_checks_are_not_skipped(self, clock: FakeClock) -> None:
        """first=5 checks the first five calls, whatever the budget says."""
        grad = make(clock, 0.01, first=5)
        train(clock, grad, 5, 0.010)
        assert grad.verigrad.stats.checks == 5

    def test_debug_mode_ignores_the_budget(self, clock: FakeClock) -> None:
        """In debug mode every call is checked."""
        grad = make(clock, 0.01, mode="debug")
        train(clock, grad, 50, 0.010)
        assert grad.verigrad.stats.checks == 50

    @pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 2])
    def test_budget_must_be_a_fraction(self, bad: float) -> None:
        """A budget outside (0, 1) is refused, naming budget."""
        with pytest.raises(vg.InvalidArgumentError, match="budget="):
            vg.verified_gradient(loss=lambda v: 0.0, budget=bad)
