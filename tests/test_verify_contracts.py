"""refinedlr.verify's contracts, edge by edge: the bound ratio against closed forms and
:func:`refinedlr.bounds.best_scale`, records and plain arrays in every combination, the columns
:func:`check_kind` picks, every caveat, the metrics (a tie, a zero spread, a ``bool``), the
threshold's range, and the exact words of ``reasons()`` and of every refusal.
(The end-to-end behaviour on refined schedules is in test_verify.py.)

The closed form most tests lean on: the best-scale bound ``2 sqrt(a b)`` has ``b`` quadratic in the
norms and ``a`` free of them, so the bound of one shape on ``k`` times a record's norms is ``k``
times its bound on the record. With the refined schedule equal to linear decay, the bound ratio of
a run whose norms are ``k`` times the source run's is exactly ``k``."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _match import exactly
from refinedlr.bounds import best_scale
from refinedlr.decision import bound_caveat
from refinedlr.records import GradNormRecord, RecordError
from refinedlr.refinement import RefineError, refine
from refinedlr.schedules import Cosine, LinearDecay, Tabulated
from refinedlr.verify import (
    CHECK_KINDS,
    VERIFY_THRESHOLD,
    NormsLike,
    check_kind,
    verify_refinement,
)

T = 200
#: large early norms, flat afterwards: informative for the bound (bound_caveat says nothing)
SRC = np.r_[np.full(T // 10, 8.0), np.ones(T - T // 10)]
#: within 1% of constant: the bound cannot tell a refined schedule from linear decay
FLAT = 1 + 0.01 * np.sin(np.arange(T))
LINEAR = LinearDecay(total_steps=T)

IDENTICAL = (
    "run 1 and run 2 have identical norms (the same record twice?); on the record it was refined "
    "from, the bound favours the refined schedule by construction"
)
ADAM = (
    "gradient norms of an Adam-type run; in the refinement study they did not predict the "
    'outcome: record the update direction (kinds=("l1", "update_l2"))'
)
NEARLY_CONSTANT = (
    "the norms are nearly constant (99% and 1% quantiles within 5%): the refined schedule is "
    "about linear decay, and the bound cannot tell them apart"
)


def linear_bound(norms: np.ndarray) -> float:
    """Linear decay's best-scale bound on ``norms``, the shape written out by hand."""
    n = norms.size
    return best_scale(1 - np.arange(n) / n, norms)[1]


def test_the_constants() -> None:
    assert VERIFY_THRESHOLD == 0.95
    assert CHECK_KINDS == ("update_l2", "l2")
    assert bound_caveat(SRC) is None and bound_caveat(FLAT) == NEARLY_CONSTANT


# ------------------------------------------------------------------------------------------------
# the bound ratio


@pytest.mark.parametrize(
    ("k", "kept", "decided_by", "text"),
    [
        (0.5, True, "bound check", "below 0.95: favours the refined schedule (how sure: clear)"),
        (0.93, True, "bound check", "below 0.95: favours the refined schedule (how sure: narrow)"),
        (
            0.97,
            False,
            "tie",
            "inside the tie band 0.95..1.053 (the bound's own uncertainty): a tie",
        ),
        (
            1.04,
            False,
            "tie",
            "inside the tie band 0.95..1.053 (the bound's own uncertainty): a tie",
        ),
        (1.07, False, "bound check", "above 1.053: favours linear decay (how sure: narrow)"),
        (2.0, False, "bound check", "above 1.053: favours linear decay (how sure: clear)"),
    ],
)
def test_the_ratio_of_scaled_norms_is_the_scale(
    k: float, kept: bool, decided_by: str, text: str
) -> None:
    v = verify_refinement(LINEAR, k * SRC, SRC)
    assert v.bound_ratio == pytest.approx(k, rel=1e-12)
    assert (v.kept, v.decided_by, v.caveat, v.kind) == (kept, decided_by, None, None)
    assert v.bound_keeps is kept
    assert v.metric_keeps is None and v.agree is None
    assert v.source_metric is None and v.refined_metric is None and v.higher_is_better is False
    assert v.threshold == 0.95 and isinstance(v.threshold, float)
    if kept:
        assert v.schedule is LINEAR
    else:
        assert v.schedule == LINEAR and v.schedule is not LINEAR  # linear decay, built anew
    assert v.outcome.keep_refined is kept and v.outcome.baseline == "linear decay"
    assert v.reasons()[0] == (
        f"bound check on the norms given, refined run / linear-decay run: ratio {k:.4f}, {text}"
    )
    assert v.reasons()[1] == "metric: none given"
    if decided_by == "tie":
        assert v.decision() == "fall back to linear decay"
        assert (
            v.reasons()[2]
            == v.explain()
            == (
                "a tie (the bound ratio is inside its tie band); a tie goes to linear decay, the "
                "simpler schedule"
            )
        )
    else:
        sure = "clear" if k in (0.5, 2.0) else "narrow"
        assert (
            v.reasons()[2]
            == v.explain()
            == (f"decided by the bound check (how sure: {sure}): ratio {k:.4f}")
        )


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(0.05, 50.0), min_size=8, max_size=40),
    st.floats(0.1, 10.0),
)
def test_the_ratio_is_the_scale_and_decides_by_the_band(norms: list[float], k: float) -> None:
    src = np.asarray(norms)
    n = src.size
    v = verify_refinement(LinearDecay(n), k * src, src)
    assert v.bound_ratio == pytest.approx(k, rel=1e-9)
    # the caveat is that of run 1 (norms scaled by k have the same shape), or the identity
    if np.array_equal(k * src, src):
        assert v.caveat == IDENTICAL
    else:
        why = bound_caveat(src)
        assert v.caveat == (None if why is None else f"run 1: {why}")
    informative = v.caveat is None
    assert v.kept == (informative and v.bound_ratio < 0.95)
    outside = v.bound_ratio < 0.95 or v.bound_ratio > 1 / 0.95
    assert v.decided_by == ("bound check" if informative and outside else "tie")
    assert v.bound_keeps == v.kept


def test_the_ratio_of_a_refined_schedule_is_best_scale_on_each_run() -> None:
    s = refine(SRC, tau=0.1)
    own = SRC * (1 + 0.01 * np.cos(np.arange(T)))
    v = verify_refinement(s, own, SRC)
    want = best_scale(s.preview(), own)[1] / linear_bound(SRC)
    assert v.bound_ratio == pytest.approx(want, rel=1e-12)
    assert v.kept and v.schedule is s and v.decision() == "keep the refined schedule"


def test_four_steps_are_enough() -> None:
    """MIN_STEPS = 4 steps pass; a 4-step record's largest term dominates, so run 1 is flagged."""
    refined = Tabulated.from_values([1.0, 1.0, 0.5, 0.25])
    own, src = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 3.0, 2.0, 1.0])
    v = verify_refinement(refined, [1, 2, 3, 4], [4, 3, 2, 1])  # integers are numbers too
    want = best_scale([1.0, 1.0, 0.5, 0.25], own)[1] / linear_bound(src)
    assert v.bound_ratio == pytest.approx(want, rel=1e-12)
    why = bound_caveat(src)
    assert why is not None and v.caveat == f"run 1: {why}"
    assert not v.kept and v.decided_by == "tie"


def test_zero_norms_are_allowed_and_a_zero_source_bound_gives_an_infinite_ratio() -> None:
    tail = np.r_[SRC[:-20], np.zeros(20)]  # a run whose last steps had no gradient
    v = verify_refinement(LINEAR, 0.5 * tail, tail)
    assert v.bound_ratio == pytest.approx(0.5, rel=1e-12) and v.kept
    # every norm of one run zero: the bound is uninformative (said so), and never a keep
    v = verify_refinement(LINEAR, SRC, np.zeros(T))
    assert v.bound_ratio == math.inf and not v.kept and v.decided_by == "tie"
    assert v.reasons()[0] == (
        "bound check on the norms given, refined run / linear-decay run: ratio inf, but "
        "uninformative: run 1: every norm is zero (no gradient), so the bound cannot rank schedules"
    )
    v = verify_refinement(LINEAR, np.zeros(T), SRC, source_metric=0.5, refined_metric=0.4)
    assert v.caveat == (
        "run 2: every norm is zero (no gradient), so the bound cannot rank schedules"
    )
    assert v.kept and v.decided_by == "metric"


def test_missing_norms_are_filled_before_the_bound() -> None:
    holes = 0.5 * SRC.copy()
    holes[[50, 51, 120]] = [np.nan, np.inf, np.nan]  # inside flat stretches: filled with 0.5
    v = verify_refinement(LINEAR, holes, SRC)
    assert v.bound_ratio == pytest.approx(0.5, rel=1e-12)


# ------------------------------------------------------------------------------------------------
# the source schedule


def test_a_source_schedule_object_is_put_on_the_horizon() -> None:
    v = verify_refinement(LINEAR, 0.5 * SRC, SRC, source_schedule=Cosine(total_steps=50))
    want = linear_bound(0.5 * SRC) / best_scale(Cosine(total_steps=T).preview(), SRC)[1]
    assert v.bound_ratio == pytest.approx(want, rel=1e-12)
    # the fallback is the source schedule on this horizon, and it is named as such
    v = verify_refinement(LINEAR, 2 * SRC, SRC, source_schedule=Cosine(total_steps=50))
    assert not v.kept and v.schedule == Cosine(total_steps=T)
    assert v.decision() == "fall back to the source schedule"
    # linear decay of another horizon is still linear decay
    v = verify_refinement(LINEAR, 2 * SRC, SRC, source_schedule=LinearDecay(total_steps=10))
    assert v.schedule == LINEAR and v.decision() == "fall back to linear decay"
    assert v.bound_ratio == pytest.approx(2.0, rel=1e-12)


def test_a_source_schedule_array_is_normalised_and_tagged() -> None:
    shape = 3 * (1 - np.arange(T) / T)  # linear decay, three times too large
    v = verify_refinement(LINEAR, 2 * SRC, SRC, source_schedule=shape)
    assert v.bound_ratio == pytest.approx(2.0, rel=1e-12)
    assert isinstance(v.schedule, Tabulated)
    np.testing.assert_allclose(v.schedule.preview(), 1 - np.arange(T) / T, rtol=1e-12)
    assert v.schedule.provenance == {"role": "source"}
    assert v.decision() == "fall back to the source schedule"
    assert v.explain() == "decided by the bound check (how sure: clear): ratio 2.0000"
    v = verify_refinement(LINEAR, SRC, SRC, source_schedule=list(range(T, 0, -1)))  # integers
    assert v.bound_ratio == pytest.approx(1.0, rel=1e-12)
    assert v.explain() == (
        "a tie (the bound is uninformative on these records); a tie goes to the source schedule"
    )


def test_a_bad_source_schedule_array_is_refused() -> None:
    for bad in (np.ones(T - 1), np.ones((T, 1)), np.ones((2, T // 2))):
        with pytest.raises(RefineError) as info:
            verify_refinement(LINEAR, SRC, SRC, source_schedule=bad)
        assert str(info.value) == (
            f"source_schedule must give one multiplier per step (200), got shape {bad.shape}"
        )
    # complex multipliers are refused, not cut to their real part
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for bad in (np.full(T, 1 + 1j), np.full(T, 1 + 1j).tolist(), ["a"] * T, [True] * T):
            with pytest.raises(RefineError) as info:
                verify_refinement(LINEAR, SRC, SRC, source_schedule=bad)
            assert str(info.value) == (
                "source_schedule must be a Schedule or one real multiplier per step, got "
                + type(bad).__name__
            )


def test_another_source_schedule_is_named_as_such_in_the_reasons() -> None:
    v = verify_refinement(
        LINEAR,
        2 * SRC,
        SRC,
        source_schedule=Cosine(total_steps=T),
        source_metric=0.3,
        refined_metric=0.4,
        metric_spread=0.01,
    )
    assert v.reasons()[0].startswith("bound check on the norms given, refined run / source run: ")
    assert v.reasons()[1] == (
        "metric: source run 0.3, refined run 0.4 (lower is better): the source run is better by "
        "0.1, 10x the seed spread (sd 0.01; how sure: clear)"
    )


# ------------------------------------------------------------------------------------------------
# the norms: plain arrays


def test_norms_that_are_not_numbers_are_refused() -> None:
    with pytest.raises(RefineError, match=r"^the refined run's norms: norms must be numbers \("):
        verify_refinement(LINEAR, ["a"] * T, SRC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a ComplexWarning and the real part
        with pytest.raises(
            RefineError, match=r"^the source run's norms: norms must be numbers \(.*complex"
        ):
            verify_refinement(LINEAR, SRC, [1 + 1j] * T)


@pytest.mark.parametrize(
    ("own", "src", "message"),
    [
        (SRC[:3], SRC, "the refined run's norms: needs a 1-D record of at least 4 steps"),
        (SRC, SRC[:3], "the source run's norms: needs a 1-D record of at least 4 steps"),
        (SRC.reshape(T, 1), SRC, "the refined run's norms: needs a 1-D record of at least 4 steps"),
        (
            SRC,
            SRC.reshape(2, T // 2),
            "the source run's norms: needs a 1-D record of at least 4 steps",
        ),
        (
            np.full(T, np.nan),
            SRC,
            "the refined run's norms: all 200 gradient norms are missing (NaN or inf)",
        ),
        (
            SRC,
            np.full(T, np.inf),
            "the source run's norms: all 200 gradient norms are missing (NaN or inf)",
        ),
        (-SRC, SRC, "the refined run's norms: norms must be non-negative"),
        (SRC, np.r_[SRC[:-1], -1e-300], "the source run's norms: norms must be non-negative"),
        (
            SRC[:100],
            SRC,
            "the refined run's norms: 100 steps, but the refined schedule runs 200: verify "
            "compares runs of the same horizon (refine with --steps / total_steps= to match)",
        ),
        (
            SRC,
            np.r_[SRC, SRC],
            "the source run's norms: 400 steps, but the refined schedule runs 200: verify "
            "compares runs of the same horizon (refine with --steps / total_steps= to match)",
        ),
    ],
)
def test_bad_norms_are_refused_with_where(own: np.ndarray, src: np.ndarray, message: str) -> None:
    with pytest.raises(RefineError, match=exactly(message)):
        verify_refinement(LINEAR, own, src)


# ------------------------------------------------------------------------------------------------
# the norms: records


def test_check_kind_prefers_update_l2_then_l2_or_takes_the_kind_asked_for() -> None:
    both = GradNormRecord.from_arrays({"l2": SRC, "update_l2": SRC, "l1": SRC})
    l2_only = GradNormRecord.from_arrays({"l1": SRC, "l2": SRC})
    assert check_kind(both, both) == "update_l2"
    assert check_kind(both, l2_only) == check_kind(l2_only, both) == "l2"
    assert check_kind(both, l2_only, "l1") == "l1"
    assert check_kind(both, both, "l2") == "l2"  # asked for, though update_l2 is shared


def test_check_kind_takes_the_one_column_two_records_share() -> None:
    a = GradNormRecord.from_arrays({"grad_norm": SRC})
    assert check_kind(a, GradNormRecord.from_arrays({"grad_norm": 2 * SRC})) == "grad_norm"
    v = verify_refinement(LINEAR, GradNormRecord.from_arrays({"grad_norm": 0.5 * SRC}), a)
    assert v.kind == "grad_norm" and v.bound_ratio == pytest.approx(0.5, rel=1e-12)
    assert v.reasons()[0].startswith(
        "bound check on l2 gradient norms (column 'grad_norm'), refined run / linear-decay run: "
        "ratio 0.5000, below 0.95"
    )
    # not when the column was asked for, nor when the records have several columns
    loss = GradNormRecord.from_arrays({"loss": SRC}, source="a.csv")
    with pytest.raises(
        RecordError, match=exactly("a.csv: no l1 column for the bound check; the record has loss")
    ):
        check_kind(loss, loss, "l1")
    two = GradNormRecord.from_arrays({"loss": SRC, "lr": SRC}, source="b.csv")
    with pytest.raises(
        RecordError,
        match=exactly(
            "b.csv: no update_l2 or l2 column for the bound check; the record has loss, lr"
        ),
    ):
        check_kind(two, two)
    one = GradNormRecord.from_arrays({"grad_norm": SRC}, source="c.csv")
    other = GradNormRecord.from_arrays({"gnorm": SRC}, source="d.csv")
    message = "c.csv: no update_l2 or l2 column for the bound check; the record has grad_norm"
    with pytest.raises(RecordError, match=exactly(message)):
        check_kind(one, other)


def test_check_kind_names_the_record_that_lacks_the_column() -> None:
    good = GradNormRecord.from_arrays({"l2": SRC}, source="good.csv")
    bad = GradNormRecord.from_arrays({"loss": SRC, "lr": SRC}, source="bad.csv")
    message = "bad.csv: no update_l2 or l2 column for the bound check; the record has loss, lr"
    for pair in ((good, bad), (bad, good)):
        with pytest.raises(RecordError, match=exactly(message)) as info:
            check_kind(*pair)
        assert info.value.path == "bad.csv"


def test_check_kind_when_each_has_a_column_but_they_share_none() -> None:
    a = GradNormRecord.from_arrays({"update_l2": SRC, "loss": SRC}, source="a.csv")
    b = GradNormRecord.from_arrays({"l2": SRC, "lr": SRC}, source="b.csv")
    with pytest.raises(RecordError) as info:
        check_kind(a, b)
    assert str(info.value) == (
        "the two records share no column for the bound check (update_l2 or l2): a.csv has "
        "update_l2, loss, b.csv has l2, lr"
    )
    assert info.value.path is None
    with pytest.raises(RecordError) as info:
        verify_refinement(LINEAR, b, a)
    assert str(info.value).startswith("the two records share no column")


def test_two_records_use_the_shared_column() -> None:
    a = GradNormRecord.from_arrays({"l2": SRC, "update_l2": SRC, "l1": 3 * SRC})
    b = GradNormRecord.from_arrays({"l2": 2 * SRC, "update_l2": 0.5 * SRC, "l1": 0.6 * SRC})
    v = verify_refinement(LINEAR, b, a)
    assert v.kind == "update_l2" and v.bound_ratio == pytest.approx(0.5, rel=1e-12) and v.kept
    assert v.reasons()[0] == (
        "bound check on l2 norms of the update direction (column 'update_l2'), refined run / "
        "linear-decay run: ratio 0.5000, below 0.95: favours the refined schedule (how sure: clear)"
    )
    v = verify_refinement(LINEAR, b, a, kind="l2")
    assert v.kind == "l2" and v.bound_ratio == pytest.approx(2.0, rel=1e-12) and not v.kept
    assert v.reasons()[0].startswith("bound check on l2 gradient norms (column 'l2'), ")
    v = verify_refinement(LINEAR, b, a, kind="l1")
    assert v.kind == "l1" and v.bound_ratio == pytest.approx(0.2, rel=1e-12)


@pytest.mark.parametrize("record_is", ["source", "refined"])
def test_one_record_and_one_plain_array(record_is: str) -> None:
    """The record's column: ``kind``, else update_l2, else l2; the array is the same norm."""
    scale = {"l2": 0.5, "l1": 3.0}  # the refined run's norms over the source run's, by column

    def pair(kind: str | None) -> tuple[NormsLike, NormsLike]:
        col = kind or "l2"
        if record_is == "source":
            rec = GradNormRecord.from_arrays({"l1": SRC, "l2": SRC}, source="run1.csv")
            return scale[col] * SRC, rec
        rec = GradNormRecord.from_arrays({"l1": 3 * SRC, "l2": 0.5 * SRC}, source="run2.csv")
        return rec, SRC

    for kind in (None, "l2", "l1"):
        own, src = pair(kind)
        v = verify_refinement(LINEAR, own, src, kind=kind)
        assert v.kind == (kind or "l2")
        assert v.bound_ratio == pytest.approx(scale[kind or "l2"], rel=1e-12)
        assert v.kept is (kind != "l1")
    own, src = pair(None)
    with pytest.raises(RecordError, match="no norm kind 'update_l2' in this record"):
        verify_refinement(LINEAR, own, src, kind="update_l2")


def test_a_record_and_an_array_prefer_the_update_direction_as_two_records_do() -> None:
    rec = GradNormRecord.from_arrays({"l2": SRC, "update_l2": 4 * SRC}, source="run1.csv")
    v = verify_refinement(LINEAR, SRC, rec)
    assert v.kind == "update_l2" and v.bound_ratio == pytest.approx(0.25, rel=1e-12)
    only = GradNormRecord.from_arrays({"update_l2": 4 * SRC}, source="run1.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the preferred column: no warning about its kind
        assert verify_refinement(LINEAR, SRC, only).kind == "update_l2"


def test_a_record_and_an_array_where_the_record_has_no_l2() -> None:
    rec = GradNormRecord.from_arrays({"loss": SRC, "lr": SRC}, source="m.csv")
    with pytest.raises(
        RecordError, match=exactly("m.csv: no norm kind 'l2' in this record; it has ['loss', 'lr']")
    ):
        verify_refinement(LINEAR, 0.5 * SRC, rec)
    v = verify_refinement(LINEAR, 0.5 * SRC, rec, kind="lr")
    assert v.kind == "lr" and v.bound_ratio == pytest.approx(0.5, rel=1e-12)
    assert v.reasons()[0].startswith(
        "bound check on norms of column 'lr' (which norm, its name does not say), refined run"
    )


def test_a_short_record_is_refused_under_its_own_name() -> None:
    short = GradNormRecord.from_arrays({"l2": SRC[:3]}, source="short.csv")
    with pytest.raises(
        RefineError, match=exactly("short.csv: needs a 1-D record of at least 4 steps")
    ):
        verify_refinement(LINEAR, SRC, short)
    bad = GradNormRecord.from_arrays({"l2": -SRC}, source="neg.csv")
    with pytest.raises(RefineError, match=exactly("neg.csv: norms must be non-negative")):
        verify_refinement(LINEAR, bad, SRC)


def test_a_sparse_record_is_interpolated_onto_every_step() -> None:
    steps = np.arange(0, T, 2)
    rec = GradNormRecord.from_arrays({"l2": 0.5 * SRC[steps]}, steps=np.r_[steps[:-1], T - 1])
    dense = rec.norms("l2")
    v = verify_refinement(LINEAR, rec, SRC)
    want = linear_bound(dense) / linear_bound(SRC)
    assert v.bound_ratio == pytest.approx(want, rel=1e-12)


# ------------------------------------------------------------------------------------------------
# caveats


def test_the_same_record_twice() -> None:
    v = verify_refinement(LINEAR, SRC.copy(), SRC)
    assert v.caveat == IDENTICAL and v.bound_ratio == pytest.approx(1.0, rel=1e-15)
    assert v.reasons()[0] == (
        "bound check on the norms given, refined run / linear-decay run: ratio 1.0000, but "
        f"uninformative: {IDENTICAL}"
    )
    # identical after filling: the same record twice, one copy with a gap
    holes = SRC.copy()
    holes[100] = np.nan
    assert verify_refinement(LINEAR, holes, SRC).caveat == IDENTICAL


def test_an_adam_type_run_needs_update_norms() -> None:
    v = verify_refinement(LINEAR, 0.5 * SRC, SRC, adam_type=True)
    assert v.caveat == ADAM and not v.kept and v.decided_by == "tie" and not v.bound_keeps
    assert v.bound_ratio == pytest.approx(0.5, rel=1e-12)  # the ratio is still reported
    assert v.explain() == (
        "a tie (the bound is uninformative on these records); a tie goes to linear decay, the "
        "simpler schedule"
    )
    for col in ("l2", "l1", "grad_norm"):
        a = GradNormRecord.from_arrays({col: SRC})
        b = GradNormRecord.from_arrays({col: 0.5 * SRC})
        assert verify_refinement(LINEAR, b, a, adam_type=True).caveat == ADAM
        assert verify_refinement(LINEAR, b, a, adam_type=False).caveat is None
    for col in ("update_l2", "update_l1", "opt/update_l2"):
        a = GradNormRecord.from_arrays({col: SRC})
        b = GradNormRecord.from_arrays({col: 0.5 * SRC})
        v = verify_refinement(LINEAR, b, a, adam_type=True, kind=col)
        assert v.caveat is None and v.kept and v.decided_by == "bound check"


def test_an_uninformative_run_is_named() -> None:
    v = verify_refinement(LINEAR, 0.5 * SRC, FLAT)
    assert v.caveat == f"run 1: {NEARLY_CONSTANT}" and not v.kept
    v = verify_refinement(LINEAR, FLAT, SRC)
    assert v.caveat == f"run 2: {NEARLY_CONSTANT}" and not v.kept
    spike = np.r_[500.0, np.ones(T - 1)]
    both = verify_refinement(LINEAR, spike, FLAT)  # run 1 comes first
    assert both.caveat == f"run 1: {NEARLY_CONSTANT}"
    why = bound_caveat(spike)
    assert why is not None and why.startswith("a few huge norms dominate the bound")
    assert verify_refinement(LINEAR, spike, SRC).caveat == f"run 2: {why}"
    assert verify_refinement(LINEAR, SRC, spike).caveat == f"run 1: {why}"


def test_the_caveats_come_in_order() -> None:
    """The same record twice first, then an Adam-type run's gradient norms, then each run."""
    assert verify_refinement(LINEAR, FLAT, FLAT, adam_type=True).caveat == IDENTICAL
    assert verify_refinement(LINEAR, FLAT, 0.9 * FLAT, adam_type=True).caveat == ADAM


# ------------------------------------------------------------------------------------------------
# metrics


def test_a_tie_between_metrics_leaves_it_to_the_bound_check() -> None:
    v = verify_refinement(LINEAR, 0.5 * SRC, SRC, source_metric=0.3, refined_metric=0.3)
    assert v.kept and v.decided_by == "bound check" and v.metric_keeps is False
    assert v.agree is False  # the metric (equal: not better) and the bound disagree
    assert v.reasons()[1:] == [
        "metric: linear-decay run 0.3, refined run 0.3 (lower is better): they differ by 0: a tie",
        "decided by the bound check (how sure: clear): ratio 0.5000",
    ]
    v = verify_refinement(
        LINEAR, 2 * SRC, SRC, source_metric=0.9, refined_metric=0.9, higher_is_better=True
    )
    assert not v.kept and v.decided_by == "bound check" and v.metric_keeps is False
    assert v.agree is True
    # a tie of both: linear decay
    v = verify_refinement(LINEAR, SRC, SRC, source_metric=1, refined_metric=1)
    assert not v.kept and v.decided_by == "tie"
    assert v.explain() == (
        "a tie (the metrics differ by no more than their seed spread; the bound is uninformative "
        "on these records); a tie goes to linear decay, the simpler schedule"
    )


def test_the_metric_decides_over_the_bound() -> None:
    v = verify_refinement(LINEAR, 2 * SRC, SRC, source_metric=0.5, refined_metric=0.25)
    assert v.kept and v.decided_by == "metric" and v.schedule is LINEAR
    assert v.metric_keeps is True and v.bound_keeps is False and v.agree is False
    assert (v.source_metric, v.refined_metric) == (0.5, 0.25)
    assert v.reasons() == [
        "bound check on the norms given, refined run / linear-decay run: ratio 2.0000, above "
        "1.053: favours linear decay (how sure: clear)",
        "metric: linear-decay run 0.5, refined run 0.25 (lower is better): the refined run is "
        "better by 0.25, how sure: unknown (one value per run and no seed spread given)",
        "decided by the metric (how sure: unknown): difference 0.25",
    ]
    # higher is better: the same numbers say the opposite
    v = verify_refinement(
        LINEAR, 0.5 * SRC, SRC, source_metric=0.5, refined_metric=0.25, higher_is_better=True
    )
    assert not v.kept and v.decided_by == "metric" and v.higher_is_better is True
    assert v.metric_keeps is False and v.bound_keeps is True and v.agree is False
    assert v.decision() == "fall back to linear decay" and v.schedule == LINEAR


def test_integer_metrics_are_numbers() -> None:
    v = verify_refinement(LINEAR, SRC, SRC, source_metric=3, refined_metric=2, metric_spread=0)
    assert v.kept and (v.source_metric, v.refined_metric) == (3.0, 2.0)
    assert isinstance(v.source_metric, float) and isinstance(v.refined_metric, float)


def test_a_zero_spread_is_allowed_and_is_no_spread() -> None:
    v = verify_refinement(
        LINEAR, 2 * SRC, SRC, source_metric=0.4, refined_metric=0.39, metric_spread=0.0
    )
    assert v.kept and v.decided_by == "metric" and v.outcome.sure == "unknown"
    assert v.reasons()[1] == (
        "metric: linear-decay run 0.4, refined run 0.39 (lower is better): the refined run is "
        "better by 0.01, how sure: unknown (one value per run and no seed spread given)"
    )
    # with a spread of 0 equal metrics are a tie, as without one
    v = verify_refinement(
        LINEAR, 2 * SRC, SRC, source_metric=0.4, refined_metric=0.4, metric_spread=0.0
    )
    assert v.decided_by == "bound check" and not v.kept
    assert v.reasons()[1] == (
        "metric: linear-decay run 0.4, refined run 0.4 (lower is better): they differ by 0, "
        "within the seed spread (sd 0): a tie"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"source_metric": True, "refined_metric": 0.5},
            "source_metric must be a finite number, got True",
        ),
        (
            {"source_metric": 0.5, "refined_metric": False},
            "refined_metric must be a finite number, got False",
        ),
        (
            {"source_metric": 0.5, "refined_metric": 0.4, "metric_spread": True},
            "metric_spread must be a finite number, got True",
        ),
        (
            {"source_metric": "0.5", "refined_metric": 0.4},
            "source_metric must be a finite number, got '0.5'",
        ),
        (
            {"source_metric": 0.5, "refined_metric": math.inf},
            "refined_metric must be a finite number, got inf",
        ),
        (
            {"source_metric": 0.5, "refined_metric": 0.4, "metric_spread": math.nan},
            "metric_spread must be a finite number, got nan",
        ),
        ({"metric_spread": "0.1"}, "metric_spread must be a finite number, got '0.1'"),
        ({"source_metric": 0.5}, "give both metrics (source_metric and refined_metric) or neither"),
        (
            {"refined_metric": 0.5},
            "give both metrics (source_metric and refined_metric) or neither",
        ),
        (
            {"source_metric": 0.5, "refined_metric": 0.4, "metric_spread": -0.01},
            "metric_spread must be >= 0, got -0.01",
        ),
    ],
)
def test_bad_metrics_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RefineError, match=exactly(message)):
        verify_refinement(LINEAR, 0.5 * SRC, SRC, **kwargs)


def test_a_spread_without_metrics_changes_nothing() -> None:
    v = verify_refinement(LINEAR, 0.5 * SRC, SRC, metric_spread=0.1)
    assert v.kept and v.decided_by == "bound check" and v.reasons()[1] == "metric: none given"
    assert v.metric_keeps is None and v.agree is None


@settings(max_examples=30, deadline=None)
@given(
    st.floats(-10, 10),
    st.floats(-10, 10),
    st.one_of(st.none(), st.floats(0, 5)),
    st.sampled_from([0.5, 0.97, 2.0]),
)
def test_higher_is_better_is_lower_is_better_negated(
    m1: float, m2: float, spread: float | None, k: float
) -> None:
    low = verify_refinement(
        LINEAR, k * SRC, SRC, source_metric=m1, refined_metric=m2, metric_spread=spread
    )
    high = verify_refinement(
        LINEAR,
        k * SRC,
        SRC,
        source_metric=-m1,
        refined_metric=-m2,
        metric_spread=spread,
        higher_is_better=True,
    )
    assert (low.kept, low.decided_by) == (high.kept, high.decided_by)
    assert low.metric_keeps == high.metric_keeps == (m2 < m1)
    separated = m1 != m2 and (spread is None or abs(m2 - m1) > spread)
    if separated:
        assert low.decided_by == "metric" and low.kept == (m2 < m1)
    else:
        assert low.decided_by == ("bound check" if k != 0.97 else "tie")
        assert low.kept == (k < 0.95)


# ------------------------------------------------------------------------------------------------
# the threshold


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.0000001, 2, math.inf, math.nan, "0.9", None, True])
def test_the_threshold_must_be_in_zero_one(bad: Any) -> None:
    with pytest.raises(
        RefineError, match=exactly(f"the verify threshold must be in (0, 1], got {bad!r}")
    ):
        verify_refinement(LINEAR, 0.5 * SRC, SRC, threshold=bad)


def test_the_threshold_sets_the_tie_band() -> None:
    # threshold 1: no tie band; any ratio below 1 keeps
    v = verify_refinement(LINEAR, 0.99 * SRC, SRC, threshold=1)
    assert v.kept and v.decided_by == "bound check" and v.threshold == 1.0
    assert isinstance(v.threshold, float)
    assert v.reasons()[0].endswith(
        "ratio 0.9900, below 1: favours the refined schedule (how sure: clear)"
    )
    v = verify_refinement(LINEAR, 1.01 * SRC, SRC, threshold=1)
    assert not v.kept and v.decided_by == "bound check"
    # threshold 0.5: the band 0.5..2
    v = verify_refinement(LINEAR, 0.55 * SRC, SRC, threshold=0.5)
    assert not v.kept and v.decided_by == "tie" and v.threshold == 0.5
    assert v.reasons()[0].endswith(
        "ratio 0.5500, inside the tie band 0.5..2 (the bound's own uncertainty): a tie"
    )
    v = verify_refinement(LINEAR, 0.45 * SRC, SRC, threshold=0.5)
    assert v.kept and v.outcome.sure == "narrow"  # clear only below 0.5 ** 2
    v = verify_refinement(LINEAR, 0.2 * SRC, SRC, threshold=0.5)
    assert v.kept and v.outcome.sure == "clear"
    v = verify_refinement(LINEAR, 2.2 * SRC, SRC, threshold=0.5)
    assert not v.kept and v.decided_by == "bound check" and v.outcome.sure == "narrow"
