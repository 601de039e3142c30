"""The convex benchmark's report: tables (markdown), a JSON summary and figures.

:func:`analyze` turns the per-dataset outcomes into comparisons with linear decay (paired by
seed, :mod:`.stats`), geometric means over datasets, win/tie/loss counts and the bound-vs-practice
rank correlations; :func:`write_report` writes ``report.md``, ``summary.json`` and the PNGs.
A file ``discussion.md`` in the output directory, if present, is the hand-written reading of the
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
from matplotlib import colormaps
from refinedlr.fileio import atomic_write
from refinedlr.refinement import smooth_norms

from refinedlr_bench.convex import ConvexProtocol, DatasetOutcome
from refinedlr_bench.figures import new_figure
from refinedlr_bench.runlog import append_runlog, read_runlog
from refinedlr_bench.schedule_arms import SCHEDULE_ARMS
from refinedlr_bench.stats import (
    RatioCI,
    geometric_mean_ratio,
    paired_log_ratio,
    rank_correlation,
    t_interval,
    win_tie_loss,
)
from refinedlr_bench.tables import (
    OPTIMIZER_LABELS,
    figure_list,
    fmt_number,
    fmt_ratio_ci,
    markdown_table,
)

__all__ = ["Analysis", "analyze", "write_report"]

REFERENCE = "linear"


def is_baseline(method: str) -> bool:
    """A schedule a user could pick without refinement (not a ``refined*`` arm).

    >>> is_baseline("cosine-10"), is_baseline("schedule-free"), is_baseline("refined-0.1")
    (True, True, False)
    """
    return not method.startswith("refined")


@dataclasses.dataclass
class Entry:
    """One (dataset, optimizer, method) at its chosen LR."""

    dataset: str
    optimizer: str
    method: str
    lr: float
    k: int
    status: str
    gap: tuple[float, float, float]  # mean, low, high over seeds
    test_acc: tuple[float, float, float]
    ratio: RatioCI | None  # to linear decay, paired by seed
    bound: float
    gaps: list[float]


@dataclasses.dataclass
class Analysis:
    """Everything the report shows, per optimizer."""

    methods: list[str]
    optimizers: list[str]
    datasets: list[str]
    entries: dict[tuple[str, str, str], Entry]  # (optimizer, dataset, method)
    overall: dict[tuple[str, str], RatioCI]  # (optimizer, method): geometric mean over datasets
    wtl: dict[tuple[str, str], tuple[int, int, int]]
    spearman: dict[tuple[str, str], float]  # (optimizer, dataset)
    best_baseline: dict[str, str]  # optimizer -> the baseline with the smallest geometric mean
    vs_best: dict[tuple[str, str], RatioCI]  # (optimizer, refined method) -> geometric mean
    vs_best_wtl: dict[tuple[str, str], tuple[int, int, int]]
    vs_best_entries: dict[tuple[str, str, str], RatioCI]  # (optimizer, dataset, method)


def analyze(
    outcomes: Sequence[DatasetOutcome], methods: Sequence[str], optimizers: Sequence[str]
) -> Analysis:
    """Comparisons with linear decay, geometric means, win/tie/loss and rank correlations."""
    entries: dict[tuple[str, str, str], Entry] = {}
    spearman: dict[tuple[str, str], float] = {}
    for oc in outcomes:
        for opt in optimizers:
            ref = oc.chosen(opt, REFERENCE)
            obs, bnd = [], []
            for m in methods:
                c = oc.chosen(opt, m)
                if c is None:
                    continue
                ratio = None
                if ref is not None and m != REFERENCE:
                    ratio = paired_log_ratio(c.gap, ref.gap)
                e = Entry(
                    dataset=oc.name,
                    optimizer=opt,
                    method=m,
                    lr=c.lr,
                    k=c.k,
                    status=oc.status(opt, m),
                    gap=t_interval(c.gap),
                    test_acc=t_interval(c.test_acc),
                    ratio=ratio,
                    bound=oc.bound(opt, m),
                    gaps=[float(g) for g in c.gap],
                )
                entries[(opt, oc.name, m)] = e
                obs.append(e.gap[0])
                bnd.append(e.bound)
            spearman[(opt, oc.name)] = rank_correlation(bnd, obs)
    overall: dict[tuple[str, str], RatioCI] = {}
    wtl: dict[tuple[str, str], tuple[int, int, int]] = {}
    for opt in optimizers:
        for m in methods:
            if m == REFERENCE:
                continue
            rs = [
                e.ratio
                for (o, _, mm), e in entries.items()
                if o == opt and mm == m and e.ratio is not None
            ]
            if rs:
                overall[(opt, m)] = geometric_mean_ratio(rs)
                wtl[(opt, m)] = win_tie_loss(rs)
    best: dict[str, str] = {}
    vs_best: dict[tuple[str, str], RatioCI] = {}
    vs_best_wtl: dict[tuple[str, str], tuple[int, int, int]] = {}
    vs_best_entries: dict[tuple[str, str, str], RatioCI] = {}
    names = [oc.name for oc in outcomes]
    for opt in optimizers:
        scores = {
            m: (0.0 if m == REFERENCE else overall[(opt, m)].log_mean)
            for m in methods
            if is_baseline(m) and (m == REFERENCE or (opt, m) in overall)
        }
        if not scores:
            continue
        b = min(scores, key=lambda m: scores[m])
        best[opt] = b
        for m in methods:
            if is_baseline(m):
                continue
            rs = []
            for d in names:
                em, eb = entries.get((opt, d, m)), entries.get((opt, d, b))
                if em is None or eb is None:
                    continue
                r = paired_log_ratio(em.gaps, eb.gaps)
                vs_best_entries[(opt, d, m)] = r
                rs.append(r)
            if rs:
                vs_best[(opt, m)] = geometric_mean_ratio(rs)
                vs_best_wtl[(opt, m)] = win_tie_loss(rs)
    return Analysis(
        methods=list(methods),
        optimizers=list(optimizers),
        datasets=names,
        entries=entries,
        overall=overall,
        wtl=wtl,
        spearman=spearman,
        best_baseline=best,
        vs_best=vs_best,
        vs_best_wtl=vs_best_wtl,
        vs_best_entries=vs_best_entries,
    )


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
                f"  - Best baseline (smallest geometric mean among the schedules that are not a "
                f"refinement, linear decay included): **{b}**."
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
# figures


def _per_dataset_figure(
    outcomes: Sequence[DatasetOutcome],
    draw: Callable[[Any, DatasetOutcome], None],
    *,
    title: str,
    path: Path,
    ncols: int = 4,
) -> None:
    """One small panel per dataset (``draw(ax, outcome)``), legend in the first, saved to ``path``."""
    n = len(outcomes)
    nrows = max(1, math.ceil(n / ncols))
    ncols = min(ncols, max(n, 1))
    fig = new_figure((3.2 * ncols, 2.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax, oc in zip(axes, outcomes, strict=False):
        draw(ax, oc)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.suptitle(title)
    fig.savefig(path, dpi=80)


def _plot_ratios(outcomes: Sequence[DatasetOutcome], a: Analysis, opt: str, path: Path) -> None:
    """Gap ratio to linear decay per dataset and schedule, with intervals."""
    colors = _colors(a.methods)
    n = len(outcomes)
    others = [m for m in a.methods if m != REFERENCE]
    fig = new_figure((max(8.0, 0.55 * n * len(others) / 4 + 4), 4.5))
    ax = fig.subplots()
    width = 0.8 / max(len(others), 1)
    for j, m in enumerate(others):
        xs, ys, lo, hi = [], [], [], []
        for i, oc in enumerate(outcomes):
            e = a.entries.get((opt, oc.name, m))
            if e is None or e.ratio is None or not math.isfinite(e.ratio.ratio):
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(e.ratio.ratio)
            lo.append(e.ratio.ratio - max(e.ratio.low, 1e-6))
            hi.append(min(e.ratio.high, 1e6) - e.ratio.ratio)
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", ms=3.5, lw=0.8, color=colors[m], label=m)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(n), [oc.name for oc in outcomes], rotation=45, ha="right")
    ax.set_ylabel("gap / gap of linear decay")
    name = OPTIMIZER_LABELS.get(opt, opt)
    ax.set_title(f"{name}: final objective gap relative to linear decay (95% CI, paired)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, ncol=4, loc="best")
    fig.savefig(path, dpi=90)


def _colors(methods: Sequence[str]) -> dict[str, Any]:
    n = 10 if len(methods) <= 10 else 20
    cmap = colormaps[f"tab{n}"]
    return {m: cmap(i % n) for i, m in enumerate(methods)}


def _plot_all(outcomes: Sequence[DatasetOutcome], a: Analysis, out: Path) -> list[tuple[str, str]]:
    made: list[tuple[str, str]] = []
    colors = _colors(a.methods)
    for opt in a.optimizers:
        name = OPTIMIZER_LABELS.get(opt, opt)
        col, kind = (0, "l1") if opt == "adam" else (1, "l2")

        def schedules(ax: Any, oc: DatasetOutcome, opt: str = opt) -> None:
            for m in a.methods:
                s = oc.schedules.get((opt, m))
                if s is None:
                    continue
                y = s.preview()
                bold = m.startswith("refined") or m == REFERENCE
                ax.plot(
                    np.linspace(0, 1, y.size),
                    y,
                    lw=1.6 if bold else 0.8,
                    alpha=1 if bold else 0.6,
                    color=colors[m],
                    label=m,
                )
            ax.set_title(f"{oc.name} (T={oc.total_steps})", fontsize=9)
            ax.set_ylim(-0.02, 1.05)

        def norms(
            ax: Any, oc: DatasetOutcome, opt: str = opt, col: int = col, kind: str = kind
        ) -> None:
            n = oc.linear_norms.get(opt)
            if n is None:
                return
            g = n[:, col]
            x = np.linspace(0, 1, g.size)
            ax.plot(x, g, lw=0.5, alpha=0.5, color="0.4", label=f"{kind} (mean of seeds)")
            for tau, c in ((0.1, "C0"), (0.5, "C3")):
                ax.plot(x, smooth_norms(g, tau), lw=1.4, color=c, label=f"median, tau={tau}")
            ax.set_yscale("log")
            ax.set_title(oc.name, fontsize=9)

        def sweeps(ax: Any, oc: DatasetOutcome, opt: str = opt) -> None:
            for m in a.methods:
                cs = oc.cells_of(opt, m)
                if not cs:
                    continue
                ys = [
                    float(np.mean(np.maximum(c.gap, 1e-12)))
                    if np.all(np.isfinite(c.gap))
                    else np.nan
                    for c in cs
                ]
                ax.plot([c.lr for c in cs], ys, "-o", ms=2, lw=1.0, color=colors[m], label=m)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(oc.name, fontsize=9)

        _plot_ratios(outcomes, a, opt, out / f"gaps_{opt}.png")
        made.append(
            (f"gaps_{opt}.png", f"{name}: gap ratio to linear decay per dataset and schedule")
        )
        for stem, draw, title, caption in (
            (
                "schedules",
                schedules,
                f"{name}: schedules (x: fraction of training); refined from the best linear run",
                f"{name}: schedules per dataset, refined ones included",
            ),
            (
                "norms",
                norms,
                f"{name}: {kind} norms of the mini-batch gradient, best linear-decay run",
                f"{name}: gradient norms of the best linear-decay runs",
            ),
            (
                "lr_sweeps",
                sweeps,
                f"{name}: mean final gap vs peak LR (every grid point)",
                f"{name}: LR sweeps (mean gap over seeds vs LR)",
            ),
        ):
            fn = f"{stem}_{opt}.png"
            _per_dataset_figure(outcomes, draw, title=title, path=out / fn)
            made.append((fn, caption))
    return made


# ----------------------------------------------------------------------------------------------
# the report


def _summary_json(a: Analysis, outcomes: Sequence[DatasetOutcome]) -> dict[str, Any]:
    def rc(r: RatioCI | None) -> Any:
        return None if r is None else {"ratio": r.ratio, "low": r.low, "high": r.high, "n": r.n}

    def num(x: float) -> Any:
        return x if math.isfinite(x) else str(x)

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


def _late_ratio(oc: DatasetOutcome, optimizer: str, late_fraction: float = 0.1) -> float:
    """Median norm over the last ``late_fraction`` of the best linear run / median overall."""
    norms = oc.linear_norms.get(optimizer)
    if norms is None:
        return math.nan
    g = norms[:, 0 if optimizer == "adam" else 1]
    n_late = max(1, round(late_fraction * g.size))
    return float(np.median(g[-n_late:]) / np.median(g))


def _minutes(e: Mapping[str, Any], key: str) -> str:
    return f"{float(e.get(key, math.nan)) / 60:.1f} min"


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
    figures = _plot_all(outcomes, a, out) if plots and outcomes else []
    with atomic_write(out / "summary.json") as fh:
        fh.write(json.dumps(_summary_json(a, outcomes), indent=1))
    wall = math.nan if started is None else time.perf_counter() - started
    if run_entry is not None:
        append_runlog(out, {**run_entry, "wall_seconds": round(wall, 1)})
    history = read_runlog(out)
    main_run = max(history, key=lambda e: int(e.get("trained_runs", 0)), default=None)

    others = [m for m in a.methods if m != REFERENCE]
    L: list[str] = []
    L.append("# Convex benchmark: multinomial logistic regression (arXiv 2310.07831)")
    L.append("")
    if main_run is not None and int(main_run.get("trained_runs", 0)) > 0:
        L.append(
            f"- Made by: `{main_run.get('command')}` on {main_run.get('date')}: wall time "
            f"{_minutes(main_run, 'wall_seconds')} for the whole command (training "
            f"{_minutes(main_run, 'train_seconds')}, {main_run.get('trained_runs')} runs)"
        )
    if main_run is None or main_run.get("command") != command or len(history) > 1:
        L.append(
            f"- This report: `{command}` on {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} "
            f"({sum(oc.trained_runs for oc in outcomes)} runs trained, the rest from the cache; "
            f"{wall / 60:.1f} min)"
        )
    L.append(
        f"- Machine: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('platform')}; "
        f"Python {machine.get('python')}, torch {machine.get('torch')} "
        f"({machine.get('torch_threads')} threads, {machine.get('cpu_kernels')} kernels), "
        f"numpy {machine.get('numpy')}"
    )
    L.append(f"- Seeds (data order): {', '.join(map(str, protocol.seeds))}")
    L.append("")
    if len(history) > 1:
        L.append(
            "Invocations logged in this directory (`runlog.jsonl`; a rerun reuses cached "
            "results, so the run that trained them carries the real cost):"
        )
        L.append("")
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
    L.append("## Protocol")
    L.append("")
    L.append(
        "- Model: multinomial logistic regression with biases, zero initialisation, "
        "features standardised on the training split (fixed stratified 80/20 split)."
    )
    L.append(
        f"- Objective: mean cross-entropy + (λ/2)·‖W‖² on the weights (not the biases), "
        f"λ = {protocol.l2:g}, identical in training and in f*. The penalty makes the optimum "
        "exist on separable data; f* is computed in float64 (scipy L-BFGS, then Newton steps) "
        "and verified by the full-gradient norm (column ‖∇f(x*)‖ below, required < 1e-9)."
    )
    L.append(
        f"- Mini-batch {protocol.batch_size} (each epoch a fresh permutation per seed; the "
        "incomplete last batch is dropped). Runs with the same seed see the same batches, so "
        "comparisons are paired by seed."
    )
    L.append(
        f"- Adam: betas {protocol.betas}, eps {protocol.eps:g}, bias-corrected (as "
        "torch.optim.Adam), refinement with l1 norms (Algorithm 2). SGD: plain, refinement with "
        "l2 norms (Algorithm 1). Recorded norm: l1 / l2 norm of the mini-batch gradient over all "
        "parameters (penalty included), at every step."
    )
    if any(SCHEDULE_ARMS[m].schedule_free for m in a.methods if m in SCHEDULE_ARMS):
        L.append(
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
    L.append(
        f"- Epochs: min({protocol.max_epochs}, max({protocol.min_epochs}, "
        f"{protocol.step_budget} // steps per epoch))"
        + (f" overridden to {protocol.epochs}" if protocol.epochs else "")
        + "; the same for every schedule (table below)."
    )
    L.append(
        "- Schedules (no warm-up unless stated): "
        + "; ".join(
            f"**{m}**: {SCHEDULE_ARMS[m].description}" for m in a.methods if m in SCHEDULE_ARMS
        )
        + ". Refined schedules are computed from the per-step norms of the best linear-decay run "
        "(mean over seeds at its chosen LR), then their peak LR is tuned on their own grid."
    )
    L.append(
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
        "always unimodal in the LR.)"
    )
    L.append(
        "- Statistics: in this report ± is always the half-width of the 95% Student-t interval "
        "over seeds (not a standard deviation). Ratios to "
        "linear decay are paired by seed: t interval on the per-seed log-ratios "
        "log(gap/gap_linear), shown as exp(mean) [exp(low), exp(high)]. Win / loss: the whole "
        "interval below / above 1 (▼ / ▲ in tables); tie otherwise. Across datasets: geometric "
        "mean of the per-dataset ratios with a t interval over datasets (datasets are the "
        "sampling unit). Gaps below 1e-12 are floored before logs."
    )
    L.append(
        "- Theory vs practice: each schedule's last-iterate bound at its best scale "
        "(`refinedlr.bounds.best_scale`) from the mean norms of the best linear-decay run "
        "(l2 norms for SGD; for Adam the l1 norms, the dual-norm analogue Algorithm 2 uses), "
        "ranked against the observed mean gaps (Spearman)."
    )
    L.append(
        f"- Reproducibility: torch's CPU kernels are pinned to {machine.get('cpu_kernels')} "
        "(`refinedlr_bench.cpu_kernels`; AVX-512 kernels round differently), one torch thread. "
        "Rerunning the command, from scratch or resumed from its cache, reproduces every number "
        "bit for bit. All configurations of a dataset, round and batch group train as one "
        "batched tensor, and float32 rounding depends on a run's position in it: a "
        "configuration trained in another batch (another `--methods` set, a study arm) agrees "
        "only to float32 rounding, which chaotic runs (SGD near its largest stable LR) amplify. "
        "The arms added later (cosine-10, wsd-1sqrt, schedule-free) train in a batch group of "
        "their own, so the earlier arms' batches are the same as before they were added."
    )
    L.append("")

    L.append("## Headline: final objective gap relative to linear decay")
    L.append("")
    L.append(
        "Geometric mean over datasets of each schedule's gap divided by linear decay's gap "
        "(each at its own tuned LR), 95% CI across datasets; W/T/L = per-dataset wins / ties / "
        "losses against linear decay (paired by seed). Below 1 = better than linear decay. "
        "★ marks the best baseline of each optimizer (the smallest geometric mean among the "
        "schedules that are not a refinement, linear decay included); the last rows compare "
        "each refinement with that best baseline directly (the same statistics, paired by seed "
        "with the best baseline instead of linear decay)."
    )
    L.append("")
    L += _headline(a)
    L.append("")
    L.append("## Findings (computed from the tables)")
    L.append("")
    L += _findings(a)
    L.append("")
    disc = out / "discussion.md"
    if disc.exists():
        L.append("## Discussion")
        L.append("")
        L.append(
            "The hand-written reading of these tables (what reproduced, what did not, "
            "reproducibility and caveats) is in [discussion.md](discussion.md)."
        )
        L.append("")

    L.append("## Datasets")
    L.append("")
    rows = []
    for oc in outcomes:
        rows.append(
            [
                oc.name,
                str(oc.n_train),
                str(oc.n_test),
                str(oc.n_features),
                str(oc.n_classes),
                str(oc.steps_per_epoch),
                str(oc.epochs),
                str(oc.total_steps),
                f"{oc.fstar:.10g}",
                f"{oc.fstar_grad_norm:.1e}",
                f"{oc.fstar_train_acc:.3f} / {oc.fstar_test_acc:.3f}",
                str(oc.rounds),
                f"{oc.seconds:.0f}",
            ]
        )
    L += markdown_table(
        [
            "dataset",
            "n train",
            "n test",
            "d",
            "K",
            "steps/epoch",
            "epochs",
            "T",
            "f*",
            "‖∇f(x*)‖",
            "acc at x* (train / test)",
            "rounds",
            "time (s)",
        ],
        rows,
    )
    L.append("")
    L.append(
        "`rounds`: batched training passes this invocation needed for the dataset (0 = all "
        "results from the cache)."
    )
    L.append("")

    for opt in a.optimizers:
        name = OPTIMIZER_LABELS.get(opt, opt)
        L.append(f"## {name}: per-dataset results")
        L.append("")
        L.append(f"### {name}: gap ratio to linear decay (paired by seed, 95% CI; ▼ win, ▲ loss)")
        L.append("")
        mean_row = ["**geometric mean**", *(fmt_ratio_ci(a.overall.get((opt, m))) for m in others)]
        L += _per_dataset(a, opt, others, lambda e: fmt_ratio_ci(e.ratio), last_row=mean_row)
        L.append("")
        b = a.best_baseline.get(opt)
        refined = [m for m in a.methods if (opt, m) in a.vs_best]
        if b is not None and refined:
            L.append(
                f"### {name}: refinement vs the best baseline ({b}) (paired by seed, 95% CI; "
                "▼ win, ▲ loss)"
            )
            L.append("")
            rows = [
                [
                    d,
                    *(
                        fmt_ratio_ci(a.vs_best_entries.get((opt, d, m)))
                        if (opt, d, m) in a.vs_best_entries
                        else "–"
                        for m in refined
                    ),
                ]
                for d in a.datasets
            ]
            rows.append(
                ["**geometric mean**", *(fmt_ratio_ci(a.vs_best.get((opt, m))) for m in refined)]
            )
            L += markdown_table(["dataset", *(f"{m} / {b}" for m in refined)], rows)
            L.append("")
        L.append(f"### {name}: final gap f(x_T) − f* (mean ± 95% CI half-width over seeds)")
        L.append("")
        L += _per_dataset(a, opt, a.methods, lambda e: _mean_ci(e.gap))
        L.append("")
        L.append(f"### {name}: held-out accuracy (mean ± 95% CI half-width)")
        L.append("")
        L += _per_dataset(a, opt, a.methods, lambda e: _mean_ci(e.test_acc, 4))
        L.append("")
        L.append(f"### {name}: chosen peak LR (⚠ = best on the grid's edge at a hard limit)")
        L.append("")
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
        L.append("")
        L.append(f"### {name}: theory vs practice (ranking by last-iterate bound vs observed)")
        L.append("")
        L.append(
            "Schedules only: schedule-free has no last-iterate bound of this kind and is left out "
            "of both rankings."
        )
        L.append("")
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
            L.append("")
            m_, lo_, hi_ = t_interval(rhos)
            L.append(f"Mean Spearman ρ over datasets: {m_:.2f} (95% CI {lo_:.2f} to {hi_:.2f}).")
        L.append("")

    # refinement diagnostics
    diag = []
    trend: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for oc in outcomes:
        for opt in a.optimizers:
            for m in a.methods:
                s = oc.schedules.get((opt, m))
                prov = getattr(s, "provenance", None)
                if not prov or prov.get("method") != "refine":
                    continue
                y = s.preview()  # type: ignore[union-attr]
                T = y.size
                late = _late_ratio(oc, opt)
                e = a.entries.get((opt, oc.name, m))
                ratio = e.ratio if e is not None else None
                if ratio is not None and math.isfinite(late):
                    trend.setdefault((opt, m), []).append((late, ratio.log_mean))
                diag.append(
                    [
                        oc.name,
                        OPTIMIZER_LABELS.get(opt, opt),
                        m,
                        f"{np.argmax(y) / max(T - 1, 1):.2f}",
                        f"{y[int(0.5 * (T - 1))]:.2f}",
                        f"{y[int(0.75 * (T - 1))]:.2f}",
                        f"{y[int(0.9 * (T - 1))]:.2f}",
                        fmt_number(late, ".4f"),
                        "yes" if prov.get("collapse") else "",
                        fmt_ratio_ci(ratio),
                    ]
                )
    if diag:
        L.append("## Refined schedules: shape diagnostics")
        L.append("")
        L.append(
            "Peak position (fraction of training) and the multiplier at 50%, 75% and 90% of "
            "training (linear decay: 0.50, 0.25, 0.10); `late/median`: median gradient norm "
            "(l1 for Adam, l2 for SGD, mean over seeds of the best linear run) over the last 10% "
            "of training divided by its median over the whole run (4 decimals, so counts against "
            "a cut-off such as 0.95 can be rebuilt from the table); `collapse`: the smoothed "
            "version of that ratio is below 0.1 (the paper's degenerate case); last column: the "
            "gap ratio to linear decay (as above)."
        )
        L.append("")
        L += markdown_table(
            [
                "dataset",
                "optimizer",
                "method",
                "peak at",
                "s(0.5)",
                "s(0.75)",
                "s(0.9)",
                "late/median",
                "collapse",
                "gap / linear",
            ],
            diag,
        )
        L.append("")
        for (opt, m), pts in trend.items():
            if len(pts) >= 3:
                rho = rank_correlation([p[0] for p in pts], [p[1] for p in pts])
                L.append(
                    f"- {OPTIMIZER_LABELS.get(opt, opt)}, {m}: Spearman ρ between late/median norm and "
                    f"the gap ratio to linear decay over {len(pts)} datasets: {fmt_number(rho, '.2g')}."
                )
        L.append("")
    L += figure_list(figures)
    L.append(
        "Files: `runs.csv` (every run: dataset, optimizer, schedule, LR, seed, objective, gap, "
        "accuracies, chosen flag, batch wall time), `summary.json` (the tables above), "
        "`cache/` (per-configuration results for resuming; not meant for version control)."
    )
    L.append("")
    with atomic_write(out / "report.md") as fh:
        fh.write("\n".join(L))
    return a
