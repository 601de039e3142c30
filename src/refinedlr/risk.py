"""Refinement risk: does a gradient-norm record have the pattern on which refinement loses?

A *late decline* of the norms makes refinement hold the learning rate high until late, where its
last iterate tends to end worse than linear decay's: ``late_ratio = median(n[-LATE_WINDOW * T:]) /
median(n)`` below :data:`LATE_DECLINE_MODERATE` (``"moderate"``) or :data:`LATE_DECLINE_HIGH`
(``"high"``); the docs page *When refinement helps* has the evidence behind the cut-offs.

Example:
    >>> refinement_risk(np.ones(100)) is None
    True
    >>> r = refinement_risk(np.r_[np.ones(90), np.full(10, 0.5)])
    >>> r.level, round(r.late_ratio, 2)
    ('high', 0.5)
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import numpy.typing as npt

from .refinement import MIN_STEPS, RefineError, fill_missing

__all__ = [
    "LATE_DECLINE_HIGH",
    "LATE_DECLINE_MODERATE",
    "LATE_WINDOW",
    "RefinementRisk",
    "refinement_risk",
]

#: The final fraction of the record compared with the whole.
LATE_WINDOW = 0.1
#: ``late_ratio`` below this: a late decline ("moderate").
LATE_DECLINE_MODERATE = 0.95
#: ``late_ratio`` below this: a steep late decline ("high").
LATE_DECLINE_HIGH = 0.7

RiskLevel = Literal["moderate", "high"]


@dataclasses.dataclass(frozen=True)
class RefinementRisk:
    """A record whose norms decline late in training: ``late_ratio`` (module documentation),
    ``level`` (``"high"`` below :data:`LATE_DECLINE_HIGH`, else ``"moderate"``) and ``norm``
    (the norm kind the record holds: ``"l2"``, ``"l1"``, ...)."""

    late_ratio: float
    level: RiskLevel
    norm: str

    def message(self) -> str:
        """One paragraph for a user: the pattern, what it does to the schedule, what to do."""
        steep = "steeply " if self.level == "high" else ""
        head = (
            f"the norms fall {steep}late in training (to {self.late_ratio:.4f}x their median "
            f"over the last {LATE_WINDOW:.0%}): the refined schedule will hold the learning rate "
            "high until late, the pattern on which refinement most often lost to linear decay"
        )
        if self.norm == "l1":
            head += "; with Adam-type optimizers (l1 norms) refinement rarely beat linear decay"
        return (
            f"{head}. Prefer linear decay, or train once with the refined schedule and check it "
            "(refinedlr verify; Python: refinedlr.verify_refinement). Evidence: the refinement "
            "study (research/results/refinement-study/report.md)"
        )


def refinement_risk(norms: npt.ArrayLike, *, norm: str = "l2") -> RefinementRisk | None:
    """Flag a late decline of the 1-D per-step ``norms`` (``None`` when they hold up late);
    missing values are filled first (:func:`refinedlr.refinement.fill_missing`).

    >>> refinement_risk(np.r_[np.full(10, 5.0), np.ones(90)]) is None  # falls early only
    True
    >>> refinement_risk(np.r_[np.ones(90), np.full(10, 0.85)]).level
    'moderate'
    """
    x, _ = fill_missing(norms)
    if x.ndim != 1:
        raise RefineError(f"norms must be one value per step (1-D), got shape {x.shape}")
    if x.size < MIN_STEPS:
        raise RefineError(f"a record needs at least {MIN_STEPS} steps")
    med = float(np.median(x))
    if not med > 0:
        return None
    late = float(np.median(x[-max(1, round(LATE_WINDOW * x.size)) :])) / med
    if late >= LATE_DECLINE_MODERATE:
        return None
    level: RiskLevel = "high" if late < LATE_DECLINE_HIGH else "moderate"
    return RefinementRisk(late_ratio=late, level=level, norm=norm)
