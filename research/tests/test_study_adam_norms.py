"""The Adam step norms recorded by ``train_batched(record_adam=True)`` (refinement study)."""

from __future__ import annotations

import numpy as np
import torch

from refinedlr_bench.logreg import add_bias, batch_indices, train_batched


def _manual(X, y, K, lrs, seed, epochs, l2, B, betas=(0.9, 0.95), eps=1e-8):
    Xa = add_bias(X)
    n, D = Xa.shape
    W = np.zeros((D, K))
    m = np.zeros_like(W)
    v = np.zeros_like(W)
    Y = np.eye(K)[y]
    lam = np.full((D, 1), l2)
    lam[-1] = 0.0
    out = []
    for t, idx in enumerate(batch_indices(n, B, epochs, seed)):
        Z = Xa[idx] @ W
        P = np.exp(Z - Z.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        G = Xa[idx].T @ (P - Y[idx]) / B + lam * W
        m = betas[0] * m + (1 - betas[0]) * G
        v = betas[1] * v + (1 - betas[1]) * G * G
        mh = m / (1 - betas[0] ** (t + 1))
        vh = v / (1 - betas[1] ** (t + 1))
        den = np.sqrt(vh) + eps
        u = mh / den
        out.append((np.linalg.norm(u), np.sqrt(np.sum(G * G / den))))
        W = W - lrs[t] * u
    return np.array(out), W


def test_adam_norms_match_a_manual_adam() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(48, 3))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    T = 2 * (48 // 8)
    lrs = np.stack([np.linspace(0.1, 0.0, T), np.linspace(0.5, 0.0, T), np.full(T, 0.05)])
    res = train_batched(
        X,
        y,
        3,
        lrs,
        adam=[True, False, True],
        seeds=[0, 1],
        epochs=2,
        l2=1e-2,
        batch_size=8,
        dtype=torch.float64,
        record_norms=[True, True, False],
        record_adam=True,
    )
    assert res.adam_norms is not None and res.adam_norms.shape == (2, 2, T, 2)
    assert np.all(np.isnan(res.adam_norms_of(1)))  # SGD config: NaN
    assert res.adam_norms_of(2) is None  # not recorded
    for s_i, seed in enumerate([0, 1]):
        ref, W = _manual(X, y, 3, lrs[0], seed, 2, 1e-2, 8)
        np.testing.assert_allclose(res.adam_norms_of(0)[s_i], ref, rtol=1e-9)
        np.testing.assert_allclose(res.weights[s_i, 0], W, rtol=1e-9, atol=1e-12)


def test_record_adam_off_changes_nothing() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(32, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    lrs = np.full((1, 8), 0.05)
    a = train_batched(X, y, 2, lrs, adam=[True], seeds=[0], epochs=2, l2=1e-3, batch_size=8)
    b = train_batched(
        X, y, 2, lrs, adam=[True], seeds=[0], epochs=2, l2=1e-3, batch_size=8, record_adam=True
    )
    assert a.adam_norms is None
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.norms, b.norms)
