"""A tqdm progress bar over a check's loss evaluations, shown only when asked for.

tqdm is an optional extra (``verigrad[progress]``); nothing here imports it until a bar is
actually drawn.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["estimated_evals", "progress_bar", "tqdm_available"]

INSTALL_HINT = 'pip install "verigrad[progress]"'


def tqdm_available() -> bool:
    """Whether tqdm can be imported."""
    return importlib.util.find_spec("tqdm") is not None


def estimated_evals(method: str, size: int, full_max: int) -> int | None:
    """Loss evaluations of a full check of ``size`` coordinates (before second opinions), or
    None for the checks whose cost does not grow with the size (``auto`` beyond ``full_max``,
    ``directional``, ``coordinates``)."""
    # Imported here: the pytest plugin imports this module, and must not import numpy.
    from ._noise import PROBE_EVALS
    from ._schemes import SCHEMES

    if method == "auto" and size > full_max:
        return None
    scheme = SCHEMES.get("central" if method == "auto" else method)
    if scheme is None:
        return None
    return scheme.evals_per_coordinate * size + 2 + PROBE_EVALS


class Counted:
    """A loss that advances a progress bar by the points it evaluates; otherwise the loss."""

    def __init__(self, loss: Callable[..., Any], bar: Any, batched: bool = False) -> None:
        functools.update_wrapper(self, loss)
        self._loss = loss
        self._bar = bar
        self._batched = batched

    def __call__(self, points: Any, *args: Any, **kwargs: Any) -> Any:
        self._bar.update(len(points) if self._batched else 1)
        return self._loss(points, *args, **kwargs)


@contextlib.contextmanager
def progress_bar(
    total: int | None, batched: bool = False, stream: TextIO | None = None
) -> Iterator[Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """Draw a bar of loss evaluations on ``stream`` (stderr) while the block runs; yield a
    function that wraps a loss so that each evaluation advances it. Needs tqdm."""
    tqdm = importlib.import_module("tqdm").tqdm  # optional, and untyped
    bar = tqdm(
        total=total,
        desc="loss evaluations",
        unit="eval",
        file=sys.stderr if stream is None else stream,
        leave=False,
    )
    try:
        yield lambda loss: Counted(loss, bar, batched)
    finally:
        if total is not None and bar.n != total:
            bar.total = bar.n  # the estimate ignores second opinions: end at 100 %
            bar.refresh()
        bar.close()
