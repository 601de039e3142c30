"""Candidate variants of refinement for the refinement study (issue 7), as pure functions.

Every variant starts from the same record as the paper's refinement (per-step gradient norms of a
previous run, ``norm="l2"`` for SGD with weights ``g^-2``, ``"l1"`` for Adam with ``g^-1``) and
returns schedule multipliers with maximum 1 and last value 0 (:func:`variant_values`), or picks a
shape with the last-iterate bound (:func:`bound_select`, :func:`bound_conservative`,
:func:`auto_tau`).

Variants (combinable; the defaults give the paper's algorithm exactly):

* ``floor=q``: *bounded weights*. The smoothed norms are raised to at least their ``q``-quantile,
  ``g_t <- max(g_t, Q_q(g))``, so norms that collapse late cannot dominate: below the floor the
  weights are equal and the schedule decays linearly. ``q = 1`` gives linear decay, ``q = 0`` the
  paper; ``q = 0.5`` (the median) keeps the warm-up that large early norms create.
* ``clip=k``: bounded weights on both sides, ``g_t`` clipped into ``[median / k, k median]``.
* ``strength=a``: *partial refinement* by the weight power, ``w_t = g_t^(-a p)``: ``a = 0`` is
  linear decay, ``a = 1`` the paper.
* ``mix=b``: partial refinement by the shape, ``(1 - b) linear + b refined`` (renormalised).
* ``warmup_linear=True``: the refined schedule up to its peak, then linear decay to 0.
* ``envelope=True``: the refined warm-up under linear decay's line: ``min(r_t / r_peak, 1 - t/T)``
  with ``r_t / r_peak`` taken as 1 after the refined peak. Where there is no warm-up this is
  linear decay ``1 - t/T`` itself, so at the same base LR the late learning rates equal linear
  decay's (the maximum is below 1; not renormalised).
* ``strength < 0``: *anti-refinement*, weights ``g_t^(+|a| p)`` (more LR where norms are large).

>>> n = np.r_[np.full(10, 4.0), np.full(30, 1.0), np.geomspace(1.0, 0.05, 20)]
>>> paper = variant_values(n, norm="l2", tau=0.1)
>>> floored = variant_values(n, norm="l2", tau=0.1, floor=0.5)
>>> int(np.argmax(paper)) > int(np.argmax(floored))   # collapsing norms move the paper's peak late
True
>>> bool(np.allclose(variant_values(np.ones(6), norm="l2"), np.linspace(1, 0, 6)))
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from refinedlr.bounds import best_scale
from refinedlr.refinement import fill_missing, refined_multipliers, smooth_norms

__all__ = [
    "FLOOR_FAMILY",
    "TAU_CHOICES",
    "auto_tau",
    "bound_conservative",
    "bound_gain",
    "bound_select",
    "linear_shape",
    "prefix_norms",
    "variant_values",
]

FloatArray = npt.NDArray[np.float64]

#: Floor quantiles from linear decay (1.0) to the paper's refinement (0.0), nearest to linear first.
FLOOR_FAMILY: tuple[float, ...] = (1.0, 0.9, 0.75, 0.5, 0.25, 0.1, 0.0)

#: The smoothing fractions :func:`auto_tau` chooses from.
TAU_CHOICES: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def _power(norm: str) -> float:
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
    return 2.0 if norm == "l2" else 1.0


def linear_shape(T: int) -> FloatArray:
    """Linear decay to 0 on ``T`` steps, ``(T - 1 - t) / (T - 1)`` (what constant norms refine to).

    >>> linear_shape(5)
    array([1.  , 0.75, 0.5 , 0.25, 0.  ])
    """
    if T < 2:
        return np.ones(max(T, 1))
    return np.asarray((T - 1 - np.arange(T)) / (T - 1), dtype=np.float64)


def variant_values(
    norms: npt.ArrayLike,
    *,
    norm: str = "l2",
    tau: float = 0.1,
    floor: float | None = None,
    clip: float | None = None,
    strength: float = 1.0,
    mix: float = 0.0,
    warmup_linear: bool = False,
    envelope: bool = False,
) -> FloatArray:
    """Refined multipliers with the study's modifications (module docstring); the defaults give
    the paper's Algorithm 1 (``l2``) or 2 (``l1``) exactly.

    >>> v = variant_values([9, 7, 5, 3, 2, 1, 1, 1, 1.5, 2, 2.5, 3], tau=0.25)
    >>> v.round(6)[:3]
    array([0.018168, 0.029894, 0.058061])
    """
    filled, _ = fill_missing(norms)
    if np.any(filled <= 0):
        raise ValueError("gradient norms must be positive")
    g = smooth_norms(filled, tau)
    T = g.shape[0]
    if floor is not None:
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"floor is a quantile in [0, 1], got {floor!r}")
        g = np.maximum(g, float(np.quantile(g, floor)))
    if clip is not None:
        if not clip >= 1.0:
            raise ValueError(f"clip must be >= 1, got {clip!r}")
        med = float(np.median(g))
        g = np.clip(g, med / clip, med * clip)
    p = _power(norm) * strength
    g = g / float(np.median(g))  # scale-free; keeps g^-p in range
    s = refined_multipliers(g**-p)
    if warmup_linear:
        peak = int(np.argmax(s))
        out = s.copy()
        n_after = T - peak
        out[peak:] = linear_shape(n_after) if n_after > 1 else 0.0
        s = out
    if envelope:
        peak = int(np.argmax(s))
        ramp = np.ones(T)
        ramp[: peak + 1] = s[: peak + 1] / float(s[peak])
        s = np.minimum(ramp, 1.0 - np.arange(T) / T)
    if mix:
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"mix must be in [0, 1], got {mix!r}")
        s = (1.0 - mix) * linear_shape(T) + mix * s
        s = s / float(s.max())
    return np.asarray(s, dtype=np.float64)


def _bound(shape: FloatArray, norms: FloatArray) -> float:
    return float(best_scale(shape, norms)[1])


def bound_gain(shape: npt.ArrayLike, norms: npt.ArrayLike) -> float:
    """``1 - B(shape) / B(linear)``: the fraction of linear decay's best-scale last-iterate bound
    (on ``norms``) that ``shape`` saves (linear decay here is ``1 - t/T``; negative: worse).

    >>> round(bound_gain(np.linspace(1, 0, 50), np.ones(50)), 3)
    0.0
    """
    s = np.asarray(shape, dtype=np.float64)
    n = np.asarray(norms, dtype=np.float64)
    T = s.shape[0]
    lin = (T - np.arange(T)) / T
    return 1.0 - _bound(s, n) / _bound(lin, n)


def bound_select(shapes: Mapping[str, npt.ArrayLike], norms: npt.ArrayLike) -> str:
    """The name of the shape with the smallest best-scale last-iterate bound on ``norms``.

    At its best base LR the bound is ``2 sqrt(a b)`` with ``a`` proportional to ``D^2``, so the
    ranking of shapes does not depend on the (estimated) distance ``D``.

    >>> T = 100
    >>> bound_select({"linear": linear_shape(T), "constant": np.ones(T)}, np.ones(T))
    'linear'
    """
    n = np.asarray(norms, dtype=np.float64)
    scores = {name: _bound(np.asarray(s, dtype=np.float64), n) for name, s in shapes.items()}
    return min(scores, key=lambda k: (scores[k], k))


def bound_conservative(
    norms: npt.ArrayLike,
    *,
    norm: str = "l2",
    tau: float = 0.1,
    kappa: float = 0.5,
    family: Sequence[float] = FLOOR_FAMILY,
) -> tuple[float, FloatArray]:
    """Partial refinement whose strength the bound chooses, nearest to linear decay first.

    Along the floor family (:data:`FLOOR_FAMILY`, from linear decay to the paper), return the
    first floor quantile ``q`` whose bound gain (:func:`bound_gain` on the record) is at least
    ``kappa`` times the gain of the paper's refinement, and its multipliers. ``kappa = 1`` tends
    to the paper, ``kappa -> 0`` to linear decay. When refinement gains nothing on the bound,
    linear decay (``q = 1``) is returned.

    >>> q, v = bound_conservative(np.ones(40))
    >>> q
    1.0
    """
    n = np.asarray(norms, dtype=np.float64)
    shapes = [(q, variant_values(n, norm=norm, tau=tau, floor=q)) for q in family]
    full = bound_gain(variant_values(n, norm=norm, tau=tau), n)
    if not full > 0:
        return shapes[0]
    for q, v in shapes:
        if bound_gain(v, n) >= kappa * full:
            return q, v
    return shapes[-1]


def auto_tau(
    per_seed: npt.ArrayLike, *, norm: str = "l2", taus: Sequence[float] = TAU_CHOICES
) -> float:
    """The smoothing fraction that generalises best across seeds, by the bound.

    For every held-out seed, refine (with each ``tau``) from the mean norms of the other seeds and
    score the schedule by its best-scale bound on the held-out seed's norms relative to linear
    decay; return the ``tau`` with the smallest mean log-ratio (ties: the larger ``tau``).
    ``per_seed`` is ``[S, T]`` with ``S >= 2``.

    >>> rng = np.random.default_rng(0)
    >>> auto_tau(1 + 0.3 * rng.random((3, 60))) in TAU_CHOICES
    True
    """
    x = np.asarray(per_seed, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("auto_tau needs per-seed norms [S >= 2, T]")
    S = x.shape[0]
    scores: dict[float, float] = {}
    for tau in taus:
        logs = []
        for s in range(S):
            rest = np.delete(x, s, axis=0).mean(axis=0)
            v = variant_values(rest, norm=norm, tau=tau)
            logs.append(math.log(max(1.0 - bound_gain(v, x[s]), 1e-300)))
        scores[float(tau)] = float(np.mean(logs))
    return min(scores, key=lambda t: (scores[t], -t))


def prefix_norms(norms: npt.ArrayLike, fraction: float) -> FloatArray:
    """The first ``fraction`` of a record, continued at the median of its last tenth.

    What refinement can use when only the first part of a run has been recorded: the unknown
    rest is assumed flat, so it refines to a warm-up followed by (nearly) linear decay.

    >>> prefix_norms([4.0, 3.0, 2.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0], 0.5)
    array([4., 3., 2., 1., 1., 1., 1., 1., 1., 1.])
    """
    x = np.asarray(norms, dtype=np.float64)
    T = x.shape[0]
    n = max(2, min(T, round(fraction * T)))
    head = x[:n]
    tail_level = float(np.median(head[-max(1, n // 10) :]))
    return np.concatenate([head, np.full(T - n, tail_level)])
