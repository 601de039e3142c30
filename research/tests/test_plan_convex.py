"""The planning evidence's convex experiments: continuations share the checkpointed run's steps,
predicted LRs are trained as predicted, regrets use the right tuned best."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refinedlr import WarmupStableDecay  # noqa: E402
from refinedlr.plan import extend, extension_options, transfer_lr  # noqa: E402

from refinedlr_bench.convex import ConvexProtocol, TabularData  # noqa: E402
from refinedlr_bench.grid import lr_of  # noqa: E402
from refinedlr_bench.logreg import train_batched  # noqa: E402
from refinedlr_bench.plan_convex import (  # noqa: E402
    Experiment,
    arm_schedule,
    rewarm_cosine,
    run_dataset,
    same_lr,
)
from refinedlr_bench.plan_train import PlanStore  # noqa: E402


def _data(n: int = 64, d: int = 5, K: int = 3) -> TabularData:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, d))
    y = np.argmax(X @ rng.normal(size=(d, K)) + rng.gumbel(size=(n, K)), axis=1).astype(np.int64)
    return TabularData("toy", X, y, X[:16], y[:16], K)


def _continuations(T0: int) -> dict[str, object]:
    base = WarmupStableDecay(T0, decay=0.2, decay_shape="1-sqrt")
    k = int(0.8 * T0)
    arms = {
        o.family + o.schedule.cooldown_shape: o.schedule
        for o in extension_options(base, at_step=k, total_steps=2 * T0)
    }
    arms["default"] = extend(base, at_step=k, total_steps=2 * T0)
    arms["same-lr"] = same_lr(base, k, 2 * T0)
    arms["rewarm"] = rewarm_cosine(base, k, 2 * T0)
    return {"base": base, "k": k, **arms}


def test_continuations_equal_the_checkpointed_run_before_the_checkpoint() -> None:
    """Every continuation's LRs equal the source's on its first 0.8 T0 steps, and training it
    from step 0 takes the same steps as the source run: the gradient norms recorded at every
    step up to and including the checkpoint (each computed at the iterate reached by then) are
    those of the source run, in float64; after the checkpoint they differ."""
    T0 = 20  # 64 rows, batch 16: 4 steps per epoch; T0 = 5 epochs, 2 T0 = 10 epochs
    arms = _continuations(T0)
    base, k = arms.pop("base"), arms.pop("k")
    assert isinstance(k, int) and k == 16
    s0 = base.preview()  # type: ignore[attr-defined]
    data = _data()
    lr = 0.3
    rows = [np.r_[lr * s0, np.zeros(T0)]]
    for name, sched in arms.items():
        s = sched.preview()  # type: ignore[attr-defined]
        assert s.shape == (2 * T0,)
        np.testing.assert_array_equal(s[:k], s0[:k], err_msg=name)
        rows.append(lr * s)
    for adam in (False, True):
        res = train_batched(
            data.X_train,
            data.y_train,
            3,
            np.stack(rows),
            adam=[adam] * len(rows),
            seeds=[0, 1],
            epochs=10,
            l2=1e-4,
            dtype=torch.float64,
        )
        assert res.norms is not None
        src = res.norms[:, 0]
        for j in range(1, len(rows)):
            np.testing.assert_allclose(res.norms[:, j, : k + 1], src[:, : k + 1], rtol=1e-12)
            assert not np.allclose(res.norms[:, j, k + 2 :], src[:, k + 2 :])


def test_same_lr_is_wsd_on_the_new_horizon() -> None:
    """Without a warm-up, continuing at the same LR with the 20% cooldown moved to the end is a
    fresh WSD 1-sqrt run on the new horizon."""
    base = WarmupStableDecay(100, decay=0.2, decay_shape="1-sqrt")
    np.testing.assert_allclose(
        same_lr(base, 80, 200).preview(),
        WarmupStableDecay(200, decay=0.2, decay_shape="1-sqrt").preview(),
        atol=1e-12,
    )


def test_rewarm_cosine_rewarms_then_decays_to_zero() -> None:
    base = WarmupStableDecay(100, decay=0.2, decay_shape="1-sqrt")
    s = rewarm_cosine(base, 80, 200).preview()
    assert s[80] == pytest.approx(0.1) and s[89] == pytest.approx(1.0)  # W = 10 steps
    assert np.all(np.diff(s[89:]) <= 0) and 0 < s[-1] < 1e-3


@pytest.mark.slow
def test_run_dataset_trains_the_predicted_lrs_and_scores_against_the_tuned_best(
    tmp_path: Path,
) -> None:
    data = _data(n=80)
    protocol = ConvexProtocol(
        seeds=(0, 1), epochs=6, grid=(("adam", -10, 0), ("sgd", -6, 4)), fine_step=2
    )
    store = PlanStore(tmp_path)
    ex = Experiment(
        targets=("cosine", "1/t"),
        horizons={"linear": (2.0,)},
        extension=("extend", "same-lr"),
    )
    out = run_dataset(data, protocol, store, ex)
    T, spe = 30, 5
    by = {(r["part"], r["optimizer"], r["target"], r["method"]): r for r in out.transfer}
    for opt in ("adam", "sgd"):
        src = by[("schedule", opt, "cosine", "reuse")]["lr"]  # reuse = linear decay's tuned LR
        lin = arm_schedule("linear", T, spe, opt)
        row = by[("schedule", opt, "1/t", "constant")]
        want = transfer_lr(src, lin, arm_schedule("1/t", T, spe, opt))
        assert row["lr"] == want  # trained at the prediction itself
        assert row["log2_error"] == pytest.approx(math.log2(want / row["best_lr"]))
        assert row["regret"] == pytest.approx(row["gap"] / row["best_gap"])
        # the tuned best: the grid LR with the smallest mean objective of that schedule and horizon
        for key, sched in (
            (("schedule", opt, "1/t", "constant"), arm_schedule("1/t", T, spe, opt)),
            (("horizon", opt, "linear", "constant"), arm_schedule("linear", 2 * T, spe, opt)),
        ):
            r = by[key]
            head = f"{opt}|{sched.fingerprint()}|{sched.total_steps}|"
            grid = {
                float(c[len(head) :]): doc
                for c, doc in store.cells.items()
                if c.startswith(head)
                and not c.endswith("|rec")
                and any(float(c[len(head) :]) == lr_of(k) for k in range(-30, 12))
            }
            best = min(grid, key=lambda v: (np.mean(grid[v]["objective"]), v))
            assert r["best_lr"] == best
            assert r["best_gap"] == pytest.approx(np.mean(grid[best]["gap"]), rel=1e-12)
            assert r["lr"] not in grid or r["method"] == "reuse"
        h = by[("horizon", opt, "linear", "constant")]
        assert h["steps"] == 2 * T and h["grid_status"] == "interior"
        assert h["lr"] == transfer_lr(src, lin, arm_schedule("linear", 2 * T, spe, opt))
    ext = {(r["optimizer"], r["arm"]): r for r in out.extension}
    for opt in ("adam", "sgd"):
        e = ext[(opt, "extend")]
        assert e["at_step"] == 24 and e["steps"] == 60 and e["new_steps"] == 36
        assert e["fresh_gap"] == ext[(opt, "same-lr")]["fresh_gap"]
    assert {r["candidate"] for r in out.prediction} == {"cosine", "1/t"}


def test_a_missing_continuation_family_is_an_error_not_a_substitute() -> None:
    import numpy as np
    from refinedlr import WarmupStableDecay
    from refinedlr.plan import extension_options

    from refinedlr_bench.plan_convex import option_of

    base = WarmupStableDecay(800, warmup=0.05, decay=0.2, decay_shape="1-sqrt")
    flat = extension_options(base, at_step=640, total_steps=1600)
    assert option_of(flat, "rescale") is next(o for o in flat if o.family == "rescale")
    # falling norms: the rescale search lands on the level in use, a cooldown
    falling = extension_options(
        base, at_step=640, total_steps=1600, norms=np.geomspace(1, 0.01, 800)
    )
    with pytest.raises(ValueError, match="no 'rescale' continuation"):
        option_of(falling, "rescale")
