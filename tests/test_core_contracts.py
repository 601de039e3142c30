"""Contracts of the core modules (bounds, refinement, schedules) that the other tests left open:
what each error says and names, inputs of every numeric type, defaults, edge values, and
closed-form values. Written against the mutants that survived those tests (scripts/mutation);
each test states behaviour a user relies on."""

from __future__ import annotations

import dataclasses
import inspect
import math
import statistics
import warnings

import numpy as np
import pytest

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
