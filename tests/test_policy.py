"""Tests for the sampling schedule: which call indices of a decorated function are checked."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verigrad as vg
from verigrad._policy import NEVER, Schedule


def checked(schedule: Schedule, n: int) -> list[int]:
    """Drive ``schedule`` as the decorator does for ``n`` calls; return the checked indices."""
    out = []
    for i in range(n):
        if i >= schedule.next_due and schedule.take(i) is not None:
            out.append(i)
    return out


def reasons(schedule: Schedule, n: int) -> dict[int, str]:
    """Like :func:`checked`, but map each checked index to the reason ``take`` gave."""
    out = {}
    for i in range(n):
        if i >= schedule.next_due:
            reason = schedule.take(i)
            if reason is not None:
                out[i] = reason
    return out


class TestScheduleRules:
    def test_first_checks_exactly_the_first_calls(self) -> None:
        """``first=5`` with no sampling checks calls 0..4 and nothing after."""
        assert checked(Schedule(first=5), 200) == [0, 1, 2, 3, 4]

    def test_every_checks_every_nth_call(self) -> None:
        """``every=7`` checks the 7th, 14th, ... call: 0-based indices 6, 13, 20, ..."""
        assert checked(Schedule(every=7), 50) == [6, 13, 20, 27, 34, 41, 48]

    def test_every_one_checks_every_call(self) -> None:
        """``every=1`` checks every single call."""
        assert checked(Schedule(every=1), 30) == list(range(30))

    def test_first_and_every_give_the_union(self) -> None:
        """``first=3, every=10`` checks the first three calls plus every tenth call."""
        assert checked(Schedule(first=3, every=10, sample_rate=0.0), 45) == [0, 1, 2, 9, 19, 29, 39]

    def test_overlapping_first_and_every_check_once(self) -> None:
        """A call due under both ``first`` and ``every`` is checked once, as ``"first"``."""
        assert reasons(Schedule(first=4, every=2), 10) == {
            0: "first",
            1: "first",
            2: "first",
            3: "first",
            5: "every",
            7: "every",
            9: "every",
        }

    def test_nothing_set_never_checks(self) -> None:
        """With ``sample_rate=0``, ``first=0`` and no ``every`` no call is ever due."""
        schedule = Schedule(sample_rate=0.0, first=0, every=None)
        assert schedule.next_due == NEVER
        assert checked(schedule, 10_000) == []

    def test_sample_rate_one_checks_every_call(self) -> None:
        """``sample_rate=1`` checks every call, each as a sample."""
        assert reasons(Schedule(sample_rate=1.0, seed=0), 20) == dict.fromkeys(range(20), "sample")

    def test_sampled_count_is_binomial(self) -> None:
        """``sample_rate=0.1`` over 10,000 calls checks 1,000 within four standard deviations."""
        n_checks = len(checked(Schedule(sample_rate=0.1, seed=2024), 10_000))
        sigma = math.sqrt(10_000 * 0.1 * 0.9)  # 30
        assert abs(n_checks - 1_000) <= 4 * sigma

    def test_sampled_gaps_look_geometric(self) -> None:
        """Gaps between sampled calls average 1/sample_rate, as a Bernoulli process's do."""
        idx = np.array(checked(Schedule(sample_rate=0.2, seed=5), 50_000))
        gaps = np.diff(idx)
        assert gaps.min() >= 1
        assert gaps.mean() == pytest.approx(5.0, rel=0.05)

    def test_same_seed_same_indices(self) -> None:
        """Two schedules with the same seed check exactly the same calls."""
        a = checked(Schedule(sample_rate=0.1, seed=11), 5_000)
        b = checked(Schedule(sample_rate=0.1, seed=11), 5_000)
        assert a == b
        assert len(a) > 0

    def test_different_seed_different_indices(self) -> None:
        """A different seed gives a different set of sampled calls."""
        a = checked(Schedule(sample_rate=0.1, seed=11), 5_000)
        b = checked(Schedule(sample_rate=0.1, seed=12), 5_000)
        assert a != b

    def test_numpy_integer_seed_is_accepted(self) -> None:
        """A numpy integer seed behaves like the same Python int."""
        a = checked(Schedule(sample_rate=0.1, seed=np.int64(3)), 2_000)
        assert a == checked(Schedule(sample_rate=0.1, seed=3), 2_000)

    def test_reset_replays_the_schedule(self) -> None:
        """``reset`` re-seeds the generator, so the same calls are checked again."""
        schedule = Schedule(sample_rate=0.05, first=2, every=50, seed=9)
        first_run = checked(schedule, 3_000)
        schedule.reset()
        assert checked(schedule, 3_000) == first_run

    def test_next_due_is_the_next_checked_index(self) -> None:
        """``next_due`` always names the next index that ``take`` will check."""
        schedule = Schedule(sample_rate=0.1, first=2, every=13, seed=4)
        for i in range(2_000):
            if i < schedule.next_due:
                continue
            assert i == schedule.next_due
            assert schedule.take(i) is not None

    def test_overdue_sample_is_taken_by_the_next_call(self) -> None:
        """A sample that came due while no call reached the schedule goes to the next call."""
        schedule = Schedule(sample_rate=0.5, first=0, seed=1)
        due = schedule.next_due
        assert schedule.take(due + 100) == "sample"
        assert schedule.next_due > due + 100


class TestScheduleRandomness:
    def test_generator_drawn_once_per_sample(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A gap is drawn at the start and after each sampled check, never per unchecked call."""
        draws = 0
        original = Schedule._gap

        def counting(self: Schedule) -> int:
            nonlocal draws
            draws += 1
            return original(self)

        monkeypatch.setattr(Schedule, "_gap", counting)
        schedule = Schedule(sample_rate=0.01, seed=0)
        assert draws == 1
        sampled = checked(schedule, 20_000)
        assert 100 < len(sampled) < 300
        assert draws == 1 + len(sampled)

    def test_first_and_every_do_not_draw(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Checks due to ``first`` or ``every`` alone do not consume random numbers."""
        draws = 0
        original = Schedule._gap

        def counting(self: Schedule) -> int:
            nonlocal draws
            draws += 1
            return original(self)

        monkeypatch.setattr(Schedule, "_gap", counting)
        schedule = Schedule(sample_rate=0.0, first=10, every=3, seed=0)
        assert len(checked(schedule, 1_000)) == 10 + len(range(11, 1_000, 3))
        assert draws == 1  # the initial gap only (NEVER for a zero rate)

    def test_global_random_state_untouched(self) -> None:
        """Building and driving a schedule leaves ``random`` and ``numpy.random`` alone."""
        py_state = random.getstate()
        np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state
        checked(Schedule(sample_rate=0.3, seed=None), 5_000)
        checked(Schedule(sample_rate=0.3, seed=8), 5_000)
        assert random.getstate() == py_state
        after = np.random.get_state()  # noqa: NPY002
        assert after[0] == np_state[0]
        assert np.array_equal(after[1], np_state[1])
        assert after[2:] == np_state[2:]

    @settings(max_examples=60, deadline=None)
    @given(
        first=st.integers(min_value=0, max_value=40),
        every=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
        seed=st.integers(min_value=0, max_value=2**32 - 1),
        rate=st.sampled_from([0.0, 0.01, 0.2, 1.0]),
    )
    def test_schedule_is_deterministic_and_covers_first_and_every(
        self, first: int, every: int | None, seed: int, rate: float
    ) -> None:
        """For any seed the checked set is reproducible and contains every first/every index."""
        n = 300
        a = checked(Schedule(sample_rate=rate, every=every, first=first, seed=seed), n)
        b = checked(Schedule(sample_rate=rate, every=every, first=first, seed=seed), n)
        assert a == b
        required = set(range(min(first, n)))
        if every is not None:
            required |= set(range(every - 1, n, every))
        assert required <= set(a)
        if rate == 0.0:
            assert set(a) == required
        if rate == 1.0:
            assert a == list(range(n))


class TestScheduleValidation:
    @pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan, math.inf])
    def test_bad_sample_rate_value(self, rate: float) -> None:
        """A sample_rate outside [0, 1], or NaN, is refused naming the argument."""
        with pytest.raises(vg.InvalidArgumentError, match="sample_rate"):
            Schedule(sample_rate=rate)

    @pytest.mark.parametrize("rate", ["0.1", None, True])
    def test_bad_sample_rate_type(self, rate: object) -> None:
        """A sample_rate that is not a number (bools included) is a type error naming it."""
        with pytest.raises(vg.InvalidTypeError, match="sample_rate"):
            Schedule(sample_rate=rate)  # type: ignore[arg-type]

    def test_every_zero(self) -> None:
        """``every=0`` is refused: it must be at least 1."""
        with pytest.raises(vg.InvalidArgumentError, match=r"every=0.*at least 1"):
            Schedule(every=0)

    def test_first_negative(self) -> None:
        """``first=-1`` is refused: it must be at least 0."""
        with pytest.raises(vg.InvalidArgumentError, match=r"first=-1.*at least 0"):
            Schedule(first=-1)

    @pytest.mark.parametrize(("name", "value"), [("every", 2.5), ("first", "3"), ("every", True)])
    def test_counts_must_be_ints(self, name: str, value: object) -> None:
        """``every`` and ``first`` must be ints (not floats, strings or bools)."""
        with pytest.raises(vg.InvalidTypeError, match=name):
            Schedule(**{name: value})  # type: ignore[arg-type]

    @pytest.mark.parametrize("seed", [1.5, "7", True])
    def test_seed_must_be_an_int(self, seed: object) -> None:
        """A seed that is not an int is a type error naming seed."""
        with pytest.raises(vg.InvalidTypeError, match="seed"):
            Schedule(seed=seed)  # type: ignore[arg-type]
