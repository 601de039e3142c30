"""The deep suite: deep-learning evidence on CPU for linear decay and refinement.

Two tasks, each a full comparison of schedules at their own tuned peak learning rate:

* ``--task image``: Fashion-MNIST, a batch-norm CNN (:class:`~.deep_models.SmallCNN`), SGD with
  momentum 0.9 and weight decay; refinement with l2 norms (Algorithm 1). Selection metric: the
  final training loss on a fixed 10,000-image subset of the training set, in eval mode; test
  accuracy is reported at the same learning rate.
* ``--task lm``: the complete works of Shakespeare at character level (last 10% validation), a
  small GPT-style decoder (:class:`~.deep_models.TinyGPT`), AdamW; refinement with l1 norms
  (Algorithm 2). Selection metric: validation bits per character on fixed windows.

Protocol (both tasks): schedules ``linear`` (5% warm-up), ``cosine`` (same warm-up),
``cosine-10`` (cosine to 10% of the peak, same warm-up), ``wsd`` (warm-up, constant, linear decay
over the last 20%), ``wsd-1sqrt`` (the same with the 1-sqrt cooldown), ``step`` (image task only:
x0.1 at 50% and 75%, same warm-up), ``schedule-free`` (the ``schedulefree`` package's SGD or
AdamW with its own linear warm-up over the same 5%, no schedule, evaluated at the averaged point)
``refined`` (tau 0.1, from the elementwise median over seeds of the per-step norms of the best
linear-decay runs), and ``linear-ema`` / ``cosine-ema`` (issue 20: the same schedules scored at an
EMA of the weights, ``torch.optim.swa_utils``, time constant 10% of the steps). Peak LRs on a grid ``base_lr * 2^j``: linear decay starts from
``j = -1, 0, 1`` around the prior ``base_lr``, every other schedule from the three points around
linear decay's best (schedule-free: around linear decay's best times the factor the package's
README suggests as a starting point, :attr:`DeepProtocol.sf_offset`); a grid whose best mean lies
on an edge gains one point beyond it (up to ``max_extensions`` times). The grid uses the ``grid_seeds``; the chosen LR is then also
run with the ``extra_seeds`` (reported numbers use all seeds at the chosen LR; the choice used
the grid seeds only). Runs are cached as JSON (plus the CSV norm records) under ``OUT/cache``, so
an interrupted run of the suite resumes where it stopped. :class:`DeepSuite` plans and runs one
task; the command line is :mod:`refinedlr_bench.commands.deep` (``refinedlr bench deep``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing as mp
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr import Schedule, get_schedule, read_record, refine_details
from refinedlr.fileio import atomic_write
from refinedlr.refinement import Refinement

from refinedlr_bench.deep_train import (
    TRAINER_VERSION,
    DataSource,
    ImageConfig,
    LMConfig,
    init_worker,
    run_payload,
)
from refinedlr_bench.jsonio import to_jsonable
from refinedlr_bench.machine import loadavg

__all__ = [
    "ALL_SCHEDULES",
    "EMA_SCHEDULES",
    "FIXED_SCHEDULES",
    "SCHEDULE_FREE",
    "TASKS",
    "TINY",
    "DeepProtocol",
    "DeepSuite",
    "GridPlan",
    "Job",
    "Metric",
    "ScheduleOutcome",
    "TaskSpec",
    "build_schedule",
    "measure_parallel",
    "plan_grid",
    "task_spec",
]

TASKS = ("image", "lm")
#: ``--tiny`` (hidden, for tests): the smallest models that still learn something.
TINY: dict[str, dict[str, Any]] = {
    "image": {"channels": (4,), "batch_size": 16, "steps": 12, "eval_train_size": 200},
    "lm": {
        "n_layer": 1,
        "n_head": 1,
        "d_model": 16,
        "context": 16,
        "batch_size": 4,
        "steps": 12,
        "val_windows": 32,
    },
}
ALL_SCHEDULES = (
    "linear",
    "cosine",
    "cosine-10",
    "wsd",
    "wsd-1sqrt",
    "step",
    "schedule-free",
    "refined",
    "linear-ema",
    "cosine-ema",
)
#: The schedule arms made by the library's ``get_schedule`` (not refined, not schedule-free).
FIXED_SCHEDULES = ("linear", "cosine", "cosine-10", "wsd", "wsd-1sqrt", "step")
SCHEDULE_FREE = "schedule-free"
#: Issue 20's arms: a schedule scored at an EMA of the weights (``torch.optim.swa_utils``).
EMA_SCHEDULES = ("linear-ema", "cosine-ema")


# ----------------------------------------------------------------------------------------------
# protocol


@dataclasses.dataclass(frozen=True)
class Metric:
    """A reported metric; the first metric of a task selects the learning rate."""

    key: str
    label: str
    lower_is_better: bool
    fmt: str = ".4f"

    def score(self, value: float) -> float:
        """Smaller is better; NaN (a diverged run) scores ``inf``.

        >>> Metric("acc", "accuracy", lower_is_better=False).score(0.9)
        -0.9
        """
        if math.isnan(value):
            return math.inf
        return value if self.lower_is_better else -value


@dataclasses.dataclass(frozen=True)
class DeepProtocol:
    """Schedules, grid, seeds and refinement settings of one task.

    ``sf_offset``: the schedule-free grid starts ``2^sf_offset`` times linear decay's chosen LR
    (the ``schedulefree`` README: SGD 10x-50x classical rates, AdamW 1x-10x).
    ``ema_fraction``: the time constant of the weight EMA of the ``*-ema`` arms, a fraction of
    the steps (decay ``1 - 1 / (ema_fraction * T)``, fixed, not tuned).
    """

    schedules: tuple[str, ...]
    base_lr: float
    norm: str
    grid_points: int = 3
    max_extensions: int = 3
    grid_seeds: tuple[int, ...] = (0, 1)
    extra_seeds: tuple[int, ...] = (2,)
    warmup: float = 0.05
    wsd_decay: float = 0.2
    step_milestones: tuple[float, ...] = (0.5, 0.75)
    step_factor: float = 0.1
    tau: float = 0.1
    cosine_floor: float = 0.1
    sf_offset: int = 0
    ema_fraction: float = 0.1

    def ema_decay(self, total_steps: int) -> float:
        """The EMA decay of the ``*-ema`` arms.

        >>> DeepProtocol(schedules=(), base_lr=0.1, norm="l2").ema_decay(800)
        0.9875
        """
        return max(0.0, 1.0 - 1.0 / (self.ema_fraction * total_steps))

    def warmup_steps(self, total_steps: int) -> int:
        """The warm-up of every arm in steps (``round(warmup * T)``, the library's rule).

        >>> DeepProtocol(schedules=(), base_lr=0.1, norm="l2").warmup_steps(800)
        40
        """
        return round(self.warmup * total_steps)

    @property
    def final_seeds(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(self.grid_seeds + self.extra_seeds))


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything one study depends on."""

    task: str
    config: ImageConfig | LMConfig
    protocol: DeepProtocol
    quick: bool = False

    @property
    def steps(self) -> int:
        return self.config.steps

    @property
    def metrics(self) -> tuple[Metric, ...]:
        if self.task == "image":
            sub = self.config.eval_train_size if isinstance(self.config, ImageConfig) else None
            where = f"fixed {sub}-image training subset" if sub else "full training set"
            return (
                Metric("train_loss", f"final train loss ({where}, eval mode)", True),
                Metric("test_acc", "test accuracy", False),
                Metric("test_loss", "test loss", True),
                Metric("train_acc", f"train accuracy ({where})", False),
            )
        return (
            Metric("val_bpc", "validation bits per character", True),
            Metric("train_bpc", "training loss, last 5% of steps (bits/char)", True),
        )

    @property
    def norm_kind(self) -> str:
        return self.protocol.norm

    def record_kinds(self) -> tuple[str, ...]:
        return ("l2",) if self.task == "image" else ("l2", "l1")


def task_spec(task: str, quick: bool = False) -> TaskSpec:
    """The default study of ``task`` (``--quick``: a small configuration for CI).

    >>> task_spec("image").config.steps, task_spec("lm", quick=True).protocol.schedules
    (800, ('linear', 'cosine', 'wsd', 'refined'))
    >>> task_spec("lm").protocol.schedules[-4:]
    ('schedule-free', 'refined', 'linear-ema', 'cosine-ema')
    """
    if task == "image":
        config: ImageConfig | LMConfig = (
            ImageConfig(
                channels=(8, 16),
                batch_size=64,
                steps=120,
                train_size=10_000,
                eval_train_size=2000,
            )
            if quick
            else ImageConfig()
        )
        protocol = DeepProtocol(
            schedules=("linear", "cosine", "wsd", "step", "refined") if quick else ALL_SCHEDULES,
            base_lr=0.05 if quick else 0.1,
            norm="l2",
            max_extensions=1 if quick else 3,
            extra_seeds=() if quick else (2,),
            sf_offset=3,  # SGD: 8x (the README: 10x-50x)
        )
    elif task == "lm":
        config = (
            LMConfig(
                n_layer=2,
                n_head=2,
                d_model=48,
                context=32,
                batch_size=16,
                steps=200,
                val_windows=256,
            )
            if quick
            else LMConfig()
        )
        protocol = DeepProtocol(
            schedules=("linear", "cosine", "wsd", "refined")
            if quick
            else (
                "linear",
                "cosine",
                "cosine-10",
                "wsd",
                "wsd-1sqrt",
                "schedule-free",
                "refined",
                *EMA_SCHEDULES,
            ),
            base_lr=0.008,
            norm="l1",
            max_extensions=1 if quick else 3,
            extra_seeds=() if quick else (2,),
            sf_offset=1,  # AdamW: 2x (the README: 1x-10x)
        )
    else:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    return TaskSpec(task=task, config=config, protocol=protocol, quick=quick)


def build_schedule(name: str, total_steps: int, protocol: DeepProtocol) -> Schedule:
    """A baseline schedule through :func:`refinedlr.get_schedule` (not ``refined``).

    ``schedule-free`` gets the LR sequence its optimizer follows: constant after the package's
    linear warm-up ``(k + 1) / W`` over ``W`` steps, which is the library's warm-up of ``W - 1``
    steps (``(t + 1) / (W' + 1)``); the optimizer makes it itself (``warmup_steps=W``).

    >>> build_schedule("wsd", 100, task_spec("image").protocol).preview()[[0, 5, 79, 99]]
    array([0.16666667, 1.        , 1.        , 0.05      ])
    >>> build_schedule("schedule-free", 100, task_spec("image").protocol).preview()[[0, 3, 4, 99]]
    array([0.2, 0.8, 1. , 1. ])
    """
    p = protocol
    if name in EMA_SCHEDULES:  # the schedule's own LR; the EMA is the trainer's
        return build_schedule(name.removesuffix("-ema"), total_steps, protocol)
    if name == "linear":
        return get_schedule("linear", total_steps, warmup=p.warmup)
    if name == "cosine":
        return get_schedule("cosine", total_steps, warmup=p.warmup)
    if name == "cosine-10":
        return get_schedule("cosine", total_steps, warmup=p.warmup, floor=p.cosine_floor)
    if name == "wsd":
        return get_schedule(
            "warmup_stable_decay",
            total_steps,
            warmup=p.warmup,
            decay=p.wsd_decay,
            decay_shape="linear",
        )
    if name == "wsd-1sqrt":
        return get_schedule(
            "warmup_stable_decay",
            total_steps,
            warmup=p.warmup,
            decay=p.wsd_decay,
            decay_shape="1-sqrt",
        )
    if name == SCHEDULE_FREE:
        return get_schedule("constant", total_steps, warmup=max(p.warmup_steps(total_steps) - 1, 0))
    if name == "step":
        return get_schedule(
            "step",
            total_steps,
            warmup=p.warmup,
            milestones=p.step_milestones,
            factor=p.step_factor,
        )
    raise ValueError(f"unknown schedule {name!r}; choose from {ALL_SCHEDULES}")


# ----------------------------------------------------------------------------------------------
# the learning-rate grid


@dataclasses.dataclass(frozen=True)
class GridPlan:
    """The grid indices a schedule needs given the results so far.

    ``ks``: every index to evaluate (sorted); ``missing``: those without a result; ``best``: the
    index with the smallest mean score (``None`` while incomplete or when all diverged);
    ``status``: ``"incomplete"``, ``"interior"``, ``"low edge (limit)"`` or ``"high edge
    (limit)"``.
    """

    ks: tuple[int, ...]
    missing: tuple[int, ...]
    best: int | None
    status: str

    @property
    def settled(self) -> bool:
        return not self.missing


def plan_grid(
    center: int, points: int, max_extensions: int, scores: Mapping[int, float]
) -> GridPlan:
    """Grid indices around ``center``, extended one point at a time while the best is on an edge.

    ``scores`` maps evaluated indices to their mean score (smaller is better; ``inf`` for
    diverged). The plan is a pure function of the scores, so it is the same on resume.

    >>> plan_grid(0, 3, 2, {}).missing
    (-1, 0, 1)
    >>> plan_grid(0, 3, 2, {-1: 3.0, 0: 2.0, 1: 1.0}).missing  # best on the high edge
    (2,)
    >>> p = plan_grid(0, 3, 2, {-1: 3.0, 0: 2.0, 1: 1.0, 2: 1.5})
    >>> p.ks, p.best, p.status
    ((-1, 0, 1, 2), 1, 'interior')
    >>> plan_grid(0, 3, 1, {-1: 3.0, 0: 2.0, 1: 1.0, 2: 0.5}).status
    'high edge (limit)'
    """
    if points < 1:
        raise ValueError("a grid needs at least one point")
    lo = center - (points - 1) // 2
    ks = list(range(lo, lo + points))
    extensions = 0
    while True:
        missing = tuple(k for k in ks if k not in scores)
        if missing:
            return GridPlan(tuple(ks), missing, None, "incomplete")
        finite = [(scores[k], k) for k in ks if math.isfinite(scores[k])]
        best = min(finite)[1] if finite else None
        if best is None or best == ks[0]:
            edge = "low"
        elif best == ks[-1]:
            edge = "high"
        else:
            return GridPlan(tuple(ks), (), best, "interior")
        if extensions >= max_extensions:
            return GridPlan(tuple(ks), (), best, f"{edge} edge (limit)")
        ks = [ks[0] - 1, *ks] if edge == "low" else [*ks, ks[-1] + 1]
        extensions += 1


# ----------------------------------------------------------------------------------------------
# the study


@dataclasses.dataclass(frozen=True)
class Job:
    """One training run: a schedule at grid index ``j`` with one seed."""

    schedule: str
    j: int
    seed: int
    role: str  # "grid" or "extra"

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.schedule, self.j, self.seed)


@dataclasses.dataclass
class ScheduleOutcome:
    """The measured results of one schedule (after the study)."""

    name: str
    schedule: Schedule
    plan: GridPlan
    center: int
    scores: dict[int, float]  # grid index -> mean selection score over the grid seeds
    runs: dict[tuple[int, int], dict[str, Any]]  # (j, seed) -> run document

    @property
    def best(self) -> int | None:
        return self.plan.best

    def final_runs(self) -> list[dict[str, Any]]:
        """The runs at the chosen index, in seed order."""
        if self.best is None:
            return []
        return [d for (j, _s), d in sorted(self.runs.items()) if j == self.best]

    def values(self, metric: str, seeds: Sequence[int] | None = None) -> dict[int, float]:
        """Per-seed values of ``metric`` at the chosen index."""
        out = {int(d["seed"]): float(d["metrics"][metric]) for d in self.final_runs()}
        if seeds is not None:
            out = {s: v for s, v in out.items() if s in seeds}
        return out


def _unclean_metrics(doc: dict[str, Any]) -> dict[str, Any]:
    doc["metrics"] = {k: float(v) for k, v in doc["metrics"].items()}
    return doc


class DeepSuite:
    """Plan, run (in worker processes), cache and collect one task's comparison of schedules.

    Args:
        spec: the task and its protocol.
        out: output directory; runs are cached in ``out/cache/<task>-<key>``, where the key
            hashes the training configuration and the data.
        source: where the data comes from (workers load it themselves).
        data_fingerprint: a hash of the prepared data (part of the cache key).
        workers: worker processes (0: run in this process).
        threads: torch threads per worker.
        log: receives one line per event.
    """

    def __init__(
        self,
        spec: TaskSpec,
        out: Path,
        source: DataSource,
        data_fingerprint: str,
        *,
        workers: int = 2,
        threads: int = 1,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.out = out
        self.source = source
        self.workers = workers
        self.threads = threads
        self.log = log or (lambda _msg: None)
        self.key = self.cache_key(spec, data_fingerprint)
        self.cache = out / "cache" / f"{spec.task}-{self.key}"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.results: dict[tuple[str, int, int], dict[str, Any]] = {}
        self.trained: list[dict[str, Any]] = []
        self.loads: list[float] = []
        self._schedules: dict[str, Schedule] = {}
        self._refinement: Refinement | None = None
        self._refine_source: dict[str, Any] = {}
        self._load_cache()

    @staticmethod
    def cache_key(spec: TaskSpec, data_fingerprint: str) -> str:
        """Hash of what a run's result depends on besides its schedule, LR and seed."""
        doc = {
            "trainer": TRAINER_VERSION,
            "task": spec.task,
            "config": dataclasses.asdict(spec.config),
            "data": data_fingerprint,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]

    # -- cache ----------------------------------------------------------------------------------

    def lr(self, j: int) -> float:
        """The peak learning rate of grid index ``j``: ``base_lr * 2^j``."""
        return float(self.spec.protocol.base_lr * 2.0**j)

    def run_path(self, schedule: str, j: int, seed: int) -> Path:
        return self.cache / schedule / f"j{j:+d}_s{seed}.json"

    def record_path(self, schedule: str, j: int, seed: int) -> Path:
        return self.cache / schedule / f"j{j:+d}_s{seed}.norms.csv"

    def _load_cache(self) -> None:
        for p in sorted(self.cache.glob("*/j*_s*.json")):
            try:
                doc = _unclean_metrics(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError):
                continue
            key = (str(doc["schedule"]), int(doc["j"]), int(doc["seed"]))
            self.results[key] = doc

    def result(self, schedule: str, j: int, seed: int) -> dict[str, Any] | None:
        """The cached run if it matches the current schedule and LR (else ``None``)."""
        doc = self.results.get((schedule, j, seed))
        sched = self.schedule(schedule)
        if doc is None or sched is None:
            return None
        if doc.get("fingerprint") != sched.fingerprint() or not math.isclose(
            float(doc["lr"]), self.lr(j), rel_tol=1e-12
        ):
            return None
        if doc.get("ema_decay") != self.ema_decay(schedule):
            return None
        if not self.record_path(schedule, j, seed).exists():
            return None
        return doc

    # -- schedules and grids --------------------------------------------------------------------

    def ema_decay(self, schedule: str) -> float | None:
        """The weight EMA's decay of ``schedule`` (``None`` for the arms without one)."""
        if schedule not in EMA_SCHEDULES:
            return None
        return self.spec.protocol.ema_decay(self.spec.steps)

    @property
    def selection(self) -> Metric:
        return self.spec.metrics[0]

    def scores(self, schedule: str) -> dict[int, float]:
        """Mean selection score over the grid seeds, for indices with every grid seed done."""
        by_j: dict[int, list[float]] = {}
        for name, j, seed in list(self.results):
            if name != schedule or seed not in self.spec.protocol.grid_seeds:
                continue
            doc = self.result(name, j, seed)
            if doc is not None:
                by_j.setdefault(j, []).append(
                    self.selection.score(float(doc["metrics"][self.selection.key]))
                )
        n = len(self.spec.protocol.grid_seeds)
        return {j: float(np.mean(v)) for j, v in by_j.items() if len(v) == n}

    def center(self, schedule: str) -> int | None:
        """Grid centre: 0 for linear decay, linear decay's best index for the others (plus
        ``sf_offset`` for schedule-free)."""
        if schedule == "linear":
            return 0
        lin = self.plan("linear")
        if lin is None or not lin.settled or lin.best is None:
            return None
        return lin.best + (self.spec.protocol.sf_offset if schedule == SCHEDULE_FREE else 0)

    def plan(self, schedule: str) -> GridPlan | None:
        if self.schedule(schedule) is None:
            return None
        c = self.center(schedule)
        if c is None:
            return None
        p = self.spec.protocol
        return plan_grid(c, p.grid_points, p.max_extensions, self.scores(schedule))

    def _linear_final_done(self) -> bool:
        lin = self.plan("linear")
        if lin is None or not lin.settled or lin.best is None:
            return False
        return all(
            self.result("linear", lin.best, s) is not None for s in self.spec.protocol.final_seeds
        )

    def schedule(self, name: str) -> Schedule | None:
        """The schedule ``name`` (``refined``: ``None`` until the linear runs it needs are done)."""
        if name in self._schedules:
            return self._schedules[name]
        T = self.spec.steps
        if name != "refined":
            self._schedules[name] = build_schedule(name, T, self.spec.protocol)
            return self._schedules[name]
        if not self._linear_final_done():
            return None
        lin = self.plan("linear")
        assert lin is not None and lin.best is not None
        kind = self.spec.norm_kind
        per_seed = []
        for s in self.spec.protocol.final_seeds:
            rec = read_record(self.record_path("linear", lin.best, s))
            per_seed.append(rec.norms(kind))
        norms = np.median(np.stack(per_seed), axis=0)
        details = refine_details(
            norms,
            tau=self.spec.protocol.tau,
            norm=kind,  # type: ignore[arg-type]
            total_steps=T,
        )
        self._refinement = details
        self._refine_source = {
            "linear_index": lin.best,
            "linear_lr": self.lr(lin.best),
            "seeds": list(self.spec.protocol.final_seeds),
            "aggregate": "elementwise median over seeds",
            "kind": kind,
            "median_norms": norms,
        }
        self._schedules[name] = details.schedule
        return details.schedule

    @property
    def refinement(self) -> Refinement | None:
        """The refinement's intermediates (``None`` before it exists)."""
        self.schedule("refined")
        return self._refinement

    @property
    def refine_source(self) -> dict[str, Any]:
        self.schedule("refined")
        return self._refine_source

    def pending(self) -> list[Job]:
        """Jobs that can run now, in priority order (linear, refined, the others)."""
        p = self.spec.protocol
        order = sorted(
            p.schedules, key=lambda s: {"linear": 0, "refined": 1}.get(s, 2 + p.schedules.index(s))
        )
        jobs: list[Job] = []
        for name in order:
            plan = self.plan(name)
            if plan is None:
                continue
            if plan.missing:
                for seed in p.grid_seeds:
                    for j in plan.missing:
                        if self.result(name, j, seed) is None:
                            jobs.append(Job(name, j, seed, "grid"))
            elif plan.best is not None:
                for seed in p.extra_seeds:
                    if self.result(name, plan.best, seed) is None:
                        jobs.append(Job(name, plan.best, seed, "extra"))
        return jobs

    # -- running --------------------------------------------------------------------------------

    def payload(self, job: Job) -> dict[str, Any]:
        sched = self.schedule(job.schedule)
        assert sched is not None
        rec = self.record_path(job.schedule, job.j, job.seed)
        rec.parent.mkdir(parents=True, exist_ok=True)
        for stale in (rec, self.run_path(job.schedule, job.j, job.seed)):
            stale.unlink(missing_ok=True)
        payload = {
            "task": self.spec.task,
            "config": dataclasses.asdict(self.spec.config),
            "source": dataclasses.asdict(self.source),
            "schedule": sched.to_spec(),
            "lr": self.lr(job.j),
            "seed": job.seed,
            "record": str(rec),
            "threads": self.threads if self.workers == 0 else None,
        }
        if job.schedule == SCHEDULE_FREE:
            payload["schedule_free_warmup"] = self.spec.protocol.warmup_steps(self.spec.steps)
        if job.schedule in EMA_SCHEDULES:
            payload["ema_decay"] = self.ema_decay(job.schedule)
        return payload

    def _store(self, job: Job, res: dict[str, Any]) -> dict[str, Any]:
        sched = self.schedule(job.schedule)
        assert sched is not None
        doc = {
            "task": self.spec.task,
            "schedule": job.schedule,
            "j": job.j,
            "lr": self.lr(job.j),
            "seed": job.seed,
            "role": job.role,
            "fingerprint": sched.fingerprint(),
            "steps": self.spec.steps,
            "record": self.record_path(job.schedule, job.j, job.seed).name,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            **res,
        }
        with atomic_write(self.run_path(job.schedule, job.j, job.seed)) as fh:
            fh.write(json.dumps(to_jsonable(doc), indent=1))
        self.results[job.key] = doc
        self.trained.append(doc)
        if doc.get("load_end") is not None:
            self.loads.append(float(doc["load_end"]))
        return doc

    def _log_run(self, doc: dict[str, Any]) -> None:
        m = doc["metrics"]
        shown = " ".join(f"{k} {m[k]:.4f}" for k in list(m)[:2])
        cpu = doc["cpu_seconds"] / max(doc["seconds"], 1e-9)
        self.log(
            f"  [{len(self.trained)}] {doc['schedule']:<8} lr {doc['lr']:.4g} (j={doc['j']:+d}) "
            f"seed {doc['seed']}: {shown}{' DIVERGED' if doc['diverged'] else ''} "
            f"({doc['seconds']:.0f} s, cpu/wall {cpu:.2f}, load {doc.get('load_end')})"
        )

    def run(self) -> None:
        """Run every pending job until the study is complete (resumes from the cache)."""
        if self.workers <= 0:
            init_worker(self.threads)
            while jobs := self.pending():
                job = jobs[0]
                self._log_run(self._store(job, run_payload(self.payload(job))))
            return
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=init_worker,
            initargs=(self.threads,),
        ) as pool:
            inflight: dict[Future[dict[str, Any]], Job] = {}
            try:
                while True:
                    busy = {j.key for j in inflight.values()}
                    for job in self.pending():
                        if len(inflight) >= self.workers:
                            break
                        if job.key in busy:
                            continue
                        inflight[pool.submit(run_payload, self.payload(job))] = job
                        busy.add(job.key)
                    if not inflight:
                        break
                    done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                    for fut in done:
                        job = inflight.pop(fut)
                        self._log_run(self._store(job, fut.result()))
            except BaseException:
                for fut in inflight:
                    fut.cancel()
                raise

    # -- results --------------------------------------------------------------------------------

    def outcomes(self) -> dict[str, ScheduleOutcome]:
        """The results of every schedule whose grid could be planned."""
        out: dict[str, ScheduleOutcome] = {}
        for name in self.spec.protocol.schedules:
            plan = self.plan(name)
            sched = self.schedule(name)
            center = self.center(name)
            if plan is None or sched is None or center is None:
                continue
            runs = {
                (j, s): doc
                for (n, j, s) in list(self.results)
                if n == name and (doc := self.result(n, j, s)) is not None
            }
            out[name] = ScheduleOutcome(name, sched, plan, center, self.scores(name), runs)
        return out


# ----------------------------------------------------------------------------------------------
# 2 processes x 1 thread or 1 process x 2 threads?


def measure_parallel(
    spec: TaskSpec, source: DataSource, out: Path, steps: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Time the same two linear-decay runs (seeds 0 and 1, ``steps`` steps) done by two worker
    processes with one torch thread each, and one after the other by one process with two
    threads. Writes ``out/parallel.json`` and returns it."""
    spec = dataclasses.replace(spec, config=dataclasses.replace(spec.config, steps=steps))
    sched = build_schedule("linear", steps, spec.protocol).to_spec()
    tmp = out / "parallel-tmp"
    tmp.mkdir(parents=True, exist_ok=True)

    def payload(seed: int) -> dict[str, Any]:
        return {
            "task": spec.task,
            "config": dataclasses.asdict(spec.config),
            "source": dataclasses.asdict(source),
            "schedule": sched,
            "lr": spec.protocol.base_lr,
            "seed": seed,
            "record": str(tmp / f"s{seed}.csv"),
            "threads": None,
        }

    ctx = mp.get_context("spawn")
    res: dict[str, Any] = {"task": spec.task, "steps": steps, "load_start": loadavg()}
    for label, workers, threads in (
        ("2 processes x 1 thread", 2, 1),
        ("1 process x 2 threads", 1, 2),
    ):
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=init_worker, initargs=(threads,)
        ) as pool:
            # warm-up: load the data in every worker (not timed)
            warm = {**payload(0), "config": {**payload(0)["config"], "steps": 1}}
            list(pool.map(run_payload, [warm] * workers))
            t = time.perf_counter()
            docs = list(pool.map(run_payload, [payload(0), payload(1)]))
            wall = time.perf_counter() - t
        res[label] = {
            "wall_seconds_for_both": round(wall, 2),
            "run_seconds": [d["seconds"] for d in docs],
            "cpu_over_wall": [round(d["cpu_seconds"] / d["seconds"], 2) for d in docs],
        }
        log(f"  {label}: both runs in {wall:.1f} s")
    res["load_end"] = loadavg()
    res["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    with atomic_write(out / "parallel.json") as fh:
        fh.write(json.dumps(res, indent=1) + "\n")
    return res
