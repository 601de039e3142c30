"""The batched schedule-free update (convex suite) against the ``schedulefree`` package itself.

The package trains one run at a time with torch autograd (float64); the batched trainer must give
the same averaged point after 100 steps, to 1e-6, for SGD and AdamW, with the package's warm-up
(the batched trainer gets it as its LR vector), with and without the package's weight decay, and
with plain configurations in the same batch.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
schedulefree = pytest.importorskip("schedulefree")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from refinedlr import get_schedule  # noqa: E402

from refinedlr_bench.logreg import (  # noqa: E402
    ADAM_BETAS,
    ADAM_EPS,
    SF_MOMENTUM,
    add_bias,
    batch_indices,
    schedule_free_averaging,
    steps_per_epoch,
    train_batched,
)
from refinedlr_bench.schedule_arms import ArmContext, get_schedule_arm  # noqa: E402

TOL = 1e-6


def _data(n: int = 83, d: int = 5, K: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, K))
    y = np.argmax(X @ W + rng.gumbel(size=(n, K)), axis=1).astype(np.int64)
    return X, y


def _package_run(
    X: np.ndarray,
    y: np.ndarray,
    K: int,
    *,
    adam: bool,
    lr: float,
    warmup_steps: int,
    weight_decay: float,
    seed: int,
    epochs: int,
    l2: float,
    batch_size: int,
    beta: float | None = None,
    at_z: bool = False,
) -> np.ndarray:
    """One run with the package's optimizer (float64, autograd): the weights in eval mode (its
    ``z`` with ``at_z``); ``beta``: the interpolation constant (default: the suite's)."""
    Xa = torch.tensor(add_bias(X))
    yt = torch.tensor(y)
    D = Xa.shape[1]
    W = torch.zeros(D, K, dtype=torch.float64, requires_grad=True)
    if adam:
        opt = schedulefree.AdamWScheduleFree(
            [W],
            lr=lr,
            betas=ADAM_BETAS if beta is None else (beta, ADAM_BETAS[1]),
            eps=ADAM_EPS,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
        )
    else:
        opt = schedulefree.SGDScheduleFree(
            [W],
            lr=lr,
            momentum=SF_MOMENTUM if beta is None else beta,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
        )
    opt.train()
    for idx in batch_indices(len(X), batch_size, epochs, seed):
        opt.zero_grad()
        i = torch.as_tensor(idx)
        loss = torch.nn.functional.cross_entropy(Xa[i] @ W, yt[i])
        loss = loss + 0.5 * l2 * (W[: D - 1] ** 2).sum()
        loss.backward()
        opt.step()
    if at_z:
        return opt.state[W]["z"].detach().numpy().copy()
    opt.eval()
    return W.detach().numpy().copy()


def _warmup_lrs(lr: float, T: int, warmup_steps: int) -> np.ndarray:
    """The package's LR sequence, made by the library: its ``(k + 1) / W`` warm-up is the
    library's warm-up of ``W - 1`` steps."""
    return lr * get_schedule("constant", T, warmup=max(warmup_steps - 1, 0)).preview()


def test_package_warmup_is_the_library_warmup_of_one_step_less() -> None:
    T, W = 30, 7
    package = np.minimum(1.0, (np.arange(T) + 1.0) / W)  # schedulefree: (k + 1) / warmup_steps
    np.testing.assert_array_equal(_warmup_lrs(1.0, T, W), package)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_batched_schedule_free_equals_the_package(weight_decay: float) -> None:
    X, y = _data()
    K, l2, B, epochs = 3, 1e-2, 16, 20
    T = epochs * steps_per_epoch(len(X), B)
    assert T == 100
    # (adam, peak lr, package warm-up steps); the plain configs share the batch
    sf_configs = [(False, 0.5, 10), (True, 0.05, 10), (False, 2.0, 0), (True, 0.2, 25)]
    plain = [(True, 0.01), (False, 0.3)]
    lrs = [_warmup_lrs(lr, T, w) for _, lr, w in sf_configs]
    lrs += [lr * get_schedule("linear", T).preview() for _, lr in plain]
    adam = [a for a, _, _ in sf_configs] + [a for a, _ in plain]
    seeds = [0, 3]
    res = train_batched(
        X,
        y,
        K,
        np.stack(lrs),
        adam=adam,
        seeds=seeds,
        epochs=epochs,
        l2=l2,
        batch_size=B,
        dtype=torch.float64,
        record_norms=[False] * 4 + [True] * 2,
        schedule_free=[True] * 4 + [False] * 2,
        sf_weight_decay=weight_decay,
    )
    assert res.recorded == (4, 5)
    for s_i, seed in enumerate(seeds):
        for c, (is_adam, lr, w) in enumerate(sf_configs):
            ref = _package_run(
                X,
                y,
                K,
                adam=is_adam,
                lr=lr,
                warmup_steps=w,
                weight_decay=weight_decay,
                seed=seed,
                epochs=epochs,
                l2=l2,
                batch_size=B,
            )
            assert np.abs(ref).max() > 0.05  # the runs moved
            np.testing.assert_allclose(res.weights[s_i, c], ref, rtol=0, atol=TOL)


def test_other_betas_and_the_base_sequence_z_equal_the_package() -> None:
    """The equal-terms arms of issue 20: schedule-free with other betas (``sf_beta``) and scored
    at z (``sf_eval``), beside default schedule-free configs in one batch."""
    X, y = _data(seed=1)
    K, l2, B, epochs = 3, 1e-2, 16, 20
    T = epochs * steps_per_epoch(len(X), B)
    # (adam, peak lr, beta, scored at z)
    cfg = [(False, 0.5, 0.5, False), (True, 0.05, 0.95, False), (False, 1.0, None, True)]
    cfg += [(True, 0.1, 0.5, True), (False, 0.5, None, False)]
    res = train_batched(
        X,
        y,
        K,
        np.stack([_warmup_lrs(lr, T, 5) for _, lr, _, _ in cfg]),
        adam=[a for a, _, _, _ in cfg],
        seeds=[1],
        epochs=epochs,
        l2=l2,
        batch_size=B,
        dtype=torch.float64,
        schedule_free=True,
        sf_beta=[b for _, _, b, _ in cfg],
        sf_eval=["z" if z else "x" for *_, z in cfg],
    )
    for c, (is_adam, lr, beta, z) in enumerate(cfg):
        ref = _package_run(
            X, y, K, adam=is_adam, lr=lr, warmup_steps=5, weight_decay=0.0, seed=1,
            epochs=epochs, l2=l2, batch_size=B, beta=beta, at_z=z,
        )  # fmt: skip
        np.testing.assert_allclose(res.weights[0, c], ref, rtol=0, atol=TOL)
    assert np.abs(res.weights[0, 0] - res.weights[0, 4]).max() > 1e-3  # beta matters


@pytest.mark.parametrize("adam", [False, True])
def test_the_beta_0_arm_is_schedule_free_with_beta_0(adam: bool) -> None:
    """``sf-beta-0``: the plain optimizer (Adam with beta1 = 0) with schedule-free's average of
    its iterates equals the package with beta -> 0 (1e-7; the package cannot evaluate beta 0)."""
    arm = get_schedule_arm("sf-beta-0")
    assert arm.averaging is not None and not arm.schedule_free and arm.betas == (0.0, 0.95)
    X, y = _data(seed=4)
    K, l2, B, epochs = 3, 1e-2, 16, 20
    T = epochs * steps_per_epoch(len(X), B)
    mult = arm.build(ArmContext(total_steps=T, steps_per_epoch=T // epochs, optimizer="sgd"))
    lr = 0.05 if adam else 0.5
    res = train_batched(
        X, y, K, lr * mult.preview()[None], adam=[adam], seeds=[2], epochs=epochs, l2=l2,
        batch_size=B, dtype=torch.float64, betas=arm.betas,
        averaging=arm.averaging.weights(mult.preview())[None],
    )  # fmt: skip
    ref = _package_run(
        X, y, K, adam=adam, lr=lr, warmup_steps=round(0.05 * T), weight_decay=0.0, seed=2,
        epochs=epochs, l2=l2, batch_size=B, beta=1e-7,
    )  # fmt: skip
    np.testing.assert_allclose(res.weights[0, 0], ref, rtol=0, atol=1e-5)


def test_plain_configs_are_unchanged_by_schedule_free_neighbours() -> None:
    """A plain config gives the same float64 result with or without schedule-free configs in its
    batch (the update rules work on separate slices)."""
    X, y = _data(seed=2)
    T = 5 * steps_per_epoch(len(X), 16)
    lin = 0.1 * get_schedule("linear", T).preview()
    kw = {"seeds": [1], "epochs": 5, "l2": 1e-3, "dtype": torch.float64}
    alone = train_batched(X, y, 3, np.stack([lin, lin]), adam=[True, False], **kw)
    mixed = train_batched(
        X,
        y,
        3,
        np.stack([lin, lin, lin, lin]),
        adam=[True, False, True, False],
        schedule_free=[False, False, True, True],
        **kw,
    )
    np.testing.assert_allclose(mixed.weights[:, :2], alone.weights, rtol=1e-12, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 10.0)), min_size=1, max_size=30),
    st.floats(0.5, 3.0),
)
def test_averaging_weights(lrs: list[float], power: float) -> None:
    """c_{t+1} = w_t / sum w with w = running max LR ^ p: in [0, 1], 1 at the first positive
    weight, and 1/(t+1) for a constant LR."""
    c = schedule_free_averaging([lrs], weight_lr_power=power)[0]
    assert np.all((c >= 0) & (c <= 1))
    first = next((i for i, v in enumerate(lrs) if v > 0), None)
    if first is not None:
        assert c[first] == 1.0 and np.all(c[:first] == 0)
    const = schedule_free_averaging([[0.3] * len(lrs)], weight_lr_power=power)[0]
    np.testing.assert_allclose(const, 1.0 / np.arange(1, len(lrs) + 1), rtol=1e-12)


def test_schedule_free_arm_is_the_package_warmup() -> None:
    """The convex suite's schedule-free arm: constant after the package's warm-up over 5% of T."""
    arm = get_schedule_arm("schedule-free")
    assert arm.schedule_free and arm.batch != get_schedule_arm("linear").batch
    s = arm.build(ArmContext(total_steps=700, steps_per_epoch=7, optimizer="sgd")).preview()
    np.testing.assert_array_equal(s, np.minimum(1.0, (np.arange(700) + 1.0) / 35))
