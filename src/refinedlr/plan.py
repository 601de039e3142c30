"""Planning the next run from the last-iterate bound (Schaipp et al., arXiv 2501.18965); the concept
page ``docs/concepts/planning.md`` explains it. In short:

* For LRs ``eta_t = gamma s_t`` the bound (:func:`~refinedlr.bounds.bound_coefficients`) is
  ``a / gamma + gamma b``, best at ``gamma* = D c*(s)`` (``c*``: :func:`~refinedlr.bounds.best_scale`
  at ``D = 1``). ``D`` cancels in a ratio: :func:`transfer_lr` gives ``lr * c*(B) / c*(A)``.
* :func:`extend` continues a run from step ``k`` along the :class:`~refinedlr.schedules.Continuation`
  with the lowest bound, ``D`` calibrated so that the run's tuned LR is the bound's best for it.
* :func:`predict` computes ``Omega_t``, the bound for stopping after ``t`` steps, for the source
  and for candidates at their transferred LRs, and maps them through ``loss ~ C + M Omega_t``.

``norms=None`` means constant gradient norms (the bound's worst case); recorded norms are carried
to other horizons by :func:`carry_norms`. :func:`extend` and :func:`predict` are exact up to
``16 RESOLUTION`` steps (8,192); beyond, they evaluate the bound on blocks of steps (it moves by
about 0.1%), so ``T = 10**6`` steps plan in well under a second (``perf/bench_plan.py``).

Example:
    >>> from refinedlr import LinearDecay, WarmupStableDecay
    >>> wsd = WarmupStableDecay(40_000, decay=0.2, decay_shape="1-sqrt")
    >>> round(transfer_lr(3e-4, LinearDecay(10_000), wsd), 7)  # constant norms
    8.14e-05
    >>> round(transfer_lr(3e-4, LinearDecay(10_000), LinearDecay(40_000)), 7)  # 1/sqrt(4)
    0.00015
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize

from . import limits
from .bounds import BoundError, as_floats, best_scale, last_iterate_bound, positive_real
from .records import GradNormRecord
from .records.record import FloatArray, IntArray
from .refinement import fill_missing
from .schedule_io import ScheduleLike, as_schedule
from .schedules import Continuation, Schedule, ScheduleError

__all__ = [
    "RESOLUTION",
    "ExtensionOption",
    "Forecast",
    "PlanError",
    "PlanWarning",
    "Prediction",
    "carry_norms",
    "extend",
    "extension_options",
    "predict",
    "transfer_lr",
]

NormsLike = npt.ArrayLike | GradNormRecord | None
Carry = Literal["fraction", "step"]
Family = Literal["best", "rescale", "cooldown"]

#: How finely :func:`extend` and :func:`predict` group steps into blocks (see the module notes).
RESOLUTION = 512
_SHAPES = ("linear", "1-sqrt")
_LEVEL_FLOOR = 2.0**-8  # the lowest level "rescale" tries, relative to the peak


class PlanError(ValueError):
    """A planning function was given an invalid argument (the message names it)."""


class PlanWarning(UserWarning):
    """The plan holds, but something limits how far to trust it (the message says what)."""


def _schedule(name: str, value: ScheduleLike) -> Schedule:
    try:
        schedule = as_schedule(value)
    except ScheduleError as exc:
        raise PlanError(f"{name}: {exc}") from None
    if not np.any(schedule.preview() > 0.0):
        raise PlanError(f"{name}: the schedule is zero on every step; it trains nothing")
    return schedule


def _recorded(norms: npt.ArrayLike | GradNormRecord, kind: str | None) -> FloatArray:
    if isinstance(norms, GradNormRecord):
        values = norms.norms(norms.resolve_kind(kind))
    else:
        values = as_floats(norms, PlanError, "norms must be numbers")
    if values.ndim != 1 or values.size == 0:
        raise PlanError(f"norms must be a non-empty 1-D array, got shape {values.shape}")
    if np.any(values[np.isfinite(values)] < 0.0):
        raise PlanError("norms must be non-negative")
    try:
        filled, _ = fill_missing(values)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    if not np.any(filled > 0.0):
        raise PlanError("the norms are zero on every step: the bound cannot rank LRs on them")
    return filled


def carry_norms(norms: npt.ArrayLike, total_steps: int, carry: Carry = "fraction") -> FloatArray:
    """Recorded norms (one per step of their run) carried onto a run of ``total_steps`` steps:
    ``"fraction"`` reads position ``t (L - 1) / (T - 1)`` of the ``L`` values (interpolated) at
    step ``t``; ``"step"`` keeps step ``t`` and holds the last tenth's median past the end.

    >>> carry_norms([4.0, 2.0, 1.0], 5)
    array([4. , 3. , 2. , 1.5, 1. ])
    >>> carry_norms([4.0, 2.0, 1.0], 5, carry="step")
    array([4., 2., 1., 1., 1.])
    """
    g = np.asarray(norms, dtype=np.float64)
    L, T = g.shape[0], int(total_steps)
    if L == T:
        return np.array(g, dtype=np.float64)
    if carry == "fraction":
        if L == 1 or T == 1:
            return np.full(T, float(g[0]))
        return np.asarray(np.interp(np.arange(T) * ((L - 1) / (T - 1)), np.arange(L), g))
    if carry == "step":
        if L > T:
            return np.array(g[:T], dtype=np.float64)
        hold = float(np.median(g[-max(1, L // 10) :]))
        return np.concatenate([g, np.full(T - L, hold)])
    raise PlanError(f"carry must be 'fraction' or 'step', got {carry!r}")


def _norms_on(norms: FloatArray | None, total_steps: int, carry: Carry) -> FloatArray:
    return np.ones(total_steps) if norms is None else carry_norms(norms, total_steps, carry)


def _source_norms(norms: NormsLike, kind: str | None, T: int, carry: Carry) -> FloatArray | None:
    """The source run's norms; carried on normalised time, they must span its ``T`` steps."""
    if norms is None:
        return None
    g = _recorded(norms, kind)
    if carry == "fraction" and g.shape[0] != T:
        raise PlanError(
            f"the norms hold {g.shape[0]} steps, but the source schedule spans {T}: give the "
            "record of the run that used it"
        )
    return g


def _best(shape: FloatArray, norms: FloatArray) -> float:
    """``c*``: the bound's best peak LR for ``shape`` at ``D = 1``."""
    try:
        c = best_scale(shape, norms)[0]
    except BoundError as exc:
        raise PlanError(str(exc)) from None
    if not (math.isfinite(c) and c > 0.0):
        raise PlanError("the norms are zero wherever the schedule trains: the bound has no best LR")
    return c


def transfer_lr(
    lr: float,
    source: ScheduleLike,
    target: ScheduleLike,
    *,
    norms: NormsLike = None,
    kind: str | None = None,
    carry: Carry = "fraction",
) -> float:
    """The peak LR for ``target``, given the peak LR ``lr`` tuned for ``source``.

    ``lr * c*(target) / c*(source)``, with ``c*`` the bound's best peak LR of each shape under the
    same norms (:func:`~refinedlr.bounds.best_scale`). ``source`` and ``target``: anything
    :func:`~refinedlr.schedule_io.as_schedule` accepts. ``norms``: ``None`` (constant), or the
    source run's norms (a record, ``kind`` choosing its series, or an array), carried to the
    target's horizon by :func:`carry_norms` (``"fraction"`` needs one per step of ``source``).

    >>> from refinedlr import Cosine, LinearDecay
    >>> round(transfer_lr(0.1, LinearDecay(1000), Cosine(1000)), 4)
    0.0972
    """
    lr = positive_real("lr", lr, PlanError)
    src = _schedule("source", source)
    tgt = _schedule("target", target)
    g = _source_norms(norms, kind, src.total_steps, carry)
    c_src = _best(src.preview(), _norms_on(g, src.total_steps, carry))
    c_tgt = _best(tgt.preview(), _norms_on(g, tgt.total_steps, carry))
    return lr * c_tgt / c_src


@functools.lru_cache(maxsize=8)
def _distances(limit: int) -> IntArray:
    """Block edges as distances back from the end, up to ``limit`` (see :func:`_edges`)."""
    r = RESOLUTION
    d = np.arange(min(limit, 2 * r) + 1, dtype=np.float64)
    if limit > 2 * r:
        j = np.arange(1, math.ceil(math.log(limit / (2 * r)) / math.log1p(1 / r)) + 1)
        d = np.concatenate([d, 2 * r * (1 + 1 / r) ** j])
    return np.unique(np.round(d).astype(np.int64))


def _edges(n: int, cut: int = 0) -> IntArray:
    """Block edges ``0 = e_0 < ... < e_N = n`` (and ``cut``): single steps up to
    ``16 RESOLUTION`` steps; past that, single steps for the last ``2 RESOLUTION`` steps before
    ``n``, then blocks ``1 / RESOLUTION`` as long as their distance from ``n`` (the bound's error
    on such a block is about ``1 / (2 RESOLUTION)`` of its share).

    >>> _edges(5).tolist()
    [0, 1, 2, 3, 4, 5]
    """
    if n <= 16 * RESOLUTION:  # exact: cheap at this size
        return np.arange(n + 1, dtype=np.int64)
    limit = 1 << max(n - 1, 1).bit_length()  # a power of two >= n: few cached tables
    d = _distances(limit)
    edges = np.concatenate([[0], n - d[d < n][::-1]])  # ascending, ends at n (distance 0)
    i = int(np.searchsorted(edges, cut))
    return edges if edges[i] == cut else np.insert(edges, i, cut)


def _block_sums(x: FloatArray, edges: IntArray) -> FloatArray:
    return np.asarray(np.add.reduceat(x, edges[:-1]), dtype=np.float64)


def _bound_of_sums(h: FloatArray, r: FloatArray, D: float) -> float:
    """The direct bound with LR sums ``h`` and ``sum eta² g²`` ``r`` per block as single steps."""
    g = np.divide(np.sqrt(r), h, out=np.zeros_like(h), where=h > 0.0)
    return last_iterate_bound(h, g, D)


@dataclasses.dataclass(frozen=True)
class ExtensionOption:
    """One continuation: its ``family`` (``"rescale"`` or ``"cooldown"``), the whole
    ``schedule``, and ``bound_ratio``, its bound over that of a fresh run of the original schedule
    on the new horizon at its own best LR (below 1: the bound prefers the continuation)."""

    family: str
    schedule: Continuation
    bound_ratio: float


def extension_options(
    schedule: ScheduleLike,
    *,
    at_step: int,
    total_steps: int,
    norms: NormsLike = None,
    kind: str | None = None,
    families: Sequence[str] = ("rescale", "cooldown"),
    shapes: Sequence[str] = _SHAPES,
) -> list[ExtensionOption]:
    """The best continuation of each family and cooldown shape, best (lowest bound) first.

    See :func:`extend`, which returns the first one's schedule.
    """
    base = _schedule("schedule", schedule)
    k, T0, T1 = _step("at_step", at_step), base.total_steps, _step("total_steps", total_steps)
    if k >= T1:
        raise PlanError(f"at_step={k} must come before the new horizon total_steps={T1}")
    if k > T0:
        raise PlanError(f"at_step={k} is past the end of the run being continued ({T0} steps)")
    unknown = sorted(set(families) - {"rescale", "cooldown"}) or sorted(set(shapes) - set(_SHAPES))
    if unknown or not families or not shapes:
        raise PlanError(
            f"families are 'rescale' and 'cooldown', shapes {_SHAPES}; got {list(families)}, "
            f"{list(shapes)}"
        )
    if norms is None:
        g_run = g = np.ones(max(T0, T1))
    else:
        g_rec = _recorded(norms, kind)
        if g_rec.shape[0] < k:
            raise PlanError(
                f"the norms hold {g_rec.shape[0]} steps, fewer than the {k} steps already run"
            )
        # The run's own record calibrates D; the new steps hold the norms from before the
        # checkpoint, not those of the steps the continuation replaces (a cooldown's are lowest).
        g_run = carry_norms(g_rec[:T0], T0, carry="step")
        g = carry_norms(g_rec[:k], T1, carry="step")
    s0 = base.preview()
    if not s0[k - 1] > 0.0:
        raise PlanError(
            f"the schedule's LR is zero at the checkpoint (step {k - 1}): nothing to continue from"
        )
    D = 1.0 / _best(s0, g_run[:T0])  # the tuned peak LR is the bound's best for the original run
    fresh = best_scale(base.with_horizon(T1).preview(), g[:T1], D)[1]
    search = _Search(base, s0, k, T1, g[:T1], D)
    best: dict[tuple[str, str], ExtensionOption] = {}
    for family in families:
        for shape in shapes:
            option = search.best(family, shape, fresh)
            key = (option.family, shape)
            if key not in best or option.bound_ratio < best[key].bound_ratio:
                best[key] = option
    return sorted(best.values(), key=lambda o: o.bound_ratio)


def extend(
    schedule: ScheduleLike,
    *,
    at_step: int,
    total_steps: int,
    norms: NormsLike = None,
    kind: str | None = None,
    family: Family = "best",
    shapes: Sequence[str] = _SHAPES,
) -> Continuation:
    """Continue a run from its checkpoint at ``at_step`` to the horizon ``total_steps``.

    Returns the :class:`~refinedlr.schedules.Continuation` (``schedule`` on the steps already
    run) with the lowest bound, ``D`` calibrated so that the run's (tuned) peak LR is the bound's
    best for ``schedule``. ``family``: ``"rescale"`` (a new level, then a cooldown),
    ``"cooldown"`` (the multiplier in use kept, then a cooldown) or ``"best"`` (both), with the
    cooldown ``shapes``. ``norms``: constant, or the run's record (at least ``at_step`` steps),
    which calibrates ``D``; the new steps hold the median of its last tenth before ``at_step``.

    >>> from refinedlr import WarmupStableDecay
    >>> wsd = WarmupStableDecay(1000, decay=0.2, decay_shape="1-sqrt")
    >>> longer = extend(wsd, at_step=800, total_steps=2000)
    >>> bool((longer.preview()[:800] == wsd.preview()[:800]).all()), longer.total_steps
    (True, 2000)
    """
    families = ("rescale", "cooldown") if family == "best" else (family,)
    return extension_options(
        schedule,
        at_step=at_step,
        total_steps=total_steps,
        norms=norms,
        kind=kind,
        families=families,
        shapes=shapes,
    )[0].schedule


def _step(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise PlanError(f"{name} must be a whole number of steps >= 1, got {value!r}")
    if int(value) > limits.MAX_STEPS:
        raise PlanError(
            f"{name}={int(value):,} is more than refinedlr.limits.MAX_STEPS="
            f"{limits.MAX_STEPS:,} optimizer steps; raise that limit if you really train longer"
        )
    return int(value)


class _Search:
    """The bound of continuations on blocks, and a search over each family's parameters."""

    def __init__(
        self, base: Schedule, s0: FloatArray, k: int, T1: int, g: FloatArray, D: float
    ) -> None:
        self.base, self.k, self.T1, self.D = base, k, T1, D
        edges = _edges(T1, cut=k)
        head = int(np.searchsorted(edges, k))  # the blocks before the checkpoint
        before, tail = edges[: head + 1], edges[head:]
        self.head = (_block_sums(s0[:k], before), _block_sums((s0[:k] * g[:k]) ** 2, before))
        self.g2 = _block_sums(g[k:] ** 2, tail - k)
        self.sizes = np.diff(tail).astype(np.float64)
        self.mids = (tail[:-1] + tail[1:] - 1) / 2.0  # each block's middle step
        self.in_use = min(1.0, float(s0[k - 1]))  # the multiplier in use at the checkpoint

    def bound(self, level: float, cooldown: int, shape: str) -> float:
        start = self.T1 - cooldown
        p = np.clip((self.mids - start) / cooldown, 0.0, 1.0)
        decay = 1.0 - p if shape == "linear" else 1.0 - np.sqrt(p)
        m = np.where(self.mids < start, level, level * decay)
        h = np.concatenate([self.head[0], m * self.sizes])
        r = np.concatenate([self.head[1], m * m * self.g2])
        return _bound_of_sums(h, r, self.D)

    def _cooldown(self, x: float) -> int:
        """Cooldown length for a fraction ``x`` in (0, 1] of the steps after the checkpoint."""
        rest = self.T1 - self.k
        return min(rest, max(1, round(x * rest)))

    def best(self, family: str, shape: str, fresh: float) -> ExtensionOption:
        if family == "cooldown":
            level = self.in_use
            x = _minimize_1d(lambda x: self.bound(level, self._cooldown(x), shape), 0.0, 1.0)
        else:
            lo = math.log(_LEVEL_FLOOR)

            def f(v: npt.NDArray[np.float64]) -> float:
                return self.bound(math.exp(v[0]), self._cooldown(v[1]), shape)

            levels, fractions = np.linspace(lo, 0.0, 17), np.linspace(0.05, 1.0, 20)
            v0 = min((f(np.array([a, b])), a, b) for a in levels for b in fractions)[1:]
            options = {"xatol": 1e-3, "fatol": 1e-12, "maxfev": 200}
            bounds = [(lo, 0.0), (1e-9, 1.0)]
            res = optimize.minimize(
                f, np.array(v0), method="Nelder-Mead", bounds=bounds, options=options
            )
            level, x = math.exp(float(res.x[0])), float(res.x[1])
            if math.isclose(level, self.in_use, rel_tol=1e-9):  # no rescale: a cooldown
                family = "cooldown"
        cont = Continuation(
            self.T1,
            base=self.base,
            at_step=self.k,
            level=level,
            cooldown=self._cooldown(x),
            cooldown_shape=shape,  # type: ignore[arg-type]
            provenance={"planned_by": "refinedlr.plan.extend", "family": family},
        )
        return ExtensionOption(family, cont, self.bound(level, cont.cooldown, shape) / fresh)


def _minimize_1d(f: Any, lo: float, hi: float) -> float:
    """The minimiser of ``f`` on ``(lo, hi]``: a grid of 33 points, then Brent's method around the
    best one (the bound of these families is smooth, but need not be unimodal)."""
    xs = np.linspace(lo, hi, 33)[1:]
    values = [f(x) for x in xs]
    i = int(np.argmin(values))
    a, b = xs[max(i - 1, 0)] if i else lo + 1e-9, xs[min(i + 1, len(xs) - 1)]
    res = optimize.minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-4})
    return float(res.x) if res.fun <= values[i] else float(xs[i])


@dataclasses.dataclass(frozen=True)
class Forecast:
    """The bound's curve for one schedule at its peak LR, and the loss curve it predicts.

    Attributes:
        name, schedule: the schedule's label and multipliers.
        lr: its peak LR (tuned for the source, transferred for a candidate).
        steps: the steps ``t`` the curves are evaluated after (ascending, ending at the horizon).
        bound: ``Omega_t``, the bound for stopping after ``t`` steps.
        loss: ``C + M Omega_t``, when :func:`predict` was given the source's losses.
    """

    name: str
    schedule: Schedule
    lr: float
    steps: IntArray
    bound: FloatArray
    loss: FloatArray | None = None

    @property
    def final(self) -> float:
        """The predicted final loss, or the final bound when no losses were fitted."""
        return float((self.bound if self.loss is None else self.loss)[-1])


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What :func:`predict` returns: the source run, the candidates ranked (best first), the fit."""

    source: Forecast
    candidates: tuple[Forecast, ...]
    fit: tuple[float, float] | None  # (C, M) of loss ~ C + M Omega_t
    D: float

    def ratio(self, candidate: Forecast) -> float:
        """The candidate's final predicted loss (or bound) over the source's."""
        return candidate.final / self.source.final


def _curve(
    multipliers: FloatArray, lr: float, norms: FloatArray, D: float, points: int
) -> tuple[IntArray, FloatArray]:
    """``Omega_t`` after ``points`` evenly spread steps ``t`` (the last is ``T``)."""
    lrs = multipliers * lr
    H = np.concatenate([[0.0], np.cumsum(lrs)])
    R = np.concatenate([[0.0], np.cumsum((lrs * norms) ** 2)])
    T = lrs.shape[0]
    ends = np.unique(np.round(np.linspace(0, T, min(points, T) + 1)[1:]).astype(np.int64))
    ends = ends[H[ends] > 0.0]  # stopping before any positive LR: no bound
    values = []
    for n in ends:
        e = _edges(int(n))
        values.append(_bound_of_sums(np.diff(H[e]), np.maximum(np.diff(R[e]), 0.0), D))
    return ends, np.asarray(values)


def predict(
    lr: float,
    source: ScheduleLike,
    candidates: Mapping[str, ScheduleLike] | Sequence[ScheduleLike],
    *,
    norms: NormsLike = None,
    kind: str | None = None,
    losses: npt.ArrayLike | None = None,
    carry: Carry = "fraction",
    points: int = 64,
    fit_from: float = 0.1,
    same_lr: bool = False,
) -> Prediction:
    """The bound's curves for ``source`` at ``lr`` and for ``candidates`` at their transferred LRs.

    ``Omega_t`` is the last-iterate bound for stopping after ``t`` steps, with ``D`` calibrated so
    that ``lr`` is the bound's best peak LR for ``source``; each candidate runs at
    :func:`transfer_lr`'s LR on the same norms (at ``lr`` itself with ``same_lr``, as a run
    continued by :func:`extend` does). Given the source run's ``losses`` (one per step, ``NaN``
    where missing), ``loss ~ C + M Omega_t`` is fitted by least squares on the steps after
    ``fit_from`` of training, and each curve is mapped through it; a fit with ``M <= 0`` is
    dropped with a :class:`PlanWarning`. Candidates are ranked by their final predicted loss (or
    final bound).

    >>> from refinedlr import Cosine, LinearDecay, Constant
    >>> p = predict(0.1, LinearDecay(1000), {"cosine": Cosine(1000), "constant": Constant(1000)})
    >>> [c.name for c in p.candidates]
    ['cosine', 'constant']
    >>> round(p.ratio(p.candidates[1]), 2)  # constant LR: a 45% higher final bound
    1.45
    """
    lr = positive_real("lr", lr, PlanError)
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise PlanError(f"points must be an integer >= 2, got {points!r}")
    if not (isinstance(fit_from, (int, float)) and 0.0 <= fit_from < 1.0):
        raise PlanError(f"fit_from must be a fraction in [0, 1), got {fit_from!r}")
    src = _schedule("source", source)
    if isinstance(candidates, Mapping):
        named = dict(candidates)
    else:
        named = {_label(c, i): c for i, c in enumerate(candidates)}
    g = _source_norms(norms, kind, src.total_steps, carry)
    g_src = _norms_on(g, src.total_steps, carry)
    s_src = src.preview()
    # the bound is homogeneous of degree 1 in (LRs, D): compute at peak 1 and scale by lr
    D1 = 1.0 / _best(s_src, g_src)

    def forecast(name: str, schedule: Schedule, norms: FloatArray, peak: float) -> Forecast:
        steps, omega = _curve(schedule.preview(), peak, norms, D1, points)
        return Forecast(name, schedule, lr * peak, steps, lr * omega)

    forecasts = [forecast("source", src, g_src, 1.0)]
    for name, cand in named.items():
        sched = _schedule(f"candidate {name!r}", cand)
        g_c = _norms_on(g, sched.total_steps, carry)
        forecasts.append(
            forecast(name, sched, g_c, 1.0 if same_lr else D1 * _best(sched.preview(), g_c))
        )
    fit = None if losses is None else _fit(forecasts[0], losses, fit_from)
    if fit is not None:
        forecasts = [dataclasses.replace(f, loss=fit[0] + fit[1] * f.bound) for f in forecasts]
    ranked = sorted(forecasts[1:], key=lambda f: f.final)
    return Prediction(forecasts[0], tuple(ranked), fit, lr * D1)


def _label(schedule: ScheduleLike, i: int) -> str:
    if isinstance(schedule, Schedule):
        return f"{schedule.kind} ({schedule.total_steps} steps)"
    return str(schedule) if isinstance(schedule, str) else f"candidate {i + 1}"


def _fit(source: Forecast, losses: npt.ArrayLike, fit_from: float) -> tuple[float, float] | None:
    y = as_floats(losses, PlanError, "losses must be numbers")
    T = source.schedule.total_steps
    if y.ndim != 1 or y.shape[0] != T:
        raise PlanError(f"losses must hold one value per step of the source ({T}), got {y.shape}")
    # the loss after t steps: the loss logged at step t - 1, averaged over a centred window
    w = max(1, T // 200)
    keep, target = [], []
    for i, t in enumerate(source.steps):
        window = y[max(0, t - 1 - w) : t + w]
        window = window[np.isfinite(window)]
        if t >= fit_from * T and window.size:
            keep.append(i)
            target.append(float(window.mean()))
    if len(keep) < 2:
        raise PlanError("too few finite losses after fit_from to fit loss ~ C + M * bound")
    x = source.bound[keep]
    A = np.column_stack([np.ones_like(x), x])
    (C, M), *_ = np.linalg.lstsq(A, np.asarray(target), rcond=None)
    if not M > 0.0:
        warnings.warn(
            f"the source's losses do not fall as its bound does (fitted slope M = {M:.3g} <= 0): "
            "the candidates are ranked by the bound alone",
            PlanWarning,
            stacklevel=3,
        )
        return None
    return float(C), float(M)
