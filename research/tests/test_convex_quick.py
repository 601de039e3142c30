"""``refinedlr bench convex --quick`` end to end (sklearn-bundled datasets, a temporary dir)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from refinedlr_bench.commands.convex import main
from refinedlr_bench.schedule_arms import DEFAULT_ARMS, EQUAL_TERMS_ARMS, SCHEDULE_ARMS


@pytest.mark.slow
def test_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "quick"
    argv = ["--quick", "--datasets", "iris", "wine", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    for name in (
        "runs.csv",
        "report.md",
        "summary.json",
        "gaps_adam.png",
        "schedules_sgd.png",
        "norms_adam.png",
        "lr_sweeps_sgd.png",
    ):
        assert (out / name).is_file(), name
    with (out / "runs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    schedules = {r["schedule"] for r in rows}
    assert {"linear", "cosine", "refined-0.1", "refined-0.5", "1/t", "wsd"} <= schedules
    assert {"cosine-10", "wsd-1sqrt", "schedule-free"} <= schedules
    assert {r["dataset"] for r in rows} == {"iris", "wine"}
    assert {r["seed"] for r in rows} == {"0", "1", "2"}
    assert set(EQUAL_TERMS_ARMS) <= schedules
    chosen = [r for r in rows if r["chosen"] == "1"]
    assert len(DEFAULT_ARMS) == 12 + len(EQUAL_TERMS_ARMS) == 32
    per_opt = sum(SCHEDULE_ARMS[m].runs_with(o) for m in DEFAULT_ARMS for o in ("adam", "sgd"))
    assert per_opt == 2 * 12 + 14 + 17  # 6 arms are SGD's only, 3 Adam's only
    assert len(chosen) == 2 * per_opt * 3  # datasets x (optimizer, method) x seeds
    assert all(float(r["gap"]) > -1e-9 for r in rows if r["gap"] not in ("inf", "nan"))
    report = (out / "report.md").read_text()
    assert "refinedlr bench convex --quick" in report
    assert "Headline" in report and "Spearman" in report and "vs best baseline" in report
    summary = json.loads((out / "summary.json").read_text())
    assert "adam|cosine" in summary["overall"]
    # a second invocation resumes from the cache and trains nothing
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.split("[1/2]")[-1].count(" 0 training rounds") == 2
