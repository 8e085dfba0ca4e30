"""The decorator's defaults and how its schedule options combine (issue 11, items 1 and 4)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

import verigrad as vg
from fake_clock import FakeClock

A = np.linspace(0.5, 2.0, 5)


def make(clock: FakeClock | None = None, eval_cost: float = 1e-3, **options: Any) -> Any:
    def loss(w: np.ndarray) -> float:
        if clock is not None:
            clock.now += eval_cost
        return 0.5 * float(w @ (A * w))

    return vg.verified_gradient(loss=loss, **options)(lambda w: A * w)


def run(grad: Any, calls: int, clock: FakeClock | None = None, step: float = 0.0) -> list[int]:
    """Call ``grad`` ``calls`` times; the indices of the checked calls, with their triggers."""
    w = np.linspace(-1.0, 1.0, A.size)
    with capture_logs() as events:
        for _ in range(calls):
            if clock is not None:
                clock.now += step
            grad(w)
    return [e["call_index"] for e in events]


class TestDefaults:
    def test_first_call_is_checked(self, clock: FakeClock) -> None:
        """With no options the first call is checked (trigger "first")."""
        grad = make(clock)
        with capture_logs() as events:
            grad(np.ones(A.size))
        assert [(e["call_index"], e["trigger"]) for e in events] == [(0, "first")]

    def test_default_overhead_stays_within_five_percent(self, clock: FakeClock) -> None:
        """A check as long as 7 training steps: the defaults spend about 5 % of the time in
        checks, not the 7 % a 1 % sampling rate would, and not more as the run goes on."""
        grad = make(clock, eval_cost=1e-3)
        run(grad, 20_000, clock, step=0.01)
        stats = grad.verigrad.stats
        assert stats.checks > 20
        assert stats.overhead == pytest.approx(0.05, rel=0.2)
        assert stats.overhead <= 0.055

    def test_default_is_first_one_and_budget(self) -> None:
        """The options record what the defaults are."""
        options = make().verigrad.options
        assert (options.first, options.budget, options.every, options.sample_rate) == (
            1,
            0.05,
            None,
            None,
        )


class TestOptionsSayExactlyWhatTheyMean:
    def test_every_alone_checks_every_nth_call_and_nothing_else(self) -> None:
        """``every=10`` alone: 20 checks in 200 calls, calls 10, 20, ... (no first, no
        sampling, no budget)."""
        assert run(make(every=10), 200) == list(range(9, 200, 10))

    def test_first_alone(self) -> None:
        """``first=3`` alone checks the first three calls only."""
        assert run(make(first=3), 100) == [0, 1, 2]

    def test_sample_rate_alone_adds_no_first_check(self) -> None:
        """``sample_rate`` alone samples; call 0 is checked only if drawn."""
        grad = make(sample_rate=0.1, seed=3)
        idx = run(grad, 2_000)
        assert 140 < len(idx) < 260
        assert grad.verigrad.options.first is None

    def test_budget_alone_checks_the_first_call(self, clock: FakeClock) -> None:
        """``budget`` alone: call 0 is a candidate the budget allows."""
        assert run(make(clock, budget=0.1), 1, clock, step=0.01) == [0]

    def test_every_with_budget_keeps_every_check(self, clock: FakeClock) -> None:
        """``every`` checks happen whatever the budget says; the budget limits only samples."""
        idx = run(make(clock, every=50, budget=0.01, eval_cost=1e-2), 500, clock, step=1e-3)
        assert set(range(49, 500, 50)) <= set(idx)

    def test_sample_rate_with_budget_never_exceeds_either(self, clock: FakeClock) -> None:
        """Sampled calls at ``sample_rate``, dropped when over the budget: fewer checks than
        the rate alone, and the overhead at most the budget."""
        alone = run(make(clock, sample_rate=0.5, seed=1), 2_000, clock, step=0.01)
        clock.now = 0.0
        grad = make(clock, sample_rate=0.5, budget=0.05, seed=1)
        both = run(grad, 2_000, clock, step=0.01)
        assert 0 < len(both) < len(alone) / 5
        assert grad.verigrad.stats.overhead <= 0.06

    def test_debug_mode_checks_every_call_despite_the_default_budget(self) -> None:
        """Debug mode checks every call, budget or not."""
        grad = make(mode="debug")
        assert run(grad, 30) == list(range(30))


class TestDecoratingRealCode:
    def test_bound_method_as_gradient(self) -> None:
        """``verified_gradient(loss=m.loss)(m.grad)`` checks (wrt=0 is the method's first
        argument after self); a wrong one raises."""

        class Model:
            def __init__(self, scale: float) -> None:
                self.scale = scale

            def loss(self, w: np.ndarray) -> float:
                return 0.5 * float(w @ (A * w))

            def grad(self, w: np.ndarray) -> np.ndarray:
                return self.scale * A * w

        good, bad = Model(1.0), Model(0.5)
        checked = vg.verified_gradient(loss=good.loss, mode="debug")(good.grad)
        np.testing.assert_array_equal(checked(np.ones(5)), A)
        assert checked.verigrad.stats.checks == 1
        with pytest.raises(vg.GradientMismatchError):
            vg.verified_gradient(loss=bad.loss, mode="debug")(bad.grad)(np.ones(5))
        by_name = vg.verified_gradient(loss="loss", mode="debug")(good.grad)
        by_name(np.ones(5))
        assert by_name.verigrad.stats.failures == 0

    def test_partial_as_gradient(self) -> None:
        """A ``functools.partial`` gradient with the loss's fixed arguments bound too."""

        def loss(w: np.ndarray, a: np.ndarray) -> float:
            return 0.5 * float(w @ (a * w))

        def grad(w: np.ndarray, a: np.ndarray) -> np.ndarray:
            return a * w

        checked = vg.verified_gradient(loss=functools.partial(loss, a=A), mode="debug")(
            functools.partial(grad, a=A)
        )
        checked(np.ones(5))
        assert checked.verigrad.stats.checks == 1
        assert checked.verigrad.stats.failures == 0

    def test_callable_instance_as_gradient(self) -> None:
        """An object with ``__call__`` is a gradient function like any other."""

        class Grad:
            def __call__(self, w: np.ndarray) -> np.ndarray:
                return 0.5 * A * w  # wrong

        checked = vg.verified_gradient(loss=lambda w: 0.5 * float(w @ (A * w)), mode="debug")(
            Grad()
        )
        with pytest.raises(vg.GradientMismatchError):
            checked(np.ones(5))

    def test_bare_decorator_fails_at_decoration_with_the_right_spelling(self) -> None:
        """``@verified_gradient`` without ``(loss=...)`` says how to write it."""
        with pytest.raises(vg.InvalidArgumentError, match=r"@verified_gradient\(loss="):

            @vg.verified_gradient  # type: ignore[arg-type]
            def grad(w: np.ndarray) -> np.ndarray:
                return w

    def test_missing_loss_fails_at_decoration(self) -> None:
        """``verified_gradient()`` without ``loss`` says what is missing."""
        with pytest.raises(vg.InvalidArgumentError, match="needs loss="):
            vg.verified_gradient()

    @pytest.mark.parametrize("kind", ["function", "staticmethod", "partial"])
    def test_loss_name_without_an_instance_fails_at_decoration(self, kind: str) -> None:
        """``loss="name"`` where no instance will be passed fails at once, showing
        ``loss=name``."""

        def grad(w: np.ndarray) -> np.ndarray:
            return w

        target: Any = {
            "function": grad,
            "staticmethod": staticmethod(grad),
            "partial": functools.partial(grad),
        }[kind]
        with pytest.raises(vg.InvalidArgumentError, match=r"loss=my_loss\)"):
            vg.verified_gradient(loss="my_loss")(target)

    def test_bad_schedule_option_fails_at_decoration(self) -> None:
        """A bad ``every`` is named when the decorator is made, not at the first call."""
        with pytest.raises(vg.InvalidArgumentError, match="every=0"):
            vg.verified_gradient(loss=lambda w: 0.0, every=0)
