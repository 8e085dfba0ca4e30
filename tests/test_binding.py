"""Tests for finding the differentiated argument (``wrt``) and calling the loss (``loss``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import verigrad as vg
from problems import regression_data, regression_grad, regression_grad_flipped, regression_loss
from verigrad._binding import Binder

X, Y = regression_data(n=12, seed=3)
BETA = np.array([0.3, -0.7])


class Recorder:
    """A loss wrapper that records the arguments of every call it receives."""

    def __init__(self, loss: Any) -> None:
        self.loss = loss
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.loss(*args, **kwargs)


class TestBinderUnit:
    def test_bind_returns_point_and_loss_at(self) -> None:
        """``bind`` finds the parameter and builds ``x -> loss(x, other args)``."""
        binder = Binder(regression_grad, 0, regression_loss)
        x, loss_at = binder.bind(None, (BETA, X, Y), {})
        assert x is BETA
        other = np.array([1.0, 2.0])
        assert loss_at(other) == regression_loss(other, X, Y)

    def test_bind_applies_defaults(self) -> None:
        """Defaults of the gradient function are passed on to the loss explicitly."""
        rec = Recorder(lambda w, scale: scale * float(w @ w))

        def grad(w: np.ndarray, scale: float = 3.0) -> np.ndarray:
            return 2 * scale * w

        _, loss_at = Binder(grad, 0, rec).bind(None, (BETA,), {})
        assert loss_at(np.ones(2)) == pytest.approx(6.0)
        assert rec.calls[0][0][1] == 3.0

    def test_bind_reports_a_call_that_does_not_match(self) -> None:
        """A call that does not fit the signature is an InvalidArgumentError naming it."""
        binder = Binder(regression_grad, 0, regression_loss)
        with pytest.raises(vg.InvalidArgumentError, match=r"cannot match the call to .*regression"):
            binder.bind(None, (BETA,), {"bogus": 1})

    def test_loss_name(self) -> None:
        """The binder names the loss by qualified name, or by attribute name for ``loss="..."``."""
        assert Binder(regression_grad, 0, regression_loss).loss_name == "regression_loss"
        assert Binder(regression_grad, 0, "loss").loss_name == "loss"


class TestWrt:
    def test_default_is_first_argument(self) -> None:
        """By default the first argument is differentiated and the loss gets the same others."""
        rec = Recorder(regression_loss)

        @vg.verified_gradient(loss=rec, mode="debug")
        def grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            return regression_grad(beta, X, y)

        grad(BETA, X, Y)
        assert grad.verigrad.stats.failures == 0
        args, kwargs = rec.calls[0]
        assert kwargs == {}
        assert np.array_equal(args[0], BETA)
        assert args[1] is X
        assert args[2] is Y
        assert all(a[1] is X and a[2] is Y for a, _ in rec.calls)

    def test_position_one(self) -> None:
        """``wrt=1`` differentiates the second argument; the first is passed through as is."""
        rec = Recorder(lambda X, beta, y: regression_loss(beta, X, y))

        @vg.verified_gradient(loss=rec, wrt=1, mode="debug")
        def grad(X: np.ndarray, beta: np.ndarray, y: np.ndarray) -> np.ndarray:
            return regression_grad(beta, X, y)

        grad(X, BETA, Y)
        result = grad.verigrad.last_result
        assert result is not None
        assert result.passed
        assert result.shape == (2,)
        assert all(a[0] is X and a[2] is Y for a, _ in rec.calls)

    def test_position_one_detects_a_bug(self) -> None:
        """A check on a non-first argument still catches a flipped sign."""

        @vg.verified_gradient(loss=lambda X, b, y: regression_loss(b, X, y), wrt=1, mode="debug")
        def grad(X: np.ndarray, beta: np.ndarray, y: np.ndarray) -> np.ndarray:
            return regression_grad_flipped(beta, X, y)

        with pytest.raises(vg.GradientMismatchError):
            grad(X, BETA, Y)

    def test_name_called_positionally(self) -> None:
        """``wrt="beta"`` finds the argument when it is passed by position."""
        rec = Recorder(lambda X, y, beta: regression_loss(beta, X, y))

        @vg.verified_gradient(loss=rec, wrt="beta", mode="debug")
        def grad(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> np.ndarray:
            return regression_grad(beta, X, y)

        grad(X, Y, BETA)
        assert grad.verigrad.stats.checks == 1
        assert grad.verigrad.stats.failures == 0
        assert all(a[0] is X and a[1] is Y for a, _ in rec.calls)
        assert np.array_equal(rec.calls[0][0][2], BETA)

    def test_name_called_by_keyword(self) -> None:
        """``wrt="beta"`` finds the argument when it is passed by keyword."""
        rec = Recorder(lambda X, y, beta: regression_loss(beta, X, y))

        @vg.verified_gradient(loss=rec, wrt="beta", mode="debug")
        def grad(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> np.ndarray:
            return regression_grad(beta, X, y)

        grad(X, y=Y, beta=BETA)
        grad(beta=BETA, y=Y, X=X)
        stats = grad.verigrad.stats
        assert (stats.checks, stats.failures) == (2, 0)
        assert all(a[0] is X and a[1] is Y for a, _ in rec.calls)

    def test_name_of_keyword_only_parameter_after_varargs(self) -> None:
        """A keyword-only ``wrt`` after ``*args`` is replaced by name; ``*args`` pass unchanged."""
        rec = Recorder(lambda X, *extra, beta: regression_loss(beta, X, Y) + sum(extra))

        @vg.verified_gradient(loss=rec, wrt="beta", mode="debug")
        def grad(X: np.ndarray, *extra: float, beta: np.ndarray) -> np.ndarray:
            return regression_grad(beta, X, Y)

        grad(X, 1.0, 2.0, beta=BETA)
        assert grad.verigrad.stats.failures == 0
        for args, kwargs in rec.calls:
            assert args == (X, 1.0, 2.0)
            assert set(kwargs) == {"beta"}

    def test_keyword_only_parameter(self) -> None:
        """A keyword-only parameter can be differentiated and the loss receives it by keyword."""
        rec = Recorder(lambda X, y, *, beta: regression_loss(beta, X, y))

        @vg.verified_gradient(loss=rec, wrt="beta", mode="debug")
        def grad(X: np.ndarray, y: np.ndarray, *, beta: np.ndarray) -> np.ndarray:
            return regression_grad(beta, X, y)

        grad(X, Y, beta=BETA)
        assert grad.verigrad.stats.failures == 0
        assert all(set(kw) == {"beta"} for _, kw in rec.calls)

    def test_unknown_name_fails_at_decoration(self) -> None:
        """A ``wrt`` naming no parameter fails when decorating, naming wrt and the function."""
        with pytest.raises(vg.InvalidArgumentError, match=r"wrt='theta'.*my_grad\(beta"):

            @vg.verified_gradient(loss=regression_loss, wrt="theta")
            def my_grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
                return regression_grad(beta, X, y)

    @pytest.mark.parametrize("wrt", [3, 7, -1])
    def test_position_out_of_range_fails_at_decoration(self, wrt: int) -> None:
        """A position the function does not have fails at decoration, naming wrt and function."""
        with pytest.raises(vg.InvalidArgumentError, match=rf"wrt={wrt} .*my_grad.*has 3"):

            @vg.verified_gradient(loss=regression_loss, wrt=wrt)
            def my_grad(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
                return regression_grad(beta, X, y)

    def test_position_of_keyword_only_fails(self) -> None:
        """A position counts positional parameters only; keyword-only ones cannot be reached."""
        with pytest.raises(vg.InvalidArgumentError, match=r"wrt=1 .*has 1"):

            @vg.verified_gradient(loss=regression_loss, wrt=1)
            def my_grad(beta: np.ndarray, *, X: np.ndarray) -> np.ndarray:
                return beta

    def test_varargs_name_refused(self) -> None:
        """``wrt`` cannot name ``*args`` or ``**kwargs``."""
        with pytest.raises(vg.InvalidArgumentError, match=r"wrt='rest'.*\*args"):

            @vg.verified_gradient(loss=regression_loss, wrt="rest")
            def my_grad(beta: np.ndarray, *rest: Any) -> np.ndarray:
                return beta

    @pytest.mark.parametrize("wrt", [True, 1.0, None])
    def test_wrt_type(self, wrt: object) -> None:
        """``wrt`` must be an int position or a str name (bools are refused)."""
        with pytest.raises(vg.InvalidTypeError, match="wrt"):
            vg.verified_gradient(loss=regression_loss, wrt=wrt)(regression_grad)  # type: ignore[arg-type]

    def test_method_positions_count_after_self(self) -> None:
        """For a method, ``wrt=1`` is the second argument after ``self``, as the caller sees it."""
        rec = Recorder(lambda X, beta, y: regression_loss(beta, X, y))

        class Model:
            @vg.verified_gradient(loss=rec, wrt=1, mode="debug")
            def grad(self, X: np.ndarray, beta: np.ndarray, y: np.ndarray) -> np.ndarray:
                return regression_grad(beta, X, y)

        Model().grad(X, BETA, Y)
        assert Model.grad.verigrad.stats.failures == 0
        assert all(a[0] is X and a[2] is Y and len(a) == 3 for a, _ in rec.calls)

    def test_method_position_beyond_bound_signature(self) -> None:
        """A method's position past its last argument (after ``self``) fails at decoration."""
        with pytest.raises(vg.InvalidArgumentError, match=r"wrt=1 is not a positional.*has 1"):

            class Model:
                def loss(self, beta: np.ndarray) -> float:
                    return float(beta @ beta)

                @vg.verified_gradient(loss="loss", wrt=1)
                def grad(self, beta: np.ndarray) -> np.ndarray:
                    return 2 * beta


class TestLossResolution:
    def test_loss_name_on_plain_function_fails_clearly(self) -> None:
        """``loss="name"`` on a plain function fails at decoration, showing the right spelling."""
        with pytest.raises(
            vg.InvalidArgumentError, match=r"loss='loss'.*@verified_gradient\(loss=loss\)"
        ):

            @vg.verified_gradient(loss="loss")
            def grad(beta: np.ndarray) -> np.ndarray:
                return 2 * beta

    def test_missing_loss_attribute_is_named(self) -> None:
        """A ``loss`` attribute the instance lacks is reported by its name and the class."""

        class Model:
            @vg.verified_gradient(loss="objective")
            def grad(self, beta: np.ndarray) -> np.ndarray:
                return 2 * beta

        with pytest.raises(vg.InvalidArgumentError, match=r"Model has no attribute 'objective'"):
            Model().grad(BETA)

    def test_loss_attribute_not_callable(self) -> None:
        """A ``loss`` attribute that is not callable is a type error naming it."""

        class Model:
            objective = 3.0

            @vg.verified_gradient(loss="objective")
            def grad(self, beta: np.ndarray) -> np.ndarray:
                return 2 * beta

        with pytest.raises(vg.InvalidTypeError, match=r"Model\.objective is not callable"):
            Model().grad(BETA)

    def test_loss_name_must_be_identifier(self) -> None:
        """A loss string that cannot be an attribute name is refused at decoration."""
        with pytest.raises(vg.InvalidArgumentError, match="not an attribute name"):
            vg.verified_gradient(loss="my loss")(regression_grad)

    def test_loss_must_be_callable(self) -> None:
        """A loss that is neither callable nor a name is a type error at decoration."""
        with pytest.raises(vg.InvalidTypeError, match="loss must be a callable"):
            vg.verified_gradient(loss=3.0)(regression_grad)  # type: ignore[arg-type]

    def test_loss_attribute_resolved_per_instance(self) -> None:
        """``loss="name"`` uses each instance's own loss (its own data)."""

        class Model:
            def __init__(self, scale: float) -> None:
                self.scale = scale

            def loss(self, beta: np.ndarray) -> float:
                return self.scale * float(beta @ beta)

            @vg.verified_gradient(loss="loss", mode="debug", on_failure="log")
            def grad(self, beta: np.ndarray) -> np.ndarray:
                return 2 * 2.0 * beta  # right for scale 2 only

        Model(2.0).grad(BETA)
        assert Model.grad.verigrad.stats.failures == 0
        Model(3.0).grad(BETA)
        assert Model.grad.verigrad.stats.failures == 1
