"""Global norms of gradients (any tensors), on their device, without host synchronisation.

``l2 = sqrt(sum over all tensors of g**2)`` (torch's ``clip_grad_norm_(norm_type=2)`` total norm)
and ``l1 = sum |g|``; per-tensor norms by foreach kernels, accumulated in float32 (float64 for
float64 tensors). Gradients that are ``DTensor`` s (FSDP2's ``fully_shard``, tensor parallel) are
reduced exactly: local partial sums of squares (and of ``|g|``) on the local shards, divided by
their replication factor, then one ``all_reduce`` over the device mesh; every rank must call.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch.optim import Optimizer

if TYPE_CHECKING:
    from torch.distributed.tensor import DTensor

__all__ = [
    "GRADIENT_KINDS",
    "ParamsLike",
    "grad_norms",
    "grads_of",
    "norms_of",
    "params_of",
    "scale_",
]

#: The gradient-norm kinds and their orders.
GRADIENT_KINDS = {"l2": 2.0, "l1": 1.0}

ParamsLike = torch.Tensor | Iterable[torch.Tensor] | Optimizer | torch.nn.Module


@functools.cache
def _dtensor_type() -> type[DTensor] | None:
    if not torch.distributed.is_available():
        return None
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - very old torch
        return None
    return DTensor


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _per_tensor(
    tensors: list[torch.Tensor], ord: float, device: torch.device
) -> list[torch.Tensor]:
    """Per-tensor norms (0-d, accumulation dtype) of same-device, same-dtype tensors."""
    dtype = tensors[0].dtype
    acc = _acc_dtype(dtype)
    if device.type == "cpu" and ord == 1.0:
        # on CPU abs().sum() is ~3x faster than the l1 norm kernel
        return [t.abs().sum(dtype=acc) for t in tensors]
    if device.type in ("cpu", "cuda"):
        return list(torch._foreach_norm(tensors, ord, dtype=None if dtype == acc else acc))
    return [torch.linalg.vector_norm(t, ord, dtype=acc) for t in tensors]


def _group(
    tensors: Iterable[torch.Tensor],
) -> dict[tuple[torch.device, torch.dtype], list[torch.Tensor]]:
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    return groups


def _local_norms(grads: list[torch.Tensor], ords: Sequence[float]) -> torch.Tensor:
    """Global norms of plain (non-distributed) tensors, one per ``ord`` (shape ``(len(ords),)``),
    on the first tensor's device."""
    groups = _group(grads)
    if len(groups) == 1:  # the common case, kept short: it runs every step
        (((device, _), ts),) = groups.items()
        totals = []
        for ord in ords:
            norms = torch.stack(_per_tensor(ts, ord, device))
            totals.append(torch.linalg.vector_norm(norms) if ord == 2.0 else norms.sum())
        return totals[0].reshape(1) if len(totals) == 1 else torch.stack(totals)
    first = grads[0].device
    out_dtype = torch.float64 if any(dt == torch.float64 for _, dt in groups) else torch.float32
    out: list[torch.Tensor] = []
    for ord in ords:
        parts = [
            (torch.linalg.vector_norm(n) if ord == 2.0 else n.sum()).to(first, out_dtype)
            for n in (torch.stack(_per_tensor(ts, ord, dev)) for (dev, _), ts in groups.items())
        ]
        both = torch.stack(parts)
        out.append(torch.linalg.vector_norm(both) if ord == 2.0 else both.sum())
    return torch.stack(out)


def _replication(g: DTensor) -> int | None:
    """How many ranks of the mesh hold each element of a DTensor; ``None`` if not Shard/Replicate."""
    rep = 1
    for i, p in enumerate(g.placements):
        if p.is_shard():
            continue
        if p.is_replicate():
            rep *= g.device_mesh.size(i)
            continue
        return None  # Partial: pending reduction
    return rep


def _distributed_norms(
    grads: list[torch.Tensor], ords: Sequence[float], dtensor: type[DTensor]
) -> torch.Tensor:
    """Global norms when some gradients are DTensors: local partial sums, one all_reduce."""
    import torch.distributed as dist

    dts: list[DTensor] = [g for g in grads if isinstance(g, dtensor)]
    mesh = dts[0].device_mesh
    reps = [_replication(g) for g in dts]
    same_mesh = all(g.device_mesh == mesh for g in dts)
    world = dist.get_world_size()
    if mesh.ndim == 1:
        group, group_size = mesh.get_group(), mesh.size()
    elif mesh.size() == world:
        group, group_size = None, world
    else:
        group, group_size = None, -1
    plain = [g for g in grads if not isinstance(g, dtensor)]
    if not same_mesh or any(r is None for r in reps) or group_size < 0:
        if plain:
            raise NotImplementedError(
                "gradient norms of a mix of plain tensors and DTensors on several meshes, or with "
                "Partial placements, are not supported"
            )
        return _fallback_norms(dts, ords)
    # weight each tensor's contribution by 1/replication so one sum over the mesh counts it once
    weighted: dict[float, list[torch.Tensor]] = {}
    for g, r in zip(dts, reps, strict=True):
        weighted.setdefault(1.0 / float(r or 1), []).append(g.to_local())
    if plain:
        weighted.setdefault(1.0 / group_size, []).extend(plain)
    device = dts[0].to_local().device
    sums: list[torch.Tensor] = []
    for ord in ords:
        acc: torch.Tensor | None = None
        for w, ts in weighted.items():
            for (dev, _), group_ts in _group(ts).items():
                norms = torch.stack(_per_tensor(group_ts, ord, dev)).to(device, torch.float64)
                s = norms.square().sum() if ord == 2.0 else norms.sum()
                s = s * w if w != 1.0 else s
                acc = s if acc is None else acc + s
        if acc is None:  # this rank holds no local elements
            acc = torch.zeros((), dtype=torch.float64, device=device)
        sums.append(acc)
    vals = torch.stack(sums)
    dist.all_reduce(vals, op=dist.ReduceOp.SUM, group=group)
    outs = [vals[i].clamp_min(0.0).sqrt() if o == 2.0 else vals[i] for i, o in enumerate(ords)]
    return torch.stack(outs)


def _fallback_norms(dts: list[DTensor], ords: Sequence[float]) -> torch.Tensor:
    """Norms through DTensor's own operators (any placements); every rank must call this."""
    outs = []
    for ord in ords:
        total = torch.nn.utils.get_total_norm(dts, ord)
        full = getattr(total, "full_tensor", None)
        outs.append((full() if full is not None else total).to(torch.float64))
    return torch.stack(outs)


@torch.no_grad()
def grad_norms(
    parameters: ParamsLike, kinds: Sequence[str] = ("l2",), *, device: torch.device | None = None
) -> torch.Tensor:
    """The global norms of the gradients of ``parameters``, one per kind, as a device tensor.

    ``parameters``: tensors with ``.grad``, a module or an optimizer; parameters without a
    gradient are skipped (no gradients at all: zeros). Works with DTensor gradients (FSDP2); then
    every rank must call it. No host synchronisation.

    >>> import torch
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> p.grad = torch.tensor([3.0, -4.0])
    >>> grad_norms([p], ("l2", "l1"))
    tensor([5., 7.])
    """
    ords = [GRADIENT_KINDS[k] for k in kinds]
    return norms_of(grads_of(parameters), ords, device)


def norms_of(
    grads: list[torch.Tensor], ords: Sequence[float], device: torch.device | None = None
) -> torch.Tensor:
    """The global norms of ``grads``, one per order in ``ords`` (2.0 or 1.0), as a device tensor
    (``device`` only matters when ``grads`` is empty: zeros there)."""
    if not grads:
        return torch.zeros(len(ords), device=device)
    dtensor = _dtensor_type()
    if dtensor is not None and any(isinstance(g, dtensor) for g in grads):
        return _distributed_norms(grads, ords, dtensor)
    return _local_norms(grads, ords)


def params_of(obj: ParamsLike) -> list[torch.Tensor]:
    """The parameters of a tensor, an iterable of tensors or param groups, a module or an optimizer."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Optimizer):
        return [p for group in obj.param_groups for p in group["params"]]
    if isinstance(obj, torch.nn.Module):
        return list(obj.parameters())
    out: list[torch.Tensor] = []
    for item in obj:
        if isinstance(item, Mapping):  # a param group
            out.extend(item["params"])
        else:
            out.append(item)
    return out


def grads_of(obj: ParamsLike) -> list[torch.Tensor]:
    """The gradients of the parameters of ``obj`` that have one."""
    return [p.grad for p in params_of(obj) if p.grad is not None]


def scale_(grads: list[torch.Tensor], coef: torch.Tensor) -> None:
    """Multiply every tensor of ``grads`` (plain or DTensor) by the 0-d tensor ``coef``, in place."""
    dtensor = _dtensor_type()
    local = [g.to_local() if dtensor is not None and isinstance(g, dtensor) else g for g in grads]
    for (device, _), ts in _group(local).items():
        c = coef.to(device)
        if device.type in ("cpu", "cuda"):
            torch._foreach_mul_(ts, c)
        else:
            for t in ts:
                t.mul_(c)
