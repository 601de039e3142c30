"""Refine, then verify: keep a refined schedule only when its own run supports it.

The paper's refined schedule often loses to linear decay, and the last-iterate bound computed on
the *source* run's norms always prefers it (refinement minimises that bound). Computed on the
norms each schedule *itself* produced, the bound separates wins from losses much better. So, after
one run with the refined schedule (run 2) and the linear-decay run it was refined from (run 1):

* **bound check**: ``ratio = B*(refined, n2) / B*(linear, n1)``, where ``B*(s, n)`` is the
  last-iterate bound of shape ``s`` on norms ``n`` at its best scale
  (:func:`refinedlr.bounds.best_scale`, so ``D`` and the learning rates cancel). The bound check
  keeps the refined schedule when ``ratio < threshold`` (:data:`VERIFY_THRESHOLD`).
* **metric**: a user who has both runs also has their validation metric; when it is given, the
  better run decides (the refined schedule must be strictly better), and the bound check is
  reported beside it, with whether the two agree.

The norms are those of the optimizer's step direction: the l2 gradient norm for SGD; for Adam-type
optimizers the l2 norm of the update direction ``m_hat / (sqrt(v_hat) + eps)`` (record it with the
recorder kind ``update_l2``). With records, the check uses ``update_l2`` when both runs have it,
otherwise ``l2``.

Example:
    >>> import numpy as np
    >>> from refinedlr.refinement import refine
    >>> run1 = np.r_[np.full(20, 8.0), np.ones(80)]          # large early norms
    >>> s = refine(run1, tau=0.1)
    >>> verify_refinement(s, run1, run1).kept                  # run 2's norms look the same
    True
    >>> run2 = np.r_[np.full(20, 8.0), np.ones(40), np.full(40, 6.0)]
    >>> v = verify_refinement(s, run2, run1)                   # run 2's norms rose late
    >>> v.kept, v.schedule.preview()[:3].round(3)
    (False, array([1.  , 0.99, 0.98]))
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from .bounds import best_scale
from .records import GradNormRecord, RecordError
from .refinement import MIN_STEPS, RefineError, fill_missing
from .schedules import LinearDecay, Schedule, Tabulated

__all__ = ["CHECK_KINDS", "VERIFY_THRESHOLD", "Verification", "check_kind", "verify_refinement"]

#: The bound check keeps the refined schedule when its bound ratio is below this.
VERIFY_THRESHOLD = 0.95

#: Record columns the bound check uses, in order of preference.
CHECK_KINDS: tuple[str, ...] = ("update_l2", "l2")

NormsLike = npt.ArrayLike | GradNormRecord


@dataclasses.dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_refinement`.

    Attributes:
        bound_ratio: the refined schedule's best-scale last-iterate bound on its own run's norms
            over the source schedule's bound on the source run's norms.
        threshold: the bound check keeps the refined schedule below this ratio.
        kind: the record column the bound check used (``None`` for plain arrays).
        source_metric, refined_metric: the runs' metric values, if given.
        higher_is_better: how to compare the metrics.
        kept: the decision: keep the refined schedule (else fall back to the source schedule).
        decided_by: ``"metric"`` when both metrics were given, else ``"bound"``.
        schedule: the chosen schedule: the refined one, or the source schedule (linear decay
            unless another was given) on the same horizon.
    """

    bound_ratio: float
    threshold: float
    kind: str | None
    source_metric: float | None
    refined_metric: float | None
    higher_is_better: bool
    kept: bool
    decided_by: Literal["metric", "bound"]
    schedule: Schedule

    @property
    def bound_keeps(self) -> bool:
        """What the bound check alone says: ``bound_ratio < threshold``."""
        return self.bound_ratio < self.threshold

    @property
    def metric_keeps(self) -> bool | None:
        """What the metric alone says (``None`` without metrics): is the refined run better?"""
        if self.source_metric is None or self.refined_metric is None:
            return None
        if self.higher_is_better:
            return self.refined_metric > self.source_metric
        return self.refined_metric < self.source_metric

    @property
    def agree(self) -> bool | None:
        """Whether the metric and the bound check reach the same decision (``None``: no metric)."""
        m = self.metric_keeps
        return None if m is None else m == self.bound_keeps

    def decision(self) -> str:
        """``"keep the refined schedule"`` or ``"fall back to linear decay"``."""
        return "keep the refined schedule" if self.kept else "fall back to linear decay"

    def reasons(self) -> list[str]:
        """Why, in a few lines: the bound check, the metric, and whether they agree."""
        on = f" ({self.kind} norms)" if self.kind else ""
        verdict = "supports" if self.bound_keeps else "does not support"
        lines = [
            f"bound check{on}: refined run / linear-decay run = {self.bound_ratio:.4f}, "
            f"threshold {self.threshold:g}: {verdict} the refined schedule"
        ]
        if self.metric_keeps is not None:
            better = "higher" if self.higher_is_better else "lower"
            lines.append(
                f"metric ({better} is better): linear-decay run {self.source_metric:.6g}, "
                f"refined run {self.refined_metric:.6g}: the "
                f"{'refined' if self.metric_keeps else 'linear-decay'} run is better"
            )
            lines.append(
                "the metric and the bound check agree"
                if self.agree
                else "the metric and the bound check disagree; the metric decides"
            )
        else:
            lines.append("no metric given: the bound check decides")
        return lines


def check_kind(source: GradNormRecord, refined_run: GradNormRecord, kind: str | None = None) -> str:
    """The column both records share for the bound check: ``kind``, else ``update_l2``, else ``l2``.

    Raises :class:`~refinedlr.records.RecordError` naming the record that lacks it.

    >>> a = GradNormRecord.from_arrays({"l2": [1.0, 1, 1, 1], "update_l2": [2.0, 2, 2, 2]})
    >>> b = GradNormRecord.from_arrays({"l2": [1.0, 1, 1, 1]})
    >>> check_kind(a, a), check_kind(a, b)
    ('update_l2', 'l2')
    """
    wanted = (kind,) if kind is not None else CHECK_KINDS
    for k in wanted:
        if k in source.kinds and k in refined_run.kinds:
            return k
    if kind is None and len(source.kinds) == 1 and source.kinds == refined_run.kinds:
        return source.kinds[0]
    for rec in (source, refined_run):
        if not any(k in rec.kinds for k in wanted):
            raise RecordError(
                f"no {' or '.join(wanted)} column for the bound check; the record has "
                f"{', '.join(rec.kinds)}",
                path=rec.source,
            )
    raise RecordError(
        f"the two records share no column for the bound check ({' or '.join(wanted)}): "
        f"{source.source} has {', '.join(source.kinds)}, "
        f"{refined_run.source} has {', '.join(refined_run.kinds)}"
    )


def _norms(what: str, values: NormsLike, kind: str | None) -> tuple[np.ndarray, str]:
    if isinstance(values, GradNormRecord):
        assert kind is not None
        arr, where = values.norms(kind), values.source
    else:
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise RefineError(f"{what}: norms must be numbers ({exc})") from None
        where = what
    if arr.ndim != 1 or arr.size < MIN_STEPS:
        raise RefineError(f"{where}: needs a 1-D record of at least {MIN_STEPS} steps")
    try:
        filled, _ = fill_missing(arr)
    except RefineError as exc:
        raise RefineError(f"{where}: {exc}") from None
    if np.any(filled < 0):
        raise RefineError(f"{where}: norms must be non-negative")
    return filled, where


def _metric(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RefineError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def verify_refinement(
    refined: Schedule,
    refined_run_norms: NormsLike,
    source_norms: NormsLike,
    *,
    source_schedule: Schedule | npt.ArrayLike | None = None,
    threshold: float = VERIFY_THRESHOLD,
    kind: str | None = None,
    source_metric: float | None = None,
    refined_metric: float | None = None,
    higher_is_better: bool = False,
) -> Verification:
    """Keep ``refined`` only if its own run supports it (see the module documentation).

    Args:
        refined: the refined schedule run 2 used (on run 2's horizon).
        refined_run_norms: run 2's per-step norms (an array, or a record).
        source_norms: run 1's per-step norms (the run ``refined`` was refined from).
        source_schedule: run 1's schedule (default: linear decay ``1 - t/T``); also the
            fallback.
        threshold: the bound check keeps the refined schedule below this ratio.
        kind: the record column for the bound check (default ``update_l2`` when both records
            have it, else ``l2``; :func:`check_kind`).
        source_metric, refined_metric: the runs' validation metric (e.g. loss); when both are
            given they decide.
        higher_is_better: the metric is an accuracy-like score.

    All three (the schedule and both records) must cover the same number of steps: the bound
    scales with the horizon, so runs of different lengths cannot be compared this way.

    Raises:
        RefineError: mismatched lengths, bad norms, a bad threshold or metric.
        RecordError: a record lacks the column for the check.
    """
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise RefineError(f"the verify threshold must be a positive number, got {threshold!r}")
    m_src = _metric("source_metric", source_metric)
    m_ref = _metric("refined_metric", refined_metric)
    if (m_src is None) != (m_ref is None):
        raise RefineError("give both metrics (source_metric and refined_metric) or neither")
    used: str | None = None
    if isinstance(source_norms, GradNormRecord) and isinstance(refined_run_norms, GradNormRecord):
        used = check_kind(source_norms, refined_run_norms, kind)
    elif isinstance(source_norms, GradNormRecord) or isinstance(refined_run_norms, GradNormRecord):
        rec = source_norms if isinstance(source_norms, GradNormRecord) else refined_run_norms
        assert isinstance(rec, GradNormRecord)
        used = rec.resolve_kind(kind if kind is not None else "l2")
    own, own_where = _norms("the refined run's norms", refined_run_norms, used)
    src, src_where = _norms("the source run's norms", source_norms, used)
    T = refined.total_steps
    for where, arr in ((own_where, own), (src_where, src)):
        if arr.size != T:
            raise RefineError(
                f"{where}: {arr.size} steps, but the refined schedule runs {T}: verify compares "
                "runs of the same horizon (refine with --steps / total_steps= to match)"
            )
    if source_schedule is None:
        base_schedule: Schedule = LinearDecay(total_steps=T)
    elif isinstance(source_schedule, Schedule):
        base_schedule = source_schedule.with_horizon(T)
    else:
        arr = np.asarray(source_schedule, dtype=np.float64)
        if arr.ndim != 1 or arr.size != T:
            raise RefineError(
                f"source_schedule must give one multiplier per step ({T}), got shape {arr.shape}"
            )
        base_schedule = Tabulated.from_values(arr, normalize=True, provenance={"role": "source"})
    ref_bound = best_scale(base_schedule.preview(), src)[1]
    ratio = float(best_scale(refined.preview(), own)[1] / ref_bound) if ref_bound > 0 else math.inf
    bound_keeps = ratio < threshold
    if m_src is not None and m_ref is not None:
        kept = m_ref > m_src if higher_is_better else m_ref < m_src
        decided_by: Literal["metric", "bound"] = "metric"
    else:
        kept, decided_by = bound_keeps, "bound"
    return Verification(
        bound_ratio=ratio,
        threshold=float(threshold),
        kind=used,
        source_metric=m_src,
        refined_metric=m_ref,
        higher_is_better=higher_is_better,
        kept=bool(kept),
        decided_by=decided_by,
        schedule=refined if kept else base_schedule,
    )
