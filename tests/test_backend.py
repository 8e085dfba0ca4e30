"""The array abstraction: one contract for numpy, torch (CPU, CUDA), JAX and CuPy arrays.

Each library's tests are skipped where it is not installed (CuPy and CUDA also need a GPU).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import test_frameworks as framework_libs
from test_frameworks import Lib
from verigrad._backend import (
    Workspace,
    array_kind,
    evaluating,
    float64_available,
    host_array,
    inspect_array,
    loss_caller,
    value_reader,
)
from verigrad.exceptions import InvalidArgumentError, InvalidTypeError

# The libraries of the contract tests (test_frameworks.py), each test entering the library's
# context (float64 for JAX) only where it needs it.
LIBS = {
    name: framework_libs.LIBS[name]
    for name in ("numpy", "torch-cpu", "torch-cuda", "jax-x64", "cupy")
}


@pytest.fixture(params=list(LIBS))
def lib(request: pytest.FixtureRequest) -> Lib:
    """Each library in turn (skipped where absent)."""
    return LIBS[request.param]()


@pytest.fixture
def x64(lib: Lib) -> Iterator[None]:
    """float64 enabled where the library needs it (JAX)."""
    with lib.context():
        yield


def bits(a: np.ndarray) -> bytes:
    """The exact bytes of an array, so -0.0 and NaN payloads count."""
    return np.ascontiguousarray(a).tobytes()


finite64 = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
    elements=st.floats(-1e6, 1e6, allow_subnormal=False),
)


class TestArrayKind:
    def test_numpy_and_array_likes_are_numpy(self) -> None:
        """Arrays, lists, numbers and numpy scalars are the numpy kind."""
        for v in (np.zeros(2), [1.0, 2.0], 3.0, np.float32(1.0), 4):
            assert array_kind(v) == "numpy"

    def test_each_library(self, lib: Lib) -> None:
        """A library's arrays are named by their library."""
        assert array_kind(lib.make(np.zeros(3))) == lib.kind

    def test_torch_parameter(self) -> None:
        """A torch.nn.Parameter is a torch array."""
        torch = pytest.importorskip("torch")
        assert array_kind(torch.nn.Parameter(torch.zeros(2))) == "torch"

    def test_numpy_checks_import_no_framework(self) -> None:
        """Importing verigrad and checking numpy arrays imports no framework, nor the
        abstraction."""
        code = textwrap.dedent(
            """
            import sys
            import numpy as np
            import verigrad
            from verigrad._backend import Workspace, array_kind

            x = np.array([1.0, -2.0, 0.5])
            verigrad.assert_gradient(lambda w: float(w @ w), x, lambda w: 2 * w)
            ws = Workspace.of(x)
            ws.value(ws.set(0, 2.0).sum())
            assert array_kind(x) == "numpy"
            loaded = [m for m in ("torch", "jax", "cupy", "array_api_compat") if m in sys.modules]
            assert not loaded, loaded
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr


class TestInspect:
    def test_shape_dtype_device(self, lib: Lib) -> None:
        """The info reports the array's own shape, dtype and device."""
        arr = lib.make(np.zeros((2, 3), dtype=np.float32))
        info = inspect_array(arr)
        assert (info.kind, info.shape, info.dtype) == (lib.kind, (2, 3), "float32")
        if lib.kind != "numpy":
            import array_api_compat

            assert info.device == array_api_compat.device(arr)

    def test_bool_is_refused_by_name(self, lib: Lib) -> None:
        """A boolean parameter is refused with its name."""
        with pytest.raises(InvalidTypeError, match=r"^weights has dtype bool"):
            inspect_array(lib.make(np.array([True, False])), "weights")

    def test_complex_is_refused_by_name(self, lib: Lib) -> None:
        """A complex parameter is refused with its name."""
        with pytest.raises(InvalidTypeError, match=r"^w has complex dtype complex64"):
            inspect_array(lib.make(np.array([1 + 1j], dtype=np.complex64)), "w")

    def test_sparse_torch_tensor_is_refused(self) -> None:
        """A sparse tensor is refused with a hint."""
        torch = pytest.importorskip("torch")
        with pytest.raises(InvalidTypeError, match=r"to_dense"):
            inspect_array(torch.eye(2).to_sparse(), "w")

    def test_requires_grad_is_reported(self) -> None:
        """A tensor in an autograd graph is reported as such."""
        torch = pytest.importorskip("torch")
        assert inspect_array(torch.zeros(2, requires_grad=True)).requires_grad

    def test_jax_tracer_is_refused(self) -> None:
        """A check started inside a JAX transformation says so."""
        jax = pytest.importorskip("jax")

        def inside(w: Any) -> Any:
            inspect_array(w, "w")
            return w.sum()

        with pytest.raises(InvalidTypeError, match=r"^w is a JAX tracer .*outside"):
            jax.grad(inside)(jax.numpy.ones(2))


class TestHostArray:
    def test_values_and_dtype(self, lib: Lib) -> None:
        """A framework array comes back as a numpy copy with the same values and dtype."""
        a = np.array([[1.5, -2.0], [0.0, 3.25]], dtype=np.float32)
        out = host_array(lib.make(a))
        assert isinstance(out, np.ndarray)
        assert out.dtype == np.float32
        assert bits(out) == bits(a)

    def test_a_copy_leaves_the_original_alone(self, lib: Lib) -> None:
        """Writing into the host copy never reaches the framework array."""
        if lib.kind == "numpy":
            pytest.skip("numpy values pass through as they are")
        a = np.array([1.0, 2.0], dtype=np.float32)
        g = lib.make(a)
        out = host_array(g)
        out[0] = 99.0
        assert bits(lib.back(g)) == bits(a)

    def test_other_values_pass_through(self) -> None:
        """Values that are not framework arrays are returned as they are."""
        v = [1.0, 2.0]
        assert host_array(v) is v

    def test_requires_grad_tensor(self) -> None:
        """A tensor that requires grad is read without touching its graph."""
        torch = pytest.importorskip("torch")
        w = torch.tensor([1.0, 2.0], requires_grad=True)
        y = (w * 3).sum()
        out = host_array(w * 3)
        assert out.tolist() == [3.0, 6.0]
        y.backward()
        assert w.grad is not None
        assert w.grad.tolist() == [3.0, 3.0]

    def test_bfloat16_becomes_float32(self) -> None:
        """bfloat16, which numpy lacks, comes back as float32 with the same values."""
        torch = pytest.importorskip("torch")
        out = host_array(torch.tensor([1.5, -0.25], dtype=torch.bfloat16))
        assert out.dtype == np.float32
        assert out.tolist() == [1.5, -0.25]


class TestWorkspace:
    def test_point_is_the_users_kind_on_their_device(self, lib: Lib, x64: None) -> None:
        """The loss receives the parameter's own kind of array, on its device, in float64."""
        x = lib.make(np.arange(6.0).reshape(2, 3))
        ws = Workspace.of(x)
        assert array_kind(ws.point) == lib.kind
        assert inspect_array(ws.point).device == inspect_array(x).device
        assert inspect_array(ws.point).dtype == "float64"
        assert ws.base.dtype == np.float64
        assert not ws.base.flags.writeable

    def test_native_dtype(self, lib: Lib) -> None:
        """``dtype="native"`` keeps float32 as float32."""
        ws = Workspace.of(lib.make(np.ones(3, dtype=np.float32)), dtype="native")
        assert ws.dtype == np.float32
        assert inspect_array(ws.point).dtype == "float32"

    def test_integers_work_in_float64(self, lib: Lib, x64: None) -> None:
        """An integer parameter is checked in float64, whatever dtype is asked."""
        ws = Workspace.of(lib.make(np.arange(3)), dtype="native")
        assert ws.dtype == np.float64

    def test_jax_without_x64(self) -> None:
        """JAX without x64 refuses float64 by name, and ``auto`` falls back to float32."""
        jax = pytest.importorskip("jax")
        x = jax.numpy.ones(2, dtype=jax.numpy.float32)
        with jax.enable_x64(False):
            assert not float64_available(inspect_array(x))
            with pytest.raises(InvalidArgumentError, match=r"^theta cannot .*jax_enable_x64"):
                Workspace.of(x, "theta")
            assert Workspace.of(x, dtype="auto").dtype == np.float32

    def test_bad_dtype_option(self) -> None:
        """An unknown dtype option is refused."""
        with pytest.raises(InvalidArgumentError, match="dtype must be"):
            Workspace.of(np.ones(2), dtype="float16")  # type: ignore[arg-type]

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],  # lib holds no state
    )
    @given(a=finite64)
    def test_round_trip_is_bit_for_bit(self, lib: Lib, a: np.ndarray) -> None:
        """The working copy holds the parameter's values bit for bit."""
        with lib.context():
            ws = Workspace.of(lib.make(a))
            assert bits(lib.back(ws.point)) == bits(a)
            assert bits(ws.base) == bits(a)

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],  # lib holds no state
    )
    @given(a=finite64, data=st.data())
    def test_set_moves_only_coordinate_i(self, lib: Lib, a: np.ndarray, data: Any) -> None:
        """``set(i, v)`` changes coordinate i only, ``reset(i)`` restores it exactly, and the
        caller's array never changes."""
        with lib.context():
            x = lib.make(a)
            ws = Workspace.of(x)
            i = data.draw(st.integers(0, a.size - 1))
            v = data.draw(st.floats(-1e6, 1e6))
            got = lib.back(ws.set(i, v)).reshape(-1)
            want = a.reshape(-1).copy()
            want[i] = v
            assert bits(got) == bits(want)
            assert ws.stored(v) == v
            ws.reset(i)
            assert bits(lib.back(ws.point)) == bits(a)
            assert bits(lib.back(x)) == bits(a)

    def test_set_rounds_to_float32(self, lib: Lib) -> None:
        """In float32, the stored value is the float32 nearest and ``stored`` says which."""
        ws = Workspace.of(lib.make(np.zeros(3, dtype=np.float32)), dtype="native")
        v = 0.1
        got = lib.back(ws.set(1, v))
        assert got[1] == np.float32(v)
        assert ws.stored(v) == float(np.float32(v)) != v

    def test_many_moves_leave_everything_as_it_was(self, lib: Lib, x64: None) -> None:
        """A full sweep of moves leaves the point, the base and the caller's array exact."""
        a = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
        x = lib.make(a)
        ws = Workspace.of(x)
        for i in range(a.size):
            for h in (1e-6, -1e-6, 3e-3):
                ws.set(i, float(ws.base.reshape(-1)[i]) + h)
                ws.reset(i)
        assert bits(lib.back(ws.point)) == bits(a)
        assert bits(ws.base) == bits(a)
        assert bits(lib.back(x)) == bits(a)

    def test_along(self, lib: Lib, x64: None) -> None:
        """``along`` is base + t * d, as numpy computes it, and leaves the point alone."""
        a = np.array([[0.5, -1.25], [3.0, 7.5]])
        u = np.array([[0.1, 0.2], [-0.3, 0.4]])
        ws = Workspace.of(lib.make(a))
        got = lib.back(ws.along(ws.direction(u), 1e-3))
        assert array_kind(ws.along(ws.direction(u), 1e-3)) == lib.kind
        np.testing.assert_allclose(got, a + 1e-3 * u, rtol=1e-15, atol=0)
        assert bits(lib.back(ws.point)) == bits(a)

    def test_to_device_and_stack(self, lib: Lib, x64: None) -> None:
        """Host points move to the device in the working dtype, and stack for a batch."""
        ws = Workspace.of(lib.make(np.zeros(3)))
        p = ws.to_device(np.array([1.0, 2.0, 3.0]))
        batch = ws.stack([p, ws.point])
        assert array_kind(batch) == lib.kind
        assert lib.back(batch).tolist() == [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]

    def test_copy_is_fresh(self, lib: Lib, x64: None) -> None:
        """A copied point keeps its values when the point moves on."""
        ws = Workspace.of(lib.make(np.zeros(2)))
        snap = ws.copy(ws.set(0, 5.0))
        ws.reset(0)
        assert lib.back(snap).tolist() == [5.0, 0.0]

    def test_values_of_a_vectorized_loss(self, lib: Lib, x64: None) -> None:
        """A batch's values come back as float64, with a named error for a wrong shape."""
        ws = Workspace.of(lib.make(np.zeros(2)))
        ys = ws.stack([ws.to_device(np.ones(2)), ws.point]).sum(1)
        assert ws.values(ys, 2).tolist() == [2.0, 0.0]
        with pytest.raises(InvalidArgumentError, match=r"^batch loss must return one value"):
            ws.values(ys, 3, "batch loss")

    def test_no_random_state_is_touched(self, lib: Lib, x64: None) -> None:
        """A workspace cycle draws nothing from numpy's or torch's global generators."""
        np_state = np.random.get_state()[1].copy()  # noqa: NPY002 - the legacy global state
        torch = sys.modules.get("torch")
        t_state = torch.get_rng_state().clone() if torch is not None else None
        ws = Workspace.of(lib.make(np.ones(4)))
        ws.value(ws.set(2, 3.0).sum())
        ws.reset(2)
        ws.along(ws.direction(np.ones(4)), 0.5)
        assert (np.random.get_state()[1] == np_state).all()  # noqa: NPY002
        if torch is not None:
            assert torch.equal(torch.get_rng_state(), t_state)


class TestTorchAutograd:
    def test_requires_grad_parameter_is_untouched(self) -> None:
        """A check of a tensor in a graph leaves the tensor, its graph and its .grad alone."""
        torch = pytest.importorskip("torch")
        w = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
        y = (w**2).sum()  # the user's own graph, backpropagated after the check
        version = w._version
        ws = Workspace.of(w)
        f = loss_caller(lambda p: (p**3).sum(), "torch")
        with ws.evaluating():
            for i in range(3):
                f(ws.set(i, 4.0))
                ws.reset(i)
        assert w.grad is None
        assert w.requires_grad
        assert w._version == version
        assert not ws.point.requires_grad
        y.backward()
        assert w.grad.tolist() == [2.0, -4.0, 1.0]

    def test_no_graph_is_built_through_the_model(self) -> None:
        """Evaluations run with autograd off, also in threads that did not enter
        ``evaluating``."""
        torch = pytest.importorskip("torch")
        layer = torch.nn.Linear(3, 1).double()
        seen: list[bool] = []

        def loss(p: Any) -> Any:
            out = layer(p).sum()
            seen.append(out.requires_grad)
            return out

        f = loss_caller(loss, "torch")
        ws = Workspace.of(torch.ones(3))
        assert isinstance(f(ws.point), float)
        with evaluating("torch"):
            f(ws.point)
        assert seen == [False, False]
        assert all(p.grad is None for p in layer.parameters())

    def test_caller_pickles(self) -> None:
        """The wrapped loss travels to process executors."""
        f = loss_caller(sum, "torch")
        assert pickle.loads(pickle.dumps(f))([1.0, 2.0]) == 3.0


class TestValues:
    def test_scalar_of_each_library(self, lib: Lib, x64: None) -> None:
        """A 0-d array of the library, or a Python float, reads as a float."""
        ws = Workspace.of(lib.make(np.array([1.5, 2.0])))
        assert ws.value(ws.point.sum()) == 3.5
        assert ws.value(2.25) == 2.25
        assert type(ws.value(ws.point[0])) is float

    def test_one_element_array(self, lib: Lib) -> None:
        """A one-element array reads as its element, as for numpy."""
        ws = Workspace.of(lib.make(np.array([1.5], dtype=np.float32)), dtype="native")
        assert ws.value(ws.point) == 1.5

    def test_vector_is_refused_by_name(self, lib: Lib) -> None:
        """A loss that returns a vector is told to reduce it."""
        ws = Workspace.of(lib.make(np.ones(3, dtype=np.float32)), dtype="native")
        with pytest.raises(InvalidArgumentError, match=r"^my_loss must return a scalar.*sum"):
            ws.value(ws.point, "my_loss")

    def test_bool_and_complex_are_refused(self, lib: Lib) -> None:
        """Boolean and complex loss values are refused by name."""
        ws = Workspace.of(lib.make(np.ones(2, dtype=np.float32)), dtype="native")
        with pytest.raises(InvalidTypeError, match=r"^f returned"):
            ws.value(lib.make(np.array(True)), "f")
        with pytest.raises(InvalidTypeError, match=r"^f returned a complex value"):
            ws.value(lib.make(np.array(1 + 2j, dtype=np.complex64)), "f")


class TestJax:
    def test_jit_loss_compiles_once(self) -> None:
        """A jit-compiled loss is traced once for a whole sweep of moved points."""
        jax = pytest.importorskip("jax")
        traces: list[int] = []

        @jax.jit
        def loss(w: Any) -> Any:
            traces.append(1)
            return (w**2).sum()

        with jax.enable_x64(True):
            ws = Workspace.of(jax.numpy.arange(5.0))
            f = loss_caller(loss, "jax")
            vals = []
            for i in range(5):
                vals.append(f(ws.set(i, 10.0)))
                ws.reset(i)
        assert len(traces) == 1
        assert vals == [100.0 + 30.0 - i * i for i in range(5)]


class TestValueReader:
    def test_reads_each_library(self, lib: Lib, x64: None) -> None:
        """The inner loop's reader turns each library's scalar into a float."""
        ws = Workspace.of(lib.make(np.array([1.5, 2.0])))
        read = value_reader(lib.kind, "f")
        assert read(ws.point.sum()) == 3.5
        assert type(read(ws.point[1])) is float

    def test_torch_errors_name_the_loss(self) -> None:
        """A torch vector or boolean is refused by the loss's name, as for numpy."""
        torch = pytest.importorskip("torch")
        read = value_reader("torch", "my_loss")
        with pytest.raises(InvalidArgumentError, match=r"^my_loss must return a scalar"):
            read(torch.ones(3))
        with pytest.raises(InvalidTypeError, match=r"^my_loss returned"):
            read(torch.tensor(True))
        assert read(torch.tensor(3)) == 3.0
        assert read(torch.nn.Parameter(torch.tensor(2.5))) == 2.5


class TestSharedWorkspaceHoldsOneCopy:
    """A torch CPU (or numpy) workspace holds one copy of the parameter: its base is a view of
    the memory the point shares, and a moved coordinate is put back from the value it had."""

    @pytest.mark.parametrize("kind", ["numpy", "torch"])
    def test_base_is_the_point_s_memory(self, kind: str) -> None:
        a = np.random.default_rng(0).normal(size=1000)
        if kind == "torch":
            torch = pytest.importorskip("torch")
            x: Any = torch.tensor(a)
        else:
            x = a
        ws = Workspace.of(x)
        assert ws.shared
        assert np.shares_memory(ws.base, ws.host)
        assert not ws.base.flags.writeable
        assert ws.host.flags.writeable

    def test_set_twice_then_reset_restores_exactly(self) -> None:
        torch = pytest.importorskip("torch")
        a = np.random.default_rng(1).normal(size=50)
        ws = Workspace.of(torch.tensor(a))
        before = ws.host.copy()
        ws.set(7, 1e300)
        ws.set(7, -3.0)  # a second move of the same coordinate keeps the first saved value
        assert float(ws.point[7]) == -3.0
        ws.reset(7)
        ws.reset(7)  # a reset with nothing moved changes nothing
        np.testing.assert_array_equal(ws.host, before)
        ws.set(3, 0.5)
        ws.reset(3)
        np.testing.assert_array_equal(ws.host, before)

    def test_a_jax_workspace_holds_one_host_copy(self) -> None:
        jax = pytest.importorskip("jax")
        ws = Workspace.of(
            jax.numpy.asarray(np.linspace(0.0, 1.0, 100, dtype=np.float32)), dtype="auto"
        )
        assert not ws.shared
        assert np.shares_memory(ws.base, ws.host)
        assert not ws.base.flags.writeable
