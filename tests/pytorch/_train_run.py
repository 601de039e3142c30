"""Helper script for the subprocess tests: a small deterministic training run.

It trains a tiny MLP with AdamW (two parameter groups with their own learning rates) under a
``ScheduleLR`` and records gradient norms with a ``GradNormRecorder``. Batches depend only on the
step, so an interrupted-and-resumed run sees the same data as an uninterrupted one. It logs, per
step, the learning rates in use (``get_last_lr()`` before ``optimizer.step()``) to a JSON file.

Usage (see tests/pytorch/test_torch_resume.py)::

    python _train_run.py --out DIR --steps 30 --ckpt-at 20 --record DIR/norms.csv
    python _train_run.py --out DIR --steps 30 --resume DIR/ckpt.pt --record DIR/norms.csv
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from refinedlr.pytorch import GradNormRecorder, ScheduleLR

TOTAL_STEPS = 40  # the schedule's horizon


def build_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(32, 8, generator=g)
    y = torch.randn(32, 1, generator=g)
    return x, y


def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    return torch.optim.AdamW([{"params": weights, "lr": 0.01}, {"params": biases, "lr": 0.003}])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, required=True, help="run until this step (exclusive)")
    ap.add_argument("--ckpt-at", type=int, default=None)
    ap.add_argument("--resume", default=None)
    ap.add_argument("--record", default=None)
    ap.add_argument("--kinds", default="l2,l1")
    ap.add_argument("--flush-every", type=int, default=7)
    ap.add_argument("--schedule", default="cosine")
    ap.add_argument("--print-steps", action="store_true", help="print each finished step")
    ap.add_argument("--no-close", action="store_true", help="exit without closing the recorder")
    ap.add_argument("--log", default="log")
    args = ap.parse_args(argv)
    out = Path(args.out)
    torch.set_num_threads(1)

    model = build_model()
    opt = make_optimizer(model)
    sched = ScheduleLR(opt, args.schedule, total_steps=TOTAL_STEPS, warmup=0.1)
    rec = GradNormRecorder(
        args.record, kinds=tuple(args.kinds.split(",")), flush_every=args.flush_every
    )
    start = 0
    if args.resume:
        ckpt = torch.load(args.resume, weights_only=True)  # plain types and tensors only
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        rec.load_state_dict(ckpt["recorder"])
        start = ckpt["step"]
        assert rec.step == start and sched.last_epoch == start
    lrs: dict[int, list[float]] = {}
    for step in range(start, args.steps):
        lrs[step] = [float(lr) for lr in sched.get_last_lr()]
        x, y = batch(step)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        rec.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        sched.step()
        if args.ckpt_at is not None and step + 1 == args.ckpt_at:
            ckpt = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "recorder": rec.state_dict(),
                "step": step + 1,
            }
            torch.save(ckpt, out / "ckpt.pt")
        if args.print_steps:
            print(step, flush=True)
    (out / f"{args.log}.json").write_text(json.dumps({str(k): v for k, v in lrs.items()}))
    if args.no_close:
        sys.stdout.flush()
        return 0  # the recorder is flushed by its atexit handler
    rec.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
