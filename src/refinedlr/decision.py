"""The decision rule: keep a refined schedule, or use linear decay, in the same words everywhere
(``refinedlr show``, ``refine``, ``verify``, the demo, :func:`refinedlr.verify.verify_refinement`).

**The metric decides when it separates the two runs (by more than the seed spread); else the bound
check, when its ratio leaves the tie band ``BOUND_MARGIN .. 1 / BOUND_MARGIN`` on informative
records (:func:`bound_caveat`); else it is a tie, and a tie goes to linear decay.** The docs page
"Refine, then verify" has the evidence behind the tie band and how sure each decision is.

>>> decide(bound_verdict(0.9655), metric_verdict(0.4012, 0.3993, spread=0.004)).explain()
'a tie (the metrics differ by no more than their seed spread; the bound ratio is inside its tie band); a tie goes to linear decay, the simpler schedule'
>>> decide(bound_verdict(0.54)).explain()
'decided by the bound check (how sure: clear): ratio 0.5400'
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "BOUND_MARGIN",
    "Decision",
    "Verdict",
    "advice_before_run",
    "bound_caveat",
    "bound_verdict",
    "decide",
    "metric_verdict",
]

#: The bound check's tie band runs from ``BOUND_MARGIN`` to ``1 / BOUND_MARGIN``.
BOUND_MARGIN = 0.95
#: A record is uninformative for the bound when its 1% largest terms carry more than this share of
#: linear decay's gradient term ``sum_t s_t^2 n_t^2`` (judgement: the deep tasks' records give 23%
#: and 41%, spans of 8x and 15x; the ViT record of issue 18, falling from 515 to 0.62, gives 99%).
DOMINANT_SHARE = 0.5
#: ... or when its norms span more than this factor (max over the 1% quantile) ...
SPAN = 1000.0
#: ... or when they are this close to constant (99% over 1% quantile): refinement = linear decay.
FLAT = 1.05

Favours = Literal["refined", "linear", "tie"]
Sure = Literal["clear", "narrow", "unknown", "tie", "uninformative"]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What one piece of evidence says: ``favours`` a schedule (or a tie), how ``sure``, in
    words (``text``, one line with the numbers)."""

    evidence: Literal["metric", "bound check"]
    favours: Favours
    sure: Sure
    text: str
    value: float


def bound_caveat(norms: npt.ArrayLike) -> str | None:
    """Why the bound says little on this record (``None``: it is informative).

    The 1% largest terms of ``sum_t (1 - t/T)^2 n_t^2`` carry more than :data:`DOMINANT_SHARE`;
    or the norms span more than :data:`SPAN`; or they are within :data:`FLAT` of constant.

    >>> print(bound_caveat(np.r_[515.0, 60, 8, np.full(997, 0.62)]))
    a few huge norms dominate the bound: the 1% largest terms carry 100% of it (max 515, 831x the median 0.62)
    >>> bound_caveat(np.ones(100) + 0.01 * np.sin(np.arange(100)))
    'the norms are nearly constant (99% and 1% quantiles within 5%): the refined schedule is about linear decay, and the bound cannot tell them apart'
    >>> bound_caveat(np.geomspace(8, 1, 100)) is None
    True
    """
    n = np.asarray(norms, dtype=np.float64)
    n = n[np.isfinite(n) & (n > 0)]
    if n.size < 2:
        return None
    T = n.size
    terms = ((1 - np.arange(T) / T) * n) ** 2
    k = max(1, round(0.01 * T))
    share = float(np.sort(terms)[-k:].sum() / terms.sum())
    med = float(np.median(n))
    if share > DOMINANT_SHARE:
        return (
            f"a few huge norms dominate the bound: the 1% largest terms carry {share:.0%} of it "
            f"(max {n.max():.3g}, {n.max() / med:.3g}x the median {med:.3g})"
        )
    lo = float(np.quantile(n, 0.01))
    if n.max() / lo > SPAN:
        return (
            f"the norms span {math.log10(n.max() / lo):.1f} orders of magnitude ({lo:.3g} to "
            f"{n.max():.3g}), so a few steps decide the bound"
        )
    if np.quantile(n, 0.99) / lo < FLAT:
        return (
            f"the norms are nearly constant (99% and 1% quantiles within {FLAT - 1:.0%}): the "
            "refined schedule is about linear decay, and the bound cannot tell them apart"
        )
    return None


def bound_verdict(
    ratio: float, *, caveat: str | None = None, margin: float = BOUND_MARGIN, on: str = ""
) -> Verdict:
    """The bound check's verdict on ``ratio`` (refined over linear decay; ``on``: which norms).

    >>> print(bound_verdict(0.9924).text)
    ratio 0.9924, inside the tie band 0.95..1.053 (the bound's own uncertainty): a tie
    """
    on = f" on {on}" if on else ""
    head = f"ratio {ratio:.4f}{on}"
    if caveat is not None:
        return Verdict(
            "bound check", "tie", "uninformative", f"{head}, but uninformative: {caveat}", ratio
        )
    lo, hi = margin, 1 / margin
    if not (ratio < lo or ratio > hi) or not math.isfinite(ratio):
        band = f"inside the tie band {lo:g}..{hi:.4g} (the bound's own uncertainty)"
        return Verdict("bound check", "tie", "tie", f"{head}, {band}: a tie", ratio)
    refined = ratio < lo
    sure: Sure = "clear" if (ratio < lo * lo if refined else ratio > hi * hi) else "narrow"
    side = f"below {lo:g}" if refined else f"above {hi:.4g}"
    which = "the refined schedule" if refined else "linear decay"
    text = f"{head}, {side}: favours {which} (how sure: {sure})"
    return Verdict("bound check", "refined" if refined else "linear", sure, text, ratio)


def metric_verdict(
    linear: float,
    refined: float,
    *,
    higher_is_better: bool = False,
    spread: float | None = None,
    source: str = "linear-decay run",
) -> Verdict:
    """The metric's verdict: the refined run's value against the linear-decay run's (``source``
    names that run); ``spread``: the seed-to-seed standard deviation (``None``: unknown).

    >>> metric_verdict(0.40, 0.30, spread=0.02).text
    'linear-decay run 0.4, refined run 0.3 (lower is better): the refined run is better by 0.1, 5x the seed spread (sd 0.02; how sure: clear)'
    """
    diff = refined - linear
    gain = diff if higher_is_better else -diff
    better = "higher" if higher_is_better else "lower"
    head = f"{source} {linear:.6g}, refined run {refined:.6g} ({better} is better)"
    if gain == 0 or (spread is not None and abs(diff) <= spread):
        within = "" if spread is None else f", within the seed spread (sd {spread:.4g})"
        return Verdict(
            "metric", "tie", "tie", f"{head}: they differ by {abs(diff):.4g}{within}: a tie", diff
        )
    which = "refined run" if gain > 0 else source
    if spread is None or spread <= 0:
        sure: Sure = "unknown"
        how = "how sure: unknown (one value per run and no seed spread given)"
    else:
        z = abs(diff) / spread
        sure = "clear" if z >= 2 else "narrow"
        how = f"{z:.2g}x the seed spread (sd {spread:.4g}; how sure: {sure})"
    text = f"{head}: the {which} is better by {abs(diff):.4g}, {how}"
    return Verdict("metric", "refined" if gain > 0 else "linear", sure, text, diff)


_TIE_WHY = {
    "metric": "the metrics differ by no more than their seed spread",
    "tie": "the bound ratio is inside its tie band",
    "uninformative": "the bound is uninformative on these records",
}


@dataclasses.dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide`."""

    keep_refined: bool
    decided_by: Literal["metric", "bound check", "tie"]
    sure: Sure
    verdicts: tuple[Verdict, ...]
    baseline: str = "linear decay"

    def headline(self) -> str:
        """``"keep the refined schedule"`` or ``"fall back to linear decay"``."""
        return "keep the refined schedule" if self.keep_refined else f"fall back to {self.baseline}"

    def explain(self) -> str:
        """What decided and how sure it is, in one line."""
        if self.decided_by == "tie":
            kinds = [v.sure if v.evidence == "bound check" else "metric" for v in self.verdicts]
            why = "; ".join(_TIE_WHY[k] for k in kinds) or "no evidence was given"
            simpler = ", the simpler schedule" if self.baseline == "linear decay" else ""
            return f"a tie ({why}); a tie goes to {self.baseline}{simpler}"
        v = next(v for v in self.verdicts if v.evidence == self.decided_by)
        bound = v.evidence == "bound check"
        what = f"ratio {v.value:.4f}" if bound else f"difference {abs(v.value):.4g}"
        return f"decided by the {self.decided_by} (how sure: {self.sure}): {what}"


def decide(
    bound: Verdict | None = None, metric: Verdict | None = None, *, baseline: str = "linear decay"
) -> Decision:
    """The rule (see the module documentation): the metric, else the bound check, else a tie."""
    verdicts = tuple(v for v in (metric, bound) if v is not None)
    for v in verdicts:
        if v.favours != "tie":
            return Decision(v.favours == "refined", v.evidence, v.sure, verdicts, baseline)
    return Decision(False, "tie", "tie", verdicts, baseline)


def advice_before_run(bound: Verdict, *, risky: bool = False) -> str:
    """What to do with a refined schedule no run has used yet (``show``, ``refine``).

    ``bound`` is on the record it was refined from, which favours it by construction, so it can
    only say "worth a try"; ``risky``: the late decline of :func:`refinedlr.risk.refinement_risk`.

    >>> print(advice_before_run(bound_verdict(0.9924)))
    use linear decay: the bound ratio is inside its tie band, and a tie goes to linear decay, the simpler schedule. To try the refined schedule anyway, train once with it and let refinedlr verify decide
    """
    check = "To try the refined schedule anyway, train once with it and let refinedlr verify decide"
    late = (
        "; the norms fall late (the warning above), the pattern on which refinement most often lost"
    )
    late = late if risky else ""
    if bound.favours == "refined":
        head = "worth a try" if not risky else "use linear decay, or check the refined schedule"
        return (
            f"{head}: its bound beats linear decay's beyond the tie band on the record it was "
            f"refined from, which favours it by construction{late}. Train once with it and let "
            "refinedlr verify decide"
        )
    reasons = {"tie": _TIE_WHY["tie"], "uninformative": "the bound is uninformative on this record"}
    why = reasons.get(bound.sure, "the bound favours linear decay")
    tie = ", and a tie goes to linear decay, the simpler schedule" if bound.favours == "tie" else ""
    return f"use linear decay: {why}{tie}{late}. {check}"
