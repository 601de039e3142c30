"""The recorder's CUDA path (issue 11 §7): pinned host buffers, CUDA events, non-blocking copies,
no host synchronisation per step (``torch.cuda.set_sync_debug_mode("error")`` raises on any),
AMP with a ``GradScaler``, bf16, and the update-direction kinds with fused and foreach AdamW.

Every test here needs a CUDA GPU and skips without one; ``scripts/gpu-check`` runs them (and a
short training run, ``_cuda_train.py``) on a GPU machine.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refinedlr import read_record  # noqa: E402
from refinedlr.pytorch import GradNormRecorder  # noqa: E402
from refinedlr.pytorch.updates import update_norms  # noqa: E402

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU (none here, or a CPU build of torch); scripts/gpu-check runs these",
)

DEV = "cuda"


@contextlib.contextmanager
def no_host_sync() -> Iterator[None]:
    """Any synchronising CUDA call inside raises (torch's sync debug mode)."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def mlp(dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
    return model.to(DEV, dtype)


def norms_of(grads: list[torch.Tensor]) -> list[float]:
    g = [x.double() for x in grads]
    return [torch.nn.utils.get_total_norm(g, o).item() for o in (2.0, 1.0)]


def test_cuda_hook_and_clip_without_host_sync(tmp_path: Path) -> None:
    """13 steps = 3 flush intervals of 4: the hook and clip_grad_norm_ record with no sync; the
    copies land in pinned host buffers through events; the values are right."""
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    rec = GradNormRecorder(tmp_path / "n.csv", kinds=("l2", "l1"), flush_every=4)
    clip = GradNormRecorder(kinds=("l2",), flush_every=4)
    rec.attach(opt)
    x = torch.randn(32, 64, device=DEV)
    snapshots = []
    with no_host_sync():
        for _ in range(13):
            opt.zero_grad(set_to_none=False)
            model(x).square().mean().backward()
            snapshots.append([p.grad.detach().clone() for p in model.parameters()])
            clip.clip_grad_norm_(model.parameters(), max_norm=1e9)
            opt.step()
    assert rec._buf is not None and rec._buf.is_cuda  # the device buffer
    assert isinstance(rec._last_copy, torch.cuda.Event)  # copies out are tracked by events
    assert rec._pool or rec._pending  # pinned host buffers in use or back in the pool
    assert all(h.is_pinned() for h in rec._pool) and all(c.host.is_pinned() for c in rec._pending)
    refs = [norms_of(s) for s in snapshots]
    rec.close()
    r = read_record(tmp_path / "n.csv")
    assert r.steps.tolist() == list(range(13))
    np.testing.assert_allclose(np.c_[r.values["l2"], r.values["l1"]], refs, rtol=1e-5)
    np.testing.assert_allclose(clip.to_record().values["l2"], np.array(refs)[:, 0], rtol=1e-5)


@pytest.mark.parametrize("impl", ["fused", "foreach"])
def test_cuda_update_norms_without_host_sync(tmp_path: Path, impl: str) -> None:
    """update_l2 / update_l1 of AdamW (fused: step counts on the GPU; foreach: on the CPU), with
    no sync, equal to the parameters' change / lr (decoupled weight decay taken out)."""
    model = mlp()
    lr, wd = 1e-2, 0.1
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, **{impl: True})
    rec = GradNormRecorder(
        tmp_path / "n.csv", kinds=("l2", "update_l2", "update_l1"), flush_every=4
    )
    rec.attach(opt)
    x = torch.randn(32, 64, device=DEV)
    changes = []
    with no_host_sync():
        for _ in range(9):
            opt.zero_grad()
            model(x).square().mean().backward()
            before = [p.detach().double().clone() for p in model.parameters()]
            opt.step()
            changes.append(
                [
                    (b * (1 - lr * wd) - p.detach().double()) / lr
                    for b, p in zip(before, model.parameters(), strict=True)
                ]
            )
            direct = update_norms(opt, ("update_l2",))  # also callable directly, no sync
    assert direct.is_cuda
    rec.close()
    want = [norms_of(c) for c in changes]
    r = read_record(tmp_path / "n.csv")
    assert r.steps.tolist() == list(range(9))
    np.testing.assert_allclose(np.c_[r.values["update_l2"], r.values["update_l1"]], want, rtol=1e-4)


def test_cuda_amp_grad_scaler_rows_aligned() -> None:
    """fp16 autocast with a GradScaler: the hook with scaler= records skipped steps as NaN; the
    other rows are the unscaled norms."""
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**10)
    rec = GradNormRecorder(kinds=("l2", "l1"), flush_every=3)
    rec.attach(opt, scaler=scaler)
    x = torch.randn(32, 64, device=DEV)
    refs = []
    for step in range(8):
        opt.zero_grad()
        with torch.autocast("cuda", dtype=torch.float16):
            loss = model(x).float().square().mean()
        if step in (0, 5):
            loss = loss * math.inf
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        grads = [p.grad.detach().clone() for p in model.parameters()]
        refs.append([math.nan, math.nan] if step in (0, 5) else norms_of(grads))
        scaler.step(opt)
        scaler.update()
    r = rec.to_record()
    assert r.steps.tolist() == list(range(8))
    np.testing.assert_allclose(np.c_[r.values["l2"], r.values["l1"]], refs, rtol=1e-5)
    assert scaler.get_scale() == 2.0**10 * 0.25


@pytest.mark.parametrize("mode", ["bf16 parameters", "bf16 autocast"])
def test_cuda_bf16_without_host_sync(mode: str) -> None:
    """bf16 gradients (bf16 parameters) or fp32 gradients of a bf16-autocast model: norms
    accumulated in float32, no sync, equal to a float64 reference of the same gradients."""
    dtype = torch.bfloat16 if mode == "bf16 parameters" else torch.float32
    model = mlp(dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rec = GradNormRecorder(kinds=("l2", "l1", "update_l2"), flush_every=4)
    rec.attach(opt)
    x = torch.randn(32, 64, device=DEV, dtype=dtype)
    snapshots = []
    with no_host_sync():
        for _ in range(6):
            opt.zero_grad()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode == "bf16 autocast"):
                loss = model(x).float().square().mean()
            loss.backward()
            snapshots.append([p.grad.detach().clone() for p in model.parameters()])
            opt.step()
    r = rec.to_record()
    np.testing.assert_allclose(
        np.c_[r.values["l2"], r.values["l1"]], [norms_of(s) for s in snapshots], rtol=1e-5
    )
    assert np.isfinite(r.values["update_l2"]).all() and (r.values["update_l2"] > 0).all()


def test_cuda_training_run(tmp_path: Path) -> None:
    """The short CUDA training run of scripts/gpu-check, as a test: rows, values, no sync."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    import _cuda_train

    summary = _cuda_train.run(tmp_path, steps=200, quiet=True)
    assert summary["rows"] == 200 and summary["finite"]
    assert summary["loss_last"] < summary["loss_first"]
