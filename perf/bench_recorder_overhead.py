"""Overhead of GradNormRecorder on CPU training steps, plain and with the update-direction kinds.

Two small models on random data, batch 64, AdamW: an MLP (784-512-256-10) and a CNN (two 3x3
conv layers + two linear layers on 3x32x32 inputs). Five modes run one step each per round, in an
order that rotates every round, so changes in machine load hit all alike: no recorder ("off"), a
recorder of ``l2`` (the plain recorder), ``l2`` + ``l1``, ``l2`` + ``update_l2`` and all four kinds.
Each recorder is attached to the optimizer (one row per ``optimizer.step()``) and writes a CSV file
with the default ``flush_every=100`` and ``fsync`` (flushes fall inside the timed steps). The
ratios are medians of the per-round ratios (with their interquartile ranges): against "off", and
for the update kinds against the plain ``l2`` recorder. Last, ``grad_norms`` and ``update_norms``
are timed alone (median of 15 blocks of 20 calls) as a fraction of the median step time.

``--baseline DIR``: DIR is another version's ``src/refinedlr`` (e.g. ``git archive main
src/refinedlr | tar -x -C /tmp/base``, then ``--baseline /tmp/base/src/refinedlr``); its
``GradNormRecorder`` runs in the same rounds, as the modes ``base l2``, ``base l2+l1`` and
``base all four``, and each new mode is also given as a ratio to its baseline twin.

Run: .venv/bin/python perf/bench_recorder_overhead.py [--seconds 40] [--threads 1] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from refinedlr.pytorch import GradNormRecorder, grad_norms
from refinedlr.pytorch.updates import update_norms


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


def block(step: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def timed(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


MODES: dict[str, tuple[str, ...] | None] = {
    "off": None,
    "l2": ("l2",),
    "l2+l1": ("l2", "l1"),
    "l2+update_l2": ("l2", "update_l2"),
    "all four": ("l2", "l1", "update_l2", "update_l1"),
}
BASELINE = ("l2", "l2+l1", "all four")  # the modes also run with --baseline's recorder


def load_baseline(src: str) -> Any:
    """The ``GradNormRecorder`` of another copy of the package (imported as refinedlr_baseline)."""
    spec = importlib.util.spec_from_file_location(
        "refinedlr_baseline", Path(src) / "__init__.py", submodule_search_locations=[src]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["refinedlr_baseline"] = module
    spec.loader.exec_module(module)
    from refinedlr_baseline.pytorch import GradNormRecorder as Baseline  # type: ignore

    return Baseline


def bench(
    name: str, model: torch.nn.Module, x: torch.Tensor, args: argparse.Namespace, base: Any
) -> None:
    y = torch.randint(0, 10, (x.shape[0],))
    opt, step = trainer(model, x, y)
    n_params = sum(p.numel() for p in model.parameters())
    modes = dict(MODES)
    if base is not None:
        modes.update({f"base {m}": MODES[m] for m in BASELINE})
    with tempfile.TemporaryDirectory() as tmp:
        recs = {
            mode: (base if mode.startswith("base") else GradNormRecorder)(
                Path(tmp) / f"{i}.csv", kinds=kinds
            )
            for i, (mode, kinds) in enumerate(modes.items())
            if kinds is not None
        }
        t_step = block(step, args.warmup)
        rounds = args.pairs or max(20, round(args.seconds / (len(modes) * t_step)))
        times: dict[str, list[float]] = {m: [] for m in modes}
        order = list(modes)
        for i in range(rounds):
            # every mode once per round, in an order that rotates, so load changes hit all alike
            for mode in order[i % len(order) :] + order[: i % len(order)]:
                rec = recs.get(mode)
                if rec is not None:
                    rec.attach(opt)  # outside the timed region
                times[mode].append(timed(step))
                if rec is not None:
                    rec.detach()
        rows = {m: r.step for m, r in recs.items()}
        for r in recs.values():
            r.close()
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"{name} {n_params / 1e3:.1f}k params, AdamW, {rounds} rounds; median step time:")
    for mode in modes:
        line = f"  {mode:18s} {med[mode] * 1e3:7.3f} ms"
        if mode != "off":
            line += f"  vs off: {ratio_text(times[mode], times['off'])}"
        if mode in ("l2+update_l2", "all four"):
            line += f"  vs l2 recorder: {ratio_text(times[mode], times['l2'])}"
        if f"base {mode}" in modes:
            line += f"  vs baseline: {ratio_text(times[mode], times[f'base {mode}'])}"
        if mode != "off":
            line += f"  ({rows[mode]} rows)"
        print(line, flush=True)
    # the norms alone, timed on the last step's gradients and optimizer state
    params = list(model.parameters())
    alone = {
        "grad_norms l2": functools.partial(grad_norms, params, ("l2",)),
        "update_norms update_l2": functools.partial(update_norms, opt, ("update_l2",)),
    }
    for kinds in (("l2",), ("l2", "l1")) if base is not None else ():  # record() alone, paired
        new, old = (cls(None, kinds, close_at_exit=False) for cls in (GradNormRecorder, base))
        calls = [functools.partial(r.record, params) for r in (new, old)]
        pairs = [(block(calls[0], 20), block(calls[1], 20)) for _ in range(31)]
        ratios = [x / y for x, y in pairs]
        q = statistics.quantiles(ratios, n=4)
        print(
            f"  record({'+'.join(kinds)}) alone: new {statistics.median(p[0] for p in pairs) * 1e6:.1f}"
            f" us, baseline {statistics.median(p[1] for p in pairs) * 1e6:.1f} us, new/baseline"
            f" x{statistics.median(ratios):.3f} (IQR {q[0]:.3f}..{q[2]:.3f})"
        )
    for label, fn in alone.items():
        cost = statistics.median(block(fn, 20) for _ in range(15))
        print(
            f"  {label:24s} alone {cost * 1e6:6.0f} us = {100 * cost / med['off']:.2f}% of a step"
        )


def ratio_text(on: list[float], off: list[float]) -> str:
    """Median of the per-round ratios, with its interquartile range."""
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    q = statistics.quantiles(ratios, n=4)
    return f"x{statistics.median(ratios):.3f} (IQR {q[0]:.3f}..{q[2]:.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=0, help="rounds of all modes (0: ~--seconds)")
    ap.add_argument("--seconds", type=float, default=40.0, help="time per model")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--baseline", default=None, help="another version's src/refinedlr")
    args = ap.parse_args()
    base = None if args.baseline is None else load_baseline(args.baseline)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch}, "
        f"seed 0, command: {' '.join(sys.argv)}"
    )
    bench("MLP", mlp(), torch.randn(args.batch, 784), args, base)
    bench("CNN", cnn(), torch.randn(args.batch, 3, 32, 32), args, base)


if __name__ == "__main__":
    main()
