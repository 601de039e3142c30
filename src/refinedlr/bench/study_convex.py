"""The convex part of the refinement study (issue 7): tune every candidate like the convex suite.

Each *arm* is a way to make a schedule on one dataset and optimizer: linear decay, the paper's
refinement, a candidate variant, or a cheap variant refined from a short pilot run. Arms may need
the recorded gradient norms of another arm's best run (``needs``): linear decay for most, the
paper's refined run for iterated refinement, a pilot linear-decay run for cheap refinement. Every
arm's peak LR is tuned exactly as in ``refinedlr bench convex`` (the same :class:`~.convex.Protocol`:
one wide factor-2 grid, extended at edges, refined to sqrt 2 around the best; the same seeds), so
every schedule gets the same LR-tuning budget.

Results are cached per configuration (:class:`~.convex.CellStore`) under the study's cache; runs
that the convex suite already made (linear decay, cosine and the paper's refinement, same
schedule fingerprint) are read from its cache (``results/convex/cache``) instead of retrained.
When an arm needs norms that were not recorded (e.g. the paper's refined run, for iterated
refinement, or Adam's step norms), that one configuration is rerun with recording.

Example (tiny)::

    outcome = run_arms(load_data("iris"), Protocol(seeds=(0, 1), step_budget=200, max_epochs=5),
                       arms=["linear", "refined-0.1", "pilot-0.25"], cache_root=Path("/tmp/c"))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refinedlr.bench.convex import (
    Cell,
    CellStore,
    Protocol,
    TabularData,
    _cell_from_doc,
    _fstar,
    _jsonable,
)
from refinedlr.bench.grid import LRGrid, lr_of
from refinedlr.bench.logreg import accuracy, objective, steps_per_epoch, train_batched
from refinedlr.bench.methods import METHODS, MethodContext
from refinedlr.bench.study_variants import prefix_norms, variant_values
from refinedlr.bounds import best_scale
from refinedlr.registry import get_schedule
from refinedlr.schedules import Schedule, Tabulated

__all__ = [
    "ARMS",
    "Arm",
    "ArmInputs",
    "ArmResult",
    "Dep",
    "StudyOutcome",
    "arm_cost",
    "register_arm",
    "run_arms",
]

FloatArray = npt.NDArray[np.float64]
OPTIMIZERS = ("adam", "sgd")


# ----------------------------------------------------------------------------------------------
# arms


@dataclasses.dataclass(frozen=True)
class Dep:
    """The recorded run of an arm another arm depends on (its best LR).

    ``mean`` ``[T, 2]`` and ``per_seed`` ``[S, T, 2]`` hold the l1 and l2 gradient norms;
    ``adam`` ``[S, T, 2]`` Adam's step norms (update l2 norm, preconditioned gradient norm) when
    they were asked for.
    """

    mean: FloatArray
    per_seed: FloatArray
    lr: float
    k: int
    adam: FloatArray | None = None


@dataclasses.dataclass(frozen=True)
class ArmInputs:
    """What an arm's ``build`` gets: the horizon, optimizer and its dependencies' records."""

    optimizer: str
    total_steps: int
    full_steps: int
    steps_per_epoch: int
    deps: Mapping[str, Dep]

    @property
    def norm_kind(self) -> str:
        return "l1" if self.optimizer == "adam" else "l2"

    def record(self, dep: str) -> FloatArray:
        """The paper's record of ``dep``: mean l1 norms (Adam) or l2 norms (SGD)."""
        col = 0 if self.norm_kind == "l1" else 1
        return np.asarray(self.deps[dep].mean[:, col], dtype=np.float64)

    def method_context(self, dep: str = "linear") -> MethodContext:
        """A :class:`~.methods.MethodContext` with ``dep``'s record as the "linear" run."""
        d = self.deps[dep]
        return MethodContext(
            total_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
            optimizer=self.optimizer,
            linear_norms={"l1": d.mean[:, 0], "l2": d.mean[:, 1]},
            linear_lr=d.lr,
            linear_norms_per_seed=d.per_seed,
        )


@dataclasses.dataclass(frozen=True)
class Arm:
    """A schedule-making arm of the study.

    Attributes:
        name: key and label.
        build: ``ArmInputs -> Schedule`` on ``inputs.total_steps`` steps.
        needs: arms whose best run's norms ``build`` reads.
        adam_norms: also needs Adam's step norms of ``needs[0]``'s best run (Adam only).
        horizon: fraction of the full horizon (in epochs) this arm trains for (pilot runs).
        record: record the gradient norms of every run of this arm.
        optimizers: where the arm applies.
        group: ``"baseline"``, ``"candidate"``, ``"pilot"``, ``"cheap"`` or ``"verify"``.
        description: one line for the report.
        fixed_k: no LR tuning: run only this grid index (a function of the inputs), e.g. a
            verification run at another arm's tuned LR.
        record_adam: record Adam's step norms of this arm's runs too.
    """

    name: str
    build: Callable[[ArmInputs], Schedule]
    needs: tuple[str, ...] = ()
    adam_norms: bool = False
    horizon: float = 1.0
    record: bool = False
    optimizers: tuple[str, ...] = OPTIMIZERS
    group: str = "candidate"
    description: str = ""
    fixed_k: Callable[[ArmInputs], int] | None = None
    record_adam: bool = False


ARMS: dict[str, Arm] = {}


def register_arm(arm: Arm, *, replace: bool = False) -> Arm:
    """Add ``arm`` to :data:`ARMS`."""
    if arm.name in ARMS and not replace:
        raise ValueError(f"an arm named {arm.name!r} is already registered")
    ARMS[arm.name] = arm
    return arm


def _from_method(name: str) -> Callable[[ArmInputs], Schedule]:
    method = METHODS[name]
    if method.needs_linear:
        return lambda inp: method.build(inp.method_context("linear"))
    return lambda inp: method.build(
        MethodContext(
            total_steps=inp.total_steps,
            steps_per_epoch=inp.steps_per_epoch,
            optimizer=inp.optimizer,
        )
    )


def _tab(inp: ArmInputs, values: FloatArray, **prov: Any) -> Tabulated:
    return Tabulated(total_steps=inp.total_steps, values=values, provenance=prov)


def _refine_dep(dep: str, tau: float = 0.1, **kw: Any) -> Callable[[ArmInputs], Schedule]:
    """Refine (a variant, default the paper's) from ``dep``'s record onto the full horizon."""

    def build(inp: ArmInputs) -> Schedule:
        v = variant_values(inp.record(dep), norm=inp.norm_kind, tau=tau, **kw)
        return _tab(inp, v, source=dep, tau=tau, **kw)

    return build


def _adam_step(column: int, label: str) -> Callable[[ArmInputs], Schedule]:
    def build(inp: ArmInputs) -> Schedule:
        a = inp.deps["linear"].adam
        assert a is not None
        rec = np.asarray(a[:, :, column], dtype=np.float64).mean(axis=0)
        v = variant_values(rec, norm="l2", tau=0.1)
        return _tab(inp, v, source=f"linear ({label})", tau=0.1, power=2)

    return build


def _prefix(fraction: float, **kw: Any) -> Callable[[ArmInputs], Schedule]:
    def build(inp: ArmInputs) -> Schedule:
        rec = prefix_norms(inp.record("linear"), fraction)
        v = variant_values(rec, norm=inp.norm_kind, tau=0.1, **kw)
        return _tab(inp, v, source=f"first {fraction:.0%} of linear", **kw)

    return build


def _linear(inp: ArmInputs) -> Schedule:
    return get_schedule("linear", inp.total_steps)


for _arm in (
    Arm("linear", _linear, record=True, group="baseline", description="1 - t/T (reference)"),
    Arm("cosine", _from_method("cosine"), group="baseline", description="(1 + cos(pi t/T)) / 2"),
    Arm(
        "refined-0.1",
        _from_method("refined-0.1"),
        needs=("linear",),
        group="baseline",
        description="the paper's refinement, tau 0.1 (Alg. 2 l1 for Adam, Alg. 1 l2 for SGD)",
    ),
    Arm(
        "refined-0.5",
        _from_method("refined-0.5"),
        needs=("linear",),
        group="baseline",
        description="the paper's refinement, tau 0.5",
    ),
):
    register_arm(_arm)

for _name in (
    "refined-floor-med",
    "refined-floor-q25",
    "refined-clip-2",
    "refined-power-0.5",
    "refined-mix-0.5",
    "refined-warmup-linear",
    "refined-bound-select",
    "refined-bound-kappa-0.5",
    "refined-auto-tau",
    "refined-envelope",
    "refined-anti",
):
    register_arm(
        Arm(_name, _from_method(_name), needs=("linear",), description=METHODS[_name].description)
    )

register_arm(
    Arm(
        "refined-adam-update",
        _adam_step(0, "update norm"),
        needs=("linear",),
        adam_norms=True,
        optimizers=("adam",),
        description="Adam: Alg. 1 (weights ^-2) on the l2 norm of the update m_hat/(sqrt(v_hat)+eps)",
    )
)
register_arm(
    Arm(
        "refined-adam-precond",
        _adam_step(1, "preconditioned gradient norm"),
        needs=("linear",),
        adam_norms=True,
        optimizers=("adam",),
        description="Adam: Alg. 1 on the preconditioned gradient norm sqrt(sum g^2/(sqrt(v_hat)+eps))",
    )
)
# iterated refinement toward a fixed point: refine again from the refined run's own norms
register_arm(
    Arm(
        "refined-iter-2",
        _refine_dep("refined-0.1"),
        needs=("refined-0.1",),
        record=True,
        description="iterated: the paper's refinement (tau 0.1) of the tuned refined-0.1 run",
    )
)
register_arm(
    Arm(
        "refined-iter-3",
        _refine_dep("refined-iter-2"),
        needs=("refined-iter-2",),
        description="iterated twice: refinement of the tuned refined-iter-2 run",
    )
)
# cheap refinement: a pilot linear-decay run of a fraction of the horizon, or the prefix
for _f in (0.1, 0.25):
    register_arm(
        Arm(
            f"pilot-linear-{_f:g}",
            _linear,
            horizon=_f,
            record=True,
            group="pilot",
            description=f"linear decay on {_f:.0%} of the epochs (the pilot run, tuned)",
        )
    )
    register_arm(
        Arm(
            f"pilot-{_f:g}",
            _refine_dep(f"pilot-linear-{_f:g}"),
            needs=(f"pilot-linear-{_f:g}",),
            group="cheap",
            description=(
                f"the paper's refinement (tau 0.1) of the best {_f:.0%}-horizon pilot run, "
                "carried over on normalised time"
            ),
        )
    )
    for _v, _kw in (("envelope", {"envelope": True}), ("floor-med", {"floor": 0.5})):
        register_arm(
            Arm(
                f"pilot-{_v}-{_f:g}",
                _refine_dep(f"pilot-linear-{_f:g}", **_kw),
                needs=(f"pilot-linear-{_f:g}",),
                group="cheap",
                description=(
                    f"refined-{_v} from the best {_f:.0%}-horizon pilot run, carried over on "
                    "normalised time"
                ),
            )
        )
    register_arm(
        Arm(
            f"prefix-{_f:g}",
            _prefix(_f),
            needs=("linear",),
            group="cheap",
            description=(
                f"the paper's refinement (tau 0.1) of the first {_f:.0%} of the linear run, "
                "continued flat"
            ),
        )
    )


# verification runs: one run each (no LR tuning), recorded, for "refine, then verify"
def _dep_k(dep: str) -> Callable[[ArmInputs], int]:
    return lambda inp: inp.deps[dep].k


for _arm in (
    Arm(
        "verify-linear",
        _linear,
        needs=("linear",),
        fixed_k=_dep_k("linear"),
        record=True,
        record_adam=True,
        group="verify",
        description="linear decay at its tuned LR, rerun with Adam's step norms recorded",
    ),
    Arm(
        "verify-refined-0.1",
        _from_method("refined-0.1"),
        needs=("linear", "refined-0.1"),
        fixed_k=_dep_k("refined-0.1"),
        record=True,
        record_adam=True,
        group="verify",
        description="the paper's refined schedule at its tuned LR, recorded",
    ),
    Arm(
        "verify-refined-at-linear",
        _from_method("refined-0.1"),
        needs=("linear",),
        fixed_k=_dep_k("linear"),
        record=True,
        record_adam=True,
        group="verify",
        description="the paper's refined schedule at linear decay's tuned LR (one run), recorded",
    ),
    Arm(
        "verify-linear-pilot-0.1",
        _linear,
        needs=("pilot-linear-0.1",),
        fixed_k=_dep_k("pilot-linear-0.1"),
        record=True,
        record_adam=True,
        group="verify",
        description="linear decay (full horizon) at the 10% pilot's tuned LR, recorded",
    ),
    Arm(
        "verify-pilot-0.1",
        _refine_dep("pilot-linear-0.1"),
        needs=("pilot-linear-0.1",),
        fixed_k=_dep_k("pilot-linear-0.1"),
        record=True,
        record_adam=True,
        group="verify",
        description="the pilot-0.1 refined schedule at the pilot's tuned LR (one run), recorded",
    ),
):
    register_arm(_arm)


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
        return sweep(name) + sum(walk(d) for d in ARMS[name].needs)

    return sweep(arm), walk(arm)


# ----------------------------------------------------------------------------------------------
# the tuning loop


class _Stores:
    """The study's cell store per horizon, reading through to the convex suite's cache."""

    def __init__(
        self, data: TabularData, protocol: Protocol, root: Path, fallback: Path | None
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
        h = hashlib.sha256(("adam|" + key).encode()).hexdigest()[:16]
        return self.own(epochs).dir / f"adamnorms-{h}.npy"


def _epochs_for(protocol: Protocol, spe: int, fraction: float) -> int:
    full = protocol.epochs_for(spe)
    return full if fraction >= 1.0 else max(1, round(fraction * full))


def run_arms(
    data: TabularData,
    protocol: Protocol,
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
    fstar = float(_fstar(data, protocol.l2, stores.own(full_epochs).dir)["fstar"])

    # the arms and everything they need, dependencies first
    order: list[str] = []

    def add(name: str) -> None:
        if name in order:
            return
        for d in ARMS[name].needs:
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
        return _epochs_for(protocol, spe, ARMS[name].horizon)

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
                    r.cells[k] = _cell_from_doc(opt, name, k, doc)

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
                arm = ARMS[name]
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
                    lo, hi = protocol.grid_range(opt)
                    if arm.fixed_k is not None:
                        grid = LRGrid([arm.fixed_k(inp)], max_extensions=0)
                    else:
                        grid = LRGrid.span(
                            lo,
                            hi,
                            protocol.grid_step,
                            fine_step=protocol.fine_step,
                            extend_points=protocol.extend_points,
                            k_min=protocol.k_min,
                            k_max=protocol.k_max,
                            max_extensions=protocol.max_extensions,
                        )
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
            sec, runs = _train(data, protocol, jobs, results, stores, ep, spe, fstar, key)
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
    protocol: Protocol,
    jobs: Sequence[tuple[str, str, int, str]],
    results: Mapping[tuple[str, str], ArmResult],
    stores: _Stores,
    epochs: int,
    spe: int,
    fstar: float,
    key: Callable[[str, str, int], str],
) -> tuple[float, int]:
    T = epochs * spe
    C = len(jobs)
    lrs = np.empty((C, T))
    for j, (opt, name, k, _kind) in enumerate(jobs):
        lrs[j] = lr_of(k) * results[(opt, name)].schedule.preview()
    record = [
        ARMS[name].record or ARMS[name].record_adam or kind != "grid" for _o, name, _k, kind in jobs
    ]
    rec_adam = [kind == "adam" or ARMS[name].record_adam for _o, name, _k, kind in jobs]
    want_adam = any(rec_adam)
    res = train_batched(
        data.X_train,
        data.y_train,
        data.n_classes,
        lrs,
        adam=[opt == "adam" for opt, *_r in jobs],
        seeds=protocol.seeds,
        epochs=epochs,
        l2=protocol.l2,
        batch_size=protocol.batch_size,
        betas=protocol.betas,
        eps=protocol.eps,
        record_norms=record,
        record_adam=want_adam,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obj = objective(data.X_train, data.y_train, res.weights, l2=protocol.l2)
        te = accuracy(data.X_test, data.y_test, res.weights)
        tr = accuracy(data.X_train, data.y_train, res.weights)
    store = stores.own(epochs)
    for j, (opt, name, k, kind) in enumerate(jobs):
        kk = key(opt, name, k)
        o = obj[:, j]
        doc = {
            "lr": lr_of(k),
            "objective": [_jsonable(float(v)) for v in o],
            "gap": [_jsonable(float(v) - fstar) for v in o],
            "test_acc": [_jsonable(float(v)) for v in te[:, j]],
            "train_acc": [_jsonable(float(v)) for v in tr[:, j]],
            "seconds": res.seconds,
            "batch_runs": C * len(protocol.seeds),
            "round": 0,
        }
        if rec_adam[j] and opt == "adam":
            a = res.adam_norms_of(j)
            assert a is not None
            np.save(stores.adam_path(epochs, kk), np.asarray(a, np.float32), allow_pickle=False)
        if kind == "grid":
            store.put(kk, doc, res.norms_of(j) if record[j] else None)
        elif stores.norms(epochs, kk) is None:
            # a recording rerun of a configuration already measured: keep its measured results
            # (the cell), add only the norms it lacked
            n = res.norms_of(j)
            assert n is not None
            np.save(store._norm_path(kk), np.asarray(n, np.float32), allow_pickle=False)
        if kind == "grid":
            cell = _cell_from_doc(opt, name, k, doc)
            cell.cached = False
            results[(opt, name)].cells[k] = cell
    store.save()
    return res.seconds, C * len(protocol.seeds)


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
    h = hashlib.sha256(("adam|" + key).encode()).hexdigest()[:16]
    for d in (stores_root, fallback):
        if d is None:
            continue
        for sub in sorted(d.glob(f"{outcome.name}-*")):
            if optimizer == "adam":
                p = sub / f"adamnorms-{h}.npy"
                a = np.load(p, allow_pickle=False) if p.exists() else None
                col = 0
            else:
                a = CellStore(sub).norms(key) if (sub / "cells.json").exists() else None
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
        if ARMS[name].group == "verify" and stores_root is not None:
            rec = step_record(outcome, stores_root, fallback, opt, name)
            if rec is not None:
                bound_self = float(best_scale(r.schedule.preview(), rec)[1])
        arms[f"{opt}|{name}"] = {
            "optimizer": opt,
            "arm": name,
            "status": r.status,
            "lr": None if c is None else c.lr,
            "k": None if c is None else c.k,
            "gap": None if c is None else [_jsonable(float(v)) for v in c.gap],
            "test_acc": None if c is None else [_jsonable(float(v)) for v in c.test_acc],
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


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x)}")


def dumps(doc: Any) -> str:
    """JSON text of a digest (numpy scalars and arrays converted)."""
    return json.dumps(doc, default=_json_default, indent=1, sort_keys=True)
