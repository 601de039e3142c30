"""Tests of refinedlr.bounds against independent references (plain loops, exact fractions,
numerical minimisation, simulated subgradient descent)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from refinedlr.bounds import (
    BoundError,
    all_tail_sum,
    best_scale,
    bound_coefficients,
    bound_ratio_to_linear,
    last_iterate_bound,
    lrs_from_weights,
    optimal_schedule,
    optimal_weights,
    weighted_bound,
    worst_case_bound,
)
from refinedlr.schedules import (
    Constant,
    Cosine,
    InverseSqrt,
    InverseTime,
    LinearDecay,
    Polynomial,
    StepWise,
    WarmupStableDecay,
)

SETTINGS = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------------------------
# independent references: direct transcriptions of the 1-indexed formulas, O(T^2) loops


def ref_direct(eta: Sequence[Any], g: Sequence[Any], D: Any) -> Any:
    """Formula 4, 1-indexed, term by term; works on floats or Fractions. inf if unbounded."""
    T = len(eta)
    e = [None, *eta]  # e[1] .. e[T]
    n = [None, *g]

    def tail(a: int, b: int) -> Any:
        return sum((e[j] for j in range(a, b + 1)), 0 * e[1])

    def sq(a: int, b: int) -> Any:
        return sum((e[t] ** 2 * n[t] ** 2 for t in range(a, b + 1)), 0 * e[1])

    total = tail(1, T)
    out = D**2 / (2 * total) + sq(1, T) / (2 * total)
    for k in range(1, T):
        after = tail(k + 1, T)
        if after == 0:
            return math.inf
        out += Fraction(1, 2) * (e[k] / after) * (1 / tail(k, T)) * sq(k, T)
    return out


def ref_weighted(w: Sequence[float], g: Sequence[float], D: float, gamma: float) -> float:
    total = sum(w)
    return (D**2 / gamma + gamma * sum(wt**2 * gt**2 for wt, gt in zip(w, g, strict=True))) / (
        2 * total
    )


def ref_lrs_from_weights(w: Sequence[float], gamma: float) -> list[float]:
    """eta_t = gamma w_t w_{t+1:T} / w_{1:T} (1-indexed), returned 0-indexed."""
    T = len(w)
    total = sum(w)
    return [gamma * w[t] * sum(w[t + 1 :]) / total for t in range(T)]


def ref_all_tail(q: Sequence[Any], w: Sequence[Any]) -> Any:
    """Formula 5, 1-indexed, term by term."""
    T = len(q)
    q1, w1 = [None, *q], [None, *w]
    out = sum(w1[t] * q1[t] for t in range(1, T + 1)) / sum(w1[1:])
    for k in range(1, T):
        wk_T = sum(w1[k:])
        wk1_T = sum(w1[k + 1 :])
        inner = sum(w1[t] * (q1[t] - q1[k]) for t in range(k, T + 1))
        out += (w1[k] / wk1_T) * (1 / wk_T) * inner
    return out


def provided_schedules(T: int) -> dict[str, np.ndarray]:
    return {
        "linear": LinearDecay(T).preview(),
        "constant": Constant(T).preview(),
        "cosine": Cosine(T).preview(),
        "step": StepWise(T).preview(),
        "poly0.5": Polynomial(T, power=0.5).preview(),
        "poly2": Polynomial(T, power=2.0).preview(),
        "1/t": InverseTime(T).preview(),
        "1/sqrt(t)": InverseSqrt(T).preview(),
        "wsd": WarmupStableDecay(T).preview(),
    }


def worst_scores(T: int) -> dict[str, float]:
    return {name: worst_case_bound(s) for name, s in provided_schedules(T).items()}


# --------------------------------------------------------------------------------------------
# the direct bound (formula 4)


small_ints = st.integers(min_value=0, max_value=6)


@SETTINGS
@given(
    eta=st.lists(small_ints, min_size=1, max_size=9),
    last=st.integers(min_value=1, max_value=6),
    g=st.lists(small_ints, min_size=10, max_size=10),
    D=st.integers(min_value=1, max_value=4),
)
def test_direct_bound_matches_exact_fraction_reference(
    eta: list[int], last: int, g: list[int], D: int
) -> None:
    eta = [*eta, last]  # the last LR is positive: the bound is finite
    g = g[: len(eta)]
    exact = ref_direct([Fraction(x, 3) for x in eta], [Fraction(x) for x in g], Fraction(D))
    got = last_iterate_bound(np.array(eta) / 3.0, np.array(g, dtype=float), D=float(D))
    assert got == pytest.approx(float(exact), rel=1e-12)


def test_direct_bound_matches_float_loop_on_random_schedules() -> None:
    rng = np.random.default_rng(0)
    for _ in range(40):
        T = int(rng.integers(1, 60))
        eta = rng.uniform(0.0, 2.0, T) * (rng.random(T) > 0.2)  # some zero LRs inside
        eta[-1] = rng.uniform(0.01, 1.0)
        g = rng.uniform(0.0, 5.0, T)
        D = float(rng.uniform(0.1, 10.0))
        ref = float(ref_direct(list(eta), list(g), D))
        assert last_iterate_bound(eta, g, D) == pytest.approx(ref, rel=1e-11)


def test_direct_bound_hand_computed_two_steps() -> None:
    # S = (1.5, 0.5), Q = (1.25, 0.25): (1 + 1.25) / 3 + 1/2 * 1 * 1.25 / (1.5 * 0.5) = 19/12
    assert last_iterate_bound([1.0, 0.5], [1.0, 1.0]) == pytest.approx(19 / 12, rel=1e-15)
    # one step: (D^2 + eta^2 g^2) / (2 eta)
    assert last_iterate_bound([2.0], [3.0], D=5.0) == pytest.approx((25 + 36) / 4)


def test_bounds_hold_on_simulated_subgradient_descent() -> None:
    # f(x) = sum_i c_i |x_i - x*_i| (convex, f* = 0): the gap at the paper's x_T (where the last
    # gradient is taken) is below the direct bound for any schedule, and below the weighted bound
    # for LRs built from weights fixed in advance.
    rng = np.random.default_rng(1)
    d = 5
    coef = rng.uniform(0.5, 2.0, d)
    x_star = rng.normal(size=d)

    def f(x: np.ndarray) -> float:
        return float(np.sum(coef * np.abs(x - x_star)))

    def run(lrs: np.ndarray, x0: np.ndarray) -> tuple[float, np.ndarray]:
        x = x0.copy()
        norms = np.empty(lrs.size)
        for t, eta in enumerate(lrs):
            grad = coef * np.sign(x - x_star)
            norms[t] = np.linalg.norm(grad)
            if t < lrs.size - 1:  # the paper's x_T is where the last gradient is taken
                x = x - eta * grad
        return f(x), norms

    T = 200
    for lrs in (
        0.05 * LinearDecay(T).preview(),
        0.2 * Cosine(T, floor=0.01).preview(),
        0.01 * Constant(T).preview(),
        rng.uniform(0.0, 0.1, T) + 1e-3,
        lrs_from_weights(rng.uniform(0.1, 1.0, T), gamma=0.3),  # ends with 0
    ):
        x0 = x_star + rng.normal(size=d) * 3
        D = float(np.linalg.norm(x0 - x_star))
        gap, norms = run(lrs, x0)
        assert 0.0 <= gap <= last_iterate_bound(lrs, norms, D) * (1 + 1e-12)
    for gamma in (0.05, 1.0, 10.0):
        w = rng.uniform(0.1, 1.0, T)
        x0 = x_star + rng.normal(size=d) * 3
        D = float(np.linalg.norm(x0 - x_star))
        gap, norms = run(lrs_from_weights(w, gamma), x0)
        assert 0.0 <= gap <= weighted_bound(w, norms, D, gamma) * (1 + 1e-12)


def test_direct_bound_accepts_schedule_objects() -> None:
    class Custom:
        def preview(self) -> np.ndarray:
            return np.array([1.0, 0.5, 0.25])

    T = 50
    g = np.linspace(0.5, 2.0, T)
    s = Cosine(T)
    assert last_iterate_bound(s, g) == last_iterate_bound(s.preview(), g)
    assert best_scale(s, g) == best_scale(s.preview(), g)
    assert bound_coefficients(s, g) == bound_coefficients(s.preview(), g)
    assert worst_case_bound(s) == worst_case_bound(s.preview())
    assert bound_ratio_to_linear(s, g) == bound_ratio_to_linear(s.preview(), g)
    assert last_iterate_bound(Custom(), np.ones(3)) == last_iterate_bound([1.0, 0.5, 0.25], [1] * 3)


# --------------------------------------------------------------------------------------------
# trailing zeros


def test_trailing_zeros_are_dropped_with_their_norms() -> None:
    lrs = np.array([1.0, 0.7, 0.2, 0.0, 0.0])
    norms = np.array([1.0, 2.0, 0.5, 100.0, 1e6])
    trimmed = last_iterate_bound(lrs[:3], norms[:3], D=2.0)
    assert last_iterate_bound(lrs, norms, D=2.0) == trimmed
    assert float(ref_direct(list(lrs[:3]), list(norms[:3]), 2.0)) == pytest.approx(trimmed)
    assert last_iterate_bound(lrs, norms, D=2.0, drop_trailing_zeros=False) == math.inf
    assert float(ref_direct(list(lrs), list(norms), 2.0)) == math.inf  # the formula itself
    assert bound_coefficients(lrs, norms, drop_trailing_zeros=False)[1] == math.inf
    assert best_scale(lrs, norms, drop_trailing_zeros=False) == (0.0, math.inf)
    assert best_scale(lrs, norms) == best_scale(lrs[:3], norms[:3])


def test_zero_lrs_inside_the_schedule_are_kept() -> None:
    lrs = np.array([1.0, 0.0, 0.5, 0.0, 0.3])
    norms = np.array([1.0, 3.0, 2.0, 5.0, 1.0])
    got = last_iterate_bound(lrs, norms, drop_trailing_zeros=False)
    assert got == last_iterate_bound(lrs, norms)
    assert got == pytest.approx(float(ref_direct(list(lrs), list(norms), 1.0)), rel=1e-13)


def test_all_zero_schedule_is_an_error() -> None:
    for drop in (True, False):
        with pytest.raises(BoundError, match="all zero"):
            last_iterate_bound([0.0, 0.0], [1.0, 1.0], drop_trailing_zeros=drop)
    with pytest.raises(BoundError, match="shape are all zero"):
        best_scale(np.zeros(3), np.ones(3))


# --------------------------------------------------------------------------------------------
# the scale: a / c + c b


def test_scale_form_matches_reference_at_any_scale() -> None:
    rng = np.random.default_rng(2)
    s = rng.uniform(0.05, 1.0, 30)
    g = rng.uniform(0.1, 3.0, 30)
    a, b = bound_coefficients(s, g, D=1.7)
    for c in (1e-3, 0.1, 1.0, 7.5, 300.0):
        ref = float(ref_direct(list(c * s), list(g), 1.7))
        assert a / c + c * b == pytest.approx(ref, rel=1e-11)


def test_best_scale_matches_numerical_minimisation() -> None:
    rng = np.random.default_rng(3)
    for _ in range(8):
        T = int(rng.integers(2, 40))
        s = rng.uniform(0.0, 1.0, T)
        s[-1] = rng.uniform(0.05, 1.0)
        g = rng.uniform(0.1, 4.0, T)
        D = float(rng.uniform(0.2, 5.0))
        res = minimize_scalar(
            lambda u: float(ref_direct(list(math.exp(u) * s), list(g), D)),  # noqa: B023
            bounds=(-15.0, 15.0),
            method="bounded",
            options={"xatol": 1e-10},
        )
        c, value = best_scale(s, g, D)
        assert value == pytest.approx(res.fun, rel=1e-9)
        assert value <= res.fun * (1 + 1e-12)  # the closed form is never worse
        assert c == pytest.approx(math.exp(res.x), rel=1e-4)


def test_best_scale_with_zero_norms() -> None:
    assert best_scale([1.0, 0.5], [0.0, 0.0]) == (math.inf, 0.0)


# --------------------------------------------------------------------------------------------
# worst case: linear decay and D G / sqrt(T)


def test_weighted_bound_of_linear_decay_is_exactly_DG_over_sqrtT() -> None:
    for T in (1, 7, 100, 12345):
        for G, D in ((1.0, 1.0), (3.0, 0.5)):
            closed = D * G / math.sqrt(T)
            assert weighted_bound(np.ones(T), np.full(T, G), D) == pytest.approx(closed, rel=1e-12)
            gamma = D / (G * math.sqrt(T))  # the paper's eta_t = D/(G sqrt T) (1 - t/T)
            assert weighted_bound(np.ones(T), np.full(T, G), D, gamma) == pytest.approx(closed)
            lrs = lrs_from_weights(np.ones(T), gamma)
            t1 = np.arange(1, T + 1)  # 1-indexed
            np.testing.assert_allclose(lrs, gamma * (1 - t1 / T), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("T", [4, 10, 100, 1_000, 10_000, 100_000])
def test_direct_bound_of_linear_decay_is_about_twice_DG_over_sqrtT(T: int) -> None:
    # Found: the best-scale direct bound of 1 - t/T with constant norms G is
    # 2 D G / sqrt(T) * (1 + O(log T / T)), always above 2 (in units of D G / sqrt(T): 2.0656 at
    # T=4, 2.0361 at T=100, 2.0008 at T=10^4, 2.0001 at T=10^5), while the weighted bound of the
    # same schedule is exactly D G / sqrt(T): the direct bound is a factor ~2 looser.
    G, D = 2.5, 0.4
    ratio = worst_case_bound(LinearDecay(T), G=G, D=D) / (D * G / math.sqrt(T))
    assert 2.0 < ratio <= 2.0 + 2.0 * math.log(T) / T
    # the same for the weights-derived linear schedule with its zero last LR dropped
    lrs = lrs_from_weights(np.ones(T + 1))
    ratio_w = best_scale(lrs, np.full(T + 1, G), D)[1] / (D * G / math.sqrt(T))
    assert ratio_w == pytest.approx(ratio, rel=1e-10)


def test_worst_case_bound_scales_with_D_times_G() -> None:
    s = Cosine(64).preview()
    base = worst_case_bound(s)
    assert worst_case_bound(s, G=3.0, D=0.5) == pytest.approx(1.5 * base, rel=1e-13)


@pytest.mark.parametrize("T", [29, 50, 100, 1_000, 10_000])
def test_linear_decay_has_the_lowest_worst_case_bound_among_provided_schedules(T: int) -> None:
    scores = worst_scores(T)
    others = {k: v for k, v in scores.items() if k != "linear"}
    assert scores["linear"] < min(others.values()), scores


def test_short_horizons_linear_decay_is_not_the_best_provided_schedule() -> None:
    # What is true for T <= 28: some provided schedules score lower than linear decay on the
    # direct worst-case bound (values in units of D G / sqrt(T)).
    root = math.sqrt(10)
    s10 = {k: v * root for k, v in worst_scores(10).items()}
    assert s10["linear"] == pytest.approx(2.1174, abs=1e-4)
    assert s10["constant"] == pytest.approx(1.9568, abs=1e-4)
    assert s10["1/sqrt(t)"] == pytest.approx(1.9289, abs=1e-4)
    assert s10["poly0.5"] == pytest.approx(2.0066, abs=1e-4)
    assert min(s10, key=s10.__getitem__) == "1/sqrt(t)"
    s28 = worst_scores(28)
    assert s28["1/sqrt(t)"] < s28["linear"]  # the last horizon where linear is beaten
    assert all(v > s28["1/sqrt(t)"] for k, v in s28.items() if k not in ("1/sqrt(t)", "linear"))


def test_linear_decay_is_not_the_exact_minimiser_of_the_direct_bound() -> None:
    # The last LR only weights the bound; raising it lowers the bound at moderate T.
    for T, v in ((10, 0.5), (30, 0.3), (100, 0.1)):
        s = LinearDecay(T).preview()
        raised = s.copy()
        raised[-1] = v
        assert worst_case_bound(raised) < worst_case_bound(s)


def test_asymptotic_ratios_to_linear_decay() -> None:
    T = 20_000
    g = np.ones(T)
    assert bound_ratio_to_linear(LinearDecay(T), g) == pytest.approx(1.0, rel=1e-14)
    cos = bound_ratio_to_linear(Cosine(T), g)
    poly2 = bound_ratio_to_linear(Polynomial(T, power=2.0), g)
    assert 1.02 < cos < 1.04  # cosine: ~3% worse
    assert poly2 == pytest.approx(3 / (2 * math.sqrt(2)), rel=2e-3)  # 2.1213 / 2
    assert bound_ratio_to_linear(Constant(T), g) > 1.5


def test_bound_ratio_to_linear_is_D_free_and_uses_same_norms() -> None:
    rng = np.random.default_rng(4)
    T = 40
    g = rng.uniform(0.2, 2.0, T)
    s = rng.uniform(0.1, 1.0, T)
    linear = (T - np.arange(T)) / T
    expected = best_scale(s, g, D=3.0)[1] / best_scale(linear, g, D=3.0)[1]
    assert bound_ratio_to_linear(s, g) == pytest.approx(expected, rel=1e-13)


# --------------------------------------------------------------------------------------------
# the weighted bound and its closed forms


def test_weighted_bound_matches_reference_and_closed_form_gamma() -> None:
    rng = np.random.default_rng(5)
    for _ in range(8):
        T = int(rng.integers(1, 50))
        w = rng.uniform(0.0, 3.0, T)
        w[0] += 0.1
        g = rng.uniform(0.1, 5.0, T)
        D = float(rng.uniform(0.1, 4.0))
        for gamma in (0.01, 1.0, 20.0):
            ref = ref_weighted(list(w), list(g), D, gamma)
            assert weighted_bound(w, g, D, gamma) == pytest.approx(ref, rel=1e-12)
        res = minimize_scalar(
            lambda u: ref_weighted(list(w), list(g), D, math.exp(u)),  # noqa: B023
            bounds=(-20.0, 20.0),
            method="bounded",
            options={"xatol": 1e-10},
        )
        best = weighted_bound(w, g, D)
        assert best == pytest.approx(res.fun, rel=1e-9)
        assert best <= res.fun * (1 + 1e-12)
        gamma_star = D / math.sqrt(sum((wt * gt) ** 2 for wt, gt in zip(w, g, strict=True)))
        assert gamma_star == pytest.approx(math.exp(res.x), rel=1e-4)
        assert weighted_bound(w, g, D, gamma_star) == pytest.approx(best, rel=1e-13)


def test_lrs_from_weights_matches_reference_and_w1_is_linear_decay() -> None:
    rng = np.random.default_rng(6)
    w = rng.uniform(0.0, 2.0, 17)
    np.testing.assert_allclose(
        lrs_from_weights(w, 0.7), ref_lrs_from_weights(list(w), 0.7), rtol=1e-13, atol=1e-300
    )
    # w = 1: eta_t = gamma * (T - t) / T for 1-indexed t, i.e. gamma * (T-1-t) / T 0-indexed
    for T in (1, 2, 5, 1000):
        lrs = lrs_from_weights(np.ones(T), gamma=2.0)
        t = np.arange(T)
        np.testing.assert_allclose(lrs, 2.0 * (T - 1 - t) / T, rtol=1e-13, atol=1e-300)
        assert lrs[-1] == 0.0
        if T > 1:
            np.testing.assert_allclose(lrs / lrs[0], (T - 1 - t) / (T - 1), rtol=1e-13)
    # dropping its zero, the w = 1 schedule on T + 1 steps is LinearDecay(T) (1 - t/T) scaled
    T = 12
    lrs = lrs_from_weights(np.ones(T + 1))
    np.testing.assert_allclose(lrs[:-1] / lrs[0], LinearDecay(T).preview(), rtol=1e-13)


positive_norms = st.lists(
    st.floats(min_value=0.01, max_value=100.0, allow_nan=False), min_size=1, max_size=30
)


@SETTINGS
@given(norms=positive_norms, data=st.data(), D=st.floats(min_value=0.01, max_value=100.0))
def test_optimal_weights_beat_random_perturbations(
    norms: list[float], data: st.DataObject, D: float
) -> None:
    g = np.array(norms)
    w = optimal_weights(g)
    np.testing.assert_allclose(w, [1 / x**2 for x in norms], rtol=1e-15)
    factors = data.draw(
        st.lists(
            st.floats(min_value=0.2, max_value=5.0, allow_nan=False),
            min_size=len(norms),
            max_size=len(norms),
        )
    )
    best = weighted_bound(w, g, D)
    assert best == pytest.approx(D / math.sqrt(sum(x**-2 for x in norms)), rel=1e-12)
    assert weighted_bound(w * np.array(factors), g, D) >= best * (1 - 1e-12)
    # any gamma for the optimal weights is no better than the closed form
    gamma = data.draw(st.floats(min_value=1e-3, max_value=1e3))
    assert weighted_bound(w, g, D, gamma) >= best * (1 - 1e-12)


@SETTINGS
@given(norms=positive_norms, D=st.floats(min_value=0.01, max_value=100.0))
def test_optimal_schedule_closed_form(norms: list[float], D: float) -> None:
    lrs, value = optimal_schedule(np.array(norms), D)
    inv = [x**-2 for x in norms]
    total = sum(inv)
    assert value == pytest.approx(D / math.sqrt(total), rel=1e-13)
    gamma = D / math.sqrt(total)
    # eta_t = gamma g_t^-2 sum_{p>t} g_p^-2 / sum_p g_p^-2
    ref = [gamma * inv[t] * sum(inv[t + 1 :]) / total for t in range(len(norms))]
    np.testing.assert_allclose(lrs, ref, rtol=1e-12, atol=1e-300)
    assert lrs[-1] == 0.0
    # at most the worst case D G / sqrt(T), G = max norm
    assert value <= D * max(norms) / math.sqrt(len(norms)) * (1 + 1e-12)


def test_optimal_schedule_constant_norms_is_linear_decay() -> None:
    T, G, D = 8, 2.0, 3.0
    lrs, value = optimal_schedule(np.full(T, G), D)
    assert value == pytest.approx(D * G / math.sqrt(T))
    t = np.arange(T)
    np.testing.assert_allclose(lrs, D / (G * math.sqrt(T)) * (T - 1 - t) / T, rtol=1e-13)


# --------------------------------------------------------------------------------------------
# the all-tail identity (formula 5)


@SETTINGS
@given(
    pairs=st.lists(
        st.tuples(
            st.floats(min_value=-100.0, max_value=100.0, allow_nan=False),
            st.floats(min_value=1e-3, max_value=1e3, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_all_tail_identity_holds_for_random_q_and_positive_w(
    pairs: list[tuple[float, float]],
) -> None:
    q = np.array([p[0] for p in pairs])
    w = np.array([p[1] for p in pairs])
    T = len(pairs)
    tails = np.cumsum(w[::-1])[::-1]
    amplification = 1.0 + float(np.sum(w[:-1] / tails[1:]))
    tol = 1e-13 * T * (1.0 + float(np.max(np.abs(q)))) * amplification
    assert abs(all_tail_sum(q, w) - q[-1]) <= tol


@SETTINGS
@given(
    q=st.lists(st.integers(-20, 20), min_size=1, max_size=12),
    w=st.lists(st.integers(0, 9), min_size=12, max_size=12),
    last=st.integers(1, 9),
)
def test_all_tail_identity_exact_and_implementation_agrees(
    q: list[int], w: list[int], last: int
) -> None:
    ww = [*w[: len(q) - 1], last]  # zero weights allowed, the last one positive
    exact = ref_all_tail([Fraction(x) for x in q], [Fraction(x) for x in ww])
    assert exact == q[-1]  # the identity itself, exactly
    assert all_tail_sum(q, ww) == pytest.approx(q[-1], abs=1e-9 * (1 + max(map(abs, q))))


# --------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "pattern"),
    [
        (
            last_iterate_bound,
            (np.ones((2, 3)), np.ones(6)),
            {},
            r"lrs must be a 1-D array.*\(2, 3\)",
        ),
        (last_iterate_bound, ([], []), {}, r"lrs is empty"),
        (last_iterate_bound, ([1.0, math.nan], [1, 1]), {}, r"lrs\[1\] = nan is not finite"),
        (last_iterate_bound, ([1.0, 1.0, math.inf], [1] * 3), {}, r"lrs\[2\] = inf is not finite"),
        (last_iterate_bound, ([1.0, -0.5], [1, 1]), {}, r"lrs\[1\] = -0.5 must be non-negative"),
        (last_iterate_bound, ([1.0, 1.0], [1.0, -2.0]), {}, r"norms\[1\] = -2.0 must be non-neg"),
        (last_iterate_bound, ([1.0], [math.nan]), {}, r"norms\[0\] = nan is not finite"),
        (last_iterate_bound, (["a", "b"], [1, 1]), {}, r"lrs must be a 1-D array of real numbers"),
        (last_iterate_bound, ([1j], [1]), {}, r"lrs must be .* real numbers, got dtype complex"),
        (last_iterate_bound, ([1.0, 1.0], [1.0]), {}, r"lrs and norms .* same length.* 2 and 1"),
        (last_iterate_bound, ([1.0], [1.0], 0.0), {}, r"D must be a positive finite number, got 0"),
        (last_iterate_bound, ([1.0], [1.0], -1.0), {}, r"D must be a positive .* got -1"),
        (last_iterate_bound, ([1.0], [1.0], math.nan), {}, r"D must be a positive .* got nan"),
        (last_iterate_bound, ([1.0], [1.0], True), {}, r"D must be a positive number, got True"),
        (best_scale, (np.ones(3), np.ones(4)), {}, r"shape and norms .* same length.* 3 and 4"),
        (best_scale, ([0.5, -1.0], [1, 1]), {}, r"shape\[1\] = -1.0 must be non-negative"),
        (bound_coefficients, ([1.0], [1.0], 0.0), {}, r"D must be a positive"),
        (bound_coefficients, ([[1.0]], [1.0]), {}, r"shape must be a 1-D array.*\(1, 1\)"),
        (worst_case_bound, ([1.0],), {"G": 0.0}, r"G must be a positive finite number, got 0"),
        (worst_case_bound, ([1.0],), {"D": -2.0}, r"D must be a positive finite number"),
        (worst_case_bound, ([],), {}, r"shape is empty"),
        (bound_ratio_to_linear, ([1.0, 0.5], [1.0]), {}, r"shape and norms .* 2 and 1"),
        (bound_ratio_to_linear, ([1.0], [math.inf]), {}, r"norms\[0\] = inf is not finite"),
        (weighted_bound, ([1.0, 1.0], [1.0]), {}, r"weights and norms .* 2 and 1"),
        (weighted_bound, ([1.0, -1.0], [1, 1]), {}, r"weights\[1\] = -1.0 must be non-negative"),
        (weighted_bound, ([0.0, 0.0], [1, 1]), {}, r"weights are all zero"),
        (weighted_bound, ([1.0], [1.0]), {"gamma": 0.0}, r"gamma must be a positive finite"),
        (weighted_bound, ([1.0], [1.0]), {"D": 0.0}, r"D must be a positive finite"),
        (lrs_from_weights, ([1.0, math.nan],), {}, r"weights\[1\] = nan is not finite"),
        (lrs_from_weights, ([0.0, 0.0],), {}, r"weights are all zero"),
        (lrs_from_weights, ([1.0],), {"gamma": -1.0}, r"gamma must be a positive finite"),
        (optimal_weights, ([1.0, 0.0, 2.0],), {}, r"norms\[1\] = 0.0 must be positive"),
        (optimal_weights, ([1.0, -3.0],), {}, r"norms\[1\] = -3.0 must be positive"),
        (optimal_weights, (np.ones((2, 2)),), {}, r"norms must be a 1-D array"),
        (optimal_schedule, ([1.0, 1.0],), {"D": 0.0}, r"D must be a positive finite"),
        (optimal_schedule, ([],), {}, r"norms is empty"),
        (all_tail_sum, ([1.0, 2.0], [1.0, 0.0]), {}, r"w\[1\] = 0.0 must be positive"),
        (all_tail_sum, ([1.0, math.nan], [1.0, 1.0]), {}, r"q\[1\] = nan is not finite"),
        (all_tail_sum, ([1.0], [1.0, 1.0]), {}, r"q and w .* same length.* 1 and 2"),
        (all_tail_sum, ([1.0, 2.0], [1.0, -1.0]), {}, r"w\[1\] = -1.0 must be non-negative"),
        (all_tail_sum, ([[1.0]], [1.0]), {}, r"q must be a 1-D array"),
        (all_tail_sum, ([], []), {}, r"w is empty"),
    ],
)
def test_bad_arguments_raise_clear_errors(
    func: object, args: tuple[object, ...], kwargs: dict[str, object], pattern: str
) -> None:
    assert callable(func)
    with pytest.raises(BoundError, match=pattern):
        func(*args, **kwargs)


def test_bound_error_is_a_value_error_and_counts_bad_entries() -> None:
    assert issubclass(BoundError, ValueError)
    with pytest.raises(ValueError, match=r"lrs\[1\] = -1.0 .* \(2 of 4 entries"):
        last_iterate_bound([1.0, -1.0, 0.5, -2.0], np.ones(4))


# --------------------------------------------------------------------------------------------
# size


def test_large_horizon_is_fast_and_accurate() -> None:
    T = 1_000_000
    s = LinearDecay(T).preview()
    g = np.ones(T)
    start = time.perf_counter()
    c, value = best_scale(s, g)
    bound = last_iterate_bound(c * s, g)
    lrs, opt = optimal_schedule(g)
    identity = all_tail_sum(np.linspace(-1.0, 1.0, T), s)
    elapsed = time.perf_counter() - start
    assert elapsed < 20.0  # generous: O(T) numpy, well under a second on an idle core
    assert bound == pytest.approx(value, rel=1e-9)
    assert value * math.sqrt(T) == pytest.approx(2.0, abs=1e-4)
    assert opt == pytest.approx(1 / math.sqrt(T), rel=1e-12)
    assert lrs[-1] == 0.0
    assert identity == pytest.approx(1.0, abs=1e-6)
