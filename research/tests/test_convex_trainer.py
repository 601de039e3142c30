"""The batched logistic-regression trainer against a plain one-run-at-a-time autograd reference."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refinedlr import get_schedule  # noqa: E402

from refinedlr_bench.logreg import (  # noqa: E402
    add_bias,
    batch_indices,
    full_gradient,
    objective,
    steps_per_epoch,
    train_batched,
)


def _data(n: int = 53, d: int = 4, K: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, K))
    y = np.argmax(X @ W + rng.gumbel(size=(n, K)), axis=1).astype(np.int64)
    return X, y


def _reference(
    X: np.ndarray,
    y: np.ndarray,
    K: int,
    lrs: np.ndarray,
    *,
    adam: bool,
    seed: int,
    epochs: int,
    l2: float,
    batch_size: int,
    betas: tuple[float, float] = (0.9, 0.95),
) -> tuple[np.ndarray, np.ndarray]:
    """One run with torch autograd and torch.optim (float64): final weights and per-step norms."""
    Xa = torch.tensor(add_bias(X))
    yt = torch.tensor(y)
    D = Xa.shape[1]
    W = torch.zeros(D, K, dtype=torch.float64, requires_grad=True)
    if adam:
        opt = torch.optim.Adam([W], lr=1.0, betas=betas, eps=1e-8)
    else:
        opt = torch.optim.SGD([W], lr=1.0)
    order = batch_indices(len(X), batch_size, epochs, seed)
    norms = []
    for t, idx in enumerate(order):
        for group in opt.param_groups:
            group["lr"] = float(lrs[t])
        opt.zero_grad()
        i = torch.as_tensor(idx)
        loss = torch.nn.functional.cross_entropy(Xa[i] @ W, yt[i])
        loss = loss + 0.5 * l2 * (W[: D - 1] ** 2).sum()
        loss.backward()
        g = W.grad.detach()
        norms.append([float(g.abs().sum()), float(torch.linalg.vector_norm(g))])
        opt.step()
    return W.detach().numpy(), np.array(norms)


@pytest.mark.parametrize(
    ("batch_size", "betas"),
    [(16, (0.9, 0.95)), (5, (0.9, 0.95)), (16, (0.9, 0.999)), (5, (0.0, 0.95))],
)
def test_batched_equals_reference_adam_and_sgd(batch_size: int, betas: tuple[float, float]) -> None:
    X, y = _data()
    K, epochs, l2 = 3, 3, 1e-2
    T = epochs * steps_per_epoch(len(X), batch_size)
    shapes = {
        "linear": get_schedule("linear", T).preview(),
        "cosine": get_schedule("cosine", T).preview(),
        "step": get_schedule("step", T).preview(),
    }
    configs = [
        (True, 0.05, "linear"),
        (False, 0.5, "cosine"),
        (True, 0.2, "step"),
        (False, 0.1, "linear"),
        (True, 0.01, "cosine"),
    ]
    lrs = np.stack([lr * shapes[s] for _, lr, s in configs])
    adam = [a for a, _, _ in configs]
    seeds = [0, 7]
    res = train_batched(
        X,
        y,
        K,
        lrs,
        adam=adam,
        seeds=seeds,
        epochs=epochs,
        l2=l2,
        batch_size=batch_size,
        dtype=torch.float64,
        betas=betas,
    )
    assert res.weights.shape == (2, 5, 5, 3)
    assert res.norms is not None and res.norms.shape == (2, 5, T, 2)
    for s_i, seed in enumerate(seeds):
        for c, (is_adam, _, _) in enumerate(configs):
            W, norms = _reference(
                X,
                y,
                K,
                lrs[c],
                adam=is_adam,
                seed=seed,
                epochs=epochs,
                l2=l2,
                batch_size=batch_size,
                betas=betas,
            )
            np.testing.assert_allclose(res.weights[s_i, c], W, rtol=1e-9, atol=1e-11)
            np.testing.assert_allclose(res.norms[s_i, c], norms, rtol=1e-9, atol=1e-12)


def test_float32_training_is_close_to_float64() -> None:
    X, y = _data(n=80, d=6, K=4, seed=1)
    epochs = 4
    T = epochs * steps_per_epoch(len(X), 16)
    lrs = np.stack([0.05 * get_schedule("linear", T).preview(), 0.5 * np.ones(T)])
    kw = {"adam": [True, False], "seeds": [3], "epochs": epochs, "l2": 1e-3}
    r32 = train_batched(X, y, 4, lrs, **kw)
    r64 = train_batched(X, y, 4, lrs, dtype=torch.float64, **kw)
    assert r32.weights.dtype == np.float32
    np.testing.assert_allclose(r32.weights, r64.weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(r32.norms, r64.norms, rtol=1e-4, atol=1e-6)


def test_recorded_norms_are_minibatch_gradient_norms_at_the_pre_update_iterate() -> None:
    """Step 0 from zero weights: the recorded norm is that of the first batch's gradient."""
    X, y = _data()
    T = 2 * steps_per_epoch(len(X), 16)
    res = train_batched(
        X,
        y,
        3,
        np.full((1, T), 0.1),
        adam=[False],
        seeds=[4],
        epochs=2,
        l2=0.5,
        dtype=torch.float64,
    )
    first = batch_indices(len(X), 16, 2, 4)[0]
    g = full_gradient(X[first], y[first], np.zeros((5, 3)), l2=0.5)
    assert res.norms is not None
    np.testing.assert_allclose(res.norms[0, 0, 0], [np.abs(g).sum(), np.linalg.norm(g)])


def test_same_seed_same_batches_and_divergence_is_inf() -> None:
    X, y = _data()
    T = 2 * steps_per_epoch(len(X), 16)
    lrs = np.stack([np.full(T, 0.1), np.full(T, 0.1), np.full(T, 1e30)])
    res = train_batched(X, y, 3, lrs, adam=[False, False, False], seeds=[1, 2], epochs=2, l2=0.1)
    # paired design: same seed, same LR -> same run (up to float32 summation order)
    np.testing.assert_allclose(res.weights[:, 0], res.weights[:, 1], rtol=1e-5, atol=1e-7)
    assert not np.array_equal(res.weights[0, 0], res.weights[1, 0])  # seeds differ
    f = objective(X, y, res.weights, l2=0.1)
    assert f.shape == (2, 3)
    assert np.all(np.isfinite(f[:, :2])) and np.all(np.isinf(f[:, 2]))


def test_batch_indices_are_epoch_permutations() -> None:
    idx = batch_indices(35, 4, 3, seed=5)
    assert idx.shape == (3 * 8, 4)
    for e in range(3):
        block = idx[e * 8 : (e + 1) * 8].reshape(-1)
        assert len(set(block.tolist())) == 32  # no repeats within an epoch
    np.testing.assert_array_equal(idx, batch_indices(35, 4, 3, seed=5))


def test_bad_arguments() -> None:
    X, y = _data()
    with pytest.raises(ValueError, match="steps"):
        train_batched(X, y, 3, np.ones((1, 5)), adam=[True], seeds=[0], epochs=1, l2=0.0)
    with pytest.raises(ValueError, match="configs"):
        train_batched(X, y, 3, np.ones((2, 3)), adam=[True], seeds=[0], epochs=1, l2=0.0)
    with pytest.raises(ValueError, match="at least"):
        steps_per_epoch(3, 16)


def test_selective_recording_matches_full_recording() -> None:
    X, y = _data()
    T = 2 * steps_per_epoch(len(X), 16)
    lrs = np.stack([np.full(T, lr) for lr in (0.01, 0.1, 0.05, 0.3, 0.02)])
    adam = [True, False, True, False, True]
    kw = {"adam": adam, "seeds": [0, 1], "epochs": 2, "l2": 1e-3, "dtype": torch.float64}
    full = train_batched(X, y, 3, lrs, **kw)
    some = train_batched(X, y, 3, lrs, record_norms=[False, True, True, False, False], **kw)
    none = train_batched(X, y, 3, lrs, record_norms=False, **kw)
    assert full.recorded == (0, 1, 2, 3, 4) and some.recorded == (1, 2)
    assert none.norms is None and none.norms_of(0) is None and some.norms_of(0) is None
    # (column positions differ between the batches, so summation order may too)
    for c in (1, 2):
        np.testing.assert_allclose(some.norms_of(c), full.norms[:, c], rtol=1e-12)
    np.testing.assert_allclose(some.weights, full.weights, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(none.weights, full.weights, rtol=1e-12, atol=1e-15)
