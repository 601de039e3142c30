"""Update-direction norms (issue 12 §1): ``update_norms`` against the parameters' real change
(``u = -(change) / lr``, decoupled weight decay taken out) for Adam, AdamW, NAdam and RAdam in
their single-tensor, foreach and fused implementations, and against a hand computation of Adam;
the recorder's ``update_l2`` / ``update_l1`` kinds."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refinedlr import read_record  # noqa: E402
from refinedlr.pytorch import GradNormRecorder, grad_norms  # noqa: E402
from refinedlr.pytorch import updates as upd  # noqa: E402
from refinedlr.pytorch.updates import UnsupportedOptimizerError, update_norms  # noqa: E402

LR = 0.01


def make_params(dtype: torch.dtype = torch.float64) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    return [
        torch.nn.Parameter(torch.randn(7, 5, generator=g, dtype=dtype)),
        torch.nn.Parameter(torch.randn(5, generator=g, dtype=dtype)),
        torch.nn.Parameter(torch.randn(3, generator=g, dtype=dtype)),  # no gradient in step 2
    ]


def set_grads(params: list[torch.nn.Parameter], step: int) -> None:
    g = torch.Generator().manual_seed(100 + step)
    for i, p in enumerate(params):
        if i == 2 and step == 2:
            p.grad = None
            continue
        # gradients of a quadratic plus noise, of changing scale
        p.grad = (p.detach() * 0.5 + torch.randn(p.shape, generator=g, dtype=p.dtype)) * (
            1.0 + step
        )


CASES: list[tuple[str, type, dict[str, Any]]] = [
    ("adam", torch.optim.Adam, {}),
    ("adam foreach", torch.optim.Adam, {"foreach": True}),
    ("adam fused", torch.optim.Adam, {"fused": True}),
    ("adam amsgrad coupled wd", torch.optim.Adam, {"amsgrad": True, "weight_decay": 0.1}),
    ("adam maximize", torch.optim.Adam, {"maximize": True, "foreach": True}),
    ("adamw", torch.optim.AdamW, {"weight_decay": 0.1}),
    (
        "adamw fused amsgrad",
        torch.optim.AdamW,
        {"weight_decay": 0.1, "fused": True, "amsgrad": True},
    ),
    ("adamw big eps", torch.optim.AdamW, {"weight_decay": 0.05, "eps": 0.3, "foreach": True}),
    ("nadam", torch.optim.NAdam, {}),
    ("nadam foreach", torch.optim.NAdam, {"foreach": True, "momentum_decay": 0.05}),
    ("nadam coupled wd", torch.optim.NAdam, {"weight_decay": 0.2}),
    ("nadam coupled wd maximize", torch.optim.NAdam, {"weight_decay": 0.2, "maximize": True}),
    ("nadamw", torch.optim.NAdam, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("radam", torch.optim.RAdam, {}),
    ("radam foreach", torch.optim.RAdam, {"foreach": True, "weight_decay": 0.1}),
    ("radamw", torch.optim.RAdam, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
]


def decoupled(opt: torch.optim.Optimizer, group: dict[str, Any]) -> float:
    if isinstance(opt, torch.optim.AdamW) or group.get("decoupled_weight_decay", False):
        return float(group["weight_decay"])
    return 0.0


def true_directions(opt: torch.optim.Optimizer, before: list[torch.Tensor], params) -> list:
    """u = -(p_new - p_old * (1 - lr * wd_decoupled)) / lr of the parameters that were updated."""
    out = []
    group = opt.param_groups[0]
    wd = decoupled(opt, group)
    for p, old in zip(params, before, strict=True):
        if p.grad is None:
            continue
        out.append(((old * (1 - LR * wd) - p.detach()) / LR).reshape(-1))
    return out


@pytest.mark.parametrize(("label", "cls", "kw"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("device_scalars", [False, True], ids=["cpu-steps", "tensor-steps"])
def test_update_norms_equal_the_parameter_change(
    label: str, cls: type, kw: dict[str, Any], device_scalars: bool, monkeypatch
) -> None:
    if device_scalars:  # the path of fused/capturable optimizers on an accelerator, on the CPU
        monkeypatch.setattr(upd, "_steps_on_device", lambda steps: True)
    params = make_params()
    opt = cls(params, lr=LR, **kw)
    for step in range(12):  # RAdam: rho_t > 5 from step 6 on (both branches)
        set_grads(params, step)
        before = [p.detach().clone() for p in params]
        opt.step()
        u = torch.cat(true_directions(opt, before, params))
        got = update_norms(opt, ("update_l2", "update_l1"), chunk_elements=20)  # 2+ chunks
        want = [u.norm().item(), u.abs().sum().item()]
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-8, err_msg=f"{label} step {step}")


def test_adam_by_hand() -> None:
    """Adam's u = m_hat / (sqrt(v_hat) + eps), written out in numpy from the gradients."""
    b1, b2, eps = 0.8, 0.9, 1e-3
    params = make_params()[:2]
    opt = torch.optim.Adam(params, lr=LR, betas=(b1, b2), eps=eps)
    m = [np.zeros(p.shape) for p in params]
    v = [np.zeros(p.shape) for p in params]
    for t in range(1, 5):
        set_grads(params, t)
        u = []
        for i, p in enumerate(params):
            g = p.grad.numpy()
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat, v_hat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            u.append((m_hat / (np.sqrt(v_hat) + eps)).ravel())
        opt.step()
        flat = np.concatenate(u)
        got = update_norms(opt, ("update_l2", "update_l1")).numpy()
        np.testing.assert_allclose(got, [np.linalg.norm(flat), np.abs(flat).sum()], rtol=1e-12)


def test_complex_and_float32_parameters() -> None:
    g = torch.Generator().manual_seed(3)
    p = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.complex64, generator=g))
    q = torch.nn.Parameter(torch.randn(6, generator=g))
    opt = torch.optim.AdamW([p, q], lr=LR, weight_decay=0.0)
    for _ in range(3):
        p.grad = torch.randn(4, 3, dtype=torch.complex64, generator=g)
        q.grad = torch.randn(6, generator=g)
        before = [p.detach().clone(), q.detach().clone()]
        opt.step()
        u = torch.cat(
            [
                torch.view_as_real((before[0] - p.detach()) / LR).reshape(-1),
                (before[1] - q.detach()) / LR,
            ]
        ).double()
        got = update_norms(opt, ("update_l2", "update_l1"))
        np.testing.assert_allclose(got.numpy(), [u.norm(), u.abs().sum()], rtol=1e-4)


def test_unsupported_optimizer_names_the_supported_ones() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    for opt in (torch.optim.SGD([p], lr=0.1), torch.optim.Adagrad([p]), torch.optim.Adamax([p])):
        with pytest.raises(UnsupportedOptimizerError, match=r"Adam, .*AdamW, .*NAdam, .*RAdam"):
            update_norms(opt)
    with pytest.raises(UnsupportedOptimizerError, match="SGD"):
        GradNormRecorder(kinds=("l2", "update_l2")).attach(torch.optim.SGD([p], lr=0.1))


def test_no_step_yet_gives_zeros() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    assert update_norms(torch.optim.Adam([p])).tolist() == [0.0]


# ---------------------------------------------------------------------------------------------
# the recorder's update kinds


def model_and_adamw(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    return model, torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.1)


def loss_of(model, step: int):
    g = torch.Generator().manual_seed(step)
    x, y = torch.randn(8, 5, generator=g), torch.randn(8, 2, generator=g)
    return torch.nn.functional.mse_loss(model(x), y)


def change_norms(opt, before) -> list[float]:
    params = [p for g in opt.param_groups for p in g["params"]]
    u = torch.cat(true_directions(opt, before, params)).double()
    return [u.norm().item(), u.abs().sum().item()]


def test_recorder_hook_records_update_norms_in_the_kinds_order(tmp_path: Path) -> None:
    model, opt = model_and_adamw()
    kinds = ("update_l1", "l2", "update_l2")  # any order: the file's columns
    rec = GradNormRecorder(tmp_path / "n.csv", kinds=kinds, flush_every=3)
    rec.attach(opt)
    want = []
    for step in range(8):
        opt.zero_grad()
        loss_of(model, step).backward()
        g2 = grad_norms(model, ("l2",)).item()
        before = [p.detach().clone() for p in model.parameters()]
        opt.step()
        u2, u1 = change_norms(opt, before)
        want.append([u1, g2, u2])
    rec.close()
    r = read_record(tmp_path / "n.csv")
    assert r.kinds == kinds and r.steps.tolist() == list(range(8))
    got = np.c_[r.values["update_l1"], r.values["l2"], r.values["update_l2"]]
    np.testing.assert_allclose(got, want, rtol=1e-5)  # float32 parameters


def test_recorder_explicit_clip_then_update_from_the_hook() -> None:
    model, opt = model_and_adamw()
    rec = GradNormRecorder(kinds=("l2", "update_l2"), flush_every=2)
    with pytest.raises(RuntimeError, match=r"attach\(optimizer\)"):
        rec.record(model)
    rec.attach(opt)
    want = []
    for step in range(5):
        opt.zero_grad()
        loss_of(model, step).backward()
        pre = rec.clip_grad_norm_(model.parameters(), max_norm=0.05).item()
        before = [p.detach().clone() for p in model.parameters()]
        opt.step()
        want.append([pre, change_norms(opt, before)[0]])
        if step == 2:
            assert rec.state_dict()["step"] == 3  # a checkpoint between steps
    got = rec.to_record()
    assert got.steps.tolist() == list(range(5))
    np.testing.assert_allclose(np.c_[got.values["l2"], got.values["update_l2"]], want, rtol=1e-5)


def test_recorder_step_that_never_came_gets_a_missing_update() -> None:
    """An explicit record whose optimizer step does not happen (a skipped AMP step in
    Lightning, which records before scaler.step): the update part of that row is NaN."""
    model, opt = model_and_adamw()
    rec = GradNormRecorder(kinds=("l2", "update_l2"), flush_every=2)
    rec.attach(opt)
    for step in range(4):
        opt.zero_grad()
        loss_of(model, step).backward()
        rec.record(opt)
        if step != 1:
            opt.step()
    rec.record(opt)  # a last row whose step never comes: closed with a NaN update
    rec.close()
    r = rec.to_record()
    assert r.steps.tolist() == list(range(5))
    assert np.isfinite(r.values["l2"]).all()
    assert np.isnan(r.values["update_l2"][[1, 4]]).all()
    assert np.isfinite(r.values["update_l2"][[0, 2, 3]]).all()


def test_recorder_amp_skipped_step_with_update_kinds() -> None:
    model, opt = model_and_adamw()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    rec = GradNormRecorder(kinds=("update_l2", "l2"), flush_every=4)
    rec.attach(opt, scaler=scaler)
    for step in range(6):
        opt.zero_grad()
        loss = loss_of(model, step) * (math.inf if step in (0, 3) else 1.0)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
    r = rec.to_record()
    assert r.steps.tolist() == list(range(6))
    for kind in ("update_l2", "l2"):
        assert np.isnan(r.values[kind][[0, 3]]).all()
        assert np.isfinite(r.values[kind][[1, 2, 4, 5]]).all()


def test_recorder_gradient_part_from_record_norms() -> None:
    """record_norms with only the gradient kinds (a framework that computed them): the update
    part comes from the attached optimizer's hook."""
    model, opt = model_and_adamw()
    rec = GradNormRecorder(kinds=("update_l2", "l1"))
    rec.attach(opt, gradients=False)
    loss_of(model, 0).backward()
    rec.record_norms([1.5])
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()
    r = rec.to_record()
    assert r.values["l1"].tolist() == [1.5]
    np.testing.assert_allclose(r.values["update_l2"], [change_norms(opt, before)[0]], rtol=1e-5)
    with pytest.raises(ValueError, match="values for kinds"):
        rec.record_norms([1.0, 2.0, 3.0])
