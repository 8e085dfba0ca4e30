"""The contract for torch, JAX and CuPy parameters, the same for every entry point.

The loss receives the caller's kind of array on the caller's device (float64 where the
library allows it); the caller's arrays are left bit for bit as they were; verdicts and error
estimates are numpy's. Each library is skipped where it is not installed (CuPy and CUDA also
need a GPU).
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from verigrad import (
    GradientMismatchError,
    GradientMismatchWarning,
    assert_gradient,
    check_gradient,
    verified_gradient,
)
from verigrad._backend import array_kind, host_array
from verigrad.exceptions import InvalidArgumentError, InvalidTypeError


@dataclass(frozen=True)
class Lib:
    """How a test makes arrays of one library from numpy, and what the loss should get."""

    name: str
    kind: str
    make: Callable[[np.ndarray], Any]
    float64: bool = True  # whether the loss gets float64 points
    context: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    device: str = "cpu"

    def back(self, arr: Any) -> np.ndarray:
        out = host_array(arr)
        assert isinstance(out, np.ndarray)
        return out

    def device_of(self, arr: Any) -> str:
        if self.kind == "torch":
            return str(arr.device.type)
        if self.kind == "jax":
            return str(next(iter(arr.devices())).platform)
        if self.kind == "cupy":
            return "cuda"
        return "cpu"


def _torch(device: str) -> Lib:
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return Lib(f"torch-{device}", "torch", lambda a: torch.tensor(a, device=device), device=device)


@contextlib.contextmanager
def _global_x64() -> Iterator[None]:
    """JAX's x64 on in every thread (jax.enable_x64 holds in its own thread only)."""
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def _jax(x64: bool) -> Lib:
    jax = pytest.importorskip("jax")
    context = _global_x64 if x64 else contextlib.nullcontext
    return Lib("jax-x64" if x64 else "jax", "jax", jax.numpy.asarray, x64, context)


@contextlib.contextmanager
def _as_on_a_device() -> Iterator[None]:
    """Torch CPU tensors handled as a GPU's are (no shared host memory: points built and
    moved on the "device", batches scattered there): the CUDA code paths, run on the CPU."""
    from verigrad import _backend

    real = _backend.ArrayInfo.on_host

    def on_host(info: Any) -> bool:
        return False if info.kind == "torch" else bool(real.fget(info))  # type: ignore[attr-defined]

    _backend.ArrayInfo.on_host = property(on_host)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        _backend.ArrayInfo.on_host = real  # type: ignore[method-assign]


def _torch_as_device() -> Lib:
    torch = pytest.importorskip("torch")
    return Lib("torch-as-device", "torch", torch.tensor, context=_as_on_a_device)


def test_torch_as_device_takes_the_device_path() -> None:
    """The pseudo-library above does what it says: no memory shared with a host array."""
    torch = pytest.importorskip("torch")
    from verigrad._backend import Workspace

    with _as_on_a_device():
        ws = Workspace.of(torch.tensor(np.arange(4.0)))
    assert not ws.shared
    assert Workspace.of(torch.tensor(np.arange(4.0))).shared


def _cupy() -> Lib:
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception:  # pragma: no cover - cupy installed without a GPU
        pytest.skip("CuPy has no GPU here")
    return Lib("cupy", "cupy", cupy.asarray, device="cuda")


LIBS: dict[str, Callable[[], Lib]] = {
    "numpy": lambda: Lib("numpy", "numpy", lambda a: np.array(a, copy=True)),
    "torch-cpu": lambda: _torch("cpu"),
    "torch-cuda": lambda: _torch("cuda"),
    "torch-as-device": _torch_as_device,
    "jax": lambda: _jax(False),
    "jax-x64": lambda: _jax(True),
    "cupy": _cupy,
}


@pytest.fixture(params=list(LIBS))
def lib(request: pytest.FixtureRequest) -> Iterator[Lib]:
    """Each library in turn (skipped where absent), inside its context (JAX's x64)."""
    chosen = LIBS[request.param]()
    with chosen.context():
        yield chosen


def bits(a: Any) -> bytes:
    return np.ascontiguousarray(host_array(a)).tobytes()


X0 = np.array([[0.3, -1.2, 2.0], [0.7, 1.5, -0.4]])


class Seen:
    """A loss ``sum(w**3) + sum(w)**2`` that records what it was handed."""

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.dtypes: set[str] = set()
        self.devices: set[str] = set()
        self.grad_enabled: set[bool] = set()

    def __call__(self, w: Any) -> Any:
        self.kinds.add(array_kind(w))
        self.dtypes.add(str(w.dtype).removeprefix("torch."))
        if array_kind(w) == "torch":
            import torch

            self.devices.add(w.device.type)
            self.grad_enabled.add(torch.is_grad_enabled())
        return (w**3).sum() + w.sum() ** 2


def grad_of(w: np.ndarray) -> np.ndarray:
    return 3.0 * w**2 + 2.0 * w.sum()


def framework_square(w: Any) -> Any:
    """``sum(w**2)``, refusing anything but a framework array (for process pools)."""
    if array_kind(w) == "numpy":
        raise TypeError(f"the loss got {type(w).__name__}")
    if array_kind(w) == "torch":
        import torch

        assert not torch.is_grad_enabled()
    return (w * w).sum()


def enable_x64() -> None:
    """A process pool's initializer: JAX in float64 in the worker."""
    import jax

    jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessPoolExecutor]:
    # spawn, not fork: forking a process that runs threads can deadlock.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


class TestCheckGradient:
    def test_the_loss_gets_the_callers_kind_of_array(self, lib: Lib) -> None:
        """The loss receives arrays of the parameter's library, on its device, in float64
        where the library allows it."""
        seen = Seen()
        r = check_gradient(seen, lib.make(X0), lib.make(grad_of(X0)))
        assert r.passed
        assert seen.kinds == {lib.kind}
        assert seen.dtypes == {"float64" if lib.float64 else "float32"}
        if lib.kind == "torch":
            assert seen.devices == {lib.device}
            assert seen.grad_enabled == {False}

    def test_verdicts_and_errors_are_numpys(self, lib: Lib) -> None:
        """A correct gradient passes and a wrong one fails at the same coordinate, with the
        estimates and error bars numpy's check gives (in float64)."""
        wrong = grad_of(X0)
        wrong[1, 2] += 0.05
        for g, verdict in ((grad_of(X0), "pass"), (wrong, "mismatch")):
            ours = check_gradient(Seen(), lib.make(X0), lib.make(g))
            reference = check_gradient(Seen(), X0, g)
            assert ours.verdict == reference.verdict == verdict
            if lib.float64:  # the loss's own sums round differently in each library
                np.testing.assert_allclose(ours.numerical, reference.numerical, rtol=1e-8)
                if verdict == "pass":  # error bars follow that rounding
                    ratio = ours.errors / reference.errors
                    assert ((ratio > 0.25) & (ratio < 4.0)).all()
                assert ours.n_evals == reference.n_evals
        assert ours.worst[0].index == (1, 2)

    def test_the_callers_arrays_are_left_alone(self, lib: Lib) -> None:
        """x and the gradient are bit for bit as they were, also when the loss raises
        halfway through the check."""
        x, g = lib.make(X0), lib.make(grad_of(X0))
        before = bits(x), bits(g)
        check_gradient(Seen(), x, g)
        calls = 0

        def breaks(w: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 7:
                raise RuntimeError("halfway")
            return (w**2).sum()

        with pytest.raises(RuntimeError, match="halfway"):
            check_gradient(breaks, x, g)
        assert (bits(x), bits(g)) == before

    def test_the_gradient_function_gets_x_itself(self, lib: Lib) -> None:
        """A gradient function is called with exactly the object passed as x."""
        x = lib.make(X0)
        got: list[Any] = []

        def grad(w: Any) -> Any:
            got.append(w)
            return lib.make(grad_of(X0))

        assert check_gradient(Seen(), x, grad).passed
        assert len(got) == 1
        assert got[0] is x

    def test_large_parameters_take_the_partial_path(self, lib: Lib) -> None:
        """Directions and sampled coordinates find a wrong entry of a large parameter."""
        rng = np.random.default_rng(1)
        x0 = rng.standard_normal(3000)
        g = 2.0 * x0
        g[1234] += 1.0

        def loss(w: Any) -> Any:
            assert array_kind(w) == lib.kind
            return (w * w).sum()

        assert check_gradient(loss, lib.make(x0), lib.make(2.0 * x0), seed=0).passed
        r = check_gradient(loss, lib.make(x0), lib.make(g), seed=0)
        assert r.verdict == "mismatch"
        assert (1234,) in r.mismatched

    def test_vectorized(self, lib: Lib) -> None:
        """A vectorized loss gets stacks of the caller's kind of array, and judges like the
        one-point check, for a small and a large (partial) parameter."""
        kinds: set[str] = set()

        def loss(w: Any) -> Any:
            kinds.add(array_kind(w))
            return (w**3).sum(axis=(-1, -2)) + w.sum(axis=(-1, -2)) ** 2

        assert check_gradient(loss, lib.make(X0), lib.make(grad_of(X0)), vectorized=True).passed
        wrong = grad_of(X0)
        wrong[0, 1] += 0.1
        r = check_gradient(loss, lib.make(X0), lib.make(wrong), vectorized=True)
        assert r.verdict == "mismatch"
        x0 = np.random.default_rng(2).standard_normal(3000)
        r = check_gradient(
            lambda w: (w * w).sum(axis=-1), lib.make(x0), lib.make(2 * x0), vectorized=True
        )
        assert r.passed
        assert kinds == {lib.kind}

    def test_vmap(self, lib: Lib) -> None:
        """vectorized="vmap" maps a loss written for one point over batches (torch.func.vmap,
        jax.vmap) and judges as the serial check does; numpy and CuPy are refused by name."""
        shapes: set[tuple[int, ...]] = set()

        def loss(w: Any) -> Any:
            shapes.add(tuple(w.shape))
            return (w**3).sum() + w.sum() ** 2

        x, g = lib.make(X0), lib.make(grad_of(X0))
        if lib.kind not in ("torch", "jax"):
            with pytest.raises(InvalidArgumentError, match=r"vectorized='vmap'.*x is a"):
                check_gradient(loss, x, g, vectorized="vmap")
            return
        r = check_gradient(loss, x, g, vectorized="vmap")
        serial = check_gradient(loss, x, g)
        assert r.passed
        assert r.n_evals == serial.n_evals
        # float32 points: a batch's sums may round unlike a single point's
        np.testing.assert_allclose(
            r.numerical, serial.numerical, rtol=1e-6 if lib.float64 else 1e-3
        )
        assert shapes == {X0.shape}  # the loss only ever sees one point
        wrong = grad_of(X0)
        wrong[1, 1] -= 0.2
        r = check_gradient(loss, x, lib.make(wrong), vectorized="vmap")
        assert r.verdict == "mismatch"
        assert r.worst[0].index == (1, 1)

    def test_executor(self, lib: Lib) -> None:
        """Coordinates and directions spread over a thread pool reach the loss as the
        caller's kind of array, with autograd off in the workers too."""
        seen = Seen()
        x0 = np.random.default_rng(3).standard_normal(3000)
        wrong = 2 * x0
        wrong[17] = 0.0
        with ThreadPoolExecutor(2) as pool:
            assert check_gradient(seen, lib.make(X0), lib.make(grad_of(X0)), executor=pool).passed
            r = check_gradient(
                lambda w: (w * w).sum(), lib.make(x0), lib.make(wrong), executor=pool
            )
        assert r.verdict == "mismatch"
        assert (17,) in r.mismatched
        assert seen.kinds == {lib.kind}
        assert seen.grad_enabled <= {False}

    def test_process_pool(self, lib: Lib, processes: ProcessPoolExecutor) -> None:
        """Workers in other processes get the caller's kind of array (autograd off there
        too) and the check finds a wrong coordinate."""
        if lib.kind == "numpy" or lib.name == "jax-x64":
            pytest.skip("numpy: tests/test_executor.py; x64 is not set in spawned workers")
        x0 = np.random.default_rng(4).standard_normal(40)
        wrong = 2 * x0
        wrong[5] += 1.0
        x = lib.make(x0)
        assert check_gradient(framework_square, x, lib.make(2 * x0), executor=processes).passed
        r = check_gradient(framework_square, x, lib.make(wrong), executor=processes)
        assert r.verdict == "mismatch"
        assert (5,) in r.mismatched

    def test_jax_x64_workers_must_enable_it(self) -> None:
        """A float64 JAX check on workers without x64 fails with an error that says how to
        enable it, instead of silently rounding the points to float32."""
        jax = pytest.importorskip("jax")
        with _global_x64():
            x = jax.numpy.asarray(np.ones(4))
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                with pytest.raises(InvalidArgumentError, match="has x64 off"):
                    check_gradient(framework_square, x, 2 * x, executor=pool)
                fixed = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=enable_x64,
                )
                with fixed:
                    assert check_gradient(framework_square, x, 2 * x, executor=fixed).passed

    def test_jax_x64_in_one_thread_only(self) -> None:
        """The jax.enable_x64 context does not reach a thread pool's threads: the check says
        so instead of silently rounding the points to float32."""
        jax = pytest.importorskip("jax")
        with jax.enable_x64(True), ThreadPoolExecutor(2) as pool:
            x = jax.numpy.asarray(np.ones(4))
            with pytest.raises(InvalidArgumentError, match="in its own thread only"):
                check_gradient(framework_square, x, 2 * x, executor=pool)
            assert check_gradient(framework_square, x, 2 * x).passed  # this thread: fine

    def test_progress(self, lib: Lib) -> None:
        """progress=True counts a framework parameter's coordinates."""
        pytest.importorskip("tqdm")
        assert check_gradient(Seen(), lib.make(X0), lib.make(grad_of(X0)), progress=True).passed

    def test_no_random_state_is_touched(self, lib: Lib) -> None:
        """numpy's and torch's global generators are where they were."""
        np_state = np.random.get_state()[1].copy()  # noqa: NPY002 - the global one
        torch = sys.modules.get("torch")
        torch_state = torch.get_rng_state().clone() if torch is not None else None
        check_gradient(Seen(), lib.make(np.ones(3000)), lib.make(grad_of(np.ones(3000))))
        assert np.array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
        if torch is not None:
            assert torch.equal(torch.get_rng_state(), torch_state)

    def test_assert_gradient(self, lib: Lib) -> None:
        """assert_gradient passes a right gradient and raises on a wrong one."""
        assert assert_gradient(Seen(), lib.make(X0), lib.make(grad_of(X0))).passed
        with pytest.raises(GradientMismatchError):
            assert_gradient(Seen(), lib.make(X0), lib.make(grad_of(X0) + 0.01))

    def test_a_bool_parameter_is_refused_by_name(self, lib: Lib) -> None:
        """Errors name the argument."""
        with pytest.raises(InvalidTypeError, match="x has dtype bool"):
            check_gradient(Seen(), lib.make(np.ones(3, dtype=bool)), np.ones(3))


def quadratic(w: Any, data: Any) -> Any:
    """A loss of the differentiated argument and another one: ``sum((data * w)**2)``."""
    return ((data * w) ** 2).sum()


class TestDecorator:
    def test_the_function_gets_and_returns_the_callers_objects(self, lib: Lib) -> None:
        """The gradient function receives exactly the caller's arguments and its return value
        comes back as the same object; the loss gets the caller's kind of array."""
        kinds: set[str] = set()

        def loss(w: Any, data: Any) -> Any:
            kinds.add(array_kind(w))
            return quadratic(w, data)

        received: list[Any] = []
        returned: list[Any] = []

        @verified_gradient(loss=loss, mode="debug")
        def grad(w: Any, data: Any) -> Any:
            received.append((w, data))
            returned.append(2 * data * data * w)
            return returned[-1]

        x, data = lib.make(X0), lib.make(X0 + 1.0)
        before = bits(x), bits(data)
        out = grad(x, data)
        assert out is returned[0]
        assert received[0][0] is x
        assert received[0][1] is data
        assert (bits(x), bits(data)) == before
        assert grad.verigrad.last_result is not None
        assert grad.verigrad.last_result.passed
        assert kinds == {lib.kind}

    @pytest.mark.parametrize("on_failure", ["raise", "warn"])
    def test_a_wrong_gradient_fails(self, lib: Lib, on_failure: Any) -> None:
        """A wrong gradient raises or warns as asked, naming the coordinate."""

        @verified_gradient(loss=quadratic, mode="debug", on_failure=on_failure)
        def grad(w: Any, data: Any) -> Any:
            return 2 * data * data * w + 0.1

        x, data = lib.make(X0), lib.make(X0 + 1.0)
        if on_failure == "raise":
            with pytest.raises(GradientMismatchError):
                grad(x, data)
        else:
            with pytest.warns(GradientMismatchWarning):
                grad(x, data)

    def test_sampling_options(self, lib: Lib) -> None:
        """first=/every= check the calls they name, with the options passed down."""
        seen = Seen()

        @verified_gradient(loss=seen, first=1, every=3, method="richardson", seed=1)
        def grad(w: Any) -> Any:
            return 3 * w**2 + 2 * w.sum()

        x = lib.make(X0)
        for _ in range(7):
            grad(x)
        stats = grad.verigrad.stats
        assert stats.checks == 3  # call 0 (first), and calls 3 and 6 (every 3rd)
        assert stats.failures == 0
        assert seen.kinds == {lib.kind}

    def test_fused_update_is_checked_where_the_gradient_was_taken(self, lib: Lib) -> None:
        """A gradient function that updates its parameter in place afterwards is checked at
        the point it was called with."""
        if lib.kind == "jax":
            pytest.skip("JAX arrays cannot be written in place")

        @verified_gradient(loss=quadratic, mode="debug")
        def step(w: Any, data: Any) -> Any:
            g = 2 * data * data * w
            w -= 0.5 * g  # the update, in place, before the check runs
            return g

        step(lib.make(X0), lib.make(X0 + 1.0))
        assert step.verigrad.last_result is not None
        assert step.verigrad.last_result.passed

    def test_several_arguments_and_executor(self, lib: Lib) -> None:
        """wrt naming two arguments checks them as one structure, also over an executor."""

        def loss(a: Any, b: Any) -> Any:
            return (a * b).sum() + (a**2).sum()

        with ThreadPoolExecutor(2) as pool:

            @verified_gradient(loss=loss, wrt=("a", "b"), mode="debug", executor=pool)
            def grad(a: Any, b: Any) -> Any:
                return b + 2 * a, a

            a, b = lib.make(X0), lib.make(X0 - 1.0)
            grad(a, b)
        assert grad.verigrad.last_result is not None
        assert grad.verigrad.last_result.passed
        assert [name for name, _ in grad.verigrad.last_result.leaf_errors] == ["a", "b"]

    def test_vectorized(self, lib: Lib) -> None:
        """vectorized=True through the decorator."""

        @verified_gradient(loss=lambda w: (w**2).sum(axis=(-1, -2)), mode="debug", vectorized=True)
        def grad(w: Any) -> Any:
            return 2 * w

        grad(lib.make(X0))
        assert grad.verigrad.last_result is not None
        assert grad.verigrad.last_result.passed

    def test_vmap(self, lib: Lib) -> None:
        """vectorized="vmap" through the decorator, for the libraries that map."""
        if lib.kind not in ("torch", "jax"):
            pytest.skip("vmap is torch's and JAX's")

        @verified_gradient(loss=quadratic, mode="debug", vectorized="vmap")
        def grad(w: Any, data: Any) -> Any:
            return 2 * data * data * w

        grad(lib.make(X0), lib.make(X0 + 1.0))
        assert grad.verigrad.last_result is not None
        assert grad.verigrad.last_result.passed

    def test_a_bad_argument_is_refused_by_name(self, lib: Lib) -> None:
        """A boolean parameter is refused, naming the argument, before the function runs."""

        @verified_gradient(loss=quadratic, mode="debug")
        def grad(weights: Any, data: Any) -> Any:
            raise AssertionError("not reached")

        with pytest.raises(InvalidTypeError, match="weights"):
            grad(lib.make(np.ones(3, dtype=bool)), lib.make(np.ones(3)))


class TestTorch:
    @pytest.fixture
    def torch(self) -> Any:
        return pytest.importorskip("torch")

    def test_requires_grad_tensors(self, torch: Any) -> None:
        """A tensor in an autograd graph is checked on a detached copy: nothing reaches its
        .grad and the caller's graph still backpropagates."""
        w = torch.tensor(X0, requires_grad=True)
        out = (w * 2.0).sum()
        g = torch.tensor(grad_of(X0))
        assert check_gradient(Seen(), w, g).passed
        assert w.grad is None
        out.backward()
        assert torch.equal(w.grad, torch.full_like(w, 2.0))

    def test_the_decorator_leaves_the_graph_alone(self, torch: Any) -> None:
        """A decorated backward called on a requires_grad tensor: the check works on a
        detached copy; .grad stays empty and the caller's graph still backpropagates."""

        @verified_gradient(loss=quadratic, mode="debug")
        def grad(w: Any, data: Any) -> Any:
            return 2 * data * data * w.detach()

        w = torch.tensor(X0, requires_grad=True)
        out = (3.0 * w).sum()
        g = grad(w, torch.tensor(X0))
        assert not g.requires_grad
        assert w.grad is None
        out.backward()
        assert torch.equal(w.grad, torch.full_like(w, 3.0))

    def test_module_parameters_through_the_decorator(self, torch: Any) -> None:
        """A decorated gradient of dict(model.named_parameters()) names a wrong leaf entry."""
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2).double()
        inputs = torch.randn(4, 3, dtype=torch.float64)

        def loss(params: dict[str, Any]) -> Any:
            return torch.func.functional_call(model, params, (inputs,)).pow(2).sum()

        @verified_gradient(loss=loss, mode="debug", on_failure="warn")
        def grad(params: dict[str, Any]) -> Any:
            g = torch.func.grad(loss)({k: v.detach() for k, v in params.items()})
            g["weight"][1, 0] += 1.0
            return g

        with pytest.warns(GradientMismatchWarning):
            grad(dict(model.named_parameters()))
        assert grad.verigrad.last_result is not None
        assert "weight[1, 0]" in grad.verigrad.last_result.summary()
        assert all(p.grad is None for p in model.parameters())

    def test_module_parameters_under_vmap(self, torch: Any) -> None:
        """A structured parameter's loss is vmapped over batches of flat points."""
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2).double()
        inputs = torch.randn(4, 3, dtype=torch.float64)

        def loss(params: dict[str, Any]) -> Any:
            return torch.func.functional_call(model, params, (inputs,)).pow(2).sum()

        params = dict(model.named_parameters())
        grad = torch.func.grad(loss)({k: v.detach() for k, v in params.items()})
        assert check_gradient(loss, params, grad, vectorized="vmap").passed

    def test_a_float32_model_gets_float32_points(self, torch: Any) -> None:
        """A loss that refuses float64 input (float32 weights) is evaluated in float32 and
        judged at float32's precision; a wrong gradient still fails."""
        torch.manual_seed(0)
        weights = torch.randn(3, 2)
        x = torch.randn(4, 3)
        seen: set[Any] = set()

        def loss(v: Any) -> Any:
            seen.add(v.dtype)
            return (v @ weights).pow(2).sum()

        g = 2 * (x @ weights) @ weights.T
        r = check_gradient(loss, x, g)
        assert r.passed
        assert r.precision == "float32"
        assert seen == {torch.float64, torch.float32}  # the refused try, then float32
        assert any("raised on a float64 point" in note for note in r.notes)
        g[2, 1] += 0.5
        assert check_gradient(loss, x, g).verdict == "mismatch"

    def test_a_large_float32_model(self, torch: Any) -> None:
        """Directions built in float32 on a large parameter whose loss refuses float64: a
        correct gradient passes and one wrong entry is found, as for numpy in float32."""
        torch.manual_seed(0)
        n = 3000
        a, b = torch.randn(50, n) / n**0.5, torch.randn(50)

        def loss(w: Any) -> Any:
            return ((a @ w - b) ** 2).sum() + 0.1 * (w * w).sum()

        w = torch.randn(n)
        g = 2 * a.T @ (a @ w - b) + 0.2 * w
        r = check_gradient(loss, w, g, seed=0)
        assert r.passed
        assert r.precision == "float32"
        g[123] += 0.05 * g.abs().max()
        r = check_gradient(loss, w, g, seed=0)
        assert r.verdict == "mismatch"
        assert (123,) in r.mismatched

    def test_complex_step(self, torch: Any) -> None:
        """method='complex' hands the loss complex tensors."""
        r = check_gradient(
            lambda w: (w**3).sum(), torch.tensor(X0), 3 * torch.tensor(X0) ** 2, method="complex"
        )
        assert r.passed
        assert r.method == "complex"

    def test_named_parameters_and_state_dict(self, torch: Any) -> None:
        """dict(model.named_parameters()) and state_dict() are checked leaf by leaf, a wrong
        entry named by its path."""
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        model = model.double()
        inputs = torch.randn(5, 3, dtype=torch.float64)

        def loss(params: dict[str, Any]) -> Any:
            assert all(array_kind(v) == "torch" for v in params.values())
            return torch.func.functional_call(model, params, (inputs,)).pow(2).sum()

        for params in (dict(model.named_parameters()), model.state_dict()):
            before = {k: bits(v) for k, v in params.items()}
            grad = torch.func.grad(loss)({k: v.detach() for k, v in params.items()})
            r = check_gradient(loss, params, grad)
            assert r.passed
            assert [name for name, _ in r.leaf_errors] == [
                "0.weight",
                "0.bias",
                "2.weight",
                "2.bias",
            ]
            grad["0.weight"] = grad["0.weight"].clone()
            grad["0.weight"][3, 1] += 1.0
            r = check_gradient(loss, params, grad)
            assert r.verdict == "mismatch"
            assert "0.weight[3, 1]" in r.summary()
            assert {k: bits(v) for k, v in params.items()} == before
        assert all(p.grad is None for p in model.parameters())


class TestJax:
    @pytest.fixture
    def jax(self) -> Iterator[Any]:
        jax = pytest.importorskip("jax")
        with jax.enable_x64(True):
            yield jax

    def test_jit_losses_and_at_updates(self, jax: Any) -> None:
        """A jit-compiled loss using .at[] updates is checked like any other."""
        jnp = jax.numpy

        @jax.jit
        def loss(w: Any) -> Any:
            return jnp.sum(w.at[0].multiply(3.0) ** 2)

        w = jnp.asarray(X0.reshape(-1))
        assert check_gradient(loss, w, jax.grad(loss)(w)).passed
        assert check_gradient(loss, w, jax.grad(loss)(w) * 1.01).verdict == "mismatch"

    def test_pytrees_by_path(self, jax: Any) -> None:
        """A pytree of dicts, lists and namedtuples is checked leaf by leaf, by path."""
        jnp = jax.numpy
        Layer = collections.namedtuple("Layer", ["w", "b"])
        params = {
            "layers": [Layer(jnp.asarray(X0), jnp.asarray([0.1, 0.2]))],
            "scale": jnp.asarray(2.0),
        }

        def loss(p: Any) -> Any:
            layer = p["layers"][0]
            return p["scale"] * jnp.sum((layer.w.sum(axis=1) + layer.b) ** 2)

        grad = jax.grad(loss)(params)
        r = check_gradient(jax.jit(loss), params, grad)
        assert r.passed
        assert [name for name, _ in r.leaf_errors] == ["layers[0].w", "layers[0].b", "scale"]
        bad = jax.tree_util.tree_map(lambda v: v, grad)
        bad["layers"][0] = Layer(bad["layers"][0].w.at[1, 2].add(1.0), bad["layers"][0].b)
        r = check_gradient(loss, params, bad)
        assert r.verdict == "mismatch"
        assert "layers[0].w[1, 2]" in r.summary()


class TestImports:
    def test_a_numpy_check_imports_no_framework(self) -> None:
        """check_gradient on numpy arrays imports neither torch, JAX, CuPy nor
        array-api-compat."""
        code = textwrap.dedent(
            """
            import sys
            import numpy as np
            import verigrad
            r = verigrad.check_gradient(lambda w: (w**2).sum(), np.ones(3), 2 * np.ones(3))
            assert r.passed
            loaded = {"torch", "jax", "cupy", "array_api_compat"} & set(sys.modules)
            assert not loaded, loaded
            """
        )
        subprocess.run([sys.executable, "-c", code], check=True)
