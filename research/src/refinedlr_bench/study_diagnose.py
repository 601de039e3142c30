"""Why refined schedules lose: LR mass, warm-up and last-iterate bounds against observed results.

For one dataset and optimizer (a cached :class:`~.study_convex.StudyOutcome`), compare a schedule
(at its tuned peak LR) with linear decay (at its own):

* ``peak`` and ``warmup``: where the multiplier peaks, and the steps before it first reaches 0.9
  of its peak, as fractions of the horizon;
* ``lr_at``: the *absolute* learning rate (peak LR x multiplier) over linear decay's at 25%, 50%,
  75% and 90% of training; ``late_mass``: the same for the summed LR over the last quarter;
* ``bound_linrec``: the best-scale last-iterate bound of the shape over that of linear decay, both
  on the linear run's record (what refinement optimises; below 1 = better guarantee);
* ``bound_own``: the same, each schedule on *its own* run's record (available for the arms whose
  runs were recorded: linear decay and the paper's refinement with tau 0.1), i.e. the bound with
  the norms the schedule actually produced;
* ``bound_at_lr``: the bound at the tuned peak LRs (not at the best scale) with ``D`` estimated so
  that linear decay's tuned LR is its bound-optimal scale, on the linear run's record;
* ``late_median``: median norm over the last 10% of the linear run over its median.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt
from refinedlr.bounds import best_scale, bound_coefficients

from refinedlr_bench.study_convex import StudyOutcome

__all__ = ["Diagnosis", "diagnose", "estimate_D"]

FloatArray = npt.NDArray[np.float64]

QUANTILES = (0.25, 0.5, 0.75, 0.9)


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """The mechanism numbers of one (dataset, optimizer, arm) against linear decay."""

    dataset: str
    optimizer: str
    arm: str
    peak: float
    warmup: float
    lr_ratio_peak: float
    lr_at: tuple[float, ...]
    late_mass: float
    total_mass: float
    late_median: float
    bound_linrec: float
    bound_own: float
    bound_at_lr: float


def _col(optimizer: str) -> int:
    return 0 if optimizer == "adam" else 1


def estimate_D(shape: npt.ArrayLike, norms: npt.ArrayLike, lr: float) -> float:
    """The ``D`` for which ``lr`` is the bound-optimal scale of ``shape`` on ``norms``.

    The best scale is ``c* = sqrt(a / b)`` with ``a = D^2 / (2 S_0)``, so
    ``D = lr sqrt(2 S_0 b)`` (:func:`refinedlr.bounds.bound_coefficients` with ``D = 1``
    gives ``a = 1 / (2 S_0)``).

    >>> T = 50; s = 1 - np.arange(T) / T; n = np.ones(T)
    >>> D = estimate_D(s, n, 0.3)
    >>> from refinedlr.bounds import best_scale
    >>> round(best_scale(s, n, D)[0], 6)
    0.3
    """
    a1, b = bound_coefficients(shape, norms, 1.0)
    return float(lr * math.sqrt(b / a1))


def _bound_at(shape: FloatArray, norms: FloatArray, lr: float, D: float) -> float:
    a, b = bound_coefficients(shape, norms, D)
    return float(a / lr + lr * b)


def diagnose(outcome: StudyOutcome, optimizer: str, arm: str) -> Diagnosis | None:
    """The :class:`Diagnosis` of ``arm`` (``None`` if it or linear decay is missing)."""
    r = outcome.results.get((optimizer, arm))
    lin = outcome.results.get((optimizer, "linear"))
    dep = outcome.deps.get((optimizer, "linear"))
    if r is None or lin is None or dep is None or r.chosen is None or lin.chosen is None:
        return None
    T = outcome.total_steps
    if r.total_steps != T:
        return None
    s = r.schedule.preview()
    ls = lin.schedule.preview()
    lr, llr = r.chosen.lr, lin.chosen.lr
    top = float(s.max())
    peak = int(np.argmax(s))
    warm = int(np.argmax(s >= 0.9 * top))
    at = []
    for q in QUANTILES:
        i = min(T - 1, round(q * T))
        at.append(float(lr * s[i] / (llr * ls[i])))
    q4 = T - T // 4
    late = float(lr * s[q4:].sum() / (llr * ls[q4:].sum()))
    total = float(lr * s.sum() / (llr * ls.sum()))
    n_lin = dep.mean[:, _col(optimizer)]
    med = float(np.median(n_lin))
    late_med = float(np.median(n_lin[-max(1, T // 10) :]) / med)
    b_lin = best_scale(s, n_lin)[1] / best_scale(ls, n_lin)[1]
    own = outcome.deps.get((optimizer, arm))
    if arm == "linear":
        b_own = 1.0
    elif own is not None and own.mean.shape[0] == T:
        b_own = best_scale(s, own.mean[:, _col(optimizer)])[1] / best_scale(ls, n_lin)[1]
    else:
        b_own = math.nan
    D = estimate_D(ls, n_lin, llr)
    b_lr = _bound_at(s, n_lin, lr, D) / _bound_at(ls, n_lin, llr, D)
    return Diagnosis(
        dataset=outcome.name,
        optimizer=optimizer,
        arm=arm,
        peak=peak / max(T - 1, 1),
        warmup=warm / T,
        lr_ratio_peak=lr / llr,
        lr_at=tuple(at),
        late_mass=late,
        total_mass=total,
        late_median=late_med,
        bound_linrec=float(b_lin),
        bound_own=float(b_own),
        bound_at_lr=float(b_lr),
    )
