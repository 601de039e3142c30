"""refinedlr.plan's contracts, edge by edge: records and their kinds, the carrying of norms, the
exact messages of every refusal, the blocks, the 1-D search, the curve's steps and the fit.
(The behaviour against independent references is in test_plan.py.)"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

from _match import exactly
from refinedlr import limits
from refinedlr.bounds import best_scale, last_iterate_bound
from refinedlr.plan import (
    PlanError,
    PlanWarning,
    _edges,
    _minimize_1d,
    carry_norms,
    extend,
    extension_options,
    predict,
    transfer_lr,
)
from refinedlr.records import GradNormRecord
from refinedlr.schedule_io import save_schedule
from refinedlr.schedules import Cosine, LinearDecay, Tabulated, WarmupStableDecay

# ------------------------------------------------------------------------------------------------
# norms: records, kinds, carrying


def test_a_record_gives_the_kind_asked_for():
    l2, l1 = np.linspace(3.0, 1.0, 50), np.linspace(1.0, 4.0, 50)
    rec = GradNormRecord.from_arrays({"l2": l2, "l1": l1})
    src, tgt = LinearDecay(50), WarmupStableDecay(50, decay=0.3)
    want = transfer_lr(0.1, src, tgt, norms=l1)
    assert transfer_lr(0.1, src, tgt, norms=rec, kind="l1") == want
    assert transfer_lr(0.1, src, tgt, norms=rec, kind="l2") != want
    p = predict(0.1, src, [tgt], norms=rec, kind="l1")
    assert p.candidates[0].lr == pytest.approx(want, rel=1e-12)
    ext = extension_options(src, at_step=40, total_steps=80, norms=rec, kind="l1")
    assert ext == extension_options(src, at_step=40, total_steps=80, norms=l1)
    assert extend(src, at_step=40, total_steps=80, norms=rec, kind="l1") == ext[0].schedule


def test_one_step_and_integer_norms():
    assert transfer_lr(0.1, LinearDecay(1), Cosine(1), norms=[2.0]) == pytest.approx(0.1)
    for carry in ("fraction", "step"):
        for T in (3, 2, 5):
            assert carry_norms([4, 2, 1], T, carry=carry).dtype == np.float64
    assert carry_norms([4, 2, 1], 1).tolist() == [4.0]
    assert carry_norms([3.0], 4).tolist() == [3.0] * 4
    assert carry_norms([5.0, 1.0], 3).tolist() == [5.0, 3.0, 1.0]
    assert carry_norms([5.0, 1.0], 3, carry="step").tolist() == [5.0, 1.0, 1.0]


def test_step_carry_of_a_shorter_record():
    g = np.linspace(4.0, 1.0, 30)  # the first 30 of 50 steps
    lr = transfer_lr(0.1, LinearDecay(50), Cosine(100), norms=g, carry="step")
    want = 0.1 * (
        best_scale(Cosine(100), carry_norms(g, 100, "step"))[0]
        / best_scale(LinearDecay(50), carry_norms(g, 50, "step"))[0]
    )
    assert lr == pytest.approx(want, rel=1e-12)


def test_predict_carries_recorded_norms_to_other_horizons():
    g = np.linspace(3.0, 1.0, 40)
    p = predict(0.1, LinearDecay(40), {"2x": LinearDecay(80)}, norms=g)
    assert p.candidates[0].lr == pytest.approx(
        transfer_lr(0.1, LinearDecay(40), LinearDecay(80), norms=g), rel=1e-12
    )


# ------------------------------------------------------------------------------------------------
# refusals, word for word


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: transfer_lr(0.1, LinearDecay(3), Cosine(3), norms=[1, -1, 1]),
         "norms must be non-negative"),
        (lambda: transfer_lr(0.1, LinearDecay(3), Cosine(3), norms=[0, 0, 0]),
         "the norms are zero on every step: the bound cannot rank LRs on them"),
        (lambda: transfer_lr(0.1, Tabulated.from_values([1.0, 0.0, 0.0]), Cosine(3), norms=[0, 5, 5]),
         "the norms are zero wherever the schedule trains: the bound has no best LR"),
        (lambda: predict(0.0, LinearDecay(3), [Cosine(3)]), "lr must be a positive finite number, got 0.0"),
        (lambda: predict(0.1, Tabulated.from_values(np.zeros(4)), [Cosine(3)]),
         "source: the schedule is zero on every step; it trains nothing"),
        (lambda: predict(0.1, LinearDecay(4), {"z": Tabulated.from_values(np.zeros(4))}),
         "candidate 'z': the schedule is zero on every step; it trains nothing"),
        (lambda: extension_options(Tabulated.from_values(np.zeros(4)), at_step=2, total_steps=8),
         "schedule: the schedule is zero on every step; it trains nothing"),
        (lambda: extend(Tabulated.from_values([1.0, 0.5, 0.0, 0.0]), at_step=3, total_steps=8),
         "the schedule's LR is zero at the checkpoint (step 2): nothing to continue from"),
        (lambda: extension_options(LinearDecay(10), at_step=5, total_steps=20, families=()),
         "families are 'rescale' and 'cooldown', shapes ('linear', '1-sqrt'); got [], "
         "['linear', '1-sqrt']"),
        (lambda: predict(0.1, LinearDecay(10), [Cosine(10)], losses=np.full(10, np.nan)),
         "too few finite losses after fit_from to fit loss ~ C + M * bound"),
    ],
)  # fmt: skip
def test_refusals_word_for_word(call, message):
    with pytest.raises(PlanError, match=exactly(message)):
        call()


def test_more_refusals():
    with pytest.raises(PlanError, match=r"^losses must be numbers: "):
        predict(0.1, LinearDecay(3), [Cosine(3)], losses=["a", "b", "c"])
    with pytest.raises(PlanError, match=r"^points must be an integer >= 2, got 2\.5$"):
        predict(0.1, LinearDecay(10), [Cosine(10)], points=2.5)  # type: ignore[arg-type]


def test_the_step_limit_is_inclusive(monkeypatch):
    monkeypatch.setattr(limits, "MAX_STEPS", 300)
    assert extend(LinearDecay(100), at_step=50, total_steps=300).total_steps == 300
    with pytest.raises(PlanError, match="total_steps=301 is more than"):
        extend(LinearDecay(100), at_step=50, total_steps=301)


# ------------------------------------------------------------------------------------------------
# extend's edges


def test_extend_from_the_first_step_and_with_a_record_of_exactly_the_steps_run():
    assert extend(LinearDecay(10), at_step=1, total_steps=20).at_step == 1
    s = extend(LinearDecay(10), at_step=6, total_steps=20, norms=np.ones(6))
    assert s.at_step == 6


def test_the_cooldown_family_keeps_the_multiplier_in_use():
    base = LinearDecay(100)  # the multiplier differs from step to step
    [o] = extension_options(
        base, at_step=70, total_steps=200, families=("cooldown",), shapes=("linear",)
    )
    assert o.schedule.level == base.preview()[69]
    assert o.schedule.cooldown_shape == "linear"
    assert extend(base, at_step=70, total_steps=200, shapes=("1-sqrt",)).cooldown_shape == "1-sqrt"


def test_options_are_distinct_and_a_rescale_to_the_level_in_use_is_a_cooldown():
    wsd = WarmupStableDecay(1000, decay=0.2, decay_shape="1-sqrt")
    opts = extension_options(wsd, at_step=800, total_steps=2000)
    assert len({o.schedule.fingerprint() for o in opts}) == len(opts) == 4
    assert [o.family for o in opts if o.schedule.level == 1.0] == ["cooldown", "cooldown"]
    # norms that fall after step 600: both rescales keep the level in use, so they are cooldowns
    g = np.where(np.arange(1000) < 600, 1.0, 0.5)
    opts = extension_options(wsd, at_step=800, total_steps=2000, norms=g)
    assert [(o.family, o.schedule.level, o.schedule.cooldown_shape) for o in opts] == [
        ("cooldown", 1.0, "linear"),
        ("cooldown", 1.0, "1-sqrt"),
    ]
    for o in opts:
        assert dict(o.schedule.provenance) == {
            "planned_by": "refinedlr.plan.extend",
            "family": o.family,
        }


def test_a_checkpoint_off_the_block_grid_is_a_block_edge():
    assert 3333 in _edges(10_000, cut=3333).tolist()
    e = _edges(10**6)
    assert e[0] == 0 and e[-1] == 10**6 and (np.diff(e) > 0).all() and 3000 < len(e) < 6000
    assert (np.diff(e)[-1024:] == 1).all()  # single steps before the end
    base = WarmupStableDecay(20_000, decay=0.2)
    [o] = extension_options(
        base, at_step=12_345, total_steps=30_001, families=("cooldown",), shapes=("linear",)
    )
    D = 1.0 / best_scale(base, np.ones(20_000))[0]
    fresh = best_scale(base.with_horizon(30_001), np.ones(30_001), D)[1]
    exact = last_iterate_bound(o.schedule.preview(), np.ones(30_001), D) / fresh
    assert o.bound_ratio == pytest.approx(exact, rel=2e-3)


@pytest.mark.parametrize("minimum", [0.3, 0.05, 0.01, 1.0])
def test_the_1d_search_finds_the_minimum(minimum):
    x = _minimize_1d(lambda x: (x - minimum) ** 2, 0.0, 1.0)
    assert x == pytest.approx(minimum, abs=2e-4)


# ------------------------------------------------------------------------------------------------
# predict: names, steps, a schedule that starts at zero, the fit


def test_candidate_names(tmp_path):
    path = tmp_path / "c.json"
    save_schedule(Cosine(100), path)
    p = predict(
        0.1, LinearDecay(100), [Cosine(100), str(path), {"name": "linear", "total_steps": 100}]
    )
    assert sorted(c.name for c in p.candidates) == sorted(
        ["cosine (100 steps)", str(path), "candidate 3"]
    )
    assert p.source.name == "source"


def test_the_curve_is_evaluated_at_evenly_spread_steps():
    p = predict(1.0, LinearDecay(1000), [Cosine(1000)])
    assert p.source.steps.tolist() == np.round(np.linspace(0, 1000, 65)[1:]).astype(int).tolist()
    two = predict(1.0, LinearDecay(1000), [Cosine(1000)], points=2)
    assert two.source.steps.tolist() == [500, 1000]


def test_a_schedule_that_starts_at_zero_or_pauses():
    s = Tabulated.from_values([0.0, 0.0, 0.2, 1.0, 0.0, 1.0, 0.5, 0.1])
    p = predict(0.5, s, [Cosine(8)], points=8)
    assert p.source.steps.tolist() == [3, 4, 5, 6, 7, 8]  # no bound before the first LR
    lrs = 0.5 * s.preview()
    for t, v in zip(p.source.steps, p.source.bound, strict=True):
        assert v == pytest.approx(last_iterate_bound(lrs[:t], np.ones(t), p.D), rel=1e-9)


def test_same_lr_keeps_the_source_lr():
    p = predict(0.3, LinearDecay(50), [Cosine(50), LinearDecay(100)], same_lr=True)
    assert [c.lr for c in p.candidates] == [0.3, 0.3]


def test_the_fit_needs_two_points_and_may_start_at_zero():
    T = 50
    losses = np.linspace(2.0, 1.0, T)
    p = predict(0.1, LinearDecay(T), [Cosine(T)], losses=losses, points=2, fit_from=0.0)
    assert p.fit is not None and p.fit[1] > 0


def test_the_fit_warning_points_at_the_caller():
    with pytest.warns(PlanWarning) as caught:
        predict(0.1, LinearDecay(100), [Cosine(100)], losses=np.linspace(1.0, 2.0, 100))
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampoline adds frames in between
        assert caught[0].filename == __file__
    assert str(caught[0].message).endswith("the candidates are ranked by the bound alone")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict(0.1, LinearDecay(100), [Cosine(100)], losses=np.linspace(2.0, 1.0, 100))
    assert math.isfinite(predict(0.1, LinearDecay(100), [Cosine(100)]).source.final)
