"""JAX / optax: schedules under jit, norm recording in the optimizer state, the host-side writer,
resume, MultiSteps, and a refine round trip; optax.adamw on a small MLP on the CPU."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# these tests compile a handful of tiny steps: XLA's backend optimisations only cost time here
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
jax = pytest.importorskip("jax", reason="jax is not installed (pip install 'refinedlr[jax]')")
optax = pytest.importorskip("optax", reason="optax is not installed (pip install 'refinedlr[jax]')")
import jax.numpy as jnp  # noqa: E402

from refinedlr import (  # noqa: E402
    LinearDecay,
    get_schedule,
    load_schedule,
    read_record,
    refine,
    save_schedule,
)
from refinedlr.integrations.optax import (  # noqa: E402
    NormWriter,
    find_norm_state,
    global_norms,
    optax_schedule,
    record_norms,
)

# optax.tree.norm (optax >= 0.2.5) replaces optax.global_norm
tree_l2 = (
    optax.tree.norm if hasattr(optax, "tree") and hasattr(optax.tree, "norm") else optax.global_norm
)

PEAK = 3e-3
T = 30
CLIP = 0.5


def init_params(seed: int = 0) -> Any:
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return {
        "w1": jax.random.normal(k1, (8, 16)) * 0.5,
        "b1": jnp.zeros(16),
        "w2": jax.random.normal(k2, (16, 1)) * 0.5,
        "b2": jnp.zeros(1),
    }


def loss_fn(params: Any, x: Any, y: Any) -> Any:
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((h @ params["w2"] + params["b2"] - y) ** 2)


def batches(n: int, seed: int = 1) -> list[tuple[Any, Any]]:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(8, 1))
    out = []
    for _ in range(n):
        x = rng.normal(size=(32, 8)).astype(np.float32)
        out.append((jnp.asarray(x), jnp.asarray(x @ w * 3.0, dtype=jnp.float32)))
    return out


def make_tx(schedule: Any = None, buffer_size: int = 8) -> Any:
    sched = LinearDecay(total_steps=T, warmup=3) if schedule is None else schedule
    lr = optax_schedule(sched, peak_value=PEAK)
    return optax.chain(
        record_norms(("l2", "l1"), buffer_size=buffer_size),
        optax.clip_by_global_norm(CLIP),
        optax.inject_hyperparams(optax.adamw)(learning_rate=lr, weight_decay=1e-4),
    )


_STEPS: dict[int, Any] = {}
_DEFAULT: list[Any] = []


def default_tx() -> Any:
    """One transformation (and so one compiled step) shared by the tests that can share it."""
    if not _DEFAULT:
        _DEFAULT.append(make_tx())
    return _DEFAULT[0]


def make_step(tx: Any) -> Any:
    if id(tx) in _STEPS:
        return _STEPS[id(tx)][1]

    @jax.jit
    def step(params: Any, opt_state: Any, x: Any, y: Any) -> Any:
        grads = jax.grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, grads, tree_l2(grads)

    _STEPS[id(tx)] = (tx, step)  # keep tx alive: its id stays unique
    return step


def run(
    tx: Any,
    data: list[Any],
    *,
    params: Any = None,
    opt_state: Any = None,
    writer: NormWriter | None = None,
    every: int = 5,
) -> dict[str, Any]:
    params = init_params() if params is None else params
    opt_state = tx.init(params) if opt_state is None else opt_state
    step = make_step(tx)
    grads_l2, grads_l1, lrs, states, params_at = [], [], [], {}, {}
    start = int(find_norm_state(opt_state).count)
    for i, (x, y) in enumerate(data, start=start):
        states[i], params_at[i] = opt_state, params
        params, opt_state, grads, l2 = step(params, opt_state, x, y)
        lrs.append(float(opt_state[2].hyperparams["learning_rate"]))  # the LR step i used
        grads_l2.append(float(l2))  # optax's norm of the same gradients
        leaves = jax.tree_util.tree_leaves(grads)
        grads_l1.append(float(sum(np.abs(np.asarray(g, np.float64)).sum() for g in leaves)))
        if writer is not None and (i + 1) % every == 0:
            writer.write(opt_state)
    if writer is not None:
        writer.write(opt_state)
    states[start + len(data)], params_at[start + len(data)] = opt_state, params
    return {
        "l2": np.array(grads_l2),
        "l1": np.array(grads_l1),
        "lrs": np.array(lrs),
        "states": states,
        "params": params_at,
    }


@pytest.fixture(scope="module")
def run1(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("optax") / "norms.csv"
    with NormWriter(path) as writer:
        out = run(default_tx(), batches(T), writer=writer)
    out["path"] = path
    out["rec"] = read_record(path)
    return out


def test_recorded_norms_equal_direct_computation(run1: dict[str, Any]) -> None:
    rec = run1["rec"]
    assert rec.kinds == ("l2", "l1") and rec.steps.tolist() == list(range(T))
    np.testing.assert_allclose(rec.values["l2"], run1["l2"], rtol=1e-6)  # optax's global l2 norm
    np.testing.assert_allclose(rec.values["l1"], run1["l1"], rtol=1e-5)  # float64 sum |g|
    assert (run1["l2"] > CLIP).sum() >= 3  # recorded before clip_by_global_norm


def test_learning_rates_are_the_numpy_schedule(run1: dict[str, Any]) -> None:
    expect = PEAK * LinearDecay(total_steps=T, warmup=3).preview()
    np.testing.assert_array_equal(run1["lrs"], expect.astype(np.float32))


def test_schedule_is_jittable_exact_and_holds_past_the_horizon() -> None:
    for sched in (
        get_schedule("cosine", 50, warmup=0.1, floor=0.1),
        refine(np.r_[9, 5, 3, 2, 2, 2, 2, 1.5]),
    ):
        lr = optax_schedule(sched, peak_value=2.0)
        f = jax.jit(lr)
        steps = np.arange(sched.total_steps + 7)
        got = np.array([float(f(jnp.int32(t))) for t in steps])
        expect = (2.0 * sched(steps)).astype(np.float32)  # holds the last value past T
        np.testing.assert_array_equal(got, expect)
        vec = np.asarray(jax.jit(jax.vmap(lr))(jnp.arange(sched.total_steps)))
        np.testing.assert_array_equal(vec, (2.0 * sched.preview()).astype(np.float32))
        # fractional counts: linear interpolation between neighbours
        mid = float(f(jnp.float32(2.25)))
        a, b = 2.0 * sched(2), 2.0 * sched(3)
        assert mid == pytest.approx(a + 0.25 * (b - a), rel=1e-6)
    named = optax_schedule("linear", 0.1, total_steps=4)
    assert [round(float(named(t)), 6) for t in range(4)] == [0.1, 0.075, 0.05, 0.025]
    assert optax_schedule(LinearDecay(total_steps=4), total_steps=8)(jnp.int32(7)) > 0


def test_global_norms_match_optax() -> None:
    tree = {"a": jnp.arange(6.0).reshape(2, 3) - 2.5, "b": [jnp.ones(4) * -0.5]}
    n = np.asarray(global_norms(tree, ("l1", "l2")))
    assert n[0] == pytest.approx(11.0)
    assert n[1] == pytest.approx(float(tree_l2(tree)), rel=1e-7)
    half = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), tree)
    assert global_norms(half, "l2").dtype == jnp.float32


def test_resume_continues_the_record(run1: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "norms.csv"
    data = batches(T)
    # the first process: 17 steps, writing every 5, then "killed" (rows 15, 16 never written)
    with NormWriter(path) as w:
        first = run(default_tx(), data[:17], writer=None)
        for s in (5, 10, 15):
            w.write(first["states"][s])
    assert read_record(path).steps.tolist() == list(range(15))
    # a new process restores the checkpoint of step 12 (params and opt_state on the host)
    params, opt_state = jax.device_get((first["params"][12], first["states"][12]))
    with NormWriter(path, opt_state) as w2:  # the run resumes at the restored state's step
        second = run(default_tx(), data[12:], params=params, opt_state=opt_state, writer=w2)
    rec = read_record(path)
    assert rec.steps.tolist() == list(range(T))  # each step once
    np.testing.assert_allclose(rec.values["l2"], run1["rec"].values["l2"], rtol=1e-6)
    np.testing.assert_array_equal(second["lrs"], run1["lrs"][12:])


def test_resume_recovers_unwritten_rows_from_the_buffer(
    run1: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "norms.csv"
    states = run1["states"]
    with NormWriter(path) as w:  # the first process wrote only once, at step 5, then died
        w.write(states[5])
    # restored at step 12: rows 5..11 are in the restored buffer (size 8) and are recovered
    w2 = NormWriter(path, jax.device_get(states[12]))
    assert w2.write(states[12]) == 7
    assert w2.write(states[20]) == 8
    w2.close()
    rec = read_record(path)
    assert rec.steps.tolist() == list(range(20))
    np.testing.assert_allclose(rec.values["l1"], run1["rec"].values["l1"][:20], rtol=1e-6)
    # restored at step 20 without rows 5..11 in its buffer: they are missing, with a warning
    with NormWriter(path) as w:
        w.write(states[5])
    with NormWriter(path, states[20]) as w3, pytest.warns(RuntimeWarning, match="5..11"):
        w3.write(states[20])
    rec = read_record(path)
    assert rec.steps.tolist() == list(range(20))
    assert np.isnan(rec.values["l2"][5:12]).all() and np.isfinite(rec.values["l2"][12:]).all()


def test_same_writer_after_a_rollback(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    out = run(default_tx(), batches(10))
    w = NormWriter(path)
    assert w.write(out["states"][8]) == 8
    assert w.write(out["states"][4]) == 0  # went back: the file continues at step 4
    assert w.step == 4
    assert w.write(out["states"][10]) == 6
    w.close()
    assert read_record(path).steps.tolist() == list(range(10))


def test_buffer_overrun_is_written_as_missing(run1: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_bytes(run1["path"].read_bytes())  # an older, longer record: a fresh run replaces it
    out = run(default_tx(), batches(12))  # buffer_size 8
    with NormWriter(path) as w, pytest.warns(RuntimeWarning, match="overwritten"):
        assert w.write(out["states"][2]) == 2
        assert w.write(out["states"][12]) == 10  # steps 2, 3 were overwritten by 10, 11
    rec = read_record(path)
    assert rec.steps.tolist() == list(range(12))
    assert np.isnan(rec.values["l2"][[2, 3]]).all()
    assert np.isfinite(rec.values["l2"][[0, 1, *range(4, 12)]]).all()


def test_multisteps_records_the_accumulated_gradient_once_per_step() -> None:
    k = 2
    tx = optax.MultiSteps(optax.chain(record_norms("l2"), optax.sgd(0.0)), every_k_schedule=k)
    params = init_params()
    state = tx.init(params)
    data = batches(6)
    grad = jax.jit(jax.grad(loss_fn))
    update = jax.jit(tx.update)
    for x, y in data:  # lr 0: the parameters stay where they are
        _, state = update(grad(params, x, y), state, params)
    rec = find_norm_state(state)
    assert int(rec.count) == len(data) // k  # one row per optimizer step, not per micro-batch
    for i in range(len(data) // k):
        g = [grad(params, *b) for b in data[k * i : k * (i + 1)]]
        mean = jax.tree_util.tree_map(lambda *a: sum(a) / k, *g)
        assert float(rec.norms[i, 0]) == pytest.approx(float(tree_l2(mean)), rel=1e-5)


def test_refine_round_trip(run1: dict[str, Any], tmp_path: Path) -> None:
    refined = refine(run1["rec"], norm="l1", tau=0.2)
    save_schedule(refined, tmp_path / "refined.json")
    horizon = 20
    sched = load_schedule(tmp_path / "refined.json", total_steps=horizon)
    out = run(make_tx(sched), batches(horizon))
    np.testing.assert_array_equal(out["lrs"], (PEAK * sched.preview()).astype(np.float32))
    assert out["lrs"][-1] == 0.0


def test_errors() -> None:
    with pytest.raises(ValueError, match="kinds"):
        record_norms(("l3",))
    with pytest.raises(ValueError, match="buffer_size"):
        record_norms(buffer_size=0)
    with pytest.raises(ValueError, match="found 0"):
        find_norm_state(optax.sgd(0.1).init({"w": jnp.zeros(1)}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert optax_schedule("constant", total_steps=3)(jnp.int32(10)) == 1.0


# ---------------------------------------------------------------------------------------------
# update-direction norms (issue 12 §1)


def adamw_recording(lr: float, weight_decay: float, b1=0.9, b2=0.999, eps=1e-8) -> Any:
    """optax.adamw's own chain (scale_by_adam, add_decayed_weights, scale_by_learning_rate)
    with the recorders inserted: gradients first, the update direction after scale_by_adam."""
    return optax.chain(
        record_norms(("l2", "l1"), buffer_size=16),
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        record_norms(("update_l2", "update_l1"), buffer_size=16),
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_learning_rate(lr),
    )


def test_adamw_as_a_recording_chain(tmp_path: Path) -> None:
    """The chain trains exactly like optax.adamw; the update columns are Adam's
    m_hat / (sqrt(v_hat) + eps) computed by hand; one file holds both recorders' columns."""
    b1, b2, eps, lr, wd = 0.8, 0.95, 1e-3, 1e-2, 0.1
    tx = adamw_recording(lr, wd, b1, b2, eps)
    ref = optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd)
    params, p_ref = init_params(), init_params()
    state, s_ref = tx.init(params), ref.init(p_ref)
    m = jax.tree.map(lambda p: np.zeros(p.shape), params)
    v = jax.tree.map(lambda p: np.zeros(p.shape), params)
    want = []
    path = tmp_path / "n.csv"
    with NormWriter(path) as writer:
        for t, (x, y) in enumerate(batches(6), start=1):
            grads = jax.grad(loss_fn)(params, x, y)
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            g_ref = jax.grad(loss_fn)(p_ref, x, y)
            u_ref, s_ref = ref.update(g_ref, s_ref, p_ref)
            p_ref = optax.apply_updates(p_ref, u_ref)
            for a, c in zip(jax.tree.leaves(params), jax.tree.leaves(p_ref), strict=True):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(c))  # the same AdamW
            g = jax.tree.map(lambda a: np.asarray(a, np.float64), grads)
            m = jax.tree.map(lambda mm, gg: b1 * mm + (1 - b1) * gg, m, g)
            v = jax.tree.map(lambda vv, gg: b2 * vv + (1 - b2) * gg * gg, v, g)
            u = np.concatenate(
                [
                    (mm / (1 - b1**t) / (np.sqrt(vv / (1 - b2**t)) + eps)).ravel()
                    for mm, vv in zip(jax.tree.leaves(m), jax.tree.leaves(v), strict=True)
                ]
            )
            want.append([np.linalg.norm(u), np.abs(u).sum()])
            if t == 3:
                writer.write(state)
        writer.write(state)
    rec = read_record(path)
    assert rec.kinds == ("l2", "l1", "update_l2", "update_l1")
    assert rec.steps.tolist() == list(range(6))
    got = np.c_[rec.values["update_l2"], rec.values["update_l1"]]
    np.testing.assert_allclose(got, want, rtol=1e-5)  # float32 arithmetic in JAX


def test_several_recorders_must_agree() -> None:
    params = init_params()
    g = jax.tree.map(jnp.ones_like, params)
    same = optax.chain(record_norms("l2"), optax.scale_by_adam(), record_norms("l2"))
    with pytest.raises(ValueError, match="same kind"):
        NormWriter("unused.csv", same.init(params))
    inner = optax.MultiSteps(optax.chain(optax.scale_by_adam(), record_norms("update_l2")), 2)
    apart = optax.chain(record_norms("l2"), inner)
    state = apart.init(params)
    _, state = apart.update(g, state, params)
    with pytest.raises(ValueError, match="different numbers of steps"):
        NormWriter("unused.csv", state)
