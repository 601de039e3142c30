"""Statistics for the benchmark: t intervals, paired log-ratios, win/tie/loss, geometric means.

Conventions (stated in the reports):

* A mean over seeds is given with a two-sided 95% Student-t interval
  ``mean +- t_{0.975, n-1} * sd / sqrt(n)`` (:func:`t_interval`).
* A schedule is compared with linear decay *paired by seed* (same data order): the per-seed
  log-ratios ``r_s = log(gap_s / gap_linear_s)`` get a t interval; the ratio is ``exp(mean r)``
  (the geometric mean of the paired ratios) with interval ``exp(lo), exp(hi)``
  (:func:`paired_log_ratio`).
* Win / tie / loss against linear decay: *win* if the whole interval of the paired log-ratio lies
  below 0 (the schedule's gap is smaller), *loss* if it lies above 0, *tie* if it contains 0
  (:func:`win_tie_loss`).
* Across datasets: the geometric mean of the per-dataset ratios, with a t interval on the
  per-dataset log-ratios, i.e. datasets are the sampling unit (:func:`geometric_mean_ratio`).

Example:
    >>> m, lo, hi = t_interval([1.0, 2.0, 3.0])
    >>> m, round(lo, 4), round(hi, 4)
    (2.0, -0.4841, 4.4841)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "GAP_FLOOR",
    "RatioCI",
    "geometric_mean_ratio",
    "paired_log_ratio",
    "rank_correlation",
    "share_of_gain",
    "t_interval",
    "win_tie_loss",
]

#: Gaps below this are floored before taking logs (the float64 objective's resolution).
GAP_FLOOR = 1e-12


def t_interval(values: npt.ArrayLike, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its two-sided Student-t interval.

    One value gives an infinite interval; any non-finite value gives a non-finite mean
    (``inf`` for a diverged run) and an infinite interval.

    >>> t_interval([5.0])
    (5.0, -inf, inf)
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    if not np.all(np.isfinite(x)):
        mean = float(np.mean(x)) if not np.any(np.isnan(x)) else math.nan
        return mean, -math.inf, math.inf
    mean = float(x.mean())
    if x.size < 2:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


@dataclasses.dataclass(frozen=True)
class RatioCI:
    """A ratio (to a reference) and its interval: ``ratio = exp(mean log-ratio)``.

    ``log_mean``, ``log_low``, ``log_high`` are on the log scale; ``n`` counts the pairs
    (seeds) or datasets that went into it.
    """

    ratio: float
    low: float
    high: float
    log_mean: float
    log_low: float
    log_high: float
    n: int

    @property
    def outcome(self) -> str:
        """``"win"`` (interval below 1), ``"loss"`` (above 1) or ``"tie"``."""
        if self.log_high < 0:
            return "win"
        if self.log_low > 0:
            return "loss"
        return "tie"


def _ratio_from_logs(logs: npt.ArrayLike, level: float) -> RatioCI:
    r = np.asarray(logs, dtype=np.float64).reshape(-1)
    m, lo, hi = t_interval(r, level)
    return RatioCI(
        ratio=math.exp(m) if math.isfinite(m) else (math.inf if m > 0 else math.nan),
        low=math.exp(lo) if lo > -math.inf else 0.0,
        high=math.exp(hi) if math.isfinite(hi) else math.inf,
        log_mean=m,
        log_low=lo,
        log_high=hi,
        n=int(r.size),
    )


def paired_log_ratio(gaps: npt.ArrayLike, reference: npt.ArrayLike, level: float = 0.95) -> RatioCI:
    """Ratio of ``gaps`` to ``reference`` paired by position (seed), on the log scale.

    Gaps are floored at :data:`GAP_FLOOR`; a diverged run (``inf``) gives an infinite ratio.

    >>> r = paired_log_ratio([1.0, 2.0, 4.0], [2.0, 4.0, 8.0])
    >>> round(r.ratio, 6), round(r.low, 6), round(r.high, 6), r.outcome
    (0.5, 0.5, 0.5, 'win')
    """
    a = np.maximum(np.asarray(gaps, dtype=np.float64), GAP_FLOOR)
    b = np.maximum(np.asarray(reference, dtype=np.float64), GAP_FLOOR)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    with np.errstate(invalid="ignore"):
        logs = np.log(a) - np.log(b)
    logs = np.where(np.isnan(logs), np.inf, logs)  # inf / inf: both diverged; count as a loss
    return _ratio_from_logs(logs, level)


def win_tie_loss(comparisons: Sequence[RatioCI]) -> tuple[int, int, int]:
    """Counts of ``win``, ``tie`` and ``loss`` outcomes.

    >>> a = paired_log_ratio([1, 1.1, 0.9], [2, 2, 2]); b = paired_log_ratio([1, 3], [2, 1])
    >>> win_tie_loss([a, b])
    (1, 1, 0)
    """
    out = [c.outcome for c in comparisons]
    return out.count("win"), out.count("tie"), out.count("loss")


def geometric_mean_ratio(ratios: Sequence[RatioCI | float], level: float = 0.95) -> RatioCI:
    """Geometric mean over datasets of per-dataset ratios, with a t interval across datasets.

    ``ratios`` are :class:`RatioCI` objects (their ``log_mean`` is used) or plain positive numbers.

    >>> g = geometric_mean_ratio([0.5, 2.0, 1.0])
    >>> round(g.ratio, 6), round(g.log_high, 4)
    (1.0, 1.7219)
    """
    logs = [
        r.log_mean if isinstance(r, RatioCI) else math.log(max(float(r), GAP_FLOOR)) for r in ratios
    ]
    return _ratio_from_logs(logs, level)


def rank_correlation(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Spearman's rank correlation of two score vectors (ties get average ranks).

    Infinite scores rank last; fewer than 3 finite pairs or a constant vector give ``nan``.

    >>> rank_correlation([1, 2, 3, 4], [10, 20, 40, 30])
    0.8
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if x.size < 3:
        return math.nan
    rx = stats.rankdata(np.where(np.isinf(x), np.inf, x))
    ry = stats.rankdata(np.where(np.isinf(y), np.inf, y))
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def share_of_gain(
    part: npt.ArrayLike,
    whole: npt.ArrayLike,
    level: float = 0.95,
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """How much of a gain a part recovers: ``mean(part) / mean(whole)`` of per-unit log-ratios
    (e.g. per dataset, ``log(gap_X / gap_linear)`` and ``log(gap_SF / gap_linear)``), with a
    percentile bootstrap interval over the units (resampled in pairs; ``resamples`` draws from
    ``numpy.random.default_rng(seed)``, so the interval is reproducible). 1 = the part recovers
    the whole gain, 0 = none of it, below 0 = it goes the other way. NaN where ``whole`` has no
    gain in a resample's mean (0).

    >>> share_of_gain([-1.0, -2.0, -3.0], [-2.0, -4.0, -6.0])
    (0.5, 0.5, 0.5)
    """
    x = np.asarray(part, dtype=np.float64).reshape(-1)
    w = np.asarray(whole, dtype=np.float64).reshape(-1)
    if x.shape != w.shape or x.size == 0 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(w))):
        return math.nan, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = x[idx].mean(axis=1) / w[idx].mean(axis=1)
        share = float(x.mean() / w.mean())
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return share, math.nan, math.nan
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return share, float(lo), float(hi)
