"""The batched trainer's momentum and iterate averaging against independent references.

* SGD with momentum against ``torch.optim.SGD(momentum=0.9)``, one run at a time (float64).
* The averaged weights against an explicit average of the saved iterates of such a run: the
  tail average (the plain mean of the last iterates), the EMA (also against
  ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``) and schedule-free's
  weighted average (``lr^2`` weights) of a plain run, the arm ``sf-beta-0``.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refinedlr import get_schedule  # noqa: E402
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn  # noqa: E402

from refinedlr_bench.logreg import (  # noqa: E402
    add_bias,
    batch_indices,
    ema_weights,
    schedule_free_averaging,
    steps_per_epoch,
    tail_average_weights,
    train_batched,
)

L2, B, EPOCHS, K = 1e-2, 8, 4, 3


def _data(n: int = 61, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.argmax(X @ rng.normal(size=(d, K)) + rng.gumbel(size=(n, K)), axis=1)
    return X, y.astype(np.int64)


def _torch_run(
    X: np.ndarray, y: np.ndarray, lrs: np.ndarray, *, momentum: float, seed: int, ema: float = 0.5
) -> tuple[list[np.ndarray], np.ndarray]:
    """One run of ``torch.optim.SGD`` (float64): every iterate after each step, and the EMA of
    ``AveragedModel(get_ema_multi_avg_fn(ema))`` updated after each step."""
    Xa, yt = torch.tensor(add_bias(X)), torch.tensor(y)
    D = Xa.shape[1]
    model = torch.nn.Linear(D, K, bias=False).double()
    torch.nn.init.zeros_(model.weight)
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema))
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=momentum)
    iterates = []
    for t, idx in enumerate(batch_indices(len(X), B, EPOCHS, seed)):
        opt.param_groups[0]["lr"] = float(lrs[t])
        opt.zero_grad()
        i = torch.as_tensor(idx)
        W = model.weight.T  # [D, K], the trainer's layout
        loss = (
            torch.nn.functional.cross_entropy(Xa[i] @ W, yt[i]) + 0.5 * L2 * (W[: D - 1] ** 2).sum()
        )
        loss.backward()
        opt.step()
        averaged.update_parameters(model)
        iterates.append(model.weight.detach().T.numpy().copy())
    return iterates, averaged.module.weight.detach().T.numpy().copy()


def _setup() -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    X, y = _data()
    T = EPOCHS * steps_per_epoch(len(X), B)
    return X, y, T, 0.3 * get_schedule("linear", T).preview()


def _train(X: np.ndarray, y: np.ndarray, lrs: np.ndarray, **kw: object) -> np.ndarray:
    res = train_batched(
        X, y, K, lrs, seeds=[0, 2], epochs=EPOCHS, l2=L2, batch_size=B, dtype=torch.float64, **kw
    )  # type: ignore[arg-type]
    return res.weights


def test_momentum_is_torch_sgd_with_momentum() -> None:
    X, y, _T, lin = _setup()
    lrs = np.stack([lin, lin, 0.1 * lin, 3.0 * lin])
    mom = [0.9, 0.0, 0.9, 0.5]
    w = _train(X, y, lrs, adam=[False, False, True, False], momentum=[*mom[:2], 0.0, mom[3]])
    for s_i, seed in enumerate([0, 2]):
        for c in (0, 1, 3):
            ref = _torch_run(X, y, lrs[c], momentum=mom[c], seed=seed)[0][-1]
            assert np.abs(ref).max() > 0.05  # the runs moved
            np.testing.assert_allclose(w[s_i, c], ref, rtol=0, atol=1e-12)
    # momentum changes the run
    assert np.abs(w[:, 0] - w[:, 1]).max() > 1e-3


def test_plain_configs_do_not_change_beside_momentum_configs() -> None:
    X, y, _T, lin = _setup()
    alone = _train(X, y, np.stack([lin, lin]), adam=[False, True])
    mixed = _train(X, y, np.stack([lin, lin, lin]), adam=[False, True, False], momentum=[0, 0, 0.9])
    np.testing.assert_array_equal(mixed[:, :2], alone)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_averages_are_averages_of_the_saved_iterates(momentum: float) -> None:
    X, y, T, lin = _setup()
    sf = schedule_free_averaging(lin[None] + 0.05)[0]  # lr^2-weighted, as schedule-free's x
    rows = [np.ones(T), tail_average_weights(T, 0.5), ema_weights(T, 0.8), sf]
    lrs = np.stack([lin, lin, lin, lin + 0.05])
    w = _train(X, y, lrs, adam=[False] * 4, momentum=momentum, averaging=np.stack(rows))
    for s_i, seed in enumerate([0, 2]):
        its, ema = _torch_run(X, y, lin, momentum=momentum, seed=seed, ema=0.8)
        np.testing.assert_allclose(w[s_i, 0], its[-1], atol=1e-12)
        m = round(0.5 * T)
        np.testing.assert_allclose(w[s_i, 1], np.mean(its[T - m :], axis=0), atol=1e-12)
        np.testing.assert_allclose(w[s_i, 2], ema, atol=1e-12)
        decay = np.array([0.8 ** (T - 1 - t) * (0.2 if t else 1.0) for t in range(T)])
        np.testing.assert_allclose(w[s_i, 2], np.tensordot(decay, its, axes=1), atol=1e-12)
        its2 = _torch_run(X, y, lin + 0.05, momentum=momentum, seed=seed)[0]
        lr_max2 = np.maximum.accumulate(lin + 0.05) ** 2
        explicit = np.tensordot(lr_max2 / lr_max2.sum(), its2, axes=1)
        np.testing.assert_allclose(w[s_i, 3], explicit, atol=1e-12)


def test_averaging_weights_helpers() -> None:
    assert tail_average_weights(10, 0.5)[4] == 0 and tail_average_weights(10, 0.5)[5] == 1
    np.testing.assert_allclose(tail_average_weights(10, 0.5)[5:], 1 / np.arange(1, 6))
    assert tail_average_weights(3, 0.0).tolist() == [0, 0, 1]  # at least the last iterate
    np.testing.assert_allclose(ema_weights(3, 0.9), [1.0, 0.1, 0.1], rtol=1e-15)


@pytest.mark.parametrize(
    "kw",
    [
        {"adam": [True, False], "momentum": [0.9, 0.0]},
        {"adam": [False, False], "schedule_free": [True, False], "momentum": [0.9, 0.0]},
        {"adam": [False, False], "averaging": np.ones((2, 3))},
        {"adam": [False, False], "schedule_free": [True, False], "sf_beta": [0.0, None]},
        {"adam": [False, False], "schedule_free": True, "sf_eval": ["x", "y"]},
    ],
)
def test_bad_options_are_refused(kw: dict[str, object]) -> None:
    X, y, _T, lin = _setup()
    with pytest.raises(ValueError):
        _train(X, y, np.stack([lin, lin]), **kw)
