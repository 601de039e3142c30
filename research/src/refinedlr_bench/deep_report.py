"""Outputs of ``refinedlr bench deep``: runs.csv, summary.json, report.md, refinement files, plots.

The numbers come from :mod:`.deep_analysis` (one :class:`~.deep_analysis.DeepAnalysis`), the
figures from :mod:`.deep_figures`; this module writes the files, the report one small function
per section. The statistics are stated in :mod:`.deep_analysis` and in the report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr import save_schedule
from refinedlr.fileio import atomic_write

from refinedlr_bench.deep import DeepSuite, Metric, ScheduleOutcome
from refinedlr_bench.deep_analysis import (
    LABELS,
    Comparison,
    DeepAnalysis,
    analyze_deep,
    comp_doc,
    compare,
    describe,
)
from refinedlr_bench.deep_data import CharData, ImageData
from refinedlr_bench.deep_figures import plot_all
from refinedlr_bench.deep_train import ImageConfig, LMConfig
from refinedlr_bench.jsonio import to_jsonable
from refinedlr_bench.tables import fmt_number, markdown_table, write_csv

__all__ = ["Comparison", "compare", "describe", "read_verified", "write_outputs"]


def _f(x: float, fmt: str = ".4f") -> str:
    return fmt_number(x, fmt, missing="n/a", infinity="inf")


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


def _refinement_files(suite: DeepSuite, a: DeepAnalysis, out: Path) -> None:
    """``refined_schedule.json`` and ``refinement.csv`` (norms, smoothed, multipliers per step)."""
    ref = a.refinement
    if ref is None:
        return
    med = a.refine_source["median_norms"]
    save_schedule(ref.schedule, out / "refined_schedule.json")
    shown = [n for n in ("linear", "cosine") if n in a.outcomes]
    rows = np.column_stack(
        [
            np.arange(suite.spec.steps),
            med,
            ref.smoothed,
            ref.schedule.preview(),
            *(a.outcomes[n].schedule.preview() for n in shown),
        ]
    )
    header = "step,median_norm,smoothed,refined" + "".join(f",{n}" for n in shown)
    with atomic_write(out / "refinement.csv") as fh:
        np.savetxt(fh, rows, delimiter=",", header=header, comments="", fmt="%.6g")


def _summary_json(suite: DeepSuite, a: DeepAnalysis, machine: Mapping[str, Any]) -> dict[str, Any]:
    spec = suite.spec

    def docs(d: Mapping[str, Mapping[str, Comparison]]) -> dict[str, Any]:
        return {n: {k: comp_doc(c) for k, c in cs.items()} for n, cs in d.items()}

    return {
        "task": spec.task,
        "quick": spec.quick,
        "cache": suite.cache.name,
        "steps": spec.steps,
        "parameters": a.params,
        "protocol": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(spec.protocol).items()
        },
        "config": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(spec.config).items()
        },
        "schedules": a.table,
        "vs_linear": docs(a.comps),
        "refined_vs_cosine": {k: comp_doc(c) for k, c in a.ref_vs_cos.items() if c is not None},
        "best_baseline": a.best,
        "refined_verified": None
        if a.verified is None
        else {**dict(a.verified), "same_runs_as": a.verified_as},
        "vs_best_baseline": docs(a.vs_best),
        **(
            {"equal_terms": {n: docs(d) for n, d in a.equal_terms.items()}} if a.equal_terms else {}
        ),
        "emergent": a.emergent,
        "refine_source": {k: v for k, v in a.refine_source.items() if k != "median_norms"},
        "timing": a.timing,
        "machine": dict(machine),
    }


# ----------------------------------------------------------------------------------------------
# the report


_TITLES = {"image": "Fashion-MNIST CNN (SGD)", "lm": "character-level GPT on Shakespeare (AdamW)"}


def _image_setup(suite: DeepSuite, data: ImageData, params: int | None) -> list[str]:
    spec = suite.spec
    cfg = spec.config
    assert isinstance(cfg, ImageConfig)
    seen = spec.steps * cfg.batch_size
    return [
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


def _lm_setup(suite: DeepSuite, data: CharData, params: int | None) -> list[str]:
    spec = suite.spec
    cfg = spec.config
    assert isinstance(cfg, LMConfig)
    tokens = spec.steps * cfg.batch_size * cfg.context
    return [
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


def _schedule_free_text(suite: DeepSuite) -> str:
    p, image = suite.spec.protocol, isinstance(suite.spec.config, ImageConfig)
    return (
        f"the `schedulefree` package's "
        f"{'SGDScheduleFree' if image else 'AdamWScheduleFree'} (the same "
        f"{'momentum (as its beta) and weight decay' if image else 'betas, eps, weight decay groups and clipping'}) "
        f"with its own linear warm-up over {p.warmup_steps(suite.spec.steps)} steps "
        f"({p.warmup:.0%}, the same as the other arms; the package's README recommends a "
        "warm-up without giving a length) and no schedule; `optimizer.eval()` before "
        "evaluation, so every metric is at the averaged point x"
        + (
            "; batch-norm statistics recomputed at x as the package's README says (50 training "
            "batches forward in train mode)"
            if image
            else "; the training loss is measured at the gradient points y"
        )
        + f"; its LR grid starts at {2**p.sf_offset}x linear decay's chosen LR (the README's "
        "starting point: " + ("10x-50x for SGD)" if image else "1x-10x for AdamW)")
    )


def _schedule_descriptions(suite: DeepSuite) -> dict[str, str]:
    p = suite.spec.protocol
    return {
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
        "schedule-free": _schedule_free_text(suite),
        "refined": f"refine(norms, tau={p.tau}, norm='{p.norm}') from the elementwise median "
        "over seeds of the per-step norms of linear decay at its chosen LR (all its seeds); "
        "no extra warm-up",
        **{
            f"{n}-ema": f"the {n} arm's training, scored at an exponential moving average of the "
            "weights (`torch.optim.swa_utils.AveragedModel` with `get_ema_multi_avg_fn("
            f"{suite.ema_decay(f'{n}-ema'):.6g})`, updated after every step: a time constant of "
            f"{p.ema_fraction:.0%} of the steps, fixed, not tuned"
            + (
                "; batch-norm statistics then recomputed with `update_bn` on the same 50 "
                "training batches as schedule-free's)"
                if isinstance(suite.spec.config, ImageConfig)
                else ")"
            )
            + "; its own LR grid"
            for n in ("linear", "cosine")
        },
    }


def _setup_section(suite: DeepSuite, data: ImageData | CharData, a: DeepAnalysis) -> list[str]:
    p = suite.spec.protocol
    lines = [
        f"# refinedlr bench deep: {_TITLES[suite.spec.task]}{' (quick)' if suite.spec.quick else ''}",
        "",
        "Produced by `refinedlr bench deep` (research/src/refinedlr_bench/deep.py); every number below "
        "is read from the cached runs under "
        f"`cache/{suite.cache.name}/` (one JSON per run plus its per-step norm record).",
        "",
        "## Setup",
        "",
    ]
    if isinstance(data, ImageData):
        lines += _image_setup(suite, data, a.params)
    else:
        lines += _lm_setup(suite, data, a.params)
    desc = _schedule_descriptions(suite)
    lines += [
        "- Schedules (all but schedule-free through `refinedlr.get_schedule` / "
        "`refinedlr.refinement` and `refinedlr.pytorch.ScheduleLR`): "
        + "; ".join(f"**{s}**: {desc[s]}" for s in p.schedules)
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
        "",
    ]
    return lines


def _results_section(suite: DeepSuite, a: DeepAnalysis) -> list[str]:
    """Every schedule at its chosen LR (and refined-verified's row)."""
    metrics, table = a.metrics, a.table
    rows = [
        [
            LABELS[name] + (" ★" if name == a.best else ""),
            _f(table[name]["best_lr"] or math.nan, ".4g"),
            ", ".join(f"{suite.lr(j):.3g}" for j in oc.plan.ks) + f" ({oc.plan.status})",
            *(table[name][m.key]["text"] for m in metrics),
        ]
        for name, oc in a.outcomes.items()
    ]
    v, v_as = a.verified, a.verified_as
    if v is not None and v_as is not None:
        rows.append(
            [
                f"refined-verified (= {LABELS[v_as]})",
                _f(table[v_as]["best_lr"] or math.nan, ".4g"),
                f"the study's check: bound ratio {v['bound_ratio']:.3f} → "
                + ("refined schedule kept" if v["kept"] else "fell back to linear decay"),
                *(table[v_as][m.key]["text"] for m in metrics),
            ]
        )
    L = ["## Results at each schedule's chosen peak LR", ""]
    L += markdown_table(
        ["schedule", "chosen LR", "grid (status)", *(m.label for m in metrics)], rows
    )
    L += [
        "",
        "Values: mean ± sd over seeds (± is the sample standard deviation here, not an "
        "interval; range, n; 95% Student-t interval when n >= 3). ★: the best baseline (the "
        f"schedule that is not a refinement with the best mean {a.selection.label}"
        + (
            "; the EMA arms of issue 20 are compared with it in their own section)."
            if a.equal_terms
            else ")."
        )
        + (
            " refined-verified: the refinement study's verified refinement ("
            "`refinedlr.verify.verify_refinement`); it trains either the refined schedule or linear decay, so its "
            f"row repeats those runs (decision read from `{v['source']}`)."
            if v is not None and v_as is not None
            else ""
        ),
        "",
    ]
    return L


def _comparison_sections(a: DeepAnalysis) -> list[str]:
    """Every schedule against linear decay, the refinements against the best baseline."""
    metrics = a.metrics
    rows = [
        [LABELS[name], *(d[m.key].text() if m.key in d else "n/a" for m in metrics)]
        for name, d in a.comps.items()
    ]
    if any(c is not None for c in a.ref_vs_cos.values()):
        rows.append(
            [
                "refined − cosine",
                *(c.text() if (c := a.ref_vs_cos[m.key]) is not None else "n/a" for m in metrics),
            ]
        )
    header = ["schedule", *(f"Δ {m.label}" for m in metrics)]
    L = ["## Paired comparisons with linear decay (same seeds, each at its chosen LR)", ""]
    L += markdown_table(header, rows)
    L += [
        "",
        "Δ = schedule − linear decay per seed, mean and 95% t interval over the seeds; 'better' "
        "or 'worse' only when the interval excludes 0 (with 2 seeds the interval is very wide).",
        "",
    ]
    if a.best is None or not a.vs_best:
        return L
    best = LABELS[a.best]
    L += [f"## Against the best baseline ({best}, same seeds, each at its chosen LR)", ""]
    L += markdown_table(
        header,
        [
            [f"{label} − {best}", *(d[m.key].text() if m.key in d else "n/a" for m in metrics)]
            for label, d in a.vs_best.items()
        ],
    )
    return [*L, "", f"Δ = schedule − {best} per seed (as above).", ""]


_EQUAL_TERMS = (
    "Schedule-free is scored at an average of its iterates, the scheduled arms at their last "
    "iterate. These arms put averaging on equal terms: linear decay and cosine, each "
    "scored at an EMA of its weights (`torch.optim.swa_utils`), on its own LR grid; the "
    "run itself is the scheduled arm's run (its last iterate is kept in the run's JSON and "
    "equals that arm's run at the same LR and seed). "
)
_MOMENTUM = {
    "image": "The image task's scheduled SGD already has momentum 0.9 (as schedule-free SGD's "
    "interpolation beta), so averaging is the part left.",
    "lm": "AdamW already has its first moment (beta1 0.9, as schedule-free AdamW's "
    "interpolation beta), so averaging is the part left.",
}


def _equal_terms_section(a: DeepAnalysis, task: str) -> list[str]:
    """Issue 20: the EMA arms against their own schedule, schedule-free and the best baseline."""
    if not a.equal_terms:
        return []
    L = ["## Equal terms: a weight EMA beside schedule-free (issue 20)", ""]
    L += [_EQUAL_TERMS + _MOMENTUM.get(task, ""), ""]
    rows = [
        [label, *(d[m.key].text() if m.key in d else "n/a" for m in a.metrics)]
        for pairs in a.equal_terms.values()
        for label, d in pairs.items()
    ]
    L += markdown_table(["comparison", *(f"Δ {m.label}" for m in a.metrics)], rows)
    L += ["", "Δ per seed, mean and 95% t interval over the seeds (as above).", ""]
    sf = a.comps.get("schedule-free", {}).get(a.selection.key)
    for arm in a.equal_terms:
        own, ema = a.comps.get(arm.removesuffix("-ema"), {}), a.comps.get(arm, {})
        c_own, c_ema = own.get(a.selection.key), ema.get(a.selection.key)
        if arm.startswith("linear"):
            c_own = None  # linear decay is the reference itself
        better = sf is not None and (sf.mean < 0) == a.selection.lower_is_better
        if c_ema is None or sf is None or sf.mean == 0 or not better:
            continue
        gain = c_ema.mean - (c_own.mean if c_own is not None else 0.0)
        L.append(
            f"- {LABELS[arm]}: {a.selection.label} {_f(c_ema.mean, '+' + a.selection.fmt)} "
            f"against linear decay (schedule-free: {_f(sf.mean, '+' + a.selection.fmt)}); the "
            f"EMA itself moves its schedule by {_f(gain, '+' + a.selection.fmt)}, "
            f"{gain / sf.mean:.0%} of schedule-free's difference from linear decay (means over "
            "seeds; the paired intervals are in the table)."
        )
    return [*L, ""]


def _emergent_section(suite: DeepSuite, a: DeepAnalysis, figs: list[str]) -> list[str]:
    L = ["## The emergent shape of the refined schedule", ""]
    if a.refinement is None:
        return [*L, "(no refined schedule: the linear-decay runs it needs are missing)", ""]
    e, src, kind, T = a.emergent, a.refine_source, suite.spec.norm_kind, suite.spec.steps
    r, sh = e["refined"], e["norm_shape"]

    def quantiles(name: str) -> str:
        return ", ".join(f"{v:.3f}" for v in e[name]["quantiles"].values())

    L += [
        f"Source: the {kind} norms of linear decay at its chosen LR "
        f"({_f(src['linear_lr'], '.4g')}), elementwise median over seeds {src['seeds']}; "
        f"median filter window {e['window']} steps (tau {suite.spec.protocol.tau}).",
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
        + quantiles("refined")
        + "; linear "
        + quantiles("linear")
        + ("; cosine " + quantiles("cosine") if "cosine" in e else "")
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
    return L


def _sweep_section(suite: DeepSuite, a: DeepAnalysis, figs: list[str]) -> list[str]:
    sel = a.selection
    all_js = sorted({j for oc in a.outcomes.values() for j in oc.plan.ks})
    rows = []
    for name, oc in a.outcomes.items():
        cells = [LABELS[name]]
        for j in all_js:
            v = oc.scores.get(j)
            if v is None:
                cells.append("")
            else:
                txt = _f(v if sel.lower_is_better else -v, sel.fmt)
                cells.append(f"**{txt}**" if j == oc.best else txt)
        rows.append(cells)
    L = ["## LR sweeps (mean over the grid seeds of the selection metric)", ""]
    L += markdown_table(["schedule", *(f"{suite.lr(j):.3g}" for j in all_js)], rows)
    L += ["", f"Selection metric: {sel.label}; bold = chosen.", ""]
    for f in figs:
        if f != "norms_and_schedules.png":
            L += [f"![{f}]({f})", ""]
    return L


def _parallel_line(out: Path, runlog: list[dict[str, Any]]) -> list[str]:
    """The measured parallelism (``out/parallel.json``), if any."""
    par = out / "parallel.json"
    if not par.exists():
        return []
    try:
        pj = json.loads(par.read_text(encoding="utf-8"))
        a, b = pj["2 processes x 1 thread"], pj["1 process x 2 threads"]
        return [
            f"- Parallelism ({pj['date']}, `--measure-parallel {pj['steps']}`): the same two "
            f"{pj['steps']}-step runs took {a['wall_seconds_for_both']:.1f} s in 2 worker "
            f"processes with 1 torch thread each and {b['wall_seconds_for_both']:.1f} s one "
            "after the other in 1 process with 2 threads (load "
            f"{pj['load_start']} → {pj['load_end']}); the suite uses "
            f"{runlog[-1].get('workers') if runlog else '?'} workers x "
            f"{runlog[-1].get('threads') if runlog else '?'} threads."
        ]
    except (ValueError, KeyError, TypeError):
        return []


def _timing_section(a: DeepAnalysis, out: Path, mi: Mapping[str, Any]) -> list[str]:
    timing = a.timing
    runlog = timing["invocations"]
    L = ["## Wall time and machine", ""]
    L += [
        f"- Machine: {mi.get('cpu')}, {mi.get('cores')} cores, {mi.get('memory_gib')} GiB; "
        f"{mi.get('platform')}; Python {mi.get('python')}, torch {mi.get('torch')} "
        f"({mi.get('cpu_kernels')} kernels).",
        f"- {timing['runs']} runs, {timing['run_seconds_total'] / 60:.1f} min of run time in "
        f"total, {timing['run_seconds_mean']:.1f} s per run on average (training and "
        f"evaluation); CPU time / wall time per run {timing['cpu_over_wall_mean']:.2f} "
        "(below 1 per thread: the cores were shared).",
    ]
    if a.loads:
        lo, mean, hi = timing["load_at_run_end"]
        L.append(
            f"- 1-minute load average when runs finished: min {lo:.2f}, mean {mean:.2f}, max "
            f"{hi:.2f} (this suite's own workers count towards it)."
        )
    L += _parallel_line(out, runlog)
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
    return L


def _files_section(suite: DeepSuite) -> list[str]:
    return [
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
    a = analyze_deep(suite, out=out, verified=verified)
    _runs_csv(suite, a.outcomes, out / "runs.csv")
    _refinement_files(suite, a, out)
    with atomic_write(out / "summary.json") as fh:
        fh.write(json.dumps(to_jsonable(_summary_json(suite, a, machine)), indent=1) + "\n")
    figs = plot_all(suite, a, out) if plots and a.outcomes else []
    L = _setup_section(suite, data, a) + _results_section(suite, a) + _comparison_sections(a)
    L += _equal_terms_section(a, suite.spec.task)
    L += ["## What reproduced", "", *_verdicts(a.outcomes, a.comps, a.ref_vs_cos, a.selection), ""]
    L += _emergent_section(suite, a, figs) + _sweep_section(suite, a, figs)
    L += _timing_section(a, out, machine) + _files_section(suite)
    with atomic_write(out / "report.md") as fh:
        fh.write("\n".join(L))


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
