"""Norms of the update direction of Adam-type optimizers, from the optimizer's state after a step.

The update direction ``u_t`` is the step divided by the learning rate, without decoupled weight
decay: ``u = m_hat / (sqrt(v_hat) + eps)`` for Adam and AdamW, the rectified or Nesterov step for
RAdam and NAdam (the how-to page "A plain PyTorch loop" gives each); the kinds are
``update_l2 = ||u_t||_2`` and ``update_l1 = ||u_t||_1``.

>>> import torch
>>> p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
>>> opt = torch.optim.Adam([p], lr=0.1, eps=0.0)
>>> p.grad = torch.tensor([0.5, -3.0])
>>> opt.step()
>>> update_norms(opt, ("update_l2", "update_l1"))  # first step: u = sign(g)
tensor([1.4142, 2.0000], dtype=torch.float64)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.optim import Optimizer

from .norms import dtensor_type, norms_of, per_tensor_norms

#: The update-direction kinds and their orders.
UPDATE_KINDS = {"update_l2": 2.0, "update_l1": 1.0}

#: Optimizers whose state gives the update direction (and their subclasses).
SUPPORTED_OPTIMIZERS: tuple[type[Optimizer], ...] = (
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.NAdam,
    torch.optim.RAdam,
)

#: At most this many elements of temporaries at a time (one parameter may exceed it).
CHUNK_ELEMENTS = 1 << 25


class UnsupportedOptimizerError(TypeError):
    """The optimizer keeps no Adam-type state, so its update direction is not known here."""


def check_update_optimizer(optimizer: Any) -> Optimizer:
    """The torch optimizer behind ``optimizer`` (unwrapping accelerate's / Lightning's wrappers)
    if it is one of :data:`SUPPORTED_OPTIMIZERS`; otherwise :class:`UnsupportedOptimizerError`."""
    inner = optimizer
    for _ in range(4):
        if isinstance(inner, SUPPORTED_OPTIMIZERS):
            return inner
        nested = getattr(inner, "optimizer", None)
        if nested is None or nested is inner:
            break
        inner = nested
    name = type(inner).__name__
    if inner is not optimizer:
        name += f" (in {type(optimizer).__name__})"
    names = ", ".join(f"torch.optim.{c.__name__}" for c in SUPPORTED_OPTIMIZERS)
    raise UnsupportedOptimizerError(
        f"the kinds update_l2 / update_l1 need an Adam-type optimizer's state; {name} is not one "
        f"of {names} (for other optimizers record l2 / l1, the gradient norms)"
    )


def _real(t: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor, as a real view of a complex tensor."""
    dtensor = dtensor_type()
    t = t.to_local() if dtensor is not None and isinstance(t, dtensor) else t
    return torch.view_as_real(t) if t.is_complex() else t


def _steps_on_device(steps: list[Any]) -> bool:
    """Whether the step counts live on an accelerator (then the scalars are computed there)."""
    return any(isinstance(s, torch.Tensor) and s.device.type != "cpu" for s in steps)


class _Coefficients:
    """Per-tensor scalars of ``u = a * (m + c * g') / (w * sqrt(v) + e)`` for one param group
    (``c``: NAdam's weight of ``g' = +-g (+ wd * p)``), computed with numpy, or with torch when the
    step counts are on the device (``fused`` / ``capturable``: no host synchronisation)."""

    def __init__(self, kind: str, group: dict[str, Any], states: list[dict[str, Any]]) -> None:
        steps = [s["step"] for s in states]
        self.on_device = _steps_on_device(steps)
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        xp: Any = torch if self.on_device else np
        t = self._vector(steps)
        bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
        sq2 = xp.sqrt(bc2)
        one = xp.ones_like(t)
        self.c: Any = None
        if kind == "adam":
            self.a, self.w, self.e = sq2 / bc1, one, eps * sq2
        elif kind == "radam":
            rho_inf = 2.0 / (1.0 - beta2) - 1.0
            rho_t = rho_inf - 2.0 * t * beta2**t / bc2
            adaptive = rho_t > 5.0
            rho = xp.where(adaptive, rho_t, 5.0 * one)  # (r is not used where rho_t <= 5)
            r = xp.sqrt(
                (rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
            )
            self.a = xp.where(adaptive, r * sq2 / bc1, 1.0 / bc1)
            self.w = xp.where(adaptive, one, 0.0 * one)
            self.e = xp.where(adaptive, eps * one, one)
        else:  # nadam: u = (c1 g' + c2 m) / (sqrt(v) / sq2 + eps - c1 wd lr)
            psi = float(group["momentum_decay"])
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * psi))
            prod = self._vector([s["mu_product"] for s in states])
            c1 = (1.0 - mu) / (1.0 - prod)
            c2 = mu_next / (1.0 - prod * mu_next)
            wd = float(group["weight_decay"])
            coupled = wd != 0.0 and not group.get("decoupled_weight_decay", False)
            shift = c1 * (wd * float(group["lr"])) if coupled else 0.0 * one
            self.a, self.w, self.e, self.c = c2 * sq2, one, sq2 * (eps - shift), c1 / c2

    def _vector(self, values: list[Any]) -> Any:
        if self.on_device:
            first = next(v for v in values if isinstance(v, torch.Tensor))
            return torch.stack(
                [torch.as_tensor(v, device=first.device).reshape(()).double() for v in values]
            )
        return np.array([float(v) for v in values], dtype=np.float64)

    def take(self, values: Any, index: list[int], like: torch.Tensor) -> list[Any]:
        """The scalars of the tensors ``index``: python floats, or 0-d tensors of the device and
        dtype of ``like`` (the state's: foreach kernels keep their fast path)."""
        if not self.on_device:
            return [float(values[i]) for i in index]
        items = values.to(like.device, like.dtype).unbind()  # (no list indexing: no upload)
        return [items[i] for i in index]


def _chunks(sizes: list[int], limit: int) -> list[list[int]]:
    """Consecutive index lists whose sizes add up to at most ``limit`` (or one larger item)."""
    out: list[list[int]] = []
    total = 0
    for i, n in enumerate(sizes):
        if not out or (out[-1] and total + n > limit):
            out.append([])
            total = 0
        out[-1].append(i)
        total += n
    return out


def _unscaled(
    optimizer: Any, chunk_elements: int
) -> Iterator[tuple[list[torch.Tensor], list[Any], list[torch.Tensor], bool]]:
    """Per chunk: ``u / a`` (local tensors), the factors ``a``, the ``exp_avg`` states (for their
    DTensor placements) and whether they are DTensors. Scaling by ``a`` is left to the caller: a
    norm takes it per tensor, without another pass over the elements."""
    opt = check_update_optimizer(optimizer)
    nadam = isinstance(opt, torch.optim.NAdam)
    kind = "radam" if isinstance(opt, torch.optim.RAdam) else "nadam" if nadam else "adam"
    dtensor = dtensor_type()
    for group in opt.param_groups:
        params = [
            p for p in group["params"] if p.grad is not None and "exp_avg" in opt.state.get(p, {})
        ]
        if not params:
            continue
        states = [opt.state[p] for p in params]
        coef = _Coefficients(kind, group, states)
        vkey = "max_exp_avg_sq" if group.get("amsgrad", False) else "exp_avg_sq"
        wd = float(group.get("weight_decay", 0.0))
        coupled = kind == "nadam" and wd != 0.0 and not group.get("decoupled_weight_decay", False)
        for index in _chunks([p.numel() for p in params], chunk_elements):
            firsts = [states[i]["exp_avg"] for i in index]
            distributed = dtensor is not None and isinstance(firsts[0], dtensor)
            if distributed and any(m.is_complex() for m in firsts):
                raise NotImplementedError("update norms of complex DTensor parameters")
            ms = [_real(m) for m in firsts]
            denom = list(torch._foreach_sqrt([_real(states[i][vkey]) for i in index]))
            w = coef.take(coef.w, index, ms[0])
            if not all(isinstance(x, float) and x == 1.0 for x in w):
                torch._foreach_mul_(denom, w)
            torch._foreach_add_(denom, coef.take(coef.e, index, ms[0]))
            if kind == "nadam":
                grads = [_real(params[i].grad) for i in index]
                c = coef.take(coef.c, index, ms[0])
                u = list(torch._foreach_mul(grads, c))
                if group.get("maximize", False):
                    torch._foreach_neg_(u)
                if coupled:
                    ps = [_real(params[i].detach()) for i in index]
                    torch._foreach_add_(u, torch._foreach_mul(ps, [wd * x for x in c]))
                torch._foreach_add_(u, ms)
                torch._foreach_div_(u, denom)
            else:
                u = list(torch._foreach_div(ms, denom))
            del denom
            yield u, coef.take(coef.a, index, ms[0]), firsts, distributed


def _as_dtensors(us: list[torch.Tensor], like: list[Any]) -> list[torch.Tensor]:
    dtensor: Any = dtensor_type()
    return [
        dtensor.from_local(
            u, m.device_mesh, m.placements, run_check=False, shape=m.shape, stride=m.stride()
        )
        for u, m in zip(us, like, strict=True)
    ]


@torch.no_grad()
def update_norms(
    optimizer: Any, kinds: Sequence[str] = ("update_l2",), *, chunk_elements: int = CHUNK_ELEMENTS
) -> torch.Tensor:
    """The global norms of the last step's update direction, one per kind, as a device tensor.

    ``optimizer``: a torch ``Adam``, ``AdamW``, ``NAdam`` or ``RAdam`` (or a wrapper of one, such
    as accelerate's ``AcceleratedOptimizer``); call it after ``optimizer.step()`` and before
    ``zero_grad()`` (parameters without a gradient are left out). No host synchronisation; with
    FSDP2 every rank must call it. Accumulated in float64.
    """
    ords = [UPDATE_KINDS[k] for k in kinds]
    parts: list[torch.Tensor] = []  # per chunk: (sum of squares or of |u|, per kind)
    for u, a, firsts, distributed in _unscaled(optimizer, chunk_elements):
        if distributed:  # the global norms over the mesh (one all_reduce)
            torch._foreach_mul_(u, a)
            n = norms_of(_as_dtensors(u, firsts), ords).double()
            parts.append(
                torch.stack([x.square() if o == 2.0 else x for x, o in zip(n, ords, strict=True)])
            )
            continue
        device = u[0].device
        sums = []
        for o in ords:  # ||a u'|| = a ||u'|| per tensor (a > 0)
            scaled = torch._foreach_mul(per_tensor_norms(u, o), a)
            norms = torch.stack([x.to(device, torch.float64) for x in scaled])
            sums.append(norms.square().sum() if o == 2.0 else norms.sum())
        parts.append(torch.stack(sums))
    if not parts:
        return torch.zeros(len(ords), dtype=torch.float64)
    total = torch.stack([p.to(parts[0].device) for p in parts]).sum(0)
    return torch.stack([t.sqrt() if o == 2.0 else t for t, o in zip(total, ords, strict=True)])
