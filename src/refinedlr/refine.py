"""Refinement: a schedule tailored to a task from the gradient norms of a previous run.

Algorithms 1 (SGD, l2 norms) and 2 (Adam-type optimizers, l1 norms) of arXiv 2310.07831. Given
the per-step gradient norms ``n_0 .. n_{T-1} > 0`` of a previous run of the same task and horizon
(normally linear decay at its best learning rate) and a smoothing fraction ``tau``:

1. Median-smooth: window ``k = 2 floor(floor(tau T) / 2) + 1`` (odd, at least 1), centred on each
   step; at the start the record is padded by repeating the first value, at the end by mirroring
   without repeating the last value (numpy's ``"reflect"``). ``g_t`` = median of the window.
2. Weights ``w_t = g_t^-p``: ``p = 2`` for SGD with l2 norms, ``p = 1`` for Adam with l1 norms.
3. ``s_t = w_t * sum_{p > t} w_p`` (so ``s_{T-1} = 0``).
4. Normalise: ``s / max(s)``. Re-tune the peak learning rate of the next run.

Constant norms give ``s_t = (T-1-t)/(T-1)`` (linear decay); scaling all norms changes nothing;
large early norms produce a warm-up; norms that fall toward zero late in training push learning-rate
mass late (the paper's degenerate case, detected and reported here).

Refine, then verify (``method="verified"``). The refinement study (``results/refinement-study``)
found that the paper's refined schedule often loses to linear decay (when norms fall late in
training, the schedule moves learning-rate mass late) and that the last-iterate bound on the
*source* run's norms always prefers it. Measured on the norms each schedule *itself* produced, the
bound does separate the wins from the losses: after one run with the refined schedule, keep it only
if its bound on its own record is below ``verify_threshold`` (0.95) times linear decay's bound on
the source record; otherwise fall back to the source schedule (linear decay). On 10 held-out convex
problems this never lost to linear decay (SGD: geometric-mean gap ratio 0.84). With Adam-type
optimizers it almost always falls back (use the l2 norm of the update direction as the check
record). :func:`refinement_risk` flags the norm patterns on which plain refinement lost.

Example:
    >>> s = refine([9, 7, 5, 3, 2, 1, 1, 1, 1.5, 2, 2.5, 3], tau=0.25, norm="l2")
    >>> s.preview().round(6)
    array([0.018168, 0.029894, 0.058061, 0.157186, 0.332934, 1.      , 0.668264, 0.336528,
           0.08404 , 0.026539, 0.008492, 0.      ])
    >>> s.provenance["window"], s.provenance["norm"]
    (3, 'l2')
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from .records import GradNormRecord
from .schedules import Tabulated

__all__ = [
    "METHODS",
    "MIN_STEPS",
    "VERIFY_THRESHOLD",
    "Collapse",
    "CollapseWarning",
    "MissingNormsWarning",
    "RefineError",
    "Refinement",
    "RefinementRisk",
    "Verification",
    "detect_collapse",
    "fill_missing",
    "median_window",
    "refine",
    "refine_details",
    "refined_multipliers",
    "refinement_risk",
    "refinement_weights",
    "smooth_norms",
    "verify_refinement",
]

FloatArray = npt.NDArray[np.float64]
NormKind = Literal["l2", "l1"]
RefineMethod = Literal["paper", "verified"]

#: The ``method`` values of :func:`refine`: the paper's Algorithms 1/2, or refine-then-verify.
METHODS: tuple[str, ...] = ("paper", "verified")

#: ``method="verified"`` keeps the refined schedule when its bound ratio is below this.
VERIFY_THRESHOLD = 0.95

#: The shortest record refinement accepts.
MIN_STEPS = 4


class RefineError(ValueError):
    """The gradient-norm record cannot be refined (the message says why and where)."""


class MissingNormsWarning(UserWarning):
    """Some steps had no finite gradient norm and were filled by interpolation."""


class CollapseWarning(UserWarning):
    """The smoothed gradient norms collapse toward zero late in training (degenerate refinement)."""


# ----------------------------------------------------------------------------------------------
# the steps of the algorithm


def median_window(total_steps: int, tau: float) -> int:
    """The odd median-filter width ``k = 2 floor(floor(tau T) / 2) + 1`` for ``T`` steps.

    >>> median_window(12, 0.25), median_window(12, 0.5), median_window(1000, 0.1)
    (3, 7, 101)
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and 0.0 <= tau <= 1.0):
        raise RefineError(f"tau must be a fraction in [0, 1], got {tau!r}")
    return 2 * (math.floor(tau * total_steps) // 2) + 1


def fill_missing(norms: npt.ArrayLike) -> tuple[FloatArray, int]:
    """Replace NaN/inf entries by linear interpolation between finite neighbours.

    Returns the filled array and the number of entries filled. Entries before the first (after
    the last) finite value take that value. Raises :class:`RefineError` when nothing is finite.

    >>> fill_missing([1.0, float("nan"), 3.0, float("inf")])
    (array([1., 2., 3., 3.]), 2)
    """
    arr = np.array(norms, dtype=np.float64)
    bad = ~np.isfinite(arr)
    n_bad = int(np.count_nonzero(bad))
    if n_bad == 0:
        return arr, 0
    if n_bad == arr.size:
        raise RefineError(f"all {arr.size} gradient norms are missing (NaN or inf)")
    idx = np.arange(arr.size)
    arr[bad] = np.interp(idx[bad], idx[~bad], arr[~bad])
    return arr, n_bad


def smooth_norms(norms: npt.ArrayLike, tau: float = 0.1) -> FloatArray:
    """Centred running median with window :func:`median_window` (step 1 of the algorithm).

    Boundary handling: the start is padded by repeating the first value, the end by mirroring
    without repeating the last value, as in the method's reference.

    >>> smooth_norms([9, 7, 5, 3, 2, 1, 1, 1, 1.5, 2, 2.5, 3], tau=0.5)
    array([9. , 7. , 5. , 3. , 2. , 1.5, 1.5, 1.5, 1.5, 2. , 2. , 2. ])
    """
    x = np.asarray(norms, dtype=np.float64)
    T = x.shape[0]
    k = median_window(T, tau)
    h = k // 2
    if h == 0:
        return np.array(x, dtype=np.float64)
    right = np.pad(x, (0, h), mode="reflect")[T:] if T > 1 else np.repeat(x, h)
    padded = np.concatenate([np.full(h, x[0]), x, right])
    out = ndimage.median_filter(padded, size=k, mode="nearest")
    return np.asarray(out[h : h + T], dtype=np.float64)


def refinement_weights(
    smoothed: npt.ArrayLike, norm: NormKind = "l2", power: float | None = None
) -> FloatArray:
    """Weights ``w_t = g_t^-p`` (step 2): ``p = 2`` for ``norm="l2"``, ``1`` for ``"l1"``.

    ``power`` overrides ``p`` (any positive number).

    >>> refinement_weights([1.0, 2.0, 4.0], norm="l2")
    array([1.    , 0.25  , 0.0625])
    """
    p = _power(norm, power)
    g = np.asarray(smoothed, dtype=np.float64)
    return np.asarray(g**-p, dtype=np.float64)


def refined_multipliers(weights: npt.ArrayLike) -> FloatArray:
    """``s_t = w_t * sum_{p > t} w_p``, normalised to a maximum of 1 (steps 3 and 4).

    >>> refined_multipliers(np.ones(5))
    array([1.  , 0.75, 0.5 , 0.25, 0.  ])
    """
    w = np.asarray(weights, dtype=np.float64)
    tail = np.empty_like(w)
    tail[:-1] = np.cumsum(w[:0:-1])[::-1]  # sum_{p > t} w_p, summed from the end for accuracy
    tail[-1] = 0.0
    s = w * tail
    top = float(s.max())
    if not (top > 0 and math.isfinite(top)):
        raise RefineError(
            f"the refined schedule has no positive finite value (max {top}); "
            "the weights over- or underflowed: are the norms within a sane range?"
        )
    return np.asarray(s / top, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# diagnosis


@dataclasses.dataclass(frozen=True)
class Collapse:
    """Evidence that the smoothed norms collapse toward zero late in training.

    ``late_ratio`` is the median smoothed norm over the last ``late_fraction`` of the steps
    divided by the median over the whole run.
    """

    late_ratio: float
    late_fraction: float
    threshold: float
    peak_fraction: float
    late_mass: float

    def message(self) -> str:
        return (
            f"smoothed gradient norms in the last {self.late_fraction:.0%} of training fall to "
            f"{self.late_ratio:.3g}x their median (below {self.threshold:g}x): the paper's "
            f"degenerate case (over-fitting, separable data). The refined schedule puts its peak "
            f"at {self.peak_fraction:.0%} of training and {self.late_mass:.0%} of its learning-rate "
            "mass in the last quarter"
            + (
                ", so the LR stays high until late and the last iterate usually ends worse than "
                "with linear decay"
                if self.peak_fraction >= 0.5 or self.late_mass >= 0.25
                else "; the tiny late norms make the weights of the last steps dominate"
            )
            + "; prefer linear decay, a larger tau, or "
            "a weaker power"
        )


def detect_collapse(
    smoothed: npt.ArrayLike,
    schedule: npt.ArrayLike | None = None,
    *,
    late_fraction: float = 0.1,
    threshold: float = 0.1,
) -> Collapse | None:
    """Report a late collapse of the smoothed norms (``None`` when there is none).

    >>> g = np.r_[np.ones(90), np.geomspace(1, 1e-3, 10)]
    >>> detect_collapse(g).late_ratio < 0.1
    True
    >>> detect_collapse(np.ones(100)) is None
    True
    """
    g = np.asarray(smoothed, dtype=np.float64)
    T = g.shape[0]
    n_late = max(1, round(late_fraction * T))
    ratio = float(np.median(g[-n_late:]) / np.median(g))
    if ratio >= threshold:
        return None
    s = refined_multipliers(g**-2.0) if schedule is None else np.asarray(schedule, np.float64)
    peak = int(np.argmax(s))
    total = float(s.sum())
    late_mass = float(s[-max(1, T // 4) :].sum() / total) if total > 0 else 0.0
    return Collapse(
        late_ratio=ratio,
        late_fraction=late_fraction,
        threshold=threshold,
        peak_fraction=peak / max(T - 1, 1),
        late_mass=late_mass,
    )


# ----------------------------------------------------------------------------------------------
# refine, then verify


@dataclasses.dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_refinement`.

    Attributes:
        bound_ratio: the refined schedule's best-scale last-iterate bound on its own run's record
            over the source schedule's on the source run's record (below 1: the refined run's
            norms support it).
        kept: ``bound_ratio < threshold``.
        threshold: the threshold used.
        schedule: the refined schedule if kept, else the source schedule (on the same horizon).
    """

    bound_ratio: float
    kept: bool
    threshold: float
    schedule: Tabulated


def _step_norms(name: str, values: npt.ArrayLike | GradNormRecord, kind: str | None) -> FloatArray:
    if isinstance(values, GradNormRecord):
        k = values.resolve_kind(kind if kind is not None else "l2")
        arr = values.norms(k)
    else:
        arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < MIN_STEPS:
        raise RefineError(f"{name} must be a 1-D record of at least {MIN_STEPS} steps")
    filled, _ = fill_missing(arr)
    if np.any(filled < 0):
        raise RefineError(f"{name} must be non-negative norms")
    return filled


def _on_length(x: FloatArray, n: int) -> FloatArray:
    if x.size == n:
        return x
    return np.asarray(np.interp(np.linspace(0, x.size - 1, n), np.arange(x.size), x), np.float64)


def verify_refinement(
    refined: Tabulated,
    refined_run_norms: npt.ArrayLike | GradNormRecord,
    source_norms: npt.ArrayLike | GradNormRecord,
    *,
    source_schedule: npt.ArrayLike | None = None,
    threshold: float = VERIFY_THRESHOLD,
    kind: str | None = None,
) -> Verification:
    """Keep ``refined`` only if the last-iterate bound on its own run's norms supports it.

    ``refined_run_norms`` is the per-step norm record of a run that *used* ``refined`` (resampled
    onto its horizon if the lengths differ); ``source_norms`` the record of the source run, whose
    schedule is ``source_schedule`` (multipliers; default linear decay ``1 - t/T``). The norms are
    those of the optimizer's step direction: the l2 gradient norm for SGD; for Adam-type
    optimizers the l2 norm of the update direction ``m_hat / (sqrt(v_hat) + eps)`` (gradient l1
    norms did not predict the outcome in the study). ``kind`` picks the column of records
    (default ``"l2"``). The bound of each schedule is taken at its best scale
    (:func:`refinedlr.bounds.best_scale`), so the ratio does not depend on ``D`` or the LRs.

    >>> src = np.r_[np.full(20, 8.0), np.ones(80)]           # large early norms
    >>> s = refine(src, tau=0.1)
    >>> verify_refinement(s, src, src).kept                    # its own run looks the same
    True
    >>> late = np.r_[np.full(20, 8.0), np.ones(40), np.full(40, 6.0)]
    >>> v = verify_refinement(s, late, src)                    # its run's norms rose late
    >>> v.kept, v.schedule.preview()[:3].round(3)
    (False, array([1.  , 0.99, 0.98]))
    """
    from .bounds import best_scale

    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise RefineError(f"verify_threshold must be a positive number, got {threshold!r}")
    shape = refined.preview()
    own = _on_length(_step_norms("the refined run's norms", refined_run_norms, kind), shape.size)
    src = _step_norms("the source run's norms", source_norms, kind)
    T = src.size
    if source_schedule is None:
        base = 1.0 - np.arange(T, dtype=np.float64) / T
    else:
        base = np.asarray(source_schedule, dtype=np.float64)
        if base.ndim != 1 or base.size != T:
            raise RefineError(
                f"source_schedule must give one multiplier per source step ({T}), "
                f"got shape {base.shape}"
            )
    ref = best_scale(base, src)[1]
    ratio = float(best_scale(shape, own)[1] / ref) if ref > 0 else math.inf
    kept = bool(ratio < threshold)
    if kept:
        chosen = refined
    else:
        top = float(base.max())
        chosen = Tabulated(
            total_steps=refined.total_steps,
            values=base / top if top > 0 else base,
            provenance={"method": "verified", "fallback": "source schedule"},
        )
    return Verification(bound_ratio=ratio, kept=kept, threshold=float(threshold), schedule=chosen)


@dataclasses.dataclass(frozen=True)
class RefinementRisk:
    """A gradient-norm record that looks like those on which refinement lost to linear decay.

    ``late_ratio``: median norm over the last 10% of the record over its median. ``level``:
    ``"high"`` (``late_ratio < 0.7``) or ``"moderate"`` (``< 0.95``).
    """

    late_ratio: float
    level: str
    norm: str

    def message(self) -> str:
        if self.level == "high":
            head = (
                f"the norms fall to {self.late_ratio:.2f}x their median in the last 10% of "
                "training; on every such record of the refinement study (6 of 6 convex cases, "
                "Adam and SGD) the refined schedule lost to linear decay, by 1.6x to 5.8x in the "
                "final gap"
            )
        else:
            head = (
                f"the norms fall to {self.late_ratio:.2f}x their median in the last 10% of "
                "training, which moves refined learning-rate mass late; on such records the "
                "refinement study found 19 losses, 9 ties and 2 wins (SGD only) against linear "
                "decay in 30 convex cases"
            )
        tail = (
            "; with Adam-type optimizers (l1 norms) refinement beat linear decay on none of 19 "
            "convex problems"
            if self.norm == "l1"
            else ""
        )
        return (
            f"{head}{tail}. Prefer linear decay, or check the refined schedule after one run "
            "(refine(..., method='verified'); CLI: --method verified --check LOG)"
        )


def refinement_risk(norms: npt.ArrayLike, *, norm: str = "l2") -> RefinementRisk | None:
    """Flag a record whose pattern made refinement lose to linear decay in the study.

    The pattern is a late decline: the median of the last 10% of the record below 0.95 of the
    median of the whole record (``"high"`` below 0.7). ``None`` when the norms hold up late.

    >>> refinement_risk(np.ones(100)) is None
    True
    >>> refinement_risk(np.r_[np.ones(80), np.full(20, 0.5)]).level
    'high'
    """
    x, _ = fill_missing(norms)
    if x.ndim != 1 or x.size < MIN_STEPS:
        raise RefineError(f"a record needs at least {MIN_STEPS} steps")
    med = float(np.median(x))
    if not med > 0:
        return None
    late = float(np.median(x[-max(1, round(0.1 * x.size)) :])) / med
    if late >= 0.95:
        return None
    return RefinementRisk(late_ratio=late, level="high" if late < 0.7 else "moderate", norm=norm)


# ----------------------------------------------------------------------------------------------
# the public entry points


@dataclasses.dataclass(frozen=True, eq=False)
class Refinement:
    """Every intermediate of a refinement, for plots and diagnosis.

    Attributes:
        norms: the record after filling missing values (length ``T`` of the source run).
        smoothed: the median-smoothed norms ``g_t``.
        weights: ``w_t = g_t^-p``.
        schedule: the refined :class:`~refinedlr.schedules.Tabulated` schedule (on the requested
            horizon; its table has the source length).
        n_missing: how many entries were missing and filled.
        collapse: a :class:`Collapse` when the norms collapse late, else ``None``.
        verification: with ``method="verified"``, the :class:`Verification` (then ``schedule``
            is the refined schedule if it was kept, else the source schedule).
    """

    norms: FloatArray
    smoothed: FloatArray
    weights: FloatArray
    schedule: Tabulated
    n_missing: int
    collapse: Collapse | None
    verification: Verification | None = None


def _power(norm: str, power: float | None) -> float:
    if norm not in ("l1", "l2"):
        raise RefineError(
            f"norm must be 'l2' (SGD, Algorithm 1) or 'l1' (Adam, Algorithm 2), got {norm!r}"
        )
    if power is None:
        return 2.0 if norm == "l2" else 1.0
    if (
        isinstance(power, bool)
        or not isinstance(power, (int, float))
        or not math.isfinite(power)
        or power <= 0
    ):
        raise RefineError(f"power must be a positive number, got {power!r}")
    return float(power)


def _as_norms(
    norms: npt.ArrayLike | GradNormRecord, norm: str, kind: str | None
) -> tuple[FloatArray, dict[str, Any]]:
    if isinstance(norms, GradNormRecord):
        k = norms.resolve_kind(kind if kind is not None else norm)
        info: dict[str, Any] = {"source": norms.source, "kind": k}
        if norms.coverage < 1.0:
            info["source_coverage"] = round(norms.coverage, 6)
        return norms.norms(k), info
    try:
        arr = np.asarray(norms, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RefineError(f"gradient norms must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise RefineError(f"gradient norms must be a 1-D array, got shape {arr.shape}")
    return arr, {}


def refine_details(
    norms: npt.ArrayLike | GradNormRecord,
    *,
    tau: float = 0.1,
    norm: NormKind = "l2",
    power: float | None = None,
    total_steps: int | None = None,
    kind: str | None = None,
    collapse_threshold: float = 0.1,
    method: RefineMethod = "paper",
    check_norms: npt.ArrayLike | GradNormRecord | None = None,
    source_check_norms: npt.ArrayLike | GradNormRecord | None = None,
    check_kind: str | None = None,
    verify_threshold: float = VERIFY_THRESHOLD,
) -> Refinement:
    """:func:`refine`, returning every intermediate (a :class:`Refinement`)."""
    if method not in METHODS:
        raise RefineError(f"method must be one of {METHODS}, got {method!r}")
    if method == "verified" and check_norms is None:
        raise RefineError(
            "method='verified' needs check_norms: the norm record of a run that used the "
            "paper's refined schedule (refine(..., method='paper')) from this record"
        )
    p = _power(norm, power)
    arr, info = _as_norms(norms, norm, kind)
    T = arr.shape[0]
    if T < MIN_STEPS:
        raise RefineError(
            f"a gradient-norm record needs at least {MIN_STEPS} steps to refine, got {T}"
        )
    k = median_window(T, tau)
    finite = np.isfinite(arr)
    nonpos = np.flatnonzero(finite & (arr <= 0))
    if nonpos.size:
        i = int(nonpos[0])
        raise RefineError(
            f"gradient norms must be positive; step {i} has {float(arr[i])!r} "
            f"({nonpos.size} step(s) <= 0). A zero norm means no gradient: was the record "
            "taken after the optimizer zeroed the gradients?"
        )
    filled, n_missing = fill_missing(arr)
    if n_missing:
        first = int(np.flatnonzero(~finite)[0])
        warnings.warn(
            f"{n_missing} of {T} gradient norms are missing (NaN/inf, e.g. steps skipped by the "
            f"AMP scaler; first at step {first}); filled by interpolation between neighbours",
            MissingNormsWarning,
            stacklevel=3,
        )
    smoothed = smooth_norms(filled, tau)
    weights = refinement_weights(smoothed, norm, power)
    if not np.all(np.isfinite(weights)) or float(weights.max()) == 0.0:
        raise RefineError(
            f"the weights norm^-{p:g} over- or underflow (norms range "
            f"{float(smoothed.min()):.3g} .. {float(smoothed.max()):.3g})"
        )
    values = refined_multipliers(weights)
    collapse = detect_collapse(smoothed, values, threshold=collapse_threshold)
    if collapse is not None:
        warnings.warn(collapse.message(), CollapseWarning, stacklevel=3)
    provenance: dict[str, Any] = {
        "method": "refine",
        "tau": float(tau),
        "norm": norm,
        "power": p,
        "window": k,
        "source_steps": T,
        "missing_filled": n_missing,
        **info,
    }
    if collapse is not None:
        provenance["collapse_late_ratio"] = round(collapse.late_ratio, 6)
    schedule = Tabulated(
        total_steps=T if total_steps is None else total_steps,
        values=values,
        provenance=provenance,
    )
    verification = None
    if method == "verified":
        assert check_norms is not None
        if source_check_norms is None:
            if norm == "l1" and check_kind in (None, "l1", "l2"):
                warnings.warn(
                    "method='verified' with l1 gradient norms: the study validated the check "
                    "for Adam-type optimizers only with the l2 norm of the update direction "
                    "(pass source_check_norms and check_norms of that kind)",
                    UserWarning,
                    stacklevel=3,
                )
            source_check: npt.ArrayLike | GradNormRecord = (
                norms if isinstance(norms, GradNormRecord) else filled
            )
        else:
            source_check = source_check_norms
        verification = verify_refinement(
            schedule,
            check_norms,
            source_check,
            threshold=verify_threshold,
            kind=check_kind,
        )
        chosen = verification.schedule
        schedule = Tabulated(
            total_steps=schedule.total_steps,
            values=chosen.values,
            provenance={
                **provenance,
                "method": "verified",
                "verify_bound_ratio": round(verification.bound_ratio, 6),
                "verify_threshold": verification.threshold,
                "verify_kept": verification.kept,
            },
        )
    return Refinement(
        norms=filled,
        smoothed=smoothed,
        weights=weights,
        schedule=schedule,
        n_missing=n_missing,
        collapse=collapse,
        verification=verification,
    )


def refine(
    norms: npt.ArrayLike | GradNormRecord,
    *,
    tau: float = 0.1,
    norm: NormKind = "l2",
    power: float | None = None,
    total_steps: int | None = None,
    kind: str | None = None,
    collapse_threshold: float = 0.1,
    method: RefineMethod = "paper",
    check_norms: npt.ArrayLike | GradNormRecord | None = None,
    source_check_norms: npt.ArrayLike | GradNormRecord | None = None,
    check_kind: str | None = None,
    verify_threshold: float = VERIFY_THRESHOLD,
) -> Tabulated:
    """A refined schedule from a gradient-norm record (Algorithm 1 for l2, 2 for l1).

    Args:
        norms: per-step gradient norms (1-D array, NaN/inf for missing steps) or a
            :class:`~refinedlr.records.GradNormRecord` (its ``norm`` kind, or its only kind).
        tau: median-smoothing window as a fraction of the record length (0 = no smoothing;
            the paper uses about 0.1 for deep learning, 0.5 for convex problems).
        norm: ``"l2"`` (SGD; weights ``g^-2``) or ``"l1"`` (Adam-type; weights ``g^-1``).
        power: use weights ``g^-power`` instead.
        total_steps: horizon of the run that will use the schedule (default: the record length);
            the table is resampled on normalised time.
        kind: which column of a multi-kind record to use (default: ``norm``).
        collapse_threshold: warn when the late smoothed norms fall below this fraction of
            their median (:func:`detect_collapse`).
        method: ``"paper"`` (default): Algorithms 1/2 as published. ``"verified"``: refine, then
            verify (:func:`verify_refinement`): return the refined schedule only if the
            last-iterate bound on ``check_norms`` (the record of a run that used the paper's
            refined schedule from these norms) is below ``verify_threshold`` times linear
            decay's bound on the source record, else linear decay. The refinement study found
            this never worse than linear decay on held-out problems, while the paper's schedule
            lost on half of them.
        check_norms: for ``"verified"``: the refined run's step-norm record (l2 gradient norms
            for SGD; l2 norms of the update direction for Adam-type optimizers).
        source_check_norms: for ``"verified"``: the source run's record of the same kind
            (default: ``norms``, column ``check_kind`` of a record).
        check_kind: the column of records used for the check (default ``"l2"``).
        verify_threshold: the bound ratio below which the refined schedule is kept (0.95).

    Returns:
        A :class:`~refinedlr.schedules.Tabulated` schedule with ``max 1`` and last step ``0``,
        whose ``provenance`` records tau, norm, power, window, source length and filled steps.

    Raises:
        RefineError: fewer than :data:`MIN_STEPS` steps, all values missing, a zero or negative
            norm, a bad ``tau``/``norm``/``power``/``method``, or ``method="verified"`` without
            ``check_norms``.

    Warns:
        MissingNormsWarning: when NaN/inf entries were filled (the count is in the message).
        CollapseWarning: when the norms collapse toward zero late in training.

    >>> refine(np.ones(7)).preview().round(6)  # constant norms: linear decay to zero
    array([1.      , 0.833333, 0.666667, 0.5     , 0.333333, 0.166667, 0.      ])
    """
    return refine_details(
        norms,
        tau=tau,
        norm=norm,
        power=power,
        total_steps=total_steps,
        kind=kind,
        collapse_threshold=collapse_threshold,
        method=method,
        check_norms=check_norms,
        source_check_norms=source_check_norms,
        check_kind=check_kind,
        verify_threshold=verify_threshold,
    ).schedule
