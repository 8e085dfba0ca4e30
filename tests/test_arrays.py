"""Tests for verigrad._arrays: turning user values into float64 arrays and scalars."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import verigrad as vg
from verigrad._arrays import gradient_array, loss_value, working_copy


class TestWorkingCopy:
    """working_copy: a private C-contiguous float64 copy of the parameter."""

    @pytest.mark.parametrize(
        "x",
        [
            np.array([1.5, -2.0, 3.25]),
            np.array([1.5, -2.0, 3.25], dtype=np.float32),
            np.array([1, -2, 3], dtype=np.int64),
            np.array([1, 2, 3], dtype=np.uint8),
            np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            np.arange(12.0)[::3],
        ],
        ids=["float64", "float32", "int64", "uint8", "fortran", "strided"],
    )
    def test_copy_is_contiguous_float64_with_the_same_values(self, x: np.ndarray) -> None:
        """Any real array becomes a C-contiguous float64 array holding the same values."""
        out = working_copy(x)
        assert out.dtype == np.float64
        assert out.flags.c_contiguous
        assert out.flags.writeable
        assert out.shape == x.shape
        np.testing.assert_array_equal(out, x.astype(np.float64))

    def test_copy_shares_no_memory_with_the_caller(self) -> None:
        """Writing into the working copy never reaches the caller's array."""
        x = np.array([1.0, 2.0, 3.0])
        out = working_copy(x)
        out[0] = 99.0
        assert not np.shares_memory(out, x)
        np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])

    def test_read_only_input_gives_writable_copy(self) -> None:
        """A read-only parameter is accepted and its copy can be perturbed."""
        x = np.array([1.0, 2.0])
        x.setflags(write=False)
        out = working_copy(x)
        assert out.flags.writeable
        assert not x.flags.writeable

    def test_lists_scalars_and_numeric_objects_are_accepted(self) -> None:
        """Lists, Python scalars and object arrays of real numbers convert to float64."""
        np.testing.assert_array_equal(working_copy([1, 2.5]), [1.0, 2.5])
        scalar = working_copy(3)
        assert scalar.shape == ()
        assert float(scalar) == 3.0
        objects = np.array([Fraction(1, 2), 2, 3.5], dtype=object)
        np.testing.assert_array_equal(working_copy(objects), [0.5, 2.0, 3.5])

    @pytest.mark.parametrize(
        ("x", "words"),
        [
            (np.array([True, False]), "bool"),
            (np.array([1 + 2j, 3.0]), "complex"),
            (np.array(["a", "b"], dtype=object), "str"),
            (np.array(["1.5", "2.5"], dtype=object), "str"),
            (np.array([True, 1.0], dtype=object), "bool"),
            (np.array([1.0, "x"], dtype=object), "str"),
            (np.array(["1.0", "2.0"]), "dtype <U3"),
            (None, "None"),
        ],
        ids=[
            "bool",
            "complex",
            "object-str",
            "object-numeric-str",
            "object-bool",
            "object-mixed",
            "unicode",
            "none",
        ],
    )
    def test_non_real_parameters_are_refused_naming_the_argument(
        self, x: object, words: str
    ) -> None:
        """Booleans, complex numbers, strings and None raise InvalidTypeError naming x."""
        with pytest.raises(vg.InvalidTypeError, match=r"^x ") as info:
            working_copy(x)
        assert words in str(info.value)

    def test_ragged_list_is_refused(self) -> None:
        """A ragged nested list raises InvalidTypeError naming the argument."""
        with pytest.raises(vg.InvalidTypeError, match=r"x cannot be converted"):
            working_copy([[1.0, 2.0], [3.0]])

    def test_custom_name_appears_in_the_error(self) -> None:
        """The name passed in is the one the error message starts with."""
        with pytest.raises(vg.InvalidTypeError, match=r"^direction has dtype bool"):
            working_copy(np.array([True]), "direction")


class TestGradientArray:
    """gradient_array: the analytical gradient as a read-only float64 copy of the right shape."""

    def test_returns_read_only_float64_copy(self) -> None:
        """The gradient is copied to float64 and frozen, leaving the caller's array writable."""
        g = np.array([1, 2, 3], dtype=np.int32)
        out = gradient_array(g, (3,))
        assert out.dtype == np.float64
        assert not out.flags.writeable
        assert not np.shares_memory(out, g)
        assert g.flags.writeable
        np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])

    def test_wrong_shape_names_both_shapes(self) -> None:
        """A gradient shaped unlike the parameter raises naming both shapes."""
        with pytest.raises(vg.InvalidArgumentError, match=r"\(3,\).*\(2,\)"):
            gradient_array(np.zeros(3), (2,))

    def test_same_size_wrong_shape_suggests_reshape(self) -> None:
        """A gradient with the right number of elements but the wrong shape suggests a reshape."""
        with pytest.raises(vg.InvalidArgumentError, match=r"reshape\(\(2, 3\)\)"):
            gradient_array(np.zeros(6), (2, 3))

    def test_none_mentions_a_missing_return(self) -> None:
        """A None gradient raises InvalidTypeError pointing at a missing return."""
        with pytest.raises(vg.InvalidTypeError, match=r"None.*return"):
            gradient_array(None, (2,))

    def test_complex_gradient_is_refused(self) -> None:
        """A complex gradient raises InvalidTypeError naming the gradient."""
        with pytest.raises(vg.InvalidTypeError, match=r"^analytical has complex dtype"):
            gradient_array(np.array([1j, 2.0]), (2,))


class TestLossValue:
    """loss_value: the scalar a loss returned, as a Python float."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (2.5, 2.5),
            (3, 3.0),
            (np.float32(1.5), 1.5),
            (np.float64(-4.0), -4.0),
            (np.int64(7), 7.0),
            (np.array(2.0), 2.0),
            (np.array([[2.0]]), 2.0),
            ([0.25], 0.25),
        ],
        ids=["float", "int", "float32", "float64", "int64", "0d", "1x1", "list"],
    )
    def test_real_scalars_become_python_floats(self, value: object, expected: float) -> None:
        """Every kind of real scalar, including size-1 arrays, becomes a Python float."""
        out = loss_value(value)
        assert type(out) is float
        assert out == expected

    def test_non_finite_values_are_kept(self) -> None:
        """NaN and inf pass through so the check can report them."""
        assert np.isnan(loss_value(float("nan")))
        assert loss_value(np.array(np.inf)) == np.inf

    def test_array_output_mentions_scalar_and_shape(self) -> None:
        """A loss returning a vector raises InvalidArgumentError saying it must be a scalar."""
        with pytest.raises(vg.InvalidArgumentError, match=r"my_loss must return a scalar.*\(3,\)"):
            loss_value(np.array([1.0, 2.0, 3.0]), "my_loss")

    @pytest.mark.parametrize(
        ("value", "words"),
        [
            (None, "returned None"),
            ("1.0", "returned a str"),
            (1 + 2j, "complex"),
            (np.complex128(1.0), "complex"),
            (True, "bool"),
            (np.bool_(False), "bool"),
            ({"loss": 1.0}, "returned a dict"),
        ],
        ids=["none", "str", "complex", "np-complex", "bool", "np-bool", "dict"],
    )
    def test_non_numbers_raise_naming_the_loss(self, value: object, words: str) -> None:
        """A loss returning None, a string, a complex or a bool raises InvalidTypeError."""
        with pytest.raises(vg.InvalidTypeError, match=r"^my_loss ") as info:
            loss_value(value, "my_loss")
        assert words in str(info.value)


class TestHugeIntegerLoss:
    def test_an_int_beyond_float_range_is_treated_as_infinite(self) -> None:
        """A loss returning 10**400 is not finite: the check says so instead of crashing."""
        result = vg.check_gradient(lambda x: 10**400, np.ones(2), np.zeros(2))
        assert result.verdict == "nonfinite"
        assert "loss" in (result.where or "")
