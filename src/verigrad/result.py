"""The record of one gradient check, and its two renderings: for a person and for a log."""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._tree import Tree
from ._typing import FAILURES, Epsilon, FloatArray, Method, Verdict
from .compare import MARGIN, Coordinate, scale_factor

__all__ = ["CheckResult"]

#: A partial check names a scale error from at least this many coordinates checked one by one.
MIN_SCALE_SAMPLE = 8


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class CheckResult:
    """The outcome of one gradient check. Immutable; its arrays are read-only.

    Attributes:
        passed: True for the verdict ``"pass"``, and for ``"kink"`` unless kinks fail.
        verdict: ``"pass"``; ``"mismatch"`` (the gradient disagrees beyond the threshold and the
            numerical error); ``"nonfinite"`` (a NaN or inf in the parameter, the loss or either
            gradient); ``"kink"`` (the loss is not differentiable inside the stencil of some
            coordinates and the gradient is a valid subgradient there); ``"nondeterministic"``
            (the loss changed between two evaluations at the same point); ``"inconclusive"``
            (the loss is too noisy at this point to judge).
        relative_error: ``||n - a|| / (||n|| + ||a||)``; ``inf`` for ``"nonfinite"``.
        threshold: the ``rtol`` the relative error was compared with.
        numerical: the finite-difference gradient (float64, shaped like the parameter; NaN
            where a partial check estimated nothing). A partial check keeps only the estimated
            coordinates and builds this array on first access.
        analytical: the gradient under test (float64 copy, shaped like the parameter).
        max_abs_error: the largest ``|analytical_i - numerical_i|``.
        worst: the coordinates with the largest discrepancy, largest first.
        method: the difference scheme used.
        epsilon: the step setting asked for (a number, or ``"auto"``).
        steps: the step taken along each coordinate (NaN where none was; built on first
            access for a partial check, as ``numerical`` is).
        n_evals: loss evaluations spent, including the one at the point itself.
        duration_s: wall time of the check in seconds.
        shape: the parameter's shape.
        dtype: the parameter's dtype as given (the check itself runs in float64).
        n_mismatched: how many coordinates alone exceed the threshold (see :func:`judge`).
        where: for ``"nonfinite"``, where the NaN or inf appeared.
        loss_value: the loss at the point, if it was evaluated.
        function: the qualified name of the checked gradient function, when known.
        call_index: which call of a decorated function this was (0-based), when known.
        failed: True for the failing verdicts ``"mismatch"`` and ``"nonfinite"`` (and
            ``"kink"`` when kinks fail); ``"inconclusive"`` and ``"nondeterministic"`` are
            neither passed nor failed.
        errors: the estimated absolute error of each numerical derivative (rounding, plus the
            truncation measured between two step sizes where a second opinion was taken; built
            on first access for a partial check, as ``numerical`` is).
        precision: the loss's precision as measured from the scatter of its values:
            ``"float64"``; ``"float32"`` (steps and threshold then follow float32's precision;
            a float32 term anywhere in the loss makes it so); or ``"noisy"`` (the values
            scatter more than rounding explains; steps follow the scatter).
        kinks: coordinates where the loss has a kink inside the stencil.
        mismatched: coordinates confirmed wrong by a second, narrower stencil.
        notes: explanations of the verdict, one sentence each.
        strategy: for checks that do not estimate every coordinate (methods ``"directional"``,
            ``"coordinates"``, and ``"auto"`` beyond its size limit), what was done.
        n_checked: how many coordinates were estimated one by one (``numerical`` is NaN at
            the others).
        checked_indices: flat indices of the coordinates estimated one by one, or None when
            every coordinate was.
        directions: per random direction, ``(numerical, analytical, estimated error)`` of the
            derivative along it.
        tree: for a structured parameter (nested dicts, lists, tuples of arrays), its layout;
            the arrays above are then flat vectors of all leaves in order, and indices are flat
            indices (:meth:`label` names them, :meth:`unflatten` rebuilds the structure).
        leaf_errors: for a structured parameter, ``(leaf path, relative error)`` per leaf.
        agreement: for a pass, how it was reached: ``"relative"`` (the relative error is within
            the threshold) or ``"absolute"`` (the gradient is too small here for a relative
            test, and agrees with finite differences within ``resolution``); else None.
        resolution: the norm of the error bars of the estimated coordinates: the smallest
            absolute discrepancy this check could have resolved.
        cause: why the estimates differ from the gradient where they do, or why the check
            could not decide: ``"truncation"``, ``"rounding"``, ``"resolution"`` (the gradient
            is below what finite differences resolve here), ``"noise"``, ``"nondeterminism"``,
            ``"flat"`` (the loss does not change at the step), ``"domain"``, ``"kink"``; None
            when nothing needed explaining.
        criterion: for a failure, which criterion failed: ``"relative"`` (the headline relative
            error is above the threshold), ``"coordinate"`` (a coordinate disagrees beyond its
            own error bar and its share of the threshold while the relative error passes) or
            ``"direction"`` (random directions disagree beyond their error bars); else None.
        noise: the measured noise of one loss value near ``x`` (absolute), when measured.
        arrays: False for a result kept without its parameter-sized arrays (see
            :meth:`without_arrays`; a decorator's ``last_result`` above 65,536 coordinates).
    """

    passed: bool
    verdict: Verdict
    relative_error: float
    threshold: float
    # The numerical gradient, its steps and its error bars: over every coordinate, or, when
    # ``checked_indices`` is set, over those coordinates only (a million-coordinate check
    # that estimated 40 keeps 40 numbers; the properties build the whole arrays on request).
    _numerical: FloatArray
    analytical: FloatArray
    max_abs_error: float
    worst: tuple[Coordinate, ...]
    method: Method
    epsilon: Epsilon
    _steps: FloatArray
    n_evals: int
    duration_s: float
    shape: tuple[int, ...]
    dtype: str = "float64"
    n_mismatched: int = 0
    where: str | None = None
    loss_value: float | None = None
    function: str | None = None
    call_index: int | None = None
    failed: bool | None = None
    _errors: FloatArray | None = None
    precision: str = "float64"
    kinks: tuple[tuple[int, ...], ...] = ()
    mismatched: tuple[tuple[int, ...], ...] = ()
    notes: tuple[str, ...] = ()
    strategy: str | None = None
    n_checked: int | None = None
    directions: tuple[tuple[float, float, float], ...] = ()
    checked_indices: np.ndarray | None = None
    tree: Tree | None = None
    leaf_errors: tuple[tuple[str, float], ...] = ()
    agreement: str | None = None
    resolution: float | None = None
    cause: str | None = None
    criterion: str | None = None
    noise: float | None = None
    arrays: bool = True
    _text: tuple[str, str | None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.failed is None:
            object.__setattr__(self, "failed", self.verdict in FAILURES)
        for arr in (
            self._numerical,
            self.analytical,
            self._steps,
            self._errors,
            self.checked_indices,
        ):
            if arr is not None and arr.flags.writeable:
                arr.setflags(write=False)

    @functools.cached_property
    def numerical(self) -> FloatArray:
        """The finite-difference gradient, shaped like the parameter (see the class)."""
        return self._whole(self._numerical)

    @functools.cached_property
    def steps(self) -> FloatArray:
        """The step taken along each coordinate, shaped like the parameter."""
        return self._whole(self._steps)

    @functools.cached_property
    def errors(self) -> FloatArray | None:
        """The estimated error of each numerical derivative, shaped like the parameter."""
        return None if self._errors is None else self._whole(self._errors)

    @property
    def _compact(self) -> bool:
        return self.checked_indices is not None and self.arrays

    def _whole(self, part: FloatArray) -> FloatArray:
        if not self._compact:
            return part
        out = np.full(self.shape, np.nan)
        out.reshape(-1)[self.checked_indices] = part
        out.setflags(write=False)
        return out

    def _estimated(self, start: int, stop: int) -> tuple[FloatArray, FloatArray]:
        """``(numerical, analytical)`` at the estimated coordinates among flat indices
        ``start:stop``, read from the compact arrays (nothing parameter-sized is built)."""
        ana = self.analytical.reshape(-1)
        if self._compact:
            assert self.checked_indices is not None
            lo, hi = np.searchsorted(self.checked_indices, (start, stop))
            num = self._numerical[lo:hi]
            ana = ana[self.checked_indices[lo:hi]]
        else:
            num, ana = self._numerical.reshape(-1)[start:stop], ana[start:stop]
        seen = np.isfinite(num)
        return num[seen], ana[seen]

    def _error_at(self, index: tuple[int, ...]) -> float:
        """The error bar of one coordinate (NaN where it was not estimated)."""
        assert self._errors is not None
        if not self._compact:
            return float(self._errors[index])
        assert self.checked_indices is not None
        flat = int(np.ravel_multi_index(index, self.shape)) if len(self.shape) else 0
        k = int(np.searchsorted(self.checked_indices, flat))
        if k < self.checked_indices.size and self.checked_indices[k] == flat:
            return float(self._errors[k])
        return math.nan

    def __repr__(self) -> str:
        return (
            f"CheckResult(verdict={self.verdict!r}, relative_error={self.relative_error:.3g}, "
            f"threshold={self.threshold:g}, shape={self.shape}, method={self.method!r}, "
            f"n_evals={self.n_evals})"
        )

    @property
    def size(self) -> int:
        """Number of coordinates of the parameter."""
        return int(np.prod(self.shape, dtype=np.int64))

    def without_arrays(self) -> CheckResult:
        """This result without its parameter-sized arrays (``arrays`` is False):
        ``numerical``, ``analytical``, ``errors`` and ``steps`` read NaN (read-only views that
        take no memory); every other field, :meth:`summary` and :meth:`hint` are kept."""
        if not self.arrays:
            return self
        nan = np.broadcast_to(np.float64(np.nan), self.shape)
        return dataclasses.replace(
            self,
            _numerical=nan,
            analytical=nan,
            _errors=None if self._errors is None else nan,
            _steps=nan,
            arrays=False,
            _text=(self.summary(), self.hint()),
        )

    def label(self, index: tuple[int, ...]) -> str:
        """A coordinate's name: ``"[3]"``, ``"(1, 2)"``, or ``"layer2.W[1, 0]"`` for a leaf."""
        if self.tree is not None and len(index) == 1:
            return self.tree.label(index[0])
        return f"[{index[0]}]" if len(index) == 1 else str(index)

    def unflatten(self, flat: FloatArray) -> Any:
        """``flat`` (e.g. ``numerical``) in the parameter's structure; an array's own shape."""
        if self.tree is None:
            return np.asarray(flat).reshape(self.shape)
        return self.tree.build(np.asarray(flat))

    # -- for people ---------------------------------------------------------------------------

    def summary(self) -> str:
        """A multi-line report for a person debugging the gradient."""
        if self._text is not None:
            return self._text[0]
        who = f" for {self.function}" if self.function else ""
        if self.call_index is not None:
            who += f" (call {self.call_index})"
        if self.verdict == "pass":
            head = f"gradient check passed{who}"
        elif self.passed:
            head = f"gradient check passed{who}: verdict {self.verdict!r}"
        elif self.failed:
            head = f"gradient check FAILED{who}: verdict {self.verdict!r}"
        else:
            head = f"gradient check could not decide{who}: verdict {self.verdict!r}"
        cmp = "<=" if self.relative_error <= self.threshold else ">"
        headline = (
            f"  relative error {self.relative_error:.3e} {cmp} threshold {self.threshold:.1e}"
        )
        if self.criterion is not None and self.criterion != "relative":
            headline += f"; failed on the {self.criterion} criterion (see below)"
        elif self.agreement == "absolute":
            headline += f"; passed on absolute agreement within {self.resolution:.1e}"
        if self.tree is not None:
            shapes = f"  parameters {self.tree.describe()} ({self.size} coordinates, {self.dtype})"
        else:
            shapes = (
                f"  parameter shape {self.shape} ({self.dtype}), "
                f"gradient shape {self.analytical.shape}"
            )
        lines = [
            head,
            headline,
            shapes,
            f"  method {self.method}, {self._step_text()}, "
            f"{self.n_evals} loss evaluations in {_duration(self.duration_s)}",
        ]
        if self.strategy:
            lines.append(f"  {self.strategy}")
        if self.leaf_errors:
            lines.append(f"  per parameter: {self._leaf_text()}")
        if self.precision == "noisy":
            lines.append(f"  precision: the loss's values scatter by {self.noise:.1e}")
        elif self.precision != "float64":
            lines.append(f"  precision: the loss computes in {self.precision}")
        if self.where:
            lines.append(f"  {self.where}")
        lines.extend(f"  {note}" for note in self.notes)
        if self.kinks:
            shown = ", ".join(self.label(k) for k in self.kinks[:8])
            more = f" and {len(self.kinks) - 8} more" if len(self.kinks) > 8 else ""
            lines.append(f"  kinks at {shown}{more}")
        if self.worst:
            of = f"{self.size} coordinates"
            if self._partial:
                of = f"the {self.n_checked} coordinates checked one by one (of {self.size})"
            if self.verdict == "mismatch":
                lines.append(f"  {self.n_mismatched} of {of} disagree; worst first:")
            else:
                lines.append(f"  largest discrepancies of {of}:")
            lines.extend("    " + row for row in self._table())
        hint = self.hint()
        if hint:
            lines.append(f"  hint: {hint}")
        return "\n".join(lines)

    def _step_text(self) -> str:
        steps = self._steps  # the compact ones of a partial check have the same range
        if steps.size == 0 or not np.isfinite(steps).any():
            return f"step {self.epsilon}"
        lo, hi = float(np.nanmin(steps)), float(np.nanmax(steps))
        span = f"{lo:.3g}" if math.isclose(lo, hi, rel_tol=1e-3) else f"{lo:.3g} .. {hi:.3g}"
        return f"step {span} (auto)" if self.epsilon == "auto" else f"step {span}"

    def _leaf_text(self, limit: int = 12) -> str:
        """``"layer2.W: 0.31, layer2.b: 2e-10"``; beyond ``limit`` leaves, the worst ones."""
        shown = list(self.leaf_errors)
        if len(shown) > limit:
            shown = sorted(shown, key=lambda p: -p[1] if p[1] == p[1] else -math.inf)[:limit]
        text = ", ".join(f"{path}: {err:.2g}" for path, err in shown)
        if len(self.leaf_errors) > limit:
            text += f" (worst {limit} of {len(self.leaf_errors)})"
        return text

    def _table(self) -> list[str]:
        head = ["index", "analytical", "numerical", "difference", "ratio"]
        if self._errors is not None:
            head.insert(4, "est. error")
        rows = [tuple(head)]
        for c in self.worst:
            ratio = (
                c.analytical / c.numerical
                if c.numerical != 0 and math.isfinite(c.numerical)
                else math.nan
            )
            row = [
                self.label(c.index),
                f"{c.analytical:.6e}",
                f"{c.numerical:.6e}",
                f"{c.difference:.3e}",
                "-" if math.isnan(ratio) else f"{ratio:.4g}",
            ]
            if self._errors is not None:
                row.insert(4, f"{self._error_at(c.index):.1e}")
            rows.append(tuple(row))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return [
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]

    def hint(self) -> str | None:
        """A one-line guess at the kind of bug, or None when nothing stands out."""
        if self._text is not None:
            return self._text[1]
        if self.verdict == "nonfinite":
            return (
                "a NaN or inf never passes a check: look for log(0), 0/0, overflow "
                "or an unset value"
            )
        if self.verdict != "mismatch":
            return None
        if self.tree is not None and len(self.leaf_errors) > 1:
            return self._leaf_hint()
        if not np.any(self.analytical):
            return (
                "the analytical gradient is all zeros: a missing term or a gradient never filled in"
            )
        # A scale fits "every coordinate" when every coordinate estimated fits it (all of them,
        # or, for a partial check, a sample of them and every random direction too).
        num, ana = self._estimated(0, self.size)
        total = self.n_checked if self._partial and self.n_checked is not None else self.size
        fit = None
        if num.size == total and (not self._partial or num.size >= MIN_SCALE_SAMPLE):
            fit = scale_factor(num, ana)
        if fit is not None:
            c, residual = fit
            if residual <= self.threshold and self._directions_scaled_by(c):
                where = (
                    f"every coordinate checked ({total} of {self.size})" if self._partial else ""
                )
                return _scale_hint(c, where or "every coordinate")
        if total > 1 and 0 < self.n_mismatched <= max(1, total // 10):
            where = ", ".join(self.label(c.index) for c in self.worst[: self.n_mismatched])
            more = " ..." if self.n_mismatched > len(self.worst) else ""
            of = f"the {total} coordinates checked one by one" if self._partial else None
            return (
                f"only {self.n_mismatched} of {of or f'{total} coordinates'} disagree "
                f"({where}{more}): "
                "look at the code that computes those entries"
            )
        return None

    @property
    def _partial(self) -> bool:
        """Whether only some coordinates were estimated one by one."""
        return self.checked_indices is not None and (self.n_checked or 0) < self.size

    def _directions_scaled_by(self, c: float) -> bool:
        """Whether every random direction's derivative agrees with ``c`` times its numerical
        estimate (within the threshold, or its error bar): a scale error shows along them."""
        for numerical, analytical, error in self.directions:
            if not (math.isfinite(numerical) and math.isfinite(error)):
                continue
            gap = abs(analytical - c * numerical)
            allowed = self.threshold * (abs(analytical) + abs(c * numerical))
            if gap > allowed + MARGIN * abs(c) * error:
                return False
        return True

    def _leaf_hint(self) -> str | None:
        assert self.tree is not None
        wrong = [path for path, err in self.leaf_errors if not err <= self.threshold]
        if self.mismatched:
            # The coordinates confirmed wrong name the leaves; a leaf's relative error can pass
            # the threshold on the loss's own rounding alone (a float32 loss).
            named = {self.tree.locate(index[0])[0].path for index in self.mismatched}
            wrong = [path for path, _ in self.leaf_errors if path in named]
        if not wrong:
            return None
        guesses = []
        for leaf in self.tree.leaves:
            if leaf.path not in wrong:
                continue
            num, ana = self._estimated(leaf.offset, leaf.offset + leaf.size)
            fit = scale_factor(num, ana) if num.size and np.any(ana) else None
            if fit is not None and fit[1] <= self.threshold:
                guesses.append(f"{leaf.path}: {_scale_hint(fit[0])}")
            elif not np.any(self.analytical.reshape(-1)[leaf.offset : leaf.offset + leaf.size]):
                guesses.append(f"{leaf.path}: all zeros, a gradient never filled in?")
        if guesses:
            return "; ".join(guesses)
        return f"the gradient of {', '.join(wrong)} is wrong; the others agree"

    # -- for logs -----------------------------------------------------------------------------

    def to_event(self) -> dict[str, Any]:
        """The check as flat key/value pairs for a structured log event (no whole arrays)."""
        # Who and what first: renderers that keep insertion order show these at a glance.
        event: dict[str, Any] = {}
        if self.function is not None:
            event["function"] = self.function
        if self.call_index is not None:
            event["call_index"] = self.call_index
        event |= {
            "verdict": self.verdict,
            "passed": self.passed,
            "relative_error": self.relative_error,
            "threshold": self.threshold,
            "method": self.method,
            "epsilon": self.epsilon,
            "n_evals": self.n_evals,
            "duration_s": round(self.duration_s, 6),
            "shape": list(self.shape),
            "max_abs_error": self.max_abs_error,
            "n_mismatched": self.n_mismatched,
        }
        if self.worst:
            w = self.worst[0]
            if self.tree is not None:
                leaf, index = self.tree.locate(w.index[0])
                event["worst_leaf"] = leaf.path
                event["worst_index"] = list(index)
            else:
                event["worst_index"] = list(w.index)
            event["worst_analytical"] = w.analytical
            event["worst_numerical"] = w.numerical
        if self.leaf_errors:
            event["leaf_errors"] = dict(self.leaf_errors[:32])
        if self.where:
            event["where"] = self.where
        if self.precision != "float64":
            event["precision"] = self.precision
        if self.strategy:
            event["strategy"] = self.strategy
            event["n_checked"] = self.n_checked
        if self.kinks:
            event["n_kinks"] = len(self.kinks)
            event["kinks"] = [list(k) for k in self.kinks[:8]]
        if self.agreement is not None:
            event["agreement"] = self.agreement
        if self.criterion is not None:
            event["criterion"] = self.criterion
        if self.cause is not None:
            event["cause"] = self.cause
        if self.resolution is not None:
            event["resolution"] = self.resolution
        if self.notes:
            event["explanation"] = " | ".join(self.notes)
        if self.failed:
            hint = self.hint()
            if hint:
                event["hint"] = hint
        return event


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _scale_hint(c: float, where: str = "every coordinate") -> str:
    scaled = f"analytical = {c:.4g} x numerical in {where}"
    if abs(c + 1.0) < 1e-3:
        return f"{scaled}: a flipped sign"
    sign = "a flipped sign and " if c < 0 else ""
    factor = abs(c)
    if factor < 1e-300:  # a non-zero but negligible analytical gradient (5e-324 against 1)
        return f"{scaled}: the analytical gradient is negligible, a missing term?"
    if factor < 1.0:
        return f"{scaled}: {sign}a missing factor of {1.0 / factor:.4g}"
    return f"{scaled}: {sign}an extra factor of {factor:.4g}"
