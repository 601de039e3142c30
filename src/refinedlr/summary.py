"""A summary of a schedule that a person can read (``s_t`` the multiplier, ``M = max s``):

* shape: where it starts (as a fraction of ``M``), whether it dips before it climbs, where it
  peaks (the first step with ``s_t = M``) and where it ends;
* implied warm-up: the steps before ``s_t`` first reaches ``0.9 M`` (shown when it rises to its
  peak without dipping first);
* time above half the peak; late mass: ``sum of s_t over the last quarter / sum of s_t``;
* given gradient norms, the bound ratio to linear decay
  (:func:`refinedlr.bounds.bound_ratio_to_linear`), judged by :mod:`refinedlr.decision`.

Example:
    >>> from refinedlr.schedules import Cosine
    >>> summ = summarize(Cosine(total_steps=1000, warmup=0.1))
    >>> summ.peak_step, summ.warmup_steps
    (100, 90)
    >>> print(summ)  # doctest: +ELLIPSIS
    Cosine schedule over 1000 steps
      shape          : rises from 0.01 to its peak at step 100 (10% of training), ends at 3e-06
      peak           : step 100 (10% of training)
      implied warm-up: 90 steps (9%)
    ...
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from .bounds import bound_ratio_to_linear
from .decision import bound_caveat, bound_verdict
from .schedules import Schedule, ScheduleError

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
    start_value: float = 1.0
    dip: tuple[int, float] | None = None
    bound_caveat: str | None = None

    @property
    def peak_fraction(self) -> float:
        return self.peak_step / max(self.total_steps - 1, 1)

    def shape(self) -> str:
        """The shape in words, as a figure of it shows it."""
        T, p = self.total_steps, self.peak_step
        at = f"step {p} ({self.peak_fraction:.0%} of training)"
        if self.dip is not None:
            d, v = self.dip
            head = (
                f"starts at {self.start_value:.2f} of its peak, dips to {v:.2f} at step {d} "
                f"({d / T:.0%}), climbs to its peak at {at}"
            )
        elif p == 0:
            head = "starts at its peak"
        elif self.start_value >= 0.9:
            head = f"starts at {self.start_value:.2f} of its peak, peaks at {at}"
        else:
            head = f"rises from {self.start_value:.2f} to its peak at {at}"
        return f"{head}, ends at {self.final_value:.2g}"

    def __str__(self) -> str:
        T = self.total_steps
        at = ", ".join(f"{q:.0%}: {v:.3f}" for q, v in self.quantiles.items())
        lines = [
            f"{self.name} schedule over {T} steps",
            f"  shape          : {self.shape()}",
            f"  peak           : step {self.peak_step} ({self.peak_fraction:.0%} of training)",
        ]
        if self.dip is None and self.start_value < 0.9:
            w = self.warmup_steps
            lines.append(f"  implied warm-up: {w} steps ({w / T:.0%})")
        lines += [
            f"  above half peak: {self.above_half_fraction:.0%} of steps",
            f"  late LR mass   : {self.late_mass:.0%} of the total in the last quarter",
            f"  multiplier at  : {at}; last step {self.final_value:.4g}",
        ]
        if self.bound_ratio_to_linear is not None:
            v = bound_verdict(
                self.bound_ratio_to_linear,
                caveat=self.bound_caveat,
                on="these norms (last-iterate bound over linear decay's, each at its best LR)",
            )
            lines.append(f"  bound vs linear: {v.text}")
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
        raise ScheduleError(
            "a schedule to summarise must be a non-empty 1-D array of finite values"
        )
    T = s.size
    top = float(s.max())
    if top <= 0:
        raise ScheduleError("the schedule is zero everywhere: no learning rate to summarise")
    peak = int(np.argmax(s))
    warm = int(np.argmax(s >= 0.9 * top))
    total = float(s.sum())
    quantiles = {q: float(s[min(T - 1, round(q * T))]) for q in (0.25, 0.5, 0.75, 0.9)}
    lowest = int(np.argmin(s[: peak + 1]))
    dip = (lowest, float(s[lowest] / top)) if s[lowest] < s[0] - 0.05 * top else None
    ratio = caveat = None
    notes: list[str] = []
    if norms is not None:
        g = np.asarray(norms, dtype=np.float64)
        if g.size != T:
            notes.append(f"norms ({g.size} steps) resampled onto the schedule's {T} steps")
            g = np.interp(np.linspace(0, g.size - 1, T), np.arange(g.size), g)
        ratio = float(bound_ratio_to_linear(s / top, g))
        caveat = bound_caveat(g)
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
        start_value=float(s[0] / top),
        dip=dip,
        bound_caveat=caveat,
    )
