"""Multinomial logistic regression: a batched mini-batch trainer and a float64 optimum solver.

The objective (identical in training and in ``f*``) on data ``x_i in R^d`` (a bias feature 1 is
appended, ``D = d + 1``) with labels ``y_i in {0..K-1}`` and weights ``W in R^{D x K}``::

    f(W) = (1/n) sum_i CE(softmax(x_i W), y_i) + (lam / 2) ||W[:d]||_F^2

The l2 penalty acts on the weights, not on the biases (row ``d``). ``lam > 0`` makes ``f`` strongly
convex in the weights, so the optimum is attained even on separable data (where the unregularised
objective has infimum 0 and no minimiser).

:func:`train_batched` trains many runs at once: every run has its own per-step learning-rate
vector (so runs may differ in base LR *and* schedule) and its optimizer (Adam or plain SGD, each
also in its schedule-free form); runs with the same seed see the same mini-batches (a paired
design). Weights live in one tensor of shape
``[S, D, K, C]`` (seeds x features x classes x configurations), so one step is two batched matrix
products (``torch.bmm``), a softmax and a few element-wise updates for all ``S * C`` runs. The
mini-batch gradient is in closed form, ``(1/B) X_b^T (softmax(X_b W) - Y_b) + lam W[:d]``, and the
per-run l1 and l2 norms of it (over all parameters, penalty included) are recorded at every step.

:func:`solve_optimum` finds ``f*`` in float64 (L-BFGS, then Newton steps to a gradient norm far
below ``1e-9``); :func:`objective` and :func:`accuracy` score many weight sets in float64.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3)); y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    >>> opt = solve_optimum(X, y, 3, l2=1e-2)
    >>> opt.grad_norm < 1e-9
    True
    >>> lrs = np.full((2, 4 * 2), 0.1)           # 2 configs, T = 2 epochs x 4 steps
    >>> res = train_batched(X, y, 3, lrs, adam=[True, False], seeds=[0, 1], epochs=2, l2=1e-2)
    >>> res.weights.shape, res.norms.shape       # (S, C, D, K), (S, C, T, 2)
    ((2, 2, 4, 3), (2, 2, 8, 2))
    >>> bool(np.all(objective(X, y, res.weights, l2=1e-2) >= opt.value))
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy import optimize

__all__ = [
    "SF_MOMENTUM",
    "BatchResult",
    "Optimum",
    "accuracy",
    "add_bias",
    "batch_indices",
    "ema_weights",
    "full_gradient",
    "objective",
    "schedule_free_averaging",
    "solve_optimum",
    "steps_per_epoch",
    "tail_average_weights",
    "train_batched",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Adam's defaults in this benchmark (the issue's protocol).
ADAM_BETAS = (0.9, 0.95)
ADAM_EPS = 1e-8

#: The interpolation constant beta of schedule-free SGD (``schedulefree.SGDScheduleFree``'s
#: default ``momentum``).
SF_MOMENTUM = 0.9


def add_bias(X: npt.ArrayLike) -> FloatArray:
    """Append a column of ones (the bias feature) to ``X``.

    >>> add_bias(np.zeros((2, 1)))
    array([[0., 1.],
           [0., 1.]])
    """
    A = np.asarray(X, dtype=np.float64)
    return np.concatenate([A, np.ones((A.shape[0], 1))], axis=1)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Mini-batches per epoch: ``n // batch_size`` (the incomplete last batch is dropped).

    >>> steps_per_epoch(150, 16)
    9
    """
    if n < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} training examples, got {n}")
    return n // batch_size


def batch_indices(n: int, batch_size: int, epochs: int, seed: int) -> IntArray:
    """The data order of one seed: ``[T, batch_size]`` example indices, ``T = epochs * n // B``.

    Every epoch is a fresh permutation from ``numpy.random.default_rng(seed)``; the last
    ``n mod B`` examples of each permutation are skipped that epoch.

    >>> batch_indices(5, 2, 2, seed=0).shape
    (4, 2)
    """
    spe = steps_per_epoch(n, batch_size)
    rng = np.random.default_rng(seed)
    out = np.empty((epochs * spe, batch_size), dtype=np.int64)
    for e in range(epochs):
        perm = rng.permutation(n)[: spe * batch_size]
        out[e * spe : (e + 1) * spe] = perm.reshape(spe, batch_size)
    return out


@dataclasses.dataclass
class BatchResult:
    """What :func:`train_batched` returns.

    Attributes:
        weights: final weights (the training dtype), shape ``(S, C, D, K)`` (seed, config,
            feature+bias, class).
        norms: per-step mini-batch gradient norms of the recorded configs (the training dtype),
            shape ``(S, R, T, 2)``; ``[..., 0]`` is the l1 norm, ``[..., 1]`` the l2 norm (all
            parameters, penalty included), measured at the iterate before the step's update.
            ``None`` if nothing was recorded.
        recorded: the config indices of the rows of ``norms`` (all configs by default, so
            ``norms[s, c]`` is config ``c``).
        seconds: wall time of the training loop.
        adam_norms: with ``record_adam=True``, per-step norms of Adam's preconditioned step for
            the recorded configs, shape ``(S, R, T, 2)`` like ``norms``: ``[..., 0]`` is the l2
            norm of the bias-corrected update direction ``m_hat / (sqrt(v_hat) + eps)``,
            ``[..., 1]`` the preconditioned gradient norm ``sqrt(sum g^2 / (sqrt(v_hat) + eps))``
            (the dual norm of Adam's diagonal metric), both with the moments after the step's
            update; NaN for recorded SGD configs. ``None`` otherwise.
    """

    weights: npt.NDArray[np.floating[Any]]
    norms: npt.NDArray[np.floating[Any]] | None
    recorded: tuple[int, ...]
    seconds: float
    adam_norms: npt.NDArray[np.floating[Any]] | None = None

    def norms_of(self, config: int) -> npt.NDArray[np.floating[Any]] | None:
        """The ``(S, T, 2)`` norms of ``config``, or ``None`` if it was not recorded."""
        if self.norms is None or config not in self.recorded:
            return None
        return self.norms[:, self.recorded.index(config)]

    def adam_norms_of(self, config: int) -> npt.NDArray[np.floating[Any]] | None:
        """The ``(S, T, 2)`` Adam step norms of ``config`` (``None`` if not recorded)."""
        if self.adam_norms is None or config not in self.recorded:
            return None
        return self.adam_norms[:, self.recorded.index(config)]


def schedule_free_averaging(
    lrs: npt.ArrayLike, *, weight_lr_power: float = 2.0, r: float = 0.0
) -> FloatArray:
    """The averaging weights ``c_{t+1}`` of schedule-free training, per config and step.

    The averaged point is ``x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}`` with
    ``c_{t+1} = w_t / sum_{i<=t} w_i`` and ``w_t = (t + 1)^r * max_{i<=t}(lr_i)^p``
    (Defazio et al. 2024; the ``schedulefree`` package's ``weight_lr_power`` p = 2 and ``r`` = 0
    by default): during a warm-up the early points count less, ``c = lr_t^2 / sum_i lr_i^2``, and
    with a constant LR ``c_{t+1} = 1 / (t + 1)``, the uniform average. ``c = 0`` while every
    weight so far is 0. Computed in float64 in the package's order of operations.

    >>> schedule_free_averaging([[1.0, 1.0, 1.0, 1.0]]).round(4)
    array([[1.    , 0.5   , 0.3333, 0.25  ]])
    >>> schedule_free_averaging([[0.5, 1.0, 1.0]]).round(4)  # warm-up: weights 0.25, 1, 1
    array([[1.    , 0.8   , 0.4444]])
    """
    lr = np.asarray(lrs, dtype=np.float64)
    if lr.ndim != 2:
        raise ValueError(f"lrs must be [configs, steps], got shape {lr.shape}")
    lr_max = np.maximum.accumulate(lr, axis=1)
    k1 = np.arange(1, lr.shape[1] + 1, dtype=np.float64)
    w = k1**r * lr_max**weight_lr_power
    total = np.cumsum(w, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0)
    return np.asarray(c, dtype=np.float64)


def tail_average_weights(total_steps: int, fraction: float) -> FloatArray:
    """Averaging weights (:func:`train_batched`'s ``averaging``) of the uniform average of the
    last ``m = max(1, round(fraction * T))`` iterates (a tail or suffix average).

    >>> tail_average_weights(5, 0.4)
    array([0. , 0. , 0. , 1. , 0.5])
    """
    m = max(1, round(fraction * total_steps))
    t = np.arange(total_steps, dtype=np.float64) - (total_steps - m)
    return np.where(t >= 0, 1.0 / np.maximum(t + 1.0, 1.0), 0.0)


def ema_weights(total_steps: int, decay: float) -> FloatArray:
    """Averaging weights of the exponential moving average that
    ``torch.optim.swa_utils.get_ema_multi_avg_fn(decay)`` keeps when updated after every step:
    the first update copies the weights, later ones move by ``1 - decay``.

    >>> ema_weights(4, 0.75)
    array([1.  , 0.25, 0.25, 0.25])
    """
    w = np.full(total_steps, 1.0 - decay)
    w[:1] = 1.0
    return w


def train_batched(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    n_classes: int,
    lrs: npt.ArrayLike,
    *,
    adam: Sequence[bool] | npt.ArrayLike,
    seeds: Sequence[int],
    epochs: int,
    l2: float,
    batch_size: int = 16,
    betas: tuple[float, float] = ADAM_BETAS,
    eps: float = ADAM_EPS,
    record_norms: bool | Sequence[bool] | npt.ArrayLike = True,
    dtype: torch.dtype = torch.float32,
    progress: Callable[[int], Any] | None = None,
    progress_every: int = 256,
    record_adam: bool = False,
    schedule_free: bool | Sequence[bool] | npt.ArrayLike = False,
    sf_momentum: float = SF_MOMENTUM,
    sf_weight_decay: float = 0.0,
    momentum: float | Sequence[float] | npt.ArrayLike = 0.0,
    averaging: npt.ArrayLike | None = None,
    sf_beta: Sequence[float | None] | None = None,
    sf_eval: Sequence[str] | None = None,
) -> BatchResult:
    """Train ``len(seeds) * C`` logistic-regression runs from zero weights, all at once.

    Args:
        X: training features ``[n, d]`` (without the bias column; it is added here).
        y: integer labels ``[n]`` in ``0 .. n_classes - 1``.
        n_classes: ``K``.
        lrs: absolute learning rate of every config at every step, ``[C, T]`` with
            ``T = epochs * (n // batch_size)`` (base LR times the schedule's multipliers).
        adam: per config, ``True`` for Adam (``betas``, ``eps``, bias-corrected, as
            ``torch.optim.Adam``), ``False`` for plain SGD (``W -= lr * g``).
        seeds: data-order seeds (see :func:`batch_indices`); each config runs once per seed.
        epochs: passes over the data.
        l2: the penalty ``lam`` (weights only, not biases).
        batch_size: mini-batch size ``B``.
        record_norms: record the l1/l2 norms of every step's mini-batch gradient: for every
            config (``True``), none (``False``) or those flagged in a per-config sequence.
        dtype: training precision (float32 by default; float64 for tests).
        progress: called with the number of steps done since the last call (e.g. a tqdm
            ``update``), every ``progress_every`` steps.
        record_adam: also record the norms of Adam's preconditioned step for the recorded Adam
            configs (:attr:`BatchResult.adam_norms`); off by default.
        schedule_free: per config (or for all), train the schedule-free form of its optimizer
            (Defazio et al. 2024, as ``schedulefree.SGDScheduleFree`` / ``AdamWScheduleFree``
            compute it): the gradient is taken at ``y = (1 - beta) z + beta x``, the base step
            moves ``z`` (SGD: ``z -= lr g``; Adam: ``z -= lr g / (sqrt(v / bc2) + eps)`` with the
            bias-corrected second moment ``v`` of ``betas[1]`` and no first moment), and ``x`` is
            the average of the ``z`` with the weights of :func:`schedule_free_averaging` (the LR
            vector ``lrs`` includes any warm-up). beta is ``sf_momentum`` for SGD and
            ``betas[0]`` for Adam. The returned weights are the averaged point ``x`` (the
            package's ``optimizer.eval()``). Their norms are not recorded.
        sf_momentum: beta of schedule-free SGD.
        sf_weight_decay: the package's ``weight_decay`` for schedule-free configs, applied at
            ``y``: SGD adds ``wd * y`` to the gradient, Adam (AdamW) adds it to the normalised
            step (decoupled). 0 in the convex suite, whose objective already holds the penalty.
        momentum: per config (or for all), the heavy-ball momentum of plain SGD configs, as
            ``torch.optim.SGD(momentum=mu)`` computes it (dampening 0, no Nesterov):
            ``b = mu b + g``, ``W -= lr b``. 0 (plain SGD) by default; only for plain SGD.
        averaging: ``[C, T]`` averaging weights ``c_t`` of the plain configs: after step ``t``
            the average moves to ``A = A + c_t (W - A)`` (from ``A = 0``, the initial point), and
            the returned weights are ``A``. A row of ones is the last iterate;
            :func:`tail_average_weights`, :func:`ema_weights` and
            :func:`schedule_free_averaging` make the usual averages. ``None``: the last iterates.
            Schedule-free configs (which average on their own) need rows of ones.
        sf_beta: per config, the interpolation constant beta of a schedule-free config (NaN or
            ``None``: the default, ``betas[0]`` for Adam, ``sf_momentum`` for SGD); in (0, 1)
            (with beta 0 the averaged point is not recoverable from y and z: use the plain
            optimizer with :func:`schedule_free_averaging` weights instead).
        sf_eval: per config, where a schedule-free config is scored: ``"x"`` (the averaged
            point, the package's ``eval()``; the default) or ``"z"`` (the base sequence).

    Returns:
        A :class:`BatchResult`.
    """
    import time

    Xa = torch.as_tensor(add_bias(X), dtype=dtype)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    n, D = Xa.shape
    K = int(n_classes)
    lr_np = np.asarray(lrs, dtype=np.float64)
    if lr_np.ndim != 2:
        raise ValueError(f"lrs must be [configs, steps], got shape {lr_np.shape}")
    C, T = lr_np.shape
    spe = steps_per_epoch(n, batch_size)
    if T != epochs * spe:
        raise ValueError(f"lrs has {T} steps; epochs * (n // B) = {epochs * spe}")
    is_adam = np.asarray(adam, dtype=bool).reshape(-1)
    if is_adam.shape[0] != C:
        raise ValueError(f"adam has {is_adam.shape[0]} entries for {C} configs")
    if isinstance(record_norms, (bool, np.bool_)):
        rec_mask = np.full(C, bool(record_norms))
    else:
        rec_mask = np.asarray(record_norms, dtype=bool).reshape(-1)
        if rec_mask.shape[0] != C:
            raise ValueError(f"record_norms has {rec_mask.shape[0]} entries for {C} configs")
    if isinstance(schedule_free, (bool, np.bool_)):
        sf_mask = np.full(C, bool(schedule_free))
    else:
        sf_mask = np.asarray(schedule_free, dtype=bool).reshape(-1)
        if sf_mask.shape[0] != C:
            raise ValueError(f"schedule_free has {sf_mask.shape[0]} entries for {C} configs")
    rec_mask = rec_mask & ~sf_mask  # schedule-free runs are never recorded
    mom = np.broadcast_to(np.asarray(momentum, dtype=np.float64), (C,))
    if np.any((mom != 0) & (is_adam | sf_mask)):
        raise ValueError("momentum is for plain SGD configs only")
    avg = None if averaging is None else np.asarray(averaging, dtype=np.float64)
    if avg is not None and (avg.shape != (C, T) or np.any(avg[sf_mask] != 1.0)):
        raise ValueError(
            f"averaging must be [C, T] = [{C}, {T}] with rows of ones for schedule-free configs"
        )
    beta_over = (
        np.full(C, np.nan)
        if sf_beta is None
        else np.array([np.nan if b is None else float(b) for b in sf_beta], dtype=np.float64)
    )
    if beta_over.shape != (C,) or np.any(
        ~((beta_over > 0) & (beta_over < 1)) & ~np.isnan(beta_over)
    ):
        raise ValueError("sf_beta needs one value in (0, 1) (or NaN for the default) per config")
    at_z = (
        np.zeros(C, dtype=bool)
        if sf_eval is None
        else np.asarray([e == "z" for e in sf_eval], dtype=bool)
    )
    if at_z.shape != (C,) or (sf_eval is not None and any(e not in ("x", "z") for e in sf_eval)):
        raise ValueError('sf_eval needs "x" or "z" per config')
    S = len(seeds)
    # Internal order of the C axis: [Adam recorded | Adam | SGD | SGD recorded | schedule-free
    # Adam | schedule-free SGD], so each update rule works on one contiguous slice and the
    # recorded configs are the two ends of the plain part [0, Cp).
    plain = ~sf_mask
    groups = [
        np.flatnonzero(plain & is_adam & rec_mask),
        np.flatnonzero(plain & is_adam & ~rec_mask),
        np.flatnonzero(plain & ~is_adam & ~rec_mask),
        np.flatnonzero(plain & ~is_adam & rec_mask),
        np.flatnonzero(sf_mask & is_adam),
        np.flatnonzero(sf_mask & ~is_adam),
    ]
    order = np.concatenate(groups)
    Ra, Ca, Rs = len(groups[0]), len(groups[0]) + len(groups[1]), len(groups[3])
    Cp = Ca + len(groups[2]) + Rs  # end of the plain configs
    Cfa = Cp + len(groups[4])  # end of the schedule-free Adam configs
    b1, b2 = betas
    steps1 = np.arange(1, T + 1, dtype=np.float64)
    bc1 = 1.0 - b1**steps1
    bc2 = 1.0 - b2**steps1
    # torch.optim.Adam: W -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
    #                      = (lr sqrt(bc2) / bc1) * m / (sqrt(v) + eps sqrt(bc2))
    lr_adam = torch.as_tensor((lr_np[order[:Ca]] * (np.sqrt(bc2) / bc1)).T.copy(), dtype=dtype)
    eps_t = (eps * np.sqrt(bc2)).tolist()
    lr_sgd = torch.as_tensor(lr_np[order[Ca:Cp]].T.copy(), dtype=dtype)  # [T, Cs]
    Cf = C - Cp
    if Cf:
        # schedule-free: per step and config the LR, the averaging weight c and the coefficient
        # of the gradient in the in-place update of y (the package's arithmetic, in float64)
        lr_f = lr_np[order[Cp:]]  # [Cf, T]
        c_f = schedule_free_averaging(lr_f)
        beta_f = np.where(np.arange(Cf) < Cfa - Cp, betas[0], sf_momentum)[:, None]
        over = beta_over[order[Cp:]]
        beta_f[~np.isnan(over), 0] = over[~np.isnan(over)]
        coef_f = lr_f * (beta_f * (1.0 - c_f) - 1.0)
        sf_lr = torch.as_tensor(lr_f.T.copy(), dtype=dtype)  # [T, Cf]
        sf_c = torch.as_tensor(c_f.T.copy(), dtype=dtype)
        sf_coef = torch.as_tensor(coef_f.T.copy(), dtype=dtype)
        Z = torch.zeros(S, D, K, Cf, dtype=dtype)  # z; W holds y for these configs
        Vf = torch.zeros(S, D, K, Cfa - Cp, dtype=dtype)
        sf_bc2 = (1.0 - b2**steps1).tolist()
    idx = torch.as_tensor(
        np.stack([batch_indices(n, batch_size, epochs, s) for s in seeds], axis=1)
    )  # [T, S, B]
    Y = torch.nn.functional.one_hot(yt, K).to(dtype)  # [n, K]
    lam = torch.full((1, D, 1), float(l2), dtype=dtype)
    lam[0, D - 1, 0] = 0.0  # no penalty on the bias row
    W = torch.zeros(S, D, K, C, dtype=dtype)
    Wf = W.view(S, D, K * C)
    m = torch.zeros(S, D, K, Ca, dtype=dtype)
    v = torch.zeros(S, D, K, Ca, dtype=dtype)
    pen = torch.empty(S, D, K * C, dtype=dtype)  # lam * W, the penalty's gradient
    den = torch.empty(S, D, K, Ca, dtype=dtype)
    num = torch.empty(S, D, K, Ca, dtype=dtype)
    rec_a = torch.zeros(T, 2, S, Ra, dtype=dtype) if Ra else None
    rec_s = torch.zeros(T, 2, S, Rs, dtype=dtype) if Rs else None
    rec_u = torch.zeros(T, 2, S, Ra, dtype=dtype) if (record_adam and Ra) else None
    # bias-corrected direction m_hat / (sqrt(v_hat) + eps) = (sqrt(bc2) / bc1) m / den, and
    # g^2 / (sqrt(v_hat) + eps) = sqrt(bc2) g^2 / den, with den = sqrt(v) + eps sqrt(bc2)
    u_scale = (np.sqrt(bc2) / bc1).tolist()
    p_scale = np.sqrt(bc2).tolist()
    inv_b = 1.0 / batch_size
    mom_sgd = mom[order[Ca:Cp]]
    buf = torch.zeros(S, D, K, Cp - Ca, dtype=dtype) if np.any(mom_sgd != 0) else None
    mom_t = torch.as_tensor(mom_sgd, dtype=dtype)
    avg_state = (  # the average and its weights [T, Cp], in the internal order
        None
        if avg is None
        else (
            torch.zeros(S, D, K, Cp, dtype=dtype),
            torch.as_tensor(avg[order[:Cp]].T.copy(), dtype=dtype),
        )
    )
    t0 = time.perf_counter()
    torch.set_flush_denormal(True)  # Adam's second moments can underflow into slow denormals
    try:
        with torch.inference_mode():
            for t in range(T):
                i = idx[t]
                Xb = Xa[i]  # [S, B, D]
                P = torch.softmax(torch.bmm(Xb, Wf).view(S, batch_size, K, C), dim=2)
                P.sub_(Y[i].unsqueeze(3))
                torch.mul(Wf, lam, out=pen)
                G = torch.baddbmm(
                    pen, Xb.transpose(1, 2), P.view(S, batch_size, K * C), alpha=inv_b
                ).view(S, D, K, C)
                if rec_a is not None:
                    Gr = G[..., :Ra].reshape(S, D * K, Ra)
                    torch.sum(Gr.abs(), dim=1, out=rec_a[t, 0])
                    torch.sum(Gr * Gr, dim=1, out=rec_a[t, 1])
                if rec_s is not None:
                    Gr = G[..., Cp - Rs : Cp].reshape(S, D * K, Rs)
                    torch.sum(Gr.abs(), dim=1, out=rec_s[t, 0])
                    torch.sum(Gr * Gr, dim=1, out=rec_s[t, 1])
                if Ca:
                    Ga = G[..., :Ca]
                    m.lerp_(Ga, 1.0 - b1)
                    v.mul_(b2).addcmul_(Ga, Ga, value=1.0 - b2)
                    torch.sqrt(v, out=den).add_(eps_t[t])
                    if rec_u is not None:
                        dr = den[..., :Ra]
                        ur = (m[..., :Ra] / dr).reshape(S, D * K, Ra)
                        torch.sum(ur * ur, dim=1, out=rec_u[t, 0])
                        rec_u[t, 0].mul_(u_scale[t] ** 2)
                        gr = Ga[..., :Ra]
                        torch.sum((gr * gr / dr).reshape(S, D * K, Ra), dim=1, out=rec_u[t, 1])
                        rec_u[t, 1].mul_(p_scale[t])
                    torch.mul(m, lr_adam[t], out=num)
                    W[..., :Ca].addcdiv_(num, den, value=-1.0)
                if Ca < Cp and buf is None:
                    W[..., Ca:Cp].addcmul_(G[..., Ca:Cp], lr_sgd[t], value=-1.0)
                elif Ca < Cp:  # heavy ball: b = mu b + g, W -= lr b
                    assert buf is not None
                    buf.mul_(mom_t).add_(G[..., Ca:Cp])
                    W[..., Ca:Cp].addcmul_(buf, lr_sgd[t], value=-1.0)
                if avg_state is not None:
                    avg_state[0].lerp_(W[..., :Cp], avg_state[1][t])
                if Cf:
                    Yf, Gf = W[..., Cp:], G[..., Cp:]
                    if Cfa > Cp:  # Adam: the gradient divided by sqrt(v / bc2) + eps, in place
                        Ga = Gf[..., : Cfa - Cp]
                        Vf.mul_(b2).addcmul_(Ga, Ga, value=1.0 - b2)
                        Ga.div_(torch.div(Vf, sf_bc2[t]).sqrt_().add_(eps))
                    if sf_weight_decay:
                        Gf.add_(Yf, alpha=sf_weight_decay)
                    Yf.lerp_(Z, sf_c[t])
                    Yf.addcmul_(Gf, sf_coef[t])
                    Z.addcmul_(Gf, sf_lr[t], value=-1.0)
                if progress is not None and (t + 1) % progress_every == 0:
                    progress(progress_every)
    finally:
        torch.set_flush_denormal(False)
    if progress is not None and T % progress_every:
        progress(T % progress_every)
    if Cf:  # the averaged point x = y + (1 - 1/beta) (z - y) (the package's eval())
        beta_x = torch.as_tensor(1.0 - 1.0 / beta_f[:, 0], dtype=dtype)
        W[..., Cp:].lerp_(Z, beta_x)
        z_cols = torch.as_tensor(np.flatnonzero(at_z[order[Cp:]]))
        if z_cols.numel():
            W[..., Cp + z_cols] = Z[..., z_cols]
    if avg_state is not None:
        W[..., :Cp] = avg_state[0]
    seconds = time.perf_counter() - t0
    inv = np.argsort(order)
    weights = np.ascontiguousarray(W.permute(0, 3, 1, 2).numpy()[:, inv])  # [S, C, D, K]
    parts = [r.numpy() for r in (rec_a, rec_s) if r is not None]
    norms = None
    recorded: tuple[int, ...] = ()
    if parts:
        r = np.concatenate(parts, axis=3)  # [T, 2, S, R] in internal order
        r[:, 1] = np.sqrt(r[:, 1])
        internal = np.concatenate([groups[0], groups[3]])  # config index of each column
        rows = np.argsort(internal)  # recorded configs in their original order
        norms = np.ascontiguousarray(r.transpose(2, 3, 0, 1)[:, rows])
        recorded = tuple(int(c) for c in internal[rows])
    adam_norms = None
    if rec_u is not None and norms is not None:
        u = np.sqrt(rec_u.numpy()).transpose(2, 3, 0, 1)  # [S, Ra, T, 2]
        full = np.full((S, len(internal), T, 2), np.nan, dtype=u.dtype)
        full[:, :Ra] = u  # the recorded Adam configs are the first Ra internal columns
        adam_norms = np.ascontiguousarray(full[:, rows])
    return BatchResult(
        weights=weights, norms=norms, recorded=recorded, seconds=seconds, adam_norms=adam_norms
    )


# ----------------------------------------------------------------------------------------------
# float64 objective, gradient and optimum


def _as_weights(W: npt.ArrayLike, D: int) -> tuple[FloatArray, tuple[int, ...]]:
    A = np.asarray(W, dtype=np.float64)
    if A.ndim < 2 or A.shape[-2] != D:
        raise ValueError(f"weights must have shape (..., {D}, K), got {A.shape}")
    lead = A.shape[:-2]
    return A.reshape(-1, D, A.shape[-1]), lead


def _scoring_inputs(
    X: npt.ArrayLike, y: npt.ArrayLike, W: npt.ArrayLike
) -> tuple[FloatArray, IntArray, FloatArray, tuple[int, ...]]:
    """Features with the bias column, labels, the weights as a stack ``(R, D, K)`` and the
    stack's leading shape."""
    Xa = add_bias(X)
    Ws, lead = _as_weights(W, Xa.shape[1])
    return Xa, np.asarray(y, dtype=np.int64), Ws, lead


def objective(
    X: npt.ArrayLike, y: npt.ArrayLike, W: npt.ArrayLike, *, l2: float, chunk: int = 2048
) -> FloatArray:
    """``f(W)`` in float64 for one weight matrix ``(D, K)`` (a 0-d array) or a stack
    ``(..., D, K)`` (an array of shape ``...``). Non-finite weights give ``inf``.

    >>> X = np.array([[1.0], [-1.0]]); y = np.array([0, 1])
    >>> round(float(objective(X, y, np.zeros((2, 2)), l2=0.0)), 6)  # log 2
    0.693147
    """
    Xa, yi, Ws, lead = _scoring_inputs(X, y, W)
    n, D = Xa.shape
    R, _, K = Ws.shape
    finite = np.all(np.isfinite(Ws), axis=(1, 2))
    Wc = np.where(finite[:, None, None], Ws, 0.0)
    Wm = Wc.transpose(1, 2, 0).reshape(D, K * R)  # [D, K*R]
    ce = np.zeros(R)
    for a in range(0, n, chunk):
        Z = (Xa[a : a + chunk] @ Wm).reshape(-1, K, R)
        zmax = Z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(Z - zmax).sum(axis=1)) + zmax[:, 0]
        zy = np.take_along_axis(Z, yi[a : a + chunk, None, None], axis=1)[:, 0]
        ce += (lse - zy).sum(axis=0)
    pen = 0.5 * l2 * np.sum(Wc[:, : D - 1] ** 2, axis=(1, 2))
    out = ce / n + pen
    out[~finite] = np.inf
    out[~np.isfinite(out)] = np.inf
    return np.asarray(out.reshape(lead), dtype=np.float64)


def accuracy(
    X: npt.ArrayLike, y: npt.ArrayLike, W: npt.ArrayLike, *, chunk: int = 2048
) -> FloatArray:
    """Fraction of correct argmax predictions for one weight matrix (a 0-d array) or a stack
    ``(..., D, K)``.

    >>> float(accuracy(np.array([[1.0], [-1.0]]), np.array([0, 1]), np.array([[1.0, -1.0], [0, 0]])))
    1.0
    """
    Xa, yi, Ws, lead = _scoring_inputs(X, y, W)
    n, D = Xa.shape
    R, _, K = Ws.shape
    Wm = np.nan_to_num(Ws, nan=0.0, posinf=0.0, neginf=0.0).transpose(1, 2, 0).reshape(D, K * R)
    hits = np.zeros(R)
    for a in range(0, n, chunk):
        Z = (Xa[a : a + chunk] @ Wm).reshape(-1, K, R)
        hits += (Z.argmax(axis=1) == yi[a : a + chunk, None]).sum(axis=0)
    acc = hits / n
    acc[~np.all(np.isfinite(Ws), axis=(1, 2))] = np.nan
    return np.asarray(acc.reshape(lead), dtype=np.float64)


def _loss_grad(
    W: FloatArray, Xa: FloatArray, Yoh: FloatArray, l2: float
) -> tuple[float, FloatArray]:
    n, D = Xa.shape
    Z = Xa @ W
    Z -= Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    s = E.sum(axis=1, keepdims=True)
    P = E / s
    loss = float(np.mean(np.log(s[:, 0]) - np.sum(Z * Yoh, axis=1)))
    G = Xa.T @ (P - Yoh) / n
    loss += 0.5 * l2 * float(np.sum(W[: D - 1] ** 2))
    G[: D - 1] += l2 * W[: D - 1]
    return loss, G


def full_gradient(X: npt.ArrayLike, y: npt.ArrayLike, W: npt.ArrayLike, *, l2: float) -> FloatArray:
    """The full-batch gradient of ``f`` at ``W`` (``(D, K)``, float64)."""
    Xa = add_bias(X)
    yi = np.asarray(y, dtype=np.int64)
    Wm = np.asarray(W, dtype=np.float64)
    return _loss_grad(Wm, Xa, np.eye(Wm.shape[1])[yi], l2)[1]


def _hessian(W: FloatArray, Xa: FloatArray, l2: float) -> FloatArray:
    """The ``(D K) x (D K)`` Hessian of ``f`` (row-major flattening of ``W``)."""
    n, D = Xa.shape
    K = W.shape[1]
    Z = Xa @ W
    Z -= Z.max(axis=1, keepdims=True)
    P = np.exp(Z)
    P /= P.sum(axis=1, keepdims=True)
    H4 = np.zeros((D, K, D, K))
    for k in range(K):
        for l in range(k, K):  # noqa: E741
            w = P[:, k] * ((1.0 if k == l else 0.0) - P[:, l])
            block = (Xa * w[:, None]).T @ Xa / n
            H4[:, k, :, l] = block
            H4[:, l, :, k] = block
    H = H4.reshape(D * K, D * K)
    diag = np.zeros((D, K))
    diag[: D - 1] = l2
    H[np.diag_indices_from(H)] += diag.reshape(-1)
    return H


@dataclasses.dataclass(frozen=True)
class Optimum:
    """The float64 optimum of :func:`objective`.

    Attributes:
        value: ``f*``.
        weights: a minimiser ``(D, K)`` (the biases are defined up to a common shift; the solver
            returns the one with zero-mean biases).
        grad_norm: l2 norm of the full gradient at ``weights`` (the convergence certificate).
        lbfgs_iterations: L-BFGS iterations before the Newton polish.
        newton_steps: Newton steps taken.
    """

    value: float
    weights: FloatArray
    grad_norm: float
    lbfgs_iterations: int
    newton_steps: int


def solve_optimum(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    n_classes: int,
    *,
    l2: float,
    gtol: float = 1e-9,
    max_newton: int = 30,
) -> Optimum:
    """``f* = min_W f(W)`` in float64: L-BFGS (scipy), then Newton steps until ``||grad|| < gtol/100``.

    The Hessian is singular along one direction (adding a constant to every class's bias), in
    which the gradient is always zero; Newton steps use a least-squares solve. Raises
    ``RuntimeError`` if the gradient norm does not fall below ``gtol``.
    """
    Xa = add_bias(X)
    yi = np.asarray(y, dtype=np.int64)
    D = Xa.shape[1]
    K = int(n_classes)
    Yoh = np.eye(K)[yi]

    def fun(w: FloatArray) -> tuple[float, FloatArray]:
        loss, G = _loss_grad(w.reshape(D, K), Xa, Yoh, l2)
        return loss, G.reshape(-1)

    res = optimize.minimize(
        fun,
        np.zeros(D * K),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20_000, "gtol": 1e-10, "ftol": 1e-15, "maxcor": 30},
    )
    w = np.asarray(res.x, dtype=np.float64)
    loss, g = fun(w)
    steps = 0
    target = gtol / 100.0
    while np.linalg.norm(g) > target and steps < max_newton:
        H = _hessian(w.reshape(D, K), Xa, l2)
        step = np.linalg.lstsq(H, g, rcond=None)[0]
        # backtracking on the gradient norm (the objective is flat to float64 precision here)
        a = 1.0
        while a > 1e-4:
            w_new = w - a * step
            loss_new, g_new = fun(w_new)
            if np.linalg.norm(g_new) < np.linalg.norm(g) or loss_new < loss:
                break
            a *= 0.5
        else:
            break
        w, loss, g = w_new, loss_new, g_new
        steps += 1
    Wm = w.reshape(D, K).copy()
    Wm[D - 1] -= Wm[D - 1].mean()
    loss, G = _loss_grad(Wm, Xa, Yoh, l2)
    gn = float(np.linalg.norm(G))
    if not gn < gtol:
        raise RuntimeError(f"the optimum solver stopped at gradient norm {gn:.3g} > {gtol:g}")
    return Optimum(
        value=loss,
        weights=Wm,
        grad_norm=gn,
        lbfgs_iterations=int(res.nit),
        newton_steps=steps,
    )
