"""The committed results stay reproducible from their committed caches.

A rerun of ``refinedlr bench deep --task image|lm`` must find every run it needs in
``research/results/deep/<task>/cache`` (same cache key, same schedule fingerprints), so it trains
nothing and rewrites the same report. A change to the library that alters a schedule's
fingerprint or the training configuration shows here first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from refinedlr_bench.deep import DeepSuite, task_spec
from refinedlr_bench.deep_train import DataSource, load_task_data

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.mark.slow
@pytest.mark.parametrize("task", ["image", "lm"])
def test_a_rerun_of_the_deep_suite_trains_nothing(task: str) -> None:
    out = RESULTS / "deep" / task
    if not (out / "cache").is_dir():
        pytest.skip("the committed deep results are not in this checkout")
    spec = task_spec(task)
    try:
        data = load_task_data(DataSource(task=task), spec.config)
    except Exception as exc:  # the dataset is not cached here
        pytest.skip(f"{task} data: {exc}")
    suite = DeepSuite(spec, out, DataSource(task=task), data.fingerprint, workers=0)
    assert suite.cache.is_dir() and len(suite.results) > 20, suite.cache
    assert suite.pending() == []
    outcomes = suite.outcomes()
    assert set(outcomes) == set(spec.protocol.schedules)
    assert all(oc.best is not None for oc in outcomes.values())
