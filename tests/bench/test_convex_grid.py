"""LR grids that extend while the best point is on an edge."""

from __future__ import annotations

import math

import pytest

from refinedlr.bench.grid import LRGrid, lr_of


def _evaluate(grid: LRGrid, f) -> dict[int, float]:  # type: ignore[no-untyped-def]
    return {k: f(k) for k in grid.ks}


def test_around_and_lr_of() -> None:
    assert LRGrid.around(0, 5).ks == [-2, -1, 0, 1, 2]
    assert LRGrid.around(3, 4, step=2).ks == [1, 3, 5, 7]
    # clipped into the hard limits by shifting
    assert LRGrid.around(-10, 5, k_min=-11).ks == [-11, -10, -9, -8, -7]
    assert LRGrid.around(10, 3, k_max=10).ks == [8, 9, 10]
    assert lr_of(0) == 1.0 and lr_of(-2) == 0.5 and lr_of(1) == pytest.approx(math.sqrt(2))
    with pytest.raises(ValueError):
        LRGrid.around(0, 0)


def test_extends_until_interior() -> None:
    """A quadratic in k with its minimum at k = 9: the grid walks up 3 points at a time."""
    g = LRGrid.around(0, 5, extend_points=3)
    f = lambda k: (k - 9) ** 2  # noqa: E731
    added = []
    while True:
        new = g.extend(_evaluate(g, f))
        if not new:
            break
        added.append(new)
    assert added == [[3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert g.best(_evaluate(g, f)) == 9
    assert g.status(_evaluate(g, f)) == "interior"
    assert g.extensions == 3


def test_extends_downward_with_step_two() -> None:
    g = LRGrid.around(0, 3, step=2, extend_points=2)
    means = {-2: 1.0, 0: 2.0, 2: 3.0}
    assert g.status(means) == "low edge"
    assert g.extend(means) == [-6, -4]
    assert g.ks == [-6, -4, -2, 0, 2]


def test_incomplete_grid_does_not_extend() -> None:
    g = LRGrid.around(0, 3)
    assert g.missing({-1: 1.0}) == [0, 1]
    assert g.extend({-1: 1.0}) == []
    assert g.status({-1: 1.0}) == "incomplete"
    assert not g.settled({-1: 1.0})


def test_hard_limits_are_reported() -> None:
    g = LRGrid.around(0, 3, k_max=1)
    means = {-1: 3.0, 0: 2.0, 1: 1.0}
    assert g.extend(means) == []
    assert g.status(means) == "high edge (limit)"
    assert g.settled(means)
    g2 = LRGrid.around(0, 3, max_extensions=1)
    f = lambda k: -k  # noqa: E731  (always best at the top)
    assert g2.extend(_evaluate(g2, f)) == [2, 3, 4]
    assert g2.extend(_evaluate(g2, f)) == []
    assert g2.status(_evaluate(g2, f)) == "high edge (limit)"
    # partial extension near the limit
    g3 = LRGrid.around(0, 3, k_max=2)
    assert g3.extend({-1: 3.0, 0: 2.0, 1: 1.0}) == [2]


def test_divergence_and_ties() -> None:
    g = LRGrid.around(0, 3)
    all_inf = {-1: math.inf, 0: math.inf, 1: math.inf}
    assert g.best(all_inf) is None
    assert g.status(all_inf) == "diverged edge"
    assert g.extend(all_inf) == [-4, -3, -2]
    # diverged points on the top are not a reason to extend upward
    means = {-4: 5.0, -3: 4.0, -2: 3.0, -1: 2.0, 0: math.inf, 1: math.inf}
    assert g.best(means) == -1 and g.status(means) == "interior"
    # ties go to the smaller LR
    assert LRGrid([0, 1, 2]).best({0: 2.0, 1: 1.0, 2: 1.0}) == 1
