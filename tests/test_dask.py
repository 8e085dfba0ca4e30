"""executor= with a real dask.distributed cluster (the ``verigrad[dask]`` extra)."""

from __future__ import annotations

import numpy as np
import pytest

import verigrad as vg
from problems import quartic_grad, quartic_loss

distributed = pytest.importorskip("distributed")  # installed by the test extra

A = np.random.default_rng(0).uniform(0.5, 2.0, 200)
X = np.random.default_rng(1).normal(size=200)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as c:
        yield c


class TestDaskCluster:
    def test_check_on_a_local_cluster_matches_serial(self, client) -> None:
        """Chunks run on the cluster's worker processes and come back in order."""
        serial = vg.check_gradient(quartic_loss, X, quartic_grad, args=(A,), method="central")
        r = vg.check_gradient(
            quartic_loss,
            X,
            quartic_grad,
            args=(A,),
            method="central",
            executor=client.get_executor(),
        )
        assert r.verdict == "pass"
        np.testing.assert_array_equal(r.numerical, serial.numerical)

    def test_bug_named_on_the_cluster(self, client) -> None:
        """A wrong coordinate is named when the check runs on dask workers."""
        wrong = quartic_grad(X, A)
        wrong[42] *= 1.01
        r = vg.check_gradient(quartic_loss, X, wrong, args=(A,), executor=client.get_executor())
        assert r.mismatched == ((42,),)


class TestDecoratedOnWorkers:
    def test_decorated_functions_run_on_workers_with_their_own_statistics(self, client) -> None:
        """A decorated gradient shipped to dask workers works there and counts its own calls."""
        from problems import call_in_child, checked_quartic_grad

        before = checked_quartic_grad.verigrad.stats.calls
        a = np.linspace(0.5, 2.0, 5)
        grad = client.submit(checked_quartic_grad, np.ones(5), a, pure=False).result()
        np.testing.assert_array_equal(grad, a)
        calls, checks, failures = client.submit(call_in_child, 3, pure=False).result()
        assert calls >= 3
        assert checks == 1
        assert failures == 0
        assert checked_quartic_grad.verigrad.stats.calls == before

    def test_local_decorated_function_is_shipped_by_value(self, client) -> None:
        """A decorated function defined in a test reaches the workers by value and checks there."""

        def loss(w: np.ndarray) -> float:
            return float(np.sum(w**2))

        @vg.verified_gradient(loss=loss, mode="debug")
        def buggy(w: np.ndarray) -> np.ndarray:
            return w  # missing factor 2

        future = client.submit(buggy, np.ones(3), pure=False)
        with pytest.raises(vg.GradientMismatchError, match="factor of 2"):
            future.result()
