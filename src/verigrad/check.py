"""One-shot gradient checks, and the check runner the decorator shares."""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, Literal

import numpy as np

from ._arrays import _real_array, gradient_array, working_copy
from ._directional import DirectionalOutcome, directional_check
from ._options import CheckConfig
from ._progress import INSTALL_HINT, estimated_evals, progress_bar, tqdm_available
from ._tree import Tree, TreeLoss, is_tree
from ._typing import FAILURES, ArrayLike, Epsilon, FloatArray, Method
from .compare import (
    GRAD_LABEL,
    MARGIN,
    Coordinate,
    Judgement,
    _nonfinite_where,
    judge,
    refine,
    relative_error,
)
from .estimators import (
    DEFAULT_BATCH_BYTES,
    BatchedLoss,
    Estimate,
    ScalarLoss,
    complex_step,
    coordinate_differences,
    shifted_values,
    step_sizes,
)
from .exceptions import (
    GradientMismatchError,
    InconclusiveCheckError,
    InvalidArgumentError,
    InvalidTypeError,
)
from .result import CheckResult

__all__ = ["assert_gradient", "check_gradient"]


_EPS64 = float(np.finfo(np.float64).eps)
_EPS32 = float(np.finfo(np.float32).eps)
#: The loss's own rounding noise, in units of machine epsilon times |f|: summing many terms
#: loses a few bits more than one operation.
_NOISE_ULPS = 8.0
#: At most this many suspicious coordinates get a second opinion (4 evaluations each).
MAX_REFINED = 256
#: method="auto" checks every coordinate up to this size, and beyond it random directions plus
#: a random subset of coordinates, whose cost does not grow with the size.
AUTO_FULL_MAX = 2_000


def _is_float32(values: FloatArray) -> bool:
    """True when every value is exactly a float32: the loss rounds its result to float32."""
    finite = values[np.isfinite(values)]
    if finite.size < 2 or np.all(finite == finite[0]):
        return False
    with np.errstate(over="ignore"):
        return bool(np.all(finite.astype(np.float32).astype(np.float64) == finite))


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

    ``config`` says how (validated on its construction). ``seed`` seeds the random
    directions and coordinates of partial checks; ``pick(n, m)``, if given, chooses the ``m``
    coordinates instead (the decorator's rotation). ``loss_at`` is called with a private
    float64 working copy shaped like ``x``; ``x`` and ``analytical`` are only read.

    The verdict is error-aware. Each numerical derivative carries an estimate of its own error;
    a coordinate is suspicious when its discrepancy exceeds both the relative threshold and ten
    times that error. Suspicious coordinates get a second opinion from a stencil eight times
    narrower, which tells a real bug (the discrepancy holds) from a kink (one-sided derivatives
    disagree at both steps) and from noise (the estimates scatter more than the gap). The loss is
    evaluated at ``x`` once more at the end: a different value means it is nondeterministic.

    A structured ``x`` (nested dicts, lists, tuples of arrays and numbers) is checked as one
    flat vector of its leaves; the result names coordinates by leaf and has per-leaf errors.
    """
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
    method, epsilon, rtol, kink_fails = (
        config.method,
        config.epsilon,
        config.rtol,
        config.kink_fails,
    )
    n_directions = config.n_directions
    start = time.perf_counter()
    work = working_copy(x, param_name)  # first: refuses a ragged list before np.asarray sees it
    dtype = str(x.dtype) if isinstance(x, np.ndarray) else str(np.asarray(x).dtype)
    grad = gradient_array(analytical, work.shape, "analytical gradient")
    used: str = "central" if method == "auto" else method
    notes: list[str] = []
    state: dict[str, Any] = {"steps": np.full(work.shape, np.nan), "precision": "float64"}
    outcome: DirectionalOutcome | None = None

    def finish(
        numerical: FloatArray,
        n_evals: int,
        f0: float | None,
        where: str | None = None,
        verdict: str | None = None,
        threshold: float = rtol,
        errors: FloatArray | None = None,
        kinks: tuple[tuple[int, ...], ...] = (),
        bad: tuple[tuple[int, ...], ...] = (),
    ) -> CheckResult:
        j = _judge_subset(numerical, grad, threshold, state.get("checked"))
        if where:
            # The numerical gradient was never computed: do not blame "the loss near x" for it.
            where = "; ".join(w for w in (where, _nonfinite_where(grad, GRAD_LABEL)) if w)
            verdict = "nonfinite"
        elif j.verdict == "nonfinite" or not np.isfinite(grad).all():
            # A NaN or inf where a subset check estimated nothing is never a pass either.
            verdict, where = "nonfinite", j.where or _nonfinite_where(grad, GRAD_LABEL)
        final = verdict or j.verdict
        failed = final in FAILURES or (final == "kink" and kink_fails)
        return CheckResult(
            passed=final == "pass" or (final == "kink" and not kink_fails),
            failed=failed,
            verdict=final,  # type: ignore[arg-type]
            relative_error=math.inf if final == "nonfinite" else j.relative_error,
            threshold=threshold,
            numerical=numerical,
            analytical=grad,
            max_abs_error=j.max_abs_error,
            worst=j.worst,
            method=used,  # type: ignore[arg-type]
            epsilon=epsilon,
            steps=state["steps"],
            n_evals=n_evals,
            duration_s=time.perf_counter() - start,
            shape=work.shape,
            dtype=dtype,
            n_mismatched=max(j.n_mismatched, len(bad)),
            where=where,
            loss_value=f0,
            function=function,
            call_index=call_index,
            errors=errors,
            precision=state["precision"],
            kinks=kinks,
            mismatched=bad,
            notes=tuple(notes),
            strategy=state.get("strategy"),
            checked_indices=state.get("checked"),
            n_checked=(
                int(state["checked"].size) if state.get("checked") is not None else work.size
            ),
            directions=(
                tuple(zip(outcome.numerical, outcome.analytical, outcome.errors, strict=True))
                if outcome is not None
                else ()
            ),
        )

    unknown = np.full(work.shape, np.nan)
    if not np.isfinite(work).all():
        first_bad = np.flatnonzero(~np.isfinite(work.reshape(-1)))
        index = tuple(int(k) for k in np.unravel_index(int(first_bad[0]), work.shape))
        return finish(
            unknown,
            0,
            None,
            f"the parameter {param_name} is not finite at {first_bad.size} coordinate(s), "
            f"first {index}",
        )

    f: Callable[[FloatArray], float]
    if config.vectorized:
        f = BatchedLoss(loss_at, work.nbytes, loss_name, config.batch_bytes)
    else:
        f = ScalarLoss(loss_at, loss_name, config.executor)

    f0 = f(work)
    if not math.isfinite(f0):
        return finish(unknown, 1, f0, f"the loss at x itself is {f0}")
    n_evals = 1

    eps = _EPS64
    checked: np.ndarray | None = None
    n = work.size
    est: Estimate | None = None
    if used in ("directional", "coordinates") or (method == "auto" and n > AUTO_FULL_MAX):
        outcome, checked, state["strategy"] = _choose_partial(
            f, work, grad, f0, config, eps, np.random.default_rng(seed), pick
        )
        if outcome is not None:
            n_evals += outcome.n_evals
            if not np.isfinite(outcome.numerical).all():
                where = "the loss is not finite near x along a random direction"
                return finish(unknown, n_evals, f0, where)
        used = "auto" if method == "auto" else used
        # Few coordinates, each worth a sharper estimate: Richardson's larger step keeps the
        # rounding noise of a big loss (many terms summed) well below a small discrepancy.
        steps = step_sizes(work, epsilon, "richardson", eps)
        est = coordinate_differences(f, work, steps, "richardson", f0, indices=checked.tolist())
    if est is None:
        est = _complex_or_none(loss_at, work, epsilon, notes) if used == "complex" else None
    if est is None:
        used = "richardson" if used == "complex" else used
        steps = step_sizes(work, epsilon, used, eps)
        est = coordinate_differences(f, work, steps, used, f0)
        sampled = np.concatenate(([f0], _finite_sample(est)))
        # A non-finite estimate is already the verdict: never trade it for a new estimate.
        if _is_float32(sampled) and np.isfinite(est.values).all():
            eps = _EPS32
            state["precision"] = "float32"
            notes.append(
                "the loss rounds its values to float32: steps and tolerance follow float32's "
                "precision (compute the loss in float64 for a sharper check)"
            )
            if epsilon == "auto":
                n_evals += est.n_evals
                steps = step_sizes(work, epsilon, used, eps)
                est = coordinate_differences(f, work, steps, used, f0)
    n_evals += est.n_evals
    state["steps"] = est.steps
    state["checked"] = checked  # before any verdict: judge only the estimated coordinates
    threshold = max(rtol, 10.0 * eps ** (2.0 / 3.0)) if state["precision"] == "float32" else rtol

    f_again = f(work) if work.size else f0
    n_evals += 1 if work.size else 0
    # A NaN or inf on the second evaluation is a change too: never a pass.
    if f_again != f0 and not (
        math.isfinite(f_again) and abs(f_again - f0) <= 64 * eps * max(abs(f0), abs(f_again))
    ):
        notes.append(
            f"the loss gave {f0!r} and then {f_again!r} at the same point: it is not a function "
            "of x alone (dropout, sampling, a random batch, hidden state). Fix the seed or the "
            "batch for the check; this says nothing about the gradient"
        )
        return finish(est.values, n_evals, f0, verdict="nondeterministic", threshold=threshold)

    numerical = np.array(est.values)
    errors = _rounding_errors(est, f0, eps)
    flat_n, flat_a, flat_e = numerical.reshape(-1), grad.reshape(-1), errors.reshape(-1)
    seen = flat_n if checked is None else flat_n[checked]
    if not (np.isfinite(seen).all() and np.isfinite(grad).all()):
        return finish(numerical, n_evals, f0, threshold=threshold, errors=errors)

    with np.errstate(over="ignore"):  # gradients near 1e308: an infinite gap still ranks first
        diff = np.abs(flat_a - flat_n)
        scale = np.abs(flat_a) + np.abs(flat_n)
    suspicious = (diff > MARGIN * flat_e) & (diff > threshold * scale)
    candidates = np.flatnonzero(suspicious)
    kinky = _kink_suspects(est, f0, eps, flat_n, flat_a)
    global_error = _subset_error(flat_n, flat_a, checked)
    if global_error > threshold and diff.size:
        top = np.argsort(-diff, kind="stable")[:8]
        candidates = np.union1d(candidates, top[diff[top] > 0])
    if candidates.size == 0 and kinky.size == 0:
        if outcome is not None and outcome.suspicious:
            notes.append(_unexplained_directions(outcome))
            return finish(
                numerical,
                n_evals,
                f0,
                verdict=_direction_verdict(outcome, n_directions),
                threshold=threshold,
                errors=errors,
            )
        return finish(numerical, n_evals, f0, threshold=threshold, errors=errors)

    examined, labels, unexamined, spent = _examine(
        f, work, est, f0, eps, used, threshold, flat_a, flat_n, flat_e, diff, candidates, kinky
    )
    n_evals += spent

    def where_is(label: str | tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
        chosen = examined[np.isin(labels, label)]
        return tuple(tuple(int(c) for c in np.unravel_index(int(i), work.shape)) for i in chosen)

    kinks = where_is(("kink", "kink-bad"))
    bad = where_is(("bad", "kink-bad"))
    after = _subset_error(flat_n, flat_a, checked)
    if bad:
        notes.append(
            f"{len(bad)} coordinate(s) disagree beyond {MARGIN:g}x the estimated numerical "
            "error, confirmed with a stencil eight times narrower"
        )
        verdict = "mismatch"
    elif kinks:
        notes.append(
            f"the loss is not differentiable inside the stencil at {len(kinks)} coordinate(s): "
            "the one-sided derivatives disagree and the gradient lies between them (a valid "
            "subgradient)"
        )
        verdict = "kink"
    elif outcome is not None and outcome.suspicious:
        notes.append(_unexplained_directions(outcome))
        verdict = _direction_verdict(outcome, n_directions)
    elif after <= threshold:
        verdict = "pass"
    elif (
        not unexamined
        and "noisy" not in labels
        and _within_resolution(flat_n, flat_a, flat_e, checked)
    ):
        # Near an optimum the gradient shrinks below what finite differences resolve (at a
        # converged least-squares fit, |g| ~ 1e-15 against errors ~ 1e-12): no coordinate
        # shows a resolvable discrepancy, but none is tested to the threshold either.
        notes.append(
            f"relative error {after:.1e} is above the threshold, but every coordinate agrees "
            f"within the numerical error (about {_norm(flat_e, checked):.1e} against a gradient "
            f"of norm {_norm(flat_a, checked):.1e}): the gradient is too small here for finite "
            "differences to test (typical near an optimum); checks away from it test more"
        )
        verdict = "inconclusive"
    else:
        why = (
            f"{unexamined} suspicious coordinate(s) were not examined"
            if unexamined
            else "the numerical estimates scatter by more than their gap to the gradient"
        )
        notes.append(
            f"relative error {after:.2e} is above the threshold, but {why}: the loss is too "
            "noisy at this point to tell a bug from rounding"
        )
        verdict = "inconclusive"
    return finish(
        numerical,
        n_evals,
        f0,
        verdict=verdict,
        threshold=threshold,
        errors=errors,
        kinks=kinks,
        bad=bad,
    )


def _with_tree(result: CheckResult, tree: Tree) -> CheckResult:
    dtypes = sorted({leaf.dtype for leaf in tree.leaves})
    return dataclasses.replace(
        result,
        tree=tree,
        dtype=dtypes[0] if len(dtypes) == 1 else "mixed (" + ", ".join(dtypes) + ")",
        leaf_errors=tree.leaf_errors(result.numerical, result.analytical, result.checked_indices),
    )


def _judge_subset(
    numerical: FloatArray, grad: FloatArray, threshold: float, checked: np.ndarray | None
) -> Judgement:
    """:func:`judge` over the coordinates that were estimated, with indices into the whole."""
    if checked is None:
        return judge(numerical, grad, threshold)
    j = judge(numerical.reshape(-1)[checked], grad.reshape(-1)[checked], threshold)
    shape = numerical.shape
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
    f: Callable[[FloatArray], float],
    work: FloatArray,
    grad: FloatArray,
    f0: float,
    config: CheckConfig,
    eps: float,
    rng: np.random.Generator,
    pick: Callable[[int, int], np.ndarray] | None,
) -> tuple[DirectionalOutcome | None, np.ndarray, str]:
    """For a check that does not estimate every coordinate: the random directions (method
    "directional", or "auto" on a large parameter), the coordinates to estimate one by one
    (random or rotating ones, plus those the directions localized), and the strategy in words."""
    n = work.size
    both = config.method == "auto"
    outcome = None
    picks = np.empty(0, dtype=np.intp)
    parts = []
    if both or config.method == "directional":
        outcome = directional_check(
            f,
            work,
            grad,
            f0,
            k=config.n_directions,
            rng=rng,
            eps=eps,
            margin=MARGIN,
            gaussian=config.directions == "gaussian",
        )
        if not np.isfinite(outcome.numerical).all():
            return outcome, picks, ""
        parts.append(f"{config.n_directions} random directions ({outcome.n_evals} evaluations)")
    if both or config.method == "coordinates":
        m = min(n, config.n_coordinates)
        picks = rng.choice(n, size=m, replace=False) if pick is None else pick(n, m)
        parts.append(f"{picks.size} {'random' if pick is None else 'rotating'} coordinates")
    localized = np.asarray(outcome.localized if outcome else [], dtype=np.intp)
    checked = np.union1d(picks, localized).astype(np.intp)
    return outcome, checked, f"{config.method} on {n:,} coordinates: " + " and ".join(parts)


def _examine(
    f: Callable[[FloatArray], float],
    work: FloatArray,
    est: Estimate,
    f0: float,
    eps: float,
    used: str,
    threshold: float,
    flat_a: FloatArray,
    flat_n: FloatArray,
    flat_e: FloatArray,
    diff: FloatArray,
    candidates: np.ndarray,
    kinky: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Second opinions for the suspicious coordinates (``candidates``) and the suspected kinks.

    Each examined coordinate is estimated again at a stencil eight times narrower, and further
    while it stays undecided ("noisy") for want of resolution; its numerical derivative and
    error in ``flat_n`` and ``flat_e`` are replaced by the refined ones. Returns the examined
    flat indices, their labels (see :func:`refine`), how many suspicious coordinates were left
    unexamined (beyond ``MAX_REFINED``), and the loss evaluations spent.
    """
    # Suspected bugs first, by how far beyond their error they lie; then suspected kinks.
    with np.errstate(over="ignore"):
        score = diff[candidates] / np.maximum(flat_e[candidates], np.finfo(float).tiny)
    ranked = candidates[np.argsort(-score, kind="stable")]
    kinky = np.setdiff1d(kinky, candidates)
    examined = np.concatenate((ranked, kinky))[:MAX_REFINED]
    unexamined = max(0, candidates.size - examined.size)
    refined, spent = _second_opinion(f, work, est, examined, f0, eps, used)
    wide, narrow = refined
    noise = _NOISE_ULPS * eps * np.fmax(abs(f0), np.fmax(np.abs(wide[0]), np.abs(wide[1])))
    verdicts = refine(flat_a[examined], f0, wide, narrow, noise, threshold)
    flat_n[examined] = verdicts.values
    flat_e[examined] = verdicts.errors
    labels = np.array(verdicts.labels)
    # A coordinate whose curvature scale is far below its step (x_i ~ 1e-6 curving on 1e-6)
    # stays truncation-bound at both steps: narrow the stencil further while it stays undecided.
    for _ in range(3):
        redo = np.flatnonzero(labels == "noisy")
        if redo.size == 0:
            break
        previous = (narrow[0][redo], narrow[1][redo], narrow[2][redo], narrow[3][redo])
        vals, offs = shifted_values(
            f, work, examined[redo].tolist(), previous[2].tolist(), (0.125, -0.125)
        )
        spent += vals.size
        narrower = (vals[:, 0], vals[:, 1], offs[:, 0], offs[:, 1])
        again = refine(flat_a[examined[redo]], f0, previous, narrower, noise[redo], threshold)
        labels[redo] = again.labels
        flat_n[examined[redo]] = again.values
        flat_e[examined[redo]] = again.errors
        narrow = (
            _replace_at(narrow[0], redo, narrower[0]),
            _replace_at(narrow[1], redo, narrower[1]),
            _replace_at(narrow[2], redo, narrower[2]),
            _replace_at(narrow[3], redo, narrower[3]),
        )
    return examined, labels, unexamined, spent


def _within_resolution(
    n: FloatArray, a: FloatArray, e: FloatArray, checked: np.ndarray | None
) -> bool:
    """Every estimated coordinate agrees within ``MARGIN`` times its estimated error: no
    coordinate shows a discrepancy that finite differences can resolve at this point."""
    if checked is not None:
        n, a, e = n[checked], a[checked], e[checked]
    if not (np.isfinite(e).all() and e.size):
        return False
    return bool(np.all(np.abs(a - n) <= MARGIN * e))


def _norm(v: FloatArray, checked: np.ndarray | None) -> float:
    """The 2-norm, scaled first so that values near 1e200 do not overflow when squared."""
    v = v if checked is None else v[checked]
    top = float(np.max(np.abs(v))) if v.size else 0.0
    return top * float(np.linalg.norm(v / top)) if 0.0 < top < math.inf else top


def _replace_at(arr: FloatArray, where: np.ndarray, values: FloatArray) -> FloatArray:
    out = arr.copy()
    out[where] = values
    return out


def _subset_error(n: FloatArray, a: FloatArray, checked: np.ndarray | None) -> float:
    if checked is None:
        return relative_error(n, a)
    return relative_error(n[checked], a[checked])


def _direction_verdict(outcome: DirectionalOutcome, k: int) -> str:
    """Directions alone make a mismatch when most of them see it: a real error in ``g`` shows
    along almost every random direction, a fluke of the estimate along one."""
    return "mismatch" if len(outcome.suspicious) >= max(2, (k + 1) // 2) else "inconclusive"


def _unexplained_directions(outcome: DirectionalOutcome) -> str:
    return (
        f"{len(outcome.suspicious)} of {len(outcome.numerical)} random directions disagree "
        f"with the gradient by up to {outcome.worst_ratio:.0f}x their estimated error, but no "
        "single coordinate could be confirmed: the error is spread thin or too small per "
        "coordinate; run a full check (method='central') to see the whole gradient"
    )


def _kink_suspects(
    est: Estimate, f0: float, eps: float, numerical: FloatArray, analytical: FloatArray
) -> np.ndarray:
    """Flat indices whose one-sided derivatives differ by more than 0.1 %.

    Free: it reuses the central stencil's values. For a smooth loss the gap between forward and
    backward differences is ``h f''``, small next to the derivative; at a kink inside the stencil
    it is the jump of the derivative. A second opinion tells the two apart.
    """
    if est.f_plus is None or est.f_minus is None or est.method not in ("central", "richardson"):
        return np.empty(0, dtype=np.intp)
    fp, fm = est.f_plus.reshape(-1), est.f_minus.reshape(-1)
    h = est.steps.reshape(-1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        gap = np.abs(fp - 2.0 * f0 + fm) / h
        noise = _NOISE_ULPS * eps * np.fmax(abs(f0), np.fmax(np.abs(fp), np.abs(fm))) / h
        floor = 1e-3 * float(np.sqrt(np.mean(analytical * analytical))) if analytical.size else 0.0
        flagged = (gap > 1e-3 * (np.abs(numerical) + np.abs(analytical)) + floor) & (
            gap > MARGIN * 4.0 * noise
        )
    return np.flatnonzero(flagged)


def _finite_sample(est: Estimate, k: int = 16) -> FloatArray:
    parts = [a.reshape(-1)[:k] for a in (est.f_plus, est.f_minus) if a is not None]
    sample = np.concatenate(parts) if parts else np.empty(0)
    return sample[np.isfinite(sample)]


def _rounding_errors(est: Estimate, f0: float, eps: float) -> FloatArray:
    """Estimated absolute error of each numerical derivative."""
    if est.method == "complex":
        return 4.0 * eps * np.abs(est.values) + np.finfo(float).tiny
    fmax = np.full(est.values.shape, abs(f0))
    for side in (est.f_plus, est.f_minus):
        if side is not None:
            fmax = np.fmax(fmax, np.abs(side))
    # NaN and inf loss values (judged "nonfinite" later) must not warn here.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rounding = _NOISE_ULPS * eps * fmax / est.steps
        if est.method in ("forward", "backward"):
            rounding *= 2.0
        if est.method == "richardson" and est.f_plus is not None and est.f_minus is not None:
            # (4 D(h) - D(2h)) / 3 amplifies rounding by 5/3; |R - D(h)| bounds D(h)'s truncation
            d1 = (est.f_plus - est.f_minus) / (2.0 * est.steps)
            rounding = rounding * 5.0 / 3.0 + np.abs(est.values - d1) / 4.0
    return rounding


def _second_opinion(
    f: Callable[[FloatArray], float],
    work: FloatArray,
    est: Estimate,
    examined: np.ndarray,
    f0: float,
    eps: float,
    used: str,
) -> tuple[tuple[tuple[Any, ...], tuple[Any, ...]], int]:
    """Central stencils at the check's step and at an eight times narrower one."""
    central = step_sizes(work, "auto", "central", eps).reshape(-1)[examined]
    if used in ("central", "richardson") and est.f_plus is not None and est.f_minus is not None:
        h = est.steps.reshape(-1)[examined]
        vals, offs = shifted_values(f, work, examined.tolist(), h.tolist(), (0.125, -0.125))
        wide = (
            est.f_plus.reshape(-1)[examined],
            est.f_minus.reshape(-1)[examined],
            h,
            -h,
        )
        narrow = (vals[:, 0], vals[:, 1], offs[:, 0], offs[:, 1])
        return (wide, narrow), vals.size
    vals, offs = shifted_values(
        f, work, examined.tolist(), central.tolist(), (1.0, -1.0, 0.125, -0.125)
    )
    wide = (vals[:, 0], vals[:, 1], offs[:, 0], offs[:, 1])
    narrow = (vals[:, 2], vals[:, 3], offs[:, 2], offs[:, 3])
    return (wide, narrow), vals.size


def _complex_or_none(
    loss_at: Callable[[Any], Any], work: FloatArray, epsilon: Epsilon, notes: list[str]
) -> Estimate | None:
    """The complex-step estimate, or None (with a note) when the loss cannot take it."""

    def f(point: Any) -> complex:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            value = loss_at(point)
        arr = np.asarray(value)
        if arr.dtype.kind != "c" or arr.size != 1:
            raise _NotComplex(f"it returned {arr.dtype} for a complex input")
        return complex(arr.reshape(()))

    steps = step_sizes(work, epsilon, "complex")
    try:
        return complex_step(f, work, steps)
    except (_NotComplex, TypeError, ValueError, np.exceptions.ComplexWarning) as exc:
        reason = str(exc).split("\n")[0] or type(exc).__name__
        notes.append(
            f"method 'complex' needs a loss that evaluates complex input faithfully ({reason}); "
            "used 'richardson' instead"
        )
        return None


class _NotComplex(Exception):
    pass


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
    vectorized: bool = False,
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
            points of a coordinate-wise check are then evaluated in batches.
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
    kw = dict(kwargs or {})
    args = tuple(args)
    function = None
    if callable(analytical):
        # A bad x is refused before the gradient function sees it.
        if is_tree(x):
            Tree.of(x, "x")
        else:
            _real_array(x, "x", "the parameter")
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
    size = Tree.of(x)[0].size if is_tree(x) else int(np.size(x))
    total = estimated_evals(config.method, size, AUTO_FULL_MAX)
    with progress_bar(total, batched=config.vectorized) as wrap:
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
    vectorized: bool = False,
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
