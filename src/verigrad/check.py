"""One-shot gradient checks, and the check runner the decorator shares."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, Literal

import numpy as np

from ._arrays import _real_array, gradient_array, working_copy
from ._backend import Workspace, array_kind, host_array, host_view, inspect_array
from ._coordinates import (
    MARGIN,
    NOISE_BOUND,
    Coordinates,
    allowance,
    estimate,
    examine,
    kink_suspects,
    own_scale_truncation,
)
from ._decide import decide
from ._directional import DirectionalOutcome, directional_check
from ._evaluate import Evaluator, Shifter, Subspace
from ._noise import EPS64, Noise, measure_noise
from ._options import CheckConfig
from ._progress import INSTALL_HINT, estimated_evals, progress_bar, tqdm_available
from ._schemes import Scheme, scheme
from ._structured import Structured, _framework_leaves, framework_structure, leaf_library
from ._tree import Tree, TreeLoss, is_tree
from ._typing import FAILURES, ArrayLike, Epsilon, FloatArray, Method
from .compare import GRAD_LABEL, Coordinate, Judgement, _nonfinite_where, _relative_error, judge
from .estimators import DEFAULT_BATCH_BYTES, complex_step, step_sizes
from .exceptions import (
    GradientMismatchError,
    InconclusiveCheckError,
    InvalidArgumentError,
    InvalidTypeError,
)
from .result import CheckResult

__all__ = ["assert_gradient", "check_gradient"]


#: method="auto" checks every coordinate up to this size, and beyond it random directions plus
#: a random subset of coordinates, whose cost does not grow with the size.
AUTO_FULL_MAX = 2_000
#: At most this many suspicious coordinates get a sharper second estimate (6 evaluations each).
MAX_EXAMINED = 2_048


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a check will do, decided from its options and the parameter's size alone."""

    method: str  # what the result reports
    scheme: str  # the coordinate scheme of the first estimate
    partial: bool  # directions and/or a subset of coordinates instead of every coordinate
    directions: bool


def make_plan(config: CheckConfig, size: int) -> Plan:
    """Plan a check of ``size`` coordinates with ``config``."""
    m = config.method
    if m in ("directional", "coordinates") or (m == "auto" and size > AUTO_FULL_MAX):
        return Plan(m, "central", True, m in ("auto", "directional"))
    if m == "auto":
        return Plan("central", "central", False, False)
    return Plan(m, "central" if m == "complex" else m, False, False)


def _steps(work: FloatArray, epsilon: Epsilon, s: Scheme, eps: float) -> FloatArray:
    """The step rule: ``eps**p * max(|x_i|, 1)`` with the scheme's exponent, or a fixed step."""
    if epsilon == "auto":
        return eps**s.step_exponent * np.maximum(np.abs(work), 1.0)  # type: ignore[no-any-return]
    return np.full(work.shape, float(epsilon))


def run_check(
    loss_at: Callable[[FloatArray], Any],
    x: Any,
    analytical: Any,
    config: CheckConfig,
    *,
    seed: Any = None,
    pick: Callable[[int, int], np.ndarray] | None = None,
    loss_name: str = "loss",
    param_name: str = "x",
    function: str | None = None,
    call_index: int | None = None,
) -> CheckResult:
    """Check ``analytical`` against finite differences of ``loss_at`` around ``x``.

    ``config`` says how (validated on its construction). ``seed`` seeds the check's own
    generator (the noise probe's direction, random directions and coordinates); ``pick(n, m)``,
    if given, chooses the ``m`` coordinates of a partial check instead (the decorator's
    rotation). ``loss_at`` is called with a private float64 working copy shaped like ``x``;
    ``x`` and ``analytical`` are only read.

    The check runs as a pipeline: plan (what to estimate), probe (the loss at ``x``, its
    measured noise and precision, whether it writes into its input), estimate (every
    coordinate, or random directions and a subset), examine (a sharper estimate for the
    coordinates and directions that disagree, a narrower one for suspected kinks), decide
    (:func:`verigrad._decide.decide`, the one home of the verdict).

    A structured ``x`` (nested dicts, lists, tuples of arrays and numbers) is checked as one
    flat vector of its leaves; the result names coordinates by leaf and has per-leaf errors.

    A torch tensor, JAX array or CuPy array ``x`` (or a structure of them: a module's
    ``named_parameters()`` or ``state_dict()``, a JAX pytree) is checked on a private copy in
    its own library and on its device (:class:`._backend.Workspace`): ``loss_at`` receives
    that library's arrays, in float64 where the library allows it, or in the parameter's own
    dtype when the loss refuses float64 input. Torch's autograd is off while the loss is
    evaluated.
    """
    options = (seed, pick, loss_name, param_name, function, call_index)
    if framework_structure(x):
        structured = Structured.of(x, param_name, dtype="auto")
        tree, grad, loss = (
            structured.tree,
            structured.gradient(analytical),
            structured.loss(loss_at),
        )
        held = [structured.workspace]
        del structured  # _checked drops the workspace before the result is built
        return _with_tree(_checked(loss, None, grad, config, options, held), tree)
    if array_kind(x) != "numpy":
        held = [Workspace.of(x, param_name, dtype="auto")]
        return _checked(loss_at, x, analytical, config, options, held)
    if is_tree(x):
        tree, flat = Tree.of(x, param_name)
        result = run_check(
            TreeLoss(loss_at, tree),
            flat,
            tree.gradient(analytical),
            config,
            seed=seed,
            pick=pick,
            loss_name=loss_name,
            param_name=param_name,
            function=function,
            call_index=call_index,
        )
        return _with_tree(result, tree)
    return _checked(loss_at, x, analytical, config, options, [])


def _checked(
    loss_at: Callable[[Any], Any],
    x: Any,
    analytical: Any,
    config: CheckConfig,
    options: tuple[Any, ...],
    held: list[Workspace],
) -> CheckResult:
    """Run the pipeline and build the result. ``held`` holds a framework parameter's
    workspace, if any: it is emptied once the pipeline has run, so that the workspace's
    copies are gone when the result's arrays are built (as numpy's working copy is)."""
    space = held.pop() if held else None
    # The check steps where the loss may be undefined (log or sqrt just past 0): the NaN or
    # inf it gets there is judged by the check, not reported by numpy once per evaluation.
    grad_off = contextlib.nullcontext() if space is None else space.evaluating()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"), grad_off:
        seed, pick, loss_name, param_name, function, call_index = options
        build = _run(
            loss_at,
            x,
            analytical,
            config,
            seed,
            pick,
            loss_name,
            param_name,
            function,
            call_index,
            space,
        )
        del space
        # Built once _run has returned and its working copy of x is gone: the result's arrays
        # then take the memory the copy took.
        return build()


def _run(
    loss_at: Callable[[FloatArray], Any],
    x: Any,
    analytical: Any,
    config: CheckConfig,
    seed: Any,
    pick: Callable[[int, int], np.ndarray] | None,
    loss_name: str,
    param_name: str,
    function: str | None,
    call_index: int | None,
    ws: Workspace | None = None,
) -> Callable[[], CheckResult]:
    """The check of an array parameter (see :func:`run_check`): what builds its result.

    ``ws``: a framework parameter's workspace (``x`` is then not read); None for numpy.
    """
    start = time.perf_counter()
    if ws is None:
        work = working_copy(x, param_name)  # first: refuses a ragged list before asarray sees it
        dtype = str(x.dtype) if isinstance(x, np.ndarray) else str(np.asarray(x).dtype)
    else:
        # The pipeline reads a float64 host copy of the point: the workspace's own host array
        # in float64 (for a torch CPU tensor the very memory the loss's tensor shares, moved in
        # place; for a device array a spare copy that nothing else reads).
        if ws.dtype == np.float64:
            work = ws.host
        else:
            work = np.array(ws.base, dtype=np.float64, order="C", copy=True)
        dtype = ws.info.dtype
        analytical = host_view(analytical)  # gradient_array copies it where small
    grad = gradient_array(analytical, work.shape, "analytical gradient")
    if config.vectorized == "vmap" and (ws is None or ws.info.kind not in ("torch", "jax")):
        lib = "a numpy" if ws is None else f"a {ws.info.kind}"
        raise InvalidArgumentError(
            f"vectorized='vmap' maps a loss written for one point over batches with "
            f"torch.func.vmap or jax.vmap, but {param_name} is {lib} array: write the loss "
            "for a batch of points and pass vectorized=True"
        )
    plan = make_plan(config, work.size)
    ev = Evaluator(
        loss_at,
        loss_name,
        point_nbytes=work.nbytes,
        vectorized=config.vectorized,
        batch_bytes=config.batch_bytes,
        executor=config.executor,
        workspace=ws,
    )
    record = _Record(work, grad, config, plan, start, dtype, function, call_index)
    if not np.isfinite(work).all():
        first_bad = np.flatnonzero(~np.isfinite(work.reshape(-1)))
        index = tuple(int(k) for k in np.unravel_index(int(first_bad[0]), work.shape))
        return record.nonfinite(
            ev,
            None,
            f"the parameter {param_name} is not finite at {first_bad.size} coordinate(s), "
            f"first {index}",
        )

    probed = _probe(ev, work, grad, record, seed)
    if not isinstance(probed, tuple):
        return probed
    f0, noise = probed
    threshold = record.threshold
    rng = np.random.default_rng(seed)

    # -- estimate --------------------------------------------------------------------------------
    outcome: DirectionalOutcome | None = None
    checked: np.ndarray | None = None
    if plan.partial:
        outcome, checked, record.strategy = _choose_partial(
            ev, work, grad, f0, config, plan, noise, threshold, rng, pick
        )
        record.outcome = outcome
    s = scheme(plan.scheme)
    # The coordinate stages work on the coordinates they estimate: all of them, or, for a
    # partial check, a compact problem of the checked ones (position k is flat index
    # checked[k]), so that no parameter-sized array is built for a few dozen estimates.
    space: Shifter = ev if checked is None else Subspace(ev, work, checked)
    cwork = work if checked is None else work.reshape(-1)[checked]
    cgrad = grad if checked is None else grad.reshape(-1)[checked]
    coords = None
    if plan.method == "complex":
        coords = _complex_or_none(loss_at, work, config.epsilon, record.notes, ev, ws)
        if coords is None:
            record.method = "richardson"
            s = scheme("richardson")
    if coords is None:
        coords = estimate(
            space, cwork, f0, s, _steps(cwork, config.epsilon, s, noise.step_eps), noise
        )
    if _identity_cache(ev, work, coords, checked):
        ev.use_fresh_copies()
        record.notes.append(
            "the loss returns a cached value when it is handed the same array object again (a "
            "cache by identity): each evaluation got its own copy of the point"
        )
        coords = estimate(
            space, cwork, f0, s, _steps(cwork, config.epsilon, s, noise.step_eps), noise
        )
    if ev.n_nonfinite:
        own_scale_truncation(coords, cwork, f0)
    eps_a = float(np.finfo(analytical.dtype).eps) if _is_float(analytical) else EPS64
    coords.allowance = allowance(coords, cwork, f0, max(EPS64, eps_a))
    record.coords = coords
    record.checked = checked

    f_again = ev.at(work) if work.size else f0
    # A NaN or inf on the second evaluation is a change too: never a pass.
    if f_again != f0 and not (
        math.isfinite(f_again) and abs(f_again - f0) <= 64 * EPS64 * max(abs(f0), abs(f_again))
    ):
        return record.nondeterministic(
            ev,
            f0,
            f"the loss gave {f0!r} and then {f_again!r} at the same point: it is not a function "
            "of x alone (dropout, sampling, a random batch, hidden state). Fix the seed or the "
            "batch for the check; this says nothing about the gradient",
        )
    if outcome is not None and outcome.count("domain") == len(outcome.labels) and outcome.labels:
        return record.nonfinite_near(ev, f0)
    unresolved_domain = sum(1 for label in coords.labels.values() if label == "domain")
    if int((~np.isfinite(coords.values)).sum()) > unresolved_domain:
        return record.finish(ev, f0)  # NaN estimates not explained by a domain edge

    # -- examine ---------------------------------------------------------------------------------
    idx = np.arange(coords.values.size, dtype=np.intp)
    flat_a = cgrad.reshape(-1)
    _widen_flat(space, cwork, f0, coords, flat_a, noise, idx)
    kinky = kink_suspects(coords, f0, noise, flat_a)
    candidates, unexamined = _candidates(coords, flat_a, idx, threshold)
    if candidates.size or kinky.size:
        examine(space, cwork, f0, coords, cgrad, noise, threshold, candidates, kinky)
    again = ev.recheck(work)
    if again is not None and math.isfinite(again):
        return record.nondeterministic(
            ev,
            f0,
            f"the loss returned {again!r} at a point near x where it had returned NaN or inf "
            "before: it is not a function of x alone (hidden state, a race, uninitialised "
            "memory); this says nothing about the gradient",
        )
    if ev.n_nonfinite:
        record.notes.append(
            f"the loss is NaN or inf at {ev.n_nonfinite} of the points evaluated near x (its "
            "domain ends close to x, and stays so when asked again): the check stepped around "
            "them, keeping its stencils where the loss is finite"
        )
        record.cause = "domain"
    decision = decide(
        coords, cgrad, idx, threshold, noise, outcome, config.n_directions, unexamined, f0, cwork
    )
    record.notes.extend(decision.notes)
    # A mismatch is explained by the gradient itself: no cause in the loss is named for it.
    record.cause = None if decision.verdict == "mismatch" else decision.cause or record.cause
    record.criterion = decision.criterion
    record.resolution = decision.resolution
    return record.finish(
        ev,
        f0,
        verdict=decision.verdict,
        kinks=_flat_indices(decision.kinks, checked),
        bad=_flat_indices(decision.bad, checked),
    )


def _flat_indices(positions: tuple[int, ...], checked: np.ndarray | None) -> tuple[int, ...]:
    """Flat indices into the parameter of positions in the coordinate stages' arrays."""
    return positions if checked is None else tuple(int(checked[k]) for k in positions)


def _probe(
    ev: Evaluator, work: FloatArray, grad: FloatArray, record: _Record, seed: Any
) -> tuple[float, Noise] | Callable[[], CheckResult]:
    """The loss at ``x`` (and whether it writes into its input) and its measured noise; the
    threshold follows a float32 loss's precision. A result instead when the check ends here."""
    # The loss gets a copy first: one that writes into its input shows it without harm.
    first = work.copy()
    try:
        f0 = ev.at(first)
    except Exception:
        # A torch loss whose own tensors are float32 refuses a float64 point: it gets points
        # in the parameter's dtype instead (the check then follows float32's precision).
        if not ev.use_native_dtype():
            raise
        ev.n_evals -= 1
        assert ev.workspace is not None
        record.notes.append(
            f"the loss raised on a float64 point: it was evaluated in {ev.workspace.dtype}, "
            "the parameter's own dtype"
        )
        f0 = ev.at(first)
    wrote = not np.array_equal(first, work)
    del first
    if wrote:
        ev.use_fresh_copies()
        record.notes.append(
            "the loss writes into the array it is given: each evaluation got its own copy of the "
            "point (one copy of the parameter per evaluation)"
        )
        f0 = ev.at(work)
    if not math.isfinite(f0):
        return record.nonfinite(ev, f0, f"the loss at x itself is {f0}")
    if not np.isfinite(grad).all():
        if record.plan.partial:
            record.strategy = f"{record.config.method} on {work.size:,} coordinates: not run"
        return record.finish(ev, f0)
    # The probe's direction comes from its own fixed-seed generator: the same check gives the
    # same numbers every time (and serially, in batches or on an executor alike).
    noise = measure_noise(ev, work, f0, np.random.default_rng(0 if seed is None else seed))
    record.noise = noise
    if noise.precision == "float32":
        # A float32 loss cannot be checked to float64's tolerance: the threshold follows the
        # best relative accuracy of central differences at its precision.
        record.threshold = max(record.config.rtol, 2.0 * noise.eps ** (2.0 / 3.0))
        record.notes.append(
            f"the loss computes in float32 precision (its values scatter by "
            f"{noise.relative:.0e} of their size): steps and tolerance follow that precision "
            "(compute the loss in float64 for a sharper check)"
        )
    elif noise.precision == "noisy":
        record.notes.append(
            f"the loss's values scatter by {noise.relative:.0e} of their size around a smooth "
            "curve, more than rounding explains: error bars and second looks follow that scatter"
        )
    return f0, noise


def _candidates(
    c: Coordinates, a: FloatArray, idx: np.ndarray, threshold: float
) -> tuple[np.ndarray, int]:
    """The coordinates that get a second look, most suspicious first, and how many more would
    have (beyond ``MAX_EXAMINED``).

    When the relative error fails, every coordinate that fails it relative to itself; when it
    passes, those wrong beyond their own error bar too (the "coordinate" criterion).
    """
    finite = idx[np.isfinite(c.values[idx])]
    with np.errstate(over="ignore", invalid="ignore"):
        diff = np.abs(a[finite] - c.values[finite])
        local = threshold * (np.abs(a[finite]) + np.abs(c.values[finite]))
        bars = c.errors[finite] + (0.0 if c.allowance is None else c.allowance[finite])
        score = diff / np.maximum(bars, np.finfo(float).tiny)
    suspicious = (diff > local) & (diff > 0)
    if _relative_error(c.values[finite], a[finite]) <= threshold:
        suspicious &= score > MARGIN
    ranked = finite[suspicious][np.argsort(-score[suspicious], kind="stable")]
    return ranked[:MAX_EXAMINED], ranked.size - min(ranked.size, MAX_EXAMINED)


def _is_float(value: Any) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and np.issubdtype(dtype, np.floating)


def _flat_coordinates(c: Coordinates, f0: float, grad: FloatArray, idx: np.ndarray) -> np.ndarray:
    """Coordinates over whose whole stencil the loss did not change, where the gradient is not 0."""
    fp, fm = c.f_plus[idx], c.f_minus[idx]
    a = grad.reshape(-1)[idx]
    flat: np.ndarray = idx[(fp == f0) & (fm == f0) & (a != 0.0)]
    return flat


def _identity_cache(
    ev: Evaluator, work: FloatArray, c: Coordinates, checked: np.ndarray | None
) -> bool:
    """Whether the loss answers the same array object from a cache: the working array moved in
    place gives another value than the same point as a fresh array. Looked at only when most
    stencils show no change at all (``f(x + h e_i) == f(x - h e_i)``). Position ``k`` of ``c``
    is flat index ``checked[k]`` (``k`` when ``checked`` is None)."""
    same = np.flatnonzero(c.f_plus == c.f_minus)
    if same.size == 0 or same.size < max(1, c.values.size // 2) or ev.fresh:
        return False
    k = int(same[0])
    i = k if checked is None else int(checked[k])
    flat = work.reshape(-1)
    v = float(flat[i])
    flat[i] = v + 0.5 * c.steps[k]  # a point no stencil has visited: no cache holds it yet
    try:
        in_place = ev.at(work)
        fresh = ev.at(work.copy())
    finally:
        flat[i] = v
    return math.isfinite(in_place) and math.isfinite(fresh) and in_place != fresh


def _widen_flat(
    ev: Shifter,
    work: FloatArray,
    f0: float,
    c: Coordinates,
    a: FloatArray,
    noise: Noise,
    idx: np.ndarray,
) -> None:
    """A stencil over which the loss does not change never confirms a derivative of 0: such
    coordinates are estimated again at 8x and 64x the step; where the loss still does not
    change, they are labelled ``"flat"`` (unless the gradient claims a change so large that the
    loss's measured noise would have shown it: then the gradient is wrong there)."""
    flat = _flat_coordinates(c, f0, a, idx)
    if flat.size == 0:
        return
    central = scheme("central")
    for factor in (8.0, 64.0):
        if flat.size == 0:
            break
        h = c.steps[flat] * factor
        vals, offs = ev.shifted(work, flat.tolist(), h.tolist(), central.multipliers)
        moved = (vals[:, 0] != f0) | (vals[:, 1] != f0)
        values = central.combine(vals, offs, f0)
        ok = moved & np.isfinite(values)
        done = flat[ok]
        c.values[done] = values[ok]
        c.steps[done] = np.abs(offs[ok, 0])
        c.errors[done] = NOISE_BOUND * noise.level / c.steps[done] + np.abs(
            vals[ok, 0] - 2.0 * f0 + vals[ok, 1]
        ) / (6.0 * np.maximum(np.abs(work.reshape(-1)[done]), 1.0))
        c.f_plus[done], c.f_minus[done] = vals[ok, 0], vals[ok, 1]
        flat = flat[~ok]
        last_h = h[~ok]
    for k, i in enumerate(flat.tolist()):
        # The change the gradient predicts over the widest stencil, against the loss's noise.
        seen = max(abs(f0), abs(c.f_plus[i]), abs(c.f_minus[i]))
        level = NOISE_BOUND * max(noise.level, 0.25 * EPS64 * seen)
        claimed = abs(a[i]) * last_h[k]
        c.values[i], c.errors[i] = 0.0, level / last_h[k]
        if claimed <= level:
            continue  # a gradient too small to move the loss: 0 agrees within the error bar
        c.labels[i] = "bad" if noise.cause is None and claimed > MARGIN * level else "flat"


class _Record:
    """Collects what the stages learn and builds the frozen :class:`CheckResult`."""

    def __init__(
        self,
        work: FloatArray,
        grad: FloatArray,
        config: CheckConfig,
        plan: Plan,
        start: float,
        dtype: str,
        function: str | None,
        call_index: int | None,
    ) -> None:
        # Not the working copy itself: a result is built after it is gone (see run_check).
        self.shape, self.size = work.shape, work.size
        self.grad, self.config, self.plan = grad, config, plan
        self.start, self.dtype, self.function, self.call_index = start, dtype, function, call_index
        self.method = "auto" if config.method == "auto" else plan.method
        if config.method == "auto" and not plan.partial:
            self.method = "central"
        self.notes: list[str] = []
        self.noise: Noise | None = None
        self.threshold = config.rtol
        self.strategy: str | None = None
        self.outcome: DirectionalOutcome | None = None
        self.coords: Coordinates | None = None
        self.checked: np.ndarray | None = None
        self.cause: str | None = None
        self.criterion: str | None = None
        self.resolution: float | None = None

    def nonfinite(self, ev: Evaluator, f0: float | None, where: str) -> Callable[[], CheckResult]:
        return self.finish(ev, f0, where=where)

    def nondeterministic(self, ev: Evaluator, f0: float, why: str) -> Callable[[], CheckResult]:
        self.notes.append(why)
        self.cause = "nondeterminism"
        return self.finish(ev, f0, verdict="nondeterministic")

    def nonfinite_near(self, ev: Evaluator, f0: float) -> Callable[[], CheckResult]:
        return self.finish(ev, f0, where="the loss is not finite near x along a random direction")

    def finish(
        self,
        ev: Evaluator,
        f0: float | None,
        where: str | None = None,
        verdict: str | None = None,
        kinks: tuple[int, ...] = (),
        bad: tuple[int, ...] = (),
    ) -> Callable[[], CheckResult]:
        """What builds the result (called once the working copy of x is gone)."""
        n_evals = ev.n_evals
        return functools.partial(self._build, n_evals, f0, where, verdict, kinks, bad)

    def _build(
        self,
        n_evals: int,
        f0: float | None,
        where: str | None,
        verdict: str | None,
        kinks: tuple[int, ...],
        bad: tuple[int, ...],
    ) -> CheckResult:
        shape = self.shape
        grad = self.grad
        c = self.coords
        checked = self.checked

        # The coordinate stages' numbers as they are: over every coordinate, or over the
        # checked ones of a partial check (the result builds whole arrays on request).
        nan = np.broadcast_to(np.float64(np.nan), shape if checked is None else checked.shape)
        numerical = nan if c is None else c.values.reshape(nan.shape).copy()
        errors = None
        if c is not None:
            errors = (c.errors + (0.0 if c.allowance is None else c.allowance)).reshape(nan.shape)
        steps = nan if c is None else c.steps.reshape(nan.shape).copy()
        j = _judge_subset(numerical, grad, self.threshold, checked)
        if where:
            # The numerical gradient was never computed: do not blame "the loss near x" for it.
            where = "; ".join(w for w in (where, _nonfinite_where(grad, GRAD_LABEL)) if w)
            verdict = "nonfinite"
        elif verdict is None or not np.isfinite(grad).all():
            # A NaN or inf where a subset check estimated nothing is never a pass either.
            verdict, where = "nonfinite", j.where or _nonfinite_where(grad, GRAD_LABEL)
        kink_fails = self.config.kink_fails
        failed = verdict in FAILURES or (verdict == "kink" and kink_fails)
        passed = verdict == "pass" or (verdict == "kink" and not kink_fails)
        relative = math.inf if verdict == "nonfinite" else j.relative_error

        def where_is(flat: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
            return tuple(tuple(int(k) for k in np.unravel_index(i, shape)) for i in flat)

        outcome = self.outcome
        noise = self.noise
        return CheckResult(
            passed=passed,
            failed=failed,
            verdict=verdict,  # type: ignore[arg-type]
            relative_error=relative,
            threshold=self.threshold,
            _numerical=numerical,
            analytical=grad,
            max_abs_error=j.max_abs_error,
            worst=j.worst,
            method=self.method,  # type: ignore[arg-type]
            epsilon=self.config.epsilon,
            _steps=steps,
            n_evals=n_evals,
            duration_s=time.perf_counter() - self.start,
            shape=shape,
            dtype=self.dtype,
            n_mismatched=max(j.n_mismatched, len(bad)),
            where=where,
            loss_value=f0,
            function=self.function,
            call_index=self.call_index,
            _errors=errors,
            precision=noise.precision if noise is not None else "float64",
            kinks=where_is(kinks),
            mismatched=where_is(bad),
            notes=tuple(self.notes),
            strategy=self.strategy,
            checked_indices=checked,
            n_checked=int(checked.size) if checked is not None else self.size,
            directions=(
                tuple(zip(outcome.numerical, outcome.analytical, outcome.errors, strict=True))
                if outcome is not None
                else ()
            ),
            agreement=(
                self.criterion if passed and self.criterion in ("relative", "absolute") else None
            ),
            resolution=self.resolution,
            cause=self.cause,
            criterion=self.criterion if failed else None,
            noise=noise.level if noise is not None else None,
        )


def _with_tree(result: CheckResult, tree: Tree) -> CheckResult:
    dtypes = sorted({leaf.dtype for leaf in tree.leaves})
    return dataclasses.replace(
        result,
        tree=tree,
        dtype=dtypes[0] if len(dtypes) == 1 else "mixed (" + ", ".join(dtypes) + ")",
        leaf_errors=tree.leaf_errors(
            result._numerical,  # compact for a partial check: see leaf_errors
            result.analytical,
            result.checked_indices,
        ),
    )


def _judge_subset(
    numerical: FloatArray, grad: FloatArray, threshold: float, checked: np.ndarray | None
) -> Judgement:
    """:func:`judge` over the coordinates that were estimated, with indices into the whole:
    ``numerical`` holds the estimates of ``checked`` (flat indices), or of every coordinate
    when ``checked`` is None."""
    if checked is None:
        return judge(numerical, grad, threshold)
    j = judge(numerical, grad.reshape(-1)[checked], threshold)
    shape = grad.shape
    worst = tuple(
        Coordinate(
            tuple(int(c) for c in np.unravel_index(int(checked[w.index[0]]), shape)),
            w.analytical,
            w.numerical,
        )
        for w in j.worst
    )
    return dataclasses.replace(j, worst=worst)


def _choose_partial(
    ev: Evaluator,
    work: FloatArray,
    grad: FloatArray,
    f0: float,
    config: CheckConfig,
    plan: Plan,
    noise: Noise,
    threshold: float,
    rng: np.random.Generator,
    pick: Callable[[int, int], np.ndarray] | None,
) -> tuple[DirectionalOutcome | None, np.ndarray, str]:
    """For a check that does not estimate every coordinate: the random directions (method
    "directional", or "auto" on a large parameter), the coordinates to estimate one by one
    (random or rotating ones, plus those the directions localized), and the strategy in words."""
    n = work.size
    outcome = None
    picks = np.empty(0, dtype=np.intp)
    parts = []
    if plan.directions:
        before = ev.n_evals
        outcome = directional_check(
            ev,
            work,
            grad,
            f0,
            k=config.n_directions,
            rng=rng,
            noise=noise,
            margin=MARGIN,
            threshold=threshold,
            gaussian=config.directions == "gaussian",
        )
        spent = ev.n_evals - before
        parts.append(f"{config.n_directions} random directions ({spent} evaluations)")
    if config.method in ("auto", "coordinates"):
        m = min(n, config.n_coordinates)
        picks = rng.choice(n, size=m, replace=False) if pick is None else pick(n, m)
        parts.append(f"{picks.size} {'random' if pick is None else 'rotating'} coordinates")
    localized = np.asarray(outcome.localized if outcome else [], dtype=np.intp)
    checked = np.union1d(picks, localized).astype(np.intp)
    return outcome, checked, f"{config.method} on {n:,} coordinates: " + " and ".join(parts)


def _complex_or_none(
    loss_at: Callable[[Any], Any],
    work: FloatArray,
    epsilon: Epsilon,
    notes: list[str],
    ev: Evaluator,
    space: Workspace | None = None,
) -> Coordinates | None:
    """The complex-step estimate, or None (with a note) when the loss cannot take it. A
    framework loss (``space``) gets complex arrays of its library, on its device."""
    convert = None if space is None else _complex_converter(space)

    def f(point: Any) -> complex:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            value = loss_at(point if convert is None else convert(point))
        arr = np.asarray(value if convert is None else host_array(value))
        if arr.dtype.kind != "c" or arr.size != 1:
            raise _NotComplex(f"it returned {arr.dtype} for a complex input")
        return complex(arr.reshape(()))

    steps = step_sizes(work, epsilon, "complex")
    try:
        est = complex_step(f, work, steps)
        ev.n_evals += est.n_evals
    except (_NotComplex, TypeError, ValueError, np.exceptions.ComplexWarning) as exc:
        reason = str(exc).split("\n")[0] or type(exc).__name__
        notes.append(
            f"method 'complex' needs a loss that evaluates complex input faithfully ({reason}); "
            "used 'richardson' instead"
        )
        return None
    values = est.values.reshape(-1)
    nan = np.full(values.size, np.nan)
    return Coordinates(
        values=values.copy(),
        errors=4.0 * EPS64 * np.abs(values) + np.finfo(float).tiny,
        steps=est.steps.reshape(-1).copy(),
        f_plus=nan,
        f_minus=nan.copy(),
        scheme="complex",
    )


class _NotComplex(Exception):
    pass


def _complex_converter(space: Workspace) -> Callable[[Any], Any]:
    """``complex128 host point -> the same in the parameter's library, on its device``."""
    from ._backend import _lib

    kind, device = space.info.kind, space.info.device
    if kind == "torch":
        torch = _lib("torch")
        return lambda p: torch.from_numpy(p).to(device)
    if kind == "jax":
        jax = _lib("jax")
        return lambda p: jax.device_put(np.array(p, copy=True), device)
    cupy = _lib("cupy")
    return lambda p: cupy.asarray(p)


def _validate_point(x: Any, name: str) -> None:
    """Refuse a bad ``x`` (naming it) before a gradient function sees it."""
    if framework_structure(x):
        leaf_library(x, name)
    elif array_kind(x) != "numpy":
        inspect_array(x, name)
    elif is_tree(x):
        Tree.of(x, name)
    else:
        _real_array(x, name, "the parameter")


def _size(x: Any) -> int:
    """The number of coordinates of a parameter (for a progress bar's total)."""
    if framework_structure(x):
        return sum(math.prod(inspect_array(leaf).shape) for _, leaf in _framework_leaves(x))
    if array_kind(x) != "numpy":
        return math.prod(inspect_array(x).shape)
    return Tree.of(x)[0].size if is_tree(x) else int(np.size(x))


def _loss_at(
    loss: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Callable[[FloatArray], Any]:
    if not args and not kwargs:
        return loss  # one call layer less per evaluation
    return _WithArgs(loss, tuple(args), dict(kwargs))


class _WithArgs:
    """``x -> loss(x, *args, **kwargs)``, picklable when its parts are (for process pools)."""

    def __init__(self, loss: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.loss, self.args, self.kwargs = loss, args, kwargs

    def __call__(self, point: FloatArray) -> Any:
        return self.loss(point, *self.args, **self.kwargs)


def _name(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func))


def check_gradient(
    loss: Callable[..., Any],
    x: ArrayLike,
    analytical: ArrayLike | Callable[..., Any],
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    method: Method = "auto",
    epsilon: Epsilon = "auto",
    rtol: float = 1e-5,
    seed: int | None = None,
    kink_fails: bool = False,
    n_directions: int = 8,
    n_coordinates: int = 32,
    directions: Literal["rademacher", "gaussian"] = "rademacher",
    vectorized: bool | Literal["vmap"] = False,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    executor: Executor | None = None,
    progress: bool = False,
) -> CheckResult:
    """Compare an analytical gradient with finite differences of the loss at ``x``.

    Never raises on a mismatch: inspect ``result.passed``, or use :func:`assert_gradient`.

    Args:
        loss: called as ``loss(x, *args, **kwargs)``; must return a real scalar.
        x: the parameter point: an array, or nested dicts, lists and tuples of arrays and
            numbers (checked leaf by leaf; see ``CheckResult.leaf_errors``). It is left
            bit-for-bit unchanged.
        analytical: the gradient at ``x`` (shaped like ``x``, or in the same structure), or a
            function called as ``analytical(x, *args, **kwargs)`` that returns it.
        args: further positional arguments for ``loss`` (and ``analytical`` if callable).
        kwargs: further keyword arguments for ``loss`` (and ``analytical`` if callable).
        method: ``"auto"`` (the default: central differences with an error-aware verdict),
            ``"central"``, ``"forward"``, ``"backward"``, ``"richardson"`` (extrapolated central
            differences, error O(h^4), 4 evaluations per coordinate) or ``"complex"`` (the
            complex step, exact to rounding for a loss that takes complex input; otherwise
            ``"richardson"`` is used and the result's notes say why), ``"directional"``
            (``n_directions`` random directions compared with ``u . g``, each suspicious one
            bisected down to the coordinates responsible: a cost that does not grow with the
            size) or ``"coordinates"`` (``n_coordinates`` random coordinates). ``"auto"`` checks
            every coordinate up to 2,000 parameters and beyond that combines directions and
            coordinates; ``result.strategy`` says what was done.
        epsilon: a fixed absolute step, or ``"auto"`` (a step scaled to each coordinate).
        rtol: the largest relative error that passes.
        seed: seed of the check's own generator, which draws the random directions and
            coordinates; it never touches global random state.
        n_directions: random directions for ``"directional"`` and large ``"auto"`` checks.
        n_coordinates: random coordinates for ``"coordinates"`` and large ``"auto"`` checks.
        directions: ``"rademacher"`` (random signs) or ``"gaussian"`` direction entries, each
            scaled by ``max(|x_i|, 1)``.
        vectorized: the loss accepts many points stacked along a new leading axis, shape
            ``(B, *x.shape)``, and returns one value per point, shape ``(B,)``; the perturbed
            points of a coordinate-wise check are then evaluated in batches. ``"vmap"``: the
            loss is written for one point, and a torch or JAX parameter's batches are mapped
            over it by ``torch.func.vmap`` or ``jax.vmap``.
        batch_bytes: the memory for one batch of points (default 2 MiB).
        executor: a :class:`concurrent.futures.Executor` (thread or process pool, loky,
            ``dask.distributed.Client.get_executor()``, ...) to spread the coordinates of a
            check over, in chunks assembled in order. Process and cluster executors need a
            picklable loss (defined at module level); a loss that is not gets a clear error.
        kink_fails: report a kink (the loss not differentiable inside the stencil, the gradient
            a valid subgradient there) as a failure instead of a pass.
        progress: draw a progress bar of loss evaluations on stderr while the check runs
            (needs tqdm, ``pip install "verigrad[progress]"``; not with ``executor``). Off by
            default: a library call draws nothing unless asked.

    Returns:
        A :class:`CheckResult`.

    Raises:
        InvalidArgumentError: a bad option, a gradient shaped unlike ``x``, a non-scalar loss.
        InvalidTypeError: non-numeric input, a loss returning a non-number, a ``None`` gradient.
        Exception: whatever ``loss`` or ``analytical`` raise propagates; ``x`` is left unchanged.
    """
    config = CheckConfig(
        method=method,
        epsilon=epsilon,
        rtol=rtol,
        kink_fails=kink_fails,
        n_directions=n_directions,
        n_coordinates=n_coordinates,
        directions=directions,
        vectorized=vectorized,
        batch_bytes=batch_bytes,
        executor=executor,
    )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise InvalidTypeError(f"seed must be an int or None, not {type(seed).__name__}")
    if not callable(loss):
        raise InvalidTypeError(f"loss must be callable, not {type(loss).__name__}")
    if callable(x) and not callable(analytical):
        raise InvalidTypeError(
            f"x (the second argument) is a function, {_name(x)}, and analytical (the third) is "
            "not: this looks like scipy.optimize.check_grad's order (func, grad, x0); verigrad "
            "takes the point second and the gradient third: check_gradient(loss, x, grad)"
        )
    kw = dict(kwargs or {})
    args = tuple(args)
    function = None
    if callable(analytical):
        # A bad x is refused before the gradient function sees it.
        _validate_point(x, "x")
        function = _name(analytical)
        analytical = analytical(x, *args, **kw)
    options: dict[str, Any] = {
        "seed": seed,
        "loss_name": f"loss {_name(loss)}",
        "function": function,
    }
    loss_at = _loss_at(loss, args, kw)
    if not progress:
        return run_check(loss_at, x, analytical, config, **options)
    if executor is not None:
        raise InvalidArgumentError(
            "progress=True counts the loss evaluations made in this process and cannot follow "
            "an executor's; drop one of the two"
        )
    if not tqdm_available():
        raise InvalidArgumentError(f"progress=True needs tqdm: {INSTALL_HINT}")
    size = _size(x)
    total = estimated_evals(config.method, size, AUTO_FULL_MAX)
    if config.vectorized == "vmap":
        raise InvalidArgumentError(
            "progress=True counts the loss's calls, and under vectorized='vmap' the loss is "
            "called once per batch, inside the map: drop one of the two"
        )
    with progress_bar(total, batched=config.vectorized is True) as wrap:
        return run_check(wrap(loss_at), x, analytical, config, **options)


def assert_gradient(
    loss: Callable[..., Any],
    x: ArrayLike,
    analytical: ArrayLike | Callable[..., Any],
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    method: Method = "auto",
    epsilon: Epsilon = "auto",
    rtol: float = 1e-5,
    seed: int | None = None,
    kink_fails: bool = False,
    n_directions: int = 8,
    n_coordinates: int = 32,
    directions: Literal["rademacher", "gaussian"] = "rademacher",
    vectorized: bool | Literal["vmap"] = False,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    executor: Executor | None = None,
    progress: bool = False,
) -> CheckResult:
    """Like :func:`check_gradient`, but raise when the check does not pass.

    Returns:
        The passing :class:`CheckResult`.

    Raises:
        GradientMismatchError: the verdict is not ``"pass"``; the message is the result's
            :meth:`~CheckResult.summary` and ``.result`` holds the whole record.
    """
    result = check_gradient(
        loss,
        x,
        analytical,
        args=args,
        kwargs=kwargs,
        method=method,
        epsilon=epsilon,
        rtol=rtol,
        seed=seed,
        kink_fails=kink_fails,
        n_directions=n_directions,
        n_coordinates=n_coordinates,
        directions=directions,
        vectorized=vectorized,
        batch_bytes=batch_bytes,
        executor=executor,
        progress=progress,
    )
    if result.failed:
        raise GradientMismatchError(result)
    if not result.passed:
        raise InconclusiveCheckError(result)
    return result
