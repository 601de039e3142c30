"""The deep suite's figures: the recorded norms and the refined schedule, the LR sweep, and the
training curves, norms and learning rates of every schedule at its chosen LR (PNG)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr.plot import plot_norms_and_schedules

from refinedlr_bench.deep import DeepSuite
from refinedlr_bench.deep_analysis import LABELS, DeepAnalysis
from refinedlr_bench.figures import new_figure

__all__ = ["plot_all"]


def _norms_and_schedules(suite: DeepSuite, a: DeepAnalysis, out: Path) -> list[str]:
    spec, ref, kind = suite.spec, a.refinement, suite.spec.norm_kind
    if ref is None:
        return []
    scheds: dict[str, Any] = {f"refined (tau {spec.protocol.tau}, {kind})": ref.schedule}
    for name in ("linear", "cosine"):
        if name in a.outcomes:
            scheds[LABELS[name]] = a.outcomes[name].schedule
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
    return ["norms_and_schedules.png"]


def _lr_sweep(suite: DeepSuite, a: DeepAnalysis, out: Path) -> list[str]:
    spec, sel = suite.spec, a.selection
    fig = new_figure((7.0, 4.0))
    ax = fig.subplots()
    for name, oc in a.outcomes.items():
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
    return ["lr_sweep.png"]


def _curves(suite: DeepSuite, a: DeepAnalysis, out: Path) -> list[str]:
    spec = suite.spec
    fig = new_figure((8.0, 7.5))
    ax_l, ax_n, ax_s = fig.subplots(3, 1, sharex=True)
    for name, oc in a.outcomes.items():
        runs = oc.final_runs()
        curves = [d["curve"]["train_loss"] for d in runs if not d["diverged"]]
        if curves:
            n = min(len(c) for c in curves)
            every = runs[0]["curve"]["every"]
            y = np.mean([c[:n] for c in curves], axis=0)
            x = (np.arange(n) + 0.5) * every
            ax_l.plot(x, y, label=f"{LABELS[name]} (lr {suite.lr(oc.best or 0):.3g})")
        if name in a.norms_by_schedule:
            ax_n.plot(a.norms_by_schedule[name], lw=0.8, alpha=0.8, label=LABELS[name])
        ax_s.plot(suite.lr(oc.best or 0) * oc.schedule.preview(), label=LABELS[name])
    ax_l.set_yscale("log")
    ax_l.set_ylabel("train loss (block means)")
    ax_l.legend(fontsize=8)
    ax_n.set_yscale("log")
    ax_n.set_ylabel(f"{spec.norm_kind} grad norm (median of seeds)")
    ax_s.set_ylabel("learning rate")
    ax_s.set_xlabel("optimizer step")
    ax_s.set_xlim(0, spec.steps)
    for ax in (ax_l, ax_n, ax_s):
        ax.grid(alpha=0.3)
    fig.suptitle(f"{spec.task}: every schedule at its chosen peak LR")
    fig.savefig(out / "curves.png", dpi=110)
    return ["curves.png"]


def plot_all(suite: DeepSuite, a: DeepAnalysis, out: Path) -> list[str]:
    """Every figure of the deep report into ``out``; returns the file names."""
    return [
        *_norms_and_schedules(suite, a, out),
        *_lr_sweep(suite, a, out),
        *_curves(suite, a, out),
    ]
