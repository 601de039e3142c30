"""The planning evidence on logistic regression: transfer, horizons, continued training, prediction.

For one dataset (:func:`run_dataset`), both optimizers, the convex suite's protocol:

* **Cross-schedule transfer.** Linear decay at its tuned LR is the source; every target arm's
  peak LR is predicted with :func:`refinedlr.plan.transfer_lr` under constant norms and under
  the linear run's recorded norms (mean over seeds; l1 for Adam, l2 for SGD, the suite's
  convention), and the target is *trained at that LR itself*. Also trained: the target at
  linear decay's LR (reuse). The regret is the mean final gap over seeds at that LR over the
  mean gap at the target's own tuned LR (the suite's search).
* **Horizon transfer.** Each of linear, cosine and WSD 1-sqrt, tuned at the suite's horizon
  ``T``, predicts its LR at ``h T`` (constant norms; recorded norms carried on normalised time
  ``"fraction"`` or step for step ``"step"``; reuse), and is tuned at ``h T`` by the same search.
* **Continued training.** WSD 1-sqrt tuned at ``T`` is checkpointed at ``0.8 T`` (before its
  cooldown) and extended to ``2 T`` by :func:`refinedlr.plan.extend` (both families and the
  default, constant and recorded norms), by continuing at the same LR with the 20% 1-sqrt
  cooldown moved to the new end (:func:`same_lr`), and by a re-warm-up followed by cosine
  (:func:`rewarm_cosine`); all run at the source's LR, and every continuation equals the source
  run on its first ``0.8 T`` steps (same LRs, same data order), so training it whole from step
  0 is the same computation as resuming the checkpoint. The oracle is WSD 1-sqrt tuned at ``2 T``.
* **Loss prediction.** :func:`refinedlr.plan.predict` from the linear run, with and without its
  loss curve (``f(x_t) - f*`` after ``t`` steps, measured by stopping the run at 64 points,
  :func:`~refinedlr_bench.plan_train.prefix`), against the other arms' observed gaps.

On the 19 development datasets the suite's committed 1x sweeps (``research/results/convex/
runs.csv``) are imported into the cache (:func:`import_committed`), so the 1x searches are the
suite's own and are not retrained. The held-out datasets run the same code with the frozen design
(:class:`Experiment`), and tune everything themselves.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from refinedlr import Schedule, Tabulated
from refinedlr.plan import ExtensionOption, PlanWarning, extension_options, predict, transfer_lr
from refinedlr.schedules import Continuation

from refinedlr_bench.convex import ConvexProtocol, TabularData, cached_fstar
from refinedlr_bench.grid import lr_of
from refinedlr_bench.logreg import steps_per_epoch
from refinedlr_bench.plan_tables import read_rows, write_rows
from refinedlr_bench.plan_train import Config, PlanStore, Result, Tuned, prefix, train, tune
from refinedlr_bench.schedule_arms import SCHEDULE_ARMS, ArmContext

__all__ = [
    "CHECKPOINT",
    "CROSS_TARGETS",
    "EXTENSION_ONLY",
    "FIT_FROM",
    "HORIZONS",
    "HORIZON_SCHEDULES",
    "Experiment",
    "Outcome",
    "import_committed",
    "option_of",
    "replace_extension",
    "rewarm_cosine",
    "run_dataset",
    "same_lr",
]

FloatArray = npt.NDArray[np.float64]
Log = Callable[[str], None]
OPTIMIZERS = ("adam", "sgd")

#: The non-linear arms of the convex suite (not schedule-free, not refinement).
CROSS_TARGETS = ("cosine", "cosine-10", "wsd", "wsd-1sqrt", "step", "constant", "1/t", "1/sqrt_t")
HORIZON_SCHEDULES = ("linear", "cosine", "wsd-1sqrt")
HORIZONS = (0.25, 0.5, 2.0, 4.0)
#: The checkpoint of the continued run, a fraction of its horizon (where WSD's cooldown starts).
CHECKPOINT = 0.8
#: ``fit_from`` values tried for ``predict(losses=...)`` (the library's default is 0.1).
FIT_FROM = (0.0, 0.1, 0.25, 0.5)
#: Points of the source run's loss curve (the ``points`` of :func:`refinedlr.plan.predict`).
CURVE_POINTS = 64
#: The re-warm-up's length, a fraction of the new horizon (the deep suite's warm-up fraction).
REWARM = 0.05


@dataclasses.dataclass(frozen=True)
class Experiment:
    """What to measure on a dataset.

    Attributes:
        targets: the cross-schedule targets (source: linear decay at ``T``).
        horizons: per schedule, the horizon factors it is transferred to (source: itself at ``T``).
        methods: transfer methods: ``constant``, ``recorded-fraction``, ``recorded-step``,
            ``reuse`` (at ``T`` the two recorded ones coincide and are reported as one).
        extension: continuation arms to train (``extend``, ``extend-rescale``,
            ``extend-cooldown``, ``extend-recorded``, ``same-lr``, ``rewarm-cosine``).
        extend_family, extend_norms: how the ``extend`` arm is planned.
        prediction: run the loss-prediction part.
    """

    targets: tuple[str, ...] = CROSS_TARGETS
    horizons: Mapping[str, tuple[float, ...]] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(HORIZON_SCHEDULES, HORIZONS)
    )
    methods: tuple[str, ...] = ("constant", "recorded-fraction", "recorded-step", "reuse")
    extension: tuple[str, ...] = (
        "extend",
        "extend-rescale",
        "extend-cooldown",
        "extend-recorded",
        "same-lr",
        "rewarm-cosine",
    )
    extend_family: str = "best"
    extend_norms: str = "constant"
    prediction: bool = True


#: The continued-training part alone (``refinedlr bench plan --parts extension``): every
#: continuation arm and its fresh oracle at ``2 T``; no transfer, no horizon or prediction runs.
EXTENSION_ONLY = Experiment(targets=(), horizons={}, methods=("constant",), prediction=False)


@dataclasses.dataclass
class Outcome:
    """The rows one dataset contributes to the report's tables (plain dicts, CSV-ready)."""

    transfer: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    extension: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    prediction: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def write(self, out: Path, prefix: str = "") -> None:
        """``OUT/PREFIXtransfer.csv``, ``extension.csv``, ``prediction.csv``, ``runs.csv``."""
        for part in ("transfer", "extension", "prediction", "runs"):
            rows = getattr(self, part)
            if rows:
                write_rows(out / f"{prefix}{part}.csv", rows)


def replace_extension(out: Path, outcome: Outcome) -> None:
    """Rewrite ``OUT/extension.csv`` with ``outcome``'s continuations, and the continuations'
    rows of ``OUT/runs.csv`` (the other parts' rows are kept as they are, per dataset)."""
    write_rows(out / "extension.csv", outcome.extension)
    old = read_rows(out / "runs.csv")
    new: dict[str, list[dict[str, Any]]] = {}
    for r in outcome.runs:
        new.setdefault(r["dataset"], []).append(r)
    order = list(dict.fromkeys([*(r["dataset"] for r in old), *new]))
    rows: list[Mapping[str, Any]] = []
    for name in order:
        rows += [r for r in old if r["dataset"] == name and r["part"] != "extension"]
        rows += new.get(name, [])
    write_rows(out / "runs.csv", rows)


# ----------------------------------------------------------------------------------------------
# schedules


def arm_schedule(name: str, steps: int, steps_per_epoch: int, optimizer: str) -> Schedule:
    """The convex suite's arm ``name`` on a horizon of ``steps``."""
    ctx = ArmContext(total_steps=steps, steps_per_epoch=steps_per_epoch, optimizer=optimizer)
    return SCHEDULE_ARMS[name].build(ctx)


def same_lr(base: Schedule, at_step: int, total_steps: int, decay: float = 0.2) -> Continuation:
    """Continue at the LR in use (the peak) and move the 1-sqrt cooldown (``decay`` of the new
    horizon) to the new end: the usual way to lengthen a WSD run."""
    return Continuation(
        total_steps,
        base=base,
        at_step=at_step,
        level=float(base.preview()[at_step - 1]),
        cooldown=max(1, round(decay * total_steps)),
        cooldown_shape="1-sqrt",
        provenance={"planned_by": "same-lr"},
    )


def rewarm_cosine(
    base: Schedule, at_step: int, total_steps: int, warmup: float = REWARM
) -> Tabulated:
    """The steps before ``at_step`` as ``base``; then a linear re-warm-up from ``1/W`` to the peak
    over ``W = round(warmup * total_steps)`` steps, then cosine to 0 at the new horizon (as
    :class:`refinedlr.Cosine`: ``(1 + cos(pi i / n)) / 2`` for ``i = 0 .. n - 1``).

    >>> from refinedlr import Constant
    >>> rewarm_cosine(Constant(4), 2, 10, warmup=0.2).preview().round(3).tolist()
    [1.0, 1.0, 0.5, 1.0, 1.0, 0.933, 0.75, 0.5, 0.25, 0.067]
    """
    head = base.preview()[:at_step]
    W = max(1, round(warmup * total_steps))
    n = total_steps - at_step - W
    if n < 1:
        raise ValueError(f"no steps left for the cosine after a {W}-step re-warm-up")
    ramp = np.arange(1, W + 1) / W
    cos = 0.5 * (1.0 + np.cos(np.pi * np.arange(n) / n))
    return Tabulated(
        total_steps=total_steps,
        values=np.concatenate([head, ramp, cos]),
        provenance={"planned_by": "rewarm-cosine", "at_step": at_step, "warmup": W},
    )


# ----------------------------------------------------------------------------------------------
# committed results


def import_committed(
    runs_csv: Path,
    data: TabularData,
    protocol: ConvexProtocol,
    store: PlanStore,
    arms: Sequence[str],
) -> int:
    """Copy the convex suite's committed 1x results of ``data`` (``runs.csv``) for ``arms`` into
    ``store`` as if trained here, when they were made with this protocol (the same seeds, steps
    and ``f*``). Returns the number of configurations imported."""
    spe = steps_per_epoch(data.X_train.shape[0], protocol.batch_size)
    T = protocol.epochs_for(spe) * spe
    fstar = float(cached_fstar(data, protocol.l2, store.dir)["fstar"])
    groups: dict[tuple[str, str, int], dict[int, dict[str, str]]] = {}
    with runs_csv.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["dataset"] == data.name and row["schedule"] in arms:
                key = (row["optimizer"], row["schedule"], int(row["lr_index"]))
                groups.setdefault(key, {})[int(row["seed"])] = row
    n = 0
    for (opt, arm, k), seeds in groups.items():
        if sorted(seeds) != list(protocol.seeds):
            continue
        rows = [seeds[s] for s in protocol.seeds]
        if int(rows[0]["steps"]) != T or abs(float(rows[0]["fstar"]) - fstar) > 1e-9:
            continue
        config = Config(opt, arm_schedule(arm, T, spe, opt), lr_of(k))
        if config.key in store.cells:
            continue
        store.put(
            config,
            {
                "lr": config.lr,
                "steps": T,
                "objective": [float(r["objective"]) for r in rows],
                "gap": [float(r["gap"]) for r in rows],
                "test_acc": [float(r["test_acc"]) for r in rows],
                "seconds": float(rows[0]["batch_seconds"]),
                "batch_runs": int(rows[0]["batch_runs"]),
                "imported": str(runs_csv),
            },
            None,
        )
        n += 1
    if n:
        store.save()
    return n


# ----------------------------------------------------------------------------------------------
# one dataset


def _kind_col(optimizer: str) -> int:
    """The column of the recorded ``[T, 2]`` (l1, l2) norms the suite uses for ``optimizer``."""
    return 0 if optimizer == "adam" else 1


def _regret_row(base: dict[str, Any], res: Result, best: Result, best_lr: float) -> dict[str, Any]:
    gap, best_gap = res.mean_gap, best.mean_gap
    return {
        **base,
        "lr": res.lr,
        "best_lr": best_lr,
        "log2_error": math.log2(res.lr / best_lr),
        "gap": gap,
        "best_gap": best_gap,
        "regret": gap / best_gap if best_gap > 0 else math.nan,
        "gaps": ";".join(f"{g:.6g}" for g in res.gap),
        "best_gaps": ";".join(f"{g:.6g}" for g in best.gap),
    }


class _Dataset:
    """State shared by the parts of :func:`run_dataset` on one dataset."""

    def __init__(
        self,
        data: TabularData,
        protocol: ConvexProtocol,
        store: PlanStore,
        log: Log | None,
    ) -> None:
        self.data, self.protocol, self.store, self.log = data, protocol, store, log
        self.spe = steps_per_epoch(data.X_train.shape[0], protocol.batch_size)
        self.T = protocol.epochs_for(self.spe) * self.spe
        self.tuned: dict[tuple[float, str, str], Tuned] = {}

    def steps(self, h: float) -> int:
        return max(1, round(h * self.T))

    def schedule(self, name: str, opt: str, h: float = 1.0) -> Schedule:
        return arm_schedule(name, self.steps(h), self.spe, opt)

    def tune(
        self, h: float, names: Sequence[str], extra: Sequence[Config] = ()
    ) -> dict[str, Result]:
        arms = {(o, n): self.schedule(n, o, h) for o in OPTIMIZERS for n in names}
        tuned, results = tune(self.data, self.protocol, arms, self.store, extra=extra, log=self.log)
        for (o, n), t in tuned.items():
            self.tuned[(h, o, n)] = t
        return results

    def best(self, opt: str, name: str, h: float = 1.0) -> tuple[float, Result]:
        t = self.tuned[(h, opt, name)]
        k = t.best_k
        if k is None:
            raise RuntimeError(f"{self.data.name}: every LR of {opt} {name} at {h}x diverged")
        return lr_of(k), t.results[k]

    def train(self, configs: Sequence[Config]) -> dict[str, Result]:
        return train(self.data, self.protocol, configs, self.store, log=self.log)

    def run_rows(self, part: str, label: str, config: Config, res: Result) -> list[dict[str, Any]]:
        return [
            {
                "dataset": self.data.name,
                "part": part,
                "optimizer": config.optimizer,
                "arm": label,
                "steps": config.steps,
                "lr": config.lr,
                "seed": seed,
                "gap": float(res.gap[i]),
                "objective": float(res.objective[i]),
                "test_acc": float(res.test_acc[i]),
            }
            for i, seed in enumerate(self.protocol.seeds)
        ]


def _predicted_lrs(
    lr: float,
    source: Schedule,
    target: Schedule,
    norms: FloatArray,
    methods: Sequence[str],
) -> dict[str, float]:
    """The target's peak LR under each transfer method."""
    out: dict[str, float] = {}
    same_horizon = source.total_steps == target.total_steps
    for m in methods:
        if m == "reuse":
            out[m] = lr
        elif m == "constant":
            out[m] = transfer_lr(lr, source, target)
        elif m.startswith("recorded"):
            carry = "step" if m == "recorded-step" else "fraction"
            name = "recorded" if same_horizon else m
            out[name] = transfer_lr(lr, source, target, norms=norms, carry=carry)  # type: ignore[arg-type]
    return out


def run_dataset(
    data: TabularData,
    protocol: ConvexProtocol,
    store: PlanStore,
    experiment: Experiment,
    *,
    log: Log | None = None,
) -> Outcome:
    """Every part of the planning evidence on one dataset (resumable through ``store``)."""
    ds = _Dataset(data, protocol, store, log)
    ex = experiment
    out = Outcome()
    name, T = data.name, ds.T
    sources = sorted(
        {"linear", *ex.horizons, *(["wsd-1sqrt"] if ex.extension else [])},
        key=lambda s: (s != "linear", s),
    )
    # 1. the searches at T (from the committed results where imported)
    ds.tune(1.0, [*sources, *(t for t in ex.targets if t not in sources)])
    # 2. at T: the sources' recorded runs, the constant-norm and reuse transfers, the loss curve
    rec = {
        (o, s): Config(o, ds.schedule(s, o), ds.best(o, s)[0], record=True)
        for o in OPTIMIZERS
        for s in sources
    }
    first = [c for c in ex.methods if not c.startswith("recorded")]
    lin = {o: ds.schedule("linear", o) for o in OPTIMIZERS}
    candidates = {o: {t: ds.schedule(t, o) for t in ex.targets} for o in OPTIMIZERS}
    curve_steps: dict[str, list[int]] = {}
    batch: list[Config] = list(rec.values())
    for o in OPTIMIZERS:
        lr = ds.best(o, "linear")[0]
        for t in ex.targets:
            for lr_t in _predicted_lrs(lr, lin[o], candidates[o][t], np.ones(T), first).values():
                batch.append(Config(o, candidates[o][t], lr_t))
        if ex.prediction:
            steps = predict(lr, lin[o], candidates[o], points=CURVE_POINTS).source.steps
            curve_steps[o] = [int(s) for s in steps]
            batch += [Config(o, prefix(lin[o], s), lr) for s in curve_steps[o]]
    results = ds.train(batch)
    norms = {(o, s): store.norms(c)[:, _kind_col(o)] for (o, s), c in rec.items()}
    # 3. at T: the recorded-norm transfers
    transfers: dict[tuple[str, str, str], Config] = {}
    for o in OPTIMIZERS:
        lr = ds.best(o, "linear")[0]
        for t in ex.targets:
            lrs = _predicted_lrs(lr, lin[o], candidates[o][t], norms[(o, "linear")], ex.methods)
            for m, lr_t in lrs.items():
                transfers[(o, t, m)] = Config(o, candidates[o][t], lr_t)
    results.update(ds.train(list(transfers.values())))
    for (o, t, m), c in transfers.items():
        best_lr, best = ds.best(o, t)
        res = results[c.key]
        base: dict[str, Any] = {"part": "schedule", "dataset": name, "optimizer": o}
        base |= {"source": "linear"}
        base |= {"target": t, "horizon": 1.0, "method": m, "steps": T}
        out.transfer.append(_regret_row(base, res, best, best_lr))
        out.runs += ds.run_rows("schedule", f"{t}/{m}", c, res)
    # 4. loss prediction from the linear run
    if ex.prediction:
        out.prediction += _prediction_rows(
            ds, lin, candidates, norms, results, transfers, curve_steps
        )
    # 5. horizons (and, at 2T, the continuations)
    for h in sorted(
        {h for hs in ex.horizons.values() for h in hs} | ({2.0} if ex.extension else set())
    ):
        names = [s for s, hs in ex.horizons.items() if h in hs]
        if ex.extension and h == 2.0 and "wsd-1sqrt" not in names:
            names.append("wsd-1sqrt")
        preds: dict[tuple[str, str, str], Config] = {}
        for o in OPTIMIZERS:
            for s in names:
                if h not in ex.horizons.get(s, ()):
                    continue
                lr = ds.best(o, s)[0]
                target = ds.schedule(s, o, h)
                for m, lr_t in _predicted_lrs(
                    lr, ds.schedule(s, o), target, norms[(o, s)], ex.methods
                ).items():
                    preds[(o, s, m)] = Config(o, target, lr_t)
        conts: dict[tuple[str, str], tuple[Config, dict[str, Any]]] = {}
        if ex.extension and h == 2.0:
            for o in OPTIMIZERS:
                conts.update(_continuations(ds, o, ex, norms[(o, "wsd-1sqrt")]))
        extra = [c for c in preds.values()] + [c for c, _ in conts.values()]
        results.update(ds.tune(h, names, extra))
        for (o, s, m), c in preds.items():
            best_lr, best = ds.best(o, s, h)
            search = ds.tuned[(h, o, s)]
            base = {"part": "horizon", "dataset": name, "optimizer": o, "source": s}
            base |= {"target": s, "horizon": h, "method": m, "steps": c.steps}
            row = _regret_row(base, results[c.key], best, best_lr)
            row |= {"grid_status": search.status, "grid_points": len(search.results)}
            out.transfer.append(row)
            out.runs += ds.run_rows("horizon", f"{s}@{h:g}x/{m}", c, results[c.key])
        for (o, arm), (c, info) in conts.items():
            best_lr, best = ds.best(o, "wsd-1sqrt", 2.0)
            search = ds.tuned[(2.0, o, "wsd-1sqrt")]
            res = results[c.key]
            out.extension.append(
                {
                    "dataset": name,
                    "optimizer": o,
                    "arm": arm,
                    "steps": c.steps,
                    "at_step": info["at_step"],
                    "lr": c.lr,
                    "gap": res.mean_gap,
                    "fresh_gap": best.mean_gap,
                    "fresh_lr": best_lr,
                    "fresh_runs": len(search.results),
                    "new_steps": c.steps - info["at_step"],
                    "fresh_steps": c.steps * len(search.results),
                    "gaps": ";".join(f"{g:.6g}" for g in res.gap),
                    "fresh_gaps": ";".join(f"{g:.6g}" for g in best.gap),
                    **{k: v for k, v in info.items() if k != "at_step"},
                }
            )
            out.runs += ds.run_rows("extension", arm, c, res)
    return out


def option_of(options: Sequence[ExtensionOption], family: str) -> ExtensionOption:
    """The best of ``options`` (ranked by :func:`refinedlr.plan.extension_options`) of ``family``.

    A rescale that lands on the level in use is reported as a cooldown, so a family can be
    missing; that is an error here, not a silent substitute.
    """
    for o in options:
        if o.family == family:
            return o
    found = sorted({o.family for o in options})
    raise ValueError(f"no {family!r} continuation among the planned options (only {found})")


def _continuations(
    ds: _Dataset, o: str, ex: Experiment, norms: FloatArray
) -> dict[tuple[str, str], tuple[Config, dict[str, Any]]]:
    """The continuation arms of ``o``: WSD 1-sqrt at its tuned LR, from ``0.8 T`` to ``2 T``."""
    base = ds.schedule("wsd-1sqrt", o)
    lr = ds.best(o, "wsd-1sqrt")[0]
    k, T1 = int(CHECKPOINT * ds.T), 2 * ds.T
    out: dict[tuple[str, str], tuple[Config, dict[str, Any]]] = {}

    def planned(opts: list[Any], family: str) -> tuple[Continuation, float]:
        pick = opts[0] if family == "best" else option_of(opts, family)
        return pick.schedule, pick.bound_ratio

    need_const = any(a in ex.extension for a in ("extend-rescale", "extend-cooldown")) or (
        "extend" in ex.extension and ex.extend_norms == "constant"
    )
    need_rec = "extend-recorded" in ex.extension or (
        "extend" in ex.extension and ex.extend_norms == "recorded"
    )
    options = {
        "constant": extension_options(base, at_step=k, total_steps=T1) if need_const else [],
        "recorded": extension_options(base, at_step=k, total_steps=T1, norms=norms)
        if need_rec
        else [],
    }
    arms: dict[str, tuple[Schedule, dict[str, Any]]] = {}
    for arm in ex.extension:
        if arm.startswith("extend"):
            family = {"extend-rescale": "rescale", "extend-cooldown": "cooldown"}.get(
                arm, ex.extend_family if arm == "extend" else "best"
            )
            source = (
                "recorded"
                if arm == "extend-recorded"
                else (ex.extend_norms if arm == "extend" else "constant")
            )
            sched, ratio = planned(options[source], family)
            arms[arm] = (
                sched,
                {
                    "family": sched.provenance.get("family", ""),
                    "level": sched.level,
                    "cooldown": sched.cooldown_steps,
                    "shape": sched.cooldown_shape,
                    "bound_ratio": ratio,
                    "norms": source,
                },
            )
        elif arm == "same-lr":
            arms[arm] = (same_lr(base, k, T1), {"family": "same-lr"})
        elif arm == "rewarm-cosine":
            arms[arm] = (rewarm_cosine(base, k, T1), {"family": "rewarm-cosine"})
        else:
            raise ValueError(f"unknown continuation arm {arm!r}")
    for arm, (plan, info) in arms.items():
        out[(o, arm)] = (Config(o, plan, lr), {"at_step": k, **info})
    return out


def _prediction_rows(
    ds: _Dataset,
    lin: Mapping[str, Schedule],
    candidates: Mapping[str, Mapping[str, Schedule]],
    norms: Mapping[tuple[str, str], FloatArray],
    results: Mapping[str, Result],
    transfers: Mapping[tuple[str, str, str], Config],
    curve_steps: Mapping[str, list[int]],
) -> list[dict[str, Any]]:
    """Per (optimizer, norms, fit): each candidate's predicted final value beside its observed
    gaps (at its tuned LR and at the transferred LR)."""
    import warnings

    rows: list[dict[str, Any]] = []
    for o in OPTIMIZERS:
        lr = ds.best(o, "linear")[0]
        losses = np.full(ds.T, np.nan)
        for s in curve_steps[o]:
            losses[s - 1] = results[Config(o, prefix(lin[o], s), lr).key].mean_gap
        for norm_name, g in (("constant", None), ("recorded", norms[(o, "linear")])):
            method = "constant" if g is None else "recorded"
            for fit in (None, *FIT_FROM):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", PlanWarning)
                    p = predict(
                        lr,
                        lin[o],
                        candidates[o],
                        norms=g,
                        losses=None if fit is None else losses,
                        fit_from=0.1 if fit is None else fit,
                        points=CURVE_POINTS,
                    )
                dropped = any(issubclass(w.category, PlanWarning) for w in caught)
                for f in p.candidates:
                    c = transfers.get((o, f.name, method))
                    at_pred = None if c is None else results.get(c.key)
                    rows.append(
                        {
                            "dataset": ds.data.name,
                            "optimizer": o,
                            "norms": norm_name,
                            "fit_from": "none" if fit is None else fit,
                            "fit_dropped": dropped,
                            "candidate": f.name,
                            "lr": f.lr,
                            "predicted": f.final,
                            "predicted_source": p.source.final,
                            "observed_tuned": ds.best(o, f.name)[1].mean_gap,
                            "observed_at_lr": math.nan if at_pred is None else at_pred.mean_gap,
                            "source_gap": ds.best(o, "linear")[1].mean_gap,
                        }
                    )
    return rows


# ----------------------------------------------------------------------------------------------
# many datasets


def run_datasets(
    names: Sequence[str],
    protocol: ConvexProtocol,
    experiment: Experiment,
    *,
    load: Callable[[str], TabularData],
    cache_root: Path,
    committed: Path | None = None,
    log: Log | None = None,
) -> Outcome:
    """:func:`run_dataset` on each dataset in turn (the committed 1x results of each imported
    first when ``committed`` names the convex suite's ``runs.csv``), the rows concatenated."""
    import time

    total = Outcome()
    arms = sorted({"linear", "wsd-1sqrt", *experiment.targets, *experiment.horizons})
    for i, name in enumerate(names):
        t0 = time.perf_counter()
        data = load(name)
        store = PlanStore.for_data(cache_root, data, protocol)
        if committed is not None and committed.exists():
            n = import_committed(committed, data, protocol, store, arms)
            if n and log is not None:
                log(f"  {name}: {n} configurations imported from {committed}")
        one = run_dataset(data, protocol, store, experiment, log=log)
        for part in ("transfer", "extension", "prediction", "runs"):
            getattr(total, part).extend(getattr(one, part))
        if log is not None:
            log(f"[{i + 1}/{len(names)}] {name}: {time.perf_counter() - t0:.1f} s")
    return total
