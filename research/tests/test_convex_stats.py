"""Intervals, paired ratios, win/tie/loss and geometric means against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refinedlr_bench.stats import (
    GAP_FLOOR,
    geometric_mean_ratio,
    paired_log_ratio,
    rank_correlation,
    t_interval,
    win_tie_loss,
)

# Student t quantiles t_{0.975, df}, from tables
T975 = {1: 12.706204736, 2: 4.302652730, 3: 3.182446305, 4: 2.776445105}


def test_t_interval_by_hand() -> None:
    x = [2.0, 4.0, 6.0, 8.0, 10.0]  # mean 6, sd sqrt(10)
    m, lo, hi = t_interval(x)
    half = T975[4] * math.sqrt(10.0) / math.sqrt(5.0)
    assert m == 6.0
    assert lo == pytest.approx(6.0 - half, rel=1e-9)
    assert hi == pytest.approx(6.0 + half, rel=1e-9)
    m, lo, hi = t_interval([1.0, 3.0])  # sd sqrt 2, n 2
    assert (lo, hi) == pytest.approx((2.0 - T975[1], 2.0 + T975[1]), rel=1e-9)
    assert t_interval([3.0]) == (3.0, -math.inf, math.inf)
    m, lo, hi = t_interval([1.0, math.inf])
    assert m == math.inf and lo == -math.inf


def test_paired_log_ratio_by_hand() -> None:
    gaps = np.array([1.0, 2.0, 3.0, 4.0])
    ref = np.array([2.0, 2.0, 2.0, 2.0])
    logs = np.log(gaps / ref)
    mean, sd = logs.mean(), logs.std(ddof=1)
    half = T975[3] * sd / 2.0
    r = paired_log_ratio(gaps, ref)
    assert r.ratio == pytest.approx(math.exp(mean))
    assert r.low == pytest.approx(math.exp(mean - half))
    assert r.high == pytest.approx(math.exp(mean + half))
    assert r.n == 4 and r.outcome == "tie"
    # exact halving on every seed: a win with a degenerate interval
    w = paired_log_ratio([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    assert w.ratio == pytest.approx(0.5) and w.outcome == "win"
    assert paired_log_ratio([3.0, 3.1, 2.9], [1.0, 1.0, 1.0]).outcome == "loss"
    # flooring and divergence
    assert paired_log_ratio([0.0, 0.0], [GAP_FLOOR, GAP_FLOOR]).ratio == pytest.approx(1.0)
    assert paired_log_ratio([math.inf, 1.0], [1.0, 1.0]).ratio == math.inf
    with pytest.raises(ValueError):
        paired_log_ratio([1.0], [1.0, 2.0])


def test_win_tie_loss_counts() -> None:
    win = paired_log_ratio([1.0, 1.1, 0.9], [2.0, 2.0, 2.0])
    tie = paired_log_ratio([1.0, 3.0], [2.0, 1.0])
    loss = paired_log_ratio([4.0, 4.4, 3.6], [2.0, 2.0, 2.0])
    assert (win.outcome, tie.outcome, loss.outcome) == ("win", "tie", "loss")
    assert win_tie_loss([win, tie, loss, loss]) == (1, 1, 2)


def test_geometric_mean_by_hand() -> None:
    ratios = [0.5, 1.0, 2.0, 4.0]
    logs = np.log(ratios)
    g = geometric_mean_ratio(ratios)
    assert g.ratio == pytest.approx(math.exp(logs.mean()))  # = 2^(1/2)
    assert g.ratio == pytest.approx(math.sqrt(2.0))
    half = T975[3] * logs.std(ddof=1) / 2.0
    assert g.low == pytest.approx(math.exp(logs.mean() - half))
    assert g.high == pytest.approx(math.exp(logs.mean() + half))
    # from RatioCI objects: their log means are used
    rs = [paired_log_ratio([1.0, 2.0], [2.0, 4.0]), paired_log_ratio([4.0, 4.0], [1.0, 1.0])]
    assert geometric_mean_ratio(rs).ratio == pytest.approx(math.sqrt(0.5 * 4.0))


def test_rank_correlation() -> None:
    assert rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)
    # infinite scores rank last; nan pairs are dropped
    assert rank_correlation([1, math.inf, 2, 5], [1, 9, 2, 3]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, math.nan, 3], [1, 2, 0, 3]) == pytest.approx(1.0)
    assert math.isnan(rank_correlation([1, 2], [1, 2]))
    assert math.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))
