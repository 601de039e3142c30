"""refinedlr.risk's contracts, edge by edge: the late window's size, the ratio against a median
computed another way (statistics.median), records whose median is not 1, a median of 0, the two
cut-offs at equality, the refusals and the exact messages."""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from _match import exactly
from refinedlr.refinement import RefineError
from refinedlr.risk import (
    LATE_DECLINE_HIGH,
    LATE_DECLINE_MODERATE,
    LATE_WINDOW,
    RefinementRisk,
    refinement_risk,
)


def flagged(norms: object, **kw: str) -> RefinementRisk:
    r = refinement_risk(norms, **kw)  # type: ignore[arg-type]
    assert r is not None
    return r


def staircase(T: int, m: int) -> np.ndarray:
    """Ones, except the last m steps: 0.05 * j at the j-th step from the end (j = 1..m)."""
    x = np.ones(T)
    x[T - m :] = 0.05 * np.arange(m, 0, -1)
    return x


# ------------------------------------------------------------------------------------------------
# the constants


def test_the_documented_constants() -> None:
    assert LATE_WINDOW == 0.1
    assert (LATE_DECLINE_MODERATE, LATE_DECLINE_HIGH) == (0.95, 0.7)


# ------------------------------------------------------------------------------------------------
# the late window: its size, where it lies


@pytest.mark.parametrize(
    ("T", "k"),
    [(100, 10), (40, 4), (60, 6), (30, 3), (94, 9), (96, 10), (200, 20), (16, 2), (14, 1)],
)
def test_the_late_window_is_the_last_tenth(T: int, k: int) -> None:
    # with the last m < T/2 steps at 0.05, 0.10, ..., the median is 1 and the median of the last k
    # steps is 0.05 * (k + 1) / 2: the ratio tells the window's size
    r = flagged(staircase(T, min(T // 2 - 1, 2 * k + 1)))
    assert r.late_ratio == pytest.approx(0.05 * (k + 1) / 2, rel=1e-12)


@pytest.mark.parametrize("T", [4, 5, 6, 9, 14])
def test_the_late_window_holds_at_least_one_step(T: int) -> None:
    # below 15 steps a tenth rounds to at most 1: only the last step is compared (a window of 2
    # would give a late median of 0.75)
    x = np.r_[np.ones(T - 1), 0.5]
    r = flagged(x)
    assert r.late_ratio == 0.5 and r.level == "high"


def test_the_late_window_is_at_the_end_not_the_start() -> None:
    x = np.r_[np.full(10, 0.5), np.ones(90)]  # low at the start only
    assert refinement_risk(x) is None
    assert flagged(x[::-1]).late_ratio == 0.5


def test_a_decline_just_before_the_window_is_not_seen() -> None:
    # steps 80..89 low, the last 10 back at 1: the late median is 1
    assert refinement_risk(np.r_[np.ones(80), np.full(10, 0.2), np.ones(10)]) is None
    # one more low step (step 90 inside the window) still leaves the late median at 1
    assert refinement_risk(np.r_[np.ones(80), np.full(11, 0.2), np.ones(9)]) is None


# ------------------------------------------------------------------------------------------------
# the ratio: divided by the median, whatever the median


@pytest.mark.parametrize("scale", [0.001, 0.25, 3.0, 1e6])
def test_the_ratio_is_divided_by_the_median(scale: float) -> None:
    x = scale * np.r_[np.ones(90), np.full(10, 0.5)]
    r = flagged(x)
    assert r.late_ratio == pytest.approx(0.5, rel=1e-12) and r.level == "high"
    assert refinement_risk(scale * np.ones(100)) is None


def test_a_median_other_than_one() -> None:
    # median 2 (60 of 100 at 2), late median 1.8: ratio 0.9, a moderate decline
    x = np.r_[np.full(30, 4.0), np.full(60, 2.0), np.full(10, 1.8)]
    r = flagged(x)
    assert r.late_ratio == pytest.approx(0.9, rel=1e-12) and r.level == "moderate"
    # median 0.5, late median 0.6: no decline (a product would give 0.3)
    assert refinement_risk(np.r_[np.full(90, 0.5), np.full(10, 0.6)]) is None


def test_a_median_of_zero_or_less_is_no_risk() -> None:
    assert refinement_risk(np.zeros(100)) is None
    assert refinement_risk(np.r_[np.zeros(60), np.ones(40)]) is None
    assert refinement_risk(np.r_[np.zeros(60), np.full(40, -1.0)][::-1]) is None
    assert refinement_risk(-np.r_[np.ones(90), np.full(10, 0.5)]) is None


def test_a_small_positive_median_is_judged() -> None:
    # median 0.5 (below 1): still a late decline
    r = flagged(np.r_[np.full(90, 0.5), np.full(10, 0.1)])
    assert r.late_ratio == pytest.approx(0.2, rel=1e-12) and r.level == "high"


@given(
    x=st.lists(st.floats(0.01, 100.0), min_size=4, max_size=300).filter(lambda v: len(v) % 10 != 5),
)
@example(x=[1.0, 1.0, 1.0, 0.5])
@example(x=[1.0] * 90 + [0.6] * 10)
def test_the_ratio_against_statistics_median(x: list[float]) -> None:
    T = len(x)
    k = max(1, int(T / 10 + 0.5))  # a tenth, to the nearest step (no halves drawn), at least 1
    want = statistics.median(x[T - k :]) / statistics.median(x)
    r = refinement_risk(x)
    if want >= 0.95:
        assert r is None
    else:
        assert r is not None
        assert r.late_ratio == pytest.approx(want, rel=1e-12)
        assert r.level == ("high" if want < 0.7 else "moderate")
        assert r.norm == "l2"


@given(
    x=st.lists(st.floats(0.01, 100.0), min_size=4, max_size=200),
    e=st.integers(-20, 20),
)
def test_scaling_by_a_power_of_two_changes_nothing(x: list[float], e: int) -> None:
    # a power of two scales exactly: the medians scale, their ratio is the same float
    assert refinement_risk(np.asarray(x) * 2.0**e) == refinement_risk(x)


# ------------------------------------------------------------------------------------------------
# the cut-offs


def test_the_moderate_cut_off_is_exclusive() -> None:
    # medians 1 and 0.95: the ratio is 0.95 exactly, not below the cut-off
    assert refinement_risk(np.r_[np.ones(90), np.full(10, 0.95)]) is None
    just_below = float(np.nextafter(0.95, 0.0))
    r = flagged(np.r_[np.ones(90), np.full(10, just_below)])
    assert r.late_ratio == just_below and r.level == "moderate"


def test_the_high_cut_off_is_exclusive() -> None:
    r = flagged(np.r_[np.ones(90), np.full(10, 0.7)])
    assert r.late_ratio == 0.7 and r.level == "moderate"
    just_below = float(np.nextafter(0.7, 0.0))
    r = flagged(np.r_[np.ones(90), np.full(10, just_below)])
    assert r.late_ratio == just_below and r.level == "high"


def test_a_late_rise_is_no_risk() -> None:
    assert refinement_risk(np.r_[np.ones(90), np.full(10, 3.0)]) is None


# ------------------------------------------------------------------------------------------------
# the result


def test_the_result_is_a_frozen_record() -> None:
    r = flagged(np.r_[np.ones(90), np.full(10, 0.5)], norm="update_l2")
    assert r == RefinementRisk(late_ratio=0.5, level="high", norm="update_l2")
    assert isinstance(r.late_ratio, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.level = "moderate"  # type: ignore[misc]


def test_the_norm_defaults_to_l2() -> None:
    assert flagged(np.r_[np.ones(90), np.full(10, 0.5)]).norm == "l2"


def test_missing_values_are_filled_first() -> None:
    x = np.r_[np.ones(90), np.full(10, 0.5)]
    gappy = x.copy()
    gappy[[3, 50, 95, 99]] = [np.nan, np.inf, -np.inf, np.nan]
    assert refinement_risk(gappy) == refinement_risk(x)
    # a record of lists and ints is read as floats
    assert flagged([1] * 9 + [0]) == RefinementRisk(late_ratio=0.0, level="high", norm="l2")
    assert flagged([2] * 9 + [1]).late_ratio == 0.5


# ------------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize(
    "norms",
    [[], [1.0], [1.0, 2.0, 3.0]],
    ids=["empty", "one", "three"],
)
def test_too_short_is_refused(norms: object) -> None:
    with pytest.raises(RefineError, match=exactly("a record needs at least 4 steps")):
        refinement_risk(norms)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "norms, shape",
    [(5.0, "()"), (np.ones((2, 50)), "(2, 50)"), (np.ones((4, 1)), "(4, 1)")],
    ids=["scalar", "2x50", "4x1"],
)
def test_not_one_dimensional_is_refused_with_its_shape(norms: object, shape: str) -> None:
    message = f"norms must be one value per step (1-D), got shape {shape}"
    with pytest.raises(RefineError, match=exactly(message)):
        refinement_risk(norms)  # type: ignore[arg-type]


def test_four_steps_are_enough() -> None:
    assert refinement_risk([1.0, 1.0, 1.0, 1.0]) is None
    assert flagged([1.0, 1.0, 1.0, 0.25]).late_ratio == 0.25


def test_a_record_with_nothing_finite_is_refused() -> None:
    with pytest.raises(RefineError, match="all 5 gradient norms are missing"):
        refinement_risk([np.nan] * 5)


# ------------------------------------------------------------------------------------------------
# messages

_ADVICE = (
    ". Prefer linear decay, or train once with the refined schedule and check it "
    "(refinedlr verify; Python: refinedlr.verify_refinement). Evidence: the refinement "
    "study (research/results/refinement-study/report.md)"
)
_PATTERN = (
    "over the last 10%): the refined schedule will hold the learning rate high until late, the "
    "pattern on which refinement most often lost to linear decay"
)


def test_the_moderate_message() -> None:
    r = flagged(np.r_[np.ones(90), np.full(10, 0.85)])
    assert r.message() == "the norms fall late in training (to 0.8500x their median " + (
        _PATTERN + _ADVICE
    )


def test_the_high_message() -> None:
    r = flagged(np.r_[np.ones(90), np.full(10, 0.123456)])
    assert r.message() == "the norms fall steeply late in training (to 0.1235x their median " + (
        _PATTERN + _ADVICE
    )


def test_the_l1_message_adds_the_adam_caveat() -> None:
    r = flagged(np.r_[np.ones(90), np.full(10, 0.9)], norm="l1")
    assert r.message() == "the norms fall late in training (to 0.9000x their median " + (
        _PATTERN
        + "; with Adam-type optimizers (l1 norms) refinement rarely beat linear decay"
        + _ADVICE
    )
    for other in ("l2", "update_l1", "L1"):
        assert "Adam" not in dataclasses.replace(r, norm=other).message()
