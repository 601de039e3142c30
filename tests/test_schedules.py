"""Schedules against closed forms, torch's own schedulers and Hugging Face's formulas."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refinedlr.registry import get_schedule, schedule_from_spec
from refinedlr.schedule_io import load_schedule, save_schedule
from refinedlr.schedules import (
    Constant,
    Cosine,
    InverseSqrt,
    InverseTime,
    LinearDecay,
    Polynomial,
    Schedule,
    ScheduleError,
    StepWise,
    Tabulated,
    WarmupStableDecay,
)

T = 50


def all_schedules(total: int = T) -> list[Schedule]:
    return [
        Constant(total),
        LinearDecay(total),
        LinearDecay(total, floor=0.1, warmup=5),
        Cosine(total),
        Cosine(total, floor=0.05, warmup=0.1),
        Polynomial(total, power=2.0),
        Polynomial(total, power=0.5, floor=0.2, warmup=3),
        StepWise(total, milestones=(0.3, 0.6), factor=0.5),
        StepWise(total, milestones=(10, 40), factor=0.1, warmup=4),
        InverseTime(total, offset=3.0),
        InverseSqrt(total, timescale=5.0, warmup=5),
        WarmupStableDecay(total, decay=0.3, decay_shape="cosine", floor=0.1, warmup=0.1),
        WarmupStableDecay(total, decay=12, decay_shape="1-sqrt"),
        Tabulated(total, values=np.linspace(1, 0, 17) ** 2),
        Tabulated(total, values=np.r_[np.linspace(0.1, 1, 5), np.linspace(1, 0, 30)], warmup=2),
    ]


# -- closed forms --------------------------------------------------------------------------------


def test_closed_forms() -> None:
    t = np.arange(T)
    np.testing.assert_allclose(LinearDecay(T).preview(), 1 - t / T)
    np.testing.assert_allclose(
        Cosine(T, floor=0.2).preview(), 0.2 + 0.8 * (1 + np.cos(np.pi * t / T)) / 2
    )
    np.testing.assert_allclose(Polynomial(T, power=3.0).preview(), (1 - t / T) ** 3)
    np.testing.assert_allclose(InverseTime(T, offset=2.0).preview(), 2 / (2 + t))
    np.testing.assert_allclose(InverseSqrt(T, timescale=4.0).preview(), np.sqrt(4 / (4 + t)))
    np.testing.assert_allclose(
        StepWise(T, milestones=(0.5, 0.8), factor=0.3).preview(),
        np.where(t < 25, 1.0, np.where(t < 40, 0.3, 0.09)),
    )
    np.testing.assert_allclose(Constant(T).preview(), np.ones(T))


def test_paper_linear_decay_is_one_minus_t_over_T() -> None:
    s = LinearDecay(total_steps=1000)
    assert s(0) == 1.0
    assert s(999) == pytest.approx(1e-3)
    assert s(500) == pytest.approx(0.5)


@pytest.mark.parametrize("schedule", all_schedules(), ids=lambda s: type(s).__name__)
def test_range_vectorised_and_hold(schedule: Schedule) -> None:
    v = schedule.preview()
    assert v.shape == (T,) and v.dtype == np.float64
    assert np.all((v >= 0) & (v <= 1))
    assert v[0] > 0, "no zero learning rate at step 0"
    scalars = np.array([schedule(i) for i in range(T)])
    np.testing.assert_array_equal(scalars, v)
    assert isinstance(schedule(3), float)
    assert schedule(np.array([[1, 2], [3, 4]])).shape == (2, 2)
    # past the horizon: hold the last value, never rebound
    assert schedule(T) == v[-1]
    assert np.all(schedule(np.arange(T, 3 * T)) == v[-1])


def test_cosine_does_not_rebound_past_horizon_unlike_torch() -> None:
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    lrs = []
    for _ in range(15):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[14] > lrs[10]  # torch's closed-form cosine rises again past T_max
    ours = Cosine(10)(np.arange(15))
    assert np.all(np.diff(ours) <= 0)


def test_after_horizon_raise() -> None:
    s = LinearDecay(10, after_horizon="raise")
    assert s(9) == pytest.approx(0.1)
    # step T is allowed (a loop's final scheduler.step() evaluates it, as torch's OneCycleLR allows)
    assert s(10) == s(9)
    with pytest.raises(ScheduleError, match="past the horizon"):
        s(11)
    with pytest.raises(ScheduleError, match="past the horizon"):
        s(np.arange(12))
    assert get_schedule("linear", 10, after_horizon="raise") == s


# -- warm-up -------------------------------------------------------------------------------------


@pytest.mark.parametrize("warmup,W", [(5, 5), (0.1, 5), (0.25, 12), (1, 1)])
def test_warmup_ramp(warmup: int | float, W: int) -> None:
    s = Cosine(T, warmup=warmup)
    assert s.warmup_steps == W
    v = s.preview()
    np.testing.assert_allclose(v[:W], (np.arange(W) + 1) / (W + 1))
    assert v[W] == 1.0
    assert np.all(np.diff(v[: W + 1]) > 0)
    # after warm-up the decay part runs over the remaining T - W steps
    np.testing.assert_allclose(v[W:], Cosine(T - W).preview())


def test_warmup_scales_with_first_value_of_tabulated() -> None:
    s = Tabulated(10, values=np.linspace(0.5, 0.0, 8), warmup=2)
    v = s.preview()
    np.testing.assert_allclose(v[:2], [0.5 / 3, 1.0 / 3])
    assert v[2] == 0.5


# -- torch schedulers, where the conventions coincide --------------------------------------------


def _torch_lrs(make, steps: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make(torch.optim.lr_scheduler, opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return np.array(out)


def test_against_torch_schedulers() -> None:
    pytest.importorskip("torch")
    np.testing.assert_allclose(
        LinearDecay(T).preview(),
        _torch_lrs(lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=T), T),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        Cosine(T, floor=0.1).preview(),
        _torch_lrs(lambda m, o: m.CosineAnnealingLR(o, T_max=T, eta_min=0.1), T),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        Polynomial(T, power=2.0).preview(),
        _torch_lrs(lambda m, o: m.PolynomialLR(o, total_iters=T, power=2.0), T),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        StepWise(T, milestones=(10, 30), factor=0.2).preview(),
        _torch_lrs(lambda m, o: m.MultiStepLR(o, milestones=[10, 30], gamma=0.2), T),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        InverseTime(T, offset=4.0).preview(),
        _torch_lrs(lambda m, o: m.LambdaLR(o, lambda t: 4.0 / (4.0 + t)), T),
        atol=1e-12,
    )


# -- Hugging Face's formulas (transcribed from their documented definitions) ----------------------
# HF's warm-up is t / W (zero at step 0); ours is (t + 1) / (W + 1). After warm-up they coincide.


def hf_linear(t: int, W: int, N: int) -> float:
    return t / max(1, W) if t < W else max(0.0, (N - t) / max(1, N - W))


def hf_cosine(t: int, W: int, N: int, min_lr_rate: float = 0.0) -> float:
    if t < W:
        return t / max(1, W)
    p = (t - W) / max(1, N - W)
    return max(0.0, min_lr_rate + (1 - min_lr_rate) * 0.5 * (1 + math.cos(math.pi * p)))


def hf_poly(t: int, W: int, N: int, power: float) -> float:
    if t < W:
        return t / max(1, W)
    return (1 - (t - W) / (N - W)) ** power


def hf_inverse_sqrt(t: int, W: int, timescale: float) -> float:
    if t < W:
        return t / max(1, W)
    shift = timescale - W
    return 1.0 / math.sqrt((t + shift) / timescale)


def hf_wsd(t: int, W: int, S: int, D: int, kind: str, min_ratio: float) -> float:
    if t < W:
        return t / max(1, W)
    if t < W + S:
        return 1.0
    p = (t - W - S) / max(1, D)
    if kind == "linear":
        v = 1.0 - p
    elif kind == "cosine":
        v = 0.5 * (1 + math.cos(math.pi * p))
    else:
        v = 1.0 - math.sqrt(p)
    return min_ratio + (1 - min_ratio) * max(v, 0.0)


@pytest.mark.parametrize("W", [0, 7])
def test_against_hugging_face_formulas_after_warmup(W: int) -> None:
    N = 60
    t = np.arange(W, N)
    np.testing.assert_allclose(
        get_schedule("linear", N, warmup=W)(t), [hf_linear(i, W, N) for i in t]
    )
    np.testing.assert_allclose(
        get_schedule("cosine", N, warmup=W)(t), [hf_cosine(i, W, N) for i in t], atol=1e-12
    )
    np.testing.assert_allclose(
        get_schedule("cosine_with_min_lr", N, warmup=W, min_lr_rate=0.1)(t),
        [hf_cosine(i, W, N, 0.1) for i in t],
    )
    np.testing.assert_allclose(
        get_schedule("polynomial", N, warmup=W, power=2.0)(t), [hf_poly(i, W, N, 2.0) for i in t]
    )
    np.testing.assert_allclose(
        get_schedule("inverse_sqrt", N, num_warmup_steps=W, timescale=9.0)(t),
        [hf_inverse_sqrt(i, W, 9.0) for i in t],
    )
    np.testing.assert_allclose(get_schedule("constant_with_warmup", N, warmup=W)(t), 1.0)
    for kind in ("linear", "cosine", "1-sqrt"):
        D = 15
        np.testing.assert_allclose(
            get_schedule(
                "warmup_stable_decay",
                N,
                num_warmup_steps=W,
                scheduler_specific_kwargs={
                    "num_decay_steps": D,
                    "decay_type": kind,
                    "min_lr_ratio": 0.05,
                },
            )(t),
            [hf_wsd(i, W, N - W - D, D, kind, 0.05) for i in t],
            atol=1e-12,
        )


def test_warmup_differs_from_hugging_face_only_by_the_zero_at_step_zero() -> None:
    W, N = 4, 20
    ours = get_schedule("linear", N, warmup=W)(np.arange(W))
    theirs = np.array([hf_linear(i, W, N) for i in range(W)])
    assert theirs[0] == 0.0 and ours[0] > 0.0
    # ours is HF's ramp over W + 1 steps, shifted by one: (t + 1) / (W + 1)
    np.testing.assert_allclose(ours, (np.arange(W) + 1) / (W + 1))


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: LinearDecay(0), "total_steps must be >= 1"),
        (lambda: LinearDecay(10.5), "total_steps must be an integer"),  # type: ignore[arg-type]
        (lambda: Cosine(10, floor=1.5), "floor must be <= 1"),
        (lambda: Cosine(10, warmup=10), "warmup .* must be shorter"),
        (lambda: Cosine(10, warmup=1.0), "warmup must be < 1"),
        (lambda: Polynomial(10, power=-1.0), "power must be > 0"),
        (lambda: StepWise(10, milestones=(0.5, 3)), "mix steps"),
        (lambda: StepWise(10, milestones=(12,)), "inside the horizon"),
        (lambda: StepWise(10, milestones=(0.8, 0.2)), "must increase"),
        (lambda: WarmupStableDecay(10, decay_shape="exp"), "decay_shape"),  # type: ignore[arg-type]
        (lambda: WarmupStableDecay(10, warmup_shape="x"), "warmup_shape"),  # type: ignore[arg-type]
        (lambda: WarmupStableDecay(10, stable=-1), "stable must be >= 0"),
        (lambda: Cosine(10, cycles=0), "cycles must be > 0"),
        (lambda: LinearDecay(10**12), "MAX_STEPS"),
        (lambda: WarmupStableDecay(10, decay=8, warmup=5), "exceed the horizon"),
        (lambda: Tabulated(5, values=[1.0, 2.0]), r"values\[1\] = 2.0"),
        (lambda: Tabulated(5, values=[1.0, float("nan")]), r"values\[1\]"),
        (lambda: InverseTime(5, offset=0.0), "offset must be > 0"),
    ],
)
def test_validation_errors(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScheduleError, match=match):
        make()


@pytest.mark.parametrize("bad", [-1, 1.5, "3", np.array([0, -2]), True])
def test_bad_steps(bad: object) -> None:
    with pytest.raises(ScheduleError):
        LinearDecay(10)(bad)  # type: ignore[arg-type]


# -- tabulated schedules and resampling ----------------------------------------------------------


def test_tabulated_identity_and_endpoints() -> None:
    v = np.array([0.2, 0.6, 1.0, 0.7, 0.3, 0.0])
    s = Tabulated(6, values=v)
    np.testing.assert_array_equal(s.preview(), v)
    for n in (2, 3, 7, 100, 1001):
        r = s.with_horizon(n).preview()
        assert r[0] == 0.2 and r[-1] == 0.0 and r.max() <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=40),
    st.integers(2, 500),
)
def test_resampling_is_interpolation_on_normalised_time(values: list[float], n: int) -> None:
    s = Tabulated(n, values=values)
    L = len(values)
    expected = np.interp(np.arange(n) / (n - 1), np.arange(L) / (L - 1), values)
    np.testing.assert_allclose(s.preview(), expected, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 60), st.integers(2, 8))
def test_upsampling_then_downsampling_recovers_the_table(L: int, factor: int) -> None:
    rng = np.random.default_rng(L)
    v = rng.uniform(0, 1, L)
    up = Tabulated((L - 1) * factor + 1, values=v).preview()
    back = Tabulated(L, values=up).preview()
    np.testing.assert_allclose(back, v, atol=1e-12)


# -- specs, fingerprints, files ------------------------------------------------------------------


@pytest.mark.parametrize("schedule", all_schedules(), ids=lambda s: type(s).__name__)
def test_spec_round_trip(schedule: Schedule, tmp_path) -> None:  # type: ignore[no-untyped-def]
    again = schedule_from_spec(schedule.to_spec())
    assert again == schedule
    assert again.fingerprint() == schedule.fingerprint()
    np.testing.assert_array_equal(again.preview(), schedule.preview())
    for suffix in ("json", "npy", "csv"):
        path = tmp_path / f"s.{suffix}"
        save_schedule(schedule, path)
        loaded = load_schedule(path)
        np.testing.assert_allclose(loaded.preview(), schedule.preview(), rtol=0, atol=0)


def test_fingerprints_detect_horizon_and_shape_changes() -> None:
    a = Cosine(100, warmup=0.05)
    assert a.fingerprint() == Cosine(100, warmup=0.05).fingerprint()
    b = a.with_horizon(200)
    assert b.fingerprint() != a.fingerprint()
    assert b.shape_fingerprint() == a.shape_fingerprint()
    c = Cosine(100, warmup=0.05, floor=0.1)
    assert c.fingerprint() != a.fingerprint() and c.shape_fingerprint() != a.shape_fingerprint()
    t1 = Tabulated(100, values=[1.0, 0.5, 0.0])
    t2 = Tabulated(100, values=[1.0, 0.4, 0.0])
    assert t1.fingerprint() != t2.fingerprint()
    assert len(a.fingerprint()) == 16


def test_with_horizon_scales_fractions() -> None:
    s = WarmupStableDecay(100, warmup=0.1, decay=0.2).with_horizon(1000)
    assert s.warmup_steps == 100 and s.decay_steps == 200


def test_load_rejects_pickles_and_bad_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ScheduleError, match=r"obj\.npy"):
        load_schedule(p)
    q = tmp_path / "bad.csv"
    q.write_text("step,multiplier\n0,1.0\n1,abc\n")
    with pytest.raises(ScheduleError, match=r"bad\.csv, line 3"):
        load_schedule(q)
    r = tmp_path / "bad.json"
    r.write_text('{"spec": {"name": "cosine", "total_steps": 10,\n "floor": }}')
    with pytest.raises(ScheduleError, match=r"bad\.json, line 2"):
        load_schedule(r)
    u = tmp_path / "big.npy"
    np.save(u, np.array([1.0, 2.0]))
    with pytest.raises(ScheduleError, match=r"values\[1\] = 2.0"):
        load_schedule(u)
