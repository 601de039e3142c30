"""Learning-rate grids that extend themselves while the best point sits on an edge.

Grid points are integer indices ``k`` with learning rate ``2^(k/2)`` (:func:`lr_of`), so a grid
with ``step=1`` has a factor ``sqrt 2`` between neighbours and ``step=2`` a factor 2. The best
point is the one with the smallest mean final objective over seeds (ties: the smaller LR). When
it lies on the lowest or highest point of the grid, :meth:`LRGrid.extend` adds
``extend_points`` points beyond that edge; this repeats until the best point is interior or a
hard limit (the index range ``[k_min, k_max]`` or ``max_extensions``) stops it, which
:meth:`LRGrid.status` reports.

Example:
    >>> g = LRGrid.around(0, points=3)
    >>> g.ks
    [-1, 0, 1]
    >>> g.extend({-1: 3.0, 0: 2.0, 1: 1.0})     # best on the upper edge: add 3 points above
    [2, 3, 4]
    >>> g.extend({-1: 3.0, 0: 2.0, 1: 1.0, 2: 0.5, 3: 0.7, 4: 0.9})  # now interior
    []
    >>> g.status({-1: 3.0, 0: 2.0, 1: 1.0, 2: 0.5, 3: 0.7, 4: 0.9})
    'interior'
    >>> lr_of(2), lr_of(-4)
    (2.0, 0.25)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

__all__ = ["LRGrid", "lr_of"]


def lr_of(k: int) -> float:
    """The learning rate of grid index ``k``: ``2^(k/2)``."""
    return float(2.0 ** (k / 2.0))


@dataclasses.dataclass
class LRGrid:
    """A sorted set of grid indices and the rule that extends it.

    Attributes:
        ks: the indices so far (sorted, unique).
        step: spacing between neighbouring indices (1: factor sqrt 2; 2: factor 2).
        extend_points: points added beyond an edge per extension.
        k_min, k_max: hard limits on the index (LR ``2^(k_min/2) .. 2^(k_max/2)``).
        max_extensions: at most this many extensions.
        extensions: extensions done so far.
    """

    ks: list[int]
    step: int = 1
    extend_points: int = 3
    k_min: int = -50
    k_max: int = 14
    max_extensions: int = 6
    extensions: int = 0

    @classmethod
    def around(
        cls,
        center: int,
        points: int,
        step: int = 1,
        *,
        extend_points: int = 3,
        k_min: int = -50,
        k_max: int = 14,
        max_extensions: int = 6,
    ) -> LRGrid:
        """``points`` indices spaced by ``step`` around ``center`` (clipped to the limits).

        >>> LRGrid.around(0, 4, 2).ks
        [-2, 0, 2, 4]
        """
        if points < 1 or step < 1:
            raise ValueError("points and step must be >= 1")
        lo = center - step * ((points - 1) // 2)
        ks = [lo + step * i for i in range(points)]
        shift = max(0, k_min - ks[0]) - max(0, ks[-1] - k_max)
        ks = sorted({min(max(k + shift, k_min), k_max) for k in ks})
        return cls(
            ks=ks,
            step=step,
            extend_points=extend_points,
            k_min=k_min,
            k_max=k_max,
            max_extensions=max_extensions,
        )

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

    def _proposal(self, means: Mapping[int, float]) -> tuple[list[int], str]:
        if self.missing(means):
            return [], "incomplete"
        b = self.best(means)
        lo, hi = self.ks[0], self.ks[-1]
        if b is None or b == lo:
            direction = "low"
            new = [lo - self.step * (i + 1) for i in range(self.extend_points)]
            new = [k for k in new if k >= self.k_min]
        elif b == hi:
            direction = "high"
            new = [hi + self.step * (i + 1) for i in range(self.extend_points)]
            new = [k for k in new if k <= self.k_max]
        else:
            return [], "interior"
        if b is None:
            direction = "diverged"
        if not new or self.extensions >= self.max_extensions:
            return [], f"{direction} edge (limit)"
        return sorted(new), f"{direction} edge"

    def wants_extension(self, means: Mapping[int, float]) -> bool:
        """Whether :meth:`extend` would add points (all points evaluated, best on an edge)."""
        return bool(self._proposal(means)[0])

    def settled(self, means: Mapping[int, float]) -> bool:
        """All points evaluated and no extension pending."""
        return not self.missing(means) and not self.wants_extension(means)

    def extend(self, means: Mapping[int, float]) -> list[int]:
        """Add (and return) points beyond the edge holding the best mean; ``[]`` if none."""
        new, _ = self._proposal(means)
        if new:
            self.ks = sorted(set(self.ks) | set(new))
            self.extensions += 1
        return new

    def status(self, means: Mapping[int, float]) -> str:
        """``"interior"``, ``"incomplete"``, ``"low edge"``/``"high edge"`` (an extension is
        due), ``"... edge (limit)"`` (a hard limit stopped it) or ``"diverged ..."`` (no finite
        result)."""
        return self._proposal(means)[1]
