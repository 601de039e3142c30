"""Outputs of ``refinedlr bench deep``: runs.csv, summary.json, report.md, refinement files, plots.

Statistics (stated in the report): a metric at a schedule's chosen learning rate is given as
``mean ± sd`` over its seeds with the range, and with a two-sided 95% Student-t interval when
there are at least 3 seeds (:func:`refinedlr_bench.stats.t_interval`). Schedules are compared with
linear decay *paired by seed* (same initialisation and data order): the per-seed differences get a
t interval; a difference counts as real only when that interval excludes 0.

The *best baseline* is the schedule that is not a refinement (linear decay and schedule-free
included) with the best mean selection metric at its chosen LR; the refined schedule, and
``refined-verified`` when the refinement study's decision for the task is given
(``verified=``), are compared with it as well.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr import read_record, save_schedule, summarize
from refinedlr.fileio import atomic_write
from refinedlr.plot import plot_norms_and_schedules

from refinedlr_bench.deep import DeepSuite, Metric, ScheduleOutcome
from refinedlr_bench.deep_data import CharData, ImageData
from refinedlr_bench.deep_train import ImageConfig, LMConfig
from refinedlr_bench.figures import new_figure
from refinedlr_bench.jsonio import to_jsonable
from refinedlr_bench.runlog import read_runlog
from refinedlr_bench.stats import t_interval
from refinedlr_bench.tables import fmt_number, markdown_table, write_csv

__all__ = ["Comparison", "compare", "describe", "write_outputs"]

LABELS = {
    "linear": "linear decay",
    "cosine": "cosine",
    "cosine-10": "cosine to 10%",
    "wsd": "warmup-stable-decay",
    "wsd-1sqrt": "WSD, 1-sqrt cooldown",
    "step": "step-wise",
    "schedule-free": "schedule-free",
    "refined": "refined",
}


def _f(x: float, fmt: str = ".4f") -> str:
    return fmt_number(x, fmt, missing="n/a", infinity="inf")


def describe(values: Sequence[float], fmt: str = ".4f") -> dict[str, Any]:
    """Mean, sd, range, n and (n >= 3) the 95% t interval of per-seed values, with a text form.

    >>> describe([1.0, 2.0, 3.0], ".2f")["text"]
    '2.00 ± 1.00 (1.00–3.00, n=3; 95% CI -0.48–4.48)'
    """
    x = np.asarray(list(values), dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": math.nan, "text": "n/a"}
    mean = float(x.mean()) if np.all(np.isfinite(x)) else math.inf
    sd = float(x.std(ddof=1)) if n > 1 and np.all(np.isfinite(x)) else math.nan
    doc: dict[str, Any] = {
        "n": n,
        "mean": mean,
        "sd": sd,
        "min": float(x.min()),
        "max": float(x.max()),
    }
    text = f"{_f(mean, fmt)}"
    if n > 1:
        text += f" ± {_f(sd, fmt)} ({_f(doc['min'], fmt)}–{_f(doc['max'], fmt)}, n={n}"
        if n >= 3 and math.isfinite(mean):
            _, lo, hi = t_interval(x)
            doc["ci"] = [lo, hi]
            text += f"; 95% CI {_f(lo, fmt)}–{_f(hi, fmt)}"
        text += ")"
    else:
        text += " (n=1)"
    doc["text"] = text
    return doc


class Comparison:
    """Paired comparison of ``other`` against ``reference`` on one metric (by seed).

    ``diff`` = other - reference per seed; ``verdict`` is ``"better"`` / ``"worse"`` (for
    ``other``, taking the metric's direction into account) when the 95% t interval of the mean
    difference excludes 0, else ``"no clear difference"`` (or ``"n/a"`` with fewer than 2 seeds).

    >>> m = Metric("loss", "loss", True)
    >>> Comparison(m, {0: 1.0, 1: 1.1, 2: 1.2}, {0: 2.0, 1: 2.1, 2: 2.3}).verdict
    'better'
    """

    def __init__(
        self, metric: Metric, other: Mapping[int, float], reference: Mapping[int, float]
    ) -> None:
        self.metric = metric
        seeds = sorted(set(other) & set(reference))
        self.seeds = seeds
        self.diffs = np.array([other[s] - reference[s] for s in seeds], dtype=np.float64)
        self.other_mean = float(np.mean([other[s] for s in seeds])) if seeds else math.nan
        self.reference_mean = float(np.mean([reference[s] for s in seeds])) if seeds else math.nan
        if len(seeds) >= 2 and np.all(np.isfinite(self.diffs)):
            self.mean, self.low, self.high = t_interval(self.diffs)
        else:
            self.mean = float(self.diffs.mean()) if seeds else math.nan
            self.low, self.high = -math.inf, math.inf
        self.wins = int(
            np.sum(self.diffs < 0) if metric.lower_is_better else np.sum(self.diffs > 0)
        )

    @property
    def verdict(self) -> str:
        if len(self.seeds) < 2 or not math.isfinite(self.low):
            return "n/a"
        if self.high < 0:
            return "better" if self.metric.lower_is_better else "worse"
        if self.low > 0:
            return "worse" if self.metric.lower_is_better else "better"
        return "no clear difference"

    @property
    def relative(self) -> float:
        """Mean difference relative to the reference's mean."""
        return self.mean / self.reference_mean if self.reference_mean else math.nan

    def text(self) -> str:
        f = self.metric.fmt
        return (
            f"{_f(self.mean, '+' + f)} (95% CI {_f(self.low, '+' + f)} to {_f(self.high, '+' + f)}; "
            f"{self.wins}/{len(self.seeds)} seeds better) → {self.verdict}"
        )


def compare(
    outcomes: Mapping[str, ScheduleOutcome], metric: Metric, other: str, reference: str
) -> Comparison | None:
    """Paired comparison of two schedules at their chosen learning rates."""
    if other not in outcomes or reference not in outcomes:
        return None
    return Comparison(
        metric, outcomes[other].values(metric.key), outcomes[reference].values(metric.key)
    )


# ----------------------------------------------------------------------------------------------
# per-run and summary files


def _runs_csv(suite: DeepSuite, outcomes: Mapping[str, ScheduleOutcome], path: Path) -> None:
    metrics = [m.key for m in suite.spec.metrics]
    cols = [
        "task",
        "schedule",
        "lr_index",
        "lr",
        "seed",
        "role",
        "chosen",
        "diverged",
        *metrics,
        "steps",
        "seconds",
        "cpu_seconds",
        "load_end",
        "record",
    ]
    rows = [
        [
            suite.spec.task,
            name,
            j,
            f"{d['lr']:.6g}",
            seed,
            d.get("role", ""),
            int(j == oc.best),
            int(bool(d["diverged"])),
            *(f"{float(d['metrics'][k]):.6g}" for k in metrics),
            d["steps_done"],
            f"{d['seconds']:.1f}",
            f"{d['cpu_seconds']:.1f}",
            d.get("load_end", ""),
            f"cache/{suite.cache.name}/{name}/{d['record']}",
        ]
        for name, oc in outcomes.items()
        for (j, seed), d in sorted(oc.runs.items())
    ]
    write_csv(path, cols, rows)


def _median_norms(suite: DeepSuite, oc: ScheduleOutcome, kind: str) -> np.ndarray | None:
    if oc.best is None:
        return None
    rows = []
    for d in oc.final_runs():
        rec = read_record(suite.record_path(oc.name, oc.best, int(d["seed"])))
        v = rec.norms(kind)
        if v.size == suite.spec.steps:
            rows.append(v)
    return np.median(np.stack(rows), axis=0) if rows else None


def _shape(smoothed: np.ndarray) -> dict[str, Any]:
    T = smoothed.size
    i_min, i_max = int(np.argmin(smoothed)), int(np.argmax(smoothed))
    return {
        "first": float(smoothed[0]),
        "last": float(smoothed[-1]),
        "min": float(smoothed[i_min]),
        "min_at": i_min / max(T - 1, 1),
        "max": float(smoothed[i_max]),
        "max_at": i_max / max(T - 1, 1),
        "last_over_first": float(smoothed[-1] / smoothed[0]),
        "last_over_median": float(smoothed[-1] / np.median(smoothed)),
    }


def _summary_doc(s: Any) -> dict[str, Any]:
    """The fields of a :func:`refinedlr.summarize` result the summary keeps."""
    return {
        "peak_step": s.peak_step,
        "peak_fraction": s.peak_fraction,
        "warmup_steps": s.warmup_steps,
        "above_half_fraction": s.above_half_fraction,
        "late_mass": s.late_mass,
        "quantiles": {str(k): v for k, v in s.quantiles.items()},
        "bound_ratio_to_linear": s.bound_ratio_to_linear,
    }


# ----------------------------------------------------------------------------------------------
# plots


def _plots(
    suite: DeepSuite,
    outcomes: Mapping[str, ScheduleOutcome],
    norms_by_schedule: Mapping[str, np.ndarray],
    out: Path,
) -> list[str]:
    files: list[str] = []
    spec = suite.spec
    kind = spec.norm_kind
    ref = suite.refinement
    if ref is not None:
        scheds: dict[str, Any] = {f"refined (tau {spec.protocol.tau}, {kind})": ref.schedule}
        for name in ("linear", "cosine"):
            if name in outcomes:
                scheds[LABELS[name]] = outcomes[name].schedule
        plot_norms_and_schedules(
            {
                f"raw {kind} norm (median of best linear runs)": ref.norms,
                f"smoothed (median filter, window {ref.schedule.provenance.get('window')})": (
                    ref.smoothed
                ),
            },
            scheds,
            path=out / "norms_and_schedules.png",
            title=f"{spec.task}: recorded norms and the refined schedule",
            norm_label=f"{kind} gradient norm",
        )
        files.append("norms_and_schedules.png")

    sel = spec.metrics[0]
    fig = new_figure((7.0, 4.0))
    ax = fig.subplots()
    for name, oc in outcomes.items():
        ks = sorted(j for j in {j for j, _ in oc.runs} if j in oc.plan.ks)
        xs, ys, lo, hi = [], [], [], []
        for j in ks:
            v = [
                float(d["metrics"][sel.key])
                for (jj, s), d in oc.runs.items()
                if jj == j and s in spec.protocol.grid_seeds
            ]
            v = [x for x in v if math.isfinite(x)]
            if not v:
                continue
            xs.append(suite.lr(j))
            ys.append(float(np.mean(v)))
            lo.append(float(np.mean(v) - min(v)))
            hi.append(float(max(v) - np.mean(v)))
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=LABELS[name])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel(sel.key.replace("_", " "))
    ax.set_title(f"{spec.task}: LR sweep (mean and range over the grid seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(out / "lr_sweep.png", dpi=110)
    files.append("lr_sweep.png")

    fig = new_figure((8.0, 7.5))
    ax_l, ax_n, ax_s = fig.subplots(3, 1, sharex=True)
    T = spec.steps
    for name, oc in outcomes.items():
        runs = oc.final_runs()
        curves = [d["curve"]["train_loss"] for d in runs if not d["diverged"]]
        if curves:
            n = min(len(c) for c in curves)
            every = runs[0]["curve"]["every"]
            y = np.mean([c[:n] for c in curves], axis=0)
            x = (np.arange(n) + 0.5) * every
            ax_l.plot(x, y, label=f"{LABELS[name]} (lr {suite.lr(oc.best or 0):.3g})")
        if name in norms_by_schedule:
            ax_n.plot(norms_by_schedule[name], lw=0.8, alpha=0.8, label=LABELS[name])
        ax_s.plot(suite.lr(oc.best or 0) * oc.schedule.preview(), label=LABELS[name])
    ax_l.set_yscale("log")
    ax_l.set_ylabel("train loss (block means)")
    ax_l.legend(fontsize=8)
    ax_n.set_yscale("log")
    ax_n.set_ylabel(f"{kind} grad norm (median of seeds)")
    ax_s.set_ylabel("learning rate")
    ax_s.set_xlabel("optimizer step")
    ax_s.set_xlim(0, T)
    for a in (ax_l, ax_n, ax_s):
        a.grid(alpha=0.3)
    fig.suptitle(f"{spec.task}: every schedule at its chosen peak LR")
    fig.savefig(out / "curves.png", dpi=110)
    files.append("curves.png")
    return files


# ----------------------------------------------------------------------------------------------
# the report


def _setup_lines(suite: DeepSuite, data: ImageData | CharData, params: int | None) -> list[str]:
    spec = suite.spec
    cfg = spec.config
    p = spec.protocol
    lines = []
    if isinstance(data, ImageData):
        assert isinstance(cfg, ImageConfig)
        seen = spec.steps * cfg.batch_size
        lines += [
            f"- Data: {data.n_train} training images (28x28, {data.n_classes} classes), "
            f"{int(data.x_test.shape[0])} test images; standardised with the training pixels' "
            "mean and sd; no augmentation.",
            f"- Model: CNN, conv3x3 blocks of widths {list(cfg.channels)} (each conv -> batch "
            f"norm -> ReLU -> 2x2 max-pool), linear classifier; {params} parameters.",
            f"- Optimizer: SGD, momentum {cfg.momentum}, weight decay {cfg.weight_decay}, batch "
            f"{cfg.batch_size}; {spec.steps} steps = {seen} images seen "
            f"({seen / data.n_train:.2f} epochs; a fresh permutation per epoch).",
            "- Norm record: l2 norm of the full gradient at every optimizer step "
            "(`GradNormRecorder(path, kinds=('l2',)).attach(optimizer)`).",
            f"- Metrics: {spec.metrics[0].label} (selects the LR); test accuracy and loss on the "
            f"{int(data.x_test.shape[0])} test images; all in eval mode after the last step.",
        ]
    else:
        assert isinstance(cfg, LMConfig)
        tokens = spec.steps * cfg.batch_size * cfg.context
        lines += [
            f"- Data: {data.train.numel() + data.val.numel():,} characters, vocabulary of "
            f"{data.vocab_size} characters; the last {cfg.val_fraction:.0%} "
            f"({data.val.numel():,} characters) is validation, the rest ({data.train.numel():,}) "
            "training.",
            f"- Model: GPT-style decoder, {cfg.n_layer} pre-norm blocks, width {cfg.d_model}, "
            f"{cfg.n_head} heads, context {cfg.context}, 4x GELU MLP, learned positions, tied "
            f"output layer; {params} parameters.",
            f"- Optimizer: AdamW, betas {list(cfg.betas)}, eps {cfg.eps}, weight decay "
            f"{cfg.weight_decay} on matrices and embeddings (not on biases and norms), gradient "
            f"clipping at l2 norm {cfg.clip}; batch {cfg.batch_size} random windows of "
            f"{cfg.context} characters; {spec.steps} steps = {tokens:,} training characters "
            f"({tokens / data.train.numel():.2f} passes over the training text).",
            "- Norm record: pre-clip l2 and l1 norms at every optimizer step "
            "(`GradNormRecorder(path, kinds=('l2', 'l1')).clip_grad_norm_(params, max_norm)`).",
            f"- Metric: validation bits per character on {cfg.val_windows} fixed windows of "
            f"{cfg.context} characters evenly spread over the validation text (every position "
            "counts; eval mode); it also selects the LR. Training loss: mean of the last 5% of "
            "the steps.",
        ]
    sched_desc = {
        "linear": f"linear decay to 0 after a {p.warmup:.0%} linear warm-up",
        "cosine": f"cosine to 0 after the same {p.warmup:.0%} warm-up",
        "wsd": f"{p.warmup:.0%} warm-up, constant, linear decay to 0 over the last "
        f"{p.wsd_decay:.0%}",
        "step": f"{p.warmup:.0%} warm-up, then x{p.step_factor} at "
        f"{', '.join(f'{m:.0%}' for m in p.step_milestones)} of training",
        "cosine-10": f"cosine to {p.cosine_floor:.0%} of the peak after the same "
        f"{p.warmup:.0%} warm-up",
        "wsd-1sqrt": f"{p.warmup:.0%} warm-up, constant, 1-sqrt cooldown to 0 over the last "
        f"{p.wsd_decay:.0%}",
        "schedule-free": f"the `schedulefree` package's "
        f"{'SGDScheduleFree' if isinstance(cfg, ImageConfig) else 'AdamWScheduleFree'} (the same "
        f"{'momentum (as its beta) and weight decay' if isinstance(cfg, ImageConfig) else 'betas, eps, weight decay groups and clipping'}) "
        f"with its own linear warm-up over {p.warmup_steps(spec.steps)} steps "
        f"({p.warmup:.0%}, the same as the other arms; the package's README recommends a "
        "warm-up without giving a length) and no schedule; `optimizer.eval()` before "
        "evaluation, so every metric is at the averaged point x"
        + (
            "; batch-norm statistics recomputed at x as the package's README says (50 training "
            "batches forward in train mode)"
            if isinstance(cfg, ImageConfig)
            else "; the training loss is measured at the gradient points y"
        )
        + f"; its LR grid starts at {2**p.sf_offset}x linear decay's chosen LR (the README's "
        "starting point: "
        + ("10x-50x for SGD)" if isinstance(cfg, ImageConfig) else "1x-10x for AdamW)"),
        "refined": f"refine(norms, tau={p.tau}, norm='{p.norm}') from the elementwise median "
        "over seeds of the per-step norms of linear decay at its chosen LR (all its seeds); "
        "no extra warm-up",
    }
    lines += [
        "- Schedules (all but schedule-free through `refinedlr.get_schedule` / "
        "`refinedlr.refinement` and `refinedlr.pytorch.ScheduleLR`): "
        + "; ".join(f"**{s}**: {sched_desc[s]}" for s in p.schedules)
        + ".",
        f"- Peak-LR grid: `{p.base_lr:g} * 2^j`. Linear decay starts at j = "
        f"{-((p.grid_points - 1) // 2)}..{p.grid_points - 1 - (p.grid_points - 1) // 2}; every "
        "other schedule starts on the same number of points centred on linear decay's chosen "
        "LR. While the best mean lies on an edge the grid gains one point beyond it "
        f"(at most {p.max_extensions} times).",
        f"- Seeds: the grid uses seeds {list(p.grid_seeds)} (LR chosen by their mean); the "
        f"chosen LR is also run with seeds {list(p.extra_seeds)}; the reported numbers are over "
        f"all seeds {list(p.final_seeds)} at the chosen LR. A seed fixes the initialisation and "
        "the data order, identical across schedules and LRs.",
    ]
    return lines


def read_verified(path: Path) -> dict[str, Any] | None:
    """The refinement study's ``refined-verified`` decision for a deep task (its
    ``refinement-study/deep/<task>.json``): ``{"kept", "bound_ratio", "source"}``, or ``None``
    if the file is missing or holds no decision."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        d = doc["decisions"]["refined-verified"]
        return {
            "kept": bool(d["kept"]),
            "bound_ratio": float(d["bound_ratio"]),
            "source": str(path),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def best_baseline(outcomes: Mapping[str, ScheduleOutcome], metric: Metric) -> str | None:
    """The schedule that is not a refinement with the best mean ``metric`` at its chosen LR.

    >>> best_baseline({}, Metric("loss", "loss", True)) is None
    True
    """
    scores = {
        name: metric.score(float(np.mean(v)))
        for name, oc in outcomes.items()
        if not name.startswith("refined") and (v := list(oc.values(metric.key).values()))
    }
    return min(scores, key=lambda n: scores[n]) if scores else None


def write_outputs(
    suite: DeepSuite,
    data: ImageData | CharData,
    *,
    out: Path,
    machine: Mapping[str, Any],
    plots: bool = True,
    verified: Mapping[str, Any] | None = None,
) -> None:
    """Write runs.csv, summary.json, refinement files, plots and report.md to ``out``.

    ``verified``: the refinement study's decision for ``refined-verified`` on this task
    (:func:`read_verified`); its row repeats the refined schedule's runs if the schedule was
    kept, linear decay's otherwise."""
    spec = suite.spec
    outcomes = suite.outcomes()
    metrics = spec.metrics
    sel = metrics[0]
    kind = spec.norm_kind
    _runs_csv(suite, outcomes, out / "runs.csv")

    params = next(
        (int(d["parameters"]) for oc in outcomes.values() for d in oc.runs.values()), None
    )
    norms_by_schedule: dict[str, np.ndarray] = {}
    for name, oc in outcomes.items():
        median = _median_norms(suite, oc, kind)
        if median is not None:
            norms_by_schedule[name] = median

    # the refinement
    ref = suite.refinement
    src = suite.refine_source
    emergent: dict[str, Any] = {}
    if ref is not None:
        med = src["median_norms"]
        save_schedule(ref.schedule, out / "refined_schedule.json")
        rows = np.column_stack(
            [
                np.arange(spec.steps),
                med,
                ref.smoothed,
                ref.schedule.preview(),
                *(outcomes[n].schedule.preview() for n in ("linear", "cosine") if n in outcomes),
            ]
        )
        header = "step,median_norm,smoothed,refined" + "".join(
            f",{n}" for n in ("linear", "cosine") if n in outcomes
        )
        with atomic_write(out / "refinement.csv") as fh:
            np.savetxt(fh, rows, delimiter=",", header=header, comments="", fmt="%.6g")
        emergent["refined"] = _summary_doc(summarize(ref.schedule, norms=med, name="refined"))
        for n in ("linear", "cosine", "wsd", "step"):
            if n in outcomes:
                emergent[n] = _summary_doc(summarize(outcomes[n].schedule, norms=med, name=n))
        emergent["norm_shape"] = _shape(ref.smoothed)
        emergent["window"] = ref.schedule.provenance.get("window")
        emergent["collapse"] = None if ref.collapse is None else ref.collapse.message()

    # per-schedule statistics
    table: dict[str, Any] = {}
    for name, oc in outcomes.items():
        row: dict[str, Any] = {
            "best_index": oc.best,
            "best_lr": None if oc.best is None else suite.lr(oc.best),
            "grid": {str(j): suite.lr(j) for j in oc.plan.ks},
            "grid_status": oc.plan.status,
            "grid_scores": {str(j): v for j, v in sorted(oc.scores.items())},
            "seeds": sorted(oc.values(sel.key)),
        }
        for m in metrics:
            row[m.key] = describe(list(oc.values(m.key).values()), m.fmt)
        table[name] = row
    comps: dict[str, dict[str, Comparison]] = {}
    for name in outcomes:
        if name == "linear":
            continue
        comps[name] = {}
        for m in metrics:
            c = compare(outcomes, m, name, "linear")
            if c is not None:
                comps[name][m.key] = c
    ref_vs_cos = {m.key: compare(outcomes, m, "refined", "cosine") for m in metrics}
    best = best_baseline(outcomes, sel)
    verified_as = None
    if verified is not None:
        verified_as = "refined" if verified["kept"] else "linear"
        if verified_as not in outcomes:
            verified_as = None
    vs_best: dict[str, dict[str, Comparison]] = {}
    if best is not None:
        for other, label in (("refined", "refined"), (verified_as, "refined-verified")):
            if other is None or other not in outcomes:
                continue
            vs_best[label] = {}
            for m in metrics:
                c = compare(outcomes, m, other, best)
                if c is not None:
                    vs_best[label][m.key] = c

    runlog = read_runlog(out)
    all_runs = [d for oc in outcomes.values() for d in oc.runs.values()]
    secs = np.array([d["seconds"] for d in all_runs]) if all_runs else np.zeros(0)
    cpu = np.array([d["cpu_seconds"] / max(d["seconds"], 1e-9) for d in all_runs])
    loads = [float(d["load_end"]) for d in all_runs if d.get("load_end") is not None]
    timing: dict[str, Any] = {
        "runs": len(all_runs),
        "run_seconds_total": float(secs.sum()),
        "run_seconds_mean": float(secs.mean()) if secs.size else math.nan,
        "cpu_over_wall_mean": float(cpu.mean()) if cpu.size else math.nan,
        "load_at_run_end": [min(loads), float(np.mean(loads)), max(loads)] if loads else [],
        "invocations": runlog,
        "wall_seconds_total": float(sum(r.get("wall_seconds", 0.0) for r in runlog)),
    }

    summary = {
        "task": spec.task,
        "quick": spec.quick,
        "cache": suite.cache.name,
        "steps": spec.steps,
        "parameters": params,
        "protocol": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(spec.protocol).items()
        },
        "config": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(spec.config).items()
        },
        "schedules": table,
        "vs_linear": {n: {k: _comp_doc(c) for k, c in d.items()} for n, d in comps.items()},
        "refined_vs_cosine": {k: _comp_doc(c) for k, c in ref_vs_cos.items() if c is not None},
        "best_baseline": best,
        "refined_verified": None
        if verified is None
        else {**dict(verified), "same_runs_as": verified_as},
        "vs_best_baseline": {
            n: {k: _comp_doc(c) for k, c in d.items()} for n, d in vs_best.items()
        },
        "emergent": emergent,
        "refine_source": {k: v for k, v in src.items() if k != "median_norms"},
        "timing": timing,
        "machine": dict(machine),
    }
    with atomic_write(out / "summary.json") as fh:
        fh.write(json.dumps(to_jsonable(summary), indent=1) + "\n")

    figs = _plots(suite, outcomes, norms_by_schedule, out) if plots and outcomes else []

    # report.md
    L: list[str] = []
    title = {"image": "Fashion-MNIST CNN (SGD)", "lm": "character-level GPT on Shakespeare (AdamW)"}
    L += [
        f"# refinedlr bench deep: {title[spec.task]}{' (quick)' if spec.quick else ''}",
        "",
        "Produced by `refinedlr bench deep` (research/src/refinedlr_bench/deep.py); every number below "
        "is read from the cached runs under "
        f"`cache/{suite.cache.name}/` (one JSON per run plus its per-step norm record).",
        "",
        "## Setup",
        "",
        *_setup_lines(suite, data, params),
        "",
        "## Results at each schedule's chosen peak LR",
        "",
    ]
    result_rows = [
        [
            LABELS[name] + (" ★" if name == best else ""),
            _f(table[name]["best_lr"] or math.nan, ".4g"),
            ", ".join(f"{suite.lr(j):.3g}" for j in oc.plan.ks) + f" ({oc.plan.status})",
            *(table[name][m.key]["text"] for m in metrics),
        ]
        for name, oc in outcomes.items()
    ]
    if verified is not None and verified_as is not None:
        result_rows.append(
            [
                f"refined-verified (= {LABELS[verified_as]})",
                _f(table[verified_as]["best_lr"] or math.nan, ".4g"),
                f"the study's check: bound ratio {verified['bound_ratio']:.3f} → "
                + ("refined schedule kept" if verified["kept"] else "fell back to linear decay"),
                *(table[verified_as][m.key]["text"] for m in metrics),
            ]
        )
    L += markdown_table(
        ["schedule", "chosen LR", "grid (status)", *(m.label for m in metrics)], result_rows
    )
    comp_rows = [
        [LABELS[name], *(d[m.key].text() if m.key in d else "n/a" for m in metrics)]
        for name, d in comps.items()
    ]
    if any(c is not None for c in ref_vs_cos.values()):
        comp_rows.append(
            [
                "refined − cosine",
                *(c.text() if (c := ref_vs_cos[m.key]) is not None else "n/a" for m in metrics),
            ]
        )
    L += [
        "",
        "Values: mean ± sd over seeds (± is the sample standard deviation here, not an "
        "interval; range, n; 95% Student-t interval when n >= 3). ★: the best baseline (the "
        f"schedule that is not a refinement with the best mean {sel.label})."
        + (
            " refined-verified: the refinement study's verified refinement ("
            "`refinedlr.verify.verify_refinement`); it trains either the refined schedule or linear decay, so its "
            f"row repeats those runs (decision read from `{verified['source']}`)."
            if verified is not None and verified_as is not None
            else ""
        ),
        "",
        "## Paired comparisons with linear decay (same seeds, each at its chosen LR)",
        "",
        *markdown_table(["schedule", *(f"Δ {m.label}" for m in metrics)], comp_rows),
    ]
    L += [
        "",
        "Δ = schedule − linear decay per seed, mean and 95% t interval over the seeds; 'better' "
        "or 'worse' only when the interval excludes 0 (with 2 seeds the interval is very wide).",
        "",
    ]
    if best is not None and vs_best:
        L += [
            f"## Against the best baseline ({LABELS[best]}, same seeds, each at its chosen LR)",
            "",
        ]
        L += markdown_table(
            ["schedule", *(f"Δ {m.label}" for m in metrics)],
            [
                [
                    f"{label} − {LABELS[best]}",
                    *(d[m.key].text() if m.key in d else "n/a" for m in metrics),
                ]
                for label, d in vs_best.items()
            ],
        )
        L += ["", f"Δ = schedule − {LABELS[best]} per seed (as above).", ""]

    L += ["## What reproduced", ""]
    L += _verdicts(outcomes, comps, ref_vs_cos, sel)
    L += [""]

    L += ["## The emergent shape of the refined schedule", ""]
    if ref is not None:
        e = emergent
        r, sh = e["refined"], e["norm_shape"]
        T = spec.steps
        L += [
            f"Source: the {kind} norms of linear decay at its chosen LR "
            f"({_f(src['linear_lr'], '.4g')}), elementwise median over seeds {src['seeds']}; "
            f"median filter window {e['window']} steps (tau {spec.protocol.tau}).",
            "",
            f"- Smoothed norm: starts at {sh['first']:.4g}, minimum {sh['min']:.4g} at "
            f"{sh['min_at']:.0%} of training, maximum {sh['max']:.4g} at {sh['max_at']:.0%}, ends "
            f"at {sh['last']:.4g} ({sh['last_over_first']:.3g}x the start, "
            f"{sh['last_over_median']:.3g}x the median).",
            f"- Refined schedule: **peak at step {r['peak_step']} of {T} "
            f"({r['peak_fraction']:.0%} of training)**, **implied warm-up {r['warmup_steps']} "
            f"steps ({r['warmup_steps'] / T:.1%})** (steps before it first reaches 0.9 of its "
            f"peak; linear decay's own warm-up reports {e['linear']['warmup_steps']} steps), "
            f"above half of its peak for {r['above_half_fraction']:.0%} of the steps, "
            f"{r['late_mass']:.0%} of its LR mass in the last quarter (linear decay "
            f"{e['linear']['late_mass']:.0%}, cosine "
            f"{e.get('cosine', {}).get('late_mass', math.nan):.0%}).",
            "- Multiplier at 25/50/75/90% of training: refined "
            + ", ".join(f"{v:.3f}" for v in r["quantiles"].values())
            + "; linear "
            + ", ".join(f"{v:.3f}" for v in e["linear"]["quantiles"].values())
            + (
                "; cosine " + ", ".join(f"{v:.3f}" for v in e["cosine"]["quantiles"].values())
                if "cosine" in e
                else ""
            )
            + ".",
            "- Last-iterate bound (the paper's SGD bound on these norms, each shape at its best "
            "scale) relative to linear decay without warm-up: "
            + ", ".join(
                f"{n} {_f(e[n]['bound_ratio_to_linear'] or math.nan, '.3f')}"
                for n in ("refined", "linear", "cosine", "wsd", "step")
                if n in e
            )
            + ".",
        ]
        if e["collapse"]:
            L.append(f"- Warning from refine: {e['collapse']}")
        L.append("")
        if "norms_and_schedules.png" in figs:
            L += ["![norms and schedules](norms_and_schedules.png)", ""]
    else:
        L += ["(no refined schedule: the linear-decay runs it needs are missing)", ""]

    L += ["## LR sweeps (mean over the grid seeds of the selection metric)", ""]
    all_js = sorted({j for oc in outcomes.values() for j in oc.plan.ks})
    sweep_rows = []
    for name, oc in outcomes.items():
        cells = [LABELS[name]]
        for j in all_js:
            v = oc.scores.get(j)
            if v is None:
                cells.append("")
            else:
                txt = _f(v if sel.lower_is_better else -v, sel.fmt)
                cells.append(f"**{txt}**" if j == oc.best else txt)
        sweep_rows.append(cells)
    L += markdown_table(["schedule", *(f"{suite.lr(j):.3g}" for j in all_js)], sweep_rows)
    L += ["", f"Selection metric: {sel.label}; bold = chosen.", ""]
    for f in figs:
        if f != "norms_and_schedules.png":
            L += [f"![{f}]({f})", ""]

    L += ["## Wall time and machine", ""]
    mi = machine
    L += [
        f"- Machine: {mi.get('cpu')}, {mi.get('cores')} cores, {mi.get('memory_gib')} GiB; "
        f"{mi.get('platform')}; Python {mi.get('python')}, torch {mi.get('torch')} "
        f"({mi.get('cpu_kernels')} kernels).",
        f"- {timing['runs']} runs, {timing['run_seconds_total'] / 60:.1f} min of run time in "
        f"total, {timing['run_seconds_mean']:.1f} s per run on average (training and "
        f"evaluation); CPU time / wall time per run {timing['cpu_over_wall_mean']:.2f} "
        "(below 1 per thread: the cores were shared).",
    ]
    if loads:
        lo, mean, hi = timing["load_at_run_end"]
        L.append(
            f"- 1-minute load average when runs finished: min {lo:.2f}, mean {mean:.2f}, max "
            f"{hi:.2f} (this suite's own workers count towards it)."
        )
    par = out / "parallel.json"
    if par.exists():
        try:
            pj = json.loads(par.read_text(encoding="utf-8"))
            a, b = pj["2 processes x 1 thread"], pj["1 process x 2 threads"]
            L.append(
                f"- Parallelism ({pj['date']}, `--measure-parallel {pj['steps']}`): the same two "
                f"{pj['steps']}-step runs took {a['wall_seconds_for_both']:.1f} s in 2 worker "
                f"processes with 1 torch thread each and {b['wall_seconds_for_both']:.1f} s one "
                "after the other in 1 process with 2 threads (load "
                f"{pj['load_start']} → {pj['load_end']}); the suite uses "
                f"{runlog[-1].get('workers') if runlog else '?'} workers x "
                f"{runlog[-1].get('threads') if runlog else '?'} threads."
            )
        except (ValueError, KeyError, TypeError):
            pass
    L += ["", "Invocations (from runlog.jsonl):", ""]
    L += markdown_table(
        ["date", "command", "wall", "runs trained", "workers x threads", "load start → end"],
        [
            [
                str(r.get("date")),
                f"`{r.get('command')}`",
                f"{r.get('wall_seconds', 0) / 60:.1f} min",
                str(r.get("trained_runs")),
                f"{r.get('workers')} x {r.get('threads')}",
                f"{r.get('load_start')} → {r.get('load_end')}",
            ]
            for r in runlog
        ],
    )
    L += [
        "",
        "## Files",
        "",
        "- `runs.csv`: every run (schedule, LR, seed, metrics, time, load, norm record).",
        "- `summary.json`: the tables above as data.",
        "- `refined_schedule.json` (load with `refinedlr.load_schedule`), `refinement.csv` "
        "(median norms, smoothed norms, refined / linear / cosine multipliers per step).",
        f"- `cache/{suite.cache.name}/<schedule>/j<index>_s<seed>.json` and `.norms.csv`: the "
        "cached runs (delete to rerun).",
        "",
    ]
    with atomic_write(out / "report.md") as fh:
        fh.write("\n".join(L))


def _comp_doc(c: Comparison) -> dict[str, Any]:
    return {
        "seeds": c.seeds,
        "diffs": c.diffs.tolist(),
        "mean_diff": c.mean,
        "ci": [c.low, c.high],
        "verdict": c.verdict,
        "other_mean": c.other_mean,
        "linear_or_reference_mean": c.reference_mean,
    }


def _verdicts(
    outcomes: Mapping[str, ScheduleOutcome],
    comps: Mapping[str, Mapping[str, Comparison]],
    ref_vs_cos: Mapping[str, Comparison | None],
    sel: Metric,
) -> list[str]:
    lines = []

    def sentence(c: Comparison, a: str, b: str) -> str:
        m = c.metric
        better = (c.mean < 0) == m.lower_is_better
        lead = a if better else b
        return (
            f"{m.label}: {a} {_f(c.other_mean, m.fmt)} vs {b} {_f(c.reference_mean, m.fmt)} "
            f"(mean {'lower' if c.mean < 0 else 'higher'} for {a}; {lead} ahead on average, "
            f"{c.wins}/{len(c.seeds)} seeds favour {a}); paired 95% CI "
            f"{_f(c.low, '+' + m.fmt)} to {_f(c.high, '+' + m.fmt)} → **{c.verdict}** for {a}."
        )

    if "cosine" in comps:
        lines.append("- Paper: linear decay matches or beats cosine. Measured here:")
        for c in comps["cosine"].values():
            lines.append("  - " + sentence(c, "cosine", "linear decay"))
    if "refined" in comps:
        lines.append("- Paper: refinement improves on linear decay. Measured here:")
        for c in comps["refined"].values():
            lines.append("  - " + sentence(c, "refined", "linear decay"))
    for n in ("wsd", "step", "cosine-10", "wsd-1sqrt", "schedule-free"):
        if n in comps:
            cn = comps[n].get(sel.key)
            if cn is not None:
                lines.append(f"- {LABELS[n]} vs linear decay: " + sentence(cn, LABELS[n], "linear"))
    vs_cosine = ref_vs_cos.get(sel.key)
    if vs_cosine is not None:
        lines.append("- refined vs cosine: " + sentence(vs_cosine, "refined", "cosine"))
    edge = [n for n, oc in outcomes.items() if "edge" in oc.plan.status]
    if edge:
        lines.append(
            "- Caveat: the best LR of "
            + ", ".join(LABELS[n] for n in edge)
            + " sits on an edge of its grid after the allowed extensions."
        )
    return lines
