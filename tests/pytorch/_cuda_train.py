"""A short CUDA training run with the recorder (part of ``scripts/gpu-check``).

A small CNN on random 3x32x32 data, bf16 autocast, fused AdamW driven by ``ScheduleLR`` (linear
decay with warm-up), a ``GradNormRecorder`` recording ``l2``, ``l1``, ``update_l2`` and
``update_l1`` to a CSV file. The training steps run under ``torch.cuda.set_sync_debug_mode
("error")``: any host synchronisation (by the recorder, the scheduler or the step) raises. Then
the same step is timed with and without the recorder, alternating one by one (median ratio).

``python tests/pytorch/_cuda_train.py [OUT_DIR] [--steps N]`` prints what it checked.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from refinedlr import read_record
from refinedlr.pytorch import GradNormRecorder, ScheduleLR

KINDS = ("l2", "l1", "update_l2", "update_l1")


def cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 8 * 8, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )  # fmt: skip


def run(out: Path, steps: int = 300, quiet: bool = False) -> dict[str, Any]:
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = cnn().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, fused=True)
    sched = ScheduleLR(opt, "linear", total_steps=steps, warmup=0.05)
    path = out / "cuda_norms.csv"
    rec = GradNormRecorder(path, kinds=KINDS, flush_every=50)
    rec.attach(opt)
    g = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(512, 3, 32, 32, device=dev, generator=g)
    w = torch.randn(3 * 32 * 32, 10, device=dev, generator=g)
    y = (x.flatten(1) @ w).argmax(1)

    def step(i: int) -> torch.Tensor:
        j = (i * 64) % 512
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x[j : j + 64]), y[j : j + 64])
        loss.backward()
        opt.step()
        return loss.detach()

    for i in range(5):  # warm-up (allocations, kernels), then the sync-free steps
        step(i)
        sched.step()
    torch.cuda.synchronize()
    losses = []
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(5, steps):
            losses.append(step(i))
            sched.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    rec.close()
    record = read_record(path)
    values = np.c_[[record.values[k] for k in KINDS]].T
    first, last = float(losses[0]), float(torch.stack(losses[-20:]).mean())
    # overhead: one step with the recorder attached, one without, alternating
    timing = GradNormRecorder(kinds=KINDS, flush_every=50)
    ratios = []
    for i in range(60):
        on = i % 2 == 0
        if on:
            timing.attach(opt)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(i)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if on:
            timing.detach()
            t_on = dt
        else:
            ratios.append(t_on / dt)
    timing.close()
    summary = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "rows": len(record),
        "finite": bool(np.isfinite(values).all()),
        "loss_first": first,
        "loss_last": last,
        "last_lr": sched.get_last_lr()[0],
        "overhead_ratio": statistics.median(ratios),
    }
    if not quiet:
        print(
            f"CUDA training run on {summary['device']} (torch {summary['torch']}): {steps} steps "
            f"of a CNN, bf16 autocast, fused AdamW, ScheduleLR linear; the recorder wrote "
            f"{summary['rows']} rows of {', '.join(KINDS)} (all finite: {summary['finite']}); "
            f"no host sync in {steps - 5} steps (sync debug mode 'error'); loss {first:.3f} -> "
            f"{last:.3f}; step time with / without the recorder: median ratio "
            f"{summary['overhead_ratio']:.3f} (30 alternating pairs)"
        )
    return summary


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("out", nargs="?", default=None)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU (torch.cuda.is_available() is False): nothing to check")
        return 2
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp), args.steps)
    else:
        run(Path(args.out), args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
