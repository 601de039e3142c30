"""The convex benchmark's report: ``report.md`` (prose and tables), ``summary.json`` and figures.

The numbers come from :mod:`.convex_analysis` (an :class:`~.convex_analysis.Analysis`), the
figures from :mod:`.convex_figures`; this module turns them into the report, one small function
per section. :func:`write_report` writes ``report.md``, ``summary.json`` and the PNGs. A file
``discussion.md`` in the output directory, if present, is the hand-written reading of the
tables: the report links to it (one source; it is not copied into the report).

Every table marks the *best baseline* of each optimizer: the schedule that is not a refinement
(linear decay included) with the smallest geometric-mean gap ratio; refinement is also compared
with it directly (paired by seed on every dataset), not only with linear decay.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr.fileio import atomic_write

from refinedlr_bench.convex import ConvexProtocol, DatasetOutcome
from refinedlr_bench.convex_analysis import (
    REFERENCE,
    SCHEDULE_FREE,
    WTL,
    Analysis,
    Entry,
    EqualTermsRow,
    analyze,
    equal_terms,
    is_default,
    refined_shapes,
    schedule_free_gain,
)
from refinedlr_bench.convex_figures import plot_all
from refinedlr_bench.runlog import append_runlog, read_runlog
from refinedlr_bench.schedule_arms import SCHEDULE_ARMS
from refinedlr_bench.stats import RatioCI, rank_correlation, t_interval
from refinedlr_bench.tables import (
    OPTIMIZER_LABELS,
    figure_list,
    fmt_number,
    fmt_ratio_ci,
    markdown_table,
)

__all__ = ["Analysis", "analyze", "write_report"]


# ----------------------------------------------------------------------------------------------
# formatting


def _per_dataset(
    a: Analysis,
    opt: str,
    methods: Sequence[str],
    cell: Callable[[Entry], str],
    last_row: Sequence[str] | None = None,
) -> list[str]:
    """A table with one row per dataset and one column per method (``–`` where none ran)."""
    rows = [
        [d, *(cell(e) if (e := a.entries.get((opt, d, m))) else "–" for m in methods)]
        for d in a.datasets
    ]
    if last_row is not None:
        rows.append(list(last_row))
    return markdown_table(["dataset", *methods], rows)


def _mean_ci(t: tuple[float, float, float], digits: int = 3) -> str:
    m, lo, hi = t
    if not math.isfinite(m):
        return fmt_number(m)
    half = (hi - lo) / 2 if math.isfinite(hi) and math.isfinite(lo) else math.inf
    return f"{fmt_number(m, f'.{digits}g')} ± {fmt_number(half, '.2g')}"


def _lr(k: int) -> str:
    return f"{2.0 ** (k / 2.0):.3g}"


def _factor(step: int) -> str:
    return {1: "√2", 2: "2"}.get(step, f"2^{step / 2:g}")


def _headline(a: Analysis) -> list[str]:
    """The geometric-mean table: every schedule against linear decay (★ = best baseline), then
    each refinement against the best baseline."""
    header = ["schedule"]
    for opt in a.optimizers:
        header += [
            f"{OPTIMIZER_LABELS.get(opt, opt)} ratio [95% CI]",
            f"{OPTIMIZER_LABELS.get(opt, opt)} W/T/L",
        ]
    rows = []
    for m in a.methods:
        row = [m + (" (reference)" if m == REFERENCE else "")]
        for opt in a.optimizers:
            star = " ★" if a.best_baseline.get(opt) == m else ""
            if m == REFERENCE:
                row += ["1" + star, "–"]
                continue
            row.append(fmt_ratio_ci(a.overall.get((opt, m))) + star)
            w = a.wtl.get((opt, m))
            row.append("–" if w is None else f"{w[0]}/{w[1]}/{w[2]}")
        rows.append(row)
    for m in a.methods:
        if not any((opt, m) in a.vs_best for opt in a.optimizers):
            continue
        row = [f"{m} vs best baseline"]
        for opt in a.optimizers:
            r = a.vs_best.get((opt, m))
            b = a.best_baseline.get(opt, "?")
            row.append("–" if r is None else f"{fmt_ratio_ci(r)} vs {b}")
            w = a.vs_best_wtl.get((opt, m))
            row.append("–" if w is None else f"{w[0]}/{w[1]}/{w[2]}")
        rows.append(row)
    return markdown_table(header, rows)


def _findings(a: Analysis) -> list[str]:
    """Plain statements derived from the numbers (no interpretation beyond them)."""
    lines = []
    for opt in a.optimizers:
        name = OPTIMIZER_LABELS.get(opt, opt)
        better = [
            m for m in a.methods if (opt, m) in a.overall and a.overall[(opt, m)].log_high < 0
        ]
        worse = [m for m in a.methods if (opt, m) in a.overall and a.overall[(opt, m)].log_low > 0]
        even = [
            m for m in a.methods if (opt, m) in a.overall and m not in better and m not in worse
        ]
        parts = []
        if worse:
            parts.append(
                "significantly worse than linear decay (geometric mean over datasets, 95% CI above "
                "1): " + ", ".join(f"{m} ({fmt_number(a.overall[(opt, m)].ratio)}x)" for m in worse)
            )
        if even:
            parts.append(
                "not distinguishable from linear decay overall (CI contains 1): "
                + ", ".join(f"{m} ({fmt_number(a.overall[(opt, m)].ratio)}x)" for m in even)
            )
        if better:
            parts.append(
                "significantly better than linear decay: "
                + ", ".join(f"{m} ({fmt_number(a.overall[(opt, m)].ratio)}x)" for m in better)
            )
        lines.append(f"- **{name}**: " + "; ".join(parts) + ".")
        for m in a.methods:
            if (opt, m) in a.wtl:
                w, t, lo = a.wtl[(opt, m)]
                lines.append(
                    f"  - {m} vs linear decay, per dataset (paired by seed): {w} wins, {t} ties, "
                    f"{lo} losses."
                )
        b = a.best_baseline.get(opt)
        if b is not None:
            lines.append(
                f"  - Best baseline (smallest geometric mean among the default schedules that "
                f"are not a refinement, linear decay included): **{b}**."
            )
            for m in a.methods:
                r = a.vs_best.get((opt, m))
                if r is None:
                    continue
                w, t, lo = a.vs_best_wtl[(opt, m)]
                lines.append(
                    f"  - {m} vs the best baseline ({b}): geometric mean {fmt_ratio_ci(r)}; per "
                    f"dataset {w} wins, {t} ties, {lo} losses."
                )
        rhos = [v for (o, _), v in a.spearman.items() if o == opt and math.isfinite(v)]
        if rhos:
            lines.append(
                f"  - Bound ranking vs observed ranking: mean Spearman rho {np.mean(rhos):.2f} "
                f"over {len(rhos)} datasets (median {np.median(rhos):.2f})."
            )
    return lines


# ----------------------------------------------------------------------------------------------
# the report


def _summary_json(a: Analysis, outcomes: Sequence[DatasetOutcome]) -> dict[str, Any]:
    def rc(r: RatioCI | None) -> Any:
        return None if r is None else {"ratio": r.ratio, "low": r.low, "high": r.high, "n": r.n}

    def num(x: float) -> Any:
        return x if math.isfinite(x) else str(x)

    def pair(r: tuple[RatioCI, WTL] | None) -> Any:
        return None if r is None else {**rc(r[0]), "win_tie_loss": r[1]}

    equal = {
        f"{r.optimizer}|{r.method}": {
            "versus": r.versus,
            "vs_counterpart": pair(r.vs_counterpart),
            "vs_linear": pair(r.vs_linear),
            "vs_best_baseline": pair(r.vs_best),
            "vs_schedule_free": pair(r.vs_schedule_free),
            "vs_reference": pair(r.vs_reference),
            "reference": r.reference,
            "share_of_schedule_free_gain": None if r.share is None else [num(v) for v in r.share],
        }
        for opt in a.optimizers
        for r in equal_terms(a, opt)
    }
    return {
        "overall": {
            f"{o}|{m}": {**rc(r), "win_tie_loss": a.wtl[(o, m)]} for (o, m), r in a.overall.items()
        },
        "entries": [
            {
                "dataset": e.dataset,
                "optimizer": e.optimizer,
                "method": e.method,
                "lr": e.lr,
                "grid_status": e.status,
                "gap_mean": num(e.gap[0]),
                "gaps": [num(g) for g in e.gaps],
                "test_acc_mean": num(e.test_acc[0]),
                "ratio_to_linear": rc(e.ratio),
                "bound": num(e.bound),
            }
            for e in a.entries.values()
        ],
        "spearman": {f"{o}|{d}": num(v) for (o, d), v in a.spearman.items()},
        "best_baseline": a.best_baseline,
        **({"equal_terms": equal} if equal else {}),
        "vs_best_baseline": {
            f"{o}|{m}": {**rc(r), "win_tie_loss": a.vs_best_wtl[(o, m)]}
            for (o, m), r in a.vs_best.items()
        },
        "datasets": [
            {
                "name": oc.name,
                "n_train": oc.n_train,
                "n_test": oc.n_test,
                "features": oc.n_features,
                "classes": oc.n_classes,
                "steps_per_epoch": oc.steps_per_epoch,
                "epochs": oc.epochs,
                "steps": oc.total_steps,
                "fstar": oc.fstar,
                "fstar_grad_norm": oc.fstar_grad_norm,
                "rounds": oc.rounds,
                "seconds": oc.seconds,
            }
            for oc in outcomes
        ],
    }


def _minutes(e: Mapping[str, Any], key: str) -> str:
    return f"{float(e.get(key, math.nan)) / 60:.1f} min"


@dataclasses.dataclass(frozen=True)
class Invocations:
    """The invocations logged in the output folder (``runlog.jsonl``) and this one.

    ``main_run``: the logged invocation that trained the most runs (its cost is the real one).
    """

    history: list[dict[str, Any]]
    command: str
    wall: float
    trained_runs: int

    @property
    def main_run(self) -> dict[str, Any] | None:
        return max(self.history, key=lambda e: int(e.get("trained_runs", 0)), default=None)


def _title(inv: Invocations, protocol: ConvexProtocol, machine: Mapping[str, Any]) -> list[str]:
    main_run, history = inv.main_run, inv.history
    L = ["# Convex benchmark: multinomial logistic regression (arXiv 2310.07831)", ""]
    if main_run is not None and int(main_run.get("trained_runs", 0)) > 0:
        L.append(
            f"- Made by: `{main_run.get('command')}` on {main_run.get('date')}: wall time "
            f"{_minutes(main_run, 'wall_seconds')} for the whole command (training "
            f"{_minutes(main_run, 'train_seconds')}, {main_run.get('trained_runs')} runs)"
        )
    if main_run is None or main_run.get("command") != inv.command or len(history) > 1:
        L.append(
            f"- This report: `{inv.command}` on {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} "
            f"({inv.trained_runs} runs trained, the rest from the cache; "
            f"{inv.wall / 60:.1f} min)"
        )
    L.append(
        f"- Machine: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('platform')}; "
        f"Python {machine.get('python')}, torch {machine.get('torch')} "
        f"({machine.get('torch_threads')} threads, {machine.get('cpu_kernels')} kernels), "
        f"numpy {machine.get('numpy')}"
    )
    L += [f"- Seeds (data order): {', '.join(map(str, protocol.seeds))}", ""]
    if len(history) > 1:
        L += [
            "Invocations logged in this directory (`runlog.jsonl`; a rerun reuses cached "
            "results, so the run that trained them carries the real cost):",
            "",
        ]
        L += markdown_table(
            ["date", "command", "wall time", "runs trained", "training time", "load start → end"],
            [
                [
                    str(e.get("date", "")),
                    f"`{e.get('command', '')}`",
                    _minutes(e, "wall_seconds"),
                    str(e.get("trained_runs", "")),
                    _minutes(e, "train_seconds"),
                    f"{e['load_start']} → {e['load_end']}" if "load_start" in e else "not logged",
                ]
                for e in history
            ],
        )
        L.append("")
    return L


_SCHEDULE_FREE_PROTOCOL = (
    "- Schedule-free (Defazio et al. 2024): the update of the `schedulefree` package's "
    "`AdamWScheduleFree` (betas as Adam's above, eps as above, weight decay 0: the "
    "objective's penalty is in the gradient, as for Adam) and `SGDScheduleFree` "
    "(beta 0.9), written into the batched trainer (`refinedlr_bench.logreg.train_batched`"
    ") and tested against the package on unbatched runs (agreement to 1e-6 over 100 "
    "steps with warm-up, `research/tests/test_schedule_free.py`). The gradient is taken "
    "at y, and the final gap and accuracy at the averaged point x (the package's "
    "`eval()`). Its LR is tuned on the same grid as every other arm. No last-iterate "
    "bound is computed for it."
)


def _protocol_model(a: Analysis, protocol: ConvexProtocol) -> list[str]:
    """The model, objective, batches, optimizers and epochs."""
    L = [
        "## Protocol",
        "",
        "- Model: multinomial logistic regression with biases, zero initialisation, "
        "features standardised on the training split (fixed stratified 80/20 split).",
        f"- Objective: mean cross-entropy + (λ/2)·‖W‖² on the weights (not the biases), "
        f"λ = {protocol.l2:g}, identical in training and in f*. The penalty makes the optimum "
        "exist on separable data; f* is computed in float64 (scipy L-BFGS, then Newton steps) "
        "and verified by the full-gradient norm (column ‖∇f(x*)‖ below, required < 1e-9).",
        f"- Mini-batch {protocol.batch_size} (each epoch a fresh permutation per seed; the "
        "incomplete last batch is dropped). Runs with the same seed see the same batches, so "
        "comparisons are paired by seed.",
        f"- Adam: betas {protocol.betas}, eps {protocol.eps:g}, bias-corrected (as "
        "torch.optim.Adam), refinement with l1 norms (Algorithm 2). SGD: plain, refinement with "
        "l2 norms (Algorithm 1). Recorded norm: l1 / l2 norm of the mini-batch gradient over all "
        "parameters (penalty included), at every step.",
    ]
    if any(SCHEDULE_ARMS[m].schedule_free for m in a.methods if m in SCHEDULE_ARMS):
        L.append(_SCHEDULE_FREE_PROTOCOL)
    L.append(
        f"- Epochs: min({protocol.max_epochs}, max({protocol.min_epochs}, "
        f"{protocol.step_budget} // steps per epoch))"
        + (f" overridden to {protocol.epochs}" if protocol.epochs else "")
        + "; the same for every schedule (table below)."
    )
    L.append(
        "- Schedules (no warm-up unless stated): "
        + "; ".join(
            f"**{m}**: {SCHEDULE_ARMS[m].description}"
            for m in a.methods
            if m in SCHEDULE_ARMS and is_default(m)
        )
        + ". Refined schedules are computed from the per-step norms of the best linear-decay run "
        "(mean over seeds at its chosen LR), then their peak LR is tuned on their own grid."
    )
    return L


_STATISTICS = (
    "- Statistics: in this report ± is always the half-width of the 95% Student-t interval "
    "over seeds (not a standard deviation). Ratios to "
    "linear decay are paired by seed: t interval on the per-seed log-ratios "
    "log(gap/gap_linear), shown as exp(mean) [exp(low), exp(high)]. Win / loss: the whole "
    "interval below / above 1 (▼ / ▲ in tables); tie otherwise. Across datasets: geometric "
    "mean of the per-dataset ratios with a t interval over datasets (datasets are the "
    "sampling unit). Gaps below 1e-12 are floored before logs."
)
_THEORY = (
    "- Theory vs practice: each schedule's last-iterate bound at its best scale "
    "(`refinedlr.bounds.best_scale`) from the mean norms of the best linear-decay run "
    "(l2 norms for SGD; for Adam the l1 norms, the dual-norm analogue Algorithm 2 uses), "
    "ranked against the observed mean gaps (Spearman)."
)
_REPRODUCIBILITY = (
    "(`refinedlr_bench.cpu_kernels`; AVX-512 kernels round differently), one torch thread. "
    "Rerunning the command, from scratch or resumed from its cache, reproduces every number "
    "bit for bit. All configurations of a dataset, round and batch group train as one "
    "batched tensor, and float32 rounding depends on a run's position in it: a "
    "configuration trained in another batch (another `--methods` set, a study arm) agrees "
    "only to float32 rounding, which chaotic runs (SGD near its largest stable LR) amplify. "
    "The arms added later (cosine-10, wsd-1sqrt, schedule-free; the equal-terms arms of "
    "issue 20) train in batch groups of their own, so the earlier arms' batches are the "
    "same as before they were added."
)


def _protocol_tuning(protocol: ConvexProtocol, machine: Mapping[str, Any]) -> list[str]:
    """The LR grid, the statistics, the bounds and reproducibility."""
    return [
        "- Peak LR: every schedule (refined ones included) starts on the same wide grid, "
        + "; ".join(
            f"{OPTIMIZER_LABELS.get(o, o)} {_lr(lo)} to {_lr(hi)}" for o, lo, hi in protocol.grid
        )
        + f", points a factor {_factor(protocol.grid_step)} apart. The LR with the smallest mean "
        "final objective over seeds is chosen. If it lies on an edge of the grid, "
        f"{protocol.extend_points} more points are added beyond it (repeated until interior or "
        f"a hard limit: {protocol.max_extensions} extensions, LR in [{_lr(protocol.k_min)}, "
        f"{_lr(protocol.k_max)}])"
        + (
            f"; once interior, its neighbours a factor {_factor(protocol.fine_step)} away are "
            "added, so the chosen LR is a local minimum on that finer grid"
            if protocol.fine_step < protocol.grid_step
            else ""
        )
        + ". Diverged runs count as +∞. (A wide first grid matters: the final gap is not "
        "always unimodal in the LR.)",
        _STATISTICS,
        _THEORY,
        f"- Reproducibility: torch's CPU kernels are pinned to {machine.get('cpu_kernels')} "
        + _REPRODUCIBILITY,
        "",
    ]


_HEADLINE = (
    "Geometric mean over datasets of each schedule's gap divided by linear decay's gap "
    "(each at its own tuned LR), 95% CI across datasets; W/T/L = per-dataset wins / ties / "
    "losses against linear decay (paired by seed). Below 1 = better than linear decay. "
    "★ marks the best baseline of each optimizer (the smallest geometric mean among the "
    "default schedules that are not a refinement, linear decay included; the equal-terms "
    "arms of issue 20 are compared with it in their own section); the last rows compare "
    "each refinement with that best baseline directly (the same statistics, paired by seed "
    "with the best baseline instead of linear decay)."
)


def _headline_section(a: Analysis, out: Path) -> list[str]:
    """The headline table, the findings and the link to the discussion."""
    L = ["## Headline: final objective gap relative to linear decay", "", _HEADLINE, ""]
    L += [*_headline(a), "", "## Findings (computed from the tables)", "", *_findings(a), ""]
    if (out / "discussion.md").exists():
        L += [
            "## Discussion",
            "",
            "The hand-written reading of these tables (what reproduced, what did not, "
            "reproducibility and caveats) is in [discussion.md](discussion.md).",
            "",
        ]
    return L


def _datasets_section(outcomes: Sequence[DatasetOutcome]) -> list[str]:
    header = ["dataset", "n train", "n test", "d", "K", "steps/epoch", "epochs", "T", "f*"]
    header += ["‖∇f(x*)‖", "acc at x* (train / test)", "rounds", "time (s)"]
    rows = [
        [
            oc.name,
            *(str(v) for v in (oc.n_train, oc.n_test, oc.n_features, oc.n_classes)),
            *(str(v) for v in (oc.steps_per_epoch, oc.epochs, oc.total_steps)),
            f"{oc.fstar:.10g}",
            f"{oc.fstar_grad_norm:.1e}",
            f"{oc.fstar_train_acc:.3f} / {oc.fstar_test_acc:.3f}",
            str(oc.rounds),
            f"{oc.seconds:.0f}",
        ]
        for oc in outcomes
    ]
    return [
        "## Datasets",
        "",
        *markdown_table(header, rows),
        "",
        "`rounds`: batched training passes this invocation needed for the dataset (0 = all "
        "results from the cache).",
        "",
    ]


def _ratio_tables(a: Analysis, opt: str) -> list[str]:
    """Per dataset: every schedule against linear decay, each refinement against the best
    baseline."""
    name = OPTIMIZER_LABELS.get(opt, opt)
    others = [m for m in a.methods if m != REFERENCE]
    L = [
        f"## {name}: per-dataset results",
        "",
        f"### {name}: gap ratio to linear decay (paired by seed, 95% CI; ▼ win, ▲ loss)",
        "",
    ]
    mean_row = ["**geometric mean**", *(fmt_ratio_ci(a.overall.get((opt, m))) for m in others)]
    L += _per_dataset(a, opt, others, lambda e: fmt_ratio_ci(e.ratio), last_row=mean_row)
    L.append("")
    b = a.best_baseline.get(opt)
    refined = [m for m in a.methods if (opt, m) in a.vs_best]
    if b is None or not refined:
        return L
    L += [
        f"### {name}: refinement vs the best baseline ({b}) (paired by seed, 95% CI; "
        "▼ win, ▲ loss)",
        "",
    ]
    rows = [
        [d, *(fmt_ratio_ci(a.vs_best_entries.get((opt, d, m))) for m in refined)]
        for d in a.datasets
    ]
    rows.append(["**geometric mean**", *(fmt_ratio_ci(a.vs_best.get((opt, m))) for m in refined)])
    return [*L, *markdown_table(["dataset", *(f"{m} / {b}" for m in refined)], rows), ""]


def _level_tables(a: Analysis, opt: str) -> list[str]:
    """Per dataset: final gaps, accuracies and chosen LRs (with unresolved grid edges)."""
    name = OPTIMIZER_LABELS.get(opt, opt)
    L = [f"### {name}: final gap f(x_T) − f* (mean ± 95% CI half-width over seeds)", ""]
    L += [*_per_dataset(a, opt, a.methods, lambda e: _mean_ci(e.gap)), ""]
    L += [f"### {name}: held-out accuracy (mean ± 95% CI half-width)", ""]
    L += [*_per_dataset(a, opt, a.methods, lambda e: _mean_ci(e.test_acc, 4)), ""]
    L += [f"### {name}: chosen peak LR (⚠ = best on the grid's edge at a hard limit)", ""]
    L += _per_dataset(
        a, opt, a.methods, lambda e: f"{e.lr:.3g}" + ("" if e.status == "interior" else " ⚠")
    )
    L.append("")
    edge_notes = [
        f"{e.dataset}/{e.method}: {e.status}"
        for d in a.datasets
        for m in a.methods
        if (e := a.entries.get((opt, d, m))) is not None and e.status != "interior"
    ]
    if edge_notes:
        L.append("Grid edges not resolved: " + "; ".join(edge_notes) + ".")
    else:
        L.append("Every chosen LR is interior to its (possibly extended) grid.")
    return [*L, ""]


def _ranking_table(a: Analysis, opt: str) -> list[str]:
    """Per dataset: the schedules ranked by their bound and by their observed gap."""
    name = OPTIMIZER_LABELS.get(opt, opt)
    L = [
        f"### {name}: theory vs practice (ranking by last-iterate bound vs observed)",
        "",
        "Schedules only: schedule-free has no last-iterate bound of this kind and is left out "
        "of both rankings.",
        "",
    ]
    rows = []
    for d in a.datasets:
        es = [
            a.entries[(opt, d, m)]
            for m in a.methods
            if (opt, d, m) in a.entries
            and not (m in SCHEDULE_ARMS and SCHEDULE_ARMS[m].schedule_free)
        ]
        by_bound = sorted(es, key=lambda e: (not math.isfinite(e.bound), e.bound))
        by_obs = sorted(es, key=lambda e: e.gap[0])
        rows.append(
            [
                d,
                ", ".join(e.method for e in by_bound),
                ", ".join(e.method for e in by_obs),
                fmt_number(a.spearman.get((opt, d), math.nan), ".2g"),
            ]
        )
    L += markdown_table(
        ["dataset", "by bound (best first)", "observed (best first)", "Spearman ρ"], rows
    )
    rhos = [v for (o, _), v in a.spearman.items() if o == opt and math.isfinite(v)]
    if rhos:
        m_, lo_, hi_ = t_interval(rhos)
        L += ["", f"Mean Spearman ρ over datasets: {m_:.2f} (95% CI {lo_:.2f} to {hi_:.2f})."]
    return [*L, ""]


_DIAGNOSTICS = (
    "Peak position (fraction of training) and the multiplier at 50%, 75% and 90% of "
    "training (linear decay: 0.50, 0.25, 0.10); `late/median`: median gradient norm "
    "(l1 for Adam, l2 for SGD, mean over seeds of the best linear run) over the last 10% "
    "of training divided by its median over the whole run (4 decimals, so counts against "
    "a cut-off such as 0.95 can be rebuilt from the table); `collapse`: the smoothed "
    "version of that ratio is below 0.1 (the paper's degenerate case); last column: the "
    "gap ratio to linear decay (as above)."
)


def _diagnostics_section(outcomes: Sequence[DatasetOutcome], a: Analysis) -> list[str]:
    """The shapes of the refined schedules and how their late norms relate to the outcome."""
    shapes = refined_shapes(outcomes, a)
    if not shapes:
        return []
    rows = [
        [
            s.dataset,
            OPTIMIZER_LABELS.get(s.optimizer, s.optimizer),
            s.method,
            f"{s.peak_at:.2f}",
            *(f"{v:.2f}" for v in s.at),
            fmt_number(s.late_ratio, ".4f"),
            "yes" if s.collapse else "",
            fmt_ratio_ci(s.ratio),
        ]
        for s in shapes
    ]
    header = ["dataset", "optimizer", "method", "peak at", "s(0.5)", "s(0.75)", "s(0.9)"]
    header += ["late/median", "collapse", "gap / linear"]
    L = ["## Refined schedules: shape diagnostics", "", _DIAGNOSTICS, ""]
    L += [*markdown_table(header, rows), ""]
    trend: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for s in shapes:
        if s.ratio is not None and math.isfinite(s.late_ratio):
            trend.setdefault((s.optimizer, s.method), []).append((s.late_ratio, s.ratio.log_mean))
    for (opt, m), pts in trend.items():
        if len(pts) >= 3:
            rho = rank_correlation([p[0] for p in pts], [p[1] for p in pts])
            L.append(
                f"- {OPTIMIZER_LABELS.get(opt, opt)}, {m}: Spearman ρ between late/median norm and "
                f"the gap ratio to linear decay over {len(pts)} datasets: {fmt_number(rho, '.2g')}."
            )
    return [*L, ""]


# ----------------------------------------------------------------------------------------------
# equal terms (issue 20)


_EQUAL_TERMS = (
    "The suite's scheduled SGD has no momentum and no averaging, while schedule-free SGD has "
    "both (its interpolation with beta 0.9 acts like momentum, and it is scored at an "
    "averaged point). These arms put the parts on equal terms: scheduled SGD with heavy-ball "
    "momentum 0.9; iterate averaging (a tail average over the last half of the steps, an EMA "
    "with a time constant of 10% of the steps) on linear decay and on a constant LR; "
    "schedule-free taken apart (beta 0: its average without the interpolated gradient point; "
    "other betas; scored at z: the interpolation without the average); schedule-free's "
    "warm-up; and Adam's beta2 at 0.999 (the `schedulefree` package's default) for scheduled "
    "Adam and schedule-free AdamW. Every arm tunes its own peak LR on the same grid as every "
    "other arm; the averaging, the betas and the warm-ups are fixed, not tuned. They train "
    "in batch groups of their own, so the default arms' runs are the same bits as without them. "
    "Momentum and averaging are written into the batched trainer and tested against "
    "`torch.optim.SGD(momentum=0.9)`, explicit averages of saved iterates and "
    "`torch.optim.swa_utils`' EMA (`research/tests/test_convex_variants.py`); schedule-free's "
    "other betas, its z and its beta-0 limit against the package "
    "(`research/tests/test_schedule_free.py`). Like schedule-free, these arms have no "
    "last-iterate bound and are left out of the bound rankings."
)
_EQUAL_TERMS_COLUMNS = (
    "Each cell: the geometric mean over datasets of the per-dataset gap ratios (paired by "
    "seed) with its 95% interval over datasets, and the per-dataset wins/ties/losses. "
    "*counterpart*: the arm this one varies (the same schedule without momentum or "
    "averaging, schedule-free with its defaults, Adam with beta2 0.95). *same settings*: "
    "against linear decay with the arm's own optimizer settings (`linear-mom`: momentum; "
    "`linear-b2-0.999`: Adam's beta2 0.999). *share of "
    "schedule-free's gain*: the mean over datasets of the arm's log gap ratio to linear decay "
    "divided by schedule-free's (1 = all of schedule-free's gain, 0 = none, below 0 = worse "
    "than linear decay), with a 95% percentile bootstrap interval over datasets (10,000 "
    "resamples, seed 0); only where schedule-free beats linear decay significantly."
)


def _ratio_wtl(r: tuple[Any, WTL] | None) -> str:
    if r is None:
        return "–"
    w, t, lo = r[1]
    return f"{fmt_ratio_ci(r[0])} ({w}/{t}/{lo})"


def _share(s: tuple[float, float, float] | None) -> str:
    if s is None:
        return "–"
    return f"{fmt_number(s[0], '.2f')} [{fmt_number(s[1], '.2f')}, {fmt_number(s[2], '.2f')}]"


def _equal_terms_table(a: Analysis, opt: str, rows: Sequence[EqualTermsRow]) -> list[str]:
    best = a.best_baseline.get(opt, "?")
    header = ["arm", "counterpart", "vs counterpart", "vs linear decay"]
    header += ["vs linear decay, same settings"]
    header += [f"vs best baseline ({best})", "vs schedule-free", "share of schedule-free's gain"]
    return markdown_table(
        header,
        [
            [
                r.method,
                r.versus or "–",
                _ratio_wtl(r.vs_counterpart),
                _ratio_wtl(r.vs_linear),
                "–" if r.vs_reference is None else f"{_ratio_wtl(r.vs_reference)} vs {r.reference}",
                _ratio_wtl(r.vs_best),
                _ratio_wtl(r.vs_schedule_free),
                _share(r.share),
            ]
            for r in rows
        ],
    )


def _equal_terms_section(a: Analysis) -> list[str]:
    """The equal-terms arms against their counterparts, linear decay, the best baseline and
    schedule-free, per optimizer, with the decomposition of schedule-free's gain."""
    tables = {opt: equal_terms(a, opt) for opt in a.optimizers}
    if not any(tables.values()):
        return []
    L = ["## Equal terms: momentum, averaging and schedule-free's parts (issue 20)", ""]
    L += [_EQUAL_TERMS, "", _EQUAL_TERMS_COLUMNS, ""]
    arms = [m for m in a.methods if not is_default(m) and m in SCHEDULE_ARMS]
    L += [
        "Arms: " + "; ".join(f"**{m}**: {SCHEDULE_ARMS[m].description}" for m in arms) + ".",
        "",
    ]
    for opt, rows in tables.items():
        if not rows:
            continue
        name = OPTIMIZER_LABELS.get(opt, opt)
        L += [f"### {name}", "", *_equal_terms_table(a, opt, rows), ""]
        L += [*_decomposition(a, opt, rows), ""]
        methods = [r.method for r in rows]
        view = dataclasses.replace(a, methods=methods)
        L += [f"{name}, per dataset: gap ratio to linear decay (paired by seed, 95% CI)", ""]
        L += [*_per_dataset(view, opt, methods, lambda e: fmt_ratio_ci(e.ratio)), ""]
        L += [f"{name}, per dataset: chosen peak LR (⚠ = best on a grid edge at a hard limit)", ""]
        L += _per_dataset(
            view, opt, methods, lambda e: f"{e.lr:.3g}" + ("" if e.status == "interior" else " ⚠")
        )
        L.append("")
    return L


def _decomposition(a: Analysis, opt: str, rows: Sequence[EqualTermsRow]) -> list[str]:
    """Plain statements on schedule-free's gain and the parts that recover it."""
    sf = a.overall.get((opt, SCHEDULE_FREE))
    if sf is None:
        return []
    by = {r.method: r for r in rows}
    head = f"Schedule-free against linear decay: {fmt_ratio_ci(sf)}" + (
        "; the shares below are of that gain."
        if schedule_free_gain(a, opt)
        else "; schedule-free does not beat linear decay significantly here, so no share "
        "of its gain is computed."
    )
    parts = [
        ("momentum on the reference schedule", "linear-mom"),
        ("momentum on cosine", "cosine-mom"),
        ("an EMA of the weights on the reference schedule", "linear-ema"),
        ("a tail average on the reference schedule", "linear-tail"),
        ("a tail average of a constant LR", "constant-tail"),
        ("an EMA of a constant LR", "constant-ema"),
        ("momentum and an EMA together, linear decay", "linear-mom-ema"),
        ("momentum and an EMA together, constant LR", "constant-mom-ema"),
        ("schedule-free's own average without its interpolation (beta 0)", "sf-beta-0"),
        ("schedule-free's interpolation without its average (scored at z)", "sf-at-z"),
    ]
    L = [f"- {head}"]
    for text, m in parts:
        r = by.get(m)
        if r is None:
            continue
        L.append(
            f"  - {text} (**{m}**): {_ratio_wtl(r.vs_linear)} of linear decay's gap, "
            f"{_ratio_wtl(r.vs_schedule_free)} of schedule-free's"
            + ("" if r.share is None else f"; share of schedule-free's gain {_share(r.share)}")
            + "."
        )
    return L


_FILES = (
    "Files: `runs.csv` (every run: dataset, optimizer, schedule, LR, seed, objective, gap, "
    "accuracies, chosen flag, batch wall time), `summary.json` (the tables above), "
    "`cache/` (per-configuration results for resuming; not meant for version control)."
)


def write_report(
    outcomes: Sequence[DatasetOutcome],
    protocol: ConvexProtocol,
    *,
    out: Path,
    methods: Sequence[str],
    optimizers: Sequence[str],
    command: str,
    machine: Mapping[str, Any],
    started: float | None = None,
    run_entry: Mapping[str, Any] | None = None,
    plots: bool = True,
) -> Analysis:
    """Write ``report.md``, ``summary.json`` and (``plots``) the figures into ``out``.

    ``run_entry`` (command, date, runs trained, ...) is appended to ``out/runlog.jsonl`` with
    the wall time since ``started`` (a ``time.perf_counter()`` value) once the figures are made,
    so the logged time covers the whole command; the report lists every logged invocation.
    """
    mlist = [m for m in SCHEDULE_ARMS if m in methods or m == REFERENCE]
    mlist += [m for m in methods if m not in mlist]
    a = analyze(outcomes, mlist, optimizers)
    figures = plot_all(outcomes, a, out) if plots and outcomes else []
    with atomic_write(out / "summary.json") as fh:
        fh.write(json.dumps(_summary_json(a, outcomes), indent=1))
    wall = math.nan if started is None else time.perf_counter() - started
    if run_entry is not None:
        append_runlog(out, {**run_entry, "wall_seconds": round(wall, 1)})
    inv = Invocations(read_runlog(out), command, wall, sum(oc.trained_runs for oc in outcomes))
    L = _title(inv, protocol, machine)
    L += _protocol_model(a, protocol) + _protocol_tuning(protocol, machine)
    L += _headline_section(a, out) + _equal_terms_section(a) + _datasets_section(outcomes)
    default = dataclasses.replace(a, methods=[m for m in a.methods if is_default(m)])
    for opt in a.optimizers:
        L += _ratio_tables(default, opt) + _level_tables(default, opt)
        L += _ranking_table(default, opt)
    L += _diagnostics_section(outcomes, default)
    L += [*figure_list(figures), _FILES, ""]
    with atomic_write(out / "report.md") as fh:
        fh.write("\n".join(L))
    return a
