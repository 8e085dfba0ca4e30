"""Under the decorator, subset checks rotate through every coordinate and report coverage."""

from __future__ import annotations

import numpy as np
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
