"""Refine, then verify: keep a refined schedule only when its own run supports it
(``docs/concepts/refine-then-verify.md``).

After a run with the refined schedule (run 2) and the linear-decay run it was refined from
(run 1), the **bound check** is ``ratio = B*(refined, n2) / B*(linear, n1)``, ``B*(s, n)`` the
bound of shape ``s`` on norms ``n`` at its best scale (:func:`refinedlr.bounds.best_scale`); with
the runs' **metric**, :mod:`refinedlr.decision` decides.

Example:
    >>> import numpy as np
    >>> from refinedlr.refinement import refine
    >>> run1 = np.r_[np.full(20, 8.0), np.ones(80)]          # large early norms
    >>> s = refine(run1, tau=0.1)
    >>> run2 = np.r_[np.full(20, 8.0), np.ones(40), np.full(40, 6.0)]
    >>> v = verify_refinement(s, run2, run1)                   # run 2's norms rose late
    >>> v.kept, v.decided_by, v.schedule.preview()[:3].round(3)
    (False, 'bound check', array([1.  , 0.99, 0.98]))
    >>> print(v.explain())
    decided by the bound check (how sure: clear): ratio 1.3476
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from .bounds import best_scale
from .decision import BOUND_MARGIN, Decision, bound_caveat, bound_verdict, decide, metric_verdict
from .records import GradNormRecord, RecordError
from .records.kinds import describe_kind, norm_kind
from .refinement import MIN_STEPS, RefineError, fill_missing
from .schedules import LinearDecay, Schedule, Tabulated

__all__ = ["CHECK_KINDS", "VERIFY_THRESHOLD", "Verification", "check_kind", "verify_refinement"]

#: The bound check favours the refined schedule below this ratio, linear decay above its inverse
#: (:data:`refinedlr.decision.BOUND_MARGIN`: the tie band in between is the bound's uncertainty).
VERIFY_THRESHOLD = BOUND_MARGIN

#: Record columns the bound check uses, in order of preference.
CHECK_KINDS: tuple[str, ...] = ("update_l2", "l2")

NormsLike = npt.ArrayLike | GradNormRecord


@dataclasses.dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_refinement`.

    Attributes:
        bound_ratio: the refined schedule's best-scale bound on its own run's norms over the
            source schedule's on the source run's norms (tie band: ``threshold``, its inverse).
        kind: the record column the bound check used (``None`` for plain arrays).
        threshold, source_metric, refined_metric, higher_is_better: as given.
        kept, decided_by: keep the refined schedule? decided by ``"metric"``, ``"bound check"``
            or ``"tie"`` (a tie goes to the source schedule).
        schedule: the chosen schedule: the refined one, or the source schedule.
        outcome: the :class:`~refinedlr.decision.Decision` with every verdict.
        caveat: why the bound check could not decide, if it could not.
    """

    bound_ratio: float
    threshold: float
    kind: str | None
    source_metric: float | None
    refined_metric: float | None
    higher_is_better: bool
    kept: bool
    decided_by: Literal["metric", "bound check", "tie"]
    schedule: Schedule
    outcome: Decision
    caveat: str | None = None

    @property
    def bound_keeps(self) -> bool:
        """What the bound check alone says: it favours the refined schedule."""
        return any(v.favours == "refined" for v in self.outcome.verdicts if v.evidence != "metric")

    @property
    def metric_keeps(self) -> bool | None:
        """What the metric alone says (``None`` without metrics): is the refined run better?"""
        m1, m2 = self.source_metric, self.refined_metric
        if m1 is None or m2 is None:
            return None
        return m2 > m1 if self.higher_is_better else m2 < m1

    @property
    def agree(self) -> bool | None:
        """Whether the metric and the bound check reach the same decision (``None``: no metric)."""
        m = self.metric_keeps
        return None if m is None else m == self.bound_keeps

    def decision(self) -> str:
        """``"keep the refined schedule"`` or ``"fall back to linear decay"``."""
        return self.outcome.headline()

    def explain(self) -> str:
        """What decided and how sure it is (:meth:`refinedlr.decision.Decision.explain`)."""
        return self.outcome.explain()

    def reasons(self) -> list[str]:
        """Why, in a few lines: the bound check, the metric, and what decided."""
        on = describe_kind(self.kind) if self.kind else "the norms given"
        bound = next(v for v in self.outcome.verdicts if v.evidence == "bound check")
        source = "linear-decay run" if self.outcome.baseline == "linear decay" else "source run"
        lines = [f"bound check on {on}, refined run / {source}: {bound.text}"]
        metric = [v for v in self.outcome.verdicts if v.evidence == "metric"]
        lines.append(f"metric: {metric[0].text}" if metric else "metric: none given")
        lines.append(self.explain())
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
    metric_spread: float | None = None,
    adam_type: bool = False,
) -> Verification:
    """Keep ``refined`` only if its own run supports it (see the module documentation).

    Args:
        refined, refined_run_norms: run 2's schedule and per-step norms (array or record).
        source_norms: run 1's per-step norms, as many; ``refined`` was refined from them.
        source_schedule: run 1's schedule and the fallback (default: linear decay).
        threshold: the bound check's tie band is ``(threshold, 1 / threshold)``.
        kind: the record column for the bound check (default: :func:`check_kind`'s).
        source_metric, refined_metric: the runs' validation metric (e.g. loss).
        higher_is_better: the metric is an accuracy-like score.
        metric_spread: the metric's seed-to-seed standard deviation (``None``: unknown).
        adam_type: Adam-type runs: a check on gradient norms (not ``update_*``) cannot decide.

    Raises:
        RefineError: mismatched lengths, bad norms, a bad threshold or metric.
        RecordError: a record lacks the column for the check.
    """
    real = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    if not (real and math.isfinite(threshold) and 0 < threshold <= 1):
        raise RefineError(f"the verify threshold must be in (0, 1], got {threshold!r}")
    m_src = _metric("source_metric", source_metric)
    m_ref = _metric("refined_metric", refined_metric)
    spread = _metric("metric_spread", metric_spread)
    if (m_src is None) != (m_ref is None):
        raise RefineError("give both metrics (source_metric and refined_metric) or neither")
    if spread is not None and spread < 0:
        raise RefineError(f"metric_spread must be >= 0, got {spread}")
    records = [r for r in (source_norms, refined_run_norms) if isinstance(r, GradNormRecord)]
    used: str | None = None
    if len(records) == 2:
        used = check_kind(records[0], records[1], kind)
    elif records:  # the same preference as for two records (check_kind)
        preferred = next((k for k in CHECK_KINDS if k in records[0].kinds), "l2")
        used = records[0].resolve_kind(preferred if kind is None else kind)
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
        try:
            arr = np.asarray(source_schedule)
            if arr.dtype.kind not in "iuf":  # not complex, text, bool or objects
                raise TypeError
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise RefineError(
                "source_schedule must be a Schedule or one real multiplier per step, got "
                f"{type(source_schedule).__name__}"
            ) from None
        if arr.ndim != 1 or arr.size != T:
            raise RefineError(
                f"source_schedule must give one multiplier per step ({T}), got shape {arr.shape}"
            )
        base_schedule = Tabulated.from_values(arr, normalize=True, provenance={"role": "source"})
    ref_bound = best_scale(base_schedule.preview(), src)[1]
    ratio = float(best_scale(refined.preview(), own)[1] / ref_bound) if ref_bound > 0 else math.inf
    caveat = _caveat(own, src, used, adam_type)
    bound = bound_verdict(ratio, caveat=caveat, margin=float(threshold))
    linear = isinstance(base_schedule, LinearDecay)
    source = "linear-decay run" if linear else "source run"
    metric = None
    if m_src is not None and m_ref is not None:
        metric = metric_verdict(
            m_src, m_ref, higher_is_better=higher_is_better, spread=spread, source=source
        )
    baseline = "linear decay" if linear else "the source schedule"
    outcome = decide(bound, metric, baseline=baseline)
    return Verification(
        bound_ratio=ratio,
        threshold=float(threshold),
        kind=used,
        source_metric=m_src,
        refined_metric=m_ref,
        higher_is_better=higher_is_better,
        kept=outcome.keep_refined,
        decided_by=outcome.decided_by,
        schedule=refined if outcome.keep_refined else base_schedule,
        outcome=outcome,
        caveat=caveat,
    )


def _caveat(own: np.ndarray, src: np.ndarray, kind: str | None, adam_type: bool) -> str | None:
    """Why the bound check cannot decide on these records (``None``: it can)."""
    if own.shape == src.shape and np.array_equal(own, src):
        return (
            "run 1 and run 2 have identical norms (the same record twice?); on the record it was "
            "refined from, the bound favours the refined schedule by construction"
        )
    if adam_type and norm_kind(kind or "") not in ("update_l1", "update_l2"):
        return (
            "gradient norms of an Adam-type run; in the refinement study they did not predict "
            'the outcome: record the update direction (kinds=("l1", "update_l2"))'
        )
    for name, arr in (("run 1", src), ("run 2", own)):
        if not np.any(arr > 0):
            return f"{name}: every norm is zero (no gradient), so the bound cannot rank schedules"
        why = bound_caveat(arr)
        if why is not None:
            return f"{name}: {why}"
    return None
