"""Under the decorator, subset checks rotate through every coordinate and report coverage."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

import verigrad as vg
from verigrad._decorator import Rotation

N = 3_000
A = np.random.default_rng(0).uniform(0.5, 2.0, N)
X = np.random.default_rng(1).normal(size=N)


def loss(v: np.ndarray) -> float:
    return float(A @ (v * v))


class TestRotation:
    def test_one_pass_hands_out_every_coordinate_once(self) -> None:
        """Within a pass no coordinate is repeated; the pass covers them all."""
        rotation = Rotation(seed=0)
        chunks = [rotation.take(100, 32) for _ in range(3)]
        chunks.append(rotation.take(100, 4))
        seen = np.concatenate(chunks)
        assert sorted(seen.tolist()) == list(range(100))

    def test_a_new_pass_starts_after_the_last_coordinate(self) -> None:
        """Past the end of a pass the rotation continues with a fresh permutation."""
        rotation = Rotation(seed=0)
        first_pass = np.concatenate([rotation.take(10, 5), rotation.take(10, 5)])
        assert sorted(first_pass.tolist()) == list(range(10))
        second = rotation.take(10, 3)
        assert second.size == 3
        assert set(second.tolist()) <= set(range(10))

    @settings(max_examples=60, deadline=None)
    @given(st.integers(1, 500), st.integers(1, 64), st.integers(0, 2**32 - 1))
    def test_every_pass_is_a_permutation(self, n: int, m: int, seed: int) -> None:
        """For any size, chunk and seed: each pass hands out every coordinate exactly once."""
        rotation = Rotation(seed=seed)
        seen: list[int] = []
        while len(seen) < n:
            seen.extend(rotation.take(n, min(m, n - len(seen))).tolist())
        assert sorted(seen) == list(range(n))

    def test_coverage_counts_each_coordinate_once(self) -> None:
        rotation = Rotation(seed=0)
        rotation.cover(1000, np.array([1, 2, 2, 999]))
        rotation.cover(1000, np.array([2, 3]))
        assert rotation.coverage == 4 / 1000
        rotation.cover(1000, None)
        assert rotation.coverage == 1.0

    def test_nothing_parameter_sized_is_kept_between_calls(self) -> None:
        """At 300,000 coordinates the rotation keeps two integers and a bit per coordinate,
        and last_result keeps no arrays: a decorated gradient holds < 0.05x the parameter."""
        n = 300_000
        rng = np.random.default_rng(2)
        x, c = rng.normal(size=n), rng.normal(size=n)

        def cheap(v: np.ndarray) -> float:
            return float(0.5 * (v @ v) + c @ v)

        grad = vg.verified_gradient(loss=cheap, mode="debug", seed=0)(lambda v: v + c)
        with capture_logs():
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                out = grad(x)
                del out  # the returned gradient is the caller's to keep or drop
                gc.collect()
                kept = tracemalloc.get_traced_memory()[0] - base
            finally:
                tracemalloc.stop()
        assert kept < 0.05 * x.nbytes
        last = grad.verigrad.last_result
        assert last is not None
        assert not last.arrays
        assert last.verdict == "pass"
        assert "gradient check passed" in last.summary()


class TestDecoratorCoverage:
    def test_coverage_reaches_one_after_n_over_m_checks(self) -> None:
        """3,000 parameters, 32 per check: every coordinate is verified after 94 checks."""
        grad = vg.verified_gradient(loss=loss, mode="debug", seed=1)(lambda v: 2 * A * v)
        with capture_logs():
            for _ in range(93):
                grad(X)
            assert grad.verigrad.stats.coverage < 1.0
            grad(X)
        stats = grad.verigrad.stats
        assert stats.coverage == 1.0
        assert stats.failures == 0
        assert "rotating coordinates" in (stats.last_result.strategy or "")

    def test_coverage_is_one_after_a_full_check(self) -> None:
        """A parameter small enough for a full check is fully covered at once."""
        grad = vg.verified_gradient(loss=lambda v: float(np.sum(v**2)), mode="debug")(
            lambda v: 2 * v
        )
        with capture_logs():
            grad(np.ones(10))
        assert grad.verigrad.stats.coverage == 1.0

    def test_reset_forgets_coverage(self) -> None:
        """reset() starts coverage from zero."""
        grad = vg.verified_gradient(loss=loss, mode="debug", seed=1)(lambda v: 2 * A * v)
        with capture_logs():
            grad(X)
        assert grad.verigrad.stats.coverage > 0
        grad.verigrad.reset()
        assert grad.verigrad.stats.coverage == 0.0
