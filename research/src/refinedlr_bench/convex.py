"""The convex suite: the paper's logistic-regression study, measured carefully.

Protocol (arXiv 2310.07831, convex experiments, at this machine's scale):

* Multinomial logistic regression with biases on standardised tabular data, mini-batch 16, from
  zero weights; objective ``f`` = mean cross-entropy + ``(lam/2) ||W||^2`` on the weights (not the
  biases), ``lam = 1e-4`` by default, the same in training and in ``f*``. The penalty makes the
  optimum exist on separable data.
* Optimizers: Adam (betas 0.9, 0.95, eps 1e-8; refinement with l1 norms, Algorithm 2) and plain
  SGD (refinement with l2 norms, Algorithm 1).
* Epochs per dataset: ``min(100, max(3, step_budget // steps_per_epoch))`` (100 epochs where that
  fits in the step budget, fewer for the large datasets), the same for every schedule.
* Schedules: the arms of :mod:`refinedlr_bench.schedule_arms`: constant, 1/t, 1/sqrt t,
  step-wise, cosine, warmup-stable-decay, linear decay, cosine to 10%, WSD with a 1-sqrt
  cooldown, schedule-free Adam / SGD, and refinement (tau 0.1 and 0.5) from the mean norms of the
  best linear-decay run.
* Peak LR tuned per (dataset, optimizer, schedule) on the grid ``2^(k/2)``, chosen by the mean
  over seeds of the final objective; an edge optimum extends the grid (:mod:`.grid`).
* Metric: ``f(x_T) - f*`` in float64 (``f*``: L-BFGS + Newton, gradient norm < 1e-9) and held-out
  accuracy; statistics in :mod:`.stats`.

All runs of one dataset, round and batch group (every optimizer, schedule, LR and seed of the
arms in that group, :attr:`~refinedlr_bench.schedule_arms.ScheduleArm.batch`) train as one
batched tensor computation (:func:`refinedlr_bench.logreg.train_batched`). Results are cached per
configuration under ``OUT/cache`` (JSON, and ``.npy`` norms of the linear-decay runs), so an
interrupted run resumes where it stopped. The command line is :mod:`refinedlr_bench.commands.convex`.

Reproducibility: rerunning a command gives the same numbers bit for bit with the same CPU kernels
(:mod:`refinedlr_bench.cpu_kernels`, part of the cache key). A configuration trained in a batch of
other configurations (another ``--methods`` set, a study arm) can differ in float32 rounding.

Example (tiny; the real suite is ``refinedlr bench convex``)::

    run_suite(["iris"], ConvexProtocol(seeds=(0, 1), step_budget=200), out=Path("/tmp/convex"))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from refinedlr import Schedule
from refinedlr.bounds import BoundError, best_scale
from refinedlr.fileio import atomic_write

from refinedlr_bench.cpu_kernels import cpu_kernels
from refinedlr_bench.data import load_tabular
from refinedlr_bench.grid import LRGrid, lr_of
from refinedlr_bench.jsonio import json_float
from refinedlr_bench.logreg import (
    ADAM_BETAS,
    ADAM_EPS,
    BatchResult,
    accuracy,
    objective,
    solve_optimum,
    steps_per_epoch,
    train_batched,
)
from refinedlr_bench.schedule_arms import DEFAULT_ARMS, SCHEDULE_ARMS, ArmContext, ScheduleArm
from refinedlr_bench.tables import write_csv

__all__ = [
    "DEFAULT_GRID",
    "OPTIMIZERS",
    "QUICK_SUITE",
    "RUNS_COLUMNS",
    "Cell",
    "CellStore",
    "ConvexProtocol",
    "DatasetOutcome",
    "TabularData",
    "cached_fstar",
    "cell_from_doc",
    "load_data",
    "run_dataset",
    "run_suite",
    "train_configs",
    "write_runs_csv",
]

FloatArray = npt.NDArray[np.float64]

OPTIMIZERS = ("adam", "sgd")

#: ``--quick``: datasets bundled with scikit-learn (no download).
QUICK_SUITE: tuple[str, ...] = ("iris", "wine", "breast_cancer")

#: The first LR grid of every schedule, as grid indices (lr = 2^(k/2)), per optimizer:
#: Adam 2^-12 .. 2^1 (2.4e-4 .. 2), SGD 2^-8 .. 2^5 (3.9e-3 .. 32), factor 2 apart.
DEFAULT_GRID = {"adam": (-24, 2), "sgd": (-16, 10)}

TRAINER_VERSION = "logreg-v1"


# ----------------------------------------------------------------------------------------------
# data


@dataclasses.dataclass(frozen=True)
class TabularData:
    """A standardised train/test split (what the benchmark needs from the dataset layer)."""

    name: str
    X_train: FloatArray
    y_train: npt.NDArray[np.int64]
    X_test: FloatArray
    y_test: npt.NDArray[np.int64]
    n_classes: int

    @property
    def fingerprint(self) -> str:
        """A hash of the arrays (a changed split or preprocessing invalidates cached results)."""
        h = hashlib.sha256()
        for a in (self.X_train, self.y_train, self.X_test, self.y_test):
            arr = np.ascontiguousarray(a)
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
        return h.hexdigest()[:16]


def load_data(name: str, data_dir: str | None = None) -> TabularData:
    """Load a dataset through :func:`refinedlr_bench.data.load_tabular` (the project's dataset
    layer: fixed stratified 80/20 split with seed 0, standardised on the training part).

    The scikit-learn bundled datasets (iris, wine, digits, breast_cancer) need no download; the
    others need ``refinedlr data fetch NAME`` once (a ``DatasetNotCached`` error says so).
    """
    ds = load_tabular(name, data_dir)
    Xtr = np.ascontiguousarray(ds.X_train, dtype=np.float64)
    Xte = np.ascontiguousarray(ds.X_test, dtype=np.float64)
    ytr = np.ascontiguousarray(ds.y_train, dtype=np.int64)
    yte = np.ascontiguousarray(ds.y_test, dtype=np.int64)
    K = int(getattr(ds, "n_classes", 0) or max(ytr.max(), yte.max()) + 1)
    return TabularData(str(getattr(ds, "name", name)), Xtr, ytr, Xte, yte, K)


# ----------------------------------------------------------------------------------------------
# protocol


@dataclasses.dataclass(frozen=True)
class ConvexProtocol:
    """Every setting of the suite (recorded in the report; the training part keys the cache)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    batch_size: int = 16
    l2: float = 1e-4
    max_epochs: int = 100
    min_epochs: int = 3
    step_budget: int = 30_000
    epochs: int | None = None
    grid: tuple[tuple[str, int, int], ...] = tuple(
        (o, lo, hi) for o, (lo, hi) in DEFAULT_GRID.items()
    )
    grid_step: int = 2
    fine_step: int = 1
    extend_points: int = 2
    max_extensions: int = 6
    k_min: int = -50
    k_max: int = 14
    betas: tuple[float, float] = ADAM_BETAS
    eps: float = ADAM_EPS

    def epochs_for(self, spe: int) -> int:
        """Epochs for a dataset with ``spe`` steps per epoch.

        >>> p = ConvexProtocol()
        >>> p.epochs_for(7), p.epochs_for(1000), p.epochs_for(2900)
        (100, 30, 10)
        """
        if self.epochs is not None:
            return int(self.epochs)
        return int(min(self.max_epochs, max(self.min_epochs, self.step_budget // spe)))

    def grid_range(self, optimizer: str) -> tuple[int, int]:
        """The first grid ``(lo, hi)`` (grid indices) of ``optimizer``, the same for every method.

        >>> ConvexProtocol().grid_range("adam")
        (-24, 2)
        """
        for o, lo, hi in self.grid:
            if o == optimizer:
                return lo, hi
        raise KeyError(f"no LR grid for optimizer {optimizer!r}")

    def first_grid(self, optimizer: str) -> LRGrid:
        """The first LR grid of every schedule of ``optimizer`` (extended and refined later).

        >>> ConvexProtocol().first_grid("sgd").ks[:3]
        [-16, -14, -12]
        """
        lo, hi = self.grid_range(optimizer)
        return LRGrid.span(
            lo,
            hi,
            self.grid_step,
            fine_step=self.fine_step,
            extend_points=self.extend_points,
            k_min=self.k_min,
            k_max=self.k_max,
            max_extensions=self.max_extensions,
        )

    def training_key(self, data: TabularData, epochs: int) -> str:
        """Hash of everything a cached result depends on besides (optimizer, schedule, LR),
        the CPU kernels included (:mod:`refinedlr_bench.cpu_kernels`)."""
        doc = {
            "trainer": TRAINER_VERSION,
            "cpu_kernels": cpu_kernels(),
            "data": data.fingerprint,
            "seeds": list(self.seeds),
            "batch": self.batch_size,
            "l2": self.l2,
            "epochs": epochs,
            "betas": list(self.betas),
            "eps": self.eps,
        }
        text = json.dumps(doc, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------------------
# cache


class CellStore:
    """Per-configuration results of one dataset, in ``DIR/cells.json`` plus ``.npy`` norms.

    A key is ``optimizer|method|schedule fingerprint|k``; the value holds per-seed final
    objectives, gaps and accuracies. Norms of recorded runs are ``DIR/norms-<key hash>.npy``
    (float32, ``[S, T, 2]``).
    """

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = directory / "cells.json"
        self.cells: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                self.cells = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                warnings.warn(
                    f"{self.path}: not JSON; its cached results are ignored", stacklevel=2
                )
                self.cells = {}

    @staticmethod
    def key(optimizer: str, arm: str, fingerprint: str, k: int) -> str:
        return f"{optimizer}|{arm}|{fingerprint}|{k}"

    def norm_path(self, key: str) -> Path:
        """Where the norms of ``key`` are (or would be) stored."""
        return self.dir / f"norms-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"

    def adam_norm_path(self, key: str) -> Path:
        """Where Adam's step norms of ``key`` are (or would be) stored (the refinement study)."""
        return (
            self.dir / f"adamnorms-{hashlib.sha256(('adam|' + key).encode()).hexdigest()[:16]}.npy"
        )

    def get(self, key: str) -> dict[str, Any] | None:
        return self.cells.get(key)

    def put(self, key: str, value: dict[str, Any], norms: np.ndarray | None = None) -> None:
        """Record a cell (in memory until :meth:`save`) and write its norms, if any, now."""
        if norms is not None:
            self.put_norms(key, norms)
        self.cells[key] = value

    def put_norms(self, key: str, norms: np.ndarray) -> None:
        """Write the norms of ``key`` (float32, atomically)."""
        with atomic_write(self.norm_path(key), binary=True, fsync=False) as fh:
            np.save(fh, np.asarray(norms, dtype=np.float32), allow_pickle=False)

    def norms(self, key: str) -> np.ndarray | None:
        p = self.norm_path(key)
        return np.load(p, allow_pickle=False) if p.exists() else None

    def save(self) -> None:
        with atomic_write(self.path) as fh:
            fh.write(json.dumps(self.cells, sort_keys=True))


# ----------------------------------------------------------------------------------------------
# results


@dataclasses.dataclass
class Cell:
    """One configuration (optimizer, method, LR) over all seeds."""

    optimizer: str
    method: str
    k: int
    lr: float
    objective: FloatArray
    gap: FloatArray
    test_acc: FloatArray
    train_acc: FloatArray
    seconds: float
    batch_runs: int
    round: int
    cached: bool = False

    @property
    def mean_objective(self) -> float:
        o = self.objective
        return float(np.mean(o)) if np.all(np.isfinite(o)) else math.inf


@dataclasses.dataclass
class DatasetOutcome:
    """Everything measured on one dataset (both optimizers, every method)."""

    name: str
    n_train: int
    n_test: int
    n_features: int
    n_classes: int
    steps_per_epoch: int
    epochs: int
    total_steps: int
    fstar: float
    fstar_grad_norm: float
    fstar_train_acc: float
    fstar_test_acc: float
    cells: list[Cell]
    grids: dict[tuple[str, str], LRGrid]
    schedules: dict[tuple[str, str], Schedule]
    linear_norms: dict[str, FloatArray]  # optimizer -> [T, 2] mean over seeds (l1, l2)
    rounds: int
    seconds: float
    train_seconds: float
    trained_runs: int

    def cells_of(self, optimizer: str, method: str) -> list[Cell]:
        return sorted(
            (c for c in self.cells if c.optimizer == optimizer and c.method == method),
            key=lambda c: c.k,
        )

    def means(self, optimizer: str, method: str) -> dict[int, float]:
        return {c.k: c.mean_objective for c in self.cells_of(optimizer, method)}

    def chosen(self, optimizer: str, method: str) -> Cell | None:
        grid = self.grids.get((optimizer, method))
        if grid is None:
            return None
        k = grid.best(self.means(optimizer, method))
        if k is None:
            return None
        return next(c for c in self.cells_of(optimizer, method) if c.k == k)

    def status(self, optimizer: str, method: str) -> str:
        grid = self.grids.get((optimizer, method))
        return "missing" if grid is None else grid.status(self.means(optimizer, method))

    def bound(self, optimizer: str, method: str) -> float:
        """Last-iterate bound of the method's schedule at its best scale, from the norms of the
        best linear run (l1 for Adam, l2 for SGD); NaN for the arms that are not a schedule of
        the plain optimizer scored at its last iterate (schedule-free, momentum, averaging,
        other betas: the bound is that of the plain optimizer's last iterate)."""
        sched = self.schedules.get((optimizer, method))
        norms = self.linear_norms.get(optimizer)
        arm = SCHEDULE_ARMS.get(method)
        if sched is None or norms is None or (arm is not None and not arm.plain):
            return math.nan
        col = 0 if optimizer == "adam" else 1
        try:
            return float(best_scale(sched.preview(), norms[:, col])[1])
        except BoundError:
            return math.nan


# ----------------------------------------------------------------------------------------------
# training


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm  # on demand: only for interactive runs

    return tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True)


def cached_fstar(data: TabularData, l2: float, cache_dir: Path) -> dict[str, float]:
    """``f*`` of ``data`` (and the solver's diagnostics), from ``cache_dir/fstar.json`` or solved
    and written there."""
    path = cache_dir / "fstar.json"
    if path.exists():
        doc: dict[str, float] = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("l2") == l2:
            return doc
    opt = solve_optimum(data.X_train, data.y_train, data.n_classes, l2=l2)
    doc = {
        "l2": l2,
        "fstar": opt.value,
        "grad_norm": opt.grad_norm,
        "lbfgs_iterations": opt.lbfgs_iterations,
        "newton_steps": opt.newton_steps,
        "train_acc": float(accuracy(data.X_train, data.y_train, opt.weights)),
        "test_acc": float(accuracy(data.X_test, data.y_test, opt.weights)),
    }
    with atomic_write(path) as fh:
        fh.write(json.dumps(doc, indent=1))
    return doc


def cell_from_doc(opt: str, arm: str, k: int, doc: Mapping[str, Any], cached: bool = True) -> Cell:
    """The :class:`Cell` of a cached (or just trained) configuration."""

    def arr(name: str) -> FloatArray:
        return np.array([float(v) for v in doc[name]], dtype=np.float64)

    return Cell(
        optimizer=opt,
        method=arm,
        k=k,
        lr=lr_of(k),
        objective=arr("objective"),
        gap=arr("gap"),
        test_acc=arr("test_acc"),
        train_acc=arr("train_acc"),
        seconds=float(doc["seconds"]),
        batch_runs=int(doc["batch_runs"]),
        round=int(doc["round"]),
        cached=cached,
    )


def train_configs(
    data: TabularData,
    protocol: ConvexProtocol,
    configs: Sequence[tuple[str, Schedule, int]],
    *,
    epochs: int,
    fstar: float,
    round_no: int,
    record: Sequence[bool],
    record_adam: bool = False,
    progress: Callable[[int], Any] | None = None,
    schedule_free: Sequence[bool] | None = None,
    arms: Sequence[ScheduleArm] | None = None,
) -> tuple[list[dict[str, Any]], BatchResult]:
    """Train ``(optimizer, schedule, grid index)`` configurations over the protocol's seeds as one
    batch; returns each configuration's cache document (per-seed objectives, gaps, accuracies)
    and the batch's result (for the recorded norms). ``schedule_free`` flags the configurations
    that train the schedule-free form of their optimizer (scored at the averaged point);
    ``arms``, one per configuration, give it and the arms' other settings (momentum, averaging,
    schedule-free's beta and scoring point, Adam's betas: the same for the whole batch)."""
    T = epochs * steps_per_epoch(data.X_train.shape[0], protocol.batch_size)
    lrs = np.empty((len(configs), T))
    for j, (_opt, schedule, k) in enumerate(configs):
        lrs[j] = lr_of(k) * schedule.preview()
    options: dict[str, Any] = {}
    betas = protocol.betas
    if arms is not None:
        schedule_free = [a.schedule_free for a in arms]
        betas = _batch_betas(arms, protocol.betas)
        options = {
            "momentum": [a.momentum for a in arms],
            "sf_beta": [a.sf_beta for a in arms],
            "sf_eval": [a.sf_eval for a in arms],
        }
        if any(a.averaging for a in arms):
            options["averaging"] = np.stack(
                [
                    np.ones(T) if a.averaging is None else a.averaging.weights(s.preview())
                    for a, (_o, s, _k) in zip(arms, configs, strict=True)
                ]
            )
    res = train_batched(
        data.X_train,
        data.y_train,
        data.n_classes,
        lrs,
        adam=[opt == "adam" for opt, _s, _k in configs],
        seeds=protocol.seeds,
        epochs=epochs,
        l2=protocol.l2,
        batch_size=protocol.batch_size,
        betas=betas,
        eps=protocol.eps,
        record_norms=record,
        record_adam=record_adam,
        progress=progress,
        schedule_free=False if schedule_free is None else list(schedule_free),
        **options,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obj = objective(data.X_train, data.y_train, res.weights, l2=protocol.l2)  # [S, C]
        te = accuracy(data.X_test, data.y_test, res.weights)
        tr = accuracy(data.X_train, data.y_train, res.weights)
    docs = [
        {
            "lr": lr_of(k),
            "objective": [json_float(v) for v in obj[:, j]],
            "gap": [json_float(float(v) - fstar) for v in obj[:, j]],
            "test_acc": [json_float(v) for v in te[:, j]],
            "train_acc": [json_float(v) for v in tr[:, j]],
            "seconds": res.seconds,
            "batch_runs": len(configs) * len(protocol.seeds),
            "round": round_no,
        }
        for j, (_opt, _s, k) in enumerate(configs)
    ]
    return docs, res


def _batch_betas(arms: Sequence[ScheduleArm], default: tuple[float, float]) -> tuple[float, float]:
    """Adam's betas of a batch: every arm's own (``None``: ``default``), the same for all."""
    found = {a.betas or default for a in arms}
    if len(found) > 1:
        raise ValueError(f"arms with different Adam betas in one batch: {sorted(found)}")
    return found.pop() if found else default


# ----------------------------------------------------------------------------------------------
# one dataset


def run_dataset(
    data: TabularData,
    protocol: ConvexProtocol,
    *,
    methods: Sequence[str] = DEFAULT_ARMS,
    optimizers: Sequence[str] = OPTIMIZERS,
    cache_root: Path,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> DatasetOutcome:
    """Tune and run every (optimizer, arm) on one dataset, resuming from ``cache_root``.

    ``methods`` are names of :data:`~refinedlr_bench.schedule_arms.SCHEDULE_ARMS`.
    """
    t_start = time.perf_counter()
    n = data.X_train.shape[0]
    spe = steps_per_epoch(n, protocol.batch_size)
    epochs = protocol.epochs_for(spe)
    T = epochs * spe
    tkey = protocol.training_key(data, epochs)
    store = CellStore(cache_root / f"{data.name}-{tkey}")
    fs = cached_fstar(data, protocol.l2, store.dir)
    fstar = float(fs["fstar"])
    S = len(protocol.seeds)

    mlist = list(dict.fromkeys(methods))
    sources = dict.fromkeys(SCHEDULE_ARMS[m].source for m in mlist if SCHEDULE_ARMS[m].needs_linear)
    for src in sources:
        if src not in mlist:
            mlist.insert(0, src)
    # arms built from a run's record come after the others
    mlist.sort(key=lambda m: SCHEDULE_ARMS[m].needs_linear)
    recorded = {"linear", *sources}

    grids: dict[tuple[str, str], LRGrid] = {}
    schedules: dict[tuple[str, str], Schedule] = {}
    cells: dict[tuple[str, str, int], Cell] = {}
    lin_norms: dict[str, FloatArray] = {}
    train_seconds = 0.0
    trained_runs = 0

    def means(opt: str, m: str) -> dict[int, float]:
        return {k: c.mean_objective for (o, mm, k), c in cells.items() if o == opt and mm == m}

    def key(opt: str, m: str, k: int) -> str:
        settings = SCHEDULE_ARMS[m].settings  # what the arm changes besides its schedule
        fp = schedules[(opt, m)].fingerprint() + (f"|{settings}" if settings else "")
        return store.key(opt, m, fp, k)

    def load_cached(opt: str, m: str) -> None:
        for k in grids[(opt, m)].ks:
            if (opt, m, k) in cells:
                continue
            doc = store.get(key(opt, m, k))
            if doc is not None:
                cells[(opt, m, k)] = cell_from_doc(opt, m, k, doc)

    def source_ready(opt: str, source: str = "linear") -> int | None:
        g = grids.get((opt, source))
        if g is None:
            return None
        mm = means(opt, source)
        if not g.settled(mm):
            return None
        return g.best(mm)

    def make_context(opt: str, source: str | None) -> ArmContext:
        if source is None:
            return ArmContext(total_steps=T, steps_per_epoch=spe, optimizer=opt)
        k = source_ready(opt, source)
        assert k is not None
        per_seed = store.norms(key(opt, source, k))
        if per_seed is None:
            raise RuntimeError(f"norms of the {source} run {key(opt, source, k)} are missing")
        mean = per_seed.astype(np.float64).mean(axis=0)
        if source == "linear":
            lin_norms[opt] = mean
        return ArmContext(
            total_steps=T,
            steps_per_epoch=spe,
            optimizer=opt,
            linear_norms={"l1": mean[:, 0], "l2": mean[:, 1]},
            linear_lr=lr_of(k),
            linear_norms_per_seed=per_seed,
        )

    rounds = 0
    while True:
        pending: list[tuple[str, str, int]] = []
        for opt in optimizers:
            for m in mlist:
                arm = SCHEDULE_ARMS[m]
                if not arm.runs_with(opt):
                    continue
                g = grids.get((opt, m))
                if g is None:
                    if arm.needs_linear and source_ready(opt, arm.source) is None:
                        continue
                    source = arm.source if arm.needs_linear else None
                    schedules[(opt, m)] = arm.build(make_context(opt, source))
                    g = grids[(opt, m)] = protocol.first_grid(opt)
                    load_cached(opt, m)
                while True:  # extensions and refinements already in the cache cost nothing
                    if not g.extend(means(opt, m)):
                        break
                    load_cached(opt, m)
                pending += [(opt, m, k) for k in g.missing(means(opt, m))]
        if not pending:
            break
        rounds += 1
        # one batched tensor per batch group, in order of first appearance (the "main" group
        # holds the same configurations in the same order as before other groups existed)
        batches: dict[str, list[tuple[str, str, int]]] = {}
        for item in pending:
            batches.setdefault(SCHEDULE_ARMS[item[1]].batch, []).append(item)
        for group, items in batches.items():
            bar = _progress_bar(
                T, f"{data.name} r{rounds} {group} ({len(items) * S} runs)", progress
            )
            try:
                docs, res = train_configs(
                    data,
                    protocol,
                    [(opt, schedules[(opt, m)], k) for opt, m, k in items],
                    epochs=epochs,
                    fstar=fstar,
                    round_no=rounds,
                    record=[m in recorded for _, m, _ in items],
                    progress=None if bar is None else bar.update,
                    arms=[SCHEDULE_ARMS[m] for _, m, _ in items],
                )
            finally:
                if bar is not None:
                    bar.close()
            for j, ((opt, m, k), doc) in enumerate(zip(items, docs, strict=True)):
                store.put(key(opt, m, k), doc, res.norms_of(j))
                cells[(opt, m, k)] = cell_from_doc(opt, m, k, doc, cached=False)
            store.save()
            train_seconds += res.seconds
            trained_runs += len(items) * S
            if log is not None:
                log(
                    f"  {data.name}: round {rounds} ({group}): {len(items)} configs x {S} "
                    f"seeds, {res.seconds:.1f} s"
                )

    # the linear norms, also when everything came from the cache
    for opt in optimizers:
        if opt not in lin_norms and source_ready(opt) is not None:
            make_context(opt, "linear")

    return DatasetOutcome(
        name=data.name,
        n_train=n,
        n_test=int(data.X_test.shape[0]),
        n_features=int(data.X_train.shape[1]),
        n_classes=data.n_classes,
        steps_per_epoch=spe,
        epochs=epochs,
        total_steps=T,
        fstar=fstar,
        fstar_grad_norm=float(fs["grad_norm"]),
        fstar_train_acc=float(fs["train_acc"]),
        fstar_test_acc=float(fs["test_acc"]),
        cells=list(cells.values()),
        grids=grids,
        schedules=schedules,
        linear_norms=lin_norms,
        rounds=rounds,
        seconds=time.perf_counter() - t_start,
        train_seconds=train_seconds,
        trained_runs=trained_runs,
    )


# ----------------------------------------------------------------------------------------------
# the suite


def run_suite(
    datasets: Iterable[str],
    protocol: ConvexProtocol,
    *,
    out: Path,
    methods: Sequence[str] = DEFAULT_ARMS,
    optimizers: Sequence[str] = OPTIMIZERS,
    data_dir: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[DatasetOutcome]:
    """Run every dataset in turn (results cached under ``out/cache``)."""
    outcomes = []
    names = list(datasets)
    for i, name in enumerate(names):
        data = load_data(name, data_dir)
        outcome = run_dataset(
            data,
            protocol,
            methods=methods,
            optimizers=optimizers,
            cache_root=out / "cache",
            progress=progress,
            log=log,
        )
        outcomes.append(outcome)
        if log is not None:
            lin = " ".join(
                f"{o}: linear lr {c.lr:.3g} gap {np.mean(c.gap):.3g}"
                for o in optimizers
                if (c := outcome.chosen(o, "linear")) is not None
            )
            log(
                f"[{i + 1}/{len(names)}] {name}: {outcome.epochs} epochs x "
                f"{outcome.steps_per_epoch} steps, {outcome.rounds} training rounds, "
                f"{outcome.seconds:.1f} s ({lin})"
            )
    return outcomes


#: The columns of ``runs.csv``.
RUNS_COLUMNS = (
    "dataset",
    "optimizer",
    "schedule",
    "lr_index",
    "lr",
    "seed",
    "epochs",
    "steps",
    "objective",
    "fstar",
    "gap",
    "test_acc",
    "train_acc",
    "chosen",
    "round",
    "batch_runs",
    "batch_seconds",
    "seconds_per_run",
)


def write_runs_csv(outcomes: Sequence[DatasetOutcome], path: Path, seeds: Sequence[int]) -> None:
    """Every run (dataset, optimizer, schedule, LR, seed) as one CSV row."""
    rows = []
    for oc in outcomes:
        for opt, m in oc.grids:
            ch = oc.chosen(opt, m)
            for c in oc.cells_of(opt, m):
                for s_i, seed in enumerate(seeds):
                    rows.append(
                        [
                            oc.name,
                            opt,
                            m,
                            c.k,
                            f"{c.lr:.6g}",
                            seed,
                            oc.epochs,
                            oc.total_steps,
                            f"{c.objective[s_i]:.12g}",
                            f"{oc.fstar:.12g}",
                            f"{c.gap[s_i]:.6g}",
                            f"{c.test_acc[s_i]:.6g}",
                            f"{c.train_acc[s_i]:.6g}",
                            int(ch is not None and ch.k == c.k),
                            c.round,
                            c.batch_runs,
                            f"{c.seconds:.3f}",
                            f"{c.seconds / max(c.batch_runs, 1):.5f}",
                        ]
                    )
    write_csv(path, RUNS_COLUMNS, rows)
