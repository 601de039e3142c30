"""The refinement study's figures: the development candidates, the held-out datasets, bound
against observed, the LR over time, cheap refinement against compute and the deep schedules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr.verify import VERIFY_THRESHOLD

from refinedlr_bench.figures import subplots
from refinedlr_bench.study_stats import (
    OPTS,
    mean_cost,
    mechanism_rows,
    summaries,
    summarize_arm,
)
from refinedlr_bench.tables import OPTIMIZER_LABELS

__all__ = ["plot_all"]

Digests = Mapping[str, dict[str, Any]]


def _dev_candidates(out: Path, dev: Digests, arms: Sequence[str]) -> tuple[str, str]:
    """Every candidate on the development split: geometric mean with its interval."""
    S = summaries(dev, arms)
    fig, axes = subplots(1, 2, figsize=(12, 9), sharey=True)
    names = [a for a in arms if a in S]
    for ax, o in zip(axes, OPTS, strict=True):
        for i, a in enumerate(names):
            s = S[a].get(o)
            if s is None:
                continue
            g = s.overall
            color = "tab:red" if s.losses else "tab:green"
            ax.errorbar(
                g.ratio,
                i,
                xerr=[[g.ratio - g.low], [g.high - g.ratio]],
                fmt="o",
                color=color,
                capsize=3,
            )
            ax.annotate(f"{s.losses}", (g.ratio, i), xytext=(4, 4), textcoords="offset points")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.axvline(0.95, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_title(f"{OPTIMIZER_LABELS[o]}: development split (9 datasets)")
        ax.set_xlabel("geometric-mean gap ratio to linear decay (95% CI); label = losses")
    axes[0].set_yticks(range(len(names)), names)
    fig.savefig(out / "dev_candidates.png", dpi=110)
    return ("dev_candidates.png", "every candidate on the development split (red: ≥1 loss)")


def _heldout(out: Path, held: Digests) -> tuple[str, str]:
    """Held-out per-dataset ratios of the paper's and the verified refinements."""
    shown = ["refined-0.1", "pilot-0.1", "refined-verified", "pilot-verified-0.1"]
    fig, axes = subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, o in zip(axes, OPTS, strict=True):
        ds = list(held)
        w = 0.8 / len(shown)
        for i, a in enumerate(shown):
            s = summarize_arm(held, o, a)
            if s is None:
                continue
            x = np.arange(len(ds)) + i * w
            y = [s.ratios[n].ratio if n in s.ratios else np.nan for n in ds]
            lo = [y[j] - s.ratios[n].low if n in s.ratios else 0 for j, n in enumerate(ds)]
            hi = [s.ratios[n].high - y[j] if n in s.ratios else 0 for j, n in enumerate(ds)]
            ax.bar(x, y, w, label=a, yerr=[lo, hi], capsize=2)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(ds)) + 0.4 - w / 2, ds, rotation=45, ha="right")
        ax.set_title(f"{OPTIMIZER_LABELS[o]}: held-out split, gap ratio to linear decay")
    axes[0].legend(fontsize=8)
    fig.savefig(out / "heldout.png", dpi=110)
    return ("heldout.png", "held-out datasets: paper vs verified (per dataset, 95% CI)")


def _bound_vs_observed(out: Path, both: Digests) -> tuple[str, str]:
    """The paper's refinement: its bound ratios against its observed gap ratios."""
    fig, axes = subplots(1, 2, figsize=(12, 5))
    for ax, o in zip(axes, OPTS, strict=True):
        rows = mechanism_rows(both, o, "refined-0.1")
        obs = [r[2] for r in rows]
        ax.scatter(
            [r[1]["bound_linrec"] for r in rows], obs, label="bound on linear decay's record"
        )
        ax.scatter(
            [r[1]["bound_own"] for r in rows], obs, marker="s", label="bound on its own record"
        )
        for r in rows:
            ax.annotate(r[0], (r[1]["bound_own"], r[2]), fontsize=7)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axvline(VERIFY_THRESHOLD, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("bound ratio, refined / linear decay (best scale)")
        ax.set_ylabel("observed gap ratio, refined / linear decay")
        ax.set_title(f"{OPTIMIZER_LABELS[o]}: the paper's refinement (tau 0.1), 19 datasets")
        ax.legend(fontsize=8)
    fig.savefig(out / "bound_vs_observed.png", dpi=110)
    return ("bound_vs_observed.png", "bound (on the linear record / on its own record) vs observed")


def _lr_over_time(out: Path, both: Digests) -> tuple[str, str]:
    """Absolute LR over time: linear vs refined where refinement lost / won (SGD)."""
    pick = [n for n in ("dna", "spam", "wine", "musk", "sonar", "digits") if n in both]
    fig, axes = subplots(2, 3, figsize=(13, 7))
    for ax, n in zip(axes.ravel(), pick, strict=False):
        d = both[n]
        for a, style in (("linear", "-"), ("refined-0.1", "--"), ("refined-verified", ":")):
            r = d["arms"].get(f"sgd|{a}")
            if r is None or r.get("lr") is None:
                continue
            sv = np.asarray(r["schedule"], dtype=float)
            t = np.linspace(0, 1, sv.size)
            ax.plot(t, r["lr"] * sv, style, label=f"{a} (peak {r['lr']:.3g})")
        ax.set_title(f"{n} (SGD)")
        ax.set_xlabel("fraction of training")
        ax.set_ylabel("learning rate")
        ax.legend(fontsize=7)
    fig.savefig(out / "lr_over_time.png", dpi=110)
    return ("lr_over_time.png", "absolute LR over time, SGD: linear, refined, verified")


def _cheap_cost(out: Path, dev: Digests, cheap: Sequence[str]) -> tuple[str, str]:
    """Cheap refinement: ratio against compute (development split)."""
    fig, axes = subplots(1, 2, figsize=(12, 5))
    for ax, o in zip(axes, OPTS, strict=True):
        for a in cheap:
            s = summarize_arm(dev, o, a)
            if s is None:
                continue
            c = mean_cost(dev, o, a) / mean_cost(dev, o, "linear")
            ax.scatter(c, s.overall.ratio)
            ax.annotate(a, (c, s.overall.ratio), fontsize=7)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("compute / linear decay's LR sweep")
        ax.set_ylabel("geometric-mean gap ratio to linear decay")
        ax.set_title(f"{OPTIMIZER_LABELS[o]}: cheap refinement (development)")
    fig.savefig(out / "cheap_cost.png", dpi=110)
    return ("cheap_cost.png", "cheap variants: ratio vs compute (development split)")


def _deep_schedules(out: Path, deep: Digests) -> list[tuple[str, str]]:
    """The deep tasks' schedules at their tuned LR."""
    if not deep:
        return []
    fig, axes = subplots(1, len(deep), figsize=(6 * len(deep), 4), squeeze=False)
    for ax, (task, d) in zip(axes[0], deep.items(), strict=True):
        for name, s in d.get("schedules", {}).items():
            lr = d["arms"].get(name, {}).get("lr") or 1.0
            v = np.asarray(s, dtype=float)
            ax.plot(np.linspace(0, 1, v.size), lr * v, label=f"{name} (peak {lr:.3g})")
        ax.set_title(f"{task}: schedules at their tuned LR")
        ax.set_xlabel("fraction of training")
        ax.legend(fontsize=7)
    fig.savefig(out / "deep_schedules.png", dpi=110)
    return [("deep_schedules.png", "deep tasks: schedules at their tuned LR")]


def plot_all(
    out: Path,
    dev: Digests,
    held: Digests,
    deep: Digests,
    *,
    candidates: Sequence[str],
    cheap: Sequence[str],
) -> list[tuple[str, str]]:
    """Every figure of the study's report into ``out``; returns ``(file, caption)`` pairs."""
    both = {**dev, **held}
    return [
        _dev_candidates(out, dev, ["refined-0.1", "refined-0.5", "cosine", *candidates]),
        _heldout(out, held),
        _bound_vs_observed(out, both),
        _lr_over_time(out, both),
        _cheap_cost(out, dev, cheap),
        *_deep_schedules(out, deep),
    ]
