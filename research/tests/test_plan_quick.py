"""``refinedlr bench plan --quick`` end to end (one scikit-learn dataset, the tiny CNN on
synthetic images, the held-out code on a development dataset)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from refinedlr_bench.commands.plan import main


@pytest.mark.slow
def test_quick_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    assert main(["--quick", "--datasets", "iris", "--out", str(out)]) == 0
    for name in (
        "transfer.csv",
        "extension.csv",
        "prediction.csv",
        "runs.csv",
        "deep_transfer.csv",
        "deep_extension.csv",
        "heldout_transfer.csv",
        "heldout_extension.csv",
        "report.md",
        "summary.json",
        "transfer_schedules.png",
        "transfer_horizons.png",
        "extension.png",
        "runlog.jsonl",
    ):
        assert (out / name).is_file(), name
    with (out / "transfer.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows if r["part"] == "schedule"} == {
        "constant",
        "recorded",
        "reuse",
    }
    assert {float(r["horizon"]) for r in rows if r["part"] == "horizon"} == {0.25, 0.5, 2.0, 4.0}
    text = (out / "report.md").read_text()
    for heading in (
        "## 1. Cross-schedule",
        "## 2. Horizon",
        "## 3. Continued",
        "## 4. Loss",
        "## 5. Held-out",
    ):
        assert heading in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quick"] is True and summary["heldout"]["transfer"]["n"] == 6
    # a rerun reads every part from the caches
    assert main(["--quick", "--datasets", "iris", "--out", str(out), "--no-plots"]) == 0
    log = [json.loads(line) for line in (out / "runlog.jsonl").read_text().splitlines()]
    assert len(log) == 2 and log[1]["wall_seconds"] < log[0]["wall_seconds"]
