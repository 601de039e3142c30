"""The convex suite's figures: gap ratios, schedules, norms and LR sweeps per dataset (PNG)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from refinedlr.refinement import smooth_norms

from refinedlr_bench.convex import DatasetOutcome
from refinedlr_bench.convex_analysis import REFERENCE, Analysis, is_default
from refinedlr_bench.figures import new_figure
from refinedlr_bench.tables import OPTIMIZER_LABELS

__all__ = ["plot_all"]

Draw = Callable[[Any, DatasetOutcome], None]


def _per_dataset_figure(
    outcomes: Sequence[DatasetOutcome], draw: Draw, *, title: str, path: Path, ncols: int = 4
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


def _draw_schedules(a: Analysis, opt: str, ax: Any, oc: DatasetOutcome) -> None:
    colors = _colors(a.methods)
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


def _draw_norms(opt: str, ax: Any, oc: DatasetOutcome) -> None:
    col, kind = (0, "l1") if opt == "adam" else (1, "l2")
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


def _draw_sweeps(a: Analysis, opt: str, ax: Any, oc: DatasetOutcome) -> None:
    colors = _colors(a.methods)
    for m in a.methods:
        cs = oc.cells_of(opt, m)
        if not cs:
            continue
        ys = [
            float(np.mean(np.maximum(c.gap, 1e-12))) if np.all(np.isfinite(c.gap)) else np.nan
            for c in cs
        ]
        ax.plot([c.lr for c in cs], ys, "-o", ms=2, lw=1.0, color=colors[m], label=m)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(oc.name, fontsize=9)


def plot_all(outcomes: Sequence[DatasetOutcome], a: Analysis, out: Path) -> list[tuple[str, str]]:
    """Every figure of the report into ``out``; returns ``(file, caption)`` pairs. The figures
    show the default arms (the equal-terms arms of issue 20 are in the tables only)."""
    a = dataclasses.replace(a, methods=[m for m in a.methods if is_default(m)])
    made: list[tuple[str, str]] = []
    for opt in a.optimizers:
        name = OPTIMIZER_LABELS.get(opt, opt)
        kind = "l1" if opt == "adam" else "l2"
        _plot_ratios(outcomes, a, opt, out / f"gaps_{opt}.png")
        made.append(
            (f"gaps_{opt}.png", f"{name}: gap ratio to linear decay per dataset and schedule")
        )
        panels: tuple[tuple[str, Draw, str, str], ...] = (
            (
                "schedules",
                partial(_draw_schedules, a, opt),
                f"{name}: schedules (x: fraction of training); refined from the best linear run",
                f"{name}: schedules per dataset, refined ones included",
            ),
            (
                "norms",
                partial(_draw_norms, opt),
                f"{name}: {kind} norms of the mini-batch gradient, best linear-decay run",
                f"{name}: gradient norms of the best linear-decay runs",
            ),
            (
                "lr_sweeps",
                partial(_draw_sweeps, a, opt),
                f"{name}: mean final gap vs peak LR (every grid point)",
                f"{name}: LR sweeps (mean gap over seeds vs LR)",
            ),
        )
        for stem, draw, title, caption in panels:
            fn = f"{stem}_{opt}.png"
            _per_dataset_figure(outcomes, draw, title=title, path=out / fn)
            made.append((fn, caption))
    return made
