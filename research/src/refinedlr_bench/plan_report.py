"""The planning evidence's tables, statistics, report and figures (``refinedlr bench plan``).

Everything is read back from the CSV tables the parts write (``transfer.csv``, ``extension.csv``,
``prediction.csv``, ``deep_*.csv``, ``heldout_*.csv``), so the report can be remade without
training. Statistics (datasets are the sampling unit):

* regret: a target's mean final gap over seeds at the predicted LR over its mean gap at its own
  tuned LR; its geometric mean over datasets has a 95% t interval on the log scale
  (:func:`~refinedlr_bench.stats.geometric_mean_ratio`); its median a 95% distribution-free
  interval (order statistics, :func:`scipy.stats.quantile_test`);
* LR error: ``|log2(predicted / tuned)|``; "within sqrt 2" is an error of at most 0.5, with a
  95% Wilson interval on the fraction;
* rank correlation: Spearman's rho per dataset, a t interval over datasets.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from refinedlr.fileio import atomic_write
from scipy import stats as sstats

from refinedlr_bench.figures import new_figure
from refinedlr_bench.plan_convex import CROSS_TARGETS, FIT_FROM, HORIZON_SCHEDULES, HORIZONS
from refinedlr_bench.plan_tables import read_rows
from refinedlr_bench.runlog import read_runlog
from refinedlr_bench.stats import geometric_mean_ratio, rank_correlation, t_interval
from refinedlr_bench.tables import (
    OPTIMIZER_LABELS,
    figure_list,
    fmt_number,
    markdown_table,
)

__all__ = ["median_ci", "reach_stats", "regret_stats", "wilson", "write_report"]

OPTS = ("adam", "sgd")
#: The issue's targets (schedule, horizon factor): cosine and WSD 1-sqrt at T, linear decay at 4T.
ISSUE_TARGETS = (("cosine", 1.0), ("wsd-1sqrt", 1.0), ("linear", 4.0))
METHOD_LABELS = {
    "constant": "constant norms",
    "recorded": "recorded norms",
    "recorded-fraction": "recorded, carried by fraction",
    "recorded-step": "recorded, carried step for step",
    "reuse": "reuse the source's LR",
}
ARM_LABELS = {
    "extend": "extend (default: family best, constant norms)",
    "extend-rescale": "extend, family rescale",
    "extend-cooldown": "extend, family cooldown",
    "extend-recorded": "extend, recorded norms",
    "same-lr": "same LR, cooldown moved to the end",
    "rewarm-cosine": "re-warm-up, then cosine",
}


# ----------------------------------------------------------------------------------------------
# CSV


def _f(row: Mapping[str, str], key: str) -> float:
    v = row.get(key, "")
    return float(v) if v not in ("", None) else math.nan


# ----------------------------------------------------------------------------------------------
# statistics


def median_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """``(median, low, high)``: the 95% distribution-free interval of the median (order
    statistics; the whole range when there are too few values).

    >>> median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    (5.0, 2.0, 8.0)
    """
    x = np.sort(np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64))
    if x.size == 0:
        return math.nan, math.nan, math.nan
    med = float(np.median(x))
    if x.size < 6:
        return med, float(x[0]), float(x[-1])
    ci = sstats.quantile_test(x, q=med, p=0.5).confidence_interval(0.95)
    lo = float(ci.low) if math.isfinite(ci.low) else float(x[0])
    hi = float(ci.high) if math.isfinite(ci.high) else float(x[-1])
    return med, lo, hi


def wilson(k: int, n: int) -> tuple[float, float, float]:
    """``(fraction, low, high)``: the 95% Wilson interval of ``k`` successes in ``n``.

    >>> [round(v, 3) for v in wilson(8, 10)]
    [0.8, 0.49, 0.943]
    """
    if n == 0:
        return math.nan, math.nan, math.nan
    ci = sstats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def regret_stats(rows: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """Median, geometric mean and maximum of the ``regret`` column, the fraction within target,
    and the LR errors, with their intervals."""
    regret = [_f(r, "regret") for r in rows]
    err = [abs(_f(r, "log2_error")) for r in rows]
    n = len(regret)
    if n == 0:
        return {"n": 0}
    finite = [v for v in regret if math.isfinite(v) and v > 0]
    g = geometric_mean_ratio(regret) if len(finite) == n else None
    within = sum(e <= 0.5 + 1e-9 for e in err)
    return {
        "n": n,
        "median": median_ci(regret),
        "geomean": None if g is None else (g.ratio, g.low, g.high),
        "max": max(regret),
        "le_105": sum(v <= 1.05 for v in regret) / n,
        "lr_error_median": median_ci(err),
        "within_sqrt2": wilson(within, n),
        "diverged": n - len(finite),
    }


def _paired_log_diff(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Geometric mean of ``a / b`` (paired) with its t interval."""
    logs = [math.log(x) - math.log(y) for x, y in zip(a, b, strict=True)]
    m, lo, hi = t_interval(logs)
    return math.exp(m), math.exp(lo), math.exp(hi)


def _fmt3(t: tuple[float, float, float] | None, spec: str = ".3g") -> str:
    if t is None:
        return "∞ (a run diverged)"
    return f"{fmt_number(t[0], spec)} [{fmt_number(t[1], spec)}, {fmt_number(t[2], spec)}]"


def _fmt_frac(t: tuple[float, float, float]) -> str:
    return f"{t[0]:.0%} [{t[1]:.0%}, {t[2]:.0%}]"


def _where(rows: Iterable[Mapping[str, str]], **eq: Any) -> list[dict[str, str]]:
    return [dict(r) for r in rows if all(r.get(k) == str(v) for k, v in eq.items())]


def _regret_line(label: str, s: Mapping[str, Any]) -> list[str]:
    if not s.get("n"):
        return [label, "–", "–", "–", "–", "–", "–"]
    return [
        label,
        _fmt3(s["lr_error_median"], ".2f"),
        _fmt_frac(s["within_sqrt2"]),
        _fmt3(s["median"]),
        _fmt3(s["geomean"]),
        fmt_number(s["max"]),
        f"{s['le_105']:.0%}",
    ]


REGRET_HEADER = [
    "",
    "median abs log2 LR error [95% CI]",
    "within sqrt 2 [95% CI]",
    "median regret [95% CI]",
    "geo-mean regret [95% CI]",
    "max regret",
    "regret <= 1.05",
]


# ----------------------------------------------------------------------------------------------
# sections


def _schedule_section(rows: list[dict[str, str]], summary: dict[str, Any]) -> list[str]:
    rows = _where(rows, part="schedule")
    if not rows:
        return []
    n_data = len({r["dataset"] for r in rows})
    lines = [
        "## 1. Cross-schedule transfer (convex suite)",
        "",
        f"Source: linear decay at its tuned LR on each of {n_data} datasets. Each target is "
        "trained at the predicted LR itself (5 seeds) and compared with its own tuned LR (the "
        "suite's search, committed results). Regret = mean final gap at the predicted LR / mean "
        "gap at the tuned LR. At the source's own horizon the recorded norms need no carrying, "
        'so `carry="fraction"` and `carry="step"` give the same LR (one row, \'recorded norms\').',
        "",
    ]
    for opt in OPTS:
        table = []
        for method in ("constant", "recorded", "reuse"):
            sel = _where(rows, optimizer=opt, method=method)
            s = regret_stats(sel)
            summary.setdefault("schedule", {}).setdefault(opt, {})[method] = s
            table.append(_regret_line(f"**all targets**, {METHOD_LABELS[method]}", s))
        for t in CROSS_TARGETS:
            for method in ("constant", "recorded", "reuse"):
                sel = _where(rows, optimizer=opt, method=method, target=t)
                s = regret_stats(sel)
                summary["schedule"][opt][f"{t}|{method}"] = s
                table.append(_regret_line(f"{t}, {METHOD_LABELS[method]}", s))
        lines += [f"### {OPTIMIZER_LABELS[opt]}", "", *markdown_table(REGRET_HEADER, table), ""]
    return lines


def _horizon_section(rows: list[dict[str, str]], summary: dict[str, Any]) -> list[str]:
    rows = _where(rows, part="horizon")
    if not rows:
        return []
    methods = [m for m in ("constant", "recorded-fraction", "recorded-step", "reuse")]
    lines = [
        "## 2. Horizon transfer (convex suite)",
        "",
        "Source: the same schedule tuned at the suite's horizon T; target: that schedule at "
        "h·T, trained at the predicted LR and tuned at h·T by the same search (first grid, "
        "extensions, sqrt 2 refinement). Constant norms give LR ∝ 1/sqrt(h) for linear decay.",
        "",
    ]
    for opt in OPTS:
        table = []
        for m in methods:
            s = regret_stats(_where(rows, optimizer=opt, method=m))
            summary.setdefault("horizon", {}).setdefault(opt, {})[m] = s
            table.append(_regret_line(f"**all**, {METHOD_LABELS[m]}", s))
        for sched in HORIZON_SCHEDULES:
            for h in HORIZONS:
                for m in methods:
                    sel = [
                        r
                        for r in _where(rows, optimizer=opt, method=m, target=sched)
                        if float(r["horizon"]) == h
                    ]
                    s = regret_stats(sel)
                    summary["horizon"][opt][f"{sched}|{h:g}|{m}"] = s
                    table.append(_regret_line(f"{sched} {h:g}x, {METHOD_LABELS[m]}", s))
        lines += [f"### {OPTIMIZER_LABELS[opt]}", "", *markdown_table(REGRET_HEADER, table), ""]
    return lines


def _extension_stats(rows: list[dict[str, str]], arm: str) -> dict[str, Any]:
    sel = _where(rows, arm=arm)
    same = {(r["dataset"], r["optimizer"]): _f(r, "gap") for r in _where(rows, arm="same-lr")}
    if not sel:
        return {"n": 0}
    gaps = [_f(r, "gap") for r in sel]
    fresh = [_f(r, "fresh_gap") for r in sel]
    out: dict[str, Any] = {
        "n": len(sel),
        "to_fresh": _paired_log_diff(gaps, fresh),
        "to_fresh_median": median_ci([g / f for g, f in zip(gaps, fresh, strict=True)]),
        "wins_vs_fresh": sum(g <= f for g, f in zip(gaps, fresh, strict=True)),
        "new_steps": float(np.median([_f(r, "new_steps") / (_f(r, "steps") / 2) for r in sel])),
        "fresh_steps": float(np.median([_f(r, "fresh_steps") / (_f(r, "steps") / 2) for r in sel])),
    }
    keys = [(r["dataset"], r["optimizer"]) for r in sel]
    if all(k in same for k in keys):
        ref = [same[k] for k in keys]
        out["to_same_lr"] = _paired_log_diff(gaps, ref)
        out["wins_vs_same_lr"] = sum(g < s for g, s in zip(gaps, ref, strict=True))
    return out


def _extension_table(
    rows: list[dict[str, str]], arms: Sequence[str], key: str, summary: dict[str, Any]
) -> list[str]:
    table = []
    for opt in (*OPTS, "both"):
        sel = rows if opt == "both" else _where(rows, optimizer=opt)
        for arm in arms:
            s = _extension_stats(sel, arm)
            summary.setdefault(key, {}).setdefault(opt, {})[arm] = s
            if not s["n"]:
                continue
            table.append(
                [
                    f"{OPTIMIZER_LABELS.get(opt, 'both')}: {ARM_LABELS.get(arm, arm)}",
                    _fmt3(s["to_fresh"]),
                    _fmt3(s["to_fresh_median"]),
                    f"{s['wins_vs_fresh']}/{s['n']}",
                    _fmt3(s.get("to_same_lr")) if "to_same_lr" in s else "–",
                    f"{s.get('wins_vs_same_lr', '–')}/{s['n']}" if arm != "same-lr" else "–",
                    f"{s['new_steps']:.2f} T0",
                ]
            )
    header = [
        "arm",
        "geo-mean gap / fresh tuned 2T0 [95% CI]",
        "median [95% CI]",
        "no worse than fresh",
        "geo-mean gap / same LR [95% CI]",
        "better than same LR",
        "new steps",
    ]
    return markdown_table(header, table)


def _extension_section(rows: list[dict[str, str]], summary: dict[str, Any]) -> list[str]:
    if not rows:
        return []
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    fresh_steps = float(np.median([_f(r, "fresh_steps") / (_f(r, "steps") / 2) for r in rows]))
    fams = _where(rows, arm="extend")
    chosen = ", ".join(
        f"{k}: {v}"
        for k, v in sorted(
            {
                f"{r['family']}/{r['shape']}": sum(
                    1 for x in fams if (x["family"], x["shape"]) == (r["family"], r["shape"])
                )
                for r in fams
            }.items()
        )
    )
    return [
        "## 3. Continued training (convex suite)",
        "",
        "WSD with a 20% 1-sqrt cooldown, tuned at T0 (the suite's horizon), checkpointed at "
        "0.8·T0 (before its cooldown) and continued to 2·T0 at the same peak LR. The oracle is "
        "a fresh WSD 1-sqrt run tuned at 2·T0 by the suite's search "
        f"(median {fresh_steps:.0f} T0 of steps per seed with its sweep, against 1.2 T0 new "
        "steps for a continuation). Ratios are of mean final gaps over 5 seeds, geometric means "
        "over datasets x optimizers.",
        "",
        f"`extend`'s default chose (family/cooldown shape: datasets x optimizers): {chosen}.",
        "",
        *_extension_table(rows, arms, "extension", summary),
        "",
    ]


def _prediction_section(
    rows: list[dict[str, str]], deep: list[dict[str, str]], summary: dict[str, Any]
) -> list[str]:
    if not rows and not deep:
        return []
    lines = [
        "## 4. Loss prediction",
        "",
        "`predict` from each linear-decay run (at its tuned LR) ranks the other schedules by "
        "their predicted final value at their transferred LRs. Spearman's rho between that and "
        "the observed mean final gap, at each schedule's own tuned LR and at the transferred LR "
        "(mean over datasets with a 95% t interval). With the run's losses fitted "
        "(loss ≈ C + M·Ω_t, M > 0) the ranking is the same as the bound's (a monotone map), so "
        "the fit only changes the predicted values; their accuracy is the last columns "
        "(predicted / observed gap at the transferred LR, all candidates of all datasets).",
        "",
    ]
    table = []
    for opt in OPTS:
        for norms in ("constant", "recorded"):
            for fit in ("none", *(f"{f:g}" for f in FIT_FROM)):
                sel = [
                    r
                    for r in rows
                    if r["optimizer"] == opt and r["norms"] == norms and _fitkey(r) == fit
                ]
                if not sel:
                    continue
                rho_t, rho_p, ratios, neg = [], [], [], 0
                for d in sorted({r["dataset"] for r in sel}):
                    rs = [r for r in sel if r["dataset"] == d]
                    pred = [_f(r, "predicted") for r in rs]
                    rho_t.append(rank_correlation(pred, [_f(r, "observed_tuned") for r in rs]))
                    rho_p.append(rank_correlation(pred, [_f(r, "observed_at_lr") for r in rs]))
                    for r in rs:
                        p, o = _f(r, "predicted"), _f(r, "observed_at_lr")
                        if fit != "none" and math.isfinite(o) and o > 0:
                            if p > 0:
                                ratios.append(p / o)
                            else:
                                neg += 1
                rt = t_interval([v for v in rho_t if not math.isnan(v)])
                rp = t_interval([v for v in rho_p if not math.isnan(v)])
                key = f"{opt}|{norms}|{fit}"
                acc = median_ci([abs(math.log(v)) for v in ratios]) if ratios else None
                summary.setdefault("prediction", {})[key] = {
                    "rho_tuned": rt,
                    "rho_at_lr": rp,
                    "abs_log_ratio": acc,
                    "nonpositive": neg,
                }
                table.append(
                    [
                        OPTIMIZER_LABELS[opt],
                        norms,
                        fit,
                        _fmt3(rt, ".2f"),
                        _fmt3(rp, ".2f"),
                        "–" if acc is None else _fmt3(tuple(math.exp(v) for v in acc), ".3g"),  # type: ignore[arg-type]
                        "–" if fit == "none" else str(neg),
                    ]
                )
    header = [
        "optimizer",
        "norms",
        "fit_from",
        "rho vs gap at tuned LR",
        "rho vs gap at transferred LR",
        "median factor off (pred/obs or obs/pred) [95% CI]",
        "predicted gap <= 0",
    ]
    lines += [*markdown_table(header, table), ""]
    if deep:
        dt = []
        for task in ("image", "lm"):
            for norms in ("constant", "recorded"):
                for fit in ("none", "0.1"):
                    sel = [
                        r
                        for r in deep
                        if r["task"] == task and r["norms"] == norms and _fitkey(r) == fit
                    ]
                    if not sel:
                        continue
                    rho = rank_correlation(
                        [_f(r, "predicted") for r in sel], [_f(r, "observed_tuned") for r in sel]
                    )
                    order = " < ".join(
                        r["candidate"] for r in sorted(sel, key=lambda r: _f(r, "predicted"))
                    )
                    obs = " < ".join(
                        r["candidate"] for r in sorted(sel, key=lambda r: _f(r, "observed_tuned"))
                    )
                    summary.setdefault("deep_prediction", {})[f"{task}|{norms}|{fit}"] = rho
                    dt.append([task, norms, fit, fmt_number(rho, ".2f"), order, obs])
        lines += [
            "Deep tasks (committed results; observed: image final train loss, LM validation "
            "bits/char, each schedule at its own tuned LR, mean over 3 seeds; one ranking per "
            "task, so rho has no interval):",
            "",
            *markdown_table(
                ["task", "norms", "fit_from", "rho", "predicted order", "observed order"], dt
            ),
            "",
        ]
    return lines


def _fitkey(r: Mapping[str, str]) -> str:
    v = r["fit_from"]
    return v if v == "none" else f"{float(v):g}"


def _deep_section(
    transfer: list[dict[str, str]], ext: list[dict[str, str]], summary: dict[str, Any]
) -> list[str]:
    if not transfer and not ext:
        return []
    lines = [
        "## Deep tasks: horizons (image CNN and LM) and continued training (image CNN)",
        "",
        "Image: the deep suite's Fashion-MNIST CNN (SGD momentum 0.9), metric the final train "
        "loss on its fixed 10k-image subset; LM: its character-level GPT (AdamW), metric the "
        "validation bits per character (both the suite's LR-selection metrics). Seeds 0 and 1 "
        "(the suite's grid seeds); LR grid 0.1·2^j (image) / 0.008·2^j (LM), three points "
        "around the prediction, extended at an edge. Regret = metric at the predicted LR / "
        "metric at the swept best: there is no f*, so it is a ratio of losses, not of gaps, and "
        "1.01 is a large miss on these flat landscapes. The 1x sources come from the deep "
        "suite's committed runs (image: linear decay and WSD 1-sqrt at 0.05; LM: linear decay "
        "at 0.016).",
        "",
    ]
    if transfer:
        table = [
            [
                r.get("task", "image"),
                f"{r['target']} {float(r['horizon']):g}x",
                METHOD_LABELS.get(r["method"], r["method"]),
                fmt_number(_f(r, "lr"), ".4g"),
                fmt_number(_f(r, "best_lr"), ".4g"),
                fmt_number(_f(r, "loss"), ".4f"),
                fmt_number(_f(r, "best_loss"), ".4f"),
                fmt_number(_f(r, "regret"), ".4f"),
                r["grid"],
            ]
            for r in transfer
        ]
        summary["deep_transfer"] = transfer
        lines += [
            *markdown_table(
                [
                    "task",
                    "target",
                    "method",
                    "LR",
                    "swept best LR",
                    "metric",
                    "best",
                    "regret",
                    "sweep (LR: metric)",
                ],
                table,
            ),
            "",
        ]
    if ext:
        table = [
            [
                ARM_LABELS.get(r["arm"], r["arm"]),
                f"{r.get('family', '')} {r.get('shape', '')} level {fmt_number(_f(r, 'level'), '.3g')}",
                fmt_number(_f(r, "loss"), ".4f"),
                r.get("seed_losses", ""),
                f"{fmt_number(_f(r, 'ratio_to_fresh'), '.4f')} ({_diff(r, 'diff_to_fresh')})",
                f"{fmt_number(_f(r, 'ratio_to_same_lr'), '.4f')} ({_diff(r, 'diff_to_same_lr')})",
                f"{int(_f(r, 'new_steps'))}",
            ]
            for r in ext
        ]
        f0 = ext[0]
        summary["deep_extension"] = ext
        lines += [
            f"Continued training: WSD 1-sqrt at LR {fmt_number(_f(f0, 'lr'), '.3g')} from step "
            f"{f0['at_step']} to {f0['steps']}; fresh WSD 1-sqrt tuned at {f0['steps']} steps: "
            f"loss {fmt_number(_f(f0, 'fresh_loss'), '.4f')} at LR {fmt_number(_f(f0, 'fresh_lr'), '.3g')} "
            f"({f0['fresh_runs']} LRs x 2 seeds x {f0['steps']} steps).",
            "",
            "Ratios of mean train losses; in brackets the per-seed difference with its 95% t "
            "interval over the 2 seeds (1 degree of freedom: very wide).",
            "",
            *markdown_table(
                [
                    "arm",
                    "plan",
                    "train loss",
                    "seeds 0; 1",
                    "/ fresh (difference [95% CI])",
                    "/ same LR (difference [95% CI])",
                    "new steps",
                ],
                table,
            ),
            "",
        ]
    return lines


def _diff(r: Mapping[str, str], key: str) -> str:
    return _fmt3((_f(r, key), _f(r, f"{key}_low"), _f(r, f"{key}_high")), "+.4f")


def _heldout_section(
    transfer: list[dict[str, str]],
    ext: list[dict[str, str]],
    design: Mapping[str, Any] | None,
    summary: dict[str, Any],
) -> list[str]:
    if not transfer:
        return ["## 5. Held-out datasets", "", "Not measured yet.", ""]
    method = str((design or {}).get("transfer", "constant"))
    meth = "recorded" if method.startswith("recorded") else method
    cells = [
        r
        for r in transfer
        if (r["part"] == "schedule" and r["method"] == meth)
        or (r["part"] == "horizon" and r["method"] == method)
    ]
    reuse = [r for r in transfer if r["method"] == "reuse"]
    s = regret_stats(cells)
    s_reuse = regret_stats(reuse)

    def key(r: Mapping[str, str]) -> tuple[str, ...]:
        return (r["dataset"], r["optimizer"], r["target"], r["horizon"])

    ref = {key(r): _f(r, "regret") for r in reuse}
    pairs = [(_f(r, "regret"), ref[key(r)]) for r in cells if key(r) in ref]
    vs = _paired_log_diff([a for a, _ in pairs], [b for _, b in pairs])
    wins = sum(a < b for a, b in pairs)
    e: dict[str, Any] = _extension_stats(ext, "extend") if ext else {"n": 0}
    summary["heldout"] = {
        "transfer": s,
        "reuse": s_reuse,
        "transfer_over_reuse": vs,
        "wins_vs_reuse": wins,
        "extension": e,
    }
    n_data = len({r["dataset"] for r in cells})
    lines = [
        "## 5. Held-out datasets (measured once, with the frozen design)",
        "",
        f"{n_data} datasets the project never used (`heldout.json`, "
        "`refinedlr_bench/plan_data.py`), x Adam and SGD x the issue's three targets (cosine "
        "and WSD 1-sqrt at T, linear decay at 4T) = "
        f"{len(cells)} cells; source: linear decay tuned at T on each. Design: "
        + ", ".join(
            f"{k} = {v}"
            for k, v in (design or {}).items()
            if k in ("transfer", "extend_family", "extend_norms")
        )
        + ".",
        "",
    ]
    table = [
        ["median regret, transfer_lr", "≤ 1.05", _fmt3(s["median"])],
        ["geo-mean regret, transfer_lr", "≤ 1.08", _fmt3(s["geomean"])],
        [
            "median / geo-mean regret, reusing the source's LR",
            "worse than transfer_lr",
            f"{_fmt3(s_reuse['median'])} / {_fmt3(s_reuse['geomean'])}",
        ],
        [
            "geo-mean of regret(transfer) / regret(reuse), paired",
            "< 1",
            f"{_fmt3(vs)}; transfer better in {wins}/{len(pairs)} cells",
        ],
    ]
    if e.get("n"):
        table += [
            [
                "extend: geo-mean final gap / fresh run tuned at 2T",
                "≤ 1",
                f"{_fmt3(e['to_fresh'])}; no worse in {e['wins_vs_fresh']}/{e['n']}",
            ],
            [
                "extend: geo-mean final gap / same LR, cooldown moved",
                "< 1",
                f"{_fmt3(e.get('to_same_lr'))}; better in {e.get('wins_vs_same_lr')}/{e['n']}",
            ],
        ]
    lines += [*markdown_table(["Done when (issue 17)", "target", "held-out [95% CI]"], table), ""]
    per = []
    for opt in OPTS:
        for t, h in ISSUE_TARGETS:
            sel = [
                r
                for r in cells
                if r["optimizer"] == opt and r["target"] == t and float(r["horizon"]) == h
            ]
            rs = [
                r
                for r in reuse
                if r["optimizer"] == opt and r["target"] == t and float(r["horizon"]) == h
            ]
            per.append(
                _regret_line(
                    f"{OPTIMIZER_LABELS[opt]}: {t} at {h:g}T, transfer_lr", regret_stats(sel)
                )
            )
            per.append(
                _regret_line(f"{OPTIMIZER_LABELS[opt]}: {t} at {h:g}T, reuse", regret_stats(rs))
            )
    lines += [*markdown_table(REGRET_HEADER, per), ""]
    if ext:
        lines += [
            *_extension_table(
                ext, list(dict.fromkeys(r["arm"] for r in ext)), "heldout_extension", summary
            ),
            "",
        ]
    return lines


def _issue_cells(rows: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """The rows of the issue's targets: cosine and WSD 1-sqrt at T, linear decay at 4T."""
    return [
        dict(r)
        for r in rows
        if (r["target"], float(r["horizon"])) in ISSUE_TARGETS
        and r["part"] == ("horizon" if float(r["horizon"]) != 1.0 else "schedule")
    ]


def reach_stats(rows: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """How close any measured LR rule comes to the geometric-mean target: the geometric mean of
    each cell's lowest regret over every method measured on it (an oracle that picks the best rule
    per cell), and the regret one sqrt(2) grid step from the tuned LR, per optimizer and target.

    >>> rows = [
    ...     {"dataset": "a", "optimizer": "sgd", "target": "cosine", "horizon": "1.0",
    ...      "part": "schedule", "method": m, "regret": r, "log2_error": e}
    ...     for m, r, e in (("constant", "2.0", "0.5"), ("reuse", "1.0", "0"))
    ... ]
    >>> s = reach_stats(rows)
    >>> s["oracle"][0], s["one_step"]["sgd cosine"]["n"], s["one_step"]["sgd cosine"]["median"]
    (1.0, 1, 2.0)
    """
    cells = _issue_cells(rows)
    best: dict[tuple[str, ...], float] = {}
    for r in cells:
        k = (r["dataset"], r["optimizer"], r["target"], r["horizon"])
        best[k] = min(best.get(k, math.inf), _f(r, "regret"))
    oracle = geometric_mean_ratio(list(best.values())) if best else None
    one: dict[str, Any] = {}
    for opt in OPTS:
        for t, _ in ISSUE_TARGETS:
            near = [
                _f(r, "regret")
                for r in cells
                if r["optimizer"] == opt
                and r["target"] == t
                and abs(abs(_f(r, "log2_error")) - 0.5) < 0.02
            ]
            if near:
                g = geometric_mean_ratio(near)
                one[f"{opt} {t}"] = {
                    "n": len(near),
                    "median": float(np.median(near)),
                    "geomean": g.ratio,
                }
    return {
        "cells": len(best),
        "methods": sorted({r["method"] for r in cells}),
        "oracle": None if oracle is None else (oracle.ratio, oracle.low, oracle.high),
        "one_step": one,
    }


def _reach_section(
    transfer: list[dict[str, str]], h_transfer: list[dict[str, str]], summary: dict[str, Any]
) -> list[str]:
    dev, held = reach_stats(transfer), reach_stats(h_transfer)
    summary["reach"] = {"development": dev, "heldout": held}
    if not dev["cells"]:
        return []
    lines = [
        "## 6. How far the geometric-mean target is from every rule measured",
        "",
        "Each cell of the issue's targets keeps its lowest regret over every LR rule measured on "
        "it (an oracle that knows, per dataset, optimizer and target, which rule to use); and "
        "the regret of an LR exactly one sqrt(2) grid step from the tuned one (all rules, both "
        "splits), which is what one grid step of error costs.",
        "",
    ]
    table = [
        [name, str(s["cells"]), ", ".join(s["methods"]), _fmt3(s["oracle"])]
        for name, s in (("development", dev), ("held-out", held))
        if s["cells"]
    ]
    header = ["split", "cells", "rules", "geo-mean of the per-cell best regret [95% CI]"]
    lines += [*markdown_table(header, table), ""]
    pooled = reach_stats([*transfer, *h_transfer])["one_step"]
    where = {t: f"{t} at {'4T' if h == 4.0 else 'T'}" for t, h in ISSUE_TARGETS}
    table = []
    for key, v in pooled.items():
        opt, t = key.split()
        label = f"{OPTIMIZER_LABELS[opt]}: {where[t]}"
        table.append([label, str(v["n"]), f"{v['median']:.3g}", f"{v['geomean']:.3g}"])
    header = ["one grid step off", "cells", "median regret", "geo-mean regret"]
    return [*lines, *markdown_table(header, table), ""]


# ----------------------------------------------------------------------------------------------
# figures


def _log_y(ax: Any) -> None:
    """A log y axis with plain-number tick labels."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _plot_schedule(rows: list[dict[str, str]], out: Path) -> str | None:
    rows = _where(rows, part="schedule")
    if not rows:
        return None
    fig = new_figure((11, 6.5))
    axes = fig.subplots(2, 1, sharex=True)
    colors = {"constant": "tab:blue", "recorded": "tab:orange", "reuse": "tab:gray"}
    for ax, opt in zip(axes, OPTS, strict=True):
        for i, t in enumerate(CROSS_TARGETS):
            for j, m in enumerate(colors):
                v = [_f(r, "regret") for r in _where(rows, optimizer=opt, target=t, method=m)]
                x = i + (j - 1) * 0.25
                ax.scatter(
                    np.full(len(v), x),
                    np.clip(v, 0.5, 100),
                    s=9,
                    color=colors[m],
                    alpha=0.6,
                    label=m if i == 0 else None,
                )
                if v:
                    ax.hlines(np.median(v), x - 0.1, x + 0.1, color="black", lw=1.5)
        _log_y(ax)
        ax.axhline(1.05, color="red", lw=0.8, ls="--")
        ax.set_ylabel(f"{OPTIMIZER_LABELS[opt]}: regret")
        ax.legend(fontsize=8, loc="upper left")
    axes[-1].set_xticks(range(len(CROSS_TARGETS)), CROSS_TARGETS)
    fig.suptitle(
        "Cross-schedule transfer from linear decay: regret at the predicted LR (bar: median; dashed: 1.05)"
    )
    fig.savefig(out / "transfer_schedules.png", dpi=110)
    return "transfer_schedules.png"


def _plot_horizon(rows: list[dict[str, str]], out: Path) -> str | None:
    rows = _where(rows, part="horizon")
    if not rows:
        return None
    fig = new_figure((12, 6.5))
    axes = fig.subplots(2, 3, sharex=True)
    colors = {
        "constant": "tab:blue",
        "recorded-fraction": "tab:orange",
        "recorded-step": "tab:green",
        "reuse": "tab:gray",
    }
    for a, opt in enumerate(OPTS):
        for b, sched in enumerate(HORIZON_SCHEDULES):
            ax = axes[a, b]
            for j, (m, c) in enumerate(colors.items()):
                ys, lo, hi = [], [], []
                for h in HORIZONS:
                    v = [
                        _f(r, "regret")
                        for r in _where(rows, optimizer=opt, target=sched, method=m)
                        if float(r["horizon"]) == h
                    ]
                    g = (
                        geometric_mean_ratio(v)
                        if v and all(math.isfinite(x) and x > 0 for x in v)
                        else None
                    )
                    ys.append(g.ratio if g else math.nan)
                    lo.append(g.ratio - g.low if g else 0)
                    hi.append(g.high - g.ratio if g else 0)
                x = np.log2(HORIZONS) + (j - 1.5) * 0.08
                ax.errorbar(
                    x, ys, yerr=[lo, hi], color=c, marker="o", ms=3, lw=1, capsize=2, label=m
                )
            _log_y(ax)
            ax.axhline(1.08, color="red", lw=0.8, ls="--")
            ax.set_title(f"{OPTIMIZER_LABELS[opt]}: {sched}", fontsize=9)
            ax.set_xticks(np.log2(HORIZONS), [f"{h:g}x" for h in HORIZONS])
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Horizon transfer: geometric-mean regret over datasets [95% CI] (dashed: 1.08)")
    fig.savefig(out / "transfer_horizons.png", dpi=110)
    return "transfer_horizons.png"


def _plot_extension(rows: list[dict[str, str]], out: Path) -> str | None:
    if not rows:
        return None
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    fig = new_figure((10, 4))
    ax = fig.subplots()
    for i, arm in enumerate(arms):
        for j, opt in enumerate(OPTS):
            v = [_f(r, "gap") / _f(r, "fresh_gap") for r in _where(rows, arm=arm, optimizer=opt)]
            x = i + (j - 0.5) * 0.3
            ax.scatter(
                np.full(len(v), x),
                v,
                s=10,
                alpha=0.6,
                color=("tab:blue", "tab:orange")[j],
                label=OPTIMIZER_LABELS[opt] if i == 0 else None,
            )
            if v:
                ax.hlines(float(np.exp(np.mean(np.log(v)))), x - 0.12, x + 0.12, color="black")
    _log_y(ax)
    ax.axhline(1.0, color="red", lw=0.8, ls="--")
    ax.set_xticks(range(len(arms)), arms, fontsize=8)
    ax.set_ylabel("final gap / fresh run tuned at 2T0")
    ax.legend(fontsize=8)
    ax.set_title("Continued training from 0.8 T0 to 2 T0 (bar: geometric mean)")
    fig.savefig(out / "extension.png", dpi=110)
    return "extension.png"


def _plot_continuations(out: Path) -> str:
    """The continuation arms' multipliers for a WSD 1-sqrt run of 1000 steps checkpointed at 800
    and continued to 2000 (with constant norms the plan depends on the shape and steps only)."""
    from refinedlr import Schedule, WarmupStableDecay
    from refinedlr.plan import extension_options

    from refinedlr_bench.plan_convex import rewarm_cosine, same_lr

    base = WarmupStableDecay(1000, decay=0.2, decay_shape="1-sqrt")
    options = extension_options(base, at_step=800, total_steps=2000)
    arms: dict[str, Schedule] = {
        f"extend {o.family} ({o.schedule.cooldown_shape}), bound ratio {o.bound_ratio:.3f}": o.schedule
        for o in options
    }
    arms["same LR, cooldown moved"] = same_lr(base, 800, 2000)
    arms["re-warm-up, cosine"] = rewarm_cosine(base, 800, 2000)
    fig = new_figure((9, 3.8))
    ax = fig.subplots()
    ax.plot(
        np.arange(1000),
        base.preview(),
        color="black",
        lw=2.5,
        label="source: WSD 1-sqrt, 1000 steps",
    )
    for label, sched in arms.items():
        ax.plot(np.arange(2000), sched.preview(), lw=1.2, label=label)
    ax.axvline(800, color="gray", ls=":", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("LR / peak LR")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("Continuing from the checkpoint at 0.8 T0 to 2 T0 (constant norms)")
    fig.savefig(out / "continuations.png", dpi=110)
    return "continuations.png"


# ----------------------------------------------------------------------------------------------
# the report


def _runlog_lines(out: Path) -> list[str]:
    rows = []
    for e in read_runlog(out):
        if e.get("parts") == ["report"]:
            continue  # report-only invocations read the tables: no cost worth listing
        load = f"{e.get('load_start', '–')} → {e.get('load_end', '–')}"
        parts = ", ".join(f"{k} {v / 60:.1f} min" for k, v in e.get("part_seconds", {}).items())
        rows.append(
            [
                str(e.get("date", "")),
                f"`{e.get('command', '')}`",
                f"{e.get('wall_seconds', 0) / 60:.1f} min",
                parts,
                load,
            ]
        )
    if not rows:
        return []
    return [
        "Invocations that ran a part (`runlog.jsonl`; a rerun reads the caches, so the "
        "invocation that trained a part carries its real cost; load = 1/5/15-minute load averages of the 2-core machine "
        "shared with other jobs):",
        "",
        *markdown_table(["finished", "command", "wall time", "parts", "load start → end"], rows),
        "",
    ]


def write_report(out: Path, *, quick: bool, machine: Mapping[str, Any], plots: bool) -> None:
    """``report.md``, ``summary.json`` and the figures from the tables in ``out``."""
    transfer = read_rows(out / "transfer.csv")
    ext = read_rows(out / "extension.csv")
    pred = read_rows(out / "prediction.csv")
    d_transfer = read_rows(out / "deep_transfer.csv")
    d_ext = read_rows(out / "deep_extension.csv")
    d_pred = read_rows(out / "deep_prediction.csv")
    h_transfer = read_rows(out / "heldout_transfer.csv")
    h_ext = read_rows(out / "heldout_extension.csv")
    heldout_doc: dict[str, Any] = {}
    if (out / "heldout.json").exists():
        heldout_doc = json.loads((out / "heldout.json").read_text(encoding="utf-8"))
    design = (
        heldout_doc.get("design")
        if not quick
        else {"transfer": "constant", "extend_family": "best", "extend_norms": "constant"}
    )
    summary: dict[str, Any] = {"quick": quick, "machine": dict(machine)}
    body: list[str] = []
    body += _schedule_section(transfer, summary)
    body += _horizon_section(transfer, summary)
    body += _extension_section(ext, summary)
    body += _prediction_section(pred, d_pred, summary)
    body += _deep_section(d_transfer, d_ext, summary)
    body += _heldout_section(h_transfer, h_ext, design, summary)
    body += _reach_section(transfer, h_transfer, summary)
    figures: list[tuple[str, str]] = []
    if plots:
        for make, caption in (
            (_plot_schedule, "cross-schedule regret per target, optimizer and method"),
            (_plot_horizon, "horizon transfer: geometric-mean regret per horizon"),
            (_plot_extension, "continued training: final gap over the fresh tuned run"),
        ):
            name = make(transfer if make is not _plot_extension else ext, out)
            if name:
                figures.append((name, caption))
        if ext:
            figures.append((_plot_continuations(out), "the continuation arms' LR multipliers"))
    head = [
        "# Planning from the last-iterate bound: the evidence (issue 17)",
        "",
        f"- Made by `refinedlr bench plan{' --quick' if quick else ''}` "
        f"(research/src/refinedlr_bench/commands/plan.py); report written "
        f"{time.strftime('%Y-%m-%d %H:%M')}.",
        f"- Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('platform', '')}; Python {machine.get('python', '')}, torch "
        f"{machine.get('torch', '')} ({machine.get('torch_threads', '?')} thread, "
        f"{machine.get('cpu_kernels', '')} kernels).",
        "- Convex protocol: the convex suite's (multinomial logistic regression, batch 16, "
        "l2 1e-4, Adam betas (0.9, 0.95) and plain SGD, seeds 0-4 = data orders, epochs "
        "min(100, 30000 // steps per epoch)); every run trains at its LR exactly "
        "(`refinedlr_bench/plan_train.py`).",
        "- The hand-written reading, the design choices and where the bound fails: "
        "[discussion.md](discussion.md).",
        "",
        *_runlog_lines(out),
    ]
    text = "\n".join(head + body + figure_list(figures))
    with atomic_write(out / "report.md") as fh:
        fh.write(text + "\n")
    with atomic_write(out / "summary.json") as fh:
        fh.write(json.dumps(_jsonable(summary), indent=1))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    return obj
