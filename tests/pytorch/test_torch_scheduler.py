"""ScheduleLR against torch's own schedulers, hand computations, and its checkpoint contract."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.optim.lr_scheduler import (  # noqa: E402
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    PolynomialLR,
)

from refinedlr import (  # noqa: E402
    Constant,
    Cosine,
    LinearDecay,
    Polynomial,
    ScheduleError,
    StepWise,
    Tabulated,
    get_schedule,
)
from refinedlr.pytorch import ScheduleLR, ScheduleMismatchError  # noqa: E402


def make_opt(lrs=(0.1, 0.02), kind=torch.optim.SGD, **kw):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    groups = [{"params": m.parameters(), "lr": lr} for m, lr in zip(model, lrs, strict=True)]
    return model, kind(groups, **kw)


def run_lrs(opt, sched, steps):
    """The LRs in the optimizer's groups at each step (before optimizer.step())."""
    out = []
    for _ in range(steps):
        out.append([float(g["lr"]) for g in opt.param_groups])
        opt.step()
        sched.step()
    return np.array(out)


def paired(schedule, torch_factory, steps, lrs=(0.1, 0.02)):
    _, opt_a = make_opt(lrs)
    _, opt_b = make_opt(lrs)
    ours = run_lrs(opt_a, ScheduleLR(opt_a, schedule), steps)
    theirs = run_lrs(opt_b, torch_factory(opt_b), steps)
    return ours, theirs


def test_is_an_lrscheduler_with_its_conventions() -> None:
    _, opt = make_opt()
    sched = ScheduleLR(opt, LinearDecay(10))
    assert isinstance(sched, LRScheduler)
    assert sched.last_epoch == 0 and sched.base_lrs == [0.1, 0.02]
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.02]
    assert sched.get_last_lr() == [0.1, 0.02]  # all groups
    for k in range(1, 4):
        opt.step()
        sched.step()
        assert sched.last_epoch == k
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
        assert sched._last_lr == sched.get_last_lr()
        np.testing.assert_allclose(sched.get_last_lr(), [0.1 * (1 - k / 10), 0.02 * (1 - k / 10)])


def test_linear_decay_matches_torch_linearlr() -> None:
    T = 50
    ours, theirs = paired(
        LinearDecay(T), lambda o: LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=T), T
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)


def test_cosine_matches_torch_cosineannealinglr_per_group() -> None:
    T, floor = 40, 0.1
    # CosineAnnealingLR takes one absolute eta_min; with a floor relative to each group's LR the
    # groups are compared one at a time
    for lr in (0.1, 0.02):
        ours, theirs = paired(
            Cosine(T, floor=floor),
            lambda o, lr=lr: CosineAnnealingLR(o, T_max=T, eta_min=floor * lr),
            T,
            lrs=(lr, lr),
        )
        np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_polynomial_and_stepwise_match_torch() -> None:
    T = 30
    ours, theirs = paired(
        Polynomial(T, power=2.0), lambda o: PolynomialLR(o, total_iters=T, power=2.0), T
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15)
    ours, theirs = paired(
        StepWise(T, milestones=(10, 20), factor=0.1),
        lambda o: MultiStepLR(o, milestones=[10, 20], gamma=0.1),
        T,
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_name_and_kwargs_with_warmup_by_hand() -> None:
    T, W = 20, 4
    _, opt = make_opt()
    sched = ScheduleLR(opt, "linear", total_steps=T, warmup=W)
    lrs = run_lrs(opt, sched, T + 3)
    for t in range(T + 3):
        if t < W:
            m = (t + 1) / (W + 1)
        else:
            m = 1 - (min(t, T - 1) - W) / (T - W)  # holds the last value past T
        np.testing.assert_allclose(lrs[t], [0.1 * m, 0.02 * m], rtol=1e-12)
    # a spec mapping and a Schedule give the same thing
    _, opt2 = make_opt()
    spec = get_schedule("linear", T, warmup=W).to_spec()
    np.testing.assert_allclose(run_lrs(opt2, ScheduleLR(opt2, spec), T + 3), lrs, rtol=1e-15)


def test_bad_arguments() -> None:
    _, opt = make_opt()
    with pytest.raises(ScheduleError, match="only for a schedule given by name"):
        ScheduleLR(opt, LinearDecay(5), warmup=2)
    with pytest.raises(ValueError, match="on_mismatch"):
        ScheduleLR(opt, LinearDecay(5), on_mismatch="stretch")
    with pytest.raises(ScheduleError, match="unknown schedule"):
        ScheduleLR(opt, "nope", total_steps=5)
    with pytest.raises(ScheduleError, match="got int"):
        ScheduleLR(opt, 3)


def test_closed_form_not_chained() -> None:
    """An LR changed from outside is overwritten by base * s_t at the next step (no drift)."""
    _, opt = make_opt()
    sched = ScheduleLR(opt, LinearDecay(10))
    opt.step()
    opt.param_groups[0]["lr"] = 123.0
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.9)
    # after many steps of a long schedule the value is exact, not a product of ratios
    _, opt = make_opt()
    sched = ScheduleLR(opt, LinearDecay(100_000))
    opt.step()
    for _ in range(5000):
        sched.step()
    assert opt.param_groups[0]["lr"] == 0.1 * (1 - 5000 / 100_000)


def test_after_horizon_raise_allows_the_documented_loop() -> None:
    """Issue 11 §5: the loop's last sched.step() evaluates step T (never used): allowed, holding
    the last value (as torch's OneCycleLR allows step T); one more step() raises."""
    T = 3
    _, opt = make_opt()
    sched = ScheduleLR(opt, LinearDecay(T, after_horizon="raise"))
    lrs = []
    for _ in range(T):  # the documented loop, T optimizer steps
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.1 * 2 / 3, 0.1 / 3], rel=1e-15)
    assert sched.last_epoch == T and sched.get_last_lr()[0] == lrs[-1]  # step T holds
    opt.step()
    with pytest.raises(ScheduleError, match="past the horizon"):
        sched.step()  # step T + 1
    # the same through torch's OneCycleLR, for comparison: step T is allowed there too
    _, opt = make_opt()
    one = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=T)
    for _ in range(T):
        opt.step()
        one.step()
    with pytest.raises(ValueError, match="Tried to step"):
        one.step()


def test_after_horizon_by_name_is_passed_to_the_schedule() -> None:
    """ScheduleLR(opt, name, ..., after_horizon=...) reaches the schedule (registry of issue 10)."""
    _, opt = make_opt()
    sched = ScheduleLR(opt, "linear", total_steps=4, warmup=1, after_horizon="raise")
    assert sched.schedule.after_horizon == "raise"
    assert sched.schedule == LinearDecay(4, warmup=1, after_horizon="raise")
    _, opt = make_opt()
    assert ScheduleLR(opt, "cosine", total_steps=4).schedule.after_horizon == "hold"


def test_tensor_lr_updated_in_place() -> None:
    model = torch.nn.Linear(3, 1)
    lr = torch.tensor(0.1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    lr_obj = opt.param_groups[0]["lr"]
    sched = ScheduleLR(opt, LinearDecay(4))
    seen = []
    for _ in range(4):
        assert opt.param_groups[0]["lr"] is lr_obj  # same tensor object throughout
        seen.append(lr_obj.item())
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        sched.step()
    np.testing.assert_allclose(seen, [0.1, 0.075, 0.05, 0.025], rtol=1e-6)
    last = sched.get_last_lr()[0]
    assert isinstance(last, torch.Tensor) and last is not lr_obj  # a copy, never an alias
    # the state (with tensor LRs) loads with weights_only
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.1))
    lr2 = opt2.param_groups[0]["lr"]
    sched2 = ScheduleLR(opt2, LinearDecay(4))
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] is lr2
    assert lr2.item() == pytest.approx(0.025)  # past the horizon: holds the last value


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # emitted by torch's own imports
def test_compiled_optimizer_step_does_not_recompile() -> None:
    """With a tensor LR, stepping the scheduler does not retrace a compiled optimizer step."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.01))
    sched = ScheduleLR(opt, "cosine", total_steps=10)
    counter = CompileCounter()

    @torch.compile(backend=counter)
    def opt_step() -> None:
        opt.step()

    lrs = []
    for _ in range(5):
        model(torch.ones(2, 3)).sum().backward()
        opt_step()
        sched.step()
        lrs.append(float(opt.param_groups[0]["lr"]))
    assert counter.frame_count == 1
    assert len(set(lrs)) == 5  # the LR did change


def checkpoint(sched) -> dict:
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def advance(opt, sched, n):
    for _ in range(n):
        opt.step()
        sched.step()


def test_state_dict_round_trip_and_contents() -> None:
    values = np.linspace(1.0, 0.0, 37) ** 2
    schedule = Tabulated(60, values=values, warmup=5, provenance={"tau": np.float64(0.1)})
    _, opt = make_opt()
    sched = ScheduleLR(opt, schedule)
    advance(opt, sched, 17)
    state = checkpoint(sched)
    info = state["schedule"]
    assert info["total_steps"] == 60
    assert info["fingerprint"] == schedule.fingerprint()
    assert info["shape_fingerprint"] == schedule.shape_fingerprint()
    assert info["spec"]["name"] == "tabulated"
    assert state["last_epoch"] == 17
    expected = run_lrs(opt, sched, 30)
    _, opt2 = make_opt()
    sched2 = ScheduleLR(opt2, schedule)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 17 and sched2._step_count == sched._step_count - 30
    np.testing.assert_array_equal(run_lrs(opt2, sched2, 30), expected)


def test_mismatch_raises_and_says_what_changed() -> None:
    _, opt = make_opt()
    sched = ScheduleLR(opt, LinearDecay(100))
    advance(opt, sched, 30)
    state = checkpoint(sched)
    _, opt2 = make_opt()
    with pytest.raises(ScheduleMismatchError, match=r"horizon 100 -> 200 steps") as e:
        ScheduleLR(opt2, LinearDecay(200)).load_state_dict(state)
    assert "shape" not in str(e.value) and "rescale" in str(e.value)
    with pytest.raises(ScheduleMismatchError, match=r"shape 'linear' .* -> 'cosine'"):
        ScheduleLR(opt2, Cosine(100)).load_state_dict(state)
    with pytest.raises(ScheduleMismatchError, match=r"horizon 100 -> 50 steps; shape"):
        ScheduleLR(opt2, Constant(50)).load_state_dict(state)
    with pytest.raises(ScheduleMismatchError, match="floor"):
        ScheduleLR(opt2, LinearDecay(100, floor=0.1)).load_state_dict(state)
    with pytest.raises(ScheduleMismatchError, match="not saved by refinedlr"):
        ScheduleLR(opt2, LinearDecay(100)).load_state_dict(
            LinearLR(make_opt()[1], total_iters=3).state_dict()
        )


def test_rescale_stretches_the_old_remainder() -> None:
    k, T_old, T_new = 30, 100, 250
    old = Cosine(T_old, warmup=0.1, floor=0.05)
    _, opt = make_opt()
    sched = ScheduleLR(opt, old)
    advance(opt, sched, k)
    lr_at_k = [g["lr"] for g in opt.param_groups]
    state = checkpoint(sched)
    _, opt2 = make_opt()
    sched2 = ScheduleLR(opt2, old.with_horizon(T_new), on_mismatch="rescale")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same shape: no warning
        sched2.load_state_dict(state)
    np.testing.assert_allclose([g["lr"] for g in opt2.param_groups], lr_at_k, rtol=1e-12)
    lrs = run_lrs(opt2, sched2, T_new - k + 5)[:, 0]
    # reference by hand: the old preview read at k + (t - k) (T_old-1-k)/(T_new-1-k)
    t = np.arange(k, T_new + 5)
    pos = k + (np.minimum(t, T_new - 1) - k) * (T_old - 1 - k) / (T_new - 1 - k)
    ref = 0.1 * np.interp(pos, np.arange(T_old), old.preview())
    np.testing.assert_allclose(lrs, ref, rtol=1e-12)
    assert lrs[0] == pytest.approx(lr_at_k[0], rel=1e-12)  # continuous at k
    assert lrs[T_new - 1 - k] == pytest.approx(0.1 * old(T_old - 1), rel=1e-12)  # ends like old

    # the composed schedule survives another checkpoint with the new schedule
    _, opt3 = make_opt()
    sched3 = ScheduleLR(opt3, old.with_horizon(T_new), on_mismatch="rescale")
    _, opt4 = make_opt()
    sched4 = ScheduleLR(opt4, old.with_horizon(T_new), on_mismatch="rescale")
    sched4.load_state_dict(state)
    advance(opt4, sched4, 50)
    state2 = checkpoint(sched4)
    sched3.load_state_dict(state2)  # same schedule as saved: no rescale again
    np.testing.assert_allclose(run_lrs(opt3, sched3, 60)[:, 0], ref[50:110], rtol=1e-12)


def test_rescale_with_a_new_shape_warns_and_keeps_the_old_shape() -> None:
    _, opt = make_opt()
    sched = ScheduleLR(opt, LinearDecay(100))
    advance(opt, sched, 40)
    state = checkpoint(sched)
    _, opt2 = make_opt()
    sched2 = ScheduleLR(opt2, Cosine(160), on_mismatch="rescale")
    with pytest.warns(UserWarning, match="shape is ignored"):
        sched2.load_state_dict(state)
    lrs = run_lrs(opt2, sched2, 120)[:, 0]
    # linear from 0.6 at step 40 down to 1/100 at step 159: still a straight line
    np.testing.assert_allclose(np.diff(lrs, 2), 0.0, atol=1e-12)
    assert lrs[0] == pytest.approx(0.1 * 0.6) and lrs[-1] == pytest.approx(0.1 * 0.01)


def test_use_new_switches_with_a_warning() -> None:
    _, opt = make_opt()
    sched = ScheduleLR(opt, LinearDecay(100))
    advance(opt, sched, 50)
    state = checkpoint(sched)
    new = LinearDecay(200)
    _, opt2 = make_opt()
    sched2 = ScheduleLR(opt2, new, on_mismatch="use_new")
    with pytest.warns(UserWarning, match=r"jumps from 0.5 to 0.75"):
        sched2.load_state_dict(state)
    lrs = run_lrs(opt2, sched2, 150)
    np.testing.assert_allclose(lrs[:, 1], 0.02 * new.preview()[50:], rtol=1e-12)
    assert sched2.multiplier(10) == pytest.approx(0.9)  # the past still reads the old schedule


# ---------------------------------------------------------------------------------------------
# issue 19 / 21: the horizon is explicit; a tampered state gives one clear error


def test_total_steps_is_an_explicit_argument() -> None:
    """ScheduleLR(optimizer, schedule, total_steps=None, ...): by keyword or third positional;
    it puts a Schedule, a spec or a name on that horizon, resolved once."""
    import inspect

    assert list(inspect.signature(ScheduleLR).parameters)[:3] == [
        "optimizer",
        "schedule",
        "total_steps",
    ]
    _, opt = make_opt()
    by_name = ScheduleLR(opt, "cosine", 100, warmup=0.1).schedule
    assert by_name == get_schedule("cosine", 100, warmup=0.1)
    _, opt = make_opt()
    assert ScheduleLR(opt, LinearDecay(50), total_steps=80).schedule == LinearDecay(80)
    _, opt = make_opt()
    spec = LinearDecay(50).to_spec()
    assert ScheduleLR(opt, spec, 20).schedule.total_steps == 20
    with pytest.raises(ScheduleError, match="total_steps"):
        ScheduleLR(make_opt()[1], "linear")


def test_past_the_horizon_is_the_schedules_own_rule() -> None:
    """multiplier() asks the schedule: hold by default, raise past T with after_horizon='raise'
    (also when following a composed schedule after a rescale)."""
    _, opt = make_opt()
    sched = ScheduleLR(opt, LinearDecay(10, after_horizon="raise"))
    assert sched.multiplier(10) == sched.schedule(10)
    with pytest.raises(ScheduleError, match="past the horizon"):
        sched.multiplier(11)
    advance(opt, sched, 4)
    state = checkpoint(sched)
    _, opt2 = make_opt()
    longer = ScheduleLR(opt2, LinearDecay(20, after_horizon="raise"), on_mismatch="rescale")
    longer.load_state_dict(state)
    with pytest.raises(ScheduleError, match="past the horizon"):
        longer.multiplier(21)
    with pytest.raises(ScheduleError, match="counted from 0"):
        longer.multiplier(-1)


def _nested(depth: int) -> dict:
    node: dict = {"kind": "schedule", "spec": LinearDecay(10).to_spec()}
    for _ in range(depth):  # built iteratively: no recursion here
        node = {"kind": "switched", "at": 1, "before": node, "after": node}
    return node


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda s: s.update(effective_schedule=_nested(100_000)), id="deep-100000"),
        pytest.param(lambda s: s.update(effective_schedule=_nested(60)), id="shared-2^60"),
        pytest.param(lambda s: s.update(effective_schedule={"kind": "rescaled"}), id="no-keys"),
        pytest.param(lambda s: s.update(effective_schedule={"kind": "x", "at": 1}), id="kind"),
        pytest.param(lambda s: s.update(effective_schedule=[1, 2]), id="not-a-dict"),
        pytest.param(
            lambda s: s["effective_schedule"].update(spec={"name": "x" * 10**6}), id="huge-name"
        ),
        pytest.param(lambda s: s["schedule"].update(total_steps="many"), id="total"),
        pytest.param(lambda s: s.update(last_epoch="x"), id="last-epoch"),
        pytest.param(lambda s: s.update(base_lrs=["a", "b"]), id="base-lrs"),
    ],
)
def test_a_tampered_state_raises_one_clear_line(tamper) -> None:
    """Issue 19: a state nested 100,000 deep (or a shared-subtree bomb, or any malformed field)
    raises ScheduleMismatchError with one short line: never RecursionError, never a hang."""
    import time

    _, opt = make_opt()
    sched = ScheduleLR(opt, LinearDecay(10), on_mismatch="use_new")
    advance(opt, sched, 3)
    state = checkpoint(sched)
    state["schedule"]["fingerprint"] = "changed"  # so the tree is followed
    tamper(state)
    _, opt2 = make_opt()
    fresh = ScheduleLR(opt2, LinearDecay(10), on_mismatch="use_new")
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ScheduleMismatchError) as e:
            fresh.load_state_dict(state)
    assert time.monotonic() - start < 5
    assert "\n" not in str(e.value) and len(str(e.value)) < 400
    assert fresh.last_epoch == 0 and fresh.get_last_lr() == [0.1, 0.02]  # left as it was
