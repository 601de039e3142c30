"""refine(..., method="verified"), verify_refinement and refinement_risk (the refinement study)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from refinedlr.bounds import best_scale
from refinedlr.records import GradNormRecord
from refinedlr.refine import (
    METHODS,
    VERIFY_THRESHOLD,
    RefineError,
    refine,
    refine_details,
    refinement_risk,
    verify_refinement,
)
from refinedlr.schedule_io import load_schedule

PAPER_NORMS = [9, 7, 5, 3, 2, 1, 1, 1, 1.5, 2, 2.5, 3]
PAPER_L2_TAU25 = [
    0.018168, 0.029894, 0.058061, 0.157186, 0.332934, 1.0,
    0.668264, 0.336528, 0.084040, 0.026539, 0.008492, 0.0,
]  # fmt: skip


def warm_start_norms(T: int = 200) -> np.ndarray:
    """Large early norms, flat afterwards: refinement creates a warm-up (the study's wins)."""
    return np.r_[np.full(T // 10, 8.0), np.ones(T - T // 10)]


def test_methods_and_default_is_the_paper() -> None:
    assert METHODS == ("paper", "verified")
    assert VERIFY_THRESHOLD == 0.95
    a = refine(PAPER_NORMS, tau=0.25, norm="l2")
    b = refine(PAPER_NORMS, tau=0.25, norm="l2", method="paper")
    np.testing.assert_allclose(a.preview(), PAPER_L2_TAU25, atol=1e-6)
    np.testing.assert_array_equal(a.preview(), b.preview())
    assert a.fingerprint() == b.fingerprint()
    assert refine_details(PAPER_NORMS, tau=0.25).verification is None


def test_unknown_method_and_missing_check() -> None:
    with pytest.raises(RefineError, match="method must be one of"):
        refine(PAPER_NORMS, method="magic")  # type: ignore[arg-type]
    with pytest.raises(RefineError, match="needs check_norms"):
        refine(PAPER_NORMS, method="verified")


def test_verified_keeps_when_the_refined_run_supports_it() -> None:
    src = warm_start_norms()
    paper = refine(src, tau=0.1)
    d = refine_details(src, tau=0.1, method="verified", check_norms=src)
    assert d.verification is not None and d.verification.kept
    np.testing.assert_array_equal(d.schedule.values, paper.values)
    assert d.schedule.provenance["method"] == "verified"
    assert d.schedule.provenance["verify_kept"] is True
    # the ratio is the bound of each schedule on its own record, at its best scale
    T = src.size
    expect = best_scale(paper.preview(), src)[1] / best_scale(1 - np.arange(T) / T, src)[1]
    assert d.verification.bound_ratio == pytest.approx(expect)
    assert d.verification.bound_ratio < 0.5


def test_verified_falls_back_when_the_refined_run_contradicts_it() -> None:
    src = warm_start_norms()
    T = src.size
    rising = np.r_[np.full(T // 10, 8.0), np.ones(T // 2 - T // 10), np.full(T - T // 2, 6.0)]
    s = refine(src, tau=0.1, method="verified", check_norms=rising)
    np.testing.assert_allclose(s.preview(), 1 - np.arange(T) / T)  # linear decay
    assert s.provenance["verify_kept"] is False
    assert s.provenance["verify_bound_ratio"] >= 0.95


def test_threshold_and_source_schedule() -> None:
    src = warm_start_norms()
    v_lo = verify_refinement(refine(src), src, src, threshold=1e-3)
    assert not v_lo.kept
    warm = np.minimum(1.0, (np.arange(src.size) + 1) / 10) * (1 - np.arange(src.size) / src.size)
    v = verify_refinement(refine(src), src, src, source_schedule=warm, threshold=10.0)
    assert v.kept
    v2 = verify_refinement(refine(src), src, src, source_schedule=warm, threshold=1e-3)
    np.testing.assert_allclose(v2.schedule.preview(), warm / warm.max())
    with pytest.raises(RefineError, match="source_schedule"):
        verify_refinement(refine(src), src, src, source_schedule=warm[:-1])
    with pytest.raises(RefineError, match="verify_threshold"):
        verify_refinement(refine(src), src, src, threshold=-1.0)


def test_check_record_is_resampled_and_records_pick_a_column() -> None:
    src = warm_start_norms(200)
    s = refine(src, tau=0.1, total_steps=400)
    long_run = np.interp(np.linspace(0, 199, 400), np.arange(200), src)
    v = verify_refinement(s, long_run[::2], src)  # a 200-step check record on a 400-step run
    assert v.kept and v.schedule.total_steps == 400
    rec = GradNormRecord.from_arrays({"l1": 30 * src, "update": src})
    d = refine_details(rec, norm="l1", method="verified", check_norms=rec, check_kind="update")
    assert d.verification is not None and d.verification.kept


def test_l1_without_a_step_record_warns() -> None:
    src = warm_start_norms()
    with pytest.warns(UserWarning, match="update direction"):
        refine(src, norm="l1", method="verified", check_norms=src)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refine(src, norm="l1", method="verified", check_norms=src, source_check_norms=src)


def test_refinement_risk_levels() -> None:
    assert refinement_risk(np.ones(100)) is None
    assert refinement_risk(np.r_[np.full(10, 5.0), np.ones(90)]) is None  # falls early only
    mild = refinement_risk(np.r_[np.ones(90), np.full(10, 0.85)])
    assert mild is not None and mild.level == "moderate"
    assert mild.late_ratio == pytest.approx(0.85)
    high = refinement_risk(np.r_[np.ones(90), np.full(10, 0.3)], norm="l1")
    assert high is not None and high.level == "high"
    assert "6 of 6" in high.message() and "Adam" in high.message()
    assert "Adam" not in mild.message()
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
    rising = np.r_[np.full(T // 10, 8.0), np.ones(T // 2 - T // 10), np.full(T - T // 2, 6.0)]
    a, b = _write(tmp_path / "src.csv", src), _write(tmp_path / "check.csv", rising)
    r = _cli(
        "refine", str(a), "--method", "verified", "--check", str(b), "-o", str(tmp_path / "s.json")
    )
    assert r.returncode == 0, r.stderr
    assert "fell back to linear decay" in r.stdout
    np.testing.assert_allclose(load_schedule(tmp_path / "s.json").preview(), 1 - np.arange(T) / T)
    r = _cli(
        "refine", str(a), "--method", "verified", "--check", str(a), "-o", str(tmp_path / "k.json")
    )
    assert r.returncode == 0 and "kept the refined schedule" in r.stdout
    np.testing.assert_allclose(load_schedule(tmp_path / "k.json").preview(), refine(src).preview())
    r = _cli("refine", str(a), "--method", "verified", "-o", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "--check" in r.stderr
    r = _cli("refine", str(a), "--check", str(b), "-o", str(tmp_path / "x.json"))
    assert r.returncode == 2


def test_cli_show_warns_on_late_decline(tmp_path: Path) -> None:
    falling = _write(tmp_path / "falling.csv", np.r_[np.ones(180), np.full(20, 0.4)])
    flat = _write(tmp_path / "flat.csv", np.ones(200))
    r = _cli("show", str(falling))
    assert r.returncode == 0 and "refinedlr: warning:" in r.stderr and "6 of 6" in r.stderr
    r = _cli("show", str(flat))
    assert r.returncode == 0 and "lost" not in r.stderr
