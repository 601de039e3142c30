"""ScheduleLR resumes a checkpoint onto a planned extension (refinedlr.plan.extend), and still
refuses an accidental change of horizon."""

from __future__ import annotations

import io
import warnings

import pytest

torch = pytest.importorskip("torch")

from refinedlr import Continuation, WarmupStableDecay  # noqa: E402
from refinedlr.plan import extend  # noqa: E402
from refinedlr.pytorch import ScheduleLR, ScheduleMismatchError  # noqa: E402

BASE = WarmupStableDecay(100, warmup=5, decay=0.2, decay_shape="1-sqrt")


def _checkpoint(schedule, steps: int) -> dict:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.5)
    sched = ScheduleLR(opt, schedule)
    for _ in range(steps):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _resume(schedule, state, **kwargs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.5)
    sched = ScheduleLR(opt, schedule, **kwargs)
    sched.load_state_dict(state)
    return opt, sched


def test_a_planned_extension_resumes_silently_and_follows_the_plan():
    state = _checkpoint(BASE, 80)
    longer = extend(BASE, at_step=80, total_steps=200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt, sched = _resume(longer, state)
    lrs = []
    for _ in range(120):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert sched.last_epoch == 200
    want = [0.5 * float(longer(t)) for t in range(80, 200)]
    assert lrs == pytest.approx(want, rel=1e-15)


def test_an_earlier_checkpoint_resumes_onto_a_later_branch():
    state = _checkpoint(BASE, 50)  # the plan branches at 80: steps 50..79 follow the original
    opt, _ = _resume(extend(BASE, at_step=80, total_steps=200), state)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * float(BASE(50)))


def test_a_checkpoint_past_the_branch_is_refused():
    state = _checkpoint(BASE, 90)  # already in the original cooldown
    with pytest.raises(ScheduleMismatchError, match=r"past step 80 .* at_step=90"):
        _resume(extend(BASE, at_step=80, total_steps=200), state, on_mismatch="rescale")


def test_an_accidental_horizon_change_is_still_refused():
    state = _checkpoint(BASE, 80)
    with pytest.raises(ScheduleMismatchError, match="horizon 100 -> 200"):
        _resume(BASE.with_horizon(200), state)
    other = Continuation(200, base=WarmupStableDecay(100, decay=0.3), at_step=80, level=0.5)
    with pytest.raises(ScheduleMismatchError):  # a continuation of another schedule
        _resume(other, state)


def test_extensions_chain():
    first = extend(BASE, at_step=80, total_steps=200)
    state = _checkpoint(first, 150)
    second = extend(first, at_step=150, total_steps=400)
    opt, sched = _resume(second, state)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * float(second(150)))
    assert sched.multiplier(399) == pytest.approx(float(second(399)))
