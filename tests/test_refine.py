"""Refinement against method.md's reference values, a plain-Python reference and invariants."""

from __future__ import annotations

import statistics
import warnings

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refinedlr.records import GradNormRecord
from refinedlr.refinement import (
    MIN_STEPS,
    CollapseWarning,
    MissingNormsWarning,
    RefineError,
    median_window,
    refine,
    refine_details,
    smooth_norms,
)
from refinedlr.schedules import Tabulated

N = [9, 7, 5, 3, 2, 1, 1, 1, 1.5, 2, 2.5, 3]

# reference values from ../shared/notes/method.md, computed independently of this code
REFERENCE = [
    (0.0, "l2", [0.018263, 0.030050, 0.058359, 0.157945, 0.334301, 1, 0.662795, 0.325590, 0.078098, 0.022855, 0.005995, 0]),
    (0.25, "l2", [0.018168, 0.029894, 0.058061, 0.157186, 0.332934, 1, 0.668264, 0.336528, 0.084040, 0.026539, 0.008492, 0]),
    (0.25, "l1", [0.172069, 0.216086, 0.292437, 0.459384, 0.626050, 1, 0.747899, 0.495798, 0.218487, 0.100840, 0.040336, 0]),
    (0.5, "l2", [0.039324, 0.064555, 0.124800, 0.333333, 0.682500, 1, 0.786667, 0.573333, 0.360000, 0.135000, 0.067500, 0]),
]  # fmt: skip


@pytest.mark.parametrize("tau,norm,expected", REFERENCE)
def test_reference_values(tau: float, norm: str, expected: list[float]) -> None:
    s = refine(N, tau=tau, norm=norm)  # type: ignore[arg-type]
    np.testing.assert_allclose(s.preview(), expected, atol=1e-6)


def test_reference_smoothed_norms() -> None:
    np.testing.assert_allclose(smooth_norms(N, 0.25), [9, 7, 5, 3, 2, 1, 1, 1, 1.5, 2, 2.5, 2.5])
    np.testing.assert_allclose(smooth_norms(N, 0.5), [9, 7, 5, 3, 2, 1.5, 1.5, 1.5, 1.5, 2, 2, 2])
    assert median_window(12, 0.25) == 3 and median_window(12, 0.5) == 7


def test_reference_constant_norms() -> None:
    np.testing.assert_allclose(
        refine(np.full(7, 3.0)).preview(),
        [1, 0.833333, 0.666667, 0.5, 0.333333, 0.166667, 0],
        atol=1e-6,
    )


# -- an independent, slow, plain-Python transcription of method.md section 2 --------------------


def slow_refine(norms: list[float], tau: float, p: float) -> list[float]:
    T = len(norms)
    k = 2 * (int(tau * T) // 2) + 1
    h = k // 2

    def at(i: int) -> float:
        if i < 0:
            return norms[0]  # "nearest" at the start
        if i >= T:
            return norms[2 * (T - 1) - i]  # "reflect" at the end, last value not repeated
        return norms[i]

    g = [statistics.median(at(i) for i in range(t - h, t + h + 1)) for t in range(T)]
    w = [x**-p for x in g]
    s = [w[t] * sum(w[t + 1 :]) for t in range(T)]
    top = max(s)
    return [x / top for x in s]


@pytest.mark.filterwarnings("ignore::refinedlr.refinement.CollapseWarning")
@settings(max_examples=80, deadline=None)
@given(
    arrays(np.float64, st.integers(4, 80), elements=st.floats(0.01, 100.0)),
    st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.5, 0.9, 1.0]),
    st.sampled_from(["l1", "l2"]),
)
# the smoothing pad, pinned: windows of 5 and 9 reach past both ends
@example(np.array([9.0, 1.0, 7.0, 3.0, 5.0, 2.0, 8.0]), 0.6, "l2")
@example(np.array([2.0, 9.0, 4.0, 6.0, 1.0, 3.0, 8.0, 5.0, 7.0]), 1.0, "l1")
@example(np.array([4.0, 1.0, 3.0, 2.0]), 1.0, "l2")
def test_matches_plain_python_reference(norms: np.ndarray, tau: float, norm: str) -> None:
    expected = slow_refine(norms.tolist(), tau, 2.0 if norm == "l2" else 1.0)
    np.testing.assert_allclose(
        refine(norms, tau=tau, norm=norm).preview(), expected, rtol=1e-9, atol=1e-12
    )  # type: ignore[arg-type]


def test_power_overrides_norm_kind() -> None:
    norms = np.geomspace(10, 1, 30)
    np.testing.assert_allclose(
        refine(norms, norm="l2", power=1.0).preview(), refine(norms, norm="l1").preview()
    )
    np.testing.assert_allclose(
        refine(norms, power=0.5, tau=0).preview(), slow_refine(norms.tolist(), 0.0, 0.5), rtol=1e-9
    )


# -- invariants ----------------------------------------------------------------------------------

positive_norms = arrays(
    np.float64, st.integers(4, 300), elements=st.floats(1e-3, 1e3, allow_nan=False)
)


@pytest.mark.filterwarnings("ignore::refinedlr.refinement.CollapseWarning")
@settings(max_examples=100, deadline=None)
@given(positive_norms, st.floats(0.0, 1.0), st.sampled_from(["l1", "l2"]))
def test_invariants(norms: np.ndarray, tau: float, norm: str) -> None:
    s = refine(norms, tau=tau, norm=norm).preview()  # type: ignore[arg-type]
    assert np.all((s >= 0) & (s <= 1))
    assert s.max() == 1.0
    assert s[-1] == 0.0
    assert np.all(s[:-1] > 0)


@settings(max_examples=60, deadline=None)
@given(positive_norms, st.floats(1e-3, 1e3), st.floats(0.0, 1.0))
def test_scale_invariance(norms: np.ndarray, c: float, tau: float) -> None:
    np.testing.assert_allclose(
        refine(norms * c, tau=tau).preview(),
        refine(norms, tau=tau).preview(),
        rtol=1e-9,
        atol=1e-12,
    )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(4, 500), st.floats(1e-3, 1e3), st.floats(0.0, 1.0), st.sampled_from(["l1", "l2"])
)
def test_constant_norms_give_linear_decay(T: int, c: float, tau: float, norm: str) -> None:
    s = refine(np.full(T, c), tau=tau, norm=norm).preview()  # type: ignore[arg-type]
    np.testing.assert_allclose(s, (T - 1 - np.arange(T)) / (T - 1), atol=1e-12)


@pytest.mark.filterwarnings("ignore::refinedlr.refinement.CollapseWarning")
@settings(max_examples=40, deadline=None)
@given(positive_norms, st.integers(MIN_STEPS, 2000))
def test_resampling_consistency(norms: np.ndarray, horizon: int) -> None:
    base = refine(norms)
    other = refine(norms, total_steps=horizon)
    assert other.total_steps == horizon
    np.testing.assert_array_equal(other.values, base.values)
    v = other.preview()
    assert v[-1] == 0.0 and v.max() <= 1.0
    assert abs(v.max() - 1.0) < 1.0  # resampled values stay in range
    # resampling onto the source length returns the table exactly
    np.testing.assert_array_equal(base.with_horizon(len(norms)).preview(), base.preview())
    # back and forth through a 4x finer horizon changes nothing at the table's own points
    fine = (len(norms) - 1) * 4 + 1
    np.testing.assert_allclose(
        Tabulated(len(norms), values=base.with_horizon(fine).preview()).preview(),
        base.preview(),
        atol=1e-12,
    )


def test_falling_norms_create_a_warmup_and_a_fast_anneal() -> None:
    T = 1000
    t = np.arange(T)
    norms = np.where(t < 300, 10.0 - 9.0 * t / 300, 1.0)  # large early norms, flat later
    s = refine(norms, tau=0.1).preview()
    peak = int(np.argmax(s))
    assert 200 < peak < 400
    assert np.all(np.diff(s[:peak]) > 0), "an emergent warm-up"
    # where the smoothed norms are flat the schedule is linear decay to zero
    tail = s[400:]
    np.testing.assert_allclose(tail / tail[0], (T - 1 - t[400:]) / (T - 1 - 400), atol=1e-12)
    # norms that rise late in training make the final anneal faster than linear
    rising = norms * (1 + 2 * (t / T) ** 2)
    r = refine(rising, tau=0.1).preview()
    p2 = int(np.argmax(r))
    assert r[900] < 0.8 * (T - 1 - 900) / (T - 1 - p2)


# -- bad records ---------------------------------------------------------------------------------


def test_missing_values_are_filled_and_counted() -> None:
    norms = np.array([4.0, np.nan, 2.0, np.inf, 1.0, 1.0, -np.inf, 1.0])
    with pytest.warns(MissingNormsWarning, match="3 of 8 gradient norms are missing"):
        d = refine_details(norms, tau=0)
    np.testing.assert_allclose(d.norms, [4, 3, 2, 1.5, 1, 1, 1, 1])
    assert d.n_missing == 3 and d.schedule.provenance["missing_filled"] == 3


@pytest.mark.parametrize(
    "norms,match",
    [
        ([np.nan] * 6, "all 6 gradient norms are missing"),
        ([1.0, 2.0, 0.0, 1.0, 1.0], "step 2 has 0.0"),
        ([1.0, -2.0, 1.0, 1.0, 1.0], "step 1 has -2.0"),
        ([1.0, 2.0, 3.0], "at least 4 steps"),
        ([[1.0, 2.0], [3.0, 4.0]], "1-D"),
        (["a", "b", "c", "d"], "must be numbers"),
    ],
)
def test_bad_records_raise(norms: list, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(RefineError, match=match):
        refine(norms)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"tau": -0.1}, "tau must be"),
        ({"tau": 2.0}, "tau must be"),
        ({"norm": "linf"}, "norm must be"),
        ({"power": 0.0}, "power must be"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(RefineError, match=match):
        refine(np.ones(10), **kwargs)


def test_collapse_is_detected_and_explained() -> None:
    T = 500
    norms = np.r_[np.ones(400), np.geomspace(1.0, 1e-4, 100)]
    with pytest.warns(CollapseWarning, match="degenerate") as rec:
        d = refine_details(norms, tau=0.1)
    msg = str(rec[0].message)
    assert "peak" in msg and "linear decay" in msg
    assert d.collapse is not None and d.collapse.peak_fraction > 0.7
    assert d.schedule.provenance["collapse_late_ratio"] < 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refine(np.geomspace(10, 1, T))  # falling but not collapsing late: no warning


def test_accepts_records() -> None:
    rec = GradNormRecord.from_arrays({"l2": np.geomspace(5, 1, 40), "l1": np.geomspace(50, 10, 40)})
    a = refine(rec, norm="l1")
    np.testing.assert_allclose(a.preview(), refine(rec.values["l1"], norm="l1").preview())
    assert a.provenance["kind"] == "l1"
    sparse = GradNormRecord.from_arrays({"grad_norm": [4.0, 2.0, 1.0, 1.0]}, steps=[9, 19, 29, 39])
    b = refine(sparse, norm="l2")
    assert b.provenance["source_steps"] == 40 and b.provenance["source_coverage"] == 0.1


@pytest.mark.filterwarnings("ignore::refinedlr.refinement.CollapseWarning")
@settings(max_examples=30, deadline=None)
@given(positive_norms)
def test_no_schedule_value_out_of_range_with_extreme_norms(norms: np.ndarray) -> None:
    assume(np.ptp(norms) > 0)
    s = refine(norms**3, tau=0.0).preview()
    assert np.all(np.isfinite(s))
