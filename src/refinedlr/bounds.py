"""Last-iterate convergence bounds for SGD schedules, and their closed-form optima.

The theory of arXiv 2310.07831 (the docs page "The last-iterate bound"): the weighted bound
(:func:`weighted_bound`) and the direct bound of any schedule (:func:`last_iterate_bound`, at its
best scale :func:`best_scale`), each ``O(T)``, 0-indexed. ``shape`` / ``lrs`` arguments are 1-D
arrays or have a ``preview()`` (a ``Schedule``); bad arguments raise :class:`BoundError`.

Example:
    >>> import math
    >>> import numpy as np
    >>> T = 10_000
    >>> shape = 1.0 - np.arange(T) / T               # linear decay, LinearDecay(T).preview()
    >>> worst_case_bound(shape, G=1.0, D=1.0) * math.sqrt(T)  # in units of D G / sqrt(T)
    2.0008...
    >>> weighted_bound(np.ones(T), np.ones(T)) * math.sqrt(T)  # the weighted bound, w = 1
    1.0...
"""

from __future__ import annotations

import math
import numbers
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "BoundError",
    "SupportsPreview",
    "all_tail_sum",
    "best_scale",
    "bound_coefficients",
    "bound_ratio_to_linear",
    "last_iterate_bound",
    "lrs_from_weights",
    "optimal_schedule",
    "optimal_weights",
    "weighted_bound",
    "worst_case_bound",
]

FloatArray = npt.NDArray[np.float64]


class BoundError(ValueError):
    """A bound function was given an invalid argument (the message names it, and the index)."""


@runtime_checkable
class SupportsPreview(Protocol):
    """Anything with a ``preview()`` returning one multiplier per step (e.g. a ``Schedule``)."""

    def preview(self) -> npt.ArrayLike: ...


ShapeLike = npt.ArrayLike | SupportsPreview


def _as_vector(name: str, value: object, *, positive: bool = False) -> FloatArray:
    """``value`` (or ``value.preview()``) as a finite, non-negative (or positive) float64 vector."""
    if isinstance(value, SupportsPreview) and not isinstance(value, np.ndarray):
        value = value.preview()
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise BoundError(f"{name} must be a 1-D array of numbers: {exc}") from None
    if raw.dtype.kind not in "biufO":
        raise BoundError(f"{name} must be a 1-D array of real numbers, got dtype {raw.dtype}")
    return _finite_vector(name, raw, "positive" if positive else "non-negative")


def as_floats(value: object, error: type[ValueError], what: str) -> FloatArray:
    """``value`` as a float64 array, or ``error("what: why not")`` (refinement and plan use it)."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error(f"{what}: {exc}") from None


def _finite_vector(name: str, value: object, need: str | None = None) -> FloatArray:
    """``value`` as a finite float64 vector, ``"positive"`` or ``"non-negative"`` when ``need``."""
    arr = as_floats(value, BoundError, f"{name} must be a 1-D array of real numbers")
    if arr.ndim != 1:
        raise BoundError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise BoundError(f"{name} is empty: at least one step is needed")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise BoundError(
            f"{name}[{i}] = {float(arr[i])!r} is not finite ({bad.size} of {arr.size} entries are)"
        )
    bad = np.flatnonzero(arr <= 0.0 if need == "positive" else arr < 0.0)
    if need and bad.size:
        i = int(bad[0])
        raise BoundError(
            f"{name}[{i}] = {float(arr[i])!r} must be {need} "
            f"({bad.size} of {arr.size} entries are not)"
        )
    return arr


def _same_length(name_a: str, a: FloatArray, name_b: str, b: FloatArray) -> None:
    if a.shape[0] != b.shape[0]:
        raise BoundError(
            f"{name_a} and {name_b} must have the same length (one entry per step), "
            f"got {a.shape[0]} and {b.shape[0]}"
        )


def positive_real(name: str, value: object, error: type[ValueError] = BoundError) -> float:
    """``value`` as a positive finite float, or ``error`` (:mod:`refinedlr.plan` uses it too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a positive number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise error(f"{name} must be a positive finite number, got {value!r}")
    return v


def _rev_cumsum(x: FloatArray) -> FloatArray:
    """``out[k] = sum_{t >= k} x[t]``, accumulated from the end (accurate small tails)."""
    return np.asarray(np.cumsum(x[::-1])[::-1], dtype=np.float64)


def _direct_terms(
    shape: ShapeLike, norms: npt.ArrayLike, name: str, drop_trailing_zeros: bool
) -> tuple[float, float, float]:
    """``(S_0, Q_0, sum_{k<T-1} eta_k Q_k / (S_k S_{k+1}))``; the last is ``inf`` if unbounded."""
    s = _as_vector(name, shape)
    g = _as_vector("norms", norms)
    _same_length(name, s, "norms", g)
    positive = np.flatnonzero(s > 0.0)
    if positive.size == 0:
        raise BoundError(
            f"{name} are all zero: the bound needs at least one positive learning rate"
        )
    last = int(positive[-1])
    if last < s.shape[0] - 1:
        if not drop_trailing_zeros:
            return float(s.sum()), float(np.dot(s * s, g * g)), math.inf
        s, g = s[: last + 1], g[: last + 1]
    S, Q = _rev_cumsum(s), _rev_cumsum((s * g) ** 2)
    tail = float(np.sum(s[:-1] * (Q[:-1] / (S[:-1] * S[1:]))))
    return float(S[0]), float(Q[0]), tail


def last_iterate_bound(
    lrs: ShapeLike, norms: npt.ArrayLike, D: float = 1.0, *, drop_trailing_zeros: bool = True
) -> float:
    """The direct bound on ``E[f(x_T) - f*]`` of SGD with learning rates ``lrs`` (not a shape):
    ``B = (D² + Q_0) / (2 S_0) + 1/2 sum_{k=0}^{T-2} eta_k Q_k / (S_k S_{k+1})``, with
    ``S_k = sum_{t>=k} eta_t`` and ``Q_k = sum_{t>=k} eta_t² g_t²``. Trailing zero LRs are dropped
    with their norms first (``drop_trailing_zeros=False``: such a schedule gives ``inf``).

    >>> last_iterate_bound([1.0, 0.5], [1.0, 1.0])
    1.5833...
    >>> last_iterate_bound([1.0, 0.5, 0.0], [1.0, 1.0, 7.0])  # the trailing zero is dropped
    1.5833...
    >>> last_iterate_bound([1.0, 0.5, 0.0], [1.0, 1.0, 7.0], drop_trailing_zeros=False)
    inf
    """
    d = positive_real("D", D)
    S0, Q0, tail = _direct_terms(lrs, norms, "lrs", drop_trailing_zeros)
    if math.isinf(tail):
        return math.inf
    return (d * d + Q0) / (2.0 * S0) + 0.5 * tail


def bound_coefficients(
    shape: ShapeLike, norms: npt.ArrayLike, D: float = 1.0, *, drop_trailing_zeros: bool = True
) -> tuple[float, float]:
    """The coefficients ``(a, b)`` of the direct bound ``B(c s) = a / c + c b`` in the scale ``c``:
    ``a = D² / (2 S_0)``, ``b = Q_0 / (2 S_0) + 1/2 sum_{k=0}^{T-2} s_k Q_k / (S_k S_{k+1})`` with
    the tail sums of the shape ``s`` (:func:`last_iterate_bound`; a kept final zero: ``b = inf``).

    >>> a, b = bound_coefficients([1.0, 0.5], [1.0, 1.0])
    >>> round(a, 4), round(b, 4)
    (0.3333, 1.25)
    """
    d = positive_real("D", D)
    S0, Q0, tail = _direct_terms(shape, norms, "shape", drop_trailing_zeros)
    return d * d / (2.0 * S0), Q0 / (2.0 * S0) + 0.5 * tail


def best_scale(
    shape: ShapeLike, norms: npt.ArrayLike, D: float = 1.0, *, drop_trailing_zeros: bool = True
) -> tuple[float, float]:
    """The best base LR ``c* = sqrt(a / b)`` for ``shape`` and the bound ``2 sqrt(a b)`` it reaches
    (:func:`bound_coefficients`); ``b = 0`` gives ``(inf, 0.0)``, ``b = inf`` gives ``(0.0, inf)``.

    >>> c, value = best_scale([1.0, 0.5], [1.0, 1.0])
    >>> round(c, 4), round(value, 4)
    (0.5164, 1.291)
    """
    a, b = bound_coefficients(shape, norms, D, drop_trailing_zeros=drop_trailing_zeros)
    if b == 0.0:
        return math.inf, 0.0
    if math.isinf(b):
        return 0.0, math.inf
    return math.sqrt(a / b), 2.0 * math.sqrt(a * b)


def worst_case_bound(shape: ShapeLike, G: float = 1.0, D: float = 1.0) -> float:
    """The direct bound ``2 sqrt(a b)`` of ``shape`` at its best scale with every norm ``G``: the
    worst case over ``||g_t|| <= G``, as ``B`` grows with every ``g_t``.

    >>> worst_case_bound([1.0], G=2.0, D=3.0)  # one step: f(x_0) - f* <= G D
    6.0
    >>> round(worst_case_bound([1.0, 0.75, 0.5, 0.25]), 4)
    1.0328
    """
    g = positive_real("G", G)
    s = _as_vector("shape", shape)
    return best_scale(s, np.full(s.shape[0], g), D)[1]


def bound_ratio_to_linear(shape: ShapeLike, norms: npt.ArrayLike) -> float:
    """Best-scale direct bound of ``shape`` over that of linear decay ``s_t = (T - t) / T`` (same
    norms): below 1, ``shape`` has the better bound.

    >>> round(bound_ratio_to_linear(np.ones(100), np.ones(100)), 4)  # constant LR
    1.2206
    """
    s = _as_vector("shape", shape)
    own = best_scale(s, norms)[1]  # checks the norms too
    T = s.shape[0]
    ref = best_scale((T - np.arange(T, dtype=np.float64)) / T, norms)[1]
    if ref == 0.0:
        return 1.0 if own == 0.0 else math.inf
    return own / ref


def lrs_from_weights(weights: npt.ArrayLike, gamma: float = 1.0) -> FloatArray:
    """The SGD learning rates of the weighted bound: ``eta_t = gamma w_t W_{t+1} / W_0`` with
    ``W_k = sum_{p >= k} w_p``, so the last LR is 0 (``w = 1``: ``eta_t = gamma (T-1-t) / T``).

    >>> lrs_from_weights(np.ones(4), gamma=2.0)
    array([1.5, 1. , 0.5, 0. ])
    """
    w = _as_vector("weights", weights)
    gam = positive_real("gamma", gamma)
    W = _rev_cumsum(w)
    if W[0] <= 0.0:
        raise BoundError("weights are all zero: at least one weight must be positive")
    return np.asarray(gam * w * np.append(W[1:], 0.0) / W[0], dtype=np.float64)


def weighted_bound(
    weights: npt.ArrayLike, norms: npt.ArrayLike, D: float = 1.0, gamma: float | None = None
) -> float:
    """The weighted bound ``(D²/gamma + gamma sum_t w_t² g_t²) / (2 sum_t w_t)`` of SGD with
    :func:`lrs_from_weights`; ``gamma=None`` uses the best ``gamma* = D / sqrt(sum w² g²)``, giving
    ``D sqrt(sum w² g²) / sum w``.

    >>> weighted_bound(np.ones(4), np.ones(4))  # w = 1, G = D = 1: D G / sqrt(T)
    0.5
    >>> weighted_bound(np.ones(4), np.ones(4), gamma=1.0)
    0.625
    """
    w = _as_vector("weights", weights)
    g = _as_vector("norms", norms)
    _same_length("weights", w, "norms", g)
    d = positive_real("D", D)
    total = float(w.sum())
    if total <= 0.0:
        raise BoundError("weights are all zero: at least one weight must be positive")
    v = float(np.dot(w * w, g * g))
    if gamma is None:
        return d * math.sqrt(v) / total
    gam = positive_real("gamma", gamma)
    return (d * d / gam + gam * v) / (2.0 * total)


def optimal_weights(norms: npt.ArrayLike) -> FloatArray:
    """The weights ``w_t = ||g_t||^-2`` minimising the weighted bound for known (positive) norms.

    >>> optimal_weights([1.0, 2.0, 0.5])
    array([1.  , 0.25, 4.  ])
    """
    g = _as_vector("norms", norms, positive=True)
    return np.asarray(1.0 / (g * g), dtype=np.float64)


def optimal_schedule(norms: npt.ArrayLike, D: float = 1.0) -> tuple[FloatArray, float]:
    """The optimal LRs for known gradient norms, ``eta_t = gamma* g_t^-2 (sum_{p>t} g_p^-2) /
    sum_p g_p^-2`` with ``gamma* = D / sqrt(sum g^-2)``, and their bound ``D / sqrt(sum g^-2)``.

    >>> lrs, value = optimal_schedule(np.ones(4))
    >>> lrs
    array([0.375, 0.25 , 0.125, 0.   ])
    >>> value
    0.5
    """
    d = positive_real("D", D)
    w = optimal_weights(norms)
    gamma = d / math.sqrt(float(w.sum()))
    return lrs_from_weights(w, gamma), gamma


def all_tail_sum(q: npt.ArrayLike, w: npt.ArrayLike) -> float:
    """The right-hand side of the all-tail identity, equal to ``q[-1]`` for any finite ``q``:
    ``(1/W_0) sum_t w_t q_t + sum_{k=0}^{T-2} (w_k / W_{k+1}) (1/W_k) sum_{t>=k} w_t (q_t - q_k)``
    with ``W_k = sum_{t>=k} w_t`` (``w >= 0`` with a positive last entry).

    >>> all_tail_sum([3.0, -1.0, 2.5], [1.0, 2.0, 0.5])
    2.5
    """
    w_arr = _as_vector("w", w)
    qa = _finite_vector("q", q)
    _same_length("q", qa, "w", w_arr)
    if w_arr[-1] <= 0.0:
        raise BoundError(
            f"w[{w_arr.shape[0] - 1}] = {float(w_arr[-1])!r} must be positive "
            "(the last weight divides every tail sum)"
        )
    W, R = _rev_cumsum(w_arr), _rev_cumsum(w_arr * qa)
    head = float(R[0] / W[0])
    inner = R[:-1] - qa[:-1] * W[:-1]  # sum_{t>=k} w_t (q_t - q_k)
    return head + float(np.sum(w_arr[:-1] / W[1:] * inner / W[:-1]))
