"""CheckConfig: the options of a check, validated once."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import verigrad as vg
from verigrad._options import CheckConfig


class TestCheckConfig:
    def test_defaults_match_check_gradient(self) -> None:
        """The defaults are those check_gradient documents."""
        c = CheckConfig()
        assert (c.method, c.epsilon, c.rtol, c.kink_fails) == ("auto", "auto", 1e-5, False)
        assert (c.n_directions, c.n_coordinates, c.directions) == (8, 32, "rademacher")
        assert (c.vectorized, c.batch_bytes, c.executor) == (False, 2 * 2**20, None)

    def test_values_are_normalized(self) -> None:
        """numpy integers become ints, an integer rtol a float, truthy flags bools."""
        c = CheckConfig(rtol=1, n_directions=np.int64(4), kink_fails=1, vectorized=0)  # type: ignore[arg-type]
        assert type(c.rtol) is float
        assert type(c.n_directions) is int
        assert c.kink_fails is True
        assert c.vectorized is False

    def test_frozen(self) -> None:
        """A config cannot change after validation."""
        with pytest.raises(dataclasses.FrozenInstanceError):
            CheckConfig().rtol = 0.5  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("option", "value", "error", "match"),
        [
            ("method", "secant", vg.InvalidArgumentError, "method"),
            ("epsilon", -1.0, vg.InvalidArgumentError, "epsilon"),
            ("rtol", 2.0, vg.InvalidArgumentError, "rtol=2.0"),
            ("n_coordinates", 0, vg.InvalidArgumentError, "n_coordinates=0"),
            ("n_directions", 2.5, vg.InvalidTypeError, "n_directions must be an int"),
            ("directions", "sobol", vg.InvalidArgumentError, "directions='sobol'"),
            ("batch_bytes", True, vg.InvalidTypeError, "batch_bytes must be an int"),
            ("executor", "pool", vg.InvalidTypeError, "executor must be"),
        ],
    )
    def test_bad_values_name_the_option(
        self, option: str, value: object, error: type, match: str
    ) -> None:
        """Each bad option raises an error naming it, from every entry point alike."""
        with pytest.raises(error, match=match):
            CheckConfig(**{option: value})  # type: ignore[arg-type]
        with pytest.raises(error, match=match):
            vg.verified_gradient(loss=lambda w: 0.0, **{option: value})  # type: ignore[arg-type]
        with pytest.raises(error, match=match):
            vg.check_gradient(lambda w: 0.0, np.ones(2), np.zeros(2), **{option: value})  # type: ignore[arg-type]

    def test_a_real_executor_is_kept(self) -> None:
        """An executor passes through unchanged."""
        with ThreadPoolExecutor(1) as pool:
            assert CheckConfig(executor=pool).executor is pool
