"""Refinement: a schedule tailored to a task from the gradient norms of a previous run.

Algorithms 1 (SGD, l2 norms) and 2 (Adam-type, l1 norms) of arXiv 2310.07831, explained in the docs
page "How refinement works": median-smooth the norms (:func:`smooth_norms`), weigh ``w_t = g_t^-p``
(:func:`refinement_weights`), ``s_t = w_t sum_{p > t} w_p`` normalised to a peak of 1
(:func:`refined_multipliers`). :func:`refinedlr.verify.verify_refinement` judges the result.

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
import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from .bounds import as_floats
from .records import GradNormRecord
from .schedules import Tabulated

__all__ = [
    "COLLAPSE_LATE_FRACTION",
    "COLLAPSE_THRESHOLD",
    "MIN_STEPS",
    "Collapse",
    "CollapseWarning",
    "MissingNormsWarning",
    "RefineError",
    "Refinement",
    "detect_collapse",
    "fill_missing",
    "median_window",
    "refine",
    "refine_details",
    "refined_multipliers",
    "refinement_weights",
    "smooth_norms",
]

FloatArray = npt.NDArray[np.float64]
NormKind = Literal["l2", "l1"]

#: The shortest record refinement accepts.
MIN_STEPS = 4
#: :func:`detect_collapse` looks at this final fraction of the record ...
COLLAPSE_LATE_FRACTION = 0.1
#: ... and reports a collapse when its median smoothed norm is below this fraction of the median.
COLLAPSE_THRESHOLD = 0.1


class RefineError(ValueError):
    """The gradient-norm record cannot be refined (the message says why and where)."""


class MissingNormsWarning(UserWarning):
    """Some steps had no finite gradient norm and were filled by interpolation."""


class CollapseWarning(UserWarning):
    """The smoothed gradient norms collapse toward zero late in training (degenerate refinement)."""


def median_window(total_steps: int, tau: float) -> int:
    """The odd median-filter width ``k = 2 floor(floor(tau T) / 2) + 1`` for ``T`` steps.

    >>> median_window(12, 0.25), median_window(12, 0.5), median_window(1000, 0.1)
    (3, 7, 101)
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and 0.0 <= tau <= 1.0):
        raise RefineError(f"tau must be a fraction in [0, 1], got {tau!r}")
    return 2 * (math.floor(tau * total_steps) // 2) + 1


def fill_missing(norms: npt.ArrayLike) -> tuple[FloatArray, int]:
    """NaN/inf entries interpolated linearly between finite neighbours (ends take the nearest
    finite value), and how many were filled; :class:`RefineError` when nothing is finite.

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
    """Centred running median with window :func:`median_window` (step 1; start padded with the
    first value, end mirrored without repeating the last, as in the method's reference).

    >>> smooth_norms([9, 7, 5, 3, 2, 1, 1, 1, 1.5, 2, 2.5, 3], tau=0.5)
    array([9. , 7. , 5. , 3. , 2. , 1.5, 1.5, 1.5, 1.5, 2. , 2. , 2. ])
    """
    x = np.asarray(norms, dtype=np.float64)
    T = x.shape[0]
    k = median_window(T, tau)
    h = k // 2
    if h == 0:
        return np.array(x, dtype=np.float64)
    # h >= 1 needs T >= 2; every window of the output lies inside the padded record
    padded = np.concatenate([np.full(h, x[0]), x, np.pad(x, (0, h), mode="reflect")[T:]])
    out: FloatArray = ndimage.median_filter(padded, size=k)
    return out[h : h + T]


def refinement_weights(
    smoothed: npt.ArrayLike, norm: NormKind = "l2", power: float | None = None
) -> FloatArray:
    """Weights ``w_t = g_t^-p`` (step 2): ``p = 2`` for ``norm="l2"``, ``1`` for ``"l1"``, or
    ``power``.

    >>> refinement_weights([1.0, 2.0, 4.0], norm="l2")
    array([1.    , 0.25  , 0.0625])
    """
    p = _power(norm, power)
    g: FloatArray = np.asarray(smoothed, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore"):  # an overflow is refused by the caller
        return g**-p


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
    normalised: FloatArray = s / top
    return normalised


@dataclasses.dataclass(frozen=True)
class Collapse:
    """Evidence that the smoothed norms collapse toward zero late in training: ``late_ratio`` is
    their median over the last ``late_fraction`` of the steps over their median over all steps.
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
            + "; prefer linear decay, a larger tau, or a weaker power"
        )


def detect_collapse(
    smoothed: npt.ArrayLike,
    schedule: npt.ArrayLike | None = None,
    *,
    late_fraction: float = COLLAPSE_LATE_FRACTION,
    threshold: float = COLLAPSE_THRESHOLD,
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
    peak_fraction = int(np.argmax(s)) / max(T - 1, 1)
    total = float(s.sum())
    late_mass = float(s[-max(1, T // 4) :].sum() / total) if total > 0 else 0.0
    return Collapse(ratio, late_fraction, threshold, peak_fraction, late_mass)


@dataclasses.dataclass(frozen=True, eq=False)
class Refinement:
    """Every intermediate of a refinement, for plots and diagnosis (:func:`refine_details`).

    Attributes:
        norms: the record after filling missing values (length ``T`` of the source run).
        smoothed: the median-smoothed norms ``g_t``.
        weights: ``w_t = g_t^-p``.
        schedule: the refined :class:`~refinedlr.schedules.Tabulated` schedule.
        n_missing: how many entries were missing and filled.
        collapse: a :class:`Collapse` when the norms collapse late, else ``None``.
    """

    norms: FloatArray
    smoothed: FloatArray
    weights: FloatArray
    schedule: Tabulated
    n_missing: int
    collapse: Collapse | None


def _power(norm: str, power: float | None) -> float:
    if norm not in ("l1", "l2"):
        raise RefineError(
            f"norm must be 'l2' (SGD, Algorithm 1) or 'l1' (Adam, Algorithm 2), got {norm!r}"
        )
    if power is None:
        return 2.0 if norm == "l2" else 1.0
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not 0 < power < math.inf:
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
    arr = as_floats(norms, RefineError, "gradient norms must be numbers")
    if arr.ndim != 1:
        raise RefineError(f"gradient norms must be a 1-D array, got shape {arr.shape}")
    return arr, {}


def refine(
    norms: npt.ArrayLike | GradNormRecord,
    *,
    tau: float = 0.1,
    norm: NormKind = "l2",
    power: float | None = None,
    total_steps: int | None = None,
    kind: str | None = None,
) -> Tabulated:
    """A refined schedule from a gradient-norm record (Algorithm 1 for l2, 2 for l1).

    Args:
        norms: per-step gradient norms (1-D array, NaN/inf for missing steps) or a
            :class:`~refinedlr.records.GradNormRecord` (its ``norm`` kind, or its only kind).
        tau: median-smoothing window as a fraction of the record length (0: no smoothing).
        norm: ``"l2"`` (SGD; weights ``g^-2``) or ``"l1"`` (Adam-type; weights ``g^-1``).
        power: use weights ``g^-power`` instead.
        total_steps: the horizon of the next run (default: the record length; >= :data:`MIN_STEPS`).
        kind: which column of a multi-kind record to use (default: ``norm``).

    Returns:
        A :class:`~refinedlr.schedules.Tabulated` schedule (max 1, last step 0) with provenance.

    Raises:
        RefineError: a record or horizon shorter than :data:`MIN_STEPS`, no finite norm, a norm
            ``<= 0``, weights that over- or underflow, or a bad ``tau``/``norm``/``power``.

    Warns:
        MissingNormsWarning: when NaN/inf entries were filled (the count is in the message).
        CollapseWarning: when the norms collapse toward zero late in training.

    >>> refine(np.ones(7)).preview().round(6)  # constant norms: linear decay to zero
    array([1.      , 0.833333, 0.666667, 0.5     , 0.333333, 0.166667, 0.      ])
    """
    return _refine(norms, tau, norm, power, total_steps, kind).schedule


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _takes_arguments_of(f: Callable[_P, object]) -> Callable[[Callable[..., _R]], Callable[_P, _R]]:
    """Give the decorated function ``f``'s parameters (for signatures, help() and type checks)."""

    def decorate(g: Callable[..., _R]) -> Callable[_P, _R]:
        params = list(inspect.signature(f).parameters.values())
        g.__signature__ = inspect.signature(g).replace(parameters=params)  # type: ignore[attr-defined]
        return g

    return decorate


@_takes_arguments_of(refine)
def refine_details(norms: npt.ArrayLike | GradNormRecord, **options: Any) -> Refinement:
    """:func:`refine` with the same arguments, returning every intermediate (a :class:`Refinement`).

    >>> d = refine_details([4.0, 3.0, 2.0, 2.0, 2.0, 2.0], tau=0.0)
    >>> d.weights.round(4), d.collapse is None
    (array([0.0625, 0.1111, 0.25  , 0.25  , 0.25  , 0.25  ]), True)
    """
    bound = inspect.signature(refine).bind(norms, **options)
    bound.apply_defaults()
    return _refine(*bound.args, **bound.kwargs)


def _refine(
    norms: npt.ArrayLike | GradNormRecord,
    tau: float,
    norm: NormKind,
    power: float | None,
    total_steps: int | None,
    kind: str | None,
) -> Refinement:
    p = _power(norm, power)
    if (
        isinstance(total_steps, int)
        and not isinstance(total_steps, bool)
        and total_steps < MIN_STEPS
    ):
        raise RefineError(
            f"total_steps={total_steps} (--steps): a refined schedule needs a horizon of at least "
            f"{MIN_STEPS} steps to keep its shape (warm-up, peak, anneal); for a run this short "
            "use a constant learning rate"
        )
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
    collapse = detect_collapse(smoothed, values)
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
        warnings.warn(collapse.message(), CollapseWarning, stacklevel=3)
        provenance["collapse_late_ratio"] = round(collapse.late_ratio, 6)
    horizon = T if total_steps is None else total_steps
    schedule = Tabulated(total_steps=horizon, values=values, provenance=provenance)
    return Refinement(filled, smoothed, weights, schedule, n_missing, collapse)
