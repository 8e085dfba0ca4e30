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
