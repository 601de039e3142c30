"""refinedlr.verify (refine, then verify) and refinedlr.risk (the late-decline pattern)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refinedlr.bounds import best_scale
from refinedlr.records import GradNormRecord, RecordError
from refinedlr.refinement import RefineError, refine
from refinedlr.risk import LATE_DECLINE_HIGH, LATE_DECLINE_MODERATE, refinement_risk
from refinedlr.schedule_io import load_schedule
from refinedlr.schedules import LinearDecay
from refinedlr.verify import VERIFY_THRESHOLD, check_kind, verify_refinement


def warm_start_norms(T: int = 200) -> np.ndarray:
    """Large early norms, flat afterwards: refinement creates a warm-up (the study's wins)."""
    return np.r_[np.full(T // 10, 8.0), np.ones(T - T // 10)]


def like(norms: np.ndarray) -> np.ndarray:
    """Another run with about the same norms (identical norms are the same record twice)."""
    return norms * (1 + 0.01 * np.sin(np.arange(norms.size)))


def rising_late(T: int = 200) -> np.ndarray:
    return np.r_[np.full(T // 10, 8.0), np.ones(T // 2 - T // 10), np.full(T - T // 2, 6.0)]


def test_threshold_is_defined_once() -> None:
    assert VERIFY_THRESHOLD == 0.95
    import refinedlr

    assert refinedlr.VERIFY_THRESHOLD is VERIFY_THRESHOLD
    assert not hasattr(refinedlr.refinement, "VERIFY_THRESHOLD")


def test_keeps_when_the_refined_run_supports_it() -> None:
    src = warm_start_norms()
    own = like(src)
    s = refine(src, tau=0.1)
    v = verify_refinement(s, own, src)
    assert v.kept and v.bound_keeps and v.decided_by == "bound check" and v.schedule is s
    # the ratio is the bound of each schedule on its own record, at its best scale
    T = src.size
    expect = best_scale(s.preview(), own)[1] / best_scale(1 - np.arange(T) / T, src)[1]
    assert v.bound_ratio == pytest.approx(expect, rel=1e-12)
    assert v.bound_ratio < 0.5
    assert v.decision() == "keep the refined schedule"
    assert v.reasons() == [
        "bound check on the norms given, refined run / linear-decay run: ratio "
        f"{v.bound_ratio:.4f}, below 0.95: favours the refined schedule (how sure: clear)",
        "metric: none given",
        f"decided by the bound check (how sure: clear): ratio {v.bound_ratio:.4f}",
    ]


def test_falls_back_to_linear_decay_when_the_refined_run_contradicts_it() -> None:
    src = warm_start_norms()
    v = verify_refinement(refine(src, tau=0.1), rising_late(), src)
    assert not v.kept and v.bound_ratio >= 0.95
    assert v.schedule == LinearDecay(total_steps=src.size)
    assert v.decision() == "fall back to linear decay"
    assert "above 1.053: favours linear decay (how sure: clear)" in v.reasons()[0]


def test_the_same_record_twice_decides_nothing() -> None:
    src = warm_start_norms()
    v = verify_refinement(refine(src), src, src)
    assert not v.kept and v.decided_by == "tie" and v.bound_ratio < 0.5
    assert v.caveat is not None and "identical norms" in v.caveat
    assert "but uninformative: run 1 and run 2 have identical norms" in v.reasons()[0]
    assert v.explain() == (
        "a tie (the bound is uninformative on these records); a tie goes to linear decay, the "
        "simpler schedule"
    )


def test_metric_decides_and_agreement_is_reported() -> None:
    src = warm_start_norms()
    s = refine(src, tau=0.1)
    # bound says keep; the metric (a loss) says the refined run was worse
    v = verify_refinement(s, like(src), src, source_metric=0.30, refined_metric=0.31)
    assert v.bound_keeps and v.metric_keeps is False and v.agree is False
    assert not v.kept and v.decided_by == "metric"
    assert v.reasons()[1:] == [
        "metric: linear-decay run 0.3, refined run 0.31 (lower is better): the linear-decay run "
        "is better by 0.01, how sure: unknown (one value per run and no seed spread given)",
        "decided by the metric (how sure: unknown): difference 0.01",
    ]
    # an accuracy: higher is better
    v = verify_refinement(
        s, rising_late(), src, source_metric=0.90, refined_metric=0.91, higher_is_better=True
    )
    assert v.kept and not v.bound_keeps and v.agree is False
    # within the seed spread the metric ties, and the bound check decides
    v = verify_refinement(
        s, like(src), src, source_metric=0.30, refined_metric=0.31, metric_spread=0.02
    )
    assert v.kept and v.decided_by == "bound check"
    assert "within the seed spread (sd 0.02): a tie" in v.reasons()[1]
    # beyond twice the spread the metric is clear; between once and twice, narrow
    v = verify_refinement(
        s, rising_late(), src, source_metric=0.30, refined_metric=0.20, metric_spread=0.02
    )
    assert v.kept and v.decided_by == "metric" and v.outcome.sure == "clear"
    v = verify_refinement(
        s, rising_late(), src, source_metric=0.30, refined_metric=0.27, metric_spread=0.02
    )
    assert v.kept and v.outcome.sure == "narrow" and "1.5x the seed spread" in v.reasons()[1]
    # equal metrics and a bound check that cannot decide: a tie, and a tie keeps linear decay
    v = verify_refinement(s, src, src, source_metric=0.5, refined_metric=0.5)
    assert not v.kept and v.decided_by == "tie"
    assert v.explain().startswith("a tie (the metrics differ by no more than their seed spread; ")
    with pytest.raises(RefineError, match="both metrics"):
        verify_refinement(s, src, src, source_metric=0.5)
    with pytest.raises(RefineError, match="finite"):
        verify_refinement(s, src, src, source_metric=float("nan"), refined_metric=0.5)
    with pytest.raises(RefineError, match="metric_spread"):
        verify_refinement(s, src, src, source_metric=0.5, refined_metric=0.5, metric_spread=-1)


def test_threshold_and_source_schedule() -> None:
    src = warm_start_norms()
    own = like(src)
    v = verify_refinement(refine(src), own, src, threshold=1e-3)  # a huge tie band
    assert not v.kept and v.decided_by == "tie" and "tie band 0.001..1000" in v.reasons()[0]
    T = src.size
    warm = np.minimum(1.0, (np.arange(T) + 1) / 10) * (1 - np.arange(T) / T)
    v = verify_refinement(refine(src), own, src, source_schedule=warm, threshold=1.0)
    assert v.kept and v.bound_ratio < 1.0
    v2 = verify_refinement(refine(src), own, src, source_schedule=warm, threshold=1e-3)
    np.testing.assert_allclose(v2.schedule.preview(), warm / warm.max())
    assert v2.decision() == "fall back to the source schedule"
    assert v2.explain().endswith("a tie goes to the source schedule")
    with pytest.raises(RefineError, match="source_schedule"):
        verify_refinement(refine(src), src, src, source_schedule=warm[:-1])
    for bad in (-1.0, 0.0, 1.5, float("nan")):
        with pytest.raises(RefineError, match="threshold"):
            verify_refinement(refine(src), src, src, threshold=bad)


def test_runs_of_another_horizon_are_refused() -> None:
    src = warm_start_norms(200)
    s = refine(src, tau=0.1, total_steps=400)
    with pytest.raises(RefineError, match="same horizon"):
        verify_refinement(s, np.ones(200), src)
    long_run = np.interp(np.linspace(0, 199, 400), np.arange(200), src)
    with pytest.raises(RefineError, match="same horizon"):
        verify_refinement(s, long_run, src)


def test_records_use_update_l2_when_both_have_it() -> None:
    src = warm_start_norms()
    a = GradNormRecord.from_arrays({"l2": src, "l1": 30 * src, "update_l2": src})
    b = GradNormRecord.from_arrays({"l2": rising_late(), "update_l2": like(src)})
    c = GradNormRecord.from_arrays({"l2": rising_late()})
    s = refine(a, norm="l1")
    assert check_kind(a, b) == "update_l2"
    v = verify_refinement(s, b, a, adam_type=True)
    assert v.kind == "update_l2" and v.kept  # the update norms say keep; l2 would say no
    assert "update direction (column 'update_l2')" in v.reasons()[0]
    v = verify_refinement(s, c, a)
    assert v.kind == "l2" and not v.kept
    # an Adam-type run checked with gradient norms: the bound check cannot decide
    v = verify_refinement(s, like(src), src, adam_type=True)
    assert not v.kept and v.decided_by == "tie" and v.bound_keeps is False
    assert v.caveat is not None and "Adam-type" in v.caveat
    with pytest.raises(RecordError, match="update_l1"):
        verify_refinement(s, b, a, kind="update_l1")
    d = GradNormRecord.from_arrays({"loss": src}, source="d.csv")
    with pytest.raises(RecordError, match=r"d\.csv.*update_l2 or l2"):
        check_kind(a, d)


def test_refinement_risk_levels() -> None:
    assert (LATE_DECLINE_MODERATE, LATE_DECLINE_HIGH) == (0.95, 0.7)
    assert refinement_risk(np.ones(100)) is None
    assert refinement_risk(np.r_[np.full(10, 5.0), np.ones(90)]) is None  # falls early only
    mild = refinement_risk(np.r_[np.ones(90), np.full(10, 0.85)])
    assert mild is not None and mild.level == "moderate"
    assert mild.late_ratio == pytest.approx(0.85)
    high = refinement_risk(np.r_[np.ones(90), np.full(10, 0.3)], norm="l1")
    assert high is not None and high.level == "high"
    assert "Adam" in high.message() and "Adam" not in mild.message()
    assert "steeply" in high.message() and "steeply" not in mild.message()
    # the message describes the pattern, never study counts
    assert not any(ch.isdigit() for ch in high.message().split("(to")[0])
    with pytest.raises(RefineError):
        refinement_risk([1.0, 2.0])


def _write(path: Path, values: np.ndarray) -> Path:
    with open(path, "w") as f:
        f.write("step,l2\n")
        for i, v in enumerate(values):
            f.write(f"{i},{float(v)!r}\n")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "refinedlr.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_refine_method_verified(tmp_path: Path) -> None:
    src = warm_start_norms()
    T = src.size
    a, b = _write(tmp_path / "src.csv", src), _write(tmp_path / "check.csv", rising_late())
    r = _cli(
        "refine", str(a), "--method", "verified", "--check", str(b), "-o", str(tmp_path / "s.json")
    )
    assert r.returncode == 0, r.stderr
    assert "decision: fall back to linear decay" in r.stdout
    np.testing.assert_allclose(load_schedule(tmp_path / "s.json").preview(), 1 - np.arange(T) / T)
    k = _write(tmp_path / "like.csv", like(src))
    r = _cli(
        "refine", str(a), "--method", "verified", "--check", str(k), "-o", str(tmp_path / "k.json")
    )
    assert r.returncode == 0 and "decision: keep the refined schedule" in r.stdout
    r = _cli(
        "refine", str(a), "--method", "verified", "--check", str(a), "-o", str(tmp_path / "x.json")
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert f"{a}: the same record as {a} (the same steps and norms)" in r.stderr
    np.testing.assert_allclose(load_schedule(tmp_path / "k.json").preview(), refine(src).preview())
    r = _cli("refine", str(a), "--method", "verified", "-o", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "--check" in r.stderr
    r = _cli("refine", str(a), "--check", str(b), "-o", str(tmp_path / "x.json"))
    assert r.returncode == 2


def test_cli_refine_and_show_warn_on_late_decline(tmp_path: Path) -> None:
    falling = _write(tmp_path / "falling.csv", np.r_[np.ones(180), np.full(20, 0.4)])
    flat = _write(tmp_path / "flat.csv", np.ones(200))
    for cmd in (["show", str(falling)], ["refine", str(falling), "-o", str(tmp_path / "r.json")]):
        r = _cli(*cmd)
        assert r.returncode == 0 and "refinedlr: warning:" in r.stderr
        assert "late in training" in r.stderr
    r = _cli("show", str(flat))
    assert r.returncode == 0 and "late in training" not in r.stderr
