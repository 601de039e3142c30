"""The refinement study's report: ``report.md``, ``summary.csv`` and the figures.

Reads what ``refinedlr bench study convex|deep`` wrote (``OUT/convex/<dataset>.json``,
``OUT/deep/<task>.json``, ``OUT/runlog.jsonl``) and, for the mechanism figure, the cached runs.
The hand-written summary lives in ``OUT/discussion.md``; the report links to it (one source).

The convex suite's baselines that the study did not run itself (constant, 1/t, 1/sqrt t,
step-wise, WSD, cosine to 10%, WSD with a 1-sqrt cooldown, schedule-free) are read from the
convex suite's ``summary.json`` (:func:`add_suite_arms`): the study's linear decay is the convex
suite's own runs, so their ratios pair with the same linear-decay runs. Section 7 compares
``refined-verified`` with the best of them.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr.fileio import atomic_write
from refinedlr.verify import VERIFY_THRESHOLD

from refinedlr_bench.figures import subplots
from refinedlr_bench.runlog import read_runlog
from refinedlr_bench.stats import (
    geometric_mean_ratio,
    paired_log_ratio,
    rank_correlation,
    win_tie_loss,
)
from refinedlr_bench.study_arms import STUDY_ARMS
from refinedlr_bench.study_design import (
    CHOSEN_CHEAP,
    CHOSEN_METHOD,
    DEV_DATASETS,
    DEV_DEEP_TASK,
    HELDOUT_DATASETS,
    HELDOUT_DEEP_TASK,
    SPLIT_SEED,
)
from refinedlr_bench.study_stats import (
    VERIFIED_ARMS,
    ArmSummary,
    add_verified_arms,
    load_digests,
    select_method,
    summarize_arm,
)
from refinedlr_bench.tables import (
    OPTIMIZER_LABELS,
    figure_list,
    fmt_number,
    fmt_ratio_ci,
    markdown_table,
    write_csv,
)

__all__ = ["SUITE_BASELINES", "add_deep_suite_arms", "add_suite_arms", "write_report"]

OPTS = ("adam", "sgd")
#: The cheap variants compared by compute (with the paper's refinement and the verified arms).
CHEAP_SHOWN = (
    "refined-0.1",
    "pilot-0.1",
    "pilot-0.25",
    "pilot-envelope-0.1",
    "pilot-envelope-0.25",
    "pilot-floor-med-0.1",
    "pilot-floor-med-0.25",
    "prefix-0.1",
    "prefix-0.25",
    "refined-verified",
    "refined-verified-1run",
    "pilot-verified-0.1",
)
#: The arms shown for the held-out split.
HELDOUT_SHOWN = (
    "refined-verified",
    "refined-verified-1run",
    "pilot-verified-0.1",
    "refined-0.1",
    "refined-0.5",
    "pilot-0.1",
    "cosine",
    "cosine-10",
    "wsd-1sqrt",
    "schedule-free",
)
#: The convex suite's schedules that are not a refinement (linear decay is the reference).
SUITE_BASELINES = (
    "constant",
    "1/t",
    "1/sqrt_t",
    "step",
    "cosine",
    "wsd",
    "cosine-10",
    "wsd-1sqrt",
    "schedule-free",
)


def add_suite_arms(
    digests: Mapping[str, dict[str, Any]],
    convex_summary: Mapping[str, Any],
    arms: Sequence[str] = SUITE_BASELINES,
) -> list[str]:
    """Add the convex suite's chosen runs of ``arms`` to the study's digests (in place), for
    the arms a digest does not hold.

    Only where the suite's linear-decay runs are the digest's: the per-seed gaps may differ only
    by one constant, the difference between the two float64 solutions for ``f*`` (about 1e-16;
    the objectives are the same), and the added gaps are shifted by it, so they are the suite's
    objectives minus the study's ``f*``. Returns the ``dataset/optimizer`` pairs where the
    linear-decay runs differ (nothing is added there)."""
    by_key = {
        (e["dataset"], e["optimizer"], e["method"]): e for e in convex_summary.get("entries", [])
    }
    mismatched = []
    for name, d in digests.items():
        for opt in OPTS:
            lin = d["arms"].get(f"{opt}|linear")
            suite_lin = by_key.get((name, opt, "linear"))
            if lin is None or suite_lin is None:
                continue
            diff = np.array(lin["gap"], dtype=np.float64) - np.array(
                suite_lin["gaps"], dtype=np.float64
            )
            shift = float(np.mean(diff)) if diff.size else math.nan
            if not (
                np.all(np.isfinite(diff))
                and np.max(np.abs(diff - shift)) <= 1e-15
                and abs(shift) <= 1e-12
            ):
                mismatched.append(f"{name}/{opt}")
                continue
            for a in arms:
                e = by_key.get((name, opt, a))
                if e is None or f"{opt}|{a}" in d["arms"]:
                    continue
                d["arms"][f"{opt}|{a}"] = {
                    "gap": [float(v) + shift for v in e["gaps"]],
                    "lr": e["lr"],
                    "source": "convex suite",
                }
    return mismatched


#: The deep suite's schedules that are not a refinement (linear decay is the reference).
DEEP_SUITE_BASELINES = ("cosine", "cosine-10", "wsd", "wsd-1sqrt", "step", "schedule-free")


def add_deep_suite_arms(
    digest: dict[str, Any], suite_dir: Path, arms: Sequence[str] = DEEP_SUITE_BASELINES
) -> bool:
    """Add the deep suite's runs of ``arms`` at their chosen LR (``suite_dir/runs.csv`` and the
    cached run files it names, full precision) to a deep-task digest of the study, for the arms
    it does not hold: per-seed values of the study's metric, the ratio to linear decay paired by
    seed, the chosen LR and the compute (runs). Only if the suite's linear-decay runs at the
    chosen LR are the study's (the same values); returns whether they were."""
    import csv

    path = suite_dir / "runs.csv"
    if not path.exists():
        return False
    metric = digest["metric"]
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))

    def values(name: str) -> dict[str, float]:
        out = {}
        for r in rows:
            if r["schedule"] == name and r["chosen"] == "1":
                doc = json.loads(
                    (suite_dir / r["record"].replace(".norms.csv", ".json")).read_text("utf-8")
                )
                out[str(r["seed"])] = float(doc["metrics"][metric])
        return out

    lin = values("linear")
    study_lin = {str(k): float(v) for k, v in digest["linear"]["values"].items()}
    if not lin or lin != study_lin:
        return False
    seeds = sorted(lin)
    for a in arms:
        if a in digest["arms"]:
            continue
        v = values(a)
        if sorted(v) != seeds:
            continue
        r = paired_log_ratio([v[k] for k in seeds], [lin[k] for k in seeds])
        digest["arms"][a] = {
            "values": v,
            "ratio": r.ratio,
            "low": r.low,
            "high": r.high,
            "outcome": r.outcome,
            "cost": float(sum(1 for x in rows if x["schedule"] == a)),
            "lr": float(next(x["lr"] for x in rows if x["schedule"] == a and x["chosen"] == "1")),
            "source": "deep suite",
        }
    return True


def _f(x: float | None, nd: int = 3) -> str:
    return fmt_number(x, f".{nd}g")


def _wtl(s: ArmSummary) -> str:
    """``ratio [CI] (wins/ties/losses)`` across datasets."""
    return f"{fmt_ratio_ci(s.overall)} ({s.wins}/{s.ties}/{s.losses})"


def _arm_order(names: Sequence[str]) -> list[str]:
    return [a for a in names if a != "linear"]


def _all_candidates() -> list[str]:
    return [a for a, arm in STUDY_ARMS.items() if arm.group in ("candidate", "cheap")] + list(
        VERIFIED_ARMS
    )


def _summaries(
    digests: Mapping[str, dict[str, Any]], arms: Sequence[str]
) -> dict[str, dict[str, ArmSummary]]:
    out: dict[str, dict[str, ArmSummary]] = {}
    for a in arms:
        for o in OPTS:
            s = summarize_arm(digests, o, a)
            if s is not None:
                out.setdefault(a, {})[o] = s
    return out


def _mean_cost(digests: Mapping[str, dict[str, Any]], opt: str, arm: str) -> float:
    c = [
        float(d["arms"][f"{opt}|{arm}"]["cost_total"])
        for d in digests.values()
        if f"{opt}|{arm}" in d["arms"]
    ]
    return float(np.mean(c)) if c else math.nan


def _mean_bound(digests: Mapping[str, dict[str, Any]], opt: str, arm: str) -> float:
    """Geometric mean over datasets of the arm's bound ratio to linear decay on the linear run's
    record (``diagnosis.bound_linrec``; ``nan`` where there is none, e.g. virtual arms)."""
    v = [
        float(d["arms"][f"{opt}|{arm}"]["diagnosis"]["bound_linrec"])
        for d in digests.values()
        if f"{opt}|{arm}" in d["arms"]
        and d["arms"][f"{opt}|{arm}"].get("diagnosis")
        and "verified" not in d["arms"][f"{opt}|{arm}"]
    ]
    v = [x for x in v if x > 0 and math.isfinite(x)]
    return float(np.exp(np.mean(np.log(v)))) if v else math.nan


def _candidates_table(
    digests: Mapping[str, dict[str, Any]], arms: Sequence[str], L: list[str]
) -> None:
    S = _summaries(digests, arms)
    rows = []
    for a in arms:
        if a not in S:
            continue
        cells = [a]
        for o in OPTS:
            s = S[a].get(o)
            if s is None:
                cells += ["–", "–", "–", "–"]
                continue
            wn, wr = s.worst
            cells += [
                fmt_ratio_ci(s.overall),
                f"{s.wins}/{s.ties}/{s.losses}",
                f"{wn} {_f(wr.ratio)}",
                _f(_mean_bound(digests, o, a)),
            ]
        cost = np.nanmean([_mean_cost(digests, o, a) for o in OPTS if o in S[a]])
        rows.append([*cells, _f(float(cost))])
    header = ["method"]
    for o in OPTS:
        header += [
            f"{OPTIMIZER_LABELS[o]} {c}" for c in ("ratio [95% CI]", "W/T/L", "worst", "bound")
        ]
    L += markdown_table([*header, "compute (runs)"], rows)


def _per_dataset_table(
    digests: Mapping[str, dict[str, Any]], opt: str, arms: Sequence[str], L: list[str]
) -> None:
    S: dict[str, ArmSummary] = {}
    for a in arms:
        summ = summarize_arm(digests, opt, a)
        if summ is not None:
            S[a] = summ
    rows = [[name, *(fmt_ratio_ci(s.ratios.get(name)) for s in S.values())] for name in digests]
    rows.append(["**geometric mean**", *(_wtl(s) for s in S.values())])
    L += markdown_table(["dataset", *S], rows)


def _mechanism_rows(digests: Mapping[str, dict[str, Any]], opt: str, arm: str) -> list[Any]:
    rows = []
    for name, d in digests.items():
        a = d["arms"].get(f"{opt}|{arm}")
        lin = d["arms"].get(f"{opt}|linear")
        if a is None or lin is None or a.get("diagnosis") is None:
            continue
        g = np.array([float(v) for v in a["gap"]])
        gl = np.array([float(v) for v in lin["gap"]])
        obs = float(np.exp(np.mean(np.log(np.maximum(g, 1e-12) / np.maximum(gl, 1e-12)))))
        rows.append((name, a["diagnosis"], obs))
    return rows


def _mechanism(digests: Mapping[str, dict[str, Any]], L: list[str]) -> None:
    for opt in OPTS:
        rows = _mechanism_rows(digests, opt, "refined-0.1")
        L.append(f"**{OPTIMIZER_LABELS[opt]}, the paper's refinement (tau 0.1)**, all 19 datasets:")
        L.append("")
        L += markdown_table(
            [
                "dataset",
                "peak",
                "warm-up",
                "peak LR / linear's",
                "LR at 50% / 75% / 90% (× linear's)",
                "late-quarter LR mass (× linear's)",
                "late/median norm",
                "bound, linear record",
                "bound, own record",
                "observed gap ratio",
            ],
            [
                [
                    name,
                    f"{dg['peak']:.2f}",
                    f"{dg['warmup']:.2f}",
                    _f(dg["lr_ratio_peak"]),
                    " / ".join(_f(x) for x in dg["lr_at"][1:4]),
                    _f(dg["late_mass"]),
                    f"{dg['late_median']:.4f}",
                    f"{dg['bound_linrec']:.3f}",
                    _f(dg["bound_own"], 4),
                    _f(obs),
                ]
                for name, dg, obs in sorted(rows, key=lambda r: r[2])
            ],
        )
        obs = np.log([r[2] for r in rows])
        preds = {
            "late/median norm": [r[1]["late_median"] for r in rows],
            "late-quarter LR mass": [r[1]["late_mass"] for r in rows],
            "LR at 90% (× linear's)": [r[1]["lr_at"][3] for r in rows],
            "peak position": [r[1]["peak"] for r in rows],
            "bound on the linear record": [r[1]["bound_linrec"] for r in rows],
            "bound on the own record": [r[1]["bound_own"] for r in rows],
        }
        L.append("")
        L.append(
            "Spearman rank correlation with the observed log gap ratio: "
            + "; ".join(f"{k} {rank_correlation(v, obs):+.2f}" for k, v in preds.items())
            + "."
        )
        L.append("")


def _verified_table(digests: Mapping[str, dict[str, Any]], L: list[str]) -> None:
    def cell(d: Mapping[str, Any], opt: str, arm: str) -> str:
        v = d["arms"].get(f"{opt}|{arm}", {}).get("verified")
        if v is None:
            return "–"
        return f"{v['bound_ratio']:.3f} ({'kept' if v['kept'] else 'linear'})"

    L += markdown_table(
        [
            "dataset",
            "optimizer",
            "split",
            "refined-verified: ratio (kept?)",
            "refined-verified-1run",
            "pilot-verified-0.1",
        ],
        [
            [
                name,
                OPTIMIZER_LABELS[opt],
                d.get("split", ""),
                *(cell(d, opt, a) for a in VERIFIED_ARMS),
            ]
            for name, d in digests.items()
            for opt in OPTS
        ],
    )


def _cost_table(digests: Mapping[str, dict[str, Any]], arms: Sequence[str], L: list[str]) -> None:
    S = _summaries(digests, arms)
    rows = []
    for a in arms:
        if a not in S:
            continue
        cells = [a, *(_f(_mean_cost(digests, o, a)) for o in OPTS)]
        cells += ["–" if (s := S[a].get(o)) is None else _wtl(s) for o in OPTS]
        rows.append(cells)
    L += markdown_table(
        [
            "method",
            "compute, Adam",
            "compute, SGD",
            "Adam ratio [CI] (W/T/L)",
            "SGD ratio [CI] (W/T/L)",
        ],
        rows,
    )


# ----------------------------------------------------------------------------------------------
# deep


def _deep_section(deep: Mapping[str, dict[str, Any]], L: list[str]) -> None:
    if not deep:
        L.append("*The deep part has not been run yet.*")
        return
    for task, d in deep.items():
        split = "development" if task == DEV_DEEP_TASK else "held-out"
        L.append(
            f"### {task} ({split}; metric: {d['metric']}, lower is better; {d['steps']} steps)"
        )
        L.append("")
        lin = d["linear"]["values"]
        rows = [
            [
                "linear",
                ", ".join(f"{v:.4f}" for v in lin.values()),
                "1",
                _f(d["arms"]["linear"].get("lr")),
                _f(d["arms"]["linear"]["cost"]),
            ]
        ]
        for name, a in d["arms"].items():
            if name == "linear" or "values" not in a:
                continue
            vals = ", ".join(f"{v:.4f}" for v in a["values"].values())
            r = a.get("ratio")
            ci = "–" if r is None else f"{_f(r, 4)} [{_f(a['low'], 4)}, {_f(a['high'], 4)}]"
            mark = {"loss": " ▲", "win": " ▼"}.get(a.get("outcome") or "", "")
            ver = a.get("verified")
            note = (
                ""
                if ver is None
                else f" (bound ratio {ver['bound_ratio']:.3f}: "
                f"{'kept' if ver['kept'] else 'linear decay'})"
            )
            rows.append([f"{name}{note}", vals, f"{ci}{mark}", _f(a.get("lr")), _f(a["cost"])])
        L += markdown_table(
            [
                "schedule",
                "per-seed values",
                "ratio to linear [95% CI]",
                "peak LR",
                "compute (runs)",
            ],
            rows,
        )
        pl = d["arms"].get("pilot-linear-0.1", {}).get("cost")
        L.append("")
        base = {"linear": 0.0}
        base.update(
            {
                a: math.log(d["arms"][a]["ratio"])
                for a in DEEP_SUITE_BASELINES
                if a in d["arms"] and d["arms"][a].get("ratio")
            }
        )
        best = min(base, key=lambda a: base[a])
        bv = lin if best == "linear" else d["arms"][best]["values"]
        parts = []
        for a in ("refined", "refined-verified"):
            av = d["arms"].get(a, {}).get("values")
            if av is None or sorted(av) != sorted(bv):
                continue
            r = paired_log_ratio([av[k] for k in sorted(av)], [bv[k] for k in sorted(av)])
            parts.append(f"{a} / {best} = {fmt_ratio_ci(r)}")
        L.append(
            f"Best baseline (the schedule that is not a refinement with the smallest ratio, "
            f"linear decay included): **{best}**"
            + (f"; paired by seed: {'; '.join(parts)}." if parts else ".")
        )
        L.append("")
        L.append(
            f"Compute counts full-horizon runs (every LR and seed; the pilot's runs as "
            f"fractions: {_f(pl)} for its whole sweep). Wall time of the study's own runs: "
            f"{d.get('train_seconds', 0) / 60:.1f} min ({d.get('trained_runs', 0)} runs)."
        )
        L.append("")


# ----------------------------------------------------------------------------------------------
# summary.csv


def _summary_rows(
    dev: Mapping[str, dict[str, Any]],
    held: Mapping[str, dict[str, Any]],
    deep: Mapping[str, dict[str, Any]],
) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for split, digests, arms in (
        ("dev", dev, ["linear", "cosine", "refined-0.1", "refined-0.5", *_all_candidates()]),
        ("heldout", held, list(HELDOUT_SHOWN)),
    ):
        for a in arms:
            for o in OPTS:
                s = summarize_arm(digests, o, a)
                if s is None:
                    continue
                for name, r in s.ratios.items():
                    rows.append([a, o, split, name, r.ratio, r.low, r.high])
                g = s.overall
                rows.append([a, o, split, "geometric-mean", g.ratio, g.low, g.high])
    for task, d in deep.items():
        split = "dev" if task == DEV_DEEP_TASK else "heldout"
        opt = "sgd" if task == "image" else "adamw"
        for name, a in d["arms"].items():
            if a.get("ratio") is None and name != "linear":
                continue
            if name == "linear":
                rows.append(["linear", opt, split, task, 1.0, 1.0, 1.0])
                continue
            rows.append([name, opt, split, task, a["ratio"], a["low"], a["high"]])
    return rows


def _write_csv(path: Path, rows: Sequence[Sequence[Any]]) -> None:
    write_csv(
        path,
        ["method", "optimizer", "split", "dataset", "ratio_vs_linear", "ci_low", "ci_high"],
        ([*r[:4], *(f"{float(x):.6g}" for x in r[4:])] for r in rows),
    )


# ----------------------------------------------------------------------------------------------
# figures


def _plots(
    out: Path,
    dev: Mapping[str, dict[str, Any]],
    held: Mapping[str, dict[str, Any]],
    deep: Mapping[str, dict[str, Any]],
) -> list[tuple[str, str]]:
    figs: list[tuple[str, str]] = []
    # 1. development candidates: geometric mean with CI
    arms = ["refined-0.1", "refined-0.5", "cosine", *_all_candidates()]
    S = _summaries(dev, arms)
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
    figs.append(("dev_candidates.png", "every candidate on the development split (red: ≥1 loss)"))

    # 2. held-out per-dataset ratios
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
    figs.append(("heldout.png", "held-out datasets: paper vs verified (per dataset, 95% CI)"))

    # 3. bound vs observed for the paper's refinement
    both = {**dev, **held}
    fig, axes = subplots(1, 2, figsize=(12, 5))
    for ax, o in zip(axes, OPTS, strict=True):
        rows = _mechanism_rows(both, o, "refined-0.1")
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
    figs.append(
        ("bound_vs_observed.png", "bound (on the linear record / on its own record) vs observed")
    )

    # 4. absolute LR over time: linear vs refined where refinement lost / won (SGD)
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
    figs.append(("lr_over_time.png", "absolute LR over time, SGD: linear, refined, verified"))

    # 5. cheap refinement: ratio vs compute (development)
    fig, axes = subplots(1, 2, figsize=(12, 5))
    for ax, o in zip(axes, OPTS, strict=True):
        for a in CHEAP_SHOWN:
            s = summarize_arm(dev, o, a)
            if s is None:
                continue
            c = _mean_cost(dev, o, a) / _mean_cost(dev, o, "linear")
            ax.scatter(c, s.overall.ratio)
            ax.annotate(a, (c, s.overall.ratio), fontsize=7)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("compute / linear decay's LR sweep")
        ax.set_ylabel("geometric-mean gap ratio to linear decay")
        ax.set_title(f"{OPTIMIZER_LABELS[o]}: cheap refinement (development)")
    fig.savefig(out / "cheap_cost.png", dpi=110)
    figs.append(("cheap_cost.png", "cheap variants: ratio vs compute (development split)"))

    # 6. deep schedules
    if deep:
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
        figs.append(("deep_schedules.png", "deep tasks: schedules at their tuned LR"))
    return figs


# ----------------------------------------------------------------------------------------------
# the report


def write_report(
    out: Path, *, plots: bool = True, convex: Path | None = None, deep: Path | None = None
) -> Path:
    """Write ``out/report.md``, ``out/summary.csv`` and the figures; returns the report path.

    ``convex``: the convex suite's output folder (its ``summary.json`` supplies the baselines
    the study did not run itself; section 7); ``deep``: the deep suite's output folder (its
    ``<task>/runs.csv`` does the same for the deep tasks, section 6)."""
    with warnings.catch_warnings():
        # diverged runs leave non-finite values in the digests (logs of them warn) and some
        # figures have nothing to draw on a log axis; neither warning says anything new
        warnings.simplefilter("ignore")
        return _write_report(out, plots, convex, deep)


def _alternatives_section(
    splits: Sequence[tuple[str, Mapping[str, dict[str, Any]]]],
    mismatched: Sequence[str],
    L: list[str],
) -> None:
    """Section 7: every baseline against linear decay, the best baseline marked (★), and
    ``refined-verified`` (and the paper's refinement) against the best baseline, per split."""
    L.append(
        "Geometric mean over datasets of the final-gap ratio to linear decay [95% CI] and "
        "per-dataset wins/ties/losses (paired by seed, as everywhere in this report). The "
        "baselines other than linear decay and cosine come from the convex suite's runs "
        "(`research/results/convex/summary.json`; the study's linear decay is the same runs). "
        "★: the best baseline of the column (the smallest geometric mean among the schedules "
        "that are not a refinement, linear decay included). The last rows compare each "
        "refinement with that best baseline directly: per dataset the ratio of its gap to the "
        "best baseline's, paired by seed."
    )
    if mismatched:
        L.append(
            "Not added (the convex suite's linear-decay runs differ from the study's): "
            + ", ".join(mismatched)
            + "."
        )
    L.append("")
    refined = ("refined-0.1", "refined-verified")
    header = ["schedule"]
    cols: list[tuple[str, str, Mapping[str, dict[str, Any]]]] = []
    for split, digests in splits:
        for o in OPTS:
            header.append(f"{OPTIMIZER_LABELS[o]}, {split}")
            cols.append((split, o, digests))
    summaries: dict[tuple[str, str], dict[str, ArmSummary]] = {}
    best: dict[tuple[str, str], str] = {}
    for split, o, digests in cols:
        S = {a: summarize_arm(digests, o, a) for a in (*SUITE_BASELINES, *refined)}
        summaries[(split, o)] = {a: s for a, s in S.items() if s is not None}
        scores = {"linear": 0.0}
        scores.update(
            {a: s.overall.log_mean for a, s in summaries[(split, o)].items() if a not in refined}
        )
        best[(split, o)] = min(scores, key=lambda a: scores[a])
    rows = [
        [
            "linear (reference)",
            *("1" + (" ★" if best[(c[0], c[1])] == "linear" else "") for c in cols),
        ]
    ]
    for a in (*SUITE_BASELINES, *refined):
        row = [a]
        for split, o, _ in cols:
            sm = summaries[(split, o)].get(a)
            star = " ★" if best[(split, o)] == a else ""
            row.append("–" if sm is None else _wtl(sm) + star)
        rows.append(row)
    for a in refined:
        row = [f"{a} vs best baseline"]
        for split, o, digests in cols:
            b = best[(split, o)]
            rs = []
            for d in digests.values():
                g = d["arms"].get(f"{o}|{a}")
                gb = d["arms"].get(f"{o}|{b}")
                if g is None or gb is None or g.get("gap") is None or gb.get("gap") is None:
                    continue
                rs.append(paired_log_ratio(g["gap"], gb["gap"]))
            if not rs:
                row.append("–")
                continue
            w, t, lo = win_tie_loss(rs)
            row.append(f"{fmt_ratio_ci(geometric_mean_ratio(rs))} ({w}/{t}/{lo}) vs {b}")
        rows.append(row)
    L += markdown_table(header, rows)
    L.append("")


def _write_report(
    out: Path, plots: bool, convex: Path | None = None, deep_suite: Path | None = None
) -> Path:
    dev = load_digests(out / "convex", DEV_DATASETS)
    held = load_digests(out / "convex", HELDOUT_DATASETS)
    add_verified_arms(dev)
    add_verified_arms(held)
    mismatched: list[str] = []
    suite_summary = None if convex is None else convex / "summary.json"
    if suite_summary is not None and suite_summary.exists():
        doc = json.loads(suite_summary.read_text(encoding="utf-8"))
        mismatched = add_suite_arms(dev, doc) + add_suite_arms(held, doc)
    deep: dict[str, dict[str, Any]] = {}
    for task in (DEV_DEEP_TASK, HELDOUT_DEEP_TASK):
        p = out / "deep" / f"{task}.json"
        if p.exists():
            deep[task] = json.loads(p.read_text(encoding="utf-8"))
            if deep_suite is not None:
                add_deep_suite_arms(deep[task], deep_suite / task)
    _write_csv(out / "summary.csv", _summary_rows(dev, held, deep))
    figs = _plots(out, dev, held, deep) if plots else []

    L: list[str] = []
    L.append("# Refinement study (issue 7): refinement that never loses to linear decay")
    L.append("")
    L.append(
        f"- Report written {time.strftime('%Y-%m-%d %H:%M')} by `refinedlr bench study report`."
    )
    L.append("- Reproduce (each command resumes from its cache):")
    L.append("")
    L.append("```")
    L.append("refinedlr bench convex                     # the convex suite (its cache is reused)")
    L.append("refinedlr bench deep --task image          # the deep suite (its runs are reused)")
    L.append("refinedlr bench deep --task lm")
    L.append("refinedlr bench study convex --split dev   # every candidate, development datasets")
    L.append("refinedlr bench study convex --split heldout   # the chosen methods, once")
    L.append("refinedlr bench study deep --task image    # development deep task")
    L.append("refinedlr bench study deep --task lm       # held-out deep task")
    L.append("refinedlr bench study report")
    L.append("```")
    L.append("")
    runs = read_runlog(out)
    if runs:
        L.append("Invocations logged (`runlog.jsonl`; a rerun reuses cached results):")
        L.append("")
        L += markdown_table(
            ["date", "command", "wall time"],
            [[e["date"], f"`{e['command']}`", f"{e['seconds'] / 60:.1f} min"] for e in runs],
        )
        L.append("")
    L.append("## Split and protocol")
    L.append("")
    L.append(
        f"Fixed before any study run (`refinedlr_bench.study_design.make_split`, seed {SPLIT_SEED}; "
        "see `split.md`): development datasets "
        + ", ".join(DEV_DATASETS)
        + "; held out "
        + ", ".join(HELDOUT_DATASETS)
        + f". Development deep task: {DEV_DEEP_TASK}; held out: {HELDOUT_DEEP_TASK}."
    )
    L.append("")
    L.append(
        "Every schedule, candidate or not, is tuned exactly like the convex suite: the same wide "
        "LR grid (factor 2, extended at edges, refined to √2 around the best), chosen by the mean "
        "final objective over the suite's 5 data-order seeds, so every schedule has the same "
        "LR-tuning budget. Ratios are final gaps f(x_T) − f* over linear decay's, paired by seed "
        "(95% t interval on the log ratios); across datasets the geometric mean with a t "
        "interval over datasets. Loss / win: the whole interval above / below 1 (▲ / ▼). "
        "Deep tasks: the deep suite's protocol (grid `base_lr·2^j`, 2 grid seeds, 1 extra seed; "
        "ratios of the final loss paired over the 3 seeds). Compute is counted in full-horizon "
        "training runs: per seed for the convex suite (one run per LR grid point and seed), "
        "all seeds for the deep tasks; a pilot run of 10% of the horizon counts 0.1."
    )
    L.append("")
    disc = out / "discussion.md"
    if disc.exists():
        L.append("## Summary")
        L.append("")
        L.append(
            "The hand-written reading of the tables below (what held up, why refinement loses, "
            "what did not fix it, what works, caveats) is in [discussion.md](discussion.md)."
        )
        L.append("")
    L.append("## 1. The fragility, verified")
    L.append("")
    L.append("The paper's refinement against linear decay on each split (convex):")
    L.append("")
    _candidates_table({**dev, **held}, ["refined-0.1", "refined-0.5", "cosine"], L)
    L.append("")
    L.append("(All 19 datasets; per split below.)")
    L.append("")
    L.append("## 2. Why refined schedules lose: LR mass, warm-up, bounds")
    L.append("")
    L.append(
        "For each dataset, the refined schedule at its tuned peak LR against linear decay at its "
        "own: where it peaks and how long its warm-up is (fractions of training), its absolute "
        "LR relative to linear decay's, the LR mass of the last quarter, the late/median norm of "
        "the linear run, the last-iterate bound (best scale) relative to linear decay on the "
        "linear run's record (what refinement optimises) and on each schedule's own run's record "
        "(the refined run rerun with recording; l2 gradient norms for SGD, l1 for Adam), and the "
        "observed gap ratio. The Adam peak-LR ratios of 128 (letter) and 0.06 (satimage) are "
        "real: the gap has two basins in the LR there (see the convex suite's report)."
    )
    L.append("")
    _mechanism({**dev, **held}, L)
    L.append("## 3. Every candidate on the development split")
    L.append("")
    L.append(
        "Geometric mean over the 9 development datasets of the gap ratio to linear decay [95% CI], "
        "wins/ties/losses, the worst dataset, the geometric mean of the last-iterate bound ratio "
        "to linear decay on the linear run's record (*bound*: what the theory predicts; below 1 = "
        "better; for Adam an SGD bound fed l1 norms), and the mean compute (full-horizon runs "
        "per seed, including the linear or pilot sweep the method needs; linear decay alone is "
        "about 16)."
    )
    L.append("")
    desc = {a: arm.description for a, arm in STUDY_ARMS.items()}
    _candidates_table(dev, ["cosine", "refined-0.1", "refined-0.5", *_all_candidates()], L)
    L.append("")
    L.append("Candidates:")
    L.append("")
    for a in _all_candidates():
        if a in desc:
            L.append(f"- **{a}**: {desc[a]}")
    L.append(
        "- **refined-verified**: refine (tau 0.1), tune, then keep the refined schedule only if "
        "its last-iterate bound on its own run's record is below "
        f"{VERIFY_THRESHOLD} × linear decay's on its record (SGD: l2 gradient norms; Adam: l2 norm "
        "of the update direction m̂/(√v̂+ε)); else linear decay."
    )
    L.append(
        "- **refined-verified-1run**: the same check from one run of the refined schedule at "
        "linear decay's tuned LR; the refined LR sweep is paid only when it is kept."
    )
    L.append(
        "- **pilot-verified-0.1**: refine from a 10%-horizon pilot sweep; one full run each of "
        "that schedule and of linear decay at the pilot's LR decide; then one full LR sweep of "
        "the kept schedule."
    )
    L.append("")
    cands = [
        a for a in _all_candidates() if a not in ("refined-adam-update", "refined-adam-precond")
    ]
    S = {a: list(_summaries(dev, [a]).get(a, {}).values()) for a in cands}
    winner, ranking = select_method(S, cands)
    L.append(
        f"Selection rule (fixed before the development results; `select_method`): fewest losses "
        f"over Adam+SGD, then the mean log geometric-mean ratio. Winner: **{winner}** "
        f"(shipped as `{CHOSEN_METHOD}`); cheap (pilot/prefix) winner: **{CHOSEN_CHEAP}**. "
        "Top of the ranking (arm, losses, mean log ratio): "
        + "; ".join(f"{a} {n} {m:+.3f}" for a, n, m in ranking[:6])
        + ". Full ranking: `selection.md`."
    )
    L.append("")
    for opt in OPTS:
        L.append(f"### Development, {OPTIMIZER_LABELS[opt]}, per dataset (selected arms)")
        L.append("")
        _per_dataset_table(
            dev,
            opt,
            [
                "refined-0.1",
                "refined-floor-med",
                "prefix-0.1",
                "refined-envelope",
                "pilot-0.1",
                "refined-verified",
                "pilot-verified-0.1",
            ],
            L,
        )
        L.append("")
    L.append("## 4. Held-out results (evaluated once)")
    L.append("")
    for opt in OPTS:
        L.append(f"### Held out, {OPTIMIZER_LABELS[opt]}")
        L.append("")
        _per_dataset_table(held, opt, list(HELDOUT_SHOWN), L)
        L.append("")
    L.append(
        "Verification decisions (bound ratio of the refined schedule on its own record over "
        f"linear decay's; kept below {VERIFY_THRESHOLD}):"
    )
    L.append("")
    _verified_table({**dev, **held}, L)
    L.append("")
    L.append("## 5. Cheap refinement: results and compute")
    L.append("")
    L.append(
        "Mean compute per dataset in full-horizon runs per seed (linear decay's own LR sweep is "
        "the unit of comparison: about 16 runs), development split:"
    )
    L.append("")
    _cost_table(dev, ["linear", *CHEAP_SHOWN], L)
    L.append("")
    L.append("Held-out split:")
    L.append("")
    _cost_table(held, ["linear", "refined-0.1", "pilot-0.1", *VERIFIED_ARMS], L)
    L.append("")
    L.append("## 6. Deep tasks")
    L.append("")
    _deep_section(deep, L)
    L.append("")
    L.append("## 7. Refinement against the alternatives users would pick (issue 14)")
    L.append("")
    _alternatives_section(
        [("development", dev), ("held out", held), ("all 19", {**dev, **held})], mismatched, L
    )
    L.append(
        "The deep tasks' comparison with their best baseline is in the deep suite's reports "
        '(`research/results/deep/<task>/report.md`, section "Against the best baseline").'
    )
    L.append("")
    L += figure_list(figs)
    L.append(
        "Files: `summary.csv` (method, optimizer, split, dataset, ratio_vs_linear, ci_low, "
        "ci_high; one row per dataset plus a `geometric-mean` row per method, optimizer and "
        "split; deep rows use optimizer `sgd` (image) / `adamw` (lm)), `convex/<dataset>.json` "
        "(per arm: tuned LR, per-seed gaps, compute, schedule, diagnosis), `deep/<task>.json`, "
        "`selection.md`, `split.md`, `cache/` (not in version control)."
    )
    path = out / "report.md"
    with atomic_write(path) as fh:
        fh.write("\n".join(L) + "\n")
    return path
