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
LIKE = SOURCE * (1 + 0.01 * np.sin(np.arange(T)))  # another run with about the same norms
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
    assert "bound check on l2 gradient norms (column 'l2'), refined run / linear-decay run: " in out
    assert "above 1.053: favours linear decay (how sure: clear)" in out
    assert "verify: metric: none given" in out and "verify: decided by the bound check" in out
    assert "decision: fall back to linear decay" in out
    assert "next run:" in out
    assert load_schedule(tmp_path / "next.json") == LinearDecay(T)
    c = write_csv(tmp_path / "run2b.csv", l2=LIKE)
    code, out, _ = run(capsys, str(a), str(c), "-o", str(tmp_path / "keep.json"))
    assert code == 0 and "decision: keep the refined schedule" in out
    np.testing.assert_array_equal(
        load_schedule(tmp_path / "keep.json").preview(), refine(SOURCE).preview()
    )


def test_update_l2_is_preferred_and_named(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE, l1=30 * SOURCE, update_l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=ROSE_LATE, l1=30 * ROSE_LATE, update_l2=LIKE)
    code, out, err = run(capsys, str(a), str(b), "-o", str(tmp_path / "n.json"))
    assert (
        code == 0 and "bound check on l2 norms of the update direction (column 'update_l2')" in out
    )
    assert "tau 0.1, l1 norms" in out  # records with update_l2 come from an Adam-type run
    assert "verify: norm: l1: the record has update-direction norms" in out
    assert "warning" not in err
    assert "decision: keep the refined schedule" in out


def test_metric_decides_and_disagreement_is_reported(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=LIKE)
    args = [str(a), str(b), "-o", str(tmp_path / "n.json")]
    code, out, _ = run(capsys, *args, "--metric1", "0.30", "--metric2", "0.31")
    assert code == 0
    assert "favours the refined schedule (how sure: clear)" in out
    assert "the linear-decay run is better by 0.01, how sure: unknown" in out
    assert "verify: decided by the metric (how sure: unknown): difference 0.01" in out
    assert "decision: fall back to linear decay" in out
    code, out, _ = run(
        capsys, *args, "--metric1", "0.90", "--metric2", "0.91", "--higher-is-better"
    )
    assert code == 0 and "decision: keep the refined schedule" in out
    # with the seed spread, a difference within it is a tie and the bound check decides
    code, out, _ = run(
        capsys, *args, "--metric1", "0.30", "--metric2", "0.31", "--metric-spread", "0.02"
    )
    assert code == 0 and "within the seed spread (sd 0.02): a tie" in out
    assert "verify: decided by the bound check (how sure: clear)" in out
    assert "decision: keep the refined schedule" in out
    code, _, err = run(capsys, *args, "--metric1", "1", "--metric2", "2", "--metric-spread", "-1")
    assert code == 2 and "--metric-spread must be a number >= 0" in err


def test_the_same_record_twice_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE)
    copy = write_csv(tmp_path / "copy.csv", l2=SOURCE)
    for b in (a, copy):
        code, out, err = run(capsys, str(a), str(b), "-o", str(tmp_path / "n.json"))
        assert code == 2 and out == "" and err.count("\n") == 1
        assert err == (
            f"refinedlr: error: {b}: the same record as {a} (the same steps and norms): verify "
            "needs the record of a second run, one that used the refined schedule\n"
        )
        assert not (tmp_path / "n.json").exists()


def test_eval_loss_is_read_from_trainer_state(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = write_trainer_state(tmp_path / "run1", SOURCE, eval_loss=0.50)
    b = write_trainer_state(tmp_path / "run2", LIKE, eval_loss=0.40)
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
    b = write_csv(tmp_path / "run2.csv", l2=LIKE)
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
        ("zero_schedule", r"zeros\.npy: the schedule is zero everywhere"),
    ],
)
def test_bad_input_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, match: str
) -> None:
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=LIKE)
    out = str(tmp_path / "n.json")
    if case == "lengths":
        write_csv(b, l2=SOURCE[:150])
    if case == "kind":
        write_csv(b, loss=SOURCE)
    np.save(tmp_path / "zeros.npy", np.zeros(T))
    extra = {
        "zero_schedule": ["--schedule", str(tmp_path / "zeros.npy")],
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
    ratio = [float(x.split("ratio ")[1].split(",")[0]) for x in lines if "bound check on" in x]
    assert ratio[0] != ratio[1]  # the bound of run 1 is that of the schedule it used
    code, _, err = run(
        capsys, str(a), str(b), "--source-schedule", "nonsense", "-o", str(tmp_path / "x.json")
    )
    assert code == 2 and "unknown schedule name 'nonsense'" in err


def test_a_source_schedule_name_too_long_to_be_a_file_is_refused_as_a_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_csv(tmp_path / "run1.csv", l2=SOURCE)
    b = write_csv(tmp_path / "run2.csv", l2=ROSE_LATE)
    long = "x" * 300  # longer than a file name may be (ENAMETOOLONG when looked up)
    code, _, err = run(
        capsys, str(a), str(b), "--source-schedule", long, "-o", str(tmp_path / "x.json")
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "unknown schedule name 'xxx" in lines[0], err
    assert not (tmp_path / "x.json").exists()
