"""The deep suite's numbers: per-schedule statistics, paired comparisons, the emergent shape of
the refined schedule and the wall times, as one data object (:class:`DeepAnalysis`).

Statistics (stated in the report): a metric at a schedule's chosen learning rate is given as
``mean ± sd`` over its seeds with the range, and with a two-sided 95% Student-t interval when
there are at least 3 seeds (:func:`refinedlr_bench.stats.t_interval`). Schedules are compared with
linear decay *paired by seed* (same initialisation and data order): the per-seed differences get a
t interval; a difference counts as real only when that interval excludes 0.

The *best baseline* is the schedule that is not a refinement (linear decay and schedule-free
included) with the best mean selection metric at its chosen LR; the refined schedule, and
``refined-verified`` when the refinement study's decision for the task is given
(``verified=``), are compared with it as well. :mod:`.deep_report` writes the report.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr import read_record, summarize
from refinedlr.refinement import Refinement

from refinedlr_bench.deep import EMA_SCHEDULES, SCHEDULE_FREE, DeepSuite, Metric, ScheduleOutcome
from refinedlr_bench.runlog import read_runlog
from refinedlr_bench.stats import t_interval
from refinedlr_bench.tables import fmt_number

__all__ = [
    "LABELS",
    "Comparison",
    "DeepAnalysis",
    "analyze_deep",
    "best_baseline",
    "comp_doc",
    "compare",
    "describe",
]

LABELS = {
    "linear": "linear decay",
    "cosine": "cosine",
    "cosine-10": "cosine to 10%",
    "wsd": "warmup-stable-decay",
    "wsd-1sqrt": "WSD, 1-sqrt cooldown",
    "step": "step-wise",
    "schedule-free": "schedule-free",
    "refined": "refined",
    "linear-ema": "linear decay + weight EMA",
    "cosine-ema": "cosine + weight EMA",
}


def _f(x: float, fmt: str = ".4f") -> str:
    return fmt_number(x, fmt, missing="n/a", infinity="inf")


def describe(values: Sequence[float], fmt: str = ".4f") -> dict[str, Any]:
    """Mean, sd, range, n and (n >= 3) the 95% t interval of per-seed values, with a text form.

    >>> describe([1.0, 2.0, 3.0], ".2f")["text"]
    '2.00 ± 1.00 (1.00–3.00, n=3; 95% CI -0.48–4.48)'
    """
    x = np.asarray(list(values), dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": math.nan, "text": "n/a"}
    mean = float(x.mean()) if np.all(np.isfinite(x)) else math.inf
    sd = float(x.std(ddof=1)) if n > 1 and np.all(np.isfinite(x)) else math.nan
    doc: dict[str, Any] = {
        "n": n,
        "mean": mean,
        "sd": sd,
        "min": float(x.min()),
        "max": float(x.max()),
    }
    text = f"{_f(mean, fmt)}"
    if n > 1:
        text += f" ± {_f(sd, fmt)} ({_f(doc['min'], fmt)}–{_f(doc['max'], fmt)}, n={n}"
        if n >= 3 and math.isfinite(mean):
            _, lo, hi = t_interval(x)
            doc["ci"] = [lo, hi]
            text += f"; 95% CI {_f(lo, fmt)}–{_f(hi, fmt)}"
        text += ")"
    else:
        text += " (n=1)"
    doc["text"] = text
    return doc


class Comparison:
    """Paired comparison of ``other`` against ``reference`` on one metric (by seed).

    ``diff`` = other - reference per seed; ``verdict`` is ``"better"`` / ``"worse"`` (for
    ``other``, taking the metric's direction into account) when the 95% t interval of the mean
    difference excludes 0, else ``"no clear difference"`` (or ``"n/a"`` with fewer than 2 seeds).

    >>> m = Metric("loss", "loss", True)
    >>> Comparison(m, {0: 1.0, 1: 1.1, 2: 1.2}, {0: 2.0, 1: 2.1, 2: 2.3}).verdict
    'better'
    """

    def __init__(
        self, metric: Metric, other: Mapping[int, float], reference: Mapping[int, float]
    ) -> None:
        self.metric = metric
        seeds = sorted(set(other) & set(reference))
        self.seeds = seeds
        self.diffs = np.array([other[s] - reference[s] for s in seeds], dtype=np.float64)
        self.other_mean = float(np.mean([other[s] for s in seeds])) if seeds else math.nan
        self.reference_mean = float(np.mean([reference[s] for s in seeds])) if seeds else math.nan
        if len(seeds) >= 2 and np.all(np.isfinite(self.diffs)):
            self.mean, self.low, self.high = t_interval(self.diffs)
        else:
            self.mean = float(self.diffs.mean()) if seeds else math.nan
            self.low, self.high = -math.inf, math.inf
        self.wins = int(
            np.sum(self.diffs < 0) if metric.lower_is_better else np.sum(self.diffs > 0)
        )

    @property
    def verdict(self) -> str:
        if len(self.seeds) < 2 or not math.isfinite(self.low):
            return "n/a"
        if self.high < 0:
            return "better" if self.metric.lower_is_better else "worse"
        if self.low > 0:
            return "worse" if self.metric.lower_is_better else "better"
        return "no clear difference"

    @property
    def relative(self) -> float:
        """Mean difference relative to the reference's mean."""
        return self.mean / self.reference_mean if self.reference_mean else math.nan

    def text(self) -> str:
        f = self.metric.fmt
        return (
            f"{_f(self.mean, '+' + f)} (95% CI {_f(self.low, '+' + f)} to {_f(self.high, '+' + f)}; "
            f"{self.wins}/{len(self.seeds)} seeds better) → {self.verdict}"
        )


def compare(
    outcomes: Mapping[str, ScheduleOutcome], metric: Metric, other: str, reference: str
) -> Comparison | None:
    """Paired comparison of two schedules at their chosen learning rates."""
    if other not in outcomes or reference not in outcomes:
        return None
    return Comparison(
        metric, outcomes[other].values(metric.key), outcomes[reference].values(metric.key)
    )


def _median_norms(suite: DeepSuite, oc: ScheduleOutcome, kind: str) -> np.ndarray | None:
    if oc.best is None:
        return None
    rows = []
    for d in oc.final_runs():
        rec = read_record(suite.record_path(oc.name, oc.best, int(d["seed"])))
        v = rec.norms(kind)
        if v.size == suite.spec.steps:
            rows.append(v)
    return np.median(np.stack(rows), axis=0) if rows else None


def _shape(smoothed: np.ndarray) -> dict[str, Any]:
    T = smoothed.size
    i_min, i_max = int(np.argmin(smoothed)), int(np.argmax(smoothed))
    return {
        "first": float(smoothed[0]),
        "last": float(smoothed[-1]),
        "min": float(smoothed[i_min]),
        "min_at": i_min / max(T - 1, 1),
        "max": float(smoothed[i_max]),
        "max_at": i_max / max(T - 1, 1),
        "last_over_first": float(smoothed[-1] / smoothed[0]),
        "last_over_median": float(smoothed[-1] / np.median(smoothed)),
    }


def _summary_doc(s: Any) -> dict[str, Any]:
    """The fields of a :func:`refinedlr.summarize` result the summary keeps."""
    return {
        "peak_step": s.peak_step,
        "peak_fraction": s.peak_fraction,
        "warmup_steps": s.warmup_steps,
        "above_half_fraction": s.above_half_fraction,
        "late_mass": s.late_mass,
        "quantiles": {str(k): v for k, v in s.quantiles.items()},
        "bound_ratio_to_linear": s.bound_ratio_to_linear,
    }


def best_baseline(outcomes: Mapping[str, ScheduleOutcome], metric: Metric) -> str | None:
    """The schedule that is not a refinement with the best mean ``metric`` at its chosen LR
    (among the default arms: issue 20's EMA arms are compared with it, not candidates for it).

    >>> best_baseline({}, Metric("loss", "loss", True)) is None
    True
    """
    scores = {
        name: metric.score(float(np.mean(v)))
        for name, oc in outcomes.items()
        if not name.startswith("refined")
        and name not in EMA_SCHEDULES
        and (v := list(oc.values(metric.key).values()))
    }
    return min(scores, key=lambda n: scores[n]) if scores else None


def comp_doc(c: Comparison) -> dict[str, Any]:
    return {
        "seeds": c.seeds,
        "diffs": c.diffs.tolist(),
        "mean_diff": c.mean,
        "ci": [c.low, c.high],
        "verdict": c.verdict,
        "other_mean": c.other_mean,
        "linear_or_reference_mean": c.reference_mean,
    }


@dataclasses.dataclass
class DeepAnalysis:
    """Everything the deep report shows (computed once by :func:`analyze_deep`).

    ``table``: per schedule, the chosen LR, the grid and every metric described
    (:func:`describe`); ``comps``: every schedule against linear decay, per metric;
    ``vs_best``: the refinements against the best baseline; ``emergent``: the refined schedule's
    shape (empty without one); ``timing``: run times and loads.
    """

    outcomes: dict[str, ScheduleOutcome]
    metrics: tuple[Metric, ...]
    params: int | None
    norms_by_schedule: dict[str, np.ndarray]
    table: dict[str, Any]
    comps: dict[str, dict[str, Comparison]]
    ref_vs_cos: dict[str, Comparison | None]
    best: str | None
    verified: Mapping[str, Any] | None
    verified_as: str | None
    vs_best: dict[str, dict[str, Comparison]]
    refinement: Refinement | None
    refine_source: dict[str, Any]
    emergent: dict[str, Any]
    timing: dict[str, Any]
    loads: list[float]
    equal_terms: dict[str, dict[str, dict[str, Comparison]]] = dataclasses.field(
        default_factory=dict
    )

    @property
    def selection(self) -> Metric:
        return self.metrics[0]


def _table(suite: DeepSuite, outcomes: Mapping[str, ScheduleOutcome]) -> dict[str, Any]:
    sel = suite.spec.metrics[0]
    table: dict[str, Any] = {}
    for name, oc in outcomes.items():
        row: dict[str, Any] = {
            "best_index": oc.best,
            "best_lr": None if oc.best is None else suite.lr(oc.best),
            "grid": {str(j): suite.lr(j) for j in oc.plan.ks},
            "grid_status": oc.plan.status,
            "grid_scores": {str(j): v for j, v in sorted(oc.scores.items())},
            "seeds": sorted(oc.values(sel.key)),
        }
        for m in suite.spec.metrics:
            row[m.key] = describe(list(oc.values(m.key).values()), m.fmt)
        table[name] = row
    return table


def _comparisons(
    outcomes: Mapping[str, ScheduleOutcome],
    metrics: Sequence[Metric],
    pairs: Sequence[tuple[str, str | None, str | None]],
) -> dict[str, dict[str, Comparison]]:
    """``{label: {metric: other vs reference}}`` for ``(label, other, reference)`` pairs
    where both schedules ran."""
    out: dict[str, dict[str, Comparison]] = {}
    for label, other, reference in pairs:
        if other is None or reference is None or other not in outcomes:
            continue
        out[label] = {}
        for m in metrics:
            c = compare(outcomes, m, other, reference)
            if c is not None:
                out[label][m.key] = c
    return out


def _emergent(
    suite: DeepSuite, outcomes: Mapping[str, ScheduleOutcome], ref: Refinement | None
) -> dict[str, Any]:
    """The refined schedule's shape beside linear decay's, cosine's, WSD's and step's."""
    if ref is None:
        return {}
    med = suite.refine_source["median_norms"]
    emergent: dict[str, Any] = {
        "refined": _summary_doc(summarize(ref.schedule, norms=med, name="refined"))
    }
    for n in ("linear", "cosine", "wsd", "step"):
        if n in outcomes:
            emergent[n] = _summary_doc(summarize(outcomes[n].schedule, norms=med, name=n))
    emergent["norm_shape"] = _shape(ref.smoothed)
    emergent["window"] = ref.schedule.provenance.get("window")
    emergent["collapse"] = None if ref.collapse is None else ref.collapse.message()
    return emergent


def _timing(
    out: Path, outcomes: Mapping[str, ScheduleOutcome]
) -> tuple[dict[str, Any], list[float]]:
    runlog = read_runlog(out)
    all_runs = [d for oc in outcomes.values() for d in oc.runs.values()]
    secs = np.array([d["seconds"] for d in all_runs]) if all_runs else np.zeros(0)
    cpu = np.array([d["cpu_seconds"] / max(d["seconds"], 1e-9) for d in all_runs])
    loads = [float(d["load_end"]) for d in all_runs if d.get("load_end") is not None]
    timing: dict[str, Any] = {
        "runs": len(all_runs),
        "run_seconds_total": float(secs.sum()),
        "run_seconds_mean": float(secs.mean()) if secs.size else math.nan,
        "cpu_over_wall_mean": float(cpu.mean()) if cpu.size else math.nan,
        "load_at_run_end": [min(loads), float(np.mean(loads)), max(loads)] if loads else [],
        "invocations": runlog,
        "wall_seconds_total": float(sum(r.get("wall_seconds", 0.0) for r in runlog)),
    }
    return timing, loads


def analyze_deep(
    suite: DeepSuite, *, out: Path, verified: Mapping[str, Any] | None = None
) -> DeepAnalysis:
    """Every number of the deep report, the invocations read from ``out``.

    ``verified``: the refinement study's decision for ``refined-verified``; its row repeats the
    refined schedule's runs if the schedule was kept, linear decay's otherwise."""
    spec = suite.spec
    outcomes = suite.outcomes()
    metrics = spec.metrics
    norms_by_schedule: dict[str, np.ndarray] = {}
    for name, oc in outcomes.items():
        median = _median_norms(suite, oc, spec.norm_kind)
        if median is not None:
            norms_by_schedule[name] = median
    best = best_baseline(outcomes, metrics[0])
    verified_as = None
    if verified is not None:
        verified_as = "refined" if verified["kept"] else "linear"
        if verified_as not in outcomes:
            verified_as = None
    ref = suite.refinement
    timing, loads = _timing(out, outcomes)
    return DeepAnalysis(
        outcomes=outcomes,
        metrics=metrics,
        params=next(
            (int(d["parameters"]) for oc in outcomes.values() for d in oc.runs.values()), None
        ),
        norms_by_schedule=norms_by_schedule,
        table=_table(suite, outcomes),
        comps=_comparisons(
            outcomes, metrics, [(n, n, "linear") for n in outcomes if n != "linear"]
        ),
        ref_vs_cos={m.key: compare(outcomes, m, "refined", "cosine") for m in metrics},
        best=best,
        verified=verified,
        verified_as=verified_as,
        vs_best=_comparisons(
            outcomes,
            metrics,
            [("refined", "refined", best), ("refined-verified", verified_as, best)],
        ),
        refinement=ref,
        refine_source=suite.refine_source,
        emergent=_emergent(suite, outcomes, ref),
        timing=timing,
        loads=loads,
        equal_terms=_equal_terms(outcomes, metrics, best),
    )


def _equal_terms(
    outcomes: Mapping[str, ScheduleOutcome], metrics: Sequence[Metric], best: str | None
) -> dict[str, dict[str, dict[str, Comparison]]]:
    """Issue 20: each EMA arm against its own schedule (the last iterate of the same schedule
    tuned on its own), the best baseline and schedule-free: ``{arm: {label: {metric: c}}}``."""
    out = {}
    for arm in EMA_SCHEDULES:
        if arm not in outcomes:
            continue
        own = arm.removesuffix("-ema")
        pairs = [(f"{arm} − {own}", arm, own), (f"{arm} − {SCHEDULE_FREE}", arm, SCHEDULE_FREE)]
        if best not in (None, SCHEDULE_FREE, "linear"):
            pairs.append((f"{arm} − {best}", arm, best))
        out[arm] = _comparisons(outcomes, metrics, pairs)
    return out
