"""``refinedlr bench convex``: the paper's logistic-regression study, measured carefully.

Protocol (arXiv 2310.07831, convex experiments, at this machine's scale):

* Multinomial logistic regression with biases on standardised tabular data, mini-batch 16, from
  zero weights; objective ``f`` = mean cross-entropy + ``(lam/2) ||W||^2`` on the weights (not the
  biases), ``lam = 1e-4`` by default, the same in training and in ``f*``. The penalty makes the
  optimum exist on separable data.
* Optimizers: Adam (betas 0.9, 0.95, eps 1e-8; refinement with l1 norms, Algorithm 2) and plain
  SGD (refinement with l2 norms, Algorithm 1).
* Epochs per dataset: ``min(100, max(3, step_budget // steps_per_epoch))`` (100 epochs where that
  fits in the step budget, fewer for the large datasets), the same for every schedule.
* Schedules: the registered methods (:mod:`refinedlr_bench.methods`): constant, 1/t, 1/sqrt t,
  step-wise, cosine, warmup-stable-decay, linear decay and refinement (tau 0.1 and 0.5) from the
  mean norms of the best linear-decay run.
* Peak LR tuned per (dataset, optimizer, schedule) on the grid ``2^(k/2)``, chosen by the mean
  over seeds of the final objective; an edge optimum extends the grid (:mod:`.grid`).
* Metric: ``f(x_T) - f*`` in float64 (``f*``: L-BFGS + Newton, gradient norm < 1e-9) and held-out
  accuracy; statistics in :mod:`.stats`.

All runs of one dataset and round (every optimizer, schedule, LR and seed) train as one batched
tensor computation (:func:`refinedlr_bench.logreg.train_batched`). Results are cached per
configuration under ``OUT/cache`` (JSON, and ``.npy`` norms of the linear-decay runs), so an
interrupted run resumes where it stopped.

Example (a tiny configuration; the real suite is ``refinedlr bench convex``)::

    main(["--quick", "--datasets", "iris", "--out", "/tmp/convex-quick"])
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from refinedlr.bounds import BoundError, best_scale
from refinedlr.schedules import Schedule

from refinedlr_bench.grid import LRGrid, k_of, lr_of
from refinedlr_bench.logreg import (
    ADAM_BETAS,
    ADAM_EPS,
    accuracy,
    objective,
    solve_optimum,
    steps_per_epoch,
    train_batched,
)
from refinedlr_bench.machine import machine_info
from refinedlr_bench.methods import DEFAULT_METHODS, METHODS, MethodContext, get_method

__all__ = [
    "QUICK_SUITE",
    "Cell",
    "DatasetOutcome",
    "Protocol",
    "TabularData",
    "load_data",
    "main",
    "run_dataset",
    "run_suite",
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
    from refinedlr_bench.data import load_tabular

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
class Protocol:
    """Every setting of the study (recorded in the report; the training part keys the cache)."""

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

        >>> p = Protocol()
        >>> p.epochs_for(7), p.epochs_for(1000), p.epochs_for(2900)
        (100, 30, 10)
        """
        if self.epochs is not None:
            return int(self.epochs)
        return int(min(self.max_epochs, max(self.min_epochs, self.step_budget // spe)))

    def grid_range(self, optimizer: str) -> tuple[int, int]:
        """The first grid ``(lo, hi)`` (grid indices) of ``optimizer``, the same for every method.

        >>> Protocol().grid_range("adam")
        (-24, 2)
        """
        for o, lo, hi in self.grid:
            if o == optimizer:
                return lo, hi
        raise KeyError(f"no LR grid for optimizer {optimizer!r}")

    def training_key(self, data: TabularData, epochs: int) -> str:
        """Hash of everything a cached result depends on besides (optimizer, schedule, LR)."""
        doc = {
            "trainer": TRAINER_VERSION,
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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _jsonable(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else ("-inf" if x < 0 else "nan"))


def _from_json(x: float | str) -> float:
    return float(x)


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
                self.cells = {}

    @staticmethod
    def key(optimizer: str, method: str, fingerprint: str, k: int) -> str:
        return f"{optimizer}|{method}|{fingerprint}|{k}"

    def _norm_path(self, key: str) -> Path:
        return self.dir / f"norms-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"

    def get(self, key: str) -> dict[str, Any] | None:
        return self.cells.get(key)

    def put(self, key: str, value: dict[str, Any], norms: np.ndarray | None = None) -> None:
        if norms is not None:
            np.save(self._norm_path(key), np.asarray(norms, dtype=np.float32), allow_pickle=False)
        self.cells[key] = value

    def norms(self, key: str) -> np.ndarray | None:
        p = self._norm_path(key)
        return np.load(p, allow_pickle=False) if p.exists() else None

    def save(self) -> None:
        _atomic_write(self.path, json.dumps(self.cells, sort_keys=True))


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
        best linear run (l1 for Adam, l2 for SGD)."""
        sched = self.schedules.get((optimizer, method))
        norms = self.linear_norms.get(optimizer)
        if sched is None or norms is None:
            return math.nan
        col = 0 if optimizer == "adam" else 1
        try:
            return float(best_scale(sched.preview(), norms[:, col])[1])
        except BoundError:
            return math.nan


# ----------------------------------------------------------------------------------------------
# one dataset


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the bench extra
        return None
    return tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True)


def _fstar(data: TabularData, l2: float, cache_dir: Path) -> dict[str, float]:
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
    _atomic_write(path, json.dumps(doc, indent=1))
    return doc


def run_dataset(
    data: TabularData,
    protocol: Protocol,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    optimizers: Sequence[str] = OPTIMIZERS,
    cache_root: Path,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> DatasetOutcome:
    """Tune and run every (optimizer, method) on one dataset, resuming from ``cache_root``."""
    t_start = time.perf_counter()
    n = data.X_train.shape[0]
    spe = steps_per_epoch(n, protocol.batch_size)
    epochs = protocol.epochs_for(spe)
    T = epochs * spe
    tkey = protocol.training_key(data, epochs)
    store = CellStore(cache_root / f"{data.name}-{tkey}")
    fs = _fstar(data, protocol.l2, cache_root / f"{data.name}-{tkey}")
    fstar = float(fs["fstar"])
    S = len(protocol.seeds)

    mlist = list(dict.fromkeys(methods))
    if any(METHODS[m].needs_linear for m in mlist) and "linear" not in mlist:
        mlist.insert(0, "linear")
    # methods built from the linear run come after the others
    mlist.sort(key=lambda m: METHODS[m].needs_linear)

    grids: dict[tuple[str, str], LRGrid] = {}
    schedules: dict[tuple[str, str], Schedule] = {}
    cells: dict[tuple[str, str, int], Cell] = {}
    lin_norms: dict[str, FloatArray] = {}
    lin_norms_seed: dict[str, np.ndarray] = {}
    train_seconds = 0.0
    trained_runs = 0

    def means(opt: str, m: str) -> dict[int, float]:
        return {k: c.mean_objective for (o, mm, k), c in cells.items() if o == opt and mm == m}

    def load_cached(opt: str, m: str) -> None:
        sched = schedules[(opt, m)]
        for k in grids[(opt, m)].ks:
            if (opt, m, k) in cells:
                continue
            doc = store.get(store.key(opt, m, sched.fingerprint(), k))
            if doc is not None:
                cells[(opt, m, k)] = _cell_from_doc(opt, m, k, doc)

    def linear_ready(opt: str) -> int | None:
        g = grids.get((opt, "linear"))
        if g is None:
            return None
        mm = means(opt, "linear")
        if not g.settled(mm):
            return None
        return g.best(mm)

    def make_context(opt: str, needs_linear: bool) -> MethodContext:
        if not needs_linear:
            return MethodContext(total_steps=T, steps_per_epoch=spe, optimizer=opt)
        k = linear_ready(opt)
        assert k is not None
        key = store.key(opt, "linear", schedules[(opt, "linear")].fingerprint(), k)
        per_seed = store.norms(key)
        if per_seed is None:
            raise RuntimeError(f"norms of the linear run {key} are missing from the cache")
        mean = per_seed.astype(np.float64).mean(axis=0)
        lin_norms[opt] = mean
        lin_norms_seed[opt] = per_seed
        return MethodContext(
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
                method = METHODS[m]
                g = grids.get((opt, m))
                if g is None:
                    if method.needs_linear and linear_ready(opt) is None:
                        continue
                    schedules[(opt, m)] = method.build(make_context(opt, method.needs_linear))
                    lo, hi = protocol.grid_range(opt)
                    g = LRGrid.span(
                        lo,
                        hi,
                        protocol.grid_step,
                        fine_step=protocol.fine_step,
                        extend_points=protocol.extend_points,
                        k_min=protocol.k_min,
                        k_max=protocol.k_max,
                        max_extensions=protocol.max_extensions,
                    )
                    grids[(opt, m)] = g
                    load_cached(opt, m)
                while True:  # extensions and refinements already in the cache cost nothing
                    if not g.extend(means(opt, m)):
                        break
                    load_cached(opt, m)
                pending += [(opt, m, k) for k in g.missing(means(opt, m))]
        if not pending:
            break
        rounds += 1
        sec, runs = _train_round(
            data, protocol, pending, schedules, store, cells, fstar, T, epochs, rounds, progress
        )
        train_seconds += sec
        trained_runs += runs
        if log is not None:
            log(f"  {data.name}: round {rounds}: {len(pending)} configs x {S} seeds, {sec:.1f} s")

    # the linear norms, also when everything came from the cache
    for opt in optimizers:
        if opt not in lin_norms and linear_ready(opt) is not None:
            make_context(opt, True)

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


def _cell_from_doc(opt: str, m: str, k: int, doc: Mapping[str, Any]) -> Cell:
    def arr(name: str) -> FloatArray:
        return np.array([_from_json(v) for v in doc[name]], dtype=np.float64)

    return Cell(
        optimizer=opt,
        method=m,
        k=k,
        lr=lr_of(k),
        objective=arr("objective"),
        gap=arr("gap"),
        test_acc=arr("test_acc"),
        train_acc=arr("train_acc"),
        seconds=float(doc["seconds"]),
        batch_runs=int(doc["batch_runs"]),
        round=int(doc["round"]),
        cached=True,
    )


def _train_round(
    data: TabularData,
    protocol: Protocol,
    pending: Sequence[tuple[str, str, int]],
    schedules: Mapping[tuple[str, str], Schedule],
    store: CellStore,
    cells: dict[tuple[str, str, int], Cell],
    fstar: float,
    T: int,
    epochs: int,
    round_no: int,
    progress: bool,
) -> tuple[float, int]:
    C = len(pending)
    S = len(protocol.seeds)
    lrs = np.empty((C, T))
    for j, (opt, m, k) in enumerate(pending):
        lrs[j] = lr_of(k) * schedules[(opt, m)].preview()
    adam = [opt == "adam" for opt, _, _ in pending]
    record = [m == "linear" for _, m, _ in pending]
    bar = _progress_bar(T, f"{data.name} r{round_no} ({C * S} runs)", progress)
    try:
        res = train_batched(
            data.X_train,
            data.y_train,
            data.n_classes,
            lrs,
            adam=adam,
            seeds=protocol.seeds,
            epochs=epochs,
            l2=protocol.l2,
            batch_size=protocol.batch_size,
            betas=protocol.betas,
            eps=protocol.eps,
            record_norms=record,
            progress=None if bar is None else bar.update,
        )
    finally:
        if bar is not None:
            bar.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obj = objective(data.X_train, data.y_train, res.weights, l2=protocol.l2)  # [S, C]
        te = accuracy(data.X_test, data.y_test, res.weights)
        tr = accuracy(data.X_train, data.y_train, res.weights)
    for j, (opt, m, k) in enumerate(pending):
        o = obj[:, j]
        gap = o - fstar
        doc = {
            "lr": lr_of(k),
            "objective": [_jsonable(float(v)) for v in o],
            "gap": [_jsonable(float(v)) for v in gap],
            "test_acc": [_jsonable(float(v)) for v in te[:, j]],
            "train_acc": [_jsonable(float(v)) for v in tr[:, j]],
            "seconds": res.seconds,
            "batch_runs": C * S,
            "round": round_no,
        }
        key = store.key(opt, m, schedules[(opt, m)].fingerprint(), k)
        norms = res.norms_of(j)
        store.put(key, doc, norms)
        cell = _cell_from_doc(opt, m, k, doc)
        cell.cached = False
        cells[(opt, m, k)] = cell
    store.save()
    return res.seconds, C * S


# ----------------------------------------------------------------------------------------------
# the suite


def run_suite(
    datasets: Iterable[str],
    protocol: Protocol,
    *,
    out: Path,
    methods: Sequence[str] = DEFAULT_METHODS,
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


def write_runs_csv(outcomes: Sequence[DatasetOutcome], path: Path, seeds: Sequence[int]) -> None:
    """Every run (dataset, optimizer, schedule, LR, seed) as one CSV row."""
    cols = [
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
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for oc in outcomes:
            for (opt, m), _grid in oc.grids.items():
                ch = oc.chosen(opt, m)
                for c in oc.cells_of(opt, m):
                    for s_i, seed in enumerate(seeds):
                        w.writerow(
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


# ----------------------------------------------------------------------------------------------
# the command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="refinedlr bench convex",
        description=(
            "The paper's logistic-regression study: every schedule (constant, 1/t, 1/sqrt t, "
            "step, cosine, WSD, linear, refined) at its own tuned LR, Adam and SGD, several "
            "seeds; final objective gap to f*, held-out accuracy, paired comparisons with "
            "linear decay, bounds vs practice. Writes runs.csv, report.md, summary.json and "
            "plots to --out; resumes from OUT/cache."
        ),
    )
    p.add_argument("--quick", action="store_true", help="a small, fast configuration (CI)")
    p.add_argument("--datasets", nargs="+", metavar="NAME", help="datasets (default: the suite)")
    p.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=list(OPTIMIZERS))
    p.add_argument(
        "--methods",
        nargs="+",
        metavar="NAME",
        help=f"schedule-making methods (default: all registered: {', '.join(DEFAULT_METHODS)})",
    )
    p.add_argument("--seeds", type=int, help="number of data-order seeds (default 5; quick 3)")
    p.add_argument(
        "--out", type=Path, help="output directory (default results/convex; quick: a subfolder)"
    )
    p.add_argument("--epochs", type=int, help="the same number of epochs for every dataset")
    p.add_argument(
        "--step-budget",
        type=int,
        help="epochs = min(max-epochs, budget // steps per epoch) (default 30000; quick 600)",
    )
    p.add_argument("--max-epochs", type=int, help="default 100 (quick 20)")
    p.add_argument("--l2", type=float, default=1e-4, help="weight penalty lambda (default 1e-4)")
    for opt, (lo, hi) in DEFAULT_GRID.items():
        p.add_argument(
            f"--{opt}-lrs",
            nargs=2,
            type=float,
            metavar=("LO", "HI"),
            help=(
                f"first {opt} LR grid, the same for every schedule (default "
                f"{lr_of(lo):.3g} {lr_of(hi):.3g}; extended at an edge)"
            ),
        )
    p.add_argument(
        "--grid-step",
        type=int,
        help="first-grid spacing in half-octaves (default 2: a factor 2 between points)",
    )
    p.add_argument(
        "--fine-step",
        type=int,
        help=(
            "final spacing around the best LR in half-octaves (default 1: factor sqrt 2; "
            "quick 2: no refinement)"
        ),
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help=(
            "torch threads (default 1: a step is many small tensor operations, and extra "
            "threads slow it down badly when other processes share the cores)"
        ),
    )
    p.add_argument("--data-dir", help="dataset cache (default: $REFINEDLR_DATA or ~/.cache)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def protocol_from_args(args: argparse.Namespace) -> Protocol:
    """The :class:`Protocol` for parsed arguments (``--quick`` changes the defaults)."""
    quick = bool(args.quick)
    n_seeds = args.seeds if args.seeds is not None else (3 if quick else 5)
    if n_seeds < 2:
        raise SystemExit("refinedlr bench convex: --seeds must be at least 2 (for intervals)")

    def pick(value: Any, full: Any, fast: Any) -> Any:
        return value if value is not None else (fast if quick else full)

    step = int(args.grid_step or 2)
    grids = []
    for opt, (lo, hi) in DEFAULT_GRID.items():
        given = getattr(args, f"{opt}_lrs", None)
        if given is not None:
            lo, hi = sorted(k_of(v) for v in given)
        elif quick:
            lo += 8  # quick: a narrower first grid (2^-8 .. 2 for Adam, 2^-4 .. 32 for SGD)
        grids.append((opt, lo, hi))
    if step < 1 or (args.fine_step is not None and not 1 <= args.fine_step <= step):
        raise SystemExit("refinedlr bench convex: need 1 <= --fine-step <= --grid-step")

    return Protocol(
        seeds=tuple(range(n_seeds)),
        l2=float(args.l2),
        epochs=args.epochs,
        step_budget=pick(args.step_budget, 30_000, 600),
        max_epochs=pick(args.max_epochs, 100, 20),
        grid=tuple(grids),
        grid_step=step,
        fine_step=pick(args.fine_step, 1, step),
        extend_points=2,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``refinedlr bench convex`` (returns the exit status)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    protocol = protocol_from_args(args)
    if args.threads and args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    if args.datasets:
        datasets = list(args.datasets)
    elif args.quick:
        datasets = list(QUICK_SUITE)
    else:
        from refinedlr_bench.data import DEFAULT_SUITE

        datasets = list(DEFAULT_SUITE)
    methods = list(args.methods) if args.methods else list(DEFAULT_METHODS)
    for m in methods:
        try:
            get_method(m)
        except KeyError as exc:
            print(f"refinedlr bench convex: {exc.args[0]}", file=sys.stderr)
            return 2
    out = (
        args.out
        if args.out is not None
        else (Path("results/convex/quick") if args.quick else Path("results/convex"))
    )
    for name in datasets:  # fail early, with one line, on a dataset that cannot be loaded
        try:
            load_data(name, args.data_dir)
        except Exception as exc:  # the dataset layer's errors say how to fetch the data
            msg = " ".join(str(exc).split()) or type(exc).__name__
            print(f"refinedlr bench convex: dataset {name!r}: {msg}", file=sys.stderr)
            return 2
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    log(
        f"refinedlr bench convex: {len(datasets)} datasets, optimizers {' '.join(args.optimizers)}, "
        f"{len(protocol.seeds)} seeds -> {out}"
    )
    outcomes = run_suite(
        datasets,
        protocol,
        out=out,
        methods=methods,
        optimizers=args.optimizers,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        log=log,
    )
    write_runs_csv(outcomes, out / "runs.csv", protocol.seeds)
    from refinedlr_bench.report import write_report

    command = "refinedlr bench convex" + ("" if not argv else " " + shlex.join(argv))
    entry = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command,
        "train_seconds": round(sum(oc.train_seconds for oc in outcomes), 1),
        "trained_runs": sum(oc.trained_runs for oc in outcomes),
        "datasets": [oc.name for oc in outcomes],
        "cores": os.cpu_count(),
    }
    write_report(
        outcomes,
        protocol,
        out=out,
        methods=methods,
        optimizers=args.optimizers,
        command=command,
        machine=machine_info(),
        started=t0,
        run_entry=entry,
        plots=not args.no_plots,
    )
    log(f"done in {time.perf_counter() - t0:.1f} s: {out / 'report.md'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
