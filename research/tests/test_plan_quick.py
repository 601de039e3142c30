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


def test_extension_part_rewrites_only_the_continuations(tmp_path: Path) -> None:
    # --parts extension retrains the continued-training part alone; the other parts' rows of
    # runs.csv stay as they were (here: a stand-in row of another part and of another dataset)
    out = tmp_path / "plan"
    out.mkdir()
    keep = [
        "iris,schedule,adam,cosine/constant,70,0.5,0,1e-3,0.1,0.9",
        "iris,extension,adam,stale,140,0.5,0,1,1,0.5",
        "wine,horizon,sgd,linear@2x/constant,140,0.1,0,2e-3,0.2,0.8",
    ]
    header = "dataset,part,optimizer,arm,steps,lr,seed,gap,objective,test_acc"
    (out / "runs.csv").write_text("\n".join([header, *keep]) + "\n")
    (out / "extension.csv").write_text("dataset,arm\niris,stale\n")
    argv = ["--quick", "--parts", "extension", "--datasets", "iris", "--out", str(out)]
    assert main(argv) == 0
    with (out / "extension.csv").open() as fh:
        ext = list(csv.DictReader(fh))
    arms = {"extend", "extend-rescale", "extend-cooldown", "extend-recorded", "same-lr"}
    assert arms | {"rewarm-cosine"} == {r["arm"] for r in ext}
    assert {r["norms"] for r in ext if r["arm"] == "extend-recorded"} == {"recorded"}
    assert all(float(r["gap"]) > 0 and float(r["fresh_gap"]) > 0 for r in ext)
    with (out / "runs.csv").open() as fh:
        runs = list(csv.DictReader(fh))
    assert ",".join(runs[0].values()) == keep[0] and ",".join(runs[-1].values()) == keep[2]
    assert "stale" not in {r["arm"] for r in runs}
    assert {r["arm"] for r in runs if r["part"] == "extension"} == {r["arm"] for r in ext}
    # the default parts are unchanged: the extension part runs only when asked for
    from refinedlr_bench.commands.plan import build_parser

    assert "extension" not in build_parser().parse_args([]).parts
