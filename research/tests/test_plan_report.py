"""The planning report's statistics and its headline table on hand-made tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from refinedlr_bench.plan_report import median_ci, reach_stats, regret_stats, wilson, write_report
from refinedlr_bench.plan_tables import read_rows, write_rows


def test_median_ci_is_the_order_statistic_interval() -> None:
    """For n = 19 the 95% interval of the median is [x(5), x(15)] (binomial(19, 1/2):
    P(5 <= B <= 14) = 0.9682 >= 0.95, and no narrower symmetric pair reaches 0.95)."""
    x = np.arange(1.0, 20.0)
    assert median_ci(list(x)) == (10.0, 5.0, 15.0)
    assert median_ci([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)  # too few: the range


def test_wilson_matches_the_closed_form() -> None:
    k, n, z = 7, 19, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    frac, lo, hi = wilson(k, n)
    assert frac == p and lo == pytest.approx(centre - half) and hi == pytest.approx(centre + half)


def test_regret_stats() -> None:
    rows = [
        {"regret": str(r), "log2_error": str(e)}
        for r, e in ((1.0, 0.1), (1.2, -0.6), (0.9, 0.5), (4.0, 2.0))
    ]
    s = regret_stats(rows)
    assert s["n"] == 4 and s["max"] == 4.0 and s["le_105"] == 0.5
    assert s["geomean"][0] == pytest.approx((1.0 * 1.2 * 0.9 * 4.0) ** 0.25)
    assert s["within_sqrt2"][0] == 0.5  # |0.1| and |0.5| are within a factor sqrt 2
    assert s["median"][0] == pytest.approx(1.1)
    inf = regret_stats([*rows, {"regret": "inf", "log2_error": "3"}])
    assert inf["geomean"] is None and inf["diverged"] == 1


def _transfer_rows(regrets: dict[str, float]) -> list[dict[str, object]]:
    rows = []
    for d in ("a", "b", "c"):
        for opt in ("adam", "sgd"):
            for part, target, h in (
                ("schedule", "cosine", 1.0),
                ("schedule", "wsd-1sqrt", 1.0),
                ("horizon", "linear", 4.0),
            ):
                for method, r in regrets.items():
                    rows.append(
                        {
                            "part": part,
                            "dataset": d,
                            "optimizer": opt,
                            "source": "linear",
                            "target": target,
                            "horizon": h,
                            "method": method,
                            "regret": r,
                            "log2_error": 0.1,
                            "lr": 0.1,
                            "best_lr": 0.1,
                        }
                    )
    return rows


def test_report_headline_on_held_out_tables(tmp_path: Path) -> None:
    write_rows(tmp_path / "heldout_transfer.csv", _transfer_rows({"constant": 1.02, "reuse": 1.5}))
    ext = []
    for d in ("a", "b", "c"):
        for opt in ("adam", "sgd"):
            ext += [
                {
                    "dataset": d,
                    "optimizer": opt,
                    "arm": "extend",
                    "steps": 200,
                    "at_step": 80,
                    "gap": 0.9,
                    "fresh_gap": 1.0,
                    "new_steps": 120,
                    "fresh_steps": 3200,
                },
                {
                    "dataset": d,
                    "optimizer": opt,
                    "arm": "same-lr",
                    "steps": 200,
                    "at_step": 80,
                    "gap": 1.8,
                    "fresh_gap": 1.0,
                    "new_steps": 120,
                    "fresh_steps": 3200,
                },
            ]
    write_rows(tmp_path / "heldout_extension.csv", ext)
    (tmp_path / "heldout.json").write_text(
        json.dumps(
            {
                "datasets": ["a", "b", "c"],
                "design": {
                    "transfer": "constant",
                    "extend_family": "best",
                    "extend_norms": "constant",
                    "fit_from": 0.1,
                },
            }
        )
    )
    write_report(tmp_path, quick=False, machine={"cpu": "x", "cores": 2}, plots=False)
    text = (tmp_path / "report.md").read_text()
    assert "| median regret, transfer_lr | ≤ 1.05 | 1.02 [1.02, 1.02] |" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    h = summary["heldout"]
    assert h["transfer"]["n"] == 18 and h["reuse"]["n"] == 18
    assert h["transfer_over_reuse"][0] == pytest.approx(1.02 / 1.5)
    assert h["extension"]["to_fresh"][0] == pytest.approx(0.9)
    assert h["extension"]["to_same_lr"][0] == pytest.approx(0.5)
    assert read_rows(tmp_path / "missing.csv") == []


def test_reach_keeps_each_cells_best_rule_and_prices_one_grid_step() -> None:
    def row(ds: str, opt: str, target: str, h: float, method: str, regret: float, err: float):
        part = "schedule" if h == 1.0 else "horizon"
        return {
            "dataset": ds,
            "optimizer": opt,
            "target": target,
            "horizon": str(h),
            "part": part,
            "method": method,
            "regret": str(regret),
            "log2_error": str(err),
        }

    rows = [
        row("a", "sgd", "linear", 4.0, "constant", 4.0, -0.5),
        row("a", "sgd", "linear", 4.0, "reuse", 1.5, 0.5),
        row("b", "sgd", "linear", 4.0, "constant", 1.0, 0.0),
        row("b", "sgd", "linear", 4.0, "reuse", 6.0, 1.0),
        row("a", "adam", "cosine", 1.0, "constant", 1.2, 0.0),
        # not one of the targets: left out
        row("a", "adam", "linear", 2.0, "constant", 9.0, 0.5),
        row("a", "adam", "cosine", 4.0, "constant", 9.0, 0.5),
    ]
    s = reach_stats(rows)
    assert s["cells"] == 3 and s["methods"] == ["constant", "reuse"]
    assert s["oracle"][0] == pytest.approx((1.5 * 1.0 * 1.2) ** (1 / 3))
    assert s["one_step"] == {
        "sgd linear": {"n": 2, "median": 2.75, "geomean": pytest.approx(math.sqrt(6.0))}
    }
