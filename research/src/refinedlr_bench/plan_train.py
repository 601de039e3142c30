"""Logistic-regression runs for the planning evidence: any schedule, any horizon, an exact LR.

The convex suite (:mod:`refinedlr_bench.convex`) trains on its grid ``2^(k/2)`` at one horizon
per dataset. The planning evidence must train at a *predicted* LR itself (never the nearest grid
point) and at other horizons, so a configuration here is ``(optimizer, schedule, lr)``
(:class:`Config`): the schedule's ``total_steps`` is the run's horizon and ``lr`` its exact peak
LR. Everything else is the convex suite's protocol (:class:`~refinedlr_bench.convex.ConvexProtocol`:
batch 16, l2 penalty, Adam's betas, seeds, zero initialisation, the float64 ``f*``).

Horizons that are not a whole number of epochs. :func:`refinedlr_bench.logreg.train_batched`
trains whole epochs, so a run of ``T`` steps trains ``ceil(T / steps per epoch)`` epochs with its
LR set to 0 after step ``T``. A zero LR leaves the weights exactly as they are (Adam's step and
SGD's step are multiplied by it), and the data order of the first ``T`` steps does not depend on
the number of epochs, so the final weights are those after ``T`` steps
(``research/tests/test_plan_train.py`` checks both). The same device stops a run early for its
loss curve (:func:`prefix`).

:class:`PlanStore` caches each configuration's per-seed results (JSON) and the recorded runs'
mean gradient norms (``.npy``) so an interrupted command resumes; :func:`tune` is the convex
suite's LR search (:class:`~refinedlr_bench.grid.LRGrid`: the same first grid, extensions and
sqrt(2) refinement) at any horizon.
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
from refinedlr import Schedule, Tabulated

from refinedlr_bench.convex import CellStore, ConvexProtocol, TabularData, cached_fstar
from refinedlr_bench.grid import LRGrid, lr_of
from refinedlr_bench.jsonio import json_float
from refinedlr_bench.logreg import accuracy, objective, steps_per_epoch, train_batched

__all__ = [
    "Config",
    "PlanStore",
    "Result",
    "Tuned",
    "padded_lrs",
    "prefix",
    "train",
    "tune",
]

FloatArray = npt.NDArray[np.float64]
Log = Callable[[str], None]

#: Part of every cache key: changing how runs are trained invalidates them.
PLAN_TRAINER = "plan-logreg-v1"


@dataclasses.dataclass(frozen=True)
class Config:
    """One configuration: ``optimizer`` (``"adam"``/``"sgd"``) on ``schedule`` (its horizon is
    the run's) at the exact peak LR ``lr``, run once per seed; ``record``: keep the mean (over
    seeds) of the per-step gradient norms."""

    optimizer: str
    schedule: Schedule
    lr: float
    record: bool = False

    @property
    def steps(self) -> int:
        return self.schedule.total_steps

    @property
    def key(self) -> str:
        """The cache key (a recorded run is kept apart from an unrecorded one of the same
        configuration, so recording never replaces a result that a choice was made on)."""
        rec = "|rec" if self.record else ""
        return f"{self.optimizer}|{self.schedule.fingerprint()}|{self.steps}|{self.lr!r}{rec}"


@dataclasses.dataclass(frozen=True)
class Result:
    """Per-seed outcome of a :class:`Config`: final objective, gap ``f - f*``, test accuracy."""

    lr: float
    objective: FloatArray
    gap: FloatArray
    test_acc: FloatArray
    seconds: float

    @property
    def mean_objective(self) -> float:
        """Mean over seeds (``inf`` if a seed diverged): what tuning ranks LRs by."""
        o = self.objective
        return float(np.mean(o)) if np.all(np.isfinite(o)) else math.inf

    @property
    def mean_gap(self) -> float:
        g = self.gap
        return float(np.mean(g)) if np.all(np.isfinite(g)) else math.inf

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Result:
        def arr(name: str) -> FloatArray:
            return np.array([float(v) for v in doc[name]], dtype=np.float64)

        return cls(float(doc["lr"]), arr("objective"), arr("gap"), arr("test_acc"), doc["seconds"])


class PlanStore:
    """Results of one dataset under one protocol, in the convex suite's
    :class:`~refinedlr_bench.convex.CellStore` layout (``DIR/cells.json``, ``DIR/norms-*.npy``:
    the mean over seeds of a recorded run's ``[T, 2]`` l1/l2 norms, float32), keyed by
    :attr:`Config.key`."""

    def __init__(self, directory: Path) -> None:
        self._store = CellStore(directory)
        self.dir = directory
        self.cells = self._store.cells  # key -> result document

    @classmethod
    def for_data(cls, root: Path, data: TabularData, protocol: ConvexProtocol) -> PlanStore:
        key = json.dumps(
            [PLAN_TRAINER, protocol.training_key(data, 0), data.fingerprint], sort_keys=True
        )
        return cls(root / f"{data.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}")

    def get(self, config: Config) -> Result | None:
        doc = self.cells.get(config.key)
        if doc is None or (config.record and not self._store.norm_path(config.key).exists()):
            return None
        return Result.from_doc(doc)

    def norms(self, config: Config) -> FloatArray:
        """The recorded mean norms ``[T, 2]`` (l1, l2) of a trained ``record=True`` config."""
        return np.asarray(self._store.norms(config.key), dtype=np.float64)

    def put(self, config: Config, doc: dict[str, Any], norms: FloatArray | None) -> None:
        self._store.put(config.key, doc, norms)

    def save(self) -> None:
        self._store.save()


def padded_lrs(config: Config, length: int) -> FloatArray:
    """``lr * s_t`` for the ``T`` steps of the config's schedule, then zeros up to ``length``."""
    out = np.zeros(length)
    out[: config.steps] = config.lr * config.schedule.preview()
    return out


def prefix(schedule: Schedule, steps: int) -> Tabulated:
    """``schedule`` stopped after ``steps`` steps (multiplier 0 afterwards): its final iterate is
    the one after ``steps`` steps of ``schedule``."""
    values = np.where(np.arange(schedule.total_steps) < steps, schedule.preview(), 0.0)
    return Tabulated(
        total_steps=schedule.total_steps,
        values=values,
        provenance={"prefix_of": schedule.fingerprint(), "steps": int(steps)},
    )


def train(
    data: TabularData,
    protocol: ConvexProtocol,
    configs: Iterable[Config],
    store: PlanStore,
    *,
    log: Log | None = None,
) -> dict[str, Result]:
    """Results of ``configs`` (by :attr:`Config.key`): cached ones read, the others trained, one
    batched tensor per number of epochs, and stored."""
    configs = list({c.key: c for c in configs}.values())
    out: dict[str, Result] = {}
    todo: dict[int, list[Config]] = {}
    spe = steps_per_epoch(data.X_train.shape[0], protocol.batch_size)
    for c in configs:
        cached = store.get(c)
        if cached is not None:
            out[c.key] = cached
        else:
            todo.setdefault(-(-c.steps // spe), []).append(c)
    if not todo:
        return out
    fstar = float(cached_fstar(data, protocol.l2, store.dir)["fstar"])
    for epochs, group in sorted(todo.items()):
        length = epochs * spe
        lrs = np.stack([padded_lrs(c, length) for c in group])
        res = train_batched(
            data.X_train,
            data.y_train,
            data.n_classes,
            lrs,
            adam=[c.optimizer == "adam" for c in group],
            seeds=protocol.seeds,
            epochs=epochs,
            l2=protocol.l2,
            batch_size=protocol.batch_size,
            betas=protocol.betas,
            eps=protocol.eps,
            record_norms=[c.record for c in group],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            obj = objective(data.X_train, data.y_train, res.weights, l2=protocol.l2)  # [S, C]
            acc = accuracy(data.X_test, data.y_test, res.weights)
        for j, c in enumerate(group):
            doc = {
                "lr": c.lr,
                "steps": c.steps,
                "objective": [json_float(v) for v in obj[:, j]],
                "gap": [json_float(float(v) - fstar) for v in obj[:, j]],
                "test_acc": [json_float(v) for v in acc[:, j]],
                "seconds": round(res.seconds, 3),
                "batch_runs": len(group) * len(protocol.seeds),
            }
            per_seed = res.norms_of(j)
            norms = None if per_seed is None else per_seed[:, : c.steps].astype(np.float64)
            store.put(c, doc, None if norms is None else norms.mean(axis=0))
            out[c.key] = Result.from_doc(doc)
        store.save()
        if log is not None:
            log(
                f"  {data.name}: {len(group)} configs x {len(protocol.seeds)} seeds, "
                f"{length} steps, {res.seconds:.1f} s"
            )
    return out


@dataclasses.dataclass
class Tuned:
    """The LR search of one (optimizer, schedule) at one horizon: every grid point's result."""

    optimizer: str
    schedule: Schedule
    grid: LRGrid
    results: dict[int, Result]

    def means(self) -> dict[int, float]:
        return {k: r.mean_objective for k, r in self.results.items()}

    @property
    def best_k(self) -> int | None:
        return self.grid.best(self.means())

    @property
    def best(self) -> Result:
        k = self.best_k
        if k is None:
            raise ValueError(f"every LR diverged for {self.optimizer} {self.schedule.kind}")
        return self.results[k]

    @property
    def status(self) -> str:
        return self.grid.status(self.means())

    def config(self, k: int) -> Config:
        return Config(self.optimizer, self.schedule, lr_of(k))


def tune(
    data: TabularData,
    protocol: ConvexProtocol,
    arms: Mapping[tuple[str, str], Schedule],
    store: PlanStore,
    *,
    extra: Sequence[Config] = (),
    log: Log | None = None,
) -> tuple[dict[tuple[str, str], Tuned], dict[str, Result]]:
    """Tune the peak LR of each ``(optimizer, name) -> schedule`` as the convex suite does, and
    train the ``extra`` configurations with the first round. Returns the searches and the
    results of the extra configurations (by key)."""
    tuned = {
        (opt, name): Tuned(opt, sched, protocol.first_grid(opt), {})
        for (opt, name), sched in arms.items()
    }
    extra_results: dict[str, Result] = {}
    pending_extra = list(extra)
    t0 = time.perf_counter()
    while True:
        pending: list[tuple[Tuned, int]] = []
        for t in tuned.values():
            while True:
                for k in t.grid.ks:
                    if k not in t.results and (hit := store.get(t.config(k))) is not None:
                        t.results[k] = hit
                if not t.grid.extend(t.means()):
                    break
            pending += [(t, k) for k in t.grid.missing(t.means())]
        if not pending and not pending_extra:
            break
        configs = [t.config(k) for t, k in pending] + pending_extra
        results = train(data, protocol, configs, store, log=log)
        for t, k in pending:
            t.results[k] = results[t.config(k).key]
        for c in pending_extra:
            extra_results[c.key] = results[c.key]
        pending_extra = []
    if log is not None and time.perf_counter() - t0 > 1.0:
        log(f"  {data.name}: tuned {len(tuned)} searches in {time.perf_counter() - t0:.0f} s")
    return tuned, extra_results
