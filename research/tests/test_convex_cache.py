"""The convex benchmark's driver: resume from the cache, refined schedules from linear runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from refinedlr import get_schedule, refine

from refinedlr_bench import convex
from refinedlr_bench.convex import ConvexProtocol, TabularData, run_dataset
from refinedlr_bench.schedule_arms import (
    SCHEDULE_ARMS,
    ArmContext,
    ScheduleArm,
    register_schedule_arm,
)

PROTOCOL = ConvexProtocol(
    seeds=(0, 1),
    epochs=2,
    grid=(("adam", -8, -4), ("sgd", -2, 2)),
    grid_step=2,
    fine_step=1,
    extend_points=2,
    l2=1e-3,
)
METHOD_NAMES = ("cosine", "linear", "refined-0.5")


def _data() -> TabularData:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=100) > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return TabularData("toy", X[:80], y[:80], X[80:], y[80:], 3)


def test_second_run_trains_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _data()
    first = run_dataset(data, PROTOCOL, methods=METHOD_NAMES, cache_root=tmp_path, progress=False)
    assert first.rounds >= 2 and first.trained_runs > 0  # refined needs a second round
    chosen = {(o, m): first.chosen(o, m).k for o in ("adam", "sgd") for m in METHOD_NAMES}

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached configuration was trained again")

    monkeypatch.setattr(convex, "train_batched", no_training)
    second = run_dataset(data, PROTOCOL, methods=METHOD_NAMES, cache_root=tmp_path, progress=False)
    assert second.rounds == 0 and second.trained_runs == 0
    assert all(c.cached for c in second.cells)
    assert {(o, m): second.chosen(o, m).k for o in ("adam", "sgd") for m in METHOD_NAMES} == chosen
    for o in ("adam", "sgd"):
        for m in METHOD_NAMES:
            np.testing.assert_array_equal(second.chosen(o, m).gap, first.chosen(o, m).gap)
        np.testing.assert_allclose(second.linear_norms[o], first.linear_norms[o])


def test_partial_cache_trains_only_the_missing(tmp_path: Path) -> None:
    data = _data()
    first = run_dataset(
        data,
        PROTOCOL,
        methods=("linear",),
        optimizers=("sgd",),
        cache_root=tmp_path,
        progress=False,
    )
    (cache_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    cells = json.loads((cache_dir / "cells.json").read_text())
    dropped = sorted(cells)[0]
    del cells[dropped]
    (cache_dir / "cells.json").write_text(json.dumps(cells))
    second = run_dataset(
        data,
        PROTOCOL,
        methods=("linear",),
        optimizers=("sgd",),
        cache_root=tmp_path,
        progress=False,
    )
    assert second.trained_runs == len(PROTOCOL.seeds)  # one configuration, every seed
    assert second.chosen("sgd", "linear").k == first.chosen("sgd", "linear").k


def test_changed_protocol_does_not_reuse_results(tmp_path: Path) -> None:
    data = _data()
    run_dataset(
        data,
        PROTOCOL,
        methods=("linear",),
        optimizers=("adam",),
        cache_root=tmp_path,
        progress=False,
    )
    other = ConvexProtocol(**{**PROTOCOL.__dict__, "l2": 1e-2})
    again = run_dataset(
        data, other, methods=("linear",), optimizers=("adam",), cache_root=tmp_path, progress=False
    )
    assert again.trained_runs > 0


def test_refined_schedule_comes_from_the_best_linear_run(tmp_path: Path) -> None:
    data = _data()
    oc = run_dataset(data, PROTOCOL, methods=METHOD_NAMES, cache_root=tmp_path, progress=False)
    for opt, col, kind in (("adam", 0, "l1"), ("sgd", 1, "l2")):
        lin = oc.chosen(opt, "linear")
        norms = oc.linear_norms[opt]
        assert norms.shape == (oc.total_steps, 2) and np.all(norms > 0)
        expected = refine(norms[:, col], tau=0.5, norm=kind)  # type: ignore[arg-type]
        np.testing.assert_allclose(oc.schedules[(opt, "refined-0.5")].preview(), expected.preview())
        # every method starts from the same grid
        assert set(oc.grids[(opt, "linear")].ks) & set(oc.grids[(opt, "refined-0.5")].ks)
        assert lin.k in oc.grids[(opt, "linear")].ks
        # the bound of every schedule is finite and linear's is computed from these norms
        assert np.isfinite(oc.bound(opt, "cosine")) and np.isfinite(oc.bound(opt, "linear"))


def test_a_registered_method_is_run(tmp_path: Path) -> None:
    def build(ctx: ArmContext):  # type: ignore[no-untyped-def]
        return get_schedule("polynomial", ctx.total_steps, power=2.0)

    register_schedule_arm(ScheduleArm("poly2", build, description="(1 - t/T)^2"))
    try:
        oc = run_dataset(
            _data(),
            PROTOCOL,
            methods=("poly2",),
            optimizers=("sgd",),
            cache_root=tmp_path,
            progress=False,
        )
        assert oc.chosen("sgd", "poly2") is not None
        assert ("sgd", "linear") not in oc.grids  # not needed by poly2
    finally:
        del SCHEDULE_ARMS["poly2"]
