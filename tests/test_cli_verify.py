"""``refinedlr verify RUN1 RUN2 -o NEXT``: the decision, its reasons, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from refinedlr.cli import main
from refinedlr.refinement import refine
from refinedlr.schedule_io import load_schedule, save_schedule
from refinedlr.schedules import LinearDecay

T = 200
SOURCE = np.r_[np.full(T // 10, 8.0), np.ones(T - T // 10)]
ROSE_LATE = np.r_[np.full(T // 10, 8.0), np.ones(T // 2 - T // 10), np.full(T - T // 2, 6.0)]


def write_csv(path: Path, **columns: np.ndarray) -> Path:
    names = list(columns)
    with open(path, "w") as f:
        f.write(",".join(["step", *names]) + "\n")
        for i in range(len(columns[names[0]])):
            f.write(",".join([str(i), *(repr(float(columns[n][i])) for n in names)]) + "\n")
    return path


def write_trainer_state(path: Path, norms: np.ndarray, eval_loss: float) -> Path:
    history = [{"step": i + 1, "grad_norm": float(v), "loss": 1.0} for i, v in enumerate(norms)]
    history.append({"step": len(norms), "eval_loss": eval_loss})
    path.mkdir(parents=True, exist_ok=True)
    (path / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    return path / "trainer_state.json"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_bound_check_decides_without_a_metric(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=ROSE_LATE)
    code, out, _ = run(capsys, str(a), str(b), "-o", str(tmp_path / "next.json"))
    assert code == 0
    assert "bound check (l2 norms)" in out and "threshold 0.95" in out
    assert "no metric given: the bound check decides" in out
    assert "decision: fall back to linear decay" in out
    assert "next run:" in out
    assert load_schedule(tmp_path / "next.json") == LinearDecay(T)
    c = write_csv(tmp_path / "run2b.csv", l2=SOURCE)
    code, out, _ = run(capsys, str(a), str(c), "-o", str(tmp_path / "keep.json"))
    assert code == 0 and "decision: keep the refined schedule" in out
    np.testing.assert_array_equal(
        load_schedule(tmp_path / "keep.json").preview(), refine(SOURCE).preview()
    )


def test_update_l2_is_preferred_and_named(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE, l1=30 * SOURCE, update_l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=ROSE_LATE, l1=30 * ROSE_LATE, update_l2=SOURCE)
    code, out, _ = run(capsys, str(a), str(b), "-o", str(tmp_path / "n.json"))
    assert code == 0 and "bound check (update_l2 norms)" in out
    assert "tau 0.1, l1 norms" in out  # records with update_l2 come from an Adam-type run
    assert "decision: keep the refined schedule" in out


def test_metric_decides_and_disagreement_is_reported(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=SOURCE)
    args = [str(a), str(b), "-o", str(tmp_path / "n.json")]
    code, out, _ = run(capsys, *args, "--metric1", "0.30", "--metric2", "0.31")
    assert code == 0
    assert "supports the refined schedule" in out
    assert "the linear-decay run is better" in out and "disagree; the metric decides" in out
    assert "decision: fall back to linear decay" in out
    code, out, _ = run(
        capsys, *args, "--metric1", "0.90", "--metric2", "0.91", "--higher-is-better"
    )
    assert code == 0 and "agree" in out and "decision: keep the refined schedule" in out


def test_eval_loss_is_read_from_trainer_state(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_trainer_state(tmp_path / "run1", SOURCE, eval_loss=0.50)
    b = write_trainer_state(tmp_path / "run2", SOURCE, eval_loss=0.40)
    code, out, _ = run(capsys, str(a), str(b), "-o", str(tmp_path / "n.json"))
    assert code == 0, out
    assert "metric: eval_loss, read from both trainer_state.json files" in out
    assert "refined run 0.4" in out and "decision: keep the refined schedule" in out
    code, out, _ = run(
        capsys, str(a), str(b), "--metric", "eval_loss", "-o", str(tmp_path / "m.json")
    )
    assert code == 0 and "decision: keep the refined schedule" in out


def test_the_schedule_that_was_used_can_be_given(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=SOURCE)
    used = tmp_path / "refined.json"
    save_schedule(refine(SOURCE, tau=0.3), used)
    code, out, _ = run(
        capsys, str(a), str(b), "--schedule", str(used), "-o", str(tmp_path / "n.json")
    )
    assert code == 0 and f"{used}, on run 2's 200 steps" in out
    assert load_schedule(tmp_path / "n.json") == load_schedule(used)


@pytest.mark.parametrize(
    "case,match",
    [
        ("lengths", r"run1\.csv has 200 steps and .*run2\.csv 150"),
        ("kind", r"run2\.csv.*no update_l2 or l2 column"),
        ("one_metric", "give both --metric1 and --metric2"),
        ("output_is_input", "would overwrite an input file"),
        ("metric_missing", r"run1\.csv.*eval_loss"),
        ("both_metric_ways", "not both"),
    ],
)
def test_bad_input_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, match: str
) -> None:
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=SOURCE)
    out = str(tmp_path / "n.json")
    if case == "lengths":
        write_csv(b, l2=SOURCE[:150])
    if case == "kind":
        write_csv(b, loss=SOURCE)
    extra = {
        "one_metric": ["--metric1", "0.3"],
        "metric_missing": ["--metric", "eval_loss"],
        "both_metric_ways": ["--metric", "x", "--metric1", "1", "--metric2", "2"],
    }.get(case, [])
    args = [str(a), str(b), *extra, "-o", str(a) if case == "output_is_input" else out]
    code, _, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("refinedlr: error:"), err
    assert __import__("re").search(match, lines[0]), lines[0]
    assert not Path(out).exists()


def test_run_1s_own_schedule_is_scored_and_is_the_fallback(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=ROSE_LATE)
    warm = tmp_path / "linear_warm.json"
    save_schedule(LinearDecay(T, warmup=10), warm)
    code, out, _ = run(
        capsys, str(a), str(b), "--source-schedule", str(warm), "-o", str(tmp_path / "n.json")
    )
    assert code == 0 and "decision: fall back to linear decay" in out
    assert load_schedule(tmp_path / "n.json") == LinearDecay(T, warmup=10)
    code, plain, _ = run(capsys, str(a), str(b), "-o", str(tmp_path / "m.json"))
    lines = [x for text in (out, plain) for x in text.splitlines()]
    ratio = [float(x.split("= ")[1].split(",")[0]) for x in lines if "bound check (" in x]
    assert ratio[0] != ratio[1]  # the bound of run 1 is that of the schedule it used
    code, _, err = run(
        capsys, str(a), str(b), "--source-schedule", "nonsense", "-o", str(tmp_path / "x.json")
    )
    assert code == 2 and "unknown schedule name 'nonsense'" in err
