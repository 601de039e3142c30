"""Learning-rate grids: wide and coarse first, then finer around the best point, extended at edges.

Grid points are integer indices ``k`` with learning rate ``2^(k/2)`` (:func:`lr_of`): neighbours
``step=2`` apart differ by a factor 2, ``step=1`` apart by ``sqrt 2``. The best point is the one
with the smallest mean final objective over seeds (ties: the smaller LR; non-finite means never
win). :meth:`LRGrid.propose` says what to evaluate next once every point has a result:

1. if the best point is the lowest or highest point of the grid, ``extend_points`` more points
   ``step`` apart beyond that edge (an *extension*; at most ``max_extensions``, never outside
   ``[k_min, k_max]``);
2. else, if ``fine_step < step``, the best point's neighbours ``fine_step`` away (a
   *refinement*: the final choice is then a local minimum on the fine grid);
3. else nothing: the grid is *settled*.

A wide coarse first pass matters: the final objective as a function of the LR is not always
unimodal (a plateau or a second basin far away), and a narrow grid that only extends at its edges
can settle in the wrong basin.

Example:
    >>> g = LRGrid.span(-4, 4, step=2, fine_step=1)
    >>> g.ks
    [-4, -2, 0, 2, 4]
    >>> f = {-4: 5.0, -2: 3.0, 0: 2.0, 2: 2.5, 4: 9.0}
    >>> g.extend(f)                   # best interior at 0: refine around it
    [-1, 1]
    >>> g.extend({**f, -1: 2.2, 1: 1.9})   # 1 is best; its neighbours 0 and 2 are known
    []
    >>> g.status({**f, -1: 2.2, 1: 1.9})
    'interior'
    >>> lr_of(2), lr_of(-4)
    (2.0, 0.25)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

__all__ = ["LRGrid", "k_of", "lr_of"]


def lr_of(k: int) -> float:
    """The learning rate of grid index ``k``: ``2^(k/2)``."""
    return float(2.0 ** (k / 2.0))


def k_of(lr: float) -> int:
    """The grid index nearest to ``lr`` (inverse of :func:`lr_of`).

    >>> k_of(0.25), k_of(3e-4)
    (-4, -23)
    """
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"a learning rate must be positive and finite, got {lr!r}")
    return round(2.0 * math.log2(lr))


@dataclasses.dataclass
class LRGrid:
    """A sorted set of grid indices and the rules that extend and refine it.

    Attributes:
        ks: the indices so far (sorted, unique).
        step: spacing of the first grid and of extensions (2: factor 2).
        fine_step: spacing of the final refinement around the best point (1: factor sqrt 2);
            equal to ``step`` for no refinement.
        extend_points: points added beyond an edge per extension.
        k_min, k_max: hard limits on the index (LR ``2^(k_min/2) .. 2^(k_max/2)``).
        max_extensions: at most this many extensions.
        extensions: extensions done so far.
    """

    ks: list[int]
    step: int = 2
    fine_step: int = 1
    extend_points: int = 2
    k_min: int = -50
    k_max: int = 14
    max_extensions: int = 6
    extensions: int = 0

    def __post_init__(self) -> None:
        if self.step < 1 or self.fine_step < 1 or self.fine_step > self.step:
            raise ValueError("need 1 <= fine_step <= step")
        self.ks = sorted(set(self.ks))

    @classmethod
    def span(
        cls,
        lo: int,
        hi: int,
        step: int = 2,
        *,
        fine_step: int = 1,
        extend_points: int = 2,
        k_min: int = -50,
        k_max: int = 14,
        max_extensions: int = 6,
    ) -> LRGrid:
        """Indices ``lo, lo + step, ...`` up to ``hi`` (clipped to ``[k_min, k_max]``).

        >>> LRGrid.span(-3, 3, 2).ks
        [-3, -1, 1, 3]
        """
        if hi < lo:
            raise ValueError(f"empty grid: lo={lo} > hi={hi}")
        ks = [k for k in range(lo, hi + 1, step) if k_min <= k <= k_max]
        if not ks:
            raise ValueError(f"the grid [{lo}, {hi}] lies outside the limits [{k_min}, {k_max}]")
        return cls(
            ks=ks,
            step=step,
            fine_step=fine_step,
            extend_points=extend_points,
            k_min=k_min,
            k_max=k_max,
            max_extensions=max_extensions,
        )

    @classmethod
    def around(cls, center: int, points: int, step: int = 2, **kw: int) -> LRGrid:
        """``points`` indices ``step`` apart around ``center``.

        >>> LRGrid.around(0, 4, 2).ks
        [-2, 0, 2, 4]
        """
        if points < 1:
            raise ValueError("points must be >= 1")
        lo = center - step * ((points - 1) // 2)
        return cls.span(lo, lo + step * (points - 1), step, **kw)

    def best(self, means: Mapping[int, float]) -> int | None:
        """The index with the smallest finite mean (``None`` if none is finite).

        >>> LRGrid([0, 1, 2]).best({0: 2.0, 1: 1.0, 2: math.inf})
        1
        """
        finite = [(means[k], k) for k in self.ks if k in means and math.isfinite(means[k])]
        return min(finite)[1] if finite else None

    def missing(self, means: Mapping[int, float]) -> list[int]:
        """Indices of the grid without a result yet."""
        return [k for k in self.ks if k not in means]

    def _proposal(self, means: Mapping[int, float]) -> tuple[list[int], str, bool]:
        """(new points, status, is an extension)."""
        if self.missing(means):
            return [], "incomplete", False
        b = self.best(means)
        lo, hi = self.ks[0], self.ks[-1]
        if b is None or b == lo or b == hi:
            if b is None or b == lo:
                direction = "diverged" if b is None else "low"
                new = [lo - self.step * (i + 1) for i in range(self.extend_points)]
                new = [k for k in new if k >= self.k_min]
            else:
                direction = "high"
                new = [hi + self.step * (i + 1) for i in range(self.extend_points)]
                new = [k for k in new if k <= self.k_max]
            if not new or self.extensions >= self.max_extensions:
                return [], f"{direction} edge (limit)", False
            return sorted(new), f"{direction} edge", True
        fine = [k for k in (b - self.fine_step, b + self.fine_step) if k not in self.ks]
        if fine:
            return fine, "refining", False
        return [], "interior", False

    def propose(self, means: Mapping[int, float]) -> list[int]:
        """The points :meth:`extend` would add (``[]`` if settled or incomplete)."""
        return self._proposal(means)[0]

    def wants_extension(self, means: Mapping[int, float]) -> bool:
        """Whether :meth:`extend` would add points."""
        return bool(self._proposal(means)[0])

    def settled(self, means: Mapping[int, float]) -> bool:
        """All points evaluated and nothing more to add."""
        return not self.missing(means) and not self.wants_extension(means)

    def extend(self, means: Mapping[int, float]) -> list[int]:
        """Add (and return) the proposed points: an extension beyond an edge or a refinement."""
        new, _, is_extension = self._proposal(means)
        if new:
            self.ks = sorted(set(self.ks) | set(new))
            self.extensions += int(is_extension)
        return new

    def status(self, means: Mapping[int, float]) -> str:
        """``"interior"`` (settled inside the grid), ``"incomplete"``, ``"refining"``,
        ``"low edge"``/``"high edge"`` (an extension is due), ``"... edge (limit)"`` (a hard
        limit stopped it) or ``"diverged ..."`` (no finite result)."""
        return self._proposal(means)[1]
