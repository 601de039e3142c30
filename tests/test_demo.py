"""`refinedlr demo` end to end (quick mode) and its pieces."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refinedlr.demo import DemoConfig, load_digits_split, train_one  # noqa: E402
from refinedlr.records import read_record  # noqa: E402
from refinedlr.registry import get_schedule  # noqa: E402


def test_training_run_records_one_norm_per_step(tmp_path: Path) -> None:
    data = load_digits_split()
    cfg = DemoConfig(epochs=1, seeds=1)
    T = data[0].shape[0] // cfg.batch_size
    run = train_one(get_schedule("linear", T), 0.05, 0, data, cfg, tmp_path / "n.csv")
    rec = read_record(tmp_path / "n.csv")
    assert len(rec) == T and list(rec.steps) == list(range(T))
    assert np.all(np.isfinite(rec.norms("l2"))) and np.all(rec.norms("l2") > 0)
    assert run.norms is not None and run.norms.shape == (T,)
    assert 0.0 < run.train_loss < 2.5 and run.test_acc > 0.3
    again = train_one(get_schedule("linear", T), 0.05, 0, data, cfg, None)
    assert again.train_loss == pytest.approx(run.train_loss, rel=1e-5)  # seeded: reproducible


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
    assert "| schedule | best LR | final train loss | test accuracy |" in r.stdout
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["schedule"] for row in rows} == {"linear", "refined", "cosine", "step"}
    assert len(rows) == 4 * 2  # 4 schedules x 2 LRs x 1 seed in quick mode
    assert all(np.isfinite(float(row["final_train_loss"])) for row in rows)
    assert (out / "norms_and_schedules.png").stat().st_size > 10_000
    table = (out / "table.md").read_text()
    assert "Refined from the best linear run" in table
