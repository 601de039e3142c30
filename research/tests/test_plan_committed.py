"""The committed planning evidence: the deep part reruns from its committed cache without
training, and the committed tables agree with themselves and with the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from refinedlr_bench.plan_tables import read_rows

RESULTS = Path(__file__).resolve().parents[1] / "results" / "plan"
REPO = Path(__file__).resolve().parents[2]


def test_deep_part_reruns_from_the_committed_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from refinedlr_bench import plan_deep

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a committed deep run was trained again")

    monkeypatch.setattr(plan_deep, "train_image", refuse)
    monkeypatch.setattr(plan_deep, "train_lm", refuse)
    for task in ("image", "lm"):
        (tmp_path / "cache" / "deep" / task).mkdir(parents=True)
        for f in (RESULTS / "cache" / "deep" / task).glob("*.json"):
            shutil.copy(f, tmp_path / "cache" / "deep" / task / f.name)
    monkeypatch.chdir(REPO)  # the committed deep suite's cache is read relative to the root
    plan_deep.run(tmp_path, quick=False, data_dir=None, log=None)
    for name in ("deep_transfer.csv", "deep_extension.csv"):
        assert read_rows(tmp_path / name) == read_rows(RESULTS / name), name


def test_committed_tables_are_consistent() -> None:
    for name in ("transfer.csv", "heldout_transfer.csv"):
        rows = read_rows(RESULTS / name)
        assert rows, name
        for r in rows:
            assert float(r["regret"]) == pytest.approx(
                float(r["gap"]) / float(r["best_gap"]), rel=1e-8
            )
    dev = {r["dataset"] for r in read_rows(RESULTS / "transfer.csv")}
    held = {r["dataset"] for r in read_rows(RESULTS / "heldout_transfer.csv")}
    frozen = json.loads((RESULTS / "heldout.json").read_text())
    assert len(dev) == 19 and held == set(frozen["datasets"]) and not dev & held
    assert frozen["design"]["transfer"] == "constant"
    summary = json.loads((RESULTS / "summary.json").read_text())
    text = (RESULTS / "report.md").read_text()
    g = summary["heldout"]["transfer"]["geomean"]
    assert f"{g[0]:.3g} [{g[1]:.3g}, {g[2]:.3g}]" in text
