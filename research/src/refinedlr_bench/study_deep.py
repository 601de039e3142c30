"""The deep part of the refinement study (issue 7): the chosen methods on the deep suite's tasks.

Built on the deep suite (:mod:`refinedlr_bench.deep`, ``refinedlr bench deep``): the same models,
data, protocol (peak LR grid ``base_lr * 2^j``, grid seeds 0 and 1, one extra seed at the chosen
LR) and cache format. The suite's runs (linear decay, the paper's refinement, cosine, ...) are copied from its
cache (``research/results/deep/<task>/cache``) when present and otherwise trained here. Added:

* ``pilot-linear-0.1``: linear decay (same 5% warm-up) on 10% of the steps, its LR tuned on the
  grid (a separate study with the short horizon);
* ``pilot-0.1``: the paper's refinement (tau 0.1) of the best pilot run's record (elementwise
  median over the grid seeds), carried over to the full horizon on normalised time; its LR grid is
  centred on the pilot's best LR (the full linear sweep is not used);
* verification runs (one LR, every seed, recorded): ``verify-linear-pilot`` and ``verify-pilot``
  (linear decay and ``pilot-0.1`` at the pilot's best LR); for the AdamW task also
  ``verify-linear``, ``verify-refined`` (linear decay and the refined schedule at their tuned LRs)
  and ``verify-refined-at-linear`` (the refined schedule at linear decay's tuned LR), which record
  the l2 norm of AdamW's update direction ``m_hat / (sqrt(v_hat) + eps)`` at every step.

"Refine, then verify" (:func:`verify_ratio`) compares the best-scale last-iterate bound of the
candidate's schedule on its own step-norm record with linear decay's on its own: the l2 gradient
norm for SGD (the image task; recorded in every run), the l2 norm of the update direction for
AdamW. The candidate is kept when the ratio is below
:data:`refinedlr.verify.VERIFY_THRESHOLD`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from refinedlr import Schedule, read_record, refine_details
from refinedlr.bounds import best_scale
from refinedlr.verify import VERIFY_THRESHOLD

from refinedlr_bench.deep import DeepSuite, GridPlan, Job, TaskSpec, task_spec
from refinedlr_bench.deep_train import DataSource, init_worker, load_task_data, run_payload
from refinedlr_bench.stats import paired_log_ratio

__all__ = [
    "PILOT_FRACTION",
    "StudyDeepSuite",
    "digest",
    "record_adam_updates",
    "run_task",
    "step_record",
    "verify_ratio",
]

FloatArray = npt.NDArray[np.float64]

PILOT_FRACTION = 0.1
SUITE_SCHEDULES = ("linear", "refined", "cosine", "wsd", "step")


# ----------------------------------------------------------------------------------------------
# AdamW update norms


class _Recorder:
    def __init__(self) -> None:
        self.values: list[float] = []


@contextlib.contextmanager
def record_adam_updates() -> Iterator[_Recorder]:
    """While active, every ``torch.optim.AdamW`` created records, after each ``step()``, the l2
    norm of its bias-corrected update direction ``m_hat / (sqrt(v_hat) + eps)`` over all
    parameters (decoupled weight decay excluded) into the yielded recorder's ``values``."""
    rec = _Recorder()
    original = torch.optim.AdamW

    class RecordingAdamW(original):  # type: ignore[misc, valid-type]
        @torch.no_grad()
        def step(self, closure: Callable[[], float] | None = None) -> Any:
            out = super().step(closure)
            total = 0.0
            for group in self.param_groups:
                b1, b2 = group["betas"]
                eps = group["eps"]
                for p in group["params"]:
                    st = self.state.get(p)
                    if not st or "exp_avg" not in st:
                        continue
                    t = float(st["step"])
                    m = st["exp_avg"] / (1.0 - b1**t)
                    v = st["exp_avg_sq"] / (1.0 - b2**t)
                    total += float(torch.sum((m / (v.sqrt() + eps)) ** 2))
            rec.values.append(math.sqrt(total))
            return out

    torch.optim.AdamW = RecordingAdamW  # type: ignore[misc]
    try:
        yield rec
    finally:
        torch.optim.AdamW = original  # type: ignore[misc]


# ----------------------------------------------------------------------------------------------
# the study


def _fixed_plan(j: int, done: Callable[[int], bool]) -> GridPlan:
    return GridPlan((j,), () if done(j) else (j,), j if done(j) else None, "fixed")


class StudyDeepSuite(DeepSuite):
    """:class:`~refinedlr_bench.deep.DeepSuite` with the study's extra schedules (module docstring).

    Args:
        pilot: the settled pilot study (short horizon, linear decay only), or ``None`` to skip
            the pilot arms.
        adam_verify: add the AdamW verification runs (``verify-linear``, ``verify-refined``,
            ``verify-refined-at-linear``).
        Others as :class:`~refinedlr_bench.deep.DeepSuite`.
    """

    def __init__(
        self,
        spec: TaskSpec,
        out: Path,
        source: DataSource,
        data_fingerprint: str,
        *,
        pilot: DeepSuite | None,
        adam_verify: bool,
        workers: int = 0,
        threads: int = 1,
        log: Callable[[str], None] | None = None,
    ) -> None:
        extra: list[str] = []
        if pilot is not None:
            extra += ["pilot-0.1", "verify-linear-pilot", "verify-pilot"]
        if adam_verify:
            extra += ["verify-linear", "verify-refined", "verify-refined-at-linear"]
        p = spec.protocol
        spec = dataclasses.replace(
            spec, protocol=dataclasses.replace(p, schedules=(*p.schedules, *extra))
        )
        self.pilot = pilot
        super().__init__(
            spec, out, source, data_fingerprint, workers=workers, threads=threads, log=log
        )

    # -- the pilot ----------------------------------------------------------------------------

    def pilot_best(self) -> int | None:
        if self.pilot is None:
            return None
        plan = self.pilot.plan("linear")
        return None if plan is None or not plan.settled else plan.best

    def pilot_record(self) -> FloatArray:
        """Elementwise median over the grid seeds of the best pilot run's norms."""
        assert self.pilot is not None
        j = self.pilot_best()
        assert j is not None
        kind = self.spec.norm_kind
        per_seed = [
            read_record(self.pilot.record_path("linear", j, s)).norms(kind)
            for s in self.pilot.spec.protocol.grid_seeds
        ]
        return np.asarray(np.median(np.stack(per_seed), axis=0), dtype=np.float64)

    # -- schedules, centres, plans ------------------------------------------------------------

    def schedule(self, name: str) -> Schedule | None:
        if name in self._schedules:
            return self._schedules[name]
        T = self.spec.steps
        if name in ("pilot-0.1", "verify-pilot"):
            if self.pilot_best() is None:
                return None
            details = refine_details(
                self.pilot_record(),
                tau=self.spec.protocol.tau,
                norm=self.spec.norm_kind,  # type: ignore[arg-type]
                total_steps=T,
            )
            self._schedules[name] = details.schedule
            return details.schedule
        if name in ("verify-linear", "verify-linear-pilot"):
            s = self.schedule("linear")
            if s is not None:
                self._schedules[name] = s
            return s
        if name in ("verify-refined", "verify-refined-at-linear"):
            s = self.schedule("refined")
            if s is not None:
                self._schedules[name] = s
            return s
        return super().schedule(name)

    def center(self, schedule: str) -> int | None:
        if schedule in ("pilot-0.1", "verify-pilot", "verify-linear-pilot"):
            return self.pilot_best()
        if schedule in ("verify-linear", "verify-refined-at-linear"):
            lin = self.plan("linear")
            return lin.best if lin is not None and lin.settled else None
        if schedule == "verify-refined":
            ref = self.plan("refined")
            return ref.best if ref is not None and ref.settled else None
        return super().center(schedule)

    def plan(self, schedule: str) -> GridPlan | None:
        if not schedule.startswith("verify-"):
            return super().plan(schedule)
        if self.schedule(schedule) is None:
            return None
        c = self.center(schedule)
        if c is None:
            return None
        seeds = self.spec.protocol.grid_seeds
        return _fixed_plan(c, lambda j: all(self.result(schedule, j, s) is not None for s in seeds))

    # -- running: AdamW verification jobs record the update norms -------------------------------

    def adam_path(self, schedule: str, j: int, seed: int) -> Path:
        return self.cache / schedule / f"j{j:+d}_s{seed}.adam.npy"

    def _wants_adam(self, job: Job) -> bool:
        return self.spec.task == "lm" and job.schedule.startswith("verify-")

    def run(self) -> None:
        """Run every pending job in this process (one at a time)."""
        init_worker(self.threads)
        while jobs := self.pending():
            job = jobs[0]
            payload = self.payload(job)
            payload["threads"] = self.threads
            if self._wants_adam(job):
                with record_adam_updates() as rec:
                    res = run_payload(payload)
                np.save(self.adam_path(job.schedule, job.j, job.seed), np.asarray(rec.values))
            else:
                res = run_payload(payload)
            self._log_run(self._store(job, res))


# ----------------------------------------------------------------------------------------------
# results


def _values(study: DeepSuite, name: str, metric: str) -> dict[int, float]:
    plan = study.plan(name)
    if plan is None or plan.best is None:
        return {}
    out = {}
    for s in study.spec.protocol.final_seeds:
        doc = study.result(name, plan.best, s)
        if doc is not None:
            out[s] = float(doc["metrics"][metric])
    return out


def step_record(study: StudyDeepSuite, name: str) -> FloatArray | None:
    """Mean over seeds of the step-norm record of ``name``'s run(s) at its (fixed or best) LR:
    l2 gradient norms (SGD) or AdamW update-direction norms (saved by the verification runs)."""
    plan = study.plan(name)
    if plan is None or plan.best is None:
        return None
    rows = []
    for s in study.spec.protocol.final_seeds:
        if study.spec.task == "lm":
            p = study.adam_path(name, plan.best, s)
            if p.exists():
                rows.append(np.load(p).astype(np.float64))
        else:
            p = study.record_path(name, plan.best, s)
            if p.exists():
                rows.append(read_record(p).norms("l2"))
    if not rows:
        return None
    return np.asarray(np.mean(np.stack(rows), axis=0), dtype=np.float64)


def verify_ratio(
    shape: npt.ArrayLike, record: npt.ArrayLike, ref_shape: npt.ArrayLike, ref_record: npt.ArrayLike
) -> float:
    """``B(shape; record) / B(ref_shape; ref_record)``, each at its best scale.

    >>> T = 40
    >>> round(verify_ratio(np.linspace(1, 0.01, T), np.ones(T), np.linspace(1, 0.01, T), np.ones(T)), 6)
    1.0
    """
    return float(best_scale(shape, record)[1] / best_scale(ref_shape, ref_record)[1])


def _cost(study: DeepSuite, name: str, T_full: int) -> float:
    """Runs of ``name`` (every LR and seed) in full-horizon run equivalents."""
    n = sum(1 for (sched, _j, _s) in study.results if sched == name)
    return n * study.spec.steps / T_full


def digest(study: StudyDeepSuite, threshold: float = VERIFY_THRESHOLD) -> dict[str, Any]:
    """Per schedule and virtual arm: per-seed metric values, ratio to linear decay (paired by
    seed, 95% interval), chosen LR, compute; and the verification decisions."""
    metric = study.selection.key
    T = study.spec.steps
    lin = _values(study, "linear", metric)
    arms: dict[str, Any] = {}

    def add(name: str, vals: Mapping[int, float], cost: float, **extra: Any) -> None:
        seeds = sorted(set(vals) & set(lin))
        r = paired_log_ratio([vals[s] for s in seeds], [lin[s] for s in seeds]) if seeds else None
        arms[name] = {
            "values": {str(s): vals[s] for s in sorted(vals)},
            "ratio": None if r is None else r.ratio,
            "low": None if r is None else r.low,
            "high": None if r is None else r.high,
            "outcome": None if r is None else r.outcome,
            "cost": cost,
            **extra,
        }

    pilot_cost = 0.0
    if study.pilot is not None:
        pilot_cost = _cost(study.pilot, "linear", T)
    for name in study.spec.protocol.schedules:
        if name.startswith("verify-"):
            continue
        plan = study.plan(name)
        best = None if plan is None else plan.best
        cost = _cost(study, name, T)
        total = cost
        if name == "refined":
            total += _cost(study, "linear", T)
        if name == "pilot-0.1":
            total += pilot_cost
        add(
            name,
            _values(study, name, metric),
            total,
            lr=None if best is None else study.lr(best),
            own_cost=cost,
        )
    arms["pilot-linear-0.1"] = {"cost": pilot_cost}

    def shape(name: str) -> FloatArray:
        s = study.schedule(name)
        assert s is not None
        return s.preview()

    decisions: dict[str, Any] = {}
    lin_cost = _cost(study, "linear", T)
    # refine, then verify: tuned refined run vs tuned linear run
    a = "verify-refined" if study.spec.task == "lm" else "refined"
    b = "verify-linear" if study.spec.task == "lm" else "linear"
    ra, rb = step_record(study, a), step_record(study, b)
    if ra is not None and rb is not None and "refined" in arms:
        ratio = verify_ratio(shape("refined"), ra, shape("linear"), rb)
        keep = ratio < threshold
        src = arms["refined"] if keep else arms["linear"]
        arms["refined-verified"] = {
            **src,
            "cost": arms["refined"]["cost"],
            "verified": {"bound_ratio": ratio, "kept": keep},
        }
        decisions["refined-verified"] = {"bound_ratio": ratio, "kept": keep}
    # one run of the refined schedule at linear decay's LR decides
    at_linear = "verify-refined-at-linear" if study.spec.task == "lm" else None
    if at_linear is None:  # SGD: the refined grid contains linear decay's best index (its centre)
        lp = study.plan("linear")
        j = None if lp is None else lp.best
        rows = [
            read_record(study.record_path("refined", j, s)).norms("l2")
            for s in study.spec.protocol.grid_seeds
            if j is not None and study.record_path("refined", j, s).exists()
        ]
        ra = np.mean(np.stack(rows), axis=0) if rows else None
        extra_runs = float(len(rows))
    else:
        ra = step_record(study, at_linear)
        extra_runs = _cost(study, at_linear, T)
    if ra is not None and rb is not None and "refined" in arms:
        ratio = verify_ratio(shape("refined"), ra, shape("linear"), rb)
        keep = ratio < threshold
        src = arms["refined"] if keep else arms["linear"]
        cost = lin_cost + (arms["refined"]["own_cost"] if keep else extra_runs)
        arms["refined-verified-1run"] = {
            **src,
            "cost": cost,
            "verified": {"bound_ratio": ratio, "kept": keep},
        }
        decisions["refined-verified-1run"] = {"bound_ratio": ratio, "kept": keep}
    # the pilot: pilot-0.1 and linear decay at the pilot's LR decide
    ra, rb = step_record(study, "verify-pilot"), step_record(study, "verify-linear-pilot")
    if ra is not None and rb is not None and "pilot-0.1" in arms:
        ratio = verify_ratio(shape("pilot-0.1"), ra, shape("linear"), rb)
        keep = ratio < threshold
        src = arms["pilot-0.1"] if keep else arms["linear"]
        vcost = _cost(study, "verify-pilot", T) + _cost(study, "verify-linear-pilot", T)
        own = arms["pilot-0.1"]["own_cost"] if keep else lin_cost
        arms["pilot-verified-0.1"] = {
            **src,
            "cost": pilot_cost + vcost + own,
            "verified": {"bound_ratio": ratio, "kept": keep},
        }
        decisions["pilot-verified-0.1"] = {"bound_ratio": ratio, "kept": keep}
    return {
        "task": study.spec.task,
        "metric": metric,
        "steps": T,
        "linear": {"values": {str(s): v for s, v in sorted(lin.items())}},
        "arms": arms,
        "decisions": decisions,
        "threshold": threshold,
    }


# ----------------------------------------------------------------------------------------------
# driver


def _copy_suite(src: Path, dst: Path, schedules: Sequence[str]) -> int:
    """Copy the deep suite's cached runs of ``schedules`` (missing files only)."""
    n = 0
    for name in schedules:
        d = src / name
        if not d.is_dir():
            continue
        (dst / name).mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():
            if f.suffix in (".json", ".csv") and not (dst / name / f.name).exists():
                shutil.copyfile(f, dst / name / f.name)
                n += 1
    return n


def _alias_runs(study: DeepSuite, src: str, dst: str, j: int) -> int:
    """Copy ``src``'s runs at grid index ``j`` as ``dst``'s (same schedule and LR), renamed."""
    n = 0
    for seed in study.spec.protocol.final_seeds:
        a, b = study.run_path(src, j, seed), study.run_path(dst, j, seed)
        ra, rb = study.record_path(src, j, seed), study.record_path(dst, j, seed)
        if a.exists() and ra.exists() and not b.exists():
            b.parent.mkdir(parents=True, exist_ok=True)
            doc = json.loads(a.read_text(encoding="utf-8"))
            doc["schedule"] = dst
            doc["record"] = rb.name
            b.write_text(json.dumps(doc, indent=1), encoding="utf-8")
            shutil.copyfile(ra, rb)
            n += 1
    return n


def run_task(
    task: str,
    out: Path,
    *,
    suite: Path | None = None,
    data_dir: str | None = None,
    threads: int = 1,
    pilot: bool = True,
    schedules: Sequence[str] = ("linear", "refined", "cosine"),
    quick: bool = False,
    synthetic: bool = False,
    pilot_only: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the study's deep arms on ``task``; write ``out/<task>.json``.

    ``quick`` and ``synthetic`` as in ``refinedlr bench deep`` (tests); ``pilot_only``: stop after
    the pilot study (returns ``{}``), e.g. while the deep suite is still training.
    """
    say = log or (lambda _m: None)
    t0 = time.perf_counter()
    base = task_spec(task, quick=quick)
    spec = dataclasses.replace(
        base, protocol=dataclasses.replace(base.protocol, schedules=tuple(schedules))
    )
    source = DataSource(task=task, cache_dir=data_dir, synthetic=synthetic)
    data = load_task_data(source, spec.config)
    pilot_study = None
    if pilot:
        T_p = max(4, round(PILOT_FRACTION * spec.steps))
        pspec = dataclasses.replace(
            spec,
            config=dataclasses.replace(spec.config, steps=T_p),
            protocol=dataclasses.replace(spec.protocol, schedules=("linear",), extra_seeds=()),
        )
        pilot_study = DeepSuite(pspec, out / "pilot", source, data.fingerprint, workers=0, log=say)
        say(f"{task}: pilot study ({T_p} steps), {len(pilot_study.results)} cached runs")
        init_worker(threads)
        pilot_study.run()
        if pilot_only:
            return {}
    study = StudyDeepSuite(
        spec,
        out,
        source,
        data.fingerprint,
        pilot=pilot_study,
        adam_verify=task == "lm",
        threads=threads,
        log=say,
    )
    if suite is not None:
        src = suite / "cache" / study.cache.name
        n = _copy_suite(src, study.cache, SUITE_SCHEDULES)
        if n:
            study.results.clear()
            study._load_cache()
            say(f"{task}: copied {n} files from {src}")
    if task == "image" and (j := study.pilot_best()) is not None:
        # SGD: linear decay's runs at the pilot's LR already record what verification needs
        if _alias_runs(study, "linear", "verify-linear-pilot", j):
            study.results.clear()
            study._load_cache()
    study.run()
    doc = digest(study)
    doc["wall_seconds"] = round(time.perf_counter() - t0, 1)
    doc["trained_runs"] = len(study.trained) + (
        0 if pilot_study is None else len(pilot_study.trained)
    )
    doc["train_seconds"] = round(
        sum(d["seconds"] for d in study.trained)
        + (0 if pilot_study is None else sum(d["seconds"] for d in pilot_study.trained)),
        1,
    )
    doc["schedules"] = {
        name: s.preview()[:: max(1, spec.steps // 400)].round(5).tolist()
        for name in study.spec.protocol.schedules
        if not name.startswith("verify-") and (s := study.schedule(name)) is not None
    }
    (out / f"{task}.json").write_text(json.dumps(doc, indent=1, default=float), encoding="utf-8")
    return doc
