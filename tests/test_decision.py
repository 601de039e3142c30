"""The decision rule (refinedlr.decision), norm kinds from names (refinedlr.records.kinds) and the
shape a summary describes: one set of words for one set of numbers."""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from refinedlr.decision import (
    BOUND_MARGIN,
    advice_before_run,
    bound_caveat,
    bound_verdict,
    decide,
    metric_verdict,
)
from refinedlr.records import GradNormRecord, NormKindWarning
from refinedlr.records.kinds import choose_norm, describe_kind, norm_kind
from refinedlr.refinement import refine
from refinedlr.schedules import ScheduleError
from refinedlr.summary import summarize
from refinedlr.verify import VERIFY_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "research" / "results" / "refinement-study"


# -- the rule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ratio,favours,sure",
    [
        (0.40, "refined", "clear"),
        (0.9024, "refined", "clear"),
        (0.93, "refined", "narrow"),
        (0.9499, "refined", "narrow"),
        (0.95, "tie", "tie"),
        (0.9924, "tie", "tie"),
        (1.0, "tie", "tie"),
        (1.0526, "tie", "tie"),
        (1.06, "linear", "narrow"),
        (1.2, "linear", "clear"),
        (float("inf"), "tie", "tie"),
    ],
)
def test_bound_verdict_bands(ratio: float, favours: str, sure: str) -> None:
    v = bound_verdict(ratio)
    assert (v.favours, v.sure) == (favours, sure)
    assert VERIFY_THRESHOLD == BOUND_MARGIN == 0.95
    if favours == "tie" and np.isfinite(ratio):
        assert v.text == (
            f"ratio {ratio:.4f}, inside the tie band 0.95..1.053 (the bound's own uncertainty): "
            "a tie"
        )
    if favours == "refined":
        assert (
            v.text
            == f"ratio {ratio:.4f}, below 0.95: favours the refined schedule (how sure: {sure})"
        )


def test_a_caveat_makes_any_ratio_a_tie() -> None:
    v = bound_verdict(0.0659, caveat="the norms span 3 orders of magnitude")
    assert (v.favours, v.sure) == ("tie", "uninformative")
    assert v.text == "ratio 0.0659, but uninformative: the norms span 3 orders of magnitude"


def test_metric_verdicts() -> None:
    tie = metric_verdict(0.4012, 0.3993, spread=0.004)
    assert (tie.favours, tie.sure) == ("tie", "tie")
    assert tie.text == (
        "linear-decay run 0.4012, refined run 0.3993 (lower is better): they differ by 0.0019, "
        "within the seed spread (sd 0.004): a tie"
    )
    assert metric_verdict(0.9, 0.95, higher_is_better=True, spread=0.01).sure == "clear"
    assert metric_verdict(0.9, 0.915, higher_is_better=True, spread=0.01).sure == "narrow"
    assert metric_verdict(0.9, 0.8, higher_is_better=True).favours == "linear"
    unknown = metric_verdict(0.5, 0.4)
    assert (unknown.favours, unknown.sure) == ("refined", "unknown")
    assert metric_verdict(0.5, 0.5).favours == "tie"


def test_the_metric_decides_else_the_bound_else_a_tie_goes_to_linear_decay() -> None:
    clear_metric = metric_verdict(0.40, 0.30, spread=0.02)
    tie_metric = metric_verdict(0.40, 0.39, spread=0.02)
    keep, tie, lose = bound_verdict(0.5), bound_verdict(0.99), bound_verdict(1.3)
    d = decide(lose, clear_metric)
    assert d.keep_refined and d.decided_by == "metric" and d.sure == "clear"
    assert d.explain() == "decided by the metric (how sure: clear): difference 0.1"
    d = decide(keep, tie_metric)
    assert d.keep_refined and d.decided_by == "bound check"
    d = decide(lose, tie_metric)
    assert not d.keep_refined and d.decided_by == "bound check"
    assert d.headline() == "fall back to linear decay"
    d = decide(tie, tie_metric)
    assert not d.keep_refined and d.decided_by == "tie" and d.sure == "tie"
    assert d.explain() == (
        "a tie (the metrics differ by no more than their seed spread; the bound ratio is inside "
        "its tie band); a tie goes to linear decay, the simpler schedule"
    )
    assert decide().explain() == (
        "a tie (no evidence was given); a tie goes to linear decay, the simpler schedule"
    )
    # the demo's SGD arm in issue 18: risk says prefer linear decay, the bound check 0.9655, the
    # losses 0.0019 apart within the seed spread: the same rule says linear decay
    d = decide(bound_verdict(0.9655), metric_verdict(0.4012, 0.3993, spread=0.004))
    assert d.headline() == "fall back to linear decay" and d.decided_by == "tie"


def test_advice_before_any_run_of_the_refined_schedule() -> None:
    assert advice_before_run(bound_verdict(0.5)).startswith(
        "worth a try: its bound beats linear decay's beyond the tie band on the record it was "
        "refined from, which favours it by construction. Train once with it and let refinedlr "
        "verify decide"
    )
    risky = advice_before_run(bound_verdict(0.5), risky=True)
    assert risky.startswith("use linear decay, or check the refined schedule:")
    assert "the norms fall late (the warning above)" in risky
    assert advice_before_run(bound_verdict(0.9924)).startswith(
        "use linear decay: the bound ratio is inside its tie band, and a tie goes to linear decay"
    )
    assert advice_before_run(bound_verdict(0.07, caveat="x")).startswith(
        "use linear decay: the bound is uninformative on this record, and a tie goes to"
    )


def _study_cells() -> list[tuple[float, str]]:
    """(own-record bound ratio, observed outcome of the paper's refinement) per study cell."""
    observed: dict[tuple[str, str], tuple[float, float]] = {}
    with open(STUDY / "summary.csv") as f:
        for row in csv.DictReader(f):
            if row["method"] in ("refined-0.1", "refined"):
                key = (row["optimizer"].replace("adamw", "adam"), row["dataset"])
                observed[key] = (float(row["ci_low"]), float(row["ci_high"]))
    text = (STUDY / "report.md").read_text()
    table = text.split("Verification decisions")[1].split("## 5")[0]
    cells = []
    for m in re.finditer(r"^\| (\S+) \| (Adam|SGD) \| \w+ \| ([\d.]+)", table, re.M):
        lo, hi = observed[(m.group(2).lower(), m.group(1))]
        cells.append((float(m.group(3)), "win" if hi < 1 else "loss" if lo > 1 else "tie"))
    for task, ratio in (("image", 0.543), ("lm", 1.006)):  # the deep tasks' checks (report)
        opt = "sgd" if task == "image" else "adam"
        lo, hi = observed[(opt, task)]
        cells.append((ratio, "win" if hi < 1 else "loss" if lo > 1 else "tie"))
    return cells


def test_the_tie_band_is_what_the_committed_evidence_says() -> None:
    """The numbers in refinedlr.decision's documentation, recomputed from the study's files."""
    cells = _study_cells()
    assert len(cells) == 40
    near = [o for r, o in cells if 0.944 <= r <= 1.0]
    assert len(near) == 19 and near.count("win") == 0
    assert (near.count("tie"), near.count("loss")) == (13, 6)
    assert sorted(r for r, o in cells if o == "win") == [0.163, 0.425, 0.543]
    above = [o for r, o in cells if r > 1 / BOUND_MARGIN]
    assert len(above) == 7 and set(above) == {"loss"}


# -- bound sanity ------------------------------------------------------------------------------


def test_bound_caveats() -> None:
    T = 3000
    t = np.arange(T)
    vit = 0.62 + 514.4 * np.exp(-t / 12.0)  # 515 falling to a median of 0.62
    why = bound_caveat(vit)
    assert why is not None and why.startswith("a few huge norms dominate the bound")
    assert "the 1% largest terms carry 10" in why or "carry 99%" in why
    span = np.r_[np.ones(2800), np.geomspace(1, 1e-5, 200)]
    assert bound_caveat(span) == (
        "the norms span 4.2 orders of magnitude (5.67e-05 to 1), so a few steps decide the bound"
    )
    flat = 1 + 0.01 * np.sin(t)
    assert bound_caveat(flat) is not None and "nearly constant" in str(bound_caveat(flat))
    assert bound_caveat(np.r_[np.full(20, 8.0), np.ones(180)]) is None  # a warm-start record
    assert bound_caveat([1.0]) is None and bound_caveat([np.nan, 0.0]) is None


@pytest.mark.parametrize("task", ["image", "lm"])
def test_the_committed_deep_records_are_informative(task: str) -> None:
    """The records on which the bound check was assessed must not be called uninformative."""
    with open(ROOT / "research" / "results" / "deep" / task / "refinement.csv") as f:
        norms = np.array([float(r["median_norm"]) for r in csv.DictReader(f)])
    assert bound_caveat(norms) is None


def test_summary_shows_the_ratio_with_its_caveat() -> None:
    T = 1000
    vit = 0.62 + 514.4 * np.exp(-np.arange(T) / 4.0)
    s = summarize(refine(vit, norm="l1"), vit, name="refined")
    assert s.bound_caveat is not None and s.bound_ratio_to_linear is not None
    assert s.bound_ratio_to_linear < 0.2  # a "good" number ...
    line = next(x for x in str(s).splitlines() if "bound vs linear" in x)
    assert "but uninformative: a few huge norms dominate the bound" in line  # ... with its caveat
    assert "favours" not in line and "better than" not in line


# -- the shape as a figure shows it -------------------------------------------------------------


def test_a_schedule_that_dips_before_it_climbs_is_described_so() -> None:
    s = summarize(np.array([0.78, 0.5, 0.2, 0.4, 1.0, 0.5, 0.0]), name="refined")
    assert s.shape() == (
        "starts at 0.78 of its peak, dips to 0.20 at step 2 (29%), climbs to its peak at step 4 "
        "(67% of training), ends at 0"
    )
    assert s.warmup_steps == 4 and "implied warm-up" not in str(s)  # no warm-up to speak of
    ramp = summarize(np.r_[np.linspace(0.1, 1, 10), np.linspace(1, 0, 90)])
    assert ramp.shape().startswith("rises from 0.10 to its peak at step 9 (9% of training)")
    assert "  implied warm-up: 8 steps (8%)" in str(ramp)
    assert summarize(np.linspace(1, 0, 50)).shape() == "starts at its peak, ends at 0"


def test_a_zero_schedule_is_a_schedule_error() -> None:
    with pytest.raises(ScheduleError, match="zero everywhere"):
        summarize(np.zeros(10))


# -- norm kinds from names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,kind",
    [
        ("l1", "l1"),
        ("l2", "l2"),
        ("sched/gnorm_l1", "l1"),
        ("gnorm_l1", "l1"),
        ("grad_norm_l1", "l1"),
        ("L1_norm", "l1"),
        ("grad_norm", "l2"),
        ("train/grad_norm", "l2"),
        ("gnorm", "l2"),
        ("grad_2.0_norm_total", "l2"),
        ("grad_1.0_norm_total", "l1"),
        ("update_l2", "update_l2"),
        ("update_l1", "update_l1"),
        ("loss", None),
        ("lr", None),
        ("param_norm", None),
        ("col0", None),
        ("eval_loss", None),
        ("gnorm_l1_l2", None),
    ],
)
def test_norm_kind_from_a_name(name: str, kind: str | None) -> None:
    assert norm_kind(name) == kind


def test_choose_norm() -> None:
    c = choose_norm(["sched/gnorm_l1"])
    assert (c.norm, c.column, c.assumed) == ("l1", "sched/gnorm_l1", False)
    c = choose_norm(["sched/gnorm_l1"], "l2")
    assert c.norm == "l2" and c.reason == (
        "l2, as asked (--norm); the column 'sched/gnorm_l1' holds l1 norms by its name"
    )
    c = choose_norm(["grad_norm"])
    assert c.norm == "l2" and "for an Adam-type run the paper refines l1 norms" in c.reason
    c = choose_norm(["l2", "l1", "update_l2"])
    assert (c.norm, c.column) == ("l1", "l1") and "Adam-type" in c.reason
    c = choose_norm(["l2", "l1"])
    assert (c.norm, c.column, c.assumed) == ("l2", "l2", True)
    assert c.reason.startswith("l2, assumed: the column 'l2' does not say which optimizer")
    assert "for Adam-type ones refine with --norm l1" in c.reason
    c = choose_norm(["col0"])
    assert c.assumed and c.column == "col0"
    assert describe_kind("gnorm") == "l2 gradient norms (column 'gnorm')"
    assert describe_kind("col0") == "norms of column 'col0' (which norm, its name does not say)"


def test_the_library_warns_when_an_l1_column_is_refined_as_l2() -> None:
    rec = GradNormRecord.from_arrays({"sched/gnorm_l1": np.geomspace(10, 1, 50)}, source="r.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refine(rec, norm="l2")
    assert [w.category for w in caught] == [NormKindWarning]
    assert "r.csv: holds l1 norms (its series 'sched/gnorm_l1'), not l2" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refine(rec, norm="l1")  # the norm its name says: no warning
