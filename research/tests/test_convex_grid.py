"""LR grids: wide and coarse first, extended at edges, refined around the best point."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from refinedlr_bench.grid import LRGrid, k_of, lr_of


def _settle(grid: LRGrid, f: Callable[[int], float]) -> list[list[int]]:
    """Evaluate and extend until settled; return what each step added."""
    added = []
    while True:
        new = grid.extend({k: f(k) for k in grid.ks})
        if not new:
            return added
        added.append(new)


def test_span_around_and_lr_of() -> None:
    assert LRGrid.span(-4, 4, 2).ks == [-4, -2, 0, 2, 4]
    assert LRGrid.span(-3, 4, 2).ks == [-3, -1, 1, 3]
    assert LRGrid.span(-6, 6, 2, k_min=-3, k_max=2).ks == [-2, 0, 2]
    assert LRGrid.around(0, 5, 1).ks == [-2, -1, 0, 1, 2]
    assert LRGrid.around(3, 4, step=2).ks == [1, 3, 5, 7]
    assert lr_of(0) == 1.0 and lr_of(-2) == 0.5 and lr_of(1) == pytest.approx(math.sqrt(2))
    assert k_of(lr_of(-7)) == -7 and k_of(0.26) == -4
    with pytest.raises(ValueError):
        LRGrid.around(0, 0)
    with pytest.raises(ValueError):
        LRGrid([0], step=1, fine_step=2)
    with pytest.raises(ValueError):
        k_of(0.0)


def test_extends_until_interior_then_refines() -> None:
    """A quadratic in k with its minimum at k = 9; coarse step 2 from [-4, 4]."""
    g = LRGrid.span(-4, 4, 2, fine_step=1, extend_points=2)
    added = _settle(g, lambda k: (k - 9) ** 2)
    # two extensions (6, 8 then 10, 12: 8 and 10 tie around 9, the smaller wins), then the
    # refinement around the best coarse point 8 adds 7 and 9
    assert added == [[6, 8], [10, 12], [7, 9]]
    means = {k: (k - 9) ** 2 for k in g.ks}
    assert g.best(means) == 9 and g.status(means) == "interior" and g.extensions == 2


def test_refinement_stops_at_a_fine_local_minimum() -> None:
    g = LRGrid.span(-4, 4, 2, fine_step=1)
    f = {-4: 5.0, -2: 3.0, 0: 2.0, 2: 2.5, 4: 9.0}
    assert g.status(f) == "refining"
    assert g.extend(f) == [-1, 1]
    f.update({-1: 2.2, 1: 1.9})
    assert g.extend(f) == [] and g.best(f) == 1 and g.settled(f)
    assert g.extensions == 0  # a refinement is not an extension


def test_no_refinement_when_fine_step_equals_step() -> None:
    g = LRGrid.span(-4, 4, 2, fine_step=2)
    f = {-4: 5.0, -2: 3.0, 0: 2.0, 2: 2.5, 4: 9.0}
    assert g.extend(f) == [] and g.status(f) == "interior"


def test_a_second_basin_inside_the_wide_grid_is_found() -> None:
    """Plateau at high LRs, deeper basin far below: the wide first grid sees both."""

    def f(k: int) -> float:
        return 1.0 + 0.1 * (k - 2) ** 2 if k > -6 else 0.5 + 0.1 * (k + 16) ** 2

    g = LRGrid.span(-24, 2, 2, fine_step=1)
    _settle(g, f)
    assert g.best({k: f(k) for k in g.ks}) == -16


def test_incomplete_grid_does_not_extend() -> None:
    g = LRGrid.span(-2, 2, 2)
    assert g.missing({-2: 1.0}) == [0, 2]
    assert g.extend({-2: 1.0}) == []
    assert g.status({-2: 1.0}) == "incomplete"
    assert not g.settled({-2: 1.0})


def test_hard_limits_are_reported() -> None:
    g = LRGrid.span(-2, 2, 2, k_max=2)
    means = {-2: 3.0, 0: 2.0, 2: 1.0}
    assert g.extend(means) == []
    assert g.status(means) == "high edge (limit)"
    assert g.settled(means)
    g2 = LRGrid.span(-2, 2, 2, max_extensions=1, extend_points=2)
    added = _settle(g2, lambda k: -k)  # always best at the top
    assert added == [[4, 6]]
    assert g2.status({k: -k for k in g2.ks}) == "high edge (limit)"
    g3 = LRGrid.span(-2, 2, 2, k_max=4, extend_points=3)
    assert g3.extend({-2: 3.0, 0: 2.0, 2: 1.0}) == [4]  # partial extension at the limit


def test_divergence_and_ties() -> None:
    g = LRGrid.span(-2, 2, 2, extend_points=2)
    all_inf = {-2: math.inf, 0: math.inf, 2: math.inf}
    assert g.best(all_inf) is None
    assert g.status(all_inf) == "diverged edge"
    assert g.extend(all_inf) == [-6, -4]
    # diverged points on the top do not make the grid extend upward
    means = {-6: 5.0, -4: 4.0, -2: 3.0, 0: math.inf, 2: math.inf}
    assert g.best(means) == -2 and g.status(means) == "refining"
    # ties go to the smaller LR
    assert LRGrid([0, 1, 2], step=1).best({0: 2.0, 1: 1.0, 2: 1.0}) == 1
