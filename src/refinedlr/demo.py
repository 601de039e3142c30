"""``refinedlr demo``: the whole workflow on data that ships with scikit-learn (needs torch).

1. Train a small CNN on scikit-learn's 8x8 digits with SGD (momentum 0.9) and **linear decay**
   over an LR sweep, recording the l2 gradient norm of every optimizer step with
   :class:`refinedlr.pytorch.GradNormRecorder`.
2. **Refine** (Algorithm 1, l2 norms, tau 0.1) from the per-step norms of the best linear run
   (the median over its seeds), and retrain with the refined schedule over its own LR sweep.
3. Baselines over the same sweep: **cosine** with a 5% warm-up and **step-wise** (x0.1 at 50% and
   75%).

Every schedule runs through :class:`refinedlr.pytorch.ScheduleLR`; each is reported at the LR
with the lowest mean final training loss (full training set, eval mode), with its test accuracy.
Writes ``results.csv`` (every run), ``table.md`` and ``norms_and_schedules.png`` to ``--out``.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .pytorch import GradNormRecorder, ScheduleLR
from .refinement import refine_details
from .registry import get_schedule
from .risk import refinement_risk
from .schedules import Schedule
from .summary import summarize

__all__ = ["DemoConfig", "run_demo"]


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo (defaults finish in about 1-2 minutes on 2 CPU cores)."""

    epochs: int = 10
    seeds: int = 3
    batch_size: int = 32
    lrs: tuple[float, ...] = (0.0125, 0.025, 0.05, 0.1, 0.2)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    tau: float = 0.1
    warmup: float = 0.05
    test_fraction: float = 0.25


class SmallCNN(nn.Module):
    """Two 3x3 conv layers (16, 32 channels, batch norm), 2x2 max-pool, a 64-unit hidden layer."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """scikit-learn's digits as (X_train, y_train, X_test, y_test), a fixed stratified split,
    pixels scaled to [0, 1] then standardised with the training mean and std."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32) / 16.0
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    mean, std = Xtr.mean(), Xtr.std()
    Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).reshape(-1, 1, 8, 8)

    return t(Xtr), torch.from_numpy(ytr), t(Xte), torch.from_numpy(yte)


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Data augmentation: translate the batch by up to one pixel in each direction."""
    dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


@dataclasses.dataclass
class Run:
    schedule: str
    lr: float
    seed: int
    train_loss: float
    test_acc: float
    seconds: float
    norms: np.ndarray | None = None


def train_one(
    schedule: Schedule,
    lr: float,
    seed: int,
    data: Sequence[torch.Tensor],
    cfg: DemoConfig,
    record_path: Path | None = None,
) -> Run:
    """One training run; the l2 gradient norm of every step is recorded when ``record_path``.

    Mini-batches are drawn without replacement each epoch in an order fixed by ``seed`` and
    shifted by up to one pixel (a light augmentation, so the tiny training set is not simply
    memorised and the gradient norms do not collapse).
    """
    Xtr, ytr, Xte, yte = data
    torch.manual_seed(seed)
    model = SmallCNN()
    opt = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    sched = ScheduleLR(opt, schedule)
    recorder = None
    if record_path is not None:
        recorder = GradNormRecorder(record_path, kinds=("l2",), flush_every=200)
        recorder.attach(opt)
    gen = torch.Generator().manual_seed(1000 + seed)  # the data order depends on the seed only
    n = Xtr.shape[0]
    steps_per_epoch = n // cfg.batch_size
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(_shift(Xtr[idx], gen)), ytr[idx])
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - start
    norms = None
    if recorder is not None:
        recorder.close()
        norms = recorder.to_record().norms("l2")
    model.eval()
    with torch.no_grad():
        train_loss = float(loss_fn(model(Xtr), ytr))
        test_acc = float((model(Xte).argmax(1) == yte).float().mean())
    if not math.isfinite(train_loss):
        train_loss = float("inf")
    return Run(
        schedule="",
        lr=lr,
        seed=seed,
        train_loss=train_loss,
        test_acc=test_acc,
        seconds=seconds,
        norms=norms,
    )


def _progress(total: int, enabled: bool) -> Any:
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, unit="run", dynamic_ncols=True, file=sys.stderr)
        except ImportError:
            pass

    class _Silent:
        def update(self, n: int = 1) -> None:
            pass

        def set_description(self, s: str) -> None:
            pass

        def close(self) -> None:
            pass

    return _Silent()


_DATA: tuple[torch.Tensor, ...] | None = None


def _worker_init() -> None:
    torch.set_num_threads(1)


def _task(
    name: str, schedule: Schedule, lr: float, seed: int, cfg: DemoConfig, path: Path | None
) -> Run:
    """One run in a worker process (the data are loaded once per process)."""
    global _DATA
    if _DATA is None:
        _DATA = load_digits_split(cfg.test_fraction)
    run = train_one(schedule, lr, seed, _DATA, cfg, path)
    run.schedule = name
    return run


def _sweep(
    sweeps: Sequence[tuple[str, Schedule]],
    cfg: DemoConfig,
    pool: Any,
    bar: Any,
    record_dir: Path | None = None,
) -> list[Run]:
    """Every (schedule, LR, seed) of ``sweeps``, spread over the worker processes."""
    futures = []
    for name, schedule in sweeps:
        for lr in cfg.lrs:
            for seed in range(cfg.seeds):
                path = None
                if record_dir is not None:
                    path = record_dir / f"{name}_lr{lr:g}_seed{seed}.csv"
                    path.unlink(missing_ok=True)
                futures.append(pool.submit(_task, name, schedule, lr, seed, cfg, path))
    runs = []
    for fut in as_completed(futures):
        run = fut.result()
        bar.set_description(f"{run.schedule:>8s} lr={run.lr:g} seed={run.seed}")
        bar.update(1)
        runs.append(run)
    runs.sort(key=lambda r: (r.schedule, r.lr, r.seed))
    return runs


def _best_lr(runs: Iterable[Run]) -> float:
    by_lr: dict[float, list[float]] = {}
    for r in runs:
        by_lr.setdefault(r.lr, []).append(r.train_loss)
    return min(by_lr, key=lambda lr: float(np.mean(by_lr[lr])))


def _mean_sd(x: Sequence[float]) -> str:
    a = np.asarray(x, dtype=np.float64)
    if a.size < 2:
        return f"{a.mean():.4f}"
    return f"{a.mean():.4f} ± {float(a.std(ddof=1)):.4f}"


def run_demo(
    out: str | os.PathLike[str] = "refinedlr-demo",
    *,
    seeds: int | None = None,
    epochs: int | None = None,
    quick: bool = False,
    progress: bool = True,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run the demo; returns the summary table rows (and writes files to ``out``)."""
    cfg = DemoConfig()
    if quick:
        cfg = dataclasses.replace(cfg, epochs=2, seeds=1, lrs=(0.05, 0.1))
    if seeds is not None:
        cfg = dataclasses.replace(cfg, seeds=seeds)
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    if cfg.seeds < 1 or cfg.epochs < 1:
        raise ValueError("seeds and epochs must be at least 1")
    workers = max(1, min(workers or (os.cpu_count() or 1), 8))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    record_dir = out_dir / "records"
    record_dir.mkdir(exist_ok=True)
    data = load_digits_split(cfg.test_fraction)
    n_train = data[0].shape[0]
    T = cfg.epochs * (n_train // cfg.batch_size)
    print(
        f"refinedlr demo: small CNN on scikit-learn digits ({n_train} train / {data[2].shape[0]} "
        f"test images), SGD momentum {cfg.momentum}, batch {cfg.batch_size}, {cfg.epochs} epochs "
        f"= {T} steps; LRs {list(cfg.lrs)}; {cfg.seeds} seed(s)",
        flush=True,
    )
    started = time.perf_counter()
    bar = _progress(4 * len(cfg.lrs) * cfg.seeds, progress)
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init
    )

    # phase 1: linear decay, recording gradient norms
    linear = get_schedule("linear", T)
    runs = _sweep([("linear", linear)], cfg, pool, bar, record_dir)
    best_linear = _best_lr(runs)
    norms = np.stack([r.norms for r in runs if r.lr == best_linear and r.norms is not None])
    record = np.median(norms, axis=0)

    # phase 2: refine from the best linear run and retrain; baselines
    details = refine_details(record, tau=cfg.tau, norm="l2")
    refined = details.schedule
    schedules: dict[str, Schedule] = {
        "refined": refined,
        "cosine": get_schedule("cosine", T, warmup=cfg.warmup),
        "step": get_schedule("step", T, milestones=(0.5, 0.75), factor=0.1),
    }
    runs += _sweep(list(schedules.items()), cfg, pool, bar)
    pool.shutdown()
    bar.close()
    wall = time.perf_counter() - started

    # results
    with open(out_dir / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["schedule", "lr", "seed", "final_train_loss", "test_accuracy", "seconds"])
        for r in runs:
            w.writerow(
                [
                    r.schedule,
                    r.lr,
                    r.seed,
                    f"{r.train_loss:.6g}",
                    f"{r.test_acc:.4f}",
                    f"{r.seconds:.2f}",
                ]
            )
    rows: dict[str, Any] = {}
    for name in ["linear", *schedules]:
        sr = [r for r in runs if r.schedule == name]
        lr = _best_lr(sr)
        best = [r for r in sr if r.lr == lr]
        edge = " (grid edge)" if lr in (min(cfg.lrs), max(cfg.lrs)) else ""
        rows[name] = {
            "lr": lr,
            "edge": edge,
            "train_loss": [r.train_loss for r in best],
            "test_acc": [r.test_acc for r in best],
        }
    summ = summarize(refined, details.norms, name="refined")
    lines = [
        "# refinedlr demo",
        "",
        f"Small CNN on scikit-learn digits, SGD (momentum {cfg.momentum}, weight decay "
        f"{cfg.weight_decay}), batch {cfg.batch_size}, {cfg.epochs} epochs = {T} steps, "
        f"{cfg.seeds} seed(s), LR sweep {list(cfg.lrs)}; each schedule at the LR with the lowest "
        "mean final training loss. Mean ± sd over seeds.",
        "",
        "| schedule | best LR | final train loss | test accuracy |",
        "|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['lr']:g}{row['edge']} | {_mean_sd(row['train_loss'])} | "
            f"{_mean_sd(row['test_acc'])} |"
        )
    ratio = float(np.mean(rows["refined"]["train_loss"]) / np.mean(rows["linear"]["train_loss"]))
    lines += [
        "",
        f"Refined from the best linear run (LR {best_linear:g}, median norms over its seeds), "
        f"tau {cfg.tau}, l2: peak at step {summ.peak_step} ({summ.peak_fraction:.0%}), implied "
        f"warm-up {summ.warmup_steps} steps, {summ.above_half_fraction:.0%} of steps above half "
        f"the peak; last-iterate bound {summ.bound_ratio_to_linear:.3f}x linear decay's on these "
        f"norms.",
        f"Final train loss, refined / linear: {ratio:.3f} "
        f"({'refined better' if ratio < 1 else 'linear better'}).",
        *(
            [f"Warning from `refinedlr show` on this record: {risk.message()}."]
            if (risk := refinement_risk(record, norm="l2")) is not None
            else []
        ),
        "",
        f"Wall time {wall:.0f} s on {platform.machine()} with {workers} worker process(es) of one "
        f"torch thread each; command: `refinedlr demo --seeds {cfg.seeds} --epochs {cfg.epochs}"
        f"{' --quick' if quick else ''}`.",
    ]
    table = "\n".join(lines) + "\n"
    (out_dir / "table.md").write_text(table)
    try:
        from .plot import plot_norms_and_schedules

        plot_norms_and_schedules(
            {
                f"raw l2 norm (linear, lr {best_linear:g})": details.norms,
                f"smoothed (tau {cfg.tau})": details.smoothed,
            },
            {"linear": linear, **schedules},
            path=out_dir / "norms_and_schedules.png",
            title="refinedlr demo: digits CNN, SGD",
        )
        plot_note = f"wrote {out_dir / 'norms_and_schedules.png'}"
    except ImportError:
        plot_note = "matplotlib not installed: no plot (pip install 'refinedlr[plot]')"
    print()
    print(table)
    print(f"wrote {out_dir / 'results.csv'}, {out_dir / 'table.md'}; {plot_note}")
    return rows
