"""Contracts of the core modules (bounds, refinement, schedules) that the other tests left open:
what each error says and names, inputs of every numeric type, defaults, edge values, and
closed-form values. Written against the mutants that survived those tests (scripts/mutation);
each test states behaviour a user relies on."""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import statistics
import warnings
from typing import Any

import numpy as np
import pytest

from refinedlr import limits
from refinedlr.bounds import (
    BoundError,
    all_tail_sum,
    bound_coefficients,
    bound_ratio_to_linear,
    lrs_from_weights,
    optimal_weights,
    weighted_bound,
)
from refinedlr.records import GradNormRecord
from refinedlr.refinement import (
    Collapse,
    CollapseWarning,
    MissingNormsWarning,
    RefineError,
    detect_collapse,
    fill_missing,
    median_window,
    refine,
    refine_details,
    refined_multipliers,
    refinement_weights,
    smooth_norms,
)
from refinedlr.schedules import (
    Cosine,
    CosineWithRestarts,
    InverseSqrt,
    InverseTime,
    LinearDecay,
    Polynomial,
    ScheduleError,
    StepWise,
    Tabulated,
    WarmupStableDecay,
)

# -- bounds ------------------------------------------------------------------------------------------


def test_bound_errors_name_the_argument() -> None:
    with pytest.raises(BoundError, match=r"^shape must be a 1-D array of real numbers, got dtype"):
        bound_ratio_to_linear(["a", "b"], [1.0, 1.0])
    with pytest.raises(BoundError, match=r"^norms\[1\] = -1.0 must be non-negative"):
        weighted_bound([1.0, 1.0], [1.0, -1.0])
    with pytest.raises(BoundError, match=r"^weights must be a 1-D array of numbers: "):
        lrs_from_weights([[1.0], [1.0, 2.0]])  # ragged
    with pytest.raises(BoundError, match=r"^weights must be a 1-D array of real numbers: "):
        lrs_from_weights(np.array([1.0, "x"], dtype=object))


def test_object_and_integer_inputs_are_read_as_reals() -> None:
    obj = np.array([1.0, 2, 0.5], dtype=object)  # e.g. a list of mixed Python numbers
    np.testing.assert_array_equal(optimal_weights(obj), [1.0, 0.25, 4.0])
    big = np.array([2**40, 2**41], dtype=np.int64)  # g*g would overflow in int64
    np.testing.assert_array_equal(optimal_weights(big), [2.0**-80, 2.0**-82])
    # Python ints beyond int64: still reals (the identity gives the last one)
    assert all_tail_sum([2**70, 2**71], [1, 1]) == pytest.approx(2.0**71, rel=1e-12)


def test_bound_ratio_with_all_zero_norms_is_one() -> None:
    """No gradient at all: every schedule has the bound 0, so none is better than linear decay."""
    assert bound_ratio_to_linear(np.linspace(1.0, 0.1, 10), np.zeros(10)) == 1.0
    assert bound_ratio_to_linear(np.ones(3), np.zeros(3)) == 1.0


def test_bound_defaults() -> None:
    np.testing.assert_array_equal(lrs_from_weights(np.ones(4)), [0.75, 0.5, 0.25, 0.0])  # gamma 1
    a, b = bound_coefficients([1.0, 0.5, 0.0], [1.0, 1.0, 1.0])  # trailing zeros dropped
    assert (round(a, 4), round(b, 4)) == (0.3333, 1.25)
    assert math.isinf(bound_coefficients([1.0, 0.5, 0.0], [1.0] * 3, drop_trailing_zeros=False)[1])


def test_all_zero_weights() -> None:
    message = "^weights are all zero: at least one weight must be positive$"
    with pytest.raises(BoundError, match=message):
        lrs_from_weights(np.zeros(3))
    with pytest.raises(BoundError, match=message):
        weighted_bound(np.zeros(3), np.ones(3))


def test_all_tail_sum_errors() -> None:
    with pytest.raises(BoundError, match=r"^q must be a 1-D array of real numbers: "):
        all_tail_sum(["a"], [1.0])
    with pytest.raises(BoundError, match=r"^q is empty: at least one step is needed$"):
        all_tail_sum([], [1.0])
    with pytest.raises(
        BoundError,
        match=r"^w\[2\] = 0.0 must be positive \(the last weight divides every tail sum\)$",
    ):
        all_tail_sum([1.0, 2.0, 3.0], [1.0, 2.0, 0.0])


# -- refinement ----------------------------------------------------------------------------------------


def _median_reference(x: list[float], k: int) -> list[float]:
    """Centred running median of odd width ``k``: the first value repeated before the start, the
    record mirrored (without its last value) after the end; plain Python."""
    h, T = k // 2, len(x)

    def at(i: int) -> float:
        return x[0] if i < 0 else x[2 * (T - 1) - i] if i >= T else x[i]

    return [statistics.median(at(j) for j in range(t - h, t + h + 1)) for t in range(T)]


@pytest.mark.parametrize(
    "x,tau,expected",
    [
        ([9, 1, 7, 3, 5, 2, 8], 0.6, [9, 7, 5, 3, 5, 3, 5]),  # k = 5: two values padded each side
        ([1, 5, 2, 8, 3], 0.6, [1, 2, 5, 3, 8]),  # k = 3
        ([4, 1], 1.0, [4, 4]),  # k = 3 on two steps: the end mirrors back onto the first value
        ([2, 9, 4, 6, 1, 3, 8, 5, 7], 1.0, [2, 2, 3, 4, 5, 5, 5, 5, 5]),  # k = 9
    ],
)
def test_smoothing_pads_explicitly(x: list[float], tau: float, expected: list[float]) -> None:
    k = median_window(len(x), tau)
    assert _median_reference([float(v) for v in x], k) == expected  # the reference agrees
    out = smooth_norms(x, tau)
    assert out.dtype == np.float64 and out.tolist() == expected


def test_smoothing_defaults_and_types() -> None:
    x = np.linspace(5.0, 1.0, 40) + np.sin(np.arange(40))
    np.testing.assert_array_equal(smooth_norms(x), smooth_norms(x, 0.1))
    ints = smooth_norms([3, 1, 2, 5, 4, 9, 8, 7, 6, 1], 0.3)
    assert ints.dtype == np.float64
    np.testing.assert_array_equal(ints, _median_reference([3, 1, 2, 5, 4, 9, 8, 7, 6, 1], 3))
    assert smooth_norms([3, 1, 2], 0.0).dtype == np.float64  # window 1: the record itself


def test_median_window_checks_tau() -> None:
    assert [median_window(10, t) for t in (0.0, 0.2, 0.35, 0.4, 1.0)] == [1, 3, 3, 5, 11]
    for bad in (-0.1, 1.5, float("nan"), float("inf"), "0.1"):
        with pytest.raises(RefineError, match=r"^tau must be a fraction in \[0, 1\], got "):
            median_window(10, bad)  # type: ignore[arg-type]


def test_fill_missing_one_gap_and_types() -> None:
    filled, n = fill_missing([2.0, float("nan"), 4.0])
    assert filled.tolist() == [2.0, 3.0, 4.0] and n == 1
    ints, n = fill_missing([1, 2, 3])
    assert ints.dtype == np.float64 and n == 0
    source = np.array([1.0, np.inf, 3.0])
    fill_missing(source)
    assert np.isinf(source[1])  # the input is not changed
    with pytest.raises(RefineError, match=r"^all 3 gradient norms are missing \(NaN or inf\)$"):
        fill_missing([np.nan, np.inf, -np.inf])


def test_weights_and_multipliers() -> None:
    np.testing.assert_array_equal(refinement_weights([1.0, 2.0, 4.0]), [1.0, 0.25, 0.0625])
    np.testing.assert_array_equal(refinement_weights([1.0, 2.0, 4.0], "l1"), [1.0, 0.5, 0.25])
    obj = refinement_weights(np.array([1, 2], dtype=object))
    assert obj.dtype == np.float64 and obj.tolist() == [1.0, 0.25]
    m = refined_multipliers(np.array([1, 3, 1], dtype=object))  # s = [4, 3, 0] / 4
    assert m.dtype == np.float64 and m.tolist() == [1.0, 0.75, 0.0]
    message = (
        r"^the refined schedule has no positive finite value \(max 0.0\); the weights over- or "
        r"underflowed: are the norms within a sane range\?$"
    )
    with pytest.raises(RefineError, match=message):
        refined_multipliers(np.zeros(4))
    with pytest.raises(RefineError, match="no positive finite value"):
        refined_multipliers([1.0, np.inf, 1.0])


def _collapse_reference(g: np.ndarray, s: np.ndarray) -> tuple[int, float]:
    """Peak index and the fraction of the schedule's mass in the last quarter (plain Python)."""
    values = s.tolist()
    T = len(values)
    peak = values.index(max(values))
    total = sum(values)
    quarter = max(1, T // 4)
    return peak, (sum(values[T - quarter :]) / total if total > 0 else 0.0)


@pytest.mark.parametrize("scale", [1.0, 3.7, 0.02])
def test_detect_collapse_values(scale: float) -> None:
    """Median-free of 1: every ratio is scale-free, and peak and late mass are those of the
    l2-refined multipliers (closed form: w = g^-2, s_t = w_t sum_{p>t} w_p)."""
    g = scale * np.r_[np.full(12, 2.0), np.full(4, 0.01)]  # T = 16, the last 2 steps collapse
    c = detect_collapse(g)
    assert c is not None
    assert c.late_ratio == pytest.approx(0.005) and c.late_fraction == 0.1 and c.threshold == 0.1
    w = (g**-2.0).tolist()
    s = np.array([w[t] * sum(w[t + 1 :]) for t in range(len(w))])
    peak, mass = _collapse_reference(g, s)
    assert c.peak_fraction == pytest.approx(peak / 15) and c.late_mass == pytest.approx(mass)


def test_detect_collapse_window_sizes() -> None:
    g = np.r_[np.ones(9), 0.001]  # T = 10: the late window is the last step
    assert detect_collapse(g) is not None
    assert detect_collapse(np.r_[np.ones(8), 1.0, 0.001], late_fraction=0.2) is None  # 2 steps
    long = np.r_[np.ones(90), np.full(9, 0.01), 1.0]  # T = 100: the last 10 steps
    c = detect_collapse(long)
    assert c is not None and c.late_ratio == pytest.approx(0.01)
    assert detect_collapse(np.r_[np.ones(9), 0.1]) is None  # exactly at the threshold: no collapse
    assert detect_collapse(np.r_[np.ones(9), 0.0999]) is not None


def test_detect_collapse_uses_the_schedule_given() -> None:
    g = np.r_[np.ones(9), 0.001]
    schedule = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0])  # peak at step 8 of 10
    c = detect_collapse(g, schedule)
    assert c is not None and c.peak_fraction == pytest.approx(8 / 9) and c.late_mass == 1.0
    small = np.array([0, 0, 0, 0, 0, 0, 0, 0.1, 0.2, 0.3])  # total 0.6: mass still a fraction
    assert detect_collapse(g, small).late_mass == pytest.approx(5 / 6)  # type: ignore[union-attr]
    zero = detect_collapse(g, np.zeros(10))
    assert zero is not None and zero.late_mass == 0.0 and zero.peak_fraction == 0.0
    six = detect_collapse(np.r_[np.ones(5), 0.001], np.array([0, 1, 2, 3, 4, 5.0]))  # quarter: 1
    assert six is not None and six.late_mass == pytest.approx(5 / 15)
    eight = detect_collapse(np.r_[np.ones(7), 0.001], np.arange(8.0))  # quarter: 2 steps
    assert eight is not None and eight.late_mass == pytest.approx(13 / 28)
    two = detect_collapse(np.array([1.0, 0.01]), np.array([0.0, 1.0]))
    assert two is not None and two.peak_fraction == 1.0


def test_collapse_messages() -> None:
    late = Collapse(late_ratio=0.0123, late_fraction=0.1, threshold=0.1, peak_fraction=0.8,
                    late_mass=0.4)  # fmt: skip
    assert late.message() == (
        "smoothed gradient norms in the last 10% of training fall to 0.0123x their median "
        "(below 0.1x): the paper's degenerate case (over-fitting, separable data). The refined "
        "schedule puts its peak at 80% of training and 40% of its learning-rate mass in the last "
        "quarter, so the LR stays high until late and the last iterate usually ends worse than "
        "with linear decay; prefer linear decay, a larger tau, or a weaker power"
    )
    early = dataclasses.replace(late, peak_fraction=0.2, late_mass=0.1)
    assert early.message().endswith(
        "puts its peak at 20% of training and 10% of its learning-rate mass in the last quarter; "
        "the tiny late norms make the weights of the last steps dominate; prefer linear decay, "
        "a larger tau, or a weaker power"
    )
    assert "stays high" in dataclasses.replace(early, late_mass=0.25).message()
    assert "stays high" in dataclasses.replace(early, peak_fraction=0.5).message()


@pytest.mark.parametrize("power", [float("inf"), True, "2", 0, -1.0, float("nan")])
def test_bad_power(power: object) -> None:
    with pytest.raises(RefineError, match=r"^power must be a positive number, got "):
        refine(np.ones(10), power=power)  # type: ignore[arg-type]


def test_refine_errors_say_why() -> None:
    with pytest.raises(RefineError, match=r"^norm must be 'l2' \(SGD, Algorithm 1\) or 'l1'"):
        refine(np.ones(10), norm="l3")  # type: ignore[arg-type]
    with pytest.raises(
        RefineError,
        match=r"^total_steps=3 \(--steps\): a refined schedule needs a horizon of at least 4 "
        r"steps to keep its shape \(warm-up, peak, anneal\); for a run this short use a "
        r"constant learning rate$",
    ):
        refine(np.ones(10), total_steps=3)
    with pytest.raises(
        RefineError,
        match=r"^gradient norms must be positive; step 2 has 0.0 \(2 step\(s\) <= 0\)\. A zero "
        r"norm means no gradient: was the record taken after the optimizer zeroed the "
        r"gradients\?$",
    ):
        refine([3.0, 2.0, 0.0, 1.0, -1.0])
    with pytest.raises(
        RefineError, match=r"^the weights norm\^-2 over- or underflow \(norms range 1e-200 \.\. 1"
    ):
        refine([1e-200, 1e-200, 1.0, 1.0, 1.0], tau=0.0)
    with pytest.raises(RefineError, match=r"^gradient norms must be a 1-D array, got shape"):
        refine(np.ones((3, 3)))
    with pytest.raises(RefineError, match=r"^gradient norms must be numbers: "):
        refine(["a", "b", "c", "d"])


def test_warnings_point_at_the_caller() -> None:
    norms = np.r_[np.ones(5), np.nan, np.ones(20), np.nan, np.geomspace(1, 1e-3, 10)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refine(norms)
        refine_details(norms)
    missing = [w for w in caught if issubclass(w.category, MissingNormsWarning)]
    collapse = [w for w in caught if issubclass(w.category, CollapseWarning)]
    assert len(missing) == 2 and len(collapse) == 2
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampoline adds frames in between
        assert all(w.filename == __file__ for w in caught), [w.filename for w in caught]
    assert str(missing[0].message).startswith(
        "2 of 37 gradient norms are missing (NaN/inf, e.g. steps skipped by the AMP scaler; "
        "first at step 5); filled by interpolation between neighbours"
    )


def test_refinement_details_and_provenance() -> None:
    norms = np.r_[np.full(30, 4.0), np.full(10, 0.0012345)]  # collapses late
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        d = refine_details(norms, tau=0.1, norm="l1", power=0.5)
    assert d.collapse is not None
    assert d.smoothed.tolist() == smooth_norms(norms, 0.1).tolist()
    assert d.weights.tolist() == (d.smoothed**-0.5).tolist()
    values = d.schedule.values
    assert d.collapse.peak_fraction == pytest.approx(int(np.argmax(values)) / 39)  # its own s
    assert d.schedule.provenance == {
        "method": "refine",
        "tau": 0.1,
        "norm": "l1",
        "power": 0.5,
        "window": 5,
        "source_steps": 40,
        "missing_filled": 0,
        "collapse_late_ratio": round(d.collapse.late_ratio, 6),
    }
    assert d.schedule.provenance["collapse_late_ratio"] != d.collapse.late_ratio  # rounded
    assert refine(np.ones(8)).provenance["power"] == 2.0
    assert list(inspect.signature(refine_details).parameters) == list(
        inspect.signature(refine).parameters
    )


def test_refine_reads_the_kind_asked_of_a_record() -> None:
    rec = GradNormRecord.from_arrays(
        {"l2": np.linspace(2.0, 1.0, 12), "l1": np.linspace(1.0, 2.0, 12)},
        source="run.csv",
    )
    l1 = refine(rec, kind="l1")
    assert l1.provenance["kind"] == "l1" and l1.provenance["source"] == "run.csv"
    np.testing.assert_array_equal(l1.values, refine(np.linspace(1.0, 2.0, 12)).values)
    assert "source_coverage" not in l1.provenance  # a dense record
    sparse = GradNormRecord.from_arrays({"l2": [2.0, 1.0, 1.5, 1.2]}, steps=[0, 1, 2, 5])
    assert refine(sparse).provenance["source_coverage"] == 0.666667


# -- schedules ------------------------------------------------------------------------------------------

FLOORED = [
    lambda f: LinearDecay(10, floor=f),
    lambda f: Cosine(10, floor=f),
    lambda f: CosineWithRestarts(10, cycles=2, floor=f),
    lambda f: Polynomial(10, power=2.0, floor=f),
    lambda f: WarmupStableDecay(10, floor=f),
]


@pytest.mark.parametrize("make", FLOORED)
def test_floor_range(make: Any) -> None:
    for bad, message in [
        (-0.1, r"^floor must be >= 0.0, got -0.1$"),
        (1.5, r"^floor must be <= 1.0, got 1.5$"),
        (float("nan"), r"^floor must be finite, got nan$"),
        ("0.1", r"^floor must be a number, got '0.1'$"),
        (True, r"^floor must be a number, got True$"),
    ]:
        with pytest.raises(ScheduleError, match=message):
            make(bad)
    assert make(1.0).preview().tolist() == [1.0] * 10  # both ends of the range are allowed
    assert make(0.0).preview()[0] == 1.0


def test_open_and_closed_bounds_say_so() -> None:
    with pytest.raises(ScheduleError, match=r"^timescale must be > 0.0, got 0$"):
        InverseSqrt(10, timescale=0)
    assert InverseSqrt(4, timescale=1e-9).preview()[0] == 1.0
    with pytest.raises(ScheduleError, match=r"^offset must be > 0.0, got -1$"):
        InverseTime(10, offset=-1)
    with pytest.raises(ScheduleError, match=r"^cycles must be > 0.0, got 0.0$"):
        Cosine(10, cycles=0.0)
    with pytest.raises(ScheduleError, match=r"^cycles must be > 0.0, got 0$"):
        WarmupStableDecay(10, cycles=0)
    with pytest.raises(ScheduleError, match=r"^cycles must be >= 1, got 0$"):
        CosineWithRestarts(10, cycles=0)
    with pytest.raises(ScheduleError, match=r"^cycles must be an integer, got 1.5$"):
        CosineWithRestarts(10, cycles=1.5)  # type: ignore[arg-type]
    assert CosineWithRestarts(4, cycles=1).preview()[0] == 1.0
    with pytest.raises(ScheduleError, match=r"^power must be > 0.0, got 0$"):
        Polynomial(10, power=0)
    with pytest.raises(ScheduleError, match=r"^factor must be <= 1.0, got 1.5$"):
        StepWise(10, factor=1.5)
    with pytest.raises(ScheduleError, match=r"^factor must be >= 0.0, got -0.5$"):
        StepWise(10, factor=-0.5)
    assert StepWise(4, milestones=(2,), factor=0.0).preview().tolist() == [1, 1, 0, 0]


def test_warmup_arguments() -> None:
    for bad in (True, "3", None):
        with pytest.raises(
            ScheduleError, match=r"^warmup must be an int \(steps\) or a float fraction, got "
        ):
            LinearDecay(10, warmup=bad)  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match=r"^warmup must be >= 0, got -1$"):
        LinearDecay(10, warmup=-1)
    with pytest.raises(ScheduleError, match=r"^warmup must be >= 0.0, got -0.1$"):
        LinearDecay(10, warmup=-0.1)
    with pytest.raises(ScheduleError, match=r"^warmup must be < 1.0, got 1.0$"):
        LinearDecay(10, warmup=1.0)
    assert LinearDecay(10, warmup=0.25).warmup_steps == 2  # round(2.5): to even
    assert LinearDecay(10, warmup=0.35).warmup_steps == 4


def test_steps_a_schedule_takes() -> None:
    s = LinearDecay(4)
    np.testing.assert_array_equal(s(np.array([1.0, 2.0])), [0.75, 0.5])  # whole floats
    for bad, message in [
        (True, r"^step must be an integer, got True$"),
        (1.5, r"^steps must be integers \(optimizer steps counted from 0\), got 1.5$"),
        (np.array([1.0, np.inf]), r"^steps must be integers \(optimizer steps counted from 0\)"),
        ("3", r"^steps must be integers, got '3' of type str$"),
        (-1, r"^steps are counted from 0; got a negative step -1$"),
    ]:
        with pytest.raises(ScheduleError, match=message):
            s(bad)
    strict = LinearDecay(4, after_horizon="raise")
    assert strict(4) == 0.25  # the step after the last (a scheduler's final call) holds
    with pytest.raises(
        ScheduleError,
        match=r"^step 5 is past the horizon total_steps=4 \(after_horizon='raise'\); steps run "
        r"from 0 to total_steps - 1$",
    ):
        strict(5)
    with pytest.raises(
        ScheduleError, match=r"^after_horizon must be 'hold' or 'raise', got 'wrap'$"
    ):
        LinearDecay(4, after_horizon="wrap")  # type: ignore[arg-type]


def test_the_step_limit_is_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_STEPS", 100)
    assert LinearDecay(100).total_steps == 100
    with pytest.raises(ScheduleError, match="MAX_STEPS=100"):
        LinearDecay(101)


def test_cosine_with_restarts_and_a_floor_closed_form() -> None:
    T, c, f = 12, 3, 0.2
    expected = [f + (1 - f) * 0.5 * (1 + math.cos(math.pi * ((c * t / T) % 1.0))) for t in range(T)]
    np.testing.assert_allclose(CosineWithRestarts(T, cycles=c, floor=f).preview(), expected)
    wave = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 3.0 * t / 8)) for t in range(8)]
    np.testing.assert_allclose(Cosine(8, floor=0.1, cycles=1.5).preview(), wave)


def test_stepwise_milestones() -> None:
    assert StepWise(10, milestones=[3, 6]) == StepWise(10, milestones=(3, 6))  # type: ignore[arg-type]
    assert StepWise(10, milestones=np.array([3, 6])).milestones == (3, 6)  # type: ignore[arg-type]
    assert StepWise(4, milestones=(1, 3), factor=0.5).preview().tolist() == [1, 0.5, 0.5, 0.25]
    for bad in ((0,), (10,), (0.0,), (1.0,)):
        with pytest.raises(
            ScheduleError, match=r"must lie inside the horizon \(0, 10\)|> 0.0|< 1.0"
        ):
            StepWise(10, milestones=bad)
    with pytest.raises(ScheduleError, match=r"^milestones must be a sequence, got 3$"):
        StepWise(10, milestones=3)  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match=r"^milestones must increase, got \[6, 3\]$"):
        StepWise(10, milestones=(6, 3))
    with pytest.raises(ScheduleError, match=r"^milestones mix steps \(ints\) and fractions"):
        StepWise(10, milestones=(3, 0.8))


def test_warmup_stable_decay_shapes() -> None:
    T, W, f = 12, 3, 0.1
    s = WarmupStableDecay(T, warmup=W, decay=4, floor=f, warmup_shape="cosine", stable=2,
                          decay_shape="cosine", cycles=1.5)  # fmt: skip
    q = [(t + 1) / (W + 1) for t in range(W)]
    ramp = [f + (1 - f) * 0.5 * (1 - math.cos(math.pi * x)) for x in q]
    # after the warm-up: 2 stable steps, then 4 decay steps, then the floor
    decay = [f + (1 - f) * 0.5 * (1 + math.cos(math.pi * 3.0 * p / 4)) for p in range(4)]
    np.testing.assert_allclose(s.preview(), [*ramp, 1.0, 1.0, *decay, f, f, f])
    root = WarmupStableDecay(8, warmup=3, decay=2, warmup_shape="1-sqrt", decay_shape="1-sqrt")
    q = [0.25, 0.5, 0.75]
    np.testing.assert_allclose(
        root.preview(), [*(1 - math.sqrt(1 - x) for x in q), 1.0, 1.0, 1.0, 1.0, 1 - math.sqrt(0.5)]
    )
    assert WarmupStableDecay(10, warmup=6, decay=4).decay_steps == 4  # they may fill the horizon
    with pytest.raises(ScheduleError, match=r"^warm-up \(6\) plus decay \(5\) steps exceed the "):
        WarmupStableDecay(10, warmup=6, decay=5)
    with pytest.raises(
        ScheduleError, match=r"^warmup_shape must be 'linear', 'cosine' or '1-sqrt', got 'x'$"
    ):
        WarmupStableDecay(10, warmup_shape="x")  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match=r"^decay_shape must be"):
        WarmupStableDecay(10, decay_shape="x")  # type: ignore[arg-type]


def test_specs_hold_what_differs_from_the_defaults() -> None:
    assert LinearDecay(10).to_spec() == {"name": "linear", "total_steps": 10, "floor": 0.0}
    assert LinearDecay(10, warmup=2, after_horizon="raise").to_spec() == {
        "name": "linear",
        "total_steps": 10,
        "warmup": 2,
        "after_horizon": "raise",
        "floor": 0.0,
    }
    assert (
        "cycles" not in Cosine(10).to_spec() and Cosine(10, cycles=1.5).to_spec()["cycles"] == 1.5
    )
    spec = WarmupStableDecay(10, warmup_shape="cosine").to_spec()
    assert spec["warmup_shape"] == "cosine" and "stable" not in spec and "cycles" not in spec
    milestones = StepWise(10, milestones=(3, 6)).to_spec()["milestones"]
    assert milestones == [3, 6] and isinstance(milestones, list)


def test_fingerprints_are_stable_across_versions() -> None:
    """Saved schedule files store their fingerprint; it must not change between releases."""
    pinned = [
        (LinearDecay(100), "49e9158ed1d0a566", "04c810b909c0b9a7"),
        (Cosine(100, warmup=10, floor=0.1), "d14869b82f39a7e3", "015d6b09153e9b3d"),
        (StepWise(50, milestones=(10, 30), factor=0.5), "dc1fc8bd08e1cfde", "3600afaa9e991069"),
        (Tabulated(4, values=[0.5, 1.0, 0.25, 0.0]), "d34125003a378f39", "69a19daf1a28ef53"),
        (
            WarmupStableDecay(100, warmup=5, decay=0.3, decay_shape="1-sqrt",
                              warmup_shape="cosine", cycles=1.0),
            "b73042bbc1460e2e",
            "c448cbfce15a0967",
        ),
    ]  # fmt: skip
    for schedule, fingerprint, shape in pinned:
        assert (schedule.fingerprint(), schedule.shape_fingerprint()) == (fingerprint, shape)
    table = Tabulated(4, values=[0.5, 1.0, 0.25, 0.0], provenance={"tau": 0.1})
    assert table.fingerprint() == "d34125003a378f39"  # provenance is not part of it
    assert LinearDecay(100, after_horizon="raise").fingerprint() == "49e9158ed1d0a566"


def test_tabulated_tables() -> None:
    source = np.array([1.0, 0.5, 0.0])
    s = Tabulated(3, values=source)
    source[0] = 0.25  # the caller's array stays the caller's
    assert s.values.tolist() == [1.0, 0.5, 0.0] and source.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        s.values[0] = 0.0
    assert Tabulated(2, values=[1, 0]).values.dtype == np.float64
    provenance = {"tau": 0.1}
    t = Tabulated(3, values=[1.0, 0.5, 0.0], provenance=provenance)
    provenance["tau"] = 0.9
    assert t.provenance == {"tau": 0.1}
    assert Tabulated(1, values=[0.7]).preview().tolist() == [0.7]
    assert Tabulated(5, values=[0.8, 0.4, 0.0]).with_horizon(1).preview().tolist() == [0.8]
    assert Tabulated(3, values=[0.9]).preview().tolist() == [0.9] * 3
    for bad, message in [
        ([[1.0, 0.5]], r"^values must be a non-empty 1-D array, got shape \(1, 2\)$"),
        ([], r"^values must be a non-empty 1-D array, got shape \(0,\)$"),
        (["a"], r"^values must be numbers: "),
        ([1.0, 1.5, -1.0], r"^multipliers must lie in \[0, 1\]; values\[1\] = 1.5 \(2 bad entries"),
    ]:
        with pytest.raises(ScheduleError, match=message):
            Tabulated(3, values=bad)


def test_tabulated_equality_field_by_field() -> None:
    base = Tabulated(4, values=[1.0, 0.5, 0.25, 0.0])
    assert base == Tabulated(4, values=[1.0, 0.5, 0.25, 0.0], provenance={"x": 1})
    assert hash(base) == hash(Tabulated(4, values=[1.0, 0.5, 0.25, 0.0]))
    for other in (
        Tabulated(5, values=[1.0, 0.5, 0.25, 0.0]),
        Tabulated(4, values=[1.0, 0.5, 0.25, 0.0], warmup=1),
        Tabulated(4, values=[1.0, 0.5, 0.25, 0.0], after_horizon="raise"),
        Tabulated(4, values=[1.0, 0.5, 0.2, 0.0]),
    ):
        assert base != other and other != base
    assert base != LinearDecay(4) and (base == "table") is False


def test_tabulated_from_values() -> None:
    s = Tabulated.from_values([2.0, 4.0, 1.0, 0.0], normalize=True, provenance={"from": "lrs"})
    assert s.values.tolist() == [0.5, 1.0, 0.25, 0.0] and s.total_steps == 4
    assert s.provenance == {"from": "lrs"}
    assert Tabulated.from_values([1.0, 0.5], total_steps=6).total_steps == 6
    assert Tabulated.from_values([1.0, 0.5]).provenance == {}
    assert Tabulated.from_values(np.array([0.25])).total_steps == 1
    message = r"^normalize needs a non-empty 1-D array of finite values >= 0$"
    for bad in ([], [[1.0]], [1.0, np.nan], [1.0, -1.0]):
        with pytest.raises(ScheduleError, match=message):
            Tabulated.from_values(bad, normalize=True)
    with pytest.raises(ScheduleError, match=r"^normalize needs at least one positive value$"):
        Tabulated.from_values([0.0, 0.0], normalize=True)
    with pytest.raises(ScheduleError, match=r"multipliers must lie in \[0, 1\]; values\[0\] = 2.0"):
        Tabulated.from_values([2.0, 1.0])  # raw learning rates need normalize=True


def test_tabulated_repr() -> None:
    short = Tabulated(3, values=[1.0, 0.5, 0.0])
    assert repr(short) == "Tabulated(total_steps=3, values=[1. , 0.5, 0. ])"
    long = Tabulated(10, values=np.linspace(1.0, 0.0, 6), provenance={"tau": 0.1})
    assert repr(long) == (
        "Tabulated(total_steps=10, values=[1. , 0.8, 0.6, 0.4] ... (6 values), "
        "provenance={'tau': 0.1})"
    )
