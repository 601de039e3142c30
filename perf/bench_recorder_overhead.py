"""Overhead of GradNormRecorder on CPU training steps (target: <= 3% of the step time).

Two small models on random data, batch 64, AdamW: an MLP (784-512-256-10) and a CNN (two 3x3
conv layers + two linear layers on 3x32x32 inputs). Steps with and without recording alternate
one by one, in pairs whose order flips every pair, so changes in machine load hit both sides
alike; the overhead is the ratio of the median step times (the median of the per-pair ratios and
its quartiles are printed too).

"with" = a recorder attached to the optimizer (one record per ``optimizer.step()``), writing a
CSV file with the default ``flush_every=100`` and ``fsync`` (flushes fall inside the timed steps).
Kinds: ``l2`` (default) and ``l2`` + ``l1``. A last figure times ``record()`` alone (median of 15
blocks of 20 calls) as a fraction of the median step time: the same cost, measured without the
noise of whole training steps.

Run: .venv/bin/python perf/bench_recorder_overhead.py [--seconds 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from refinedlr.pytorch import GradNormRecorder


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(784, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )


def cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 8 * 8, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )


def trainer(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.optim.Optimizer, Callable[[], None]]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return opt, step


def block(step: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def timed(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def bench(name: str, model: torch.nn.Module, x: torch.Tensor, args: argparse.Namespace) -> None:
    y = torch.randint(0, 10, (x.shape[0],))
    opt, step = trainer(model, x, y)
    n_params = sum(p.numel() for p in model.parameters())
    for kinds in (("l2",), ("l2", "l1")):
        with tempfile.TemporaryDirectory() as tmp:
            rec = GradNormRecorder(Path(tmp) / "norms.csv", kinds=kinds)
            t_step = block(step, args.warmup)
            pairs = args.pairs or max(20, round(args.seconds / (2 * t_step)))
            t_off, t_on, ratios = [], [], []
            for i in range(pairs):
                times = {}
                for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                    if mode == "on":
                        rec.attach(opt)  # outside the timed region
                    times[mode] = timed(step)
                    if mode == "on":
                        rec.detach()
                t_off.append(times["off"])
                t_on.append(times["on"])
                ratios.append(times["on"] / times["off"])
            rows = rec.step
            rec.close()
            # the recorder's own cost, timed alone on the last step's gradients
            params = list(model.parameters())
            probe = GradNormRecorder(kinds=kinds)
            one = functools.partial(probe.record, params)
            cost = statistics.median(block(one, 20) for _ in range(15))
            probe.close()
        off, on = statistics.median(t_off), statistics.median(t_on)
        q = statistics.quantiles(ratios, n=4)
        print(
            f"{name:4s} {n_params / 1e3:6.1f}k params  {'+'.join(kinds):5s}  "
            f"step {off * 1e3:6.2f} ms -> {on * 1e3:6.2f} ms: overhead {100 * (on / off - 1):+5.2f}%"
            f" (median paired ratio {100 * (statistics.median(ratios) - 1):+5.2f}%, IQR"
            f" {100 * (q[0] - 1):+.1f}%..{100 * (q[2] - 1):+.1f}%, {pairs} pairs, {rows} rows);"
            f" record() alone {cost * 1e6:4.0f} us = {100 * cost / off:.2f}%",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=0, help="(on, off) step pairs (0: ~--seconds)")
    ap.add_argument("--seconds", type=float, default=20.0, help="time per model and kinds")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch}")
    bench("MLP", mlp(), torch.randn(args.batch, 784), args)
    bench("CNN", cnn(), torch.randn(args.batch, 3, 32, 32), args)


if __name__ == "__main__":
    main()
