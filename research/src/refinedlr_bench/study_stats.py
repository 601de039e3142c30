"""Statistics of the refinement study: ratios to linear decay per dataset and across datasets.

Input: the per-dataset digests written by ``refinedlr bench study convex``
(``OUT/convex/<dataset>.json``, :func:`~.study_convex.outcome_to_json`). Every comparison is with
linear decay on the same dataset and optimizer, paired by seed (:func:`.stats.paired_log_ratio`),
and across datasets the geometric mean with a t interval over datasets
(:func:`.stats.geometric_mean_ratio`), as in the convex suite's report.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr.verify import VERIFY_THRESHOLD

from refinedlr_bench.stats import RatioCI, geometric_mean_ratio, paired_log_ratio

__all__ = [
    "OPTS",
    "ArmSummary",
    "load_digests",
    "mean_bound",
    "mean_cost",
    "mechanism_rows",
    "per_dataset",
    "select_method",
    "summaries",
    "summarize_arm",
]


def load_digests(folder: Path, datasets: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{dataset: digest}`` from ``folder/<dataset>.json`` (all files, or those of ``datasets``)."""
    out: dict[str, dict[str, Any]] = {}
    names = sorted(p.stem for p in folder.glob("*.json")) if datasets is None else list(datasets)
    for name in names:
        p = folder / f"{name}.json"
        if p.exists():
            out[name] = json.loads(p.read_text(encoding="utf-8"))
    return out


def _gaps(digest: Mapping[str, Any], optimizer: str, arm: str) -> np.ndarray | None:
    a = digest["arms"].get(f"{optimizer}|{arm}")
    if a is None or a["gap"] is None:
        return None
    return np.array([float(v) for v in a["gap"]], dtype=np.float64)


def per_dataset(
    digests: Mapping[str, Mapping[str, Any]], optimizer: str, arm: str, reference: str = "linear"
) -> dict[str, RatioCI]:
    """``{dataset: ratio of arm's final gap to reference's}``, paired by seed."""
    out: dict[str, RatioCI] = {}
    for name, d in digests.items():
        g = _gaps(d, optimizer, arm)
        ref = _gaps(d, optimizer, reference)
        if g is not None and ref is not None:
            out[name] = paired_log_ratio(g, ref)
    return out


@dataclasses.dataclass(frozen=True)
class ArmSummary:
    """An arm across datasets for one optimizer."""

    arm: str
    optimizer: str
    ratios: dict[str, RatioCI]
    overall: RatioCI
    wins: int
    ties: int
    losses: int

    @property
    def worst(self) -> tuple[str, RatioCI]:
        """The dataset with the largest ratio."""
        name = max(self.ratios, key=lambda k: self.ratios[k].ratio)
        return name, self.ratios[name]

    @property
    def worst_high(self) -> tuple[str, RatioCI]:
        """The dataset whose interval reaches highest (the worst case beyond the interval)."""
        name = max(self.ratios, key=lambda k: self.ratios[k].log_low)
        return name, self.ratios[name]


def summarize_arm(
    digests: Mapping[str, Mapping[str, Any]], optimizer: str, arm: str
) -> ArmSummary | None:
    """The :class:`ArmSummary` of ``arm`` (``None`` if it ran on no dataset)."""
    r = per_dataset(digests, optimizer, arm)
    if not r:
        return None
    out = [c.outcome for c in r.values()]
    return ArmSummary(
        arm=arm,
        optimizer=optimizer,
        ratios=r,
        overall=geometric_mean_ratio(list(r.values())),
        wins=out.count("win"),
        ties=out.count("tie"),
        losses=out.count("loss"),
    )


def select_method(
    summaries: Mapping[str, Sequence[ArmSummary]], candidates: Sequence[str]
) -> tuple[str, list[tuple[str, int, float]]]:
    """The development-split selection rule, fixed before the development results were seen.

    Among ``candidates`` (arms that apply to both optimizers), the fewest per-dataset losses
    against linear decay summed over Adam and SGD; ties broken by the smallest mean over the two
    optimizers of the log geometric-mean ratio; then by name. Returns the winner and the ranking
    ``[(arm, losses, mean log ratio)]``.
    """
    rows = []
    for arm in candidates:
        ss = summaries.get(arm, ())
        if len(ss) < 2:
            continue
        losses = sum(s.losses for s in ss)
        mlog = float(np.mean([s.overall.log_mean for s in ss]))
        rows.append((arm, losses, mlog if math.isfinite(mlog) else math.inf))
    rows.sort(key=lambda r: (r[1], r[2], r[0]))
    if not rows:
        raise ValueError("no candidate ran on both optimizers")
    return rows[0][0], rows


#: The virtual "refine, then verify" arms: name -> (candidate arm, its verification run, linear
#: decay's verification run, extra single runs it costs).
VERIFIED_ARMS: dict[str, tuple[str, str, str, int]] = {
    "refined-verified": ("refined-0.1", "verify-refined-0.1", "verify-linear", 0),
    "refined-verified-1run": ("refined-0.1", "verify-refined-at-linear", "verify-linear", 1),
    "pilot-verified-0.1": ("pilot-0.1", "verify-pilot-0.1", "verify-linear-pilot-0.1", 2),
}


def add_verified_arms(
    digests: Mapping[str, dict[str, Any]], *, threshold: float = VERIFY_THRESHOLD
) -> None:
    """Add the virtual "refine, then verify" arms of :data:`VERIFIED_ARMS` (in place).

    A verified arm compares the best-scale last-iterate bound of the candidate's schedule on its
    own recorded run (``bound_self``: l2 gradient norms for SGD, the l2 norm of Adam's update
    direction for Adam) with linear decay's on its own run; it keeps the candidate (its tuned
    result) when the ratio is below ``threshold``, else falls back to linear decay (its tuned
    result). Only recorded norms decide, never the final objective.

    * ``refined-verified``: the tuned refined run against the tuned linear run; compute = a linear
      sweep and a refined sweep (the paper's pipeline).
    * ``refined-verified-1run``: one run of the refined schedule at linear decay's tuned LR decides;
      the refined sweep is paid only when it is kept.
    * ``pilot-verified-0.1``: the 10% pilot's refined schedule and linear decay, one full-horizon run
      each at the pilot's tuned LR, decide; then one full sweep (of the kept schedule).
    """
    for d in digests.values():
        for opt in ("adam", "sgd"):
            arms = d["arms"]
            for name, (cand, vc, vl, extra) in VERIFIED_ARMS.items():
                src = arms.get(f"{opt}|{cand}")
                lin = arms.get(f"{opt}|linear")
                bc = (arms.get(f"{opt}|{vc}") or {}).get("bound_self")
                bl = (arms.get(f"{opt}|{vl}") or {}).get("bound_self")
                if src is None or lin is None or bc is None or bl is None:
                    continue
                ratio = float(bc) / float(bl)
                keep = math.isfinite(ratio) and ratio < threshold
                chosen = src if keep else lin
                if name == "refined-verified":
                    cost = src["cost_total"]
                elif name == "refined-verified-1run":
                    cost = lin["cost_total"] + (src["cost_own"] if keep else float(extra))
                else:
                    pilot = arms[f"{opt}|pilot-linear-0.1"]["cost_own"]
                    cost = pilot + extra + (src["cost_own"] if keep else lin["cost_own"])
                arms[f"{opt}|{name}"] = {
                    **chosen,
                    "arm": name,
                    "cost_own": chosen["cost_own"],
                    "cost_total": cost,
                    "verified": {"bound_ratio": ratio, "kept": keep, "threshold": threshold},
                }


# ----------------------------------------------------------------------------------------------
# numbers the report and its figures share

#: The optimizers of the convex study.
OPTS = ("adam", "sgd")


def summaries(
    digests: Mapping[str, dict[str, Any]], arms: Sequence[str]
) -> dict[str, dict[str, ArmSummary]]:
    """``{arm: {optimizer: summary}}`` of the arms that ran."""
    out: dict[str, dict[str, ArmSummary]] = {}
    for a in arms:
        for o in OPTS:
            s = summarize_arm(digests, o, a)
            if s is not None:
                out.setdefault(a, {})[o] = s
    return out


def mean_cost(digests: Mapping[str, dict[str, Any]], opt: str, arm: str) -> float:
    """Mean compute of ``arm`` over the datasets (full-horizon runs per seed)."""
    c = [
        float(d["arms"][f"{opt}|{arm}"]["cost_total"])
        for d in digests.values()
        if f"{opt}|{arm}" in d["arms"]
    ]
    return float(np.mean(c)) if c else math.nan


def mean_bound(digests: Mapping[str, dict[str, Any]], opt: str, arm: str) -> float:
    """Geometric mean over datasets of the arm's bound ratio to linear decay on the linear run's
    record (``diagnosis.bound_linrec``; ``nan`` where there is none, e.g. virtual arms)."""
    v = [
        float(d["arms"][f"{opt}|{arm}"]["diagnosis"]["bound_linrec"])
        for d in digests.values()
        if f"{opt}|{arm}" in d["arms"]
        and d["arms"][f"{opt}|{arm}"].get("diagnosis")
        and "verified" not in d["arms"][f"{opt}|{arm}"]
    ]
    v = [x for x in v if x > 0 and math.isfinite(x)]
    return float(np.exp(np.mean(np.log(v)))) if v else math.nan


def mechanism_rows(
    digests: Mapping[str, dict[str, Any]], opt: str, arm: str
) -> list[tuple[str, dict[str, Any], float]]:
    """``(dataset, the arm's diagnosis, observed gap ratio to linear decay)`` per dataset."""
    rows = []
    for name, d in digests.items():
        a = d["arms"].get(f"{opt}|{arm}")
        lin = d["arms"].get(f"{opt}|linear")
        if a is None or lin is None or a.get("diagnosis") is None:
            continue
        g = np.array([float(v) for v in a["gap"]])
        gl = np.array([float(v) for v in lin["gap"]])
        obs = float(np.exp(np.mean(np.log(np.maximum(g, 1e-12) / np.maximum(gl, 1e-12)))))
        rows.append((name, a["diagnosis"], obs))
    return rows
