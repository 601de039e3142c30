"""The convex suite's numbers: every comparison its report shows, as small data objects.

:func:`analyze` turns the per-dataset outcomes into comparisons with linear decay (paired by
seed, :mod:`.stats`), geometric means over datasets, win/tie/loss counts, the bound-vs-practice
rank correlations and the *best baseline* of each optimizer: the schedule that is not a refinement
(linear decay included) with the smallest geometric-mean gap ratio; refinement is also compared
with it directly (paired by seed on every dataset), not only with linear decay.
:mod:`.convex_report` turns an :class:`Analysis` into prose and tables.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from refinedlr_bench.convex import DatasetOutcome
from refinedlr_bench.schedule_arms import SCHEDULE_ARMS
from refinedlr_bench.stats import (
    RatioCI,
    geometric_mean_ratio,
    paired_log_ratio,
    rank_correlation,
    share_of_gain,
    t_interval,
    win_tie_loss,
)

__all__ = [
    "REFERENCE",
    "SCHEDULE_FREE",
    "Analysis",
    "Entry",
    "EqualTermsRow",
    "RefinedShape",
    "analyze",
    "equal_terms",
    "is_baseline",
    "is_default",
    "late_ratio",
    "refined_shapes",
    "schedule_free_gain",
    "share_of_schedule_free",
]

REFERENCE = "linear"


def is_baseline(method: str) -> bool:
    """A schedule a user could pick without refinement (not a ``refined*`` arm).

    >>> is_baseline("cosine-10"), is_baseline("schedule-free"), is_baseline("refined-0.1")
    (True, True, False)
    """
    return not method.startswith("refined")


def is_default(method: str) -> bool:
    """One of the suite's default schedules (not an equal-terms arm of issue 20: momentum,
    averaging, schedule-free's parts, Adam's beta2).

    >>> is_default("schedule-free"), is_default("sf-beta-0.5"), is_default("my-arm")
    (True, False, True)
    """
    arm = SCHEDULE_ARMS.get(method)
    return arm is None or arm.family == "default"


@dataclasses.dataclass
class Entry:
    """One (dataset, optimizer, method) at its chosen LR."""

    dataset: str
    optimizer: str
    method: str
    lr: float
    k: int
    status: str
    gap: tuple[float, float, float]  # mean, low, high over seeds
    test_acc: tuple[float, float, float]
    ratio: RatioCI | None  # to linear decay, paired by seed
    bound: float
    gaps: list[float]


@dataclasses.dataclass
class Analysis:
    """Everything the report shows, per optimizer."""

    methods: list[str]
    optimizers: list[str]
    datasets: list[str]
    entries: dict[tuple[str, str, str], Entry]  # (optimizer, dataset, method)
    overall: dict[tuple[str, str], RatioCI]  # (optimizer, method): geometric mean over datasets
    wtl: dict[tuple[str, str], tuple[int, int, int]]
    spearman: dict[tuple[str, str], float]  # (optimizer, dataset)
    best_baseline: dict[str, str]  # optimizer -> the baseline with the smallest geometric mean
    vs_best: dict[tuple[str, str], RatioCI]  # (optimizer, refined method) -> geometric mean
    vs_best_wtl: dict[tuple[str, str], tuple[int, int, int]]
    vs_best_entries: dict[tuple[str, str, str], RatioCI]  # (optimizer, dataset, method)

    def versus(self, opt: str, method: str, other: str) -> tuple[RatioCI, tuple[int, int, int]]:
        """``method`` against ``other`` (geometric mean over the datasets where both ran, of the
        per-dataset ratios paired by seed) and the per-dataset win/tie/loss counts."""
        rs = [
            paired_log_ratio(em.gaps, eo.gaps)
            for d in self.datasets
            if (em := self.entries.get((opt, d, method))) is not None
            and (eo := self.entries.get((opt, d, other))) is not None
        ]
        return geometric_mean_ratio(rs), win_tie_loss(rs)


def _entries(
    outcomes: Sequence[DatasetOutcome], methods: Sequence[str], optimizers: Sequence[str]
) -> tuple[dict[tuple[str, str, str], Entry], dict[tuple[str, str], float]]:
    """Every (optimizer, dataset, method) at its chosen LR, and the Spearman correlation of the
    bound ranking with the observed ranking per (optimizer, dataset)."""
    entries: dict[tuple[str, str, str], Entry] = {}
    spearman: dict[tuple[str, str], float] = {}
    for oc in outcomes:
        for opt in optimizers:
            ref = oc.chosen(opt, REFERENCE)
            obs, bnd = [], []
            for m in methods:
                c = oc.chosen(opt, m)
                if c is None:
                    continue
                ratio = None
                if ref is not None and m != REFERENCE:
                    ratio = paired_log_ratio(c.gap, ref.gap)
                e = Entry(
                    dataset=oc.name,
                    optimizer=opt,
                    method=m,
                    lr=c.lr,
                    k=c.k,
                    status=oc.status(opt, m),
                    gap=t_interval(c.gap),
                    test_acc=t_interval(c.test_acc),
                    ratio=ratio,
                    bound=oc.bound(opt, m),
                    gaps=[float(g) for g in c.gap],
                )
                entries[(opt, oc.name, m)] = e
                obs.append(e.gap[0])
                bnd.append(e.bound)
            spearman[(opt, oc.name)] = rank_correlation(bnd, obs)
    return entries, spearman


def analyze(
    outcomes: Sequence[DatasetOutcome], methods: Sequence[str], optimizers: Sequence[str]
) -> Analysis:
    """Comparisons with linear decay, geometric means, win/tie/loss and rank correlations."""
    entries, spearman = _entries(outcomes, methods, optimizers)
    a = Analysis(
        methods=list(methods),
        optimizers=list(optimizers),
        datasets=[oc.name for oc in outcomes],
        entries=entries,
        overall={},
        wtl={},
        spearman=spearman,
        best_baseline={},
        vs_best={},
        vs_best_wtl={},
        vs_best_entries={},
    )
    for opt in optimizers:
        for m in methods:
            rs = [
                e.ratio
                for (o, _, mm), e in entries.items()
                if o == opt and mm == m and e.ratio is not None
            ]
            if m != REFERENCE and rs:
                a.overall[(opt, m)] = geometric_mean_ratio(rs)
                a.wtl[(opt, m)] = win_tie_loss(rs)
        _versus_best(a, opt)
    return a


def _versus_best(a: Analysis, opt: str) -> None:
    """Find the best baseline of ``opt`` among the default schedules and compare every
    refinement with it (in place)."""
    scores = {
        m: (0.0 if m == REFERENCE else a.overall[(opt, m)].log_mean)
        for m in a.methods
        if is_baseline(m) and is_default(m) and (m == REFERENCE or (opt, m) in a.overall)
    }
    if not scores:
        return
    b = min(scores, key=lambda m: scores[m])
    a.best_baseline[opt] = b
    for m in a.methods:
        if is_baseline(m):
            continue
        rs = []
        for d in a.datasets:
            em, eb = a.entries.get((opt, d, m)), a.entries.get((opt, d, b))
            if em is None or eb is None:
                continue
            r = paired_log_ratio(em.gaps, eb.gaps)
            a.vs_best_entries[(opt, d, m)] = r
            rs.append(r)
        if rs:
            a.vs_best[(opt, m)] = geometric_mean_ratio(rs)
            a.vs_best_wtl[(opt, m)] = win_tie_loss(rs)


# ----------------------------------------------------------------------------------------------
# refined schedules: shape diagnostics


def late_ratio(oc: DatasetOutcome, optimizer: str, late_fraction: float = 0.1) -> float:
    """Median norm over the last ``late_fraction`` of the best linear run / median overall."""
    norms = oc.linear_norms.get(optimizer)
    if norms is None:
        return math.nan
    g = norms[:, 0 if optimizer == "adam" else 1]
    n_late = max(1, round(late_fraction * g.size))
    return float(np.median(g[-n_late:]) / np.median(g))


@dataclasses.dataclass(frozen=True)
class RefinedShape:
    """The shape of one refined schedule (dataset, optimizer, method) and its outcome."""

    dataset: str
    optimizer: str
    method: str
    peak_at: float  # fraction of training
    at: tuple[float, float, float]  # the multiplier at 50%, 75% and 90% of training
    late_ratio: float
    collapse: bool
    ratio: RatioCI | None  # gap ratio to linear decay


def refined_shapes(outcomes: Sequence[DatasetOutcome], a: Analysis) -> list[RefinedShape]:
    """Every refined schedule (provenance ``method == "refine"``) of the outcomes."""
    out = []
    for oc in outcomes:
        for opt in a.optimizers:
            for m in a.methods:
                s = oc.schedules.get((opt, m))
                prov = getattr(s, "provenance", None)
                if s is None or not prov or prov.get("method") != "refine":
                    continue
                y = s.preview()
                T = y.size
                e = a.entries.get((opt, oc.name, m))
                out.append(
                    RefinedShape(
                        dataset=oc.name,
                        optimizer=opt,
                        method=m,
                        peak_at=float(np.argmax(y) / max(T - 1, 1)),
                        at=tuple(float(y[int(f * (T - 1))]) for f in (0.5, 0.75, 0.9)),  # type: ignore[arg-type]
                        late_ratio=late_ratio(oc, opt),
                        collapse=bool(prov.get("collapse")),
                        ratio=e.ratio if e is not None else None,
                    )
                )
    return out


# ----------------------------------------------------------------------------------------------
# equal terms (issue 20): momentum, averaging and schedule-free's parts


SCHEDULE_FREE = "schedule-free"

WTL = tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class EqualTermsRow:
    """An equal-terms arm against its counterpart (the arm it varies), linear decay (plain, and
    with the arm's optimizer settings: ``reference``), the best baseline and schedule-free (each a geometric mean over datasets of ratios paired
    by seed, with win/tie/loss counts), and the share of schedule-free's gain over linear decay
    that it recovers (``share``: the mean over datasets of its log-ratio to linear decay over
    schedule-free's, with a bootstrap interval; ``None`` where schedule-free does not beat
    linear decay significantly)."""

    method: str
    optimizer: str
    versus: str
    vs_counterpart: tuple[RatioCI, WTL] | None
    vs_linear: tuple[RatioCI, WTL] | None
    reference: str
    vs_reference: tuple[RatioCI, WTL] | None
    vs_best: tuple[RatioCI, WTL] | None
    vs_schedule_free: tuple[RatioCI, WTL] | None
    share: tuple[float, float, float] | None


def _versus(a: Analysis, opt: str, m: str, other: str) -> tuple[RatioCI, WTL] | None:
    if not any((opt, d, m) in a.entries and (opt, d, other) in a.entries for d in a.datasets):
        return None
    return a.versus(opt, m, other)


def schedule_free_gain(a: Analysis, opt: str) -> bool:
    """Whether schedule-free beats linear decay significantly (the whole interval below 1)."""
    r = a.overall.get((opt, SCHEDULE_FREE))
    return r is not None and r.log_high < 0


def share_of_schedule_free(a: Analysis, opt: str, m: str) -> tuple[float, float, float] | None:
    """The share of schedule-free's log gain over linear decay that ``m`` recovers, over the
    datasets where both ran (:func:`~refinedlr_bench.stats.share_of_gain`)."""
    if not schedule_free_gain(a, opt):
        return None
    pairs = [
        (em.ratio.log_mean, es.ratio.log_mean)
        for d in a.datasets
        if (em := a.entries.get((opt, d, m))) is not None
        and (es := a.entries.get((opt, d, SCHEDULE_FREE))) is not None
        and em.ratio is not None
        and es.ratio is not None
    ]
    if len(pairs) < 3:
        return None
    return share_of_gain([p[0] for p in pairs], [p[1] for p in pairs])


def equal_terms(a: Analysis, opt: str) -> list[EqualTermsRow]:
    """Every equal-terms arm that ran with ``opt``, in table order."""
    best = a.best_baseline.get(opt)
    rows = []
    for m in a.methods:
        arm = SCHEDULE_ARMS.get(m)
        if arm is None or arm.family != "equal-terms":
            continue
        if not any((opt, d, m) in a.entries for d in a.datasets):
            continue
        lin = a.overall.get((opt, m))
        rows.append(
            EqualTermsRow(
                method=m,
                optimizer=opt,
                versus=arm.versus,
                vs_counterpart=_versus(a, opt, m, arm.versus) if arm.versus else None,
                vs_linear=None if lin is None else (lin, a.wtl[(opt, m)]),
                reference=arm.reference,
                vs_reference=None
                if arm.reference in (REFERENCE, m)
                else _versus(a, opt, m, arm.reference),
                vs_best=None if best is None else _versus(a, opt, m, best),
                vs_schedule_free=_versus(a, opt, m, SCHEDULE_FREE),
                share=share_of_schedule_free(a, opt, m),
            )
        )
    return rows
