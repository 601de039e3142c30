"""refinedlr.plan: LR transfer, extension and prediction, against independent references.

The references: a plain-Python transcription of the direct bound from method.md (one loop per
term, O(T²)), minimised over the peak LR by scipy's bounded scalar minimiser; method.md's
constant-norm LR ratios; brute-force searches over every continuation of a small run.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from refinedlr import plan
from refinedlr.bounds import best_scale, last_iterate_bound
from refinedlr.plan import PlanError, PlanWarning, carry_norms, extend, predict, transfer_lr
from refinedlr.registry import get_schedule, schedule_from_spec
from refinedlr.schedule_io import load_schedule, save_schedule
from refinedlr.schedules import (
    Constant,
    Continuation,
    Cosine,
    LinearDecay,
    Tabulated,
    WarmupStableDecay,
)


def bound_by_the_book(lrs: list[float], norms: list[float], D: float) -> float:
    """method.md's direct bound, 1-indexed as written there, with plain loops."""
    T = len(lrs)
    eta = [0.0, *lrs]  # eta[1..T]
    g = [0.0, *norms]

    def s(a: int, b: int) -> float:  # eta_{a:b}
        return sum(eta[a : b + 1])

    def q(k: int) -> float:  # sum_{t >= k} eta_t^2 g_t^2
        return sum(eta[t] ** 2 * g[t] ** 2 for t in range(k, T + 1))

    total = s(1, T)
    value = D**2 / (2 * total) + q(1) / (2 * total)
    for k in range(1, T):
        value += 0.5 * (eta[k] / s(k + 1, T)) * (1 / s(k, T)) * q(k)
    return value


def best_lr_by_the_book(shape: np.ndarray, norms: np.ndarray) -> float:
    """The peak LR minimising the book bound (D = 1), found numerically on log-scale."""
    s, g = shape.tolist(), norms.tolist()

    def f(log_c: float) -> float:
        c = math.exp(log_c)
        return bound_by_the_book([c * v for v in s], g, 1.0)

    res = optimize.minimize_scalar(
        f, bounds=(-12.0, 6.0), method="bounded", options={"xatol": 1e-9}
    )
    return math.exp(float(res.x))


# ------------------------------------------------------------------------------------------------
# transfer_lr


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (LinearDecay(40), Cosine(40)),
        (LinearDecay(40), WarmupStableDecay(60, decay=0.25, decay_shape="1-sqrt")),
        (Cosine(50, warmup=5), LinearDecay(30)),
        (LinearDecay(24), Constant(48)),
    ],
)
def test_transfer_matches_the_book_optimum(source, target):
    norms = None
    want = best_lr_by_the_book(target.preview(), np.ones(target.total_steps)) / best_lr_by_the_book(
        source.preview(), np.ones(source.total_steps)
    )
    assert transfer_lr(1.0, source, target, norms=norms) == pytest.approx(want, rel=1e-5)


def test_transfer_with_recorded_norms_matches_the_book():
    rng = np.random.default_rng(3)
    g = np.exp(rng.normal(size=30)) + np.linspace(3.0, 0.5, 30)
    src, tgt = LinearDecay(30), WarmupStableDecay(30, decay=0.3, decay_shape="linear")
    want = best_lr_by_the_book(tgt.preview(), g) / best_lr_by_the_book(src.preview(), g)
    assert transfer_lr(2e-3, src, tgt, norms=g) == pytest.approx(2e-3 * want, rel=1e-5)


def test_transfer_is_the_closed_form_of_best_scale():
    src, tgt = LinearDecay(500), Cosine(900, floor=0.1)
    ones_s, ones_t = np.ones(500), np.ones(900)
    want = 0.3 * best_scale(tgt, ones_t)[0] / best_scale(src, ones_s)[0]
    assert transfer_lr(0.3, src, tgt) == want  # the same arithmetic, by construction


def test_horizon_transfer_is_one_over_sqrt_t_for_linear_decay():
    for ratio in (0.25, 0.5, 2.0, 4.0):
        lr = transfer_lr(1.0, LinearDecay(8000), LinearDecay(int(8000 * ratio)))
        assert lr == pytest.approx(1 / math.sqrt(ratio), rel=2e-3)


@pytest.mark.parametrize(
    ("name", "kwargs", "want"),
    # method.md, section 4: constant-norm ratios c*(shape) / c*(linear); these four barely move
    # with the horizon
    [
        ("cosine", {}, 0.973),
        ("step", {"milestones": (0.5, 0.75), "factor": 0.1}, 0.763),
        ("wsd", {"decay": 0.2, "decay_shape": "1-sqrt"}, 0.542),
        ("wsd", {"decay": 0.2, "decay_shape": "linear"}, 0.513),
    ],
)
def test_method_md_constant_norm_ratios(name, kwargs, want):
    for T in (800, 3000):
        got = transfer_lr(1.0, get_schedule("linear", T), get_schedule(name, T, **kwargs))
        assert got == pytest.approx(want, abs=3e-3)


def test_method_md_ratios_that_depend_on_the_horizon():
    # cosine to 10% (0.865) and constant (0.350) at the suite's short horizons (~800 steps)
    lin = get_schedule("linear", 800)
    assert transfer_lr(1.0, lin, get_schedule("cosine", 800, floor=0.1)) == pytest.approx(
        0.865, abs=0.01
    )
    assert transfer_lr(1.0, lin, get_schedule("constant", 800)) == pytest.approx(0.350, abs=0.01)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(8, 300),
    st.integers(8, 300),
    st.integers(8, 300),
    st.floats(1e-6, 1e3),
    st.floats(1e-3, 1e3),
)
def test_transfer_composes_and_ignores_the_norm_scale(ta, tb, tc, lr, scale):
    a, b, c = LinearDecay(ta), Cosine(tb, warmup=0.1), WarmupStableDecay(tc, decay=0.5)
    ab, bc, ac = transfer_lr(lr, a, b), transfer_lr(1.0, b, c), transfer_lr(lr, a, c)
    assert ab * bc == pytest.approx(ac, rel=1e-9)
    assert transfer_lr(lr, a, a) == pytest.approx(lr, rel=1e-12)
    g = np.linspace(1.0, 2.0, ta)
    assert transfer_lr(lr, a, b, norms=g * scale) == pytest.approx(
        transfer_lr(lr, a, b, norms=g), rel=1e-9
    )


def test_recorded_norms_move_the_lr_where_the_shapes_differ():
    # large early norms: a schedule with less early LR may run at a higher peak
    g = np.concatenate([np.full(100, 10.0), np.ones(900)])
    lin, wsd = LinearDecay(1000), WarmupStableDecay(1000, warmup=0.1, decay=0.2)
    assert transfer_lr(1.0, lin, wsd, norms=g) > transfer_lr(1.0, lin, wsd)


def test_carry_norms():
    g = np.array([4.0, 2.0, 1.0])
    assert carry_norms(g, 3).tolist() == g.tolist()
    assert carry_norms(g, 2).tolist() == [4.0, 1.0]  # fraction: both ends kept
    assert carry_norms(g, 2, carry="step").tolist() == [4.0, 2.0]
    long = np.arange(1.0, 21.0)
    assert carry_norms(long, 23, carry="step")[20:].tolist() == [19.5, 19.5, 19.5]  # last tenth
    with pytest.raises(PlanError, match="carry"):
        carry_norms(g, 5, carry="nearest")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: transfer_lr(0.0, LinearDecay(10), Cosine(10)), "lr must be a positive"),
        (lambda: transfer_lr(float("nan"), LinearDecay(10), Cosine(10)), "lr must be a positive"),
        (lambda: transfer_lr(True, LinearDecay(10), Cosine(10)), "lr must be a positive"),
        (
            lambda: transfer_lr(0.1, LinearDecay(10), Tabulated.from_values(np.zeros(5))),
            "target: the schedule is zero on every step",
        ),
        (lambda: transfer_lr(0.1, "linear", Cosine(10)), "source: .*total_steps"),
        (lambda: transfer_lr(0.1, LinearDecay(10), Cosine(10), norms=np.ones(9)), "hold 9 steps"),
        (lambda: transfer_lr(0.1, LinearDecay(10), Cosine(9), norms=[1] * 10, carry="x"), "carry"),
        (lambda: transfer_lr(0.1, LinearDecay(3), Cosine(3), norms=[1, -1, 1]), "non-negative"),
        (lambda: transfer_lr(0.1, LinearDecay(3), Cosine(3), norms=[0, 0, 0]), "zero on every"),
        (lambda: transfer_lr(0.1, LinearDecay(3), Cosine(3), norms=[[1.0]]), "1-D"),
        (lambda: transfer_lr(0.1, LinearDecay(3), Cosine(3), norms=["a", "b", "c"]), "numbers"),
    ],
)
def test_transfer_refuses_bad_input(call, match):
    with pytest.raises(PlanError, match=match):
        call()


def test_missing_norms_are_interpolated():
    g = np.array([2.0, np.nan, 1.0, 1.0])
    filled = np.array([2.0, 1.5, 1.0, 1.0])
    src, tgt = LinearDecay(4), Cosine(4)
    assert transfer_lr(1.0, src, tgt, norms=g) == transfer_lr(1.0, src, tgt, norms=filled)


# ------------------------------------------------------------------------------------------------
# Continuation and extend


def test_continuation_values_spec_and_files(tmp_path):
    base = WarmupStableDecay(100, warmup=10, decay=0.2, decay_shape="1-sqrt")
    c = Continuation(200, base=base, at_step=80, level=0.6, cooldown=50, cooldown_shape="1-sqrt")
    s = c.preview()
    assert (s[:80] == base.preview()[:80]).all()
    assert (s[80:150] == 0.6).all()
    p = np.arange(50) / 50
    np.testing.assert_allclose(s[150:], 0.6 * (1 - np.sqrt(p)), rtol=0, atol=1e-15)
    assert schedule_from_spec(json.loads(json.dumps(c.to_spec()))) == c
    for suffix in (".json", ".npy"):
        save_schedule(c, tmp_path / f"c{suffix}")
        assert np.array_equal(load_schedule(tmp_path / f"c{suffix}").preview(), s)
    assert load_schedule(tmp_path / "c.json") == c
    other = Continuation(200, base=base, at_step=80, level=0.61, cooldown=50)
    assert other.fingerprint() != c.fingerprint()
    again = Continuation(
        200,
        base=base,
        at_step=80,
        level=0.6,
        cooldown=50,
        cooldown_shape="1-sqrt",
        provenance={"note": "x"},
    )
    assert again.fingerprint() == c.fingerprint()  # provenance is not part of the shape
    chain = Continuation(400, base=c, at_step=190, level=0.3, cooldown=400)
    assert (chain.preview()[:190] == s[:190]).all()
    assert schedule_from_spec(chain.to_spec()) == chain


def _continuation_bound(base, k, T1, level, L, shape, norms, D):
    c = Continuation(T1, base=base, at_step=k, level=level, cooldown=L, cooldown_shape=shape)
    return last_iterate_bound(c.preview(), norms, D)


def test_extend_keeps_the_steps_already_run_and_finds_the_best_cooldown():
    base = WarmupStableDecay(100, decay=0.2, decay_shape="1-sqrt")
    k, T1 = 80, 200
    g = np.ones(T1)
    D = 1.0 / best_scale(base, g[:100])[0]
    options = plan.extension_options(base, at_step=k, total_steps=T1, families=("cooldown",))
    for opt in options:
        s = opt.schedule
        assert (s.preview()[:k] == base.preview()[:k]).all()
        assert s.level == base.preview()[k - 1]  # no jump: the LR in use is kept
        brute = min(
            _continuation_bound(base, k, T1, 1.0, L, s.cooldown_shape, g, D)
            for L in range(1, T1 - k + 1)
        )
        got = _continuation_bound(base, k, T1, 1.0, s.cooldown, s.cooldown_shape, g, D)
        assert got <= brute * (1 + 1e-9)


def test_extend_rescale_beats_a_brute_force_grid():
    base = LinearDecay(60)
    k, T1 = 40, 120
    g = np.linspace(2.0, 1.0, T1)
    D = 1.0 / best_scale(base, g[:60])[0]
    [opt] = plan.extension_options(
        base, at_step=k, total_steps=T1, norms=g[:60], families=("rescale",), shapes=("linear",)
    )
    # D from the run's whole record; the new steps hold the norms recorded before the checkpoint
    held = carry_norms(g[:k], T1, "step")
    brute = min(
        _continuation_bound(base, k, T1, level, L, "linear", held, D)
        for level in np.geomspace(2**-8, 1.0, 60)
        for L in range(1, T1 - k + 1, 2)
    )
    got = last_iterate_bound(opt.schedule.preview(), held, D)
    assert got <= brute * (1 + 1e-4)


def test_extend_holds_the_norms_from_before_the_checkpoint():
    # A WSD run whose norms are flat until its cooldown and then fall 100x: the cooldown the
    # continuation leaves must not make the new steps look cheap (a short cooldown, a high level).
    base = WarmupStableDecay(1000, decay=0.2, decay_shape="1-sqrt")
    g = np.ones(1000)
    g[800:] = 0.01
    flat = plan.extension_options(base, at_step=800, total_steps=2000, norms=np.ones(1000))
    rec = plan.extension_options(base, at_step=800, total_steps=2000, norms=g)
    # the same continuation as a record that is flat everywhere, up to D's calibration
    assert rec[0].family == flat[0].family
    assert rec[0].schedule.cooldown_steps > 0.5 * (2000 - 800)
    assert rec[0].schedule.cooldown_steps == pytest.approx(
        flat[0].schedule.cooldown_steps, rel=0.05
    )
    # the old reading (the cooldown's norms held past the end) planned a far shorter cooldown
    D = 1.0 / best_scale(base, g)[0]
    old = carry_norms(g, 2000, "step")
    short = Continuation(
        2000,
        base=base,
        at_step=800,
        level=rec[0].schedule.level,
        cooldown=12,
        cooldown_shape=rec[0].schedule.cooldown_shape,
    )
    assert last_iterate_bound(short.preview(), old, D) < last_iterate_bound(
        rec[0].schedule.preview(), old, D
    )


def test_extend_ranks_options_and_reports_against_a_fresh_run():
    base = WarmupStableDecay(1000, decay=0.2, decay_shape="1-sqrt")
    options = plan.extension_options(base, at_step=800, total_steps=2000)
    assert [o.bound_ratio for o in options] == sorted(o.bound_ratio for o in options)
    assert {o.family for o in options} == {"rescale", "cooldown"}
    D = 1.0 / best_scale(base, np.ones(1000))[0]
    fresh = best_scale(base.with_horizon(2000), np.ones(2000), D)[1]
    for o in options:
        assert o.bound_ratio == pytest.approx(
            last_iterate_bound(o.schedule.preview(), np.ones(2000), D) / fresh, rel=1e-3
        )
    chosen = extend(base, at_step=800, total_steps=2000)
    assert chosen == options[0].schedule
    assert chosen.provenance["family"] == options[0].family
    # continuing at the same LR with the cooldown moved to the new end: a worse bound
    same = Continuation(
        2000, base=base, at_step=800, level=1.0, cooldown=400, cooldown_shape="1-sqrt"
    )
    assert last_iterate_bound(same.preview(), np.ones(2000), D) / fresh > options[0].bound_ratio


def test_extend_on_blocks_agrees_with_the_exact_bound():
    # past 2 RESOLUTION steps the search runs on blocks; the chosen schedule's exact bound is close
    # to the best exact bound over the same family
    base = WarmupStableDecay(20_000, decay=0.2, decay_shape="linear")
    T1 = 40_000
    opts = plan.extension_options(
        base, at_step=16_000, total_steps=T1, families=("cooldown",), shapes=("linear",)
    )
    small = plan.extension_options(
        WarmupStableDecay(2000, decay=0.2, decay_shape="linear"),
        at_step=1600,
        total_steps=4000,
        families=("cooldown",),
        shapes=("linear",),
    )
    assert opts[0].bound_ratio == pytest.approx(small[0].bound_ratio, rel=2e-3)
    assert opts[0].schedule.cooldown / T1 == pytest.approx(
        small[0].schedule.cooldown / 4000, abs=0.01
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"at_step": 100, "total_steps": 100}, "must come before the new horizon"),
        ({"at_step": 101, "total_steps": 300}, "past the end of the run"),
        ({"at_step": 0, "total_steps": 300}, "at_step must be a whole number"),
        ({"at_step": 50, "total_steps": 2.5}, "total_steps must be a whole number"),
        ({"at_step": 50, "total_steps": 300, "norms": np.ones(20)}, "fewer than the 50 steps"),
        ({"at_step": 50, "total_steps": 300, "family": "restart"}, "families are"),
    ],
)
def test_extend_refuses_bad_input(kwargs, match):
    with pytest.raises(PlanError, match=match):
        extend(LinearDecay(100), **kwargs)


def test_extend_refuses_a_zero_lr_at_the_checkpoint():
    base = Tabulated.from_values([1.0, 0.5, 0.0, 0.0])
    with pytest.raises(PlanError, match="zero at the checkpoint"):
        extend(base, at_step=4, total_steps=8)


# ------------------------------------------------------------------------------------------------
# predict


def test_predict_curves_are_the_bound_of_each_prefix():
    g = np.linspace(3.0, 1.0, 300)
    p = predict(0.05, LinearDecay(300), {"cos": Cosine(300)}, norms=g, points=300)
    D = p.D
    assert best_scale(LinearDecay(300), g, D)[0] == pytest.approx(0.05, rel=1e-12)
    src = p.source
    lrs = 0.05 * LinearDecay(300).preview()
    for t, value in zip(src.steps[::37], src.bound[::37], strict=True):
        assert value == pytest.approx(last_iterate_bound(lrs[:t], g[:t], D), rel=1e-9)
    [cos] = p.candidates
    assert cos.lr == pytest.approx(
        transfer_lr(0.05, LinearDecay(300), Cosine(300), norms=g), rel=1e-12
    )
    assert cos.bound[-1] == pytest.approx(best_scale(Cosine(300), g, D)[1], rel=1e-9)


def test_predict_on_blocks_is_close_to_exact():
    T = 30_000
    p = predict(1.0, LinearDecay(T), [Cosine(T)], points=8)
    lrs = LinearDecay(T).preview()
    for t, value in zip(p.source.steps, p.source.bound, strict=True):
        assert value == pytest.approx(last_iterate_bound(lrs[:t], np.ones(t), p.D), rel=1e-3)


def test_predict_fits_losses_and_ranks():
    T = 400
    first = predict(0.1, LinearDecay(T), [Constant(T)], points=T)
    omega = np.interp(np.arange(1, T + 1), first.source.steps, first.source.bound)
    losses = 0.3 + 0.02 * omega  # the source's losses follow the bound exactly
    p = predict(
        0.1,
        LinearDecay(T),
        {"constant": Constant(T), "cosine": Cosine(T), "wsd": WarmupStableDecay(T, decay=0.2)},
        losses=losses,
    )
    C, M = p.fit
    assert C == pytest.approx(0.3, rel=1e-2) and M == pytest.approx(0.02, rel=1e-2)
    finals = [c.final for c in p.candidates]
    assert finals == sorted(finals)
    assert [c.name for c in p.candidates][-1] == "constant"
    for c in p.candidates:
        np.testing.assert_allclose(c.loss, C + M * c.bound)


def test_predict_drops_a_fit_that_rises_with_the_bound():
    T = 200
    with pytest.warns(PlanWarning, match="do not fall as its bound does"):
        p = predict(0.1, LinearDecay(T), [Cosine(T)], losses=np.linspace(1.0, 2.0, T))
    assert p.fit is None and p.candidates[0].loss is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"losses": np.ones(5)}, "one value per step"),
        ({"losses": np.full(50, np.nan)}, "too few finite losses"),
        ({"points": 1}, "points must be"),
        ({"fit_from": 1.0}, "fit_from"),
    ],
)
def test_predict_refuses_bad_input(kwargs, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PlanError, match=match):
            predict(0.1, LinearDecay(50), [Cosine(50)], **kwargs)


def test_a_rescale_to_the_level_in_use_is_reported_as_a_cooldown():
    # norms that fall through the run make the new steps cheap: the rescale search ends at the
    # level in use (no rescale at all), which is a cooldown and is labelled one, once per shape
    base = WarmupStableDecay(800, warmup=0.05, decay=0.2, decay_shape="1-sqrt")
    g = np.geomspace(1.0, 0.01, 800)
    only = plan.extension_options(
        base, at_step=640, total_steps=1600, norms=g, families=("rescale",)
    )
    both = plan.extension_options(base, at_step=640, total_steps=1600, norms=g)
    for options in (only, both):
        assert [o.family for o in options] == ["cooldown", "cooldown"]
        assert sorted(o.schedule.cooldown_shape for o in options) == ["1-sqrt", "linear"]
        assert all(o.schedule.level == 1.0 for o in options)
        assert all(o.schedule.provenance["family"] == "cooldown" for o in options)
    # of a rescale and a cooldown search landing on the same family and shape, the lower bound
    assert both[0].bound_ratio <= only[0].bound_ratio
    # a real rescale keeps its label
    flat = plan.extension_options(base, at_step=640, total_steps=1600)
    assert flat[0].family == "rescale" and flat[0].schedule.level < 0.9
