"""`refinedlr demo` end to end (quick mode) and its pieces."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from refinedlr.demo import (  # noqa: E402
    ARMS,
    SCHEDULES,
    DemoConfig,
    load_digits_split,
    steps_per_run,
    train_one,
)
from refinedlr.records import read_record  # noqa: E402
from refinedlr.registry import get_schedule  # noqa: E402


def test_data_splits_are_disjoint_and_fixed() -> None:
    a = load_digits_split()
    b = load_digits_split()
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    n_train, n_val, n_test = a[0].shape[0], a[2].shape[0], a[4].shape[0]
    assert n_train + n_val + n_test == 1797
    flat = [t.reshape(t.shape[0], -1) for t in (a[0], a[2], a[4])]
    rows = {tuple(r.tolist()) for r in flat[0]}
    assert not any(tuple(r.tolist()) in rows for r in flat[2])  # no test image in training


@pytest.mark.parametrize("arm", ARMS, ids=lambda a: a.name)
def test_training_run_records_one_row_per_step(arm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = load_digits_split()
    cfg = DemoConfig(epochs=1, seeds=1)
    T = steps_per_run(data, cfg)
    lr = arm.lrs[1]
    run = train_one(arm, get_schedule("linear", T), lr, 0, data, cfg, tmp_path / "n.csv")
    rec = read_record(tmp_path / "n.csv")
    assert len(rec) == T and list(rec.steps) == list(range(T)) and rec.kinds == arm.kinds
    for k in arm.kinds:
        assert np.all(np.isfinite(rec.norms(k))) and np.all(rec.norms(k) > 0)
    assert 0.0 < run.train_loss < 2.5 and 0.0 < run.val_loss < 2.5 and run.test_acc > 0.3
    again = train_one(arm, get_schedule("linear", T), lr, 0, data, cfg, None)
    assert again.val_loss == pytest.approx(run.val_loss, rel=1e-5)  # seeded: reproducible


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "refinedlr.cli",
            "demo",
            "--quick",
            "--no-progress",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| schedule | best LR | final train loss | validation loss | test accuracy |" in r.stdout
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["schedule"] for row in rows} == set(SCHEDULES)
    assert {row["arm"] for row in rows} == {a.name for a in ARMS}
    assert len(rows) == len(ARMS) * len(SCHEDULES) * 2  # x 2 LRs x 1 seed in quick mode
    assert all(np.isfinite(float(row["val_loss"])) for row in rows)
    table = (out / "table.md").read_text()
    for arm in ARMS:
        name = arm.name.lower()
        assert (out / f"{name}_norms_and_schedules.png").stat().st_size > 10_000
        assert f"## {arm.name}" in table
        # the printed verify command reproduces the demo's decision from the files it wrote
        line = next(x for x in table.splitlines() if f"{name}_run1.csv" in x)
        cmd = line.split("`")[1].split()[1:]
        assert cmd[0] == "verify"
        v = subprocess.run(
            [sys.executable, "-m", "refinedlr.cli", *cmd[:-1], str(tmp_path / f"{name}.json")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert v.returncode == 0, v.stderr
        decision = next(x for x in v.stdout.splitlines() if "decision:" in x).split("decision: ")[1]
        assert f"**decision: {decision}**" in table
    assert "Risk diagnosis:" in table and "| **verified** (= " in table
