"""Framework points: built on the device for ``vectorized=True`` and ``executor=``, and the
caller's own kind of array in ``numerical_gradient`` and ``directional_derivative``.

A torch or JAX parameter checked with a vectorized loss gets batches built from the base on
the device (the base repeated, one coordinate scattered into each row); over an executor each
task moves its copy of the point to the device once, then moves single coordinates there.
No evaluation copies a whole point from the host: the tests count the host-to-device
transfers of whole points (:func:`verigrad._backend._to_device`, which every such transfer
goes through) and find them independent of the number of evaluations. Verdicts and numbers
stay numpy's. CuPy runs where it and a GPU are present.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import test_frameworks as framework_libs
import verigrad as vg
from test_frameworks import Lib
from verigrad import _backend, assert_gradient, check_gradient, verified_gradient
from verigrad._backend import array_kind, host_array
from verigrad.exceptions import GradientMismatchError

# The frameworks of the contract tests (test_frameworks.py), numpy aside: this file is about
# points built on a device.
LIBS = {name: make for name, make in framework_libs.LIBS.items() if name != "numpy"}


@pytest.fixture(params=list(LIBS))
def lib(request: pytest.FixtureRequest) -> Iterator[Lib]:
    chosen = LIBS[request.param]()
    with chosen.context():
        yield chosen


class Transfers:
    """Counts the whole points (arrays of at least ``n`` numbers) copied from the host to the
    device while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        self.n = 1
        original = _backend._to_device

        def counting(kind: Any, device: Any, dtype: Any, host: Any) -> Any:
            self.sizes.append(int(np.size(host)))
            return original(kind, device, dtype, host)

        monkeypatch.setattr(_backend, "_to_device", counting)

    def whole_points(self) -> int:
        return sum(1 for size in self.sizes if size >= self.n)

    def reset(self, n: int) -> None:
        self.sizes.clear()
        self.n = n


@pytest.fixture
def transfers(monkeypatch: pytest.MonkeyPatch) -> Transfers:
    return Transfers(monkeypatch)


class CountingPool(ThreadPoolExecutor):
    """A thread pool that counts the tasks it is given."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def cubes(w: Any) -> Any:
    """``sum(w**3)`` over the last axis: one point, or a batch of them."""
    return (w**3).sum(-1)


def point(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 2.0, n)


class TestVectorized:
    def test_no_whole_point_crosses_per_batch(self, lib: Lib, transfers: Transfers) -> None:
        """Batches of two points each: the points copied from the host are the few the check
        evaluates one by one (the probe), the same for 10 and 40 coordinates, not one per
        batch."""
        counts = []
        for n in (10, 40):
            x0 = point(n)
            transfers.reset(n)
            r = check_gradient(
                cubes,
                lib.make(x0),
                lib.make(3 * x0**2),
                vectorized=True,
                batch_bytes=2 * 8 * n,
            )
            assert r.passed
            assert r.n_evals >= 2 * n
            counts.append(transfers.whole_points())
        assert counts[0] == counts[1] <= 6

    def test_the_loss_gets_device_batches_and_finds_the_bug(self, lib: Lib) -> None:
        """Each batch is the caller's kind of array, in batches of the size numpy's would
        have; a wrong coordinate is found."""
        x0 = point(12, seed=1)
        g = 3 * x0**2
        wrong = g.copy()
        wrong[7] += 0.5
        shapes: list[tuple[int, ...]] = []

        def loss(w: Any) -> Any:
            assert array_kind(w) == lib.kind
            shapes.append(tuple(w.shape))
            return cubes(w)

        options: dict[str, Any] = {"vectorized": True, "batch_bytes": 5 * 8 * 12, "seed": 0}
        r = check_gradient(loss, lib.make(x0), lib.make(g), **options)
        assert r.passed
        assert {s[0] for s in shapes if len(s) == 2} >= {4}  # batches of 4 (multiples of 2)
        bad = check_gradient(loss, lib.make(x0), lib.make(wrong), **options)
        assert bad.verdict == "mismatch"
        assert list(bad.mismatched) == [(7,)]
        if lib.float64:  # float32 points take float32's precision path (more evaluations)
            numpy = check_gradient(cubes, x0, wrong, **options)
            assert bad.n_evals == numpy.n_evals
            np.testing.assert_allclose(bad.numerical, numpy.numerical, rtol=1e-8)

    def test_the_points_are_numpys_bit_for_bit(self, lib: Lib) -> None:
        """In float64 the device batches hold exactly the points numpy's batches hold: a loss
        that computes with numpy on them gives numpy's check, number for number."""
        if not lib.float64:
            pytest.skip("float32 points differ from numpy's float64 ones by design")
        x0 = point(12, seed=1)
        wrong = 3 * x0**2
        wrong[4] -= 0.25

        def on_host(w: Any) -> Any:
            assert array_kind(w) == lib.kind
            return cubes(host_array(w))

        for batch in (3, 5, 64):
            options: dict[str, Any] = {
                "vectorized": True,
                "batch_bytes": batch * 8 * 12,
                "seed": 0,
            }
            r = check_gradient(on_host, lib.make(x0), lib.make(wrong), **options)
            numpy = check_gradient(cubes, x0, wrong, **options)
            assert r.verdict == numpy.verdict == "mismatch"
            assert r.n_evals == numpy.n_evals
            np.testing.assert_array_equal(r.numerical, numpy.numerical)
            np.testing.assert_array_equal(r.errors, numpy.errors)

    def test_directions_are_built_on_the_device(self, lib: Lib, transfers: Transfers) -> None:
        """A large parameter (random directions, batched): the directions move to the device
        once each, whatever the batch size."""
        n = 3000
        x0 = point(n, seed=2)
        counts = []
        for batch in (2, 64):
            transfers.reset(n)
            r = check_gradient(
                cubes,
                lib.make(x0),
                lib.make(3 * x0**2),
                vectorized=True,
                batch_bytes=batch * 8 * n,
                seed=0,
            )
            assert r.passed
            counts.append(transfers.whole_points())
        assert counts[0] == counts[1]

    def test_a_float32_workspace_reports_the_offsets_it_applied(self) -> None:
        """A torch loss with float32 weights refuses float64 points: its batches are built in
        float32, and the check still passes a right gradient and finds a wrong one."""
        torch = pytest.importorskip("torch")
        torch.manual_seed(0)
        weights = torch.randn(3, 2)
        x = torch.randn(4, 3)
        dtypes: set[Any] = set()

        def loss(v: Any) -> Any:
            dtypes.add(v.dtype)
            return (v @ weights).pow(2).sum(dim=(-1, -2))

        g = 2 * (x @ weights) @ weights.T
        r = check_gradient(loss, x, g, vectorized=True, batch_bytes=4 * 8 * 12)
        assert r.passed
        assert r.precision == "float32"
        assert torch.float32 in dtypes
        g[2, 1] += 0.5
        bad = check_gradient(loss, x, g, vectorized=True, batch_bytes=4 * 8 * 12)
        assert bad.verdict == "mismatch"
        assert (2, 1) in bad.mismatched

    def test_an_error_names_the_batch(self, lib: Lib) -> None:
        """A loss that raises on a device batch gets numpy's note naming its coordinates."""
        x0 = point(6)
        notes = []
        for x in (x0, lib.make(x0)):
            calls: list[Any] = []

            def loss(w: Any, calls: list[Any] = calls) -> Any:
                calls.append(w.shape)
                if len(calls) == 4:
                    raise RuntimeError("boom")
                return cubes(w)

            with pytest.raises(RuntimeError, match="boom") as info:
                check_gradient(loss, x, 3 * x0**2, vectorized=True, batch_bytes=2 * 8 * 6)
            notes.append(getattr(info.value, "__notes__", []))
        assert notes[0] == notes[1]
        assert notes[0]

    def test_structured_parameters(self, transfers: Transfers) -> None:
        """A dict of tensors, vectorized: the flat batches are built on the device and the
        loss gets the structure around them."""
        torch = pytest.importorskip("torch")
        a0, b0 = point(6, seed=3).reshape(2, 3), point(4, seed=4)
        params = {"a": torch.tensor(a0), "b": torch.tensor(b0)}

        def loss(p: dict[str, Any]) -> Any:
            return (p["a"] ** 3).sum(dim=(-1, -2)) + (p["b"] ** 2).sum(-1)

        grad = {"a": torch.tensor(3 * a0**2), "b": torch.tensor(2 * b0)}
        transfers.reset(10)
        assert check_gradient(loss, params, grad, vectorized=True, batch_bytes=2 * 8 * 10).passed
        assert transfers.whole_points() <= 6
        grad["b"][1] += 1.0
        r = check_gradient(loss, params, grad, vectorized=True, batch_bytes=2 * 8 * 10)
        assert r.verdict == "mismatch"

    def test_through_the_decorator(self, lib: Lib, transfers: Transfers) -> None:
        """verified_gradient(vectorized=True) gets the same device batches."""
        x0 = point(30)

        @verified_gradient(loss=cubes, mode="debug", vectorized=True, batch_bytes=2 * 8 * 30)
        def grad(w: Any) -> Any:
            return 3 * w**2

        transfers.reset(30)
        grad(lib.make(x0))
        assert grad.verigrad.last_result is not None
        assert grad.verigrad.last_result.passed
        assert transfers.whole_points() <= 6


class TestExecutor:
    def test_one_transfer_per_task(self, lib: Lib, transfers: Transfers) -> None:
        """Over a thread pool each task moves its point (and each direction it moves along)
        to the device once: whole points copied from the host are bounded by the tasks and
        the probe's few points, not by the evaluations."""
        x0 = point(40)
        with CountingPool(2) as pool:
            transfers.reset(40)
            r = check_gradient(
                lambda w: (w**3).sum(), lib.make(x0), lib.make(3 * x0**2), executor=pool
            )
        assert r.passed
        assert r.n_evals >= 80
        assert transfers.whole_points() <= 2 * pool.submitted + 6
        assert transfers.whole_points() < r.n_evals / 3

    def test_verdicts_are_the_serial_checks(self, lib: Lib) -> None:
        """Right and wrong gradients judged over a thread pool as serially, with numpy's
        numbers (bit for bit in float64), coordinates and directions alike."""
        for n, bug in ((12, 5), (3000, 1234)):
            x0 = point(n, seed=5)
            wrong = 3 * x0**2
            wrong[bug] += 1.0
            with ThreadPoolExecutor(2) as pool:
                ok = check_gradient(cubes, lib.make(x0), lib.make(3 * x0**2), executor=pool, seed=0)
                bad = check_gradient(cubes, lib.make(x0), lib.make(wrong), executor=pool, seed=0)
            serial = check_gradient(cubes, lib.make(x0), lib.make(wrong), seed=0)
            assert ok.passed
            assert bad.verdict == serial.verdict == "mismatch"
            assert bad.mismatched == serial.mismatched
            assert (bug,) in bad.mismatched
            assert bad.n_evals == serial.n_evals
            np.testing.assert_array_equal(bad.numerical, serial.numerical)
            np.testing.assert_array_equal(bad.errors, serial.errors)

    def test_assert_gradient_and_the_decorator(self, lib: Lib, transfers: Transfers) -> None:
        """assert_gradient and verified_gradient over an executor: same device points."""
        x0 = point(30)
        with CountingPool(2) as pool:
            transfers.reset(30)
            assert_gradient(cubes, lib.make(x0), lib.make(3 * x0**2), executor=pool)
            assert transfers.whole_points() <= 2 * pool.submitted + 6
            wrong = 3 * x0**2
            wrong[3] = 0.0
            with pytest.raises(GradientMismatchError):
                assert_gradient(cubes, lib.make(x0), lib.make(wrong), executor=pool)

            @verified_gradient(loss=cubes, mode="debug", executor=pool)
            def grad(w: Any) -> Any:
                return 3 * w**2

            before = pool.submitted
            transfers.reset(30)
            grad(lib.make(x0))
            assert grad.verigrad.last_result is not None
            assert grad.verigrad.last_result.passed
            assert transfers.whole_points() <= 2 * (pool.submitted - before) + 6

    def test_torch_autograd_stays_off_in_the_workers(self) -> None:
        """The workers' device points carry no graph: autograd is off where the loss runs."""
        torch = pytest.importorskip("torch")
        seen: set[bool] = set()

        def loss(w: Any) -> Any:
            seen.add(torch.is_grad_enabled() or w.requires_grad)
            return (w**3).sum()

        x0 = point(20)
        x = torch.tensor(x0, requires_grad=True)
        with ThreadPoolExecutor(2) as pool:
            assert check_gradient(loss, x, torch.tensor(3 * x0**2), executor=pool).passed
        assert seen == {False}
        assert x.grad is None
        assert np.array_equal(host_array(x), x0)


class TestPublicEstimators:
    """numerical_gradient and directional_derivative hand the loss the caller's own kind of
    array and return the gradient as one."""

    def test_numerical_gradient_torch(self) -> None:
        torch = pytest.importorskip("torch")
        x0 = point(5, seed=6)
        x = torch.tensor(x0, requires_grad=True)
        seen: set[Any] = set()

        def loss(w: Any) -> Any:
            seen.add((type(w), w.dtype, torch.is_grad_enabled()))
            return w.pow(3).sum()  # a tensor method numpy lacks

        for method in ("central", "forward", "backward"):
            g = vg.numerical_gradient(loss, x, method=method)  # type: ignore[arg-type]
            assert isinstance(g, torch.Tensor)
            assert g.dtype == torch.float64
            assert g.device == x.device
            assert not g.requires_grad
            np.testing.assert_allclose(
                g.numpy(), 3 * x0**2, rtol=1e-5 if method != "central" else 1e-8
            )
        assert seen == {(torch.Tensor, torch.float64, False)}
        assert x.grad is None
        assert np.array_equal(x.detach().numpy(), x0)
        numpy = vg.numerical_gradient(lambda w: float((w**3).sum()), x0)
        np.testing.assert_allclose(vg.numerical_gradient(loss, x).numpy(), numpy, rtol=1e-9)

    def test_numerical_gradient_torch_float32_model(self) -> None:
        """A loss whose float32 weights refuse float64 points gets float32 ones; the gradient
        comes back in float32."""
        torch = pytest.importorskip("torch")
        torch.manual_seed(0)
        weights = torch.randn(3, 2)
        x = torch.randn(4, 3)

        def loss(v: Any) -> Any:
            return (v @ weights).pow(2).sum()

        g = vg.numerical_gradient(loss, x)
        assert g.dtype == torch.float32
        expected = 2 * (x @ weights) @ weights.T
        np.testing.assert_allclose(g.numpy(), expected.numpy(), rtol=1e-2, atol=1e-2)

    def test_numerical_gradient_is_the_callers_kind(self, lib: Lib) -> None:
        """Every library: the gradient comes back as that library's array, on x's device,
        in the working precision."""
        import array_api_compat

        x0 = point(7, seed=10)
        x = lib.make(x0)
        kinds: set[str] = set()

        def loss(w: Any) -> Any:
            kinds.add(array_kind(w))
            return (w**3).sum()

        g = vg.numerical_gradient(loss, x)
        assert kinds == {lib.kind}
        assert array_kind(g) == lib.kind
        assert array_api_compat.device(g) == array_api_compat.device(x)
        assert str(g.dtype).removeprefix("torch.") == ("float64" if lib.float64 else "float32")
        np.testing.assert_allclose(host_array(g), 3 * x0**2, rtol=1e-8 if lib.float64 else 2e-3)

    def test_numerical_gradient_jax(self, lib: Lib) -> None:
        if lib.kind != "jax":
            pytest.skip("JAX only")
        import jax

        x0 = point(6, seed=7)
        x = lib.make(x0)

        @jax.jit
        def loss(w: Any) -> Any:
            return (w.at[0].multiply(2.0) ** 2).sum()  # .at: JAX's own update syntax

        g = vg.numerical_gradient(loss, x)
        assert array_kind(g) == "jax"
        assert g.devices() == x.devices()
        assert str(g.dtype) == ("float64" if lib.float64 else "float32")
        expected = 2 * x0
        expected[0] = 8 * x0[0]
        np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-8 if lib.float64 else 2e-3)

    def test_directional_derivative(self, lib: Lib) -> None:
        x0 = point(6, seed=8)
        d0 = np.random.default_rng(9).standard_normal(6)
        kinds: set[str] = set()

        if lib.kind == "torch":

            def loss(w: Any) -> Any:
                kinds.add(array_kind(w))
                return w.pow(3).sum()

        elif lib.kind == "cupy":

            def loss(w: Any) -> Any:
                kinds.add(array_kind(w))
                return (w**3).sum()

        else:

            def loss(w: Any) -> Any:
                kinds.add(array_kind(w))
                return (w.at[0].set(w[0]) ** 3).sum()

        for d in (d0, lib.make(d0)):
            dd = vg.directional_derivative(loss, lib.make(x0), d)
            assert isinstance(dd, float)
            np.testing.assert_allclose(dd, 3 * x0**2 @ d0, rtol=1e-8 if lib.float64 else 2e-3)
        assert kinds == {lib.kind}
        if lib.float64:
            numpy = vg.directional_derivative(lambda w: float((w**3).sum()), x0, d0)
            np.testing.assert_allclose(dd, numpy, rtol=1e-9)
        assert vg.directional_derivative(loss, lib.make(x0), np.zeros(6)) == 0.0

    def test_directional_derivative_float32_model(self) -> None:
        torch = pytest.importorskip("torch")
        torch.manual_seed(0)
        weights = torch.randn(3, 2)
        x = torch.randn(4, 3)
        d = torch.randn(4, 3)
        dtypes: list[Any] = []

        def loss(v: Any) -> Any:
            dtypes.append(v.dtype)
            return (v @ weights).pow(2).sum()

        dd = vg.directional_derivative(loss, x, d)
        expected = float(((2 * (x @ weights) @ weights.T) * d).sum())
        assert dtypes == [torch.float64, torch.float32, torch.float32]
        np.testing.assert_allclose(dd, expected, rtol=1e-2)

    def test_a_loss_error_is_not_retried(self) -> None:
        """A loss that fails after answering raises as it is (no float32 retry)."""
        torch = pytest.importorskip("torch")
        calls: list[Any] = []

        def loss(w: Any) -> Any:
            calls.append(w.dtype)
            if len(calls) == 3:
                raise ValueError("bad point")
            return w.pow(2).sum()

        with pytest.raises(ValueError, match="bad point"):
            vg.numerical_gradient(loss, torch.ones(3, dtype=torch.float32))
        assert set(calls) == {torch.float64}
