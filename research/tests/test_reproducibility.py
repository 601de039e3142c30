"""A convex run is reproducible bit for bit: rerun from scratch, or resumed after a crash.

(What is *not* reproduced bit for bit, by design of the batched trainer, is a configuration
trained in a different batch of configurations; see :mod:`refinedlr_bench.cpu_kernels`.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from refinedlr_bench.convex import ConvexProtocol, DatasetOutcome, TabularData, run_dataset
from refinedlr_bench.logreg import train_batched
from refinedlr_bench.schedule_arms import EQUAL_TERMS_ARMS

PROTOCOL = ConvexProtocol(
    seeds=(0, 1, 2),
    epochs=3,
    grid=(("adam", -8, -4), ("sgd", -2, 2)),
    l2=1e-3,
)
ARMS = ("cosine", "linear", "refined-0.1")


def _data() -> TabularData:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return TabularData("toy", X[:96], y[:96], X[96:], y[96:], 3)


def _cells(outcome: DatasetOutcome) -> dict[tuple[str, str, int], bytes]:
    return {
        (c.optimizer, c.method, c.k): np.stack([c.objective, c.test_acc]).tobytes()
        for c in outcome.cells
    }


def test_the_batched_trainer_is_deterministic() -> None:
    data = _data()
    T = 2 * (96 // 16)
    lrs = np.stack([np.full(T, 0.5), np.linspace(0.1, 0.0, T), np.full(T, 0.01)])
    a, b = (
        train_batched(
            data.X_train,
            data.y_train,
            3,
            lrs,
            adam=[False, True, True],
            seeds=[0, 1],
            epochs=2,
            l2=1e-3,
        )
        for _ in range(2)
    )
    assert a.norms is not None and b.norms is not None
    assert a.weights.tobytes() == b.weights.tobytes()
    assert a.norms.tobytes() == b.norms.tobytes()


def test_a_rerun_from_scratch_gives_the_same_bits(tmp_path: Path) -> None:
    data = _data()
    first = run_dataset(data, PROTOCOL, methods=ARMS, cache_root=tmp_path / "a", progress=False)
    second = run_dataset(data, PROTOCOL, methods=ARMS, cache_root=tmp_path / "b", progress=False)
    assert second.trained_runs == first.trained_runs > 0
    assert _cells(second) == _cells(first)


def test_a_run_resumed_after_a_crash_gives_the_same_bits(tmp_path: Path) -> None:
    data = _data()
    full = run_dataset(data, PROTOCOL, methods=ARMS, cache_root=tmp_path / "a", progress=False)
    assert full.rounds >= 3
    # a crash while training the last round: the cells of earlier rounds are on disk, not its own
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (store,) = (tmp_path / "b").glob("toy-*/cells.json")
    cells = json.loads(store.read_text())
    kept = {k: v for k, v in cells.items() if v["round"] < full.rounds}
    assert 0 < len(kept) < len(cells)
    store.write_text(json.dumps(kept))
    resumed = run_dataset(data, PROTOCOL, methods=ARMS, cache_root=tmp_path / "b", progress=False)
    assert resumed.rounds == 1 and resumed.trained_runs < full.trained_runs
    assert _cells(resumed) == _cells(full)


def test_the_equal_terms_arms_leave_the_other_arms_bits_alone(tmp_path: Path) -> None:
    """Issue 20's arms train in batch groups of their own: adding them changes no bit of the
    other arms' results (so the committed runs stay as they were)."""
    data = _data()
    arms = (*ARMS, "schedule-free")
    alone = run_dataset(data, PROTOCOL, methods=arms, cache_root=tmp_path / "a", progress=False)
    both = run_dataset(
        data, PROTOCOL, methods=(*arms, *EQUAL_TERMS_ARMS), cache_root=tmp_path / "b",
        progress=False,
    )  # fmt: skip
    cells = _cells(both)
    assert {k: cells[k] for k in _cells(alone)} == _cells(alone)
    ran = {(o, m) for o, m, _k in cells}
    assert ("sgd", "refined-0.1-mom") in ran and ("sgd", "linear-b2-0.999") not in ran
    assert ("adam", "linear-mom") not in ran and ("adam", "sf-beta-0") in ran
    assert len(ran) == len({(o, m) for o, m, _k in _cells(alone)}) + 14 + 17
