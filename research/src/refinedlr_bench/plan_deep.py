"""The planning evidence on the deep tasks.

Image task (the deep suite's Fashion-MNIST CNN, SGD with momentum, :mod:`refinedlr_bench.deep`):

* **Horizons.** Linear decay tuned at ``T0 = 800`` steps (5% warm-up) predicts its peak LR at
  400 and 1600 steps (constant norms, recorded norms carried by ``"fraction"`` and ``"step"``);
  WSD 1-sqrt likewise at 1600. Each is trained at the predicted LR itself and swept on the deep
  suite's grid ``0.1 * 2^j`` (three points around linear decay's 1x choice, one more beyond an
  edge while the best is there).
* **Continued training.** WSD 1-sqrt tuned at 800 steps is continued from its checkpoint at
  step 640 (before its cooldown) to 1600 by :func:`refinedlr.plan.extend`, by the same LR with
  the cooldown moved to the end, and by a re-warm-up followed by cosine, against WSD 1-sqrt swept
  at 1600 (the oracle). A continuation equals the source run on its first 640 steps (the same
  LRs, initialisation and data order on a deterministic CPU), so it is trained whole.
* **Loss prediction** on both deep tasks from their committed results (no training):
  :func:`refinedlr.plan.predict` from linear decay's run (its norms, its training-loss curve)
  ranks the other schedules, compared with their observed final metric at their tuned LRs.

LM task (the deep suite's character-level GPT, AdamW): horizons only. Linear decay tuned at 1200
steps predicts its peak LR at 600 and 2400 steps, trained and swept as above (its metric:
validation bits per character). Continued training is not run on the LM (the issue asks it of
the CNN; the budget did not stretch to both).

Runs use :func:`refinedlr_bench.deep_train.train_image` unchanged (a schedule spec and an LR),
one process, one thread, cached as JSON plus the norm record under ``OUT/cache/deep``. The 800-step
runs of linear decay and WSD 1-sqrt come from the deep suite's committed cache
(``research/results/deep/image/cache``), the same function on the same configuration.
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
from refinedlr import Schedule, read_record
from refinedlr.fileio import atomic_write
from refinedlr.plan import PlanWarning, extension_options, predict, transfer_lr

from refinedlr_bench.deep import TINY, DeepProtocol, build_schedule, task_spec
from refinedlr_bench.deep_train import (
    DataSource,
    ImageConfig,
    LMConfig,
    get_data,
    train_image,
    train_lm,
)
from refinedlr_bench.jsonio import to_jsonable
from refinedlr_bench.plan_convex import FIT_FROM, option_of, rewarm_cosine, same_lr
from refinedlr_bench.plan_tables import write_rows
from refinedlr_bench.stats import t_interval

__all__ = ["COMMITTED_DEEP", "SEEDS", "DeepPlan", "Run", "deep_predictions", "run"]

FloatArray = npt.NDArray[np.float64]
Log = Callable[[str], None]

COMMITTED_DEEP = Path("research/results/deep")
SEEDS = (0, 1)
CHECKPOINT = 0.8


@dataclasses.dataclass(frozen=True)
class Run:
    label: str
    schedule: Schedule
    lr: float
    seed: int

    @property
    def name(self) -> str:
        fp = self.schedule.fingerprint()
        h = hashlib.sha256(f"{fp}|{self.lr!r}|{self.seed}".encode()).hexdigest()[:12]
        return f"{self.schedule.total_steps}-{h}"


class DeepPlan:
    """One deep task's runs (``"image"`` or ``"lm"``): cached, trained one at a time; the
    selection metric is the deep suite's (image: final train loss; LM: validation bits/char)."""

    def __init__(
        self, out: Path, quick: bool, data_dir: str | None, log: Log | None, task: str = "image"
    ) -> None:
        spec = task_spec(task)
        self.task = task
        self.protocol: DeepProtocol = spec.protocol
        config: ImageConfig | LMConfig = spec.config
        if quick:
            config = ImageConfig(**TINY["image"]) if task == "image" else LMConfig(**TINY["lm"])
        self.config = config
        self.T0 = config.steps
        self.quick = quick
        self.metric = "train_loss" if task == "image" else "val_bpc"
        self.kind = "l2" if task == "image" else "l1"
        self.source = DataSource(task, cache_dir=data_dir, synthetic=quick)
        self.dir = out / "cache" / "deep" / (f"tiny-{task}" if quick else task)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.rows: dict[str, dict[str, Any]] = {}

    def schedule(self, name: str, steps: int) -> Schedule:
        return build_schedule(name, steps, self.protocol)

    def path(self, run: Run) -> Path:
        return self.dir / f"{run.name}.json"

    def result(self, run: Run) -> dict[str, Any]:
        """The run's result document (trained now unless cached)."""
        path = self.path(run)
        if path.exists():
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            config = dataclasses.replace(self.config, steps=run.schedule.total_steps)
            data = get_data(self.source, config)
            record = path.with_suffix(".norms.csv")
            t0 = time.perf_counter()
            train = train_image if self.task == "image" else train_lm
            spec = run.schedule.to_spec()
            res = train(config, data, spec, run.lr, run.seed, record)  # type: ignore[arg-type]
            doc = {
                "label": run.label,
                "steps": run.schedule.total_steps,
                "lr": run.lr,
                "seed": run.seed,
                "schedule": run.schedule.to_spec(),
                **res,
            }
            with atomic_write(path) as fh:
                fh.write(json.dumps(to_jsonable(doc), indent=1))
            if self.log is not None:
                self.log(
                    f"  {self.task} {run.label} lr {run.lr:.4g} seed {run.seed}: "
                    f"{self.metric} {res['metrics'][self.metric]:.4f}, "
                    f"{time.perf_counter() - t0:.0f} s"
                )
        self.rows[run.name] = {
            "label": run.label,
            "steps": doc["steps"],
            "lr": doc["lr"],
            "seed": doc["seed"],
            **{k: float(v) for k, v in doc["metrics"].items()},
            "seconds": doc.get("seconds"),
            "cpu_seconds": doc.get("cpu_seconds"),
            "load_end": doc.get("load_end"),
        }
        return doc

    def values(self, label: str, schedule: Schedule, lr: float) -> list[float]:
        """The final metric of each seed."""
        return [
            float(self.result(Run(label, schedule, lr, s))["metrics"][self.metric]) for s in SEEDS
        ]

    def loss(self, label: str, schedule: Schedule, lr: float) -> float:
        """Mean final metric over the seeds (``inf`` if one diverged)."""
        values = self.values(label, schedule, lr)
        return float(np.mean(values)) if all(math.isfinite(v) for v in values) else math.inf

    def norms(self, label: str, schedule: Schedule, lr: float) -> FloatArray:
        """The mean over seeds of the runs' recorded norms (image l2, LM l1: the suite's)."""
        per_seed = []
        for s in SEEDS:
            path = self.path(Run(label, schedule, lr, s)).with_suffix(".norms.csv")
            self.result(Run(label, schedule, lr, s))
            per_seed.append(read_record(path).norms(self.kind))
        return np.asarray(np.mean(per_seed, axis=0), dtype=np.float64)

    def sweep(
        self, label: str, schedule: Schedule, center: float
    ) -> tuple[dict[float, float], float]:
        """The grid ``0.1 * 2^j`` from ``center / 2`` to ``2 center``, extended at an edge
        (at most 3 times); returns the means and the best LR."""
        j0 = round(math.log2(center / self.protocol.base_lr))
        js = [j0 - 1, j0, j0 + 1]
        means: dict[float, float] = {}
        for _ in range(1 + self.protocol.max_extensions):
            for j in js:
                lr = self.protocol.base_lr * 2.0**j
                if lr not in means:
                    means[lr] = self.loss(label, schedule, lr)
            best = min(means, key=lambda v: (means[v], v))
            lrs = sorted(means)
            if best == lrs[0]:
                js = [round(math.log2(lrs[0] / self.protocol.base_lr)) - 1]
            elif best == lrs[-1]:
                js = [round(math.log2(lrs[-1] / self.protocol.base_lr)) + 1]
            else:
                break
        return means, min(means, key=lambda v: (means[v], v))

    def import_committed(self, root: Path) -> int:
        """Copy the deep suite's committed 800-step runs of linear decay and WSD 1-sqrt (seeds
        0 and 1) into this cache: the same training function on the same configuration."""
        if self.quick:
            return 0
        n = 0
        for cache in sorted((root / self.task / "cache").glob(f"{self.task}-*")):
            for name in ("linear", "wsd-1sqrt"):
                for f in sorted((cache / name).glob("j*_s*.json")):
                    doc = json.loads(f.read_text(encoding="utf-8"))
                    if doc.get("steps") != self.T0 or doc["seed"] not in SEEDS:
                        continue
                    run = Run(name, self.schedule(name, self.T0), float(doc["lr"]), doc["seed"])
                    path = self.path(run)
                    record = path.with_suffix(".norms.csv")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if not record.exists():  # the records are not committed with this cache
                        shutil.copyfile(cache / name / doc["record"], record)
                    if path.exists():
                        continue
                    keep = {k: doc[k] for k in ("metrics", "seconds", "cpu_seconds", "load_end")}
                    with atomic_write(path) as fh:
                        entry = {"label": name, "steps": self.T0, "lr": run.lr, "seed": run.seed}
                        fh.write(json.dumps({**entry, **keep, "imported": str(f)}, indent=1))
                    n += 1
        return n


def _transfer_row(
    base: dict[str, Any],
    lr: float,
    loss: float,
    best_lr: float,
    best: float,
    means: Mapping[float, float],
) -> dict[str, Any]:
    return {
        **base,
        "lr": lr,
        "best_lr": best_lr,
        "log2_error": math.log2(lr / best_lr),
        "loss": loss,
        "best_loss": best,
        "regret": loss / best,
        "difference": loss - best,
        "grid": ";".join(f"{k:.4g}:{v:.4f}" for k, v in sorted(means.items())),
    }


def _horizons(
    dp: DeepPlan, src: Mapping[str, tuple[Schedule, float]], horizons: Mapping[str, Sequence[float]]
) -> list[dict[str, Any]]:
    """Each source (tuned at ``T0``) transferred to ``h T0``: trained at the predicted LRs and
    swept around the constant-norm prediction."""
    rows: list[dict[str, Any]] = []
    for name, hs in horizons.items():
        sched, lr0 = src[name]
        g = dp.norms(name, sched, lr0)
        for h in hs:
            T = round(h * dp.T0)
            target = dp.schedule(name, T)
            preds = {
                "constant": transfer_lr(lr0, sched, target),
                "recorded-fraction": transfer_lr(lr0, sched, target, norms=g, carry="fraction"),
                "recorded-step": transfer_lr(lr0, sched, target, norms=g, carry="step"),
                "reuse": lr0,
            }
            if name != "linear":
                del preds["recorded-step"]
            pred_loss = {m: dp.loss(f"horizon/{name}", target, v) for m, v in preds.items()}
            means, best = dp.sweep(name, target, preds["constant"])
            for m, v in preds.items():
                base_row = {"task": dp.task, "metric": dp.metric, "target": name, "horizon": h}
                base_row |= {"method": m, "steps": T}
                rows.append(_transfer_row(base_row, v, pred_loss[m], best, means[best], means))
    return rows


def run(out: Path, *, quick: bool, data_dir: str | None, log: Log | None) -> None:
    """The image task's continuation and horizon runs, the LM task's horizon runs (not in
    ``quick``), then the loss prediction on both tasks; writes ``deep_transfer.csv``,
    ``deep_extension.csv``, ``deep_prediction.csv``, ``deep_runs.csv``."""
    dp = DeepPlan(out, quick, data_dir, log)
    n = dp.import_committed(COMMITTED_DEEP)
    if n and log is not None:
        log(f"  image: {n} runs imported from {COMMITTED_DEEP}/image/cache")
    T0 = dp.T0
    # the sources at T0
    src: dict[str, tuple[Schedule, float]] = {}
    for name in ("linear", "wsd-1sqrt"):
        sched = dp.schedule(name, T0)
        _, best = dp.sweep(name, sched, 0.05 if not quick else 0.1)
        src[name] = (sched, best)
    # continued training (first: it is the part the issue asks of the CNN)
    base, lr_w = src["wsd-1sqrt"]
    k, T1 = int(CHECKPOINT * T0), 2 * T0
    oracle_sched = dp.schedule("wsd-1sqrt", T1)
    g_w = dp.norms("wsd-1sqrt", base, lr_w)
    options = extension_options(base, at_step=k, total_steps=T1)
    rec_options = extension_options(base, at_step=k, total_steps=T1, norms=g_w)
    arms: dict[str, tuple[Schedule, dict[str, Any]]] = {}
    for arm, opts, fam in (
        ("extend", options, None),
        ("extend-rescale", options, "rescale"),
        ("extend-cooldown", options, "cooldown"),
        ("extend-recorded", rec_options, None),
    ):
        o = opts[0] if fam is None else option_of(opts, fam)
        s = o.schedule
        info = {"family": o.family, "level": s.level, "cooldown": s.cooldown_steps}
        arms[arm] = (s, info | {"shape": s.cooldown_shape, "bound_ratio": o.bound_ratio})
    arms["same-lr"] = (same_lr(base, k, T1), {"family": "same-lr"})
    arms["rewarm-cosine"] = (rewarm_cosine(base, k, T1), {"family": "rewarm-cosine"})
    extension: list[dict[str, Any]] = []
    losses = {arm: dp.loss(f"extension/{arm}", s, lr_w) for arm, (s, _) in arms.items()}
    means_w, best_w = dp.sweep("wsd-1sqrt", oracle_sched, lr_w / math.sqrt(2))
    fresh_seeds = dp.values("wsd-1sqrt", oracle_sched, best_w)
    same_seeds = dp.values("extension/same-lr", arms["same-lr"][0], lr_w)
    for arm, (plan, info) in arms.items():
        seeds = dp.values(f"extension/{arm}", plan, lr_w)
        d_fresh = t_interval([a - b for a, b in zip(seeds, fresh_seeds, strict=True)])
        d_same = t_interval([a - b for a, b in zip(seeds, same_seeds, strict=True)])
        extension.append(
            {
                "task": "image",
                "arm": arm,
                "steps": T1,
                "at_step": k,
                "lr": lr_w,
                "loss": losses[arm],
                "fresh_loss": means_w[best_w],
                "fresh_lr": best_w,
                "fresh_runs": len(means_w),
                "new_steps": T1 - k,
                "fresh_steps": T1 * len(means_w),
                "ratio_to_fresh": losses[arm] / means_w[best_w],
                "ratio_to_same_lr": losses[arm] / losses["same-lr"],
                "seed_losses": ";".join(f"{v:.4f}" for v in seeds),
                "diff_to_fresh": d_fresh[0],
                "diff_to_fresh_low": d_fresh[1],
                "diff_to_fresh_high": d_fresh[2],
                "diff_to_same_lr": d_same[0],
                "diff_to_same_lr_low": d_same[1],
                "diff_to_same_lr_high": d_same[2],
                **info,
            }
        )
    transfer = _horizons(dp, src, {"linear": (0.5, 2.0), "wsd-1sqrt": (2.0,)})
    rows = list(dp.rows.values())
    if not quick:
        lm = DeepPlan(out, quick, data_dir, log, task="lm")
        n = lm.import_committed(COMMITTED_DEEP)
        if n and log is not None:
            log(f"  lm: {n} runs imported from {COMMITTED_DEEP}/lm/cache")
        lin = lm.schedule("linear", lm.T0)
        src_lm = {"linear": (lin, lm.sweep("linear", lin, 0.016)[1])}
        transfer += _horizons(lm, src_lm, {"linear": (0.5, 2.0)})
        rows += [{"task": "lm", **r} for r in lm.rows.values()]
    write_rows(out / "deep_transfer.csv", transfer)
    write_rows(out / "deep_extension.csv", extension)
    write_rows(out / "deep_runs.csv", rows)
    if not quick:
        write_rows(out / "deep_prediction.csv", deep_predictions(COMMITTED_DEEP))


def _committed_runs(task_dir: Path) -> tuple[dict[str, Any], list[dict[str, str]]]:
    import csv

    summary = json.loads((task_dir / "summary.json").read_text(encoding="utf-8"))
    with (task_dir / "runs.csv").open(newline="", encoding="utf-8") as fh:
        return summary, list(csv.DictReader(fh))


def deep_predictions(root: Path) -> list[dict[str, Any]]:
    """Loss prediction on the committed deep results: from linear decay at its chosen LR (mean
    norms and mean training-loss curve over its seeds), each other fixed schedule's predicted
    final value beside its observed metric at its own chosen LR (mean over seeds)."""
    rows: list[dict[str, Any]] = []
    for task, metric, kind in (("image", "train_loss", "l2"), ("lm", "val_bpc", "l1")):
        task_dir = root / task
        summary, runs = _committed_runs(task_dir)
        spec = task_spec(task)
        T = int(summary["steps"])
        chosen = {n: float(s["best_lr"]) for n, s in summary["schedules"].items() if "best_lr" in s}
        lin_lr = chosen["linear"]
        lin_runs = [r for r in runs if r["schedule"] == "linear" and float(r["lr"]) == lin_lr]
        norms, curves = [], []
        for r in lin_runs:
            rec = task_dir / r["record"]
            norms.append(read_record(rec).norms(kind))
            doc = json.loads(rec.with_name(rec.name.replace(".norms.csv", ".json")).read_text())
            curves.append(doc["curve"])
        g = np.asarray(np.mean(norms, axis=0), dtype=np.float64)
        every = int(curves[0]["every"])
        blocks = np.mean([c["train_loss"] for c in curves], axis=0)
        losses = np.full(T, np.nan)
        ends = np.minimum(np.arange(1, blocks.size + 1) * every, T) - 1
        losses[ends] = blocks
        names = [n for n in ("cosine", "cosine-10", "wsd", "wsd-1sqrt", "step") if n in chosen]
        cands = {n: build_schedule(n, T, spec.protocol) for n in names}
        observed = {
            n: float(
                np.mean(
                    [
                        float(r[metric])
                        for r in runs
                        if r["schedule"] == n and float(r["lr"]) == chosen[n]
                    ]
                )
            )
            for n in names
        }
        lin = build_schedule("linear", T, spec.protocol)
        for norm_name, gg in (("constant", None), ("recorded", g)):
            for fit in (None, *FIT_FROM):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", PlanWarning)
                    p = predict(
                        lin_lr,
                        lin,
                        cands,
                        norms=gg,
                        losses=None if fit is None else losses,
                        fit_from=0.1 if fit is None else fit,
                    )
                dropped = any(issubclass(w.category, PlanWarning) for w in caught)
                for f in p.candidates:
                    rows.append(
                        {
                            "task": task,
                            "metric": metric,
                            "norms": norm_name,
                            "fit_from": "none" if fit is None else fit,
                            "fit_dropped": dropped,
                            "candidate": f.name,
                            "lr": f.lr,
                            "tuned_lr": chosen[f.name],
                            "predicted": f.final,
                            "observed_tuned": observed[f.name],
                            "source_observed": float(np.mean([float(r[metric]) for r in lin_runs])),
                        }
                    )
    return rows
