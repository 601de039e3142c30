"""The convex part of the refinement study (issue 7): tune every arm like the convex suite.

The arms (:mod:`refinedlr_bench.study_arms`) may need the recorded gradient norms of another
arm's best run. Every arm's peak LR is tuned exactly as in ``refinedlr bench convex`` (the same
:class:`~refinedlr_bench.convex.ConvexProtocol`: one wide factor-2 grid, extended at edges,
refined to sqrt 2 around the best; the same seeds), so every schedule gets the same LR-tuning
budget.

Results are cached per configuration (:class:`~.convex.CellStore`) under the study's cache; runs
that the convex suite already made (linear decay, cosine and the paper's refinement, same
schedule fingerprint) are read from its cache (``research/results/convex/cache``) instead of
retrained.
When an arm needs norms that were not recorded (e.g. the paper's refined run, for iterated
refinement, or Adam's step norms), that one configuration is rerun with recording.

Example (tiny)::

    outcome = run_arms(load_data("iris"), ConvexProtocol(seeds=(0, 1), step_budget=200, max_epochs=5),
                       arms=["linear", "refined-0.1", "pilot-0.25"], cache_root=Path("/tmp/c"))
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from refinedlr import Schedule
from refinedlr.bounds import best_scale
from refinedlr.fileio import atomic_write

from refinedlr_bench.convex import (
    Cell,
    CellStore,
    ConvexProtocol,
    TabularData,
    cached_fstar,
    cell_from_doc,
    train_configs,
)
from refinedlr_bench.grid import LRGrid
from refinedlr_bench.jsonio import json_float, numpy_default
from refinedlr_bench.logreg import steps_per_epoch
from refinedlr_bench.study_arms import OPTIMIZERS, STUDY_ARMS, ArmInputs, Dep

__all__ = [
    "ArmResult",
    "StudyOutcome",
    "arm_cost",
    "dumps",
    "outcome_to_json",
    "run_arms",
    "step_record",
]

FloatArray = npt.NDArray[np.float64]


# ----------------------------------------------------------------------------------------------
# results


@dataclasses.dataclass
class ArmResult:
    """One arm on one dataset and optimizer after tuning."""

    optimizer: str
    arm: str
    schedule: Schedule
    grid: LRGrid
    cells: dict[int, Cell]
    total_steps: int
    status: str

    @property
    def chosen(self) -> Cell | None:
        k = self.grid.best({k: c.mean_objective for k, c in self.cells.items()})
        return None if k is None else self.cells[k]

    @property
    def sweep_points(self) -> int:
        """LR grid points evaluated (each one run per seed)."""
        return len(self.cells)


@dataclasses.dataclass
class StudyOutcome:
    """Every arm on one dataset."""

    name: str
    epochs: int
    steps_per_epoch: int
    total_steps: int
    fstar: float
    results: dict[tuple[str, str], ArmResult]
    deps: dict[tuple[str, str], Dep]
    record_runs: int
    train_seconds: float
    trained_runs: int
    seconds: float

    def gaps(self, optimizer: str, arm: str) -> FloatArray | None:
        r = self.results.get((optimizer, arm))
        c = None if r is None else r.chosen
        return None if c is None else c.gap


def arm_cost(outcome: StudyOutcome, optimizer: str, arm: str) -> tuple[float, float]:
    """``(own, total)`` compute of ``arm`` in full-horizon runs per seed.

    ``own``: the arm's LR sweep (grid points x its horizon fraction); ``total`` adds the sweeps
    of everything it depends on, recursively (each counted once).
    """
    seen: set[str] = set()

    def sweep(name: str) -> float:
        r = outcome.results[(optimizer, name)]
        return r.sweep_points * r.total_steps / outcome.total_steps

    def walk(name: str) -> float:
        if name in seen:
            return 0.0
        seen.add(name)
        return sweep(name) + sum(walk(d) for d in STUDY_ARMS[name].needs)

    return sweep(arm), walk(arm)


# ----------------------------------------------------------------------------------------------
# the tuning loop


class _Stores:
    """The study's cell store per horizon, reading through to the convex suite's cache."""

    def __init__(
        self, data: TabularData, protocol: ConvexProtocol, root: Path, fallback: Path | None
    ) -> None:
        self.data = data
        self.protocol = protocol
        self.root = root
        self.fallback = fallback
        self._own: dict[int, CellStore] = {}
        self._fb: dict[int, CellStore | None] = {}

    def dirname(self, epochs: int) -> str:
        return f"{self.data.name}-{self.protocol.training_key(self.data, epochs)}"

    def own(self, epochs: int) -> CellStore:
        if epochs not in self._own:
            d = self.root / self.dirname(epochs)
            self._own[epochs] = CellStore(d)
            fb = None if self.fallback is None else self.fallback / self.dirname(epochs)
            if fb is not None and (fb / "fstar.json").exists() and not (d / "fstar.json").exists():
                shutil.copyfile(fb / "fstar.json", d / "fstar.json")
        return self._own[epochs]

    def fb(self, epochs: int) -> CellStore | None:
        if epochs not in self._fb:
            d = None if self.fallback is None else self.fallback / self.dirname(epochs)
            self._fb[epochs] = CellStore(d) if d is not None and d.exists() else None
        return self._fb[epochs]

    def get(self, epochs: int, key: str) -> dict[str, Any] | None:
        doc = self.own(epochs).get(key)
        if doc is None and (fb := self.fb(epochs)) is not None:
            doc = fb.get(key)
        return doc

    def norms(self, epochs: int, key: str) -> np.ndarray | None:
        n = self.own(epochs).norms(key)
        if n is None and (fb := self.fb(epochs)) is not None:
            n = fb.norms(key)
        return n

    def adam_path(self, epochs: int, key: str) -> Path:
        return self.own(epochs).adam_norm_path(key)


def _epochs_for(protocol: ConvexProtocol, spe: int, fraction: float) -> int:
    full = protocol.epochs_for(spe)
    return full if fraction >= 1.0 else max(1, round(fraction * full))


def run_arms(
    data: TabularData,
    protocol: ConvexProtocol,
    *,
    arms: Sequence[str],
    optimizers: Sequence[str] = OPTIMIZERS,
    cache_root: Path,
    fallback_root: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> StudyOutcome:
    """Tune every arm (and the arms they need) on ``data``; resume from the caches."""
    t_start = time.perf_counter()
    say = log or (lambda _m: None)
    n = data.X_train.shape[0]
    spe = steps_per_epoch(n, protocol.batch_size)
    full_epochs = protocol.epochs_for(spe)
    T_full = full_epochs * spe
    stores = _Stores(data, protocol, cache_root, fallback_root)
    fstar = float(cached_fstar(data, protocol.l2, stores.own(full_epochs).dir)["fstar"])

    # the arms and everything they need, dependencies first
    order: list[str] = []

    def add(name: str) -> None:
        if name in order:
            return
        for d in STUDY_ARMS[name].needs:
            add(d)
        order.append(name)

    for a in arms:
        add(a)

    results: dict[tuple[str, str], ArmResult] = {}
    deps: dict[tuple[str, str], Dep] = {}
    train_seconds = 0.0
    trained_runs = 0
    record_runs = 0

    def epochs_of(name: str) -> int:
        return _epochs_for(protocol, spe, STUDY_ARMS[name].horizon)

    def key(opt: str, name: str, k: int) -> str:
        return CellStore.key(opt, name, results[(opt, name)].schedule.fingerprint(), k)

    def means(opt: str, name: str) -> dict[int, float]:
        return {k: c.mean_objective for k, c in results[(opt, name)].cells.items()}

    def load_cached(opt: str, name: str) -> None:
        r = results[(opt, name)]
        for k in r.grid.ks:
            if k not in r.cells:
                doc = stores.get(epochs_of(name), key(opt, name, k))
                if doc is not None:
                    r.cells[k] = cell_from_doc(opt, name, k, doc)

    def dep_ready(opt: str, name: str, want_adam: bool) -> Dep | str | None:
        """The Dep, ``"record"``/``"adam"`` when a recording run is due, or None (not settled)."""
        if (opt, name) in deps and (not want_adam or deps[(opt, name)].adam is not None):
            return deps[(opt, name)]
        r = results.get((opt, name))
        if r is None or not r.grid.settled(means(opt, name)):
            return None
        c = r.chosen
        if c is None:
            return None
        kk = key(opt, name, c.k)
        per_seed = stores.norms(epochs_of(name), kk)
        if per_seed is None:
            return "record"
        adam = None
        if want_adam:
            p = stores.adam_path(epochs_of(name), kk)
            if not p.exists():
                return "adam"
            adam = np.load(p, allow_pickle=False).astype(np.float64)
        ps = per_seed.astype(np.float64)
        d = Dep(mean=ps.mean(axis=0), per_seed=ps, lr=c.lr, k=c.k, adam=adam)
        deps[(opt, name)] = d
        return d

    rounds = 0
    while True:
        pending: list[tuple[str, str, int, str]] = []  # (opt, arm, k, kind) kind: grid|record|adam
        for opt in optimizers:
            for name in order:
                arm = STUDY_ARMS[name]
                if opt not in arm.optimizers:
                    continue
                if (opt, name) not in results:
                    ready: dict[str, Dep] = {}
                    blocked = False
                    for i, d in enumerate(arm.needs):
                        st = dep_ready(opt, d, arm.adam_norms and i == 0)
                        if isinstance(st, Dep):
                            ready[d] = st
                            continue
                        blocked = True
                        if st in ("record", "adam"):
                            c = results[(opt, d)].chosen
                            assert c is not None
                            pending.append((opt, d, c.k, st))
                    if blocked:
                        continue
                    T_arm = epochs_of(name) * spe
                    inp = ArmInputs(opt, T_arm, T_full, spe, ready)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        sched = arm.build(inp)
                    k_fixed = arm.fixed_index(inp)
                    if k_fixed is not None:
                        grid = LRGrid([k_fixed], max_extensions=0)
                    else:
                        grid = protocol.first_grid(opt)
                    results[(opt, name)] = ArmResult(opt, name, sched, grid, {}, T_arm, "")
                    load_cached(opt, name)
                r = results[(opt, name)]
                while r.grid.extend(means(opt, name)):
                    load_cached(opt, name)
                pending += [(opt, name, k, "grid") for k in r.grid.missing(means(opt, name))]
        pending = list(dict.fromkeys(pending))
        if not pending:
            break
        rounds += 1
        by_epochs: dict[int, list[tuple[str, str, int, str]]] = {}
        for job in pending:
            by_epochs.setdefault(epochs_of(job[1]), []).append(job)
        for ep, jobs in sorted(by_epochs.items()):
            sec, runs = _train(data, protocol, jobs, results, stores, ep, fstar, key)
            train_seconds += sec
            trained_runs += runs
            record_runs += sum(1 for j in jobs if j[3] != "grid")
            say(
                f"  {data.name}: round {rounds}, {ep} epochs: {len(jobs)} configs x "
                f"{len(protocol.seeds)} seeds, {sec:.1f} s"
            )

    for (opt, name), r in results.items():
        r.status = r.grid.status(means(opt, name))
    return StudyOutcome(
        name=data.name,
        epochs=full_epochs,
        steps_per_epoch=spe,
        total_steps=T_full,
        fstar=fstar,
        results=results,
        deps=deps,
        record_runs=record_runs,
        train_seconds=train_seconds,
        trained_runs=trained_runs,
        seconds=time.perf_counter() - t_start,
    )


def _train(
    data: TabularData,
    protocol: ConvexProtocol,
    jobs: Sequence[tuple[str, str, int, str]],
    results: Mapping[tuple[str, str], ArmResult],
    stores: _Stores,
    epochs: int,
    fstar: float,
    key: Callable[[str, str, int], str],
) -> tuple[float, int]:
    arms = [STUDY_ARMS[name] for _o, name, _k, _kind in jobs]
    record = [
        arm.record or arm.record_adam or kind != "grid"
        for arm, (_o, _n, _k, kind) in zip(arms, jobs, strict=True)
    ]
    rec_adam = [
        kind == "adam" or arm.record_adam
        for arm, (_o, _n, _k, kind) in zip(arms, jobs, strict=True)
    ]
    docs, res = train_configs(
        data,
        protocol,
        [(opt, results[(opt, name)].schedule, k) for opt, name, k, _kind in jobs],
        epochs=epochs,
        fstar=fstar,
        round_no=0,
        record=record,
        record_adam=any(rec_adam),
    )
    store = stores.own(epochs)
    for j, ((opt, name, k, kind), doc) in enumerate(zip(jobs, docs, strict=True)):
        kk = key(opt, name, k)
        if rec_adam[j] and opt == "adam":
            a = res.adam_norms_of(j)
            assert a is not None
            with atomic_write(stores.adam_path(epochs, kk), binary=True, fsync=False) as fh:
                np.save(fh, np.asarray(a, np.float32), allow_pickle=False)
        if kind == "grid":
            store.put(kk, doc, res.norms_of(j) if record[j] else None)
            results[(opt, name)].cells[k] = cell_from_doc(opt, name, k, doc, cached=False)
        elif stores.norms(epochs, kk) is None:
            # a recording rerun of a configuration already measured: keep its measured results
            # (the cell), add only the norms it lacked
            n = res.norms_of(j)
            assert n is not None
            store.put_norms(kk, n)
    store.save()
    return res.seconds, len(jobs) * len(protocol.seeds)


def step_record(
    outcome: StudyOutcome, stores_root: Path, fallback: Path | None, optimizer: str, arm: str
) -> FloatArray | None:
    """The mean per-step *step-norm* record of a recorded arm's chosen run: the l2 gradient norm
    for SGD, the l2 norm of Adam's update direction for Adam (``None`` if not recorded)."""
    r = outcome.results.get((optimizer, arm))
    c = None if r is None else r.chosen
    if c is None or r is None:
        return None
    key = CellStore.key(optimizer, arm, r.schedule.fingerprint(), c.k)
    for d in (stores_root, fallback):
        if d is None:
            continue
        for sub in sorted(d.glob(f"{outcome.name}-*")):
            store = CellStore(sub)
            if optimizer == "adam":
                p = store.adam_norm_path(key)
                a = np.load(p, allow_pickle=False) if p.exists() else None
                col = 0
            else:
                a = store.norms(key)
                col = 1
            if a is not None and a.shape[1] == r.total_steps:
                return np.asarray(a.astype(np.float64).mean(axis=0)[:, col], dtype=np.float64)
    return None


def outcome_to_json(
    outcome: StudyOutcome, stores_root: Path | None = None, fallback: Path | None = None
) -> dict[str, Any]:
    """A JSON-able digest: per (optimizer, arm) the chosen LR, per-seed gaps and costs; for the
    verification arms also ``bound_self``, the best-scale last-iterate bound of the arm's schedule
    on its own run's step-norm record (:func:`step_record`)."""
    arms: dict[str, Any] = {}
    for (opt, name), r in outcome.results.items():
        c = r.chosen
        own, total = arm_cost(outcome, opt, name)
        bound_self = None
        if STUDY_ARMS[name].group == "verify" and stores_root is not None:
            rec = step_record(outcome, stores_root, fallback, opt, name)
            if rec is not None:
                bound_self = float(best_scale(r.schedule.preview(), rec)[1])
        arms[f"{opt}|{name}"] = {
            "optimizer": opt,
            "arm": name,
            "status": r.status,
            "lr": None if c is None else c.lr,
            "k": None if c is None else c.k,
            "gap": None if c is None else [json_float(v) for v in c.gap],
            "test_acc": None if c is None else [json_float(v) for v in c.test_acc],
            "steps": r.total_steps,
            "sweep_points": r.sweep_points,
            "cost_own": own,
            "cost_total": total,
            "schedule": r.schedule.preview()[:: max(1, r.total_steps // 400)].round(5).tolist(),
            "provenance": dict(getattr(r.schedule, "provenance", {}) or {}),
            "bound_self": bound_self,
        }
    return {
        "dataset": outcome.name,
        "epochs": outcome.epochs,
        "steps_per_epoch": outcome.steps_per_epoch,
        "total_steps": outcome.total_steps,
        "fstar": outcome.fstar,
        "train_seconds": outcome.train_seconds,
        "trained_runs": outcome.trained_runs,
        "record_runs": outcome.record_runs,
        "seconds": outcome.seconds,
        "arms": arms,
    }


def dumps(doc: Any) -> str:
    """JSON text of a digest (numpy scalars and arrays converted)."""
    return json.dumps(doc, default=numpy_default, indent=1, sort_keys=True)
