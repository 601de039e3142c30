"""The LR grid of ``refinedlr bench deep``: extension at edges, limits, ties, divergence."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from refinedlr_bench.deep import Metric, plan_grid


def test_first_grid_around_center() -> None:
    p = plan_grid(2, 3, 3, {})
    assert p.ks == (1, 2, 3) and p.missing == (1, 2, 3) and p.best is None
    assert p.status == "incomplete" and not p.settled
    assert plan_grid(0, 4, 3, {}).ks == (-1, 0, 1, 2)


def test_extends_one_point_per_step_until_interior() -> None:
    s = {-1: 1.0, 0: 2.0, 1: 3.0}  # best on the low edge
    p = plan_grid(0, 3, 3, s)
    assert p.missing == (-2,)
    s[-2] = 0.5  # still the edge
    p = plan_grid(0, 3, 3, s)
    assert p.missing == (-3,) and p.ks == (-3, -2, -1, 0, 1)
    s[-3] = 0.9
    p = plan_grid(0, 3, 3, s)
    assert p.settled and p.best == -2 and p.status == "interior"


def test_extension_limit() -> None:
    s = {k: float(-k) for k in range(-1, 6)}  # keeps improving upwards
    p = plan_grid(0, 3, 2, s)
    assert p.ks == (-1, 0, 1, 2, 3) and p.best == 3 and p.status == "high edge (limit)"
    assert plan_grid(0, 3, 0, s).status == "high edge (limit)"


def test_diverged_and_ties() -> None:
    s = {-1: math.inf, 0: math.inf, 1: math.inf}
    p = plan_grid(0, 3, 1, s)
    assert p.missing == (-2,)  # nothing finite: look lower
    s[-2] = math.inf
    assert plan_grid(0, 3, 1, s).best is None
    tie = plan_grid(0, 3, 1, {-1: 2.0, 0: 1.0, 1: 1.0})
    assert tie.best == 0 and tie.status == "interior"  # ties go to the smaller LR


def test_plan_is_a_function_of_the_scores() -> None:
    # resuming with the same results gives the same grid
    s = {-1: 3.0, 0: 2.0, 1: 1.0, 2: 0.5, 3: 0.7}
    assert plan_grid(0, 3, 3, s) == plan_grid(0, 3, 3, dict(reversed(list(s.items()))))


def test_metric_scores() -> None:
    acc = Metric("acc", "accuracy", lower_is_better=False)
    loss = Metric("loss", "loss", lower_is_better=True)
    assert acc.score(0.9) < acc.score(0.8)
    assert loss.score(0.1) < loss.score(0.2)
    assert acc.score(math.nan) == math.inf and loss.score(math.inf) == math.inf
