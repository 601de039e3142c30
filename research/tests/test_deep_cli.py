"""``refinedlr bench deep`` end to end on synthetic data: outputs, resume, data errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from refinedlr import load_schedule, read_record

from refinedlr_bench.commands.deep import build_parser, main, spec_from_args
from refinedlr_bench.deep_data import synthetic_text

TINY = ["--quick", "--synthetic", "--tiny", "--workers", "0"]


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "runs.csv").open() as fh:
        return list(csv.DictReader(fh))


def _runlog(out: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (out / "runlog.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_lm_end_to_end_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "lm"
    assert main(["--task", "lm", *TINY, "--out", str(out)]) == 0
    for name in (
        "runs.csv",
        "report.md",
        "summary.json",
        "refined_schedule.json",
        "refinement.csv",
        "norms_and_schedules.png",
        "lr_sweep.png",
        "curves.png",
    ):
        assert (out / name).is_file(), name
    rows = _rows(out)
    assert {r["schedule"] for r in rows} == {"linear", "cosine", "wsd", "refined"}
    assert {r["seed"] for r in rows} == {"0", "1"}
    for r in rows:  # every run recorded one row per optimizer step
        rec = read_record(out / r["record"])
        assert len(rec) == 12 and rec.kinds == ("l2", "l1")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["refine_source"]["kind"] == "l1"
    assert set(summary["emergent"]["refined"]) >= {"peak_step", "warmup_steps"}
    refined = load_schedule(out / "refined_schedule.json")
    assert refined.total_steps == 12 and refined.preview().max() == pytest.approx(1.0)
    report = (out / "report.md").read_text()
    assert "What reproduced" in report and "implied warm-up" in report

    # a second invocation trains nothing and reports the same runs
    assert main(["--task", "lm", *TINY, "--no-plots", "--out", str(out)]) == 0
    log = _runlog(out)
    assert log[0]["trained_runs"] == len(rows) and log[1]["trained_runs"] == 0
    assert _rows(out) == rows


@pytest.mark.slow
def test_image_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "image"
    argv = ["--task", "image", *TINY, "--no-plots", "--out", str(out)]
    assert main(argv) == 0
    rows = _rows(out)
    assert {r["schedule"] for r in rows} == {"linear", "cosine", "wsd", "step", "refined"}
    chosen = [r for r in rows if r["chosen"] == "1"]
    assert len(chosen) == 5 * 2  # schedules x seeds
    for r in rows:
        assert len(read_record(out / r["record"])) == 12
    assert not (out / "lr_sweep.png").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["refine_source"]["kind"] == "l2"
    # every other schedule's grid is centred on linear decay's chosen LR
    best = summary["schedules"]["linear"]["best_index"]
    for name in ("cosine", "wsd", "step", "refined"):
        grid = [int(j) for j in summary["schedules"][name]["grid"]]
        assert {best - 1, best, best + 1} <= set(grid)


def test_user_text_file_and_subset(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text(synthetic_text(20_000, seed=3), encoding="utf-8")
    out = tmp_path / "user"
    argv = ["--task", "lm", *TINY, "--steps", "8", "--schedules", "refined", "--seeds", "1"]
    argv += ["--data-path", str(text), "--no-plots", "--out", str(out)]
    argv.remove("--synthetic")
    assert main(argv) == 0
    rows = _rows(out)
    assert {r["schedule"] for r in rows} == {"linear", "refined"}  # refined needs linear
    assert {r["seed"] for r in rows} == {"0"}


def test_missing_data_says_how_to_fetch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    argv = ["--task", "image", "--quick", "--data-dir", str(empty), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "refinedlr data fetch fashion-mnist" in err


def test_spec_from_args() -> None:
    args = build_parser().parse_args(["--task", "image", "--seeds", "3", "--extra-seeds", "2"])
    spec = spec_from_args(args)
    assert spec.protocol.grid_seeds == (0, 1, 2) and spec.protocol.extra_seeds == (3, 4)
    assert spec.protocol.final_seeds == (0, 1, 2, 3, 4)
    spec = spec_from_args(build_parser().parse_args(["--task", "lm"]))
    assert spec.protocol.norm == "l1" and "step" not in spec.protocol.schedules
    assert spec.protocol.grid_seeds == (0, 1) and spec.protocol.extra_seeds == (2,)
    spec = spec_from_args(build_parser().parse_args(["--task", "image", "--steps", "50"]))
    assert spec.steps == 50 and spec.protocol.norm == "l2"


@pytest.mark.slow
@pytest.mark.multiprocess
def test_worker_processes(tmp_path: Path) -> None:
    out = tmp_path / "mp"
    argv = ["--task", "lm", "--quick", "--synthetic", "--tiny", "--workers", "2"]
    argv += ["--schedules", "refined", "--no-plots", "--out", str(out)]
    assert main(argv) == 0
    rows = _rows(out)
    assert {r["schedule"] for r in rows} == {"linear", "refined"}
    assert len({(r["schedule"], r["lr_index"], r["seed"]) for r in rows}) == len(rows)
