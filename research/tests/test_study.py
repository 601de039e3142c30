"""The refinement study (issue 7): split, variants, arms, statistics, verification, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from refinedlr import refine

from refinedlr_bench.convex import ConvexProtocol, TabularData
from refinedlr_bench.refinement_variants import (
    auto_tau,
    bound_conservative,
    bound_gain,
    linear_shape,
    prefix_norms,
    variant_values,
)
from refinedlr_bench.study_arms import STUDY_ARMS
from refinedlr_bench.study_convex import arm_cost, outcome_to_json, run_arms
from refinedlr_bench.study_design import (
    CHOSEN_METHOD,
    DEV_DATASETS,
    HELDOUT_ARMS,
    HELDOUT_DATASETS,
    make_split,
)
from refinedlr_bench.study_stats import (
    VERIFIED_ARMS,
    add_verified_arms,
    select_method,
    summarize_arm,
)

NORMS = np.array([9, 7, 5, 3, 2, 1, 1, 1, 1.5, 2, 2.5, 3], dtype=float)


def test_split_is_fixed_and_disjoint() -> None:
    dev, held, ddev, dheld = make_split()
    assert (dev, held) == (DEV_DATASETS, HELDOUT_DATASETS)
    assert len(dev) == 9 and len(held) == 10 and not set(dev) & set(held)
    assert {ddev, dheld} == {"image", "lm"}
    assert make_split(seed=8)[0] != dev  # the seed matters


@pytest.mark.parametrize(("tau", "norm"), [(0.0, "l2"), (0.25, "l2"), (0.25, "l1"), (0.5, "l2")])
def test_variant_defaults_are_the_paper(tau: float, norm: str) -> None:
    got = variant_values(NORMS, norm=norm, tau=tau)
    np.testing.assert_allclose(got, refine(NORMS, tau=tau, norm=norm).preview(), atol=1e-12)  # type: ignore[arg-type]


def test_variant_limits() -> None:
    n = np.r_[np.full(10, 4.0), np.ones(40), np.geomspace(1, 0.1, 20)]
    T = n.size
    np.testing.assert_allclose(variant_values(n, floor=1.0), linear_shape(T))  # flat: linear
    np.testing.assert_allclose(variant_values(n, strength=0.0), linear_shape(T))
    np.testing.assert_allclose(variant_values(n, mix=1.0), variant_values(n))
    np.testing.assert_allclose(variant_values(n, mix=0.0), variant_values(n))
    env = variant_values(n, envelope=True)
    assert np.all(env <= 1.0 - np.arange(T) / T + 1e-12)  # under linear decay's line
    wl = variant_values(n, warmup_linear=True)
    p = int(np.argmax(wl))
    np.testing.assert_allclose(wl[p:], linear_shape(T - p))
    med = variant_values(n, floor=0.5)
    assert np.argmax(med) <= np.argmax(variant_values(n))  # the floor pulls the peak earlier
    assert np.all(variant_values(n, clip=2.0) >= 0)
    with pytest.raises(ValueError):
        variant_values(n, floor=2.0)


def test_bound_helpers() -> None:
    T = 60
    assert bound_gain(linear_shape(T), np.ones(T)) == pytest.approx(0.0, abs=0.02)
    n = np.r_[np.full(10, 8.0), np.ones(T - 10)]
    q, v = bound_conservative(n, kappa=0.5)
    assert 0.0 <= q < 1.0 and bound_gain(v, n) >= 0.5 * bound_gain(variant_values(n), n)
    assert bound_conservative(n, kappa=1.0)[0] <= q
    rng = np.random.default_rng(1)
    assert auto_tau(n + 0.1 * rng.random((4, T))) in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
    np.testing.assert_allclose(prefix_norms(n, 0.25)[15:], 1.0)


def _toy() -> TabularData:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=96) > 0).astype(np.int64)
    return TabularData("toy", X[:80], y[:80], X[80:], y[80:], 2)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    proto = ConvexProtocol(
        seeds=(0, 1), max_epochs=10, step_budget=50, grid=(("adam", -10, -2), ("sgd", -4, 4))
    )
    root = tmp_path_factory.mktemp("study")
    arms = ["refined-0.1", "refined-floor-med", "pilot-0.1", *HELDOUT_ARMS, "refined-adam-update"]
    return run_arms(_toy(), proto, arms=arms, cache_root=root), root, proto, arms


def test_run_arms_end_to_end_and_resume(outcome) -> None:  # type: ignore[no-untyped-def]
    oc, root, proto, arms = outcome
    for a in arms:
        for opt in STUDY_ARMS[a].optimizers:
            r = oc.results[(opt, a)]
            assert r.chosen is not None, (opt, a)
            if STUDY_ARMS[a].fixed_k is None:
                assert r.status in ("interior", "low edge (limit)", "high edge (limit)")
    # linear decay has the fewest dependencies; refined costs both sweeps
    own, total = arm_cost(oc, "sgd", "refined-0.1")
    assert total == pytest.approx(own + arm_cost(oc, "sgd", "linear")[0])
    p_own, p_total = arm_cost(oc, "sgd", "pilot-0.1")
    assert p_total - p_own == pytest.approx(arm_cost(oc, "sgd", "pilot-linear-0.1")[0])
    assert p_total - p_own < 0.5 * arm_cost(oc, "sgd", "linear")[0]
    # everything is cached: a rerun trains nothing and gives the same choices
    again = run_arms(_toy(), proto, arms=arms, cache_root=root)
    assert again.trained_runs == 0
    assert {k: r.chosen.k for k, r in again.results.items() if r.chosen} == {
        k: r.chosen.k for k, r in oc.results.items() if r.chosen
    }


def test_digest_and_verified_arms(outcome) -> None:  # type: ignore[no-untyped-def]
    oc, root, _proto, _arms = outcome
    doc = json.loads(json.dumps(outcome_to_json(oc, root)))
    for opt in ("adam", "sgd"):
        for v in ("verify-linear", "verify-refined-0.1", "verify-pilot-0.1"):
            assert doc["arms"][f"{opt}|{v}"]["bound_self"] > 0
    digests = {"toy": doc}
    add_verified_arms(digests)
    for opt in ("adam", "sgd"):
        for name, (cand, *_rest) in VERIFIED_ARMS.items():
            a = digests["toy"]["arms"][f"{opt}|{name}"]
            src = cand if a["verified"]["kept"] else "linear"
            assert a["gap"] == digests["toy"]["arms"][f"{opt}|{src}"]["gap"]
    s = summarize_arm(digests, "sgd", CHOSEN_METHOD)
    assert s is not None and s.losses + s.ties + s.wins == 1


def test_select_method_rule() -> None:
    class S:
        def __init__(self, losses: int, log_mean: float) -> None:
            self.losses = losses
            self.overall = type("R", (), {"log_mean": log_mean})()

    table = {
        "a": [S(1, -0.5), S(0, -0.5)],
        "b": [S(0, 0.1), S(0, 0.0)],
        "c": [S(0, -0.1), S(0, 0.0)],
        "only-adam": [S(0, -1.0)],
    }
    winner, rows = select_method(table, ["a", "b", "c", "only-adam"])  # type: ignore[arg-type]
    assert winner == "c" and [r[0] for r in rows] == ["c", "b", "a"]


def test_study_deep_helpers() -> None:
    from refinedlr_bench.study_deep import record_adam_updates, verify_ratio

    original = torch.optim.AdamW
    w = torch.nn.Parameter(torch.ones(3))
    with record_adam_updates() as rec:
        opt = torch.optim.AdamW([w], lr=0.1, eps=1e-8)
        for _ in range(3):
            opt.zero_grad()
            w.sum().backward()
            opt.step()
    assert torch.optim.AdamW is original
    # a constant gradient: m_hat / sqrt(v_hat) = 1 per coordinate, norm sqrt(3)
    np.testing.assert_allclose(rec.values, np.sqrt(3.0), rtol=1e-3)
    T = 30
    s = np.linspace(1, 0.1, T)
    assert verify_ratio(s, np.ones(T), s, np.ones(T)) == pytest.approx(1.0)
    assert verify_ratio(s, np.full(T, 2.0), s, np.ones(T)) == pytest.approx(2.0)


def test_report_from_digests(tmp_path: Path, outcome) -> None:  # type: ignore[no-untyped-def]
    from refinedlr_bench.study_report import write_report

    oc, root, _proto, _arms = outcome
    out = tmp_path / "study"
    (out / "convex").mkdir(parents=True)
    doc = outcome_to_json(oc, root)
    from refinedlr_bench.study_convex import dumps

    for name in (DEV_DATASETS[0], HELDOUT_DATASETS[0]):
        (out / "convex" / f"{name}.json").write_text(dumps({**doc, "dataset": name}))
    path = write_report(out, plots=False)
    text = path.read_text()
    assert "## 4. Held-out results" in text and CHOSEN_METHOD in text
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0] == "method,optimizer,split,dataset,ratio_vs_linear,ci_low,ci_high"
    assert any(r.startswith(f"{CHOSEN_METHOD},sgd,heldout,") for r in rows)
