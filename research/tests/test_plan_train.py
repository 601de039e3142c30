"""The planning evidence's trainer: exact LRs, any horizon, the cache, the LR search, the import
of the committed convex results."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refinedlr import Cosine, LinearDecay, WarmupStableDecay  # noqa: E402

from refinedlr_bench.convex import ConvexProtocol, TabularData, load_data  # noqa: E402
from refinedlr_bench.grid import lr_of  # noqa: E402
from refinedlr_bench.logreg import add_bias, batch_indices, objective, solve_optimum  # noqa: E402
from refinedlr_bench.plan_train import Config, PlanStore, padded_lrs, prefix, train, tune  # noqa: E402

L2 = 1e-4


def _data(n: int = 53, d: int = 4, K: int = 3, seed: int = 0) -> TabularData:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, K))
    y = np.argmax(X @ W + rng.gumbel(size=(n, K)), axis=1).astype(np.int64)
    return TabularData("toy", X, y, X[:10], y[:10], K)


def _reference(data: TabularData, lrs: np.ndarray, *, adam: bool, seed: int) -> float:
    """f(x_T) of one run with torch autograd and torch.optim in float64, stopped after
    ``len(lrs)`` steps (the data order of ``batch_indices``, enough epochs to cover them)."""
    Xa = torch.tensor(add_bias(data.X_train))
    yt = torch.tensor(data.y_train)
    D, K = Xa.shape[1], data.n_classes
    W = torch.zeros(D, K, dtype=torch.float64, requires_grad=True)
    opt = (
        torch.optim.Adam([W], lr=1.0, betas=(0.9, 0.95), eps=1e-8)
        if adam
        else torch.optim.SGD([W], lr=1.0)
    )
    spe = len(data.X_train) // 16
    order = batch_indices(len(data.X_train), 16, -(-len(lrs) // spe), seed)
    for t in range(len(lrs)):
        for group in opt.param_groups:
            group["lr"] = float(lrs[t])
        opt.zero_grad()
        i = torch.as_tensor(order[t])
        loss = (
            torch.nn.functional.cross_entropy(Xa[i] @ W, yt[i]) + 0.5 * L2 * (W[: D - 1] ** 2).sum()
        )
        loss.backward()
        opt.step()
    return float(objective(data.X_train, data.y_train, W.detach().numpy(), l2=L2))


@pytest.mark.parametrize("adam", [True, False])
def test_trains_at_the_exact_lr_and_horizon(tmp_path: Path, adam: bool) -> None:
    """A run at an LR off the grid ``2^(k/2)`` over a horizon that is not a whole number of
    epochs (53 rows, batch 16: 3 steps per epoch; 10 steps) ends where torch.optim does at that LR
    after 10 steps; a run 2% off that LR ends measurably elsewhere."""
    data = _data()
    protocol = ConvexProtocol(seeds=(0, 1))
    store = PlanStore(tmp_path)
    lr = 0.0123 if adam else 0.123
    assert all(abs(lr - lr_of(k)) > 1e-3 for k in range(-20, 5))
    sched = Cosine(10)
    res = train(data, protocol, [Config("adam" if adam else "sgd", sched, lr)], store)
    got = next(iter(res.values()))
    fstar = solve_optimum(data.X_train, data.y_train, 3, l2=L2).value
    for i, seed in enumerate(protocol.seeds):
        ref = _reference(data, lr * sched.preview(), adam=adam, seed=seed)
        off = _reference(data, 1.02 * lr * sched.preview(), adam=adam, seed=seed)
        assert got.objective[i] == pytest.approx(ref, rel=2e-6)
        assert abs(got.objective[i] - off) > 20 * abs(got.objective[i] - ref)
        assert got.gap[i] == pytest.approx(ref - fstar, abs=1e-6)
    assert got.lr == lr


def test_padded_lrs_and_prefix() -> None:
    s = LinearDecay(5)
    c = Config("sgd", s, 0.3)
    np.testing.assert_array_equal(padded_lrs(c, 8), np.r_[0.3 * s.preview(), 0.0, 0.0, 0.0])
    p = prefix(s, 2)
    np.testing.assert_array_equal(p.preview(), np.r_[s.preview()[:2], 0.0, 0.0, 0.0])
    assert p.total_steps == 5 and p.fingerprint() != prefix(s, 3).fingerprint()


def test_prefix_stops_the_run(tmp_path: Path) -> None:
    """The final iterate of a run stopped by a zero LR after t steps is the iterate after t steps
    of the whole schedule (checked against torch.optim stopped there)."""
    data = _data()
    protocol = ConvexProtocol(seeds=(3,))
    s = WarmupStableDecay(12, decay=0.2, decay_shape="1-sqrt")
    res = train(data, protocol, [Config("adam", prefix(s, 7), 0.05)], PlanStore(tmp_path))
    ref = _reference(data, 0.05 * s.preview()[:7], adam=True, seed=3)
    assert next(iter(res.values())).objective[0] == pytest.approx(ref, rel=2e-6)


def test_cache_and_recorded_runs_kept_apart(tmp_path: Path) -> None:
    data = _data()
    protocol = ConvexProtocol(seeds=(0,))
    plain = Config("sgd", LinearDecay(9), 0.2)
    recorded = Config("sgd", LinearDecay(9), 0.2, record=True)
    assert plain.key != recorded.key
    store = PlanStore.for_data(tmp_path, data, protocol)
    first = train(data, protocol, [plain, recorded], store)
    norms = store.norms(recorded)
    assert norms.shape == (9, 2) and np.all(norms > 0)
    again = PlanStore.for_data(tmp_path, data, protocol)
    assert again.get(plain) is not None and again.get(recorded) is not None
    second = train(data, protocol, [plain, recorded], again)
    for k in first:
        np.testing.assert_array_equal(first[k].gap, second[k].gap)


def test_tune_follows_the_suites_grid_rules(tmp_path: Path) -> None:
    """The search settles on an interior point whose sqrt(2) neighbours were evaluated, and the
    extra configurations are trained with it."""
    data = _data()
    protocol = ConvexProtocol(seeds=(0, 1), grid=(("adam", -12, 0), ("sgd", -8, 4)))
    store = PlanStore(tmp_path)
    extra = Config("sgd", LinearDecay(30), 0.0777)
    tuned, results = tune(
        data, protocol, {("sgd", "linear"): LinearDecay(30)}, store, extra=[extra]
    )
    t = tuned[("sgd", "linear")]
    k = t.best_k
    assert k is not None and t.status == "interior"
    assert {k - 1, k + 1} <= set(t.results)
    assert t.best.mean_objective == min(r.mean_objective for r in t.results.values())
    assert results[extra.key].lr == 0.0777


def test_import_committed_reproduces_the_suites_runs(tmp_path: Path) -> None:
    """An imported configuration of the committed convex results, retrained here at that LR,
    gives the committed gaps (to float32 rounding across batches)."""
    from refinedlr_bench.plan_convex import arm_schedule, import_committed

    runs = Path(__file__).resolve().parents[1] / "results" / "convex" / "runs.csv"
    data = load_data("iris")
    protocol = ConvexProtocol()
    store = PlanStore.for_data(tmp_path / "a", data, protocol)
    n = import_committed(runs, data, protocol, store, ["linear", "cosine"])
    assert n >= 2 * 2 * 14
    spe, T = 7, 700
    cfg = Config("adam", arm_schedule("cosine", T, spe, "adam"), lr_of(-6))
    imported = store.get(cfg)
    assert imported is not None
    fresh = train(data, protocol, [cfg], PlanStore.for_data(tmp_path / "b", data, protocol))
    np.testing.assert_allclose(fresh[cfg.key].gap, imported.gap, rtol=1e-3)
    assert not math.isnan(imported.mean_gap)
