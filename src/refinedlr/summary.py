"""A summary of a schedule that a person can read.

Reports where the schedule peaks, the warm-up it implies, how long it stays high, how much
learning-rate mass it keeps for late training, and, given a gradient-norm record, the last-iterate
bound of the schedule (each at its best base LR) divided by that of linear decay on the same record.

Definitions (``s_t`` the multiplier, ``T`` the horizon, ``M = max s``):

* peak: the first step with ``s_t = M``;
* implied warm-up: the number of steps before ``s_t`` first reaches ``0.9 M`` (0 when it starts
  there; a linear warm-up of ``W`` steps reports about ``0.9 W``);
* time above half the peak: the fraction of steps with ``s_t >= M / 2``;
* late mass: ``sum of s_t over the last quarter / sum of s_t``;
* bound ratio: :func:`refinedlr.bounds.bound_ratio_to_linear` (below 1: a better guarantee than
  linear decay on these norms).

Example:
    >>> from refinedlr.schedules import Cosine
    >>> summ = summarize(Cosine(total_steps=1000, warmup=0.1))
    >>> summ.peak_step, summ.warmup_steps
    (100, 90)
    >>> print(summ)  # doctest: +ELLIPSIS
    Cosine schedule over 1000 steps
      peak           : step 100 (10% of training)
      implied warm-up: 90 steps (9%)
    ...
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from .bounds import bound_ratio_to_linear
from .schedules import Schedule

__all__ = ["ScheduleSummary", "summarize"]


@dataclasses.dataclass(frozen=True)
class ScheduleSummary:
    """The numbers :func:`summarize` reports (fractions are of the horizon ``T``)."""

    name: str
    total_steps: int
    peak_step: int
    warmup_steps: int
    above_half_fraction: float
    late_mass: float
    final_value: float
    quantiles: dict[float, float]
    bound_ratio_to_linear: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def peak_fraction(self) -> float:
        return self.peak_step / max(self.total_steps - 1, 1)

    def __str__(self) -> str:
        T = self.total_steps
        at = ", ".join(f"{q:.0%}: {v:.3f}" for q, v in self.quantiles.items())
        lines = [
            f"{self.name} schedule over {T} steps",
            f"  peak           : step {self.peak_step} ({self.peak_fraction:.0%} of training)",
            f"  implied warm-up: {self.warmup_steps} steps ({self.warmup_steps / T:.0%})",
            f"  above half peak: {self.above_half_fraction:.0%} of steps",
            f"  late LR mass   : {self.late_mass:.0%} of the total in the last quarter",
            f"  multiplier at  : {at}; last step {self.final_value:.4g}",
        ]
        if self.bound_ratio_to_linear is not None:
            r = self.bound_ratio_to_linear
            verdict = "better than" if r < 1 else "worse than" if r > 1 else "equal to"
            lines.append(
                f"  bound vs linear: {r:.4f} (last-iterate bound on these norms, {verdict} "
                "linear decay; each at its best base LR)"
            )
        lines.extend(f"  note           : {n}" for n in self.notes)
        return "\n".join(lines)


def summarize(
    schedule: Schedule | npt.ArrayLike,
    norms: npt.ArrayLike | None = None,
    *,
    name: str | None = None,
) -> ScheduleSummary:
    """Summarise ``schedule`` (a :class:`~refinedlr.schedules.Schedule` or an array of multipliers).

    With ``norms`` (one gradient norm per step of some run; resampled onto the schedule's horizon
    when the lengths differ) the summary includes the bound ratio to linear decay.
    """
    if isinstance(schedule, Schedule):
        s = schedule.preview()
        label = name or type(schedule).__name__
    else:
        s = np.asarray(schedule, dtype=np.float64)
        label = name or "tabulated"
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("a schedule to summarise must be a non-empty 1-D array of finite values")
    T = s.size
    top = float(s.max())
    if top <= 0:
        raise ValueError("the schedule is zero everywhere")
    peak = int(np.argmax(s))
    warm = int(np.argmax(s >= 0.9 * top))
    total = float(s.sum())
    quantiles = {q: float(s[min(T - 1, round(q * T))]) for q in (0.25, 0.5, 0.75, 0.9)}
    ratio = None
    notes: list[str] = []
    if norms is not None:
        g = np.asarray(norms, dtype=np.float64)
        shape = s / top
        if g.size != T:
            notes.append(f"norms ({g.size} steps) resampled onto the schedule's {T} steps")
            g = np.interp(np.linspace(0, g.size - 1, T), np.arange(g.size), g)
        ratio = float(bound_ratio_to_linear(shape, g))
    return ScheduleSummary(
        name=label,
        total_steps=T,
        peak_step=peak,
        warmup_steps=warm,
        above_half_fraction=float(np.mean(s >= 0.5 * top)),
        late_mass=float(s[T - max(1, T // 4) :].sum() / total),
        final_value=float(s[-1]),
        quantiles=quantiles,
        bound_ratio_to_linear=ratio,
        notes=tuple(notes),
    )
