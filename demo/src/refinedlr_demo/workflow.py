"""``refinedlr demo``: the recommended workflow end to end, on scikit-learn's 8x8 digits, per
optimizer arm: run 1 and its refinement (:func:`refine_run1`), run 2 and the decision
(:func:`verify_run2`), the planning step (:func:`plan_run1`). ``docs/getting-started/demo.md``
describes each step and the output.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
import torch
from refinedlr.plan import transfer_lr
from refinedlr.pytorch import GradNormRecorder, ScheduleLR
from refinedlr.records import GradNormRecord, RecordWriter
from refinedlr.refinement import Refinement, refine_details
from refinedlr.registry import get_schedule
from refinedlr.risk import RefinementRisk, refinement_risk
from refinedlr.schedule_io import save_schedule
from refinedlr.schedules import Schedule
from refinedlr.summary import summarize
from refinedlr.verify import Verification, verify_refinement
from torch import nn


@dataclasses.dataclass(frozen=True)
class Arm:
    """One optimizer of the demo and how its runs are refined and checked."""

    name: str
    optimizer: str  # "sgd" or "adamw"
    lrs: tuple[float, ...]
    norm: str  # the refinement's norm: "l2" (Algorithm 1) or "l1" (Algorithm 2)
    check_kind: str  # the record column of the bound check
    weight_decay: float

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.norm, self.check_kind)))

    def make_optimizer(self, params: Iterable[torch.Tensor], lr: float) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=lr, weight_decay=self.weight_decay)


SGD = Arm("SGD", "sgd", (0.00625, 0.0125, 0.025, 0.05, 0.1, 0.2), "l2", "l2", 5e-4)
ADAMW = Arm("AdamW", "adamw", (5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2), "l1", "update_l2", 1e-2)
ARMS: tuple[Arm, ...] = (SGD, ADAMW)

SCHEDULES = ("linear", "refined", "cosine", "step")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo (the defaults need 3 to 4 CPU-minutes: 168 short runs)."""

    epochs: int = 8
    seeds: int = 3
    batch_size: int = 32
    tau: float = 0.1
    test_fraction: float = 0.25
    val_fraction: float = 0.2
    arms: tuple[Arm, ...] = ARMS


class SmallCNN(nn.Sequential):
    """Two 3x3 conv layers (16, 32 channels, batch norm), 2x2 max-pool, a 64-unit hidden layer."""

    def __init__(self) -> None:
        conv = [nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()]
        conv += [nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2)]
        head = [nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10)]
        super().__init__(*conv, *head)


Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def load_digits_split(test_fraction: float = 0.25, val_fraction: float = 0.2) -> Data:
    """scikit-learn's digits as (X_train, y_train, X_val, y_val, X_test, y_test), in fixed
    stratified splits (``test_fraction`` of the images for testing, ``val_fraction`` of the rest
    for validation), standardised with the training images' mean and standard deviation."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32) / 16.0
    Xrest, Xte, yrest, yte = train_test_split(
        X, y, test_size=test_fraction, random_state=0, stratify=y
    )
    Xtr, Xva, ytr, yva = train_test_split(
        Xrest, yrest, test_size=val_fraction, random_state=1, stratify=yrest
    )
    mean, std = Xtr.mean(), Xtr.std()

    def split(a: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        a = np.ascontiguousarray((a - mean) / std, dtype=np.float32)
        return torch.from_numpy(a).reshape(-1, 1, 8, 8), torch.from_numpy(labels)

    return (*split(Xtr, ytr), *split(Xva, yva), *split(Xte, yte))


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Data augmentation: translate the batch by up to one pixel in each direction."""
    dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


@dataclasses.dataclass
class Run:
    """One training run's outcome."""

    arm: str
    schedule: str
    lr: float
    seed: int
    train_loss: float
    val_loss: float
    test_acc: float
    seconds: float
    record: GradNormRecord | None = None


def steps_per_run(data: Data, cfg: DemoConfig) -> int:
    """The horizon ``T``: optimizer steps of one run."""
    return cfg.epochs * (data[0].shape[0] // cfg.batch_size)


def train_one(
    arm: Arm,
    schedule: Schedule,
    lr: float,
    seed: int,
    data: Data,
    cfg: DemoConfig,
    record_path: Path | None = None,
) -> Run:
    """One training run; the arm's norm kinds are recorded every step when ``record_path``.
    Mini-batches are drawn without replacement in an order fixed by ``seed``, shifted by up to one
    pixel (so the tiny training set is not memorised and the gradient norms do not collapse)."""
    Xtr, ytr, Xva, yva, Xte, yte = data
    torch.manual_seed(seed)
    model = SmallCNN()
    opt = arm.make_optimizer(model.parameters(), lr)
    sched = ScheduleLR(opt, schedule)
    recorder = None
    if record_path is not None:
        recorder = GradNormRecorder(record_path, kinds=arm.kinds, flush_every=500)
        recorder.attach(opt)
    gen = torch.Generator().manual_seed(1000 + seed)  # the data order depends on the seed only
    n, batch = Xtr.shape[0], cfg.batch_size
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    for _ in range(schedule.total_steps // (n // batch)):  # epochs (2x for the plan)
        perm = torch.randperm(n, generator=gen)
        for i in range(n // batch):
            idx = perm[i * batch : (i + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(_shift(Xtr[idx], gen)), ytr[idx]).backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - start
    if recorder is not None:
        recorder.close()
    model.eval()
    with torch.no_grad():
        losses = [float(loss_fn(model(X), y)) for X, y in ((Xtr, ytr), (Xva, yva))]
        test_acc = float((model(Xte).argmax(1) == yte).float().mean())
    train_loss, val_loss = (x if math.isfinite(x) else math.inf for x in losses)
    record = None if recorder is None else recorder.to_record()
    return Run(arm.name, "", lr, seed, train_loss, val_loss, test_acc, seconds, record)


_DATA: Data | None = None


def _task(
    arm: Arm, name: str, schedule: Schedule, lr: float, seed: int, cfg: DemoConfig, path: Any
) -> Run:
    """One run in a worker process (the data are loaded once per process)."""
    global _DATA
    if _DATA is None:
        _DATA = load_digits_split(cfg.test_fraction, cfg.val_fraction)
    run = train_one(arm, schedule, lr, seed, _DATA, cfg, path)
    run.schedule = name
    return run


class _Progress:
    """One bar over every run, advanced as each run finishes (in whatever order they finish)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar: Any = None
        with contextlib.suppress(ImportError):  # (no tqdm: no bar)
            from tqdm.auto import tqdm

            if enabled:
                self.bar = tqdm(total=total, unit="run", dynamic_ncols=True, file=sys.stderr)

    def advance(self, run: Run) -> None:
        if self.bar is not None:
            self.bar.set_description(f"{run.arm:>5s} {run.schedule:>7s} lr={run.lr:g}")
            self.bar.update(1)


class _Runs:
    """Training runs in worker processes: submit a group (an arm's LR sweep of one schedule over
    its seeds), then wait for groups to finish; the progress bar counts finished runs."""

    def __init__(self, pool: ProcessPoolExecutor, cfg: DemoConfig, bar: _Progress) -> None:
        self.pool, self.cfg, self.bar = pool, cfg, bar
        self.pending: dict[Future[Run], tuple[str, str]] = {}
        self.done: dict[tuple[str, str], list[Run]] = {}

    def submit(
        self,
        arm: Arm,
        name: str,
        schedule: Schedule,
        record_dir: Path | None,
        lrs: Sequence[float] | None = None,
    ) -> None:
        key, lrs = (arm.name, name), arm.lrs if lrs is None else lrs
        self.done[key] = []
        for lr, seed in itertools.product(lrs, range(self.cfg.seeds)):
            path = None
            if record_dir is not None:
                path = record_dir / f"{arm.name.lower()}_{name}_lr{lr:g}_seed{seed}.csv"
                path.unlink(missing_ok=True)
            fut = self.pool.submit(_task, arm, name, schedule, lr, seed, self.cfg, path)
            self.pending[fut] = key

    def finished_groups(self) -> list[tuple[str, str]]:
        """Wait for at least one run; return the groups whose last run just finished."""
        done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
        groups = []
        for fut in done:
            key = self.pending.pop(fut)
            self.done[key].append(fut.result())
            self.bar.advance(self.done[key][-1])
            if key not in self.pending.values():
                groups.append(key)
        return groups

    def group(self, arm: Arm, name: str) -> list[Run]:
        return sorted(self.done[(arm.name, name)], key=lambda r: (r.lr, r.seed))


def _by_lr(runs: Iterable[Run]) -> dict[float, list[float]]:
    """The validation losses of ``runs`` by LR, in increasing LR."""
    out: dict[float, list[float]] = {}
    for r in runs:
        out.setdefault(r.lr, []).append(r.val_loss)
    return dict(sorted(out.items()))


def _best_lr(by_lr: dict[float, list[float]]) -> float:
    """The LR of the lowest mean validation loss."""
    return min(by_lr, key=lambda lr: float(np.mean(by_lr[lr])))


def _median_record(runs: Sequence[Run], kinds: Sequence[str], source: str) -> GradNormRecord:
    """The element-wise median over seeds of the runs' records (one record of the best LR)."""
    records = [r.record for r in runs if r.record is not None]
    values = {k: np.median(np.stack([rec.norms(k) for rec in records]), axis=0) for k in kinds}
    return GradNormRecord.from_arrays(values, source=source)


def _write_record(record: GradNormRecord, path: Path) -> None:
    path.unlink(missing_ok=True)
    with RecordWriter(path, kinds=record.kinds) as w:
        w.write(record.steps, np.stack([record.values[k] for k in record.kinds], axis=1))


def _sd(x: Sequence[float]) -> float | None:
    return float(np.std(x, ddof=1)) if len(x) > 1 else None


def _mean_sd(x: Sequence[float]) -> str:
    sd = _sd(x)
    return f"{np.mean(x):.4f}" + ("" if sd is None else f" ± {sd:.4f}")


@dataclasses.dataclass
class FirstRun:
    """Steps 1 to 3 for one arm: run 1 (linear decay at its best LR), its refinement and risk."""

    lr: float
    record: GradNormRecord
    refinement: Refinement
    risk: RefinementRisk | None


def refine_run1(arm: Arm, cfg: DemoConfig, linear_runs: Sequence[Run]) -> FirstRun:
    """Refine the median record over seeds of linear decay's best LR, and diagnose the risk."""
    lr = _best_lr(_by_lr(linear_runs))
    best = [r for r in linear_runs if r.lr == lr]
    record = _median_record(best, arm.kinds, f"{arm.name} run 1 (linear)")
    details = refine_details(record, tau=cfg.tau, norm=arm.norm)  # type: ignore[arg-type]
    return FirstRun(lr, record, details, refinement_risk(record.norms(arm.norm), norm=arm.norm))


#: The demo's planning step: a schedule planned from run 1's tuned LR (name -> horizon factor, the
#: LR multiples of its short check sweep). Cosine's check is its own full sweep, among the baselines.
PLANS = {"cosine": (1, (1.0,)), "linear 2x": (2, (2**-0.5, 1.0, 2**0.5))}


@dataclasses.dataclass
class PlanCheck:
    """One planned schedule: its LR from run 1's (:func:`refinedlr.plan.transfer_lr`, constant
    norms), and the validation losses of its check sweep."""

    name: str
    schedule: Schedule
    planned_lr: float
    runs: list[Run] = dataclasses.field(default_factory=list)


def plan_run1(arm: Arm, lr: float, T: int) -> list[PlanCheck]:
    """Step 7: plan cosine at the same horizon and linear decay at twice the horizon from run 1's
    tuned LR, without a sweep (their check sweeps then run)."""
    linear = get_schedule("linear", T)
    out = []
    for name, (factor, _) in PLANS.items():
        target = get_schedule(name.split()[0], factor * T)
        out.append(PlanCheck(name, target, transfer_lr(lr, linear, target)))
    return out


@dataclasses.dataclass
class ArmOutcome:
    """What the demo found for one optimizer."""

    arm: Arm
    refinement: Refinement
    verification: Verification
    best: dict[str, float]  # schedule -> chosen LR
    runs: list[Run]
    risk_message: str | None
    verify_command: str
    plans: list[PlanCheck] = dataclasses.field(default_factory=list)

    def rows(self, name: str) -> list[Run]:
        return [r for r in self.rows_of(name) if r.lr == self.best[name]]

    def rows_of(self, name: str) -> list[Run]:
        return [r for r in self.runs if r.schedule == name]


def verify_run2(arm: Arm, first: FirstRun, runs: list[Run], out_dir: Path) -> ArmOutcome:
    """Steps 5 and 6: verify run 2 against run 1 with the decision rule; write both records, the
    refined and the chosen schedule; the ``refinedlr verify`` command that reproduces it."""
    best = {name: _best_lr(_by_lr(r for r in runs if r.schedule == name)) for name in SCHEDULES}
    rows = {n: [r for r in runs if r.schedule == n and r.lr == best[n]] for n in SCHEDULES}
    run2 = _median_record(rows["refined"], arm.kinds, f"{arm.name} run 2 (refined)")
    val = {n: float(np.mean([r.val_loss for r in rows[n]])) for n in ("linear", "refined")}
    sds = [_sd([r.val_loss for r in rows[n]]) for n in ("linear", "refined")]
    spread = max(sds) if None not in sds else None  # type: ignore[type-var]
    schedule = first.refinement.schedule
    v = verify_refinement(
        schedule,
        run2,
        first.record,
        kind=arm.check_kind,
        source_metric=val["linear"],
        refined_metric=val["refined"],
        metric_spread=spread,
        adam_type=arm.norm == "l1",
    )
    base = out_dir / arm.name.lower()
    _write_record(first.record, Path(f"{base}_run1.csv"))
    _write_record(run2, Path(f"{base}_run2.csv"))
    save_schedule(schedule, f"{base}_refined.json")
    save_schedule(v.schedule, f"{base}_next.json")
    command = (
        f"refinedlr verify {base}_run1.csv {base}_run2.csv --schedule {base}_refined.json "
        f"--metric1 {val['linear']:.17g} --metric2 {val['refined']:.17g}"
        + (f" --metric-spread {spread:.17g}" if spread is not None else "")
        + f" -o {base}_next.json"
    )
    risk = first.risk.message() if first.risk is not None else None
    return ArmOutcome(arm, first.refinement, v, best, runs, risk, command)


def configure(
    quick: bool, seeds: int | None, epochs: int | None, arms: Sequence[str] | None
) -> DemoConfig:
    """The demo's sizes from its command-line options; ``ValueError`` names what is wrong."""
    cfg = DemoConfig()
    if quick:
        tiny = tuple(dataclasses.replace(a, lrs=a.lrs[1:3]) for a in cfg.arms)
        cfg = dataclasses.replace(cfg, epochs=1, seeds=1, arms=tiny)
    given: dict[str, Any] = {"seeds": seeds, "epochs": epochs}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in given.items() if v is not None})
    if arms is not None:
        wanted = {a.lower() for a in arms}
        cfg = dataclasses.replace(cfg, arms=tuple(a for a in cfg.arms if a.name.lower() in wanted))
    if cfg.seeds < 1 or cfg.epochs < 1 or not cfg.arms:
        names = " ".join(a.name for a in ARMS)
        raise ValueError(
            f"--seeds and --epochs must be at least 1, and --arms must name one of {names}"
        )
    return cfg


def run_demo(
    out: str | os.PathLike[str] = "refinedlr-demo",
    *,
    seeds: int | None = None,
    epochs: int | None = None,
    quick: bool = False,
    progress: bool = True,
    workers: int | None = None,
    arms: Sequence[str] | None = None,
) -> list[ArmOutcome]:
    """Run the demo, print its table and decision, write its files; returns one outcome per arm.
    Each step starts once its inputs are ready (run 2 and the planned runs after run 1)."""
    cfg = configure(quick, seeds, epochs, arms)
    workers = max(1, min(workers or (os.cpu_count() or 1), 8))
    out_dir = Path(out)
    record_dir = out_dir / "records"
    record_dir.mkdir(parents=True, exist_ok=True)
    data = load_digits_split(cfg.test_fraction, cfg.val_fraction)
    T = steps_per_run(data, cfg)
    print(
        f"refinedlr demo: small CNN on scikit-learn digits ({data[0].shape[0]} training, "
        f"{data[2].shape[0]} validation, {data[4].shape[0]} test images), batch "
        f"{cfg.batch_size}, {cfg.epochs} epochs = {T} steps, {cfg.seeds} seed(s); arms: "
        + "; ".join(f"{a.name} LRs {list(a.lrs)}" for a in cfg.arms),
        flush=True,
    )
    started = time.perf_counter()
    checks = sum(len(m) for _, m in PLANS.values())
    bar = _Progress(
        sum(len(a.lrs) * len(SCHEDULES) + checks for a in cfg.arms) * cfg.seeds, progress
    )
    fixed = {
        "linear": get_schedule("linear", T),
        "cosine": get_schedule("cosine", T),
        "step": get_schedule("step", T, milestones=(0.5, 0.75), factor=0.1),
    }
    first: dict[str, FirstRun] = {}
    plans: dict[str, list[PlanCheck]] = {}
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=torch.set_num_threads,
        initargs=(1,),
    ) as pool:
        runs = _Runs(pool, cfg, bar)
        for arm in cfg.arms:
            runs.submit(arm, "linear", fixed["linear"], record_dir)
        for arm, name in itertools.product(cfg.arms, ("cosine", "step")):
            runs.submit(arm, name, fixed[name], None)
        by_name = {a.name: a for a in cfg.arms}
        while runs.pending:
            for arm_name, name in runs.finished_groups():
                if name == "linear":
                    arm = by_name[arm_name]
                    first[arm_name] = refine_run1(arm, cfg, runs.group(arm, "linear"))
                    runs.submit(arm, "refined", first[arm_name].refinement.schedule, record_dir)
                    plans[arm_name] = plan_run1(arm, first[arm_name].lr, T)
                    for p in plans[arm_name]:
                        lrs = [p.planned_lr * m for m in PLANS[p.name][1]]
                        runs.submit(arm, f"{p.name} (plan)", p.schedule, None, lrs)
    if bar.bar is not None:
        bar.bar.close()
    outcomes = []
    for arm in cfg.arms:
        o = verify_run2(
            arm, first[arm.name], [r for n in SCHEDULES for r in runs.group(arm, n)], out_dir
        )
        for p in plans[arm.name]:
            p.runs = runs.group(arm, f"{p.name} (plan)")
        outcomes.append(dataclasses.replace(o, plans=plans[arm.name]))
    wall = time.perf_counter() - started
    _write_results(
        out_dir / "results.csv",
        [r for o in outcomes for r in (*o.runs, *(r for p in o.plans for r in p.runs))],
    )
    table = _report(outcomes, cfg, T, wall, workers, quick)
    (out_dir / "table.md").write_text(table, encoding="utf-8")
    plot_note = _plots(outcomes, out_dir, fixed)
    print()
    print(table)
    print(f"wrote {out_dir / 'results.csv'}, {out_dir / 'table.md'}; {plot_note}")
    return outcomes


def _write_results(path: Path, runs: Sequence[Run]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow("arm schedule lr seed final_train_loss val_loss test_accuracy seconds".split())
        for r in sorted(runs, key=lambda r: (r.arm, r.schedule, r.lr, r.seed)):
            w.writerow(
                [
                    r.arm,
                    r.schedule,
                    r.lr,
                    r.seed,
                    f"{r.train_loss:.6g}",
                    f"{r.val_loss:.6g}",
                    f"{r.test_acc:.4f}",
                    f"{r.seconds:.2f}",
                ]
            )


def _report(
    outcomes: Sequence[ArmOutcome], cfg: DemoConfig, T: int, wall: float, workers: int, quick: bool
) -> str:
    lines = [
        "# refinedlr demo: refine, then verify\n",
        f"Small CNN on scikit-learn digits, batch {cfg.batch_size}, {cfg.epochs} epochs = {T} "
        f"steps, {cfg.seeds} seed(s). Every schedule at the LR of its sweep with the lowest mean "
        "validation loss; linear, cosine and step without warm-up (the refined schedule grows "
        "its own). Mean ± sd over seeds; the test images were used by no choice.",
    ]
    for o in outcomes:
        lines += _arm_report(o, cfg)
    lines.append(
        f"\nWall time {wall:.0f} s on {platform.machine()} with {workers} worker process(es) of one "
        f"torch thread each; command: `refinedlr demo --seeds {cfg.seeds} --epochs {cfg.epochs}"
        f"{' --quick' if quick else ''}`."
    )
    return "\n".join(lines) + "\n"


#: One line on what the bound check's records hold, per check kind.
_CHECK_NORMS = {
    "l2": "the l2 norm of the gradient, the step direction of SGD",
    "update_l2": "the l2 norm of AdamW's update direction m_hat / (sqrt(v_hat) + eps), the step "
    "it takes before the learning rate scales it (in the refinement study, the gradient's norms "
    "did not predict the outcome for Adam)",
}


def _arm_report(o: ArmOutcome, cfg: DemoConfig) -> list[str]:
    """One arm's section: the refinement, the risk, the verification and decision, the table."""
    v, arm, d = o.verification, o.arm, o.refinement
    summ = summarize(d.schedule, d.norms, name="refined")
    algo = "Algorithm 1, for SGD" if arm.norm == "l2" else "Algorithm 2, for Adam-type optimizers"
    lines = [
        f"\n## {arm.name}\n",
        f"Run 1: linear decay at its best LR, {o.best['linear']:g}; its record is the median over "
        f"seeds. Refined with tau {cfg.tau} from the {arm.norm} gradient norms ({algo}): the refined "
        f"schedule {summ.shape()}.\n",
        f"Risk diagnosis: {o.risk_message}."
        if o.risk_message
        else "Risk diagnosis: the norms do not decline late; no warning.",
        "\nVerification (run 2 = the refined schedule at its re-tuned LR; the bound check's norms: "
        f"{_CHECK_NORMS.get(arm.check_kind, arm.check_kind)}):\n",
        *[f"- {line}" for line in v.reasons()],
        f"- **decision: {v.decision()}**",
        f"- the same from the command line: `{o.verify_command}`\n",
        "| schedule | best LR | final train loss | validation loss | test accuracy |",
        "|---|---|---|---|---|",
    ]
    chosen = "refined" if v.kept else "linear"
    for i, name in enumerate((*SCHEDULES, chosen)):
        rows = o.rows(name)
        label = name if i < len(SCHEDULES) else f"**verified** (= {name})"
        edge = " (grid edge)" if o.best[name] in (min(arm.lrs), max(arm.lrs)) else ""
        lines.append(
            f"| {label} | {o.best[name]:g}{edge} | {_mean_sd([r.train_loss for r in rows])} | "
            f"{_mean_sd([r.val_loss for r in rows])} | {_mean_sd([r.test_acc for r in rows])} |"
        )
    lines += _plan_report(o)
    acc = {n: [r.test_acc for r in o.rows(n)] for n in ("linear", "refined")}
    gap = float(np.mean(acc["refined"]) - np.mean(acc["linear"]))
    sds = [x for x in (_sd(acc["linear"]), _sd(acc["refined"])) if x is not None]
    agrees = "agrees with" if (gap > 0) == v.kept or gap == 0 else "goes against"
    verdict = f"one seed, no spread: it {agrees} the decision"
    if sds and abs(gap) <= max(sds):
        verdict = f"within the seed spread (sd up to {max(sds):.4f}): no evidence either way"
    elif sds:
        verdict = f"beyond the seed spread (sd up to {max(sds):.4f}): it {agrees} the decision"
    lines.append(
        f"\nTest accuracy, on images no choice looked at: refined minus linear decay {gap:+.4f}, "
        f"{verdict}."
    )
    return lines


def _plan_sweep(o: ArmOutcome, p: PlanCheck) -> dict[float, list[float]]:
    return _by_lr(p.runs if p.name != "cosine" else [*p.runs, *o.rows_of("cosine")])


def _plan_report(o: ArmOutcome) -> list[str]:
    """The planning step: each planned LR beside its check sweep (cosine: its full sweep)."""
    lines = [
        f"\nPlanning from run 1's tuned LR {o.best['linear']:g}, without a sweep "
        "(`refinedlr plan`, constant norms), then a check sweep:\n",
        "| planned schedule | planned LR | validation loss at the planned LR | check sweep: "
        "LR (validation loss) | its best LR |",
        "|---|---|---|---|---|",
    ]
    for p in o.plans:
        sweep = _plan_sweep(o, p)
        at_plan = [r.val_loss for r in p.runs if r.lr == p.planned_lr]
        cells = ", ".join(f"{lr:.3g} ({np.mean(v):.4f})" for lr, v in sweep.items())
        lines.append(
            f"| {p.name}, {p.schedule.total_steps} steps | {p.planned_lr:.3g} | "
            f"{_mean_sd(at_plan)} | {cells} | {_best_lr(sweep):.3g} |"
        )
    return lines


def _plots(outcomes: Sequence[ArmOutcome], out_dir: Path, fixed: dict[str, Schedule]) -> str:
    from refinedlr.plot import plot_lr_checks, plot_norms_and_schedules  # (they import matplotlib)

    written = []
    try:
        for o in outcomes:
            path = out_dir / f"{o.arm.name.lower()}_plan.png"
            checks = {
                f"{p.name}, {p.schedule.total_steps} steps": (
                    {lr: float(np.mean(v)) for lr, v in _plan_sweep(o, p).items()},
                    p.planned_lr,
                )
                for p in o.plans
            }
            plot_lr_checks(checks, path=path, title=f"refinedlr demo: planned LRs, {o.arm.name}")
            d, norms_path = o.refinement, out_dir / f"{o.arm.name.lower()}_norms_and_schedules.png"
            plot_norms_and_schedules(
                {
                    f"raw {o.arm.norm} norm (run 1, lr {o.best['linear']:g})": d.norms,
                    f"smoothed (tau {d.schedule.provenance['tau']})": d.smoothed,
                },
                {**fixed, "refined": d.schedule},
                path=norms_path,
                title=f"refinedlr demo: digits CNN, {o.arm.name}",
            )
            written += [str(path), str(norms_path)]
    except ImportError:
        return "matplotlib not installed: no plots (pip install 'refinedlr[plot]')"
    return "wrote " + ", ".join(written)
