"""Global norms of gradients, on their device, without host synchronisation.

``l2 = sqrt(sum of g**2)`` and ``l1 = sum |g|`` over all tensors, accumulated in float32 (float64
for float64 tensors). ``DTensor`` gradients are reduced exactly: local sums divided by their
replication, then one ``all_reduce`` over the mesh; every rank must call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch.optim import Optimizer

if TYPE_CHECKING:
    from torch.distributed.tensor import DTensor

#: The gradient-norm kinds and their orders.
GRADIENT_KINDS = {"l2": 2.0, "l1": 1.0}

ParamsLike = torch.Tensor | Iterable[torch.Tensor] | Optimizer | torch.nn.Module


@functools.cache
def dtensor_type() -> type[DTensor] | None:
    """``torch.distributed.tensor.DTensor``, or ``None`` where torch has no distributed support."""
    if not torch.distributed.is_available():
        return None
    from torch.distributed.tensor import DTensor

    return DTensor


def _group(tensors: Iterable[torch.Tensor]) -> dict[tuple[torch.device, torch.dtype], list[int]]:
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return groups


def _same_kind_norms(
    ts: list[torch.Tensor], ord: float, device: torch.device
) -> list[torch.Tensor]:
    """Per-tensor norms (0-d, float32 or float64) of same-device, same-dtype tensors."""
    dtype = ts[0].dtype
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    if device.type == "cpu" and ord == 1.0:  # on CPU abs().sum() is ~3x faster than the kernel
        return [t.abs().sum(dtype=acc) for t in ts]
    if device.type in ("cpu", "cuda"):
        return list(torch._foreach_norm(ts, ord, dtype=None if dtype == acc else acc))
    return [torch.linalg.vector_norm(t, ord, dtype=acc) for t in ts]


def per_tensor_norms(tensors: list[torch.Tensor], ord: float) -> list[torch.Tensor]:
    """Each tensor's norm (0-d, float32 or wider), in order, whatever their devices and dtypes."""
    out: list[torch.Tensor] = list(tensors)
    for (device, _), idx in _group(tensors).items():
        for i, n in zip(idx, _same_kind_norms([tensors[i] for i in idx], ord, device), strict=True):
            out[i] = n
    return out


def _total(norms: torch.Tensor, ord: float) -> torch.Tensor:
    return torch.linalg.vector_norm(norms) if ord == 2.0 else norms.sum()


def _replication(g: DTensor) -> int | None:
    """How many ranks of the mesh hold each element of a DTensor; ``None`` if not Shard/Replicate."""
    if not all(p.is_replicate() or p.is_shard() for p in g.placements):
        return None  # Partial: pending reduction
    return math.prod(g.device_mesh.size(i) for i, p in enumerate(g.placements) if p.is_replicate())


def _distributed_norms(
    grads: list[torch.Tensor], ords: Sequence[float], dtensor: type[DTensor]
) -> torch.Tensor:
    """Global norms when some gradients are DTensors: local partial sums, one all_reduce."""
    import torch.distributed as dist

    dts: list[DTensor] = [g for g in grads if isinstance(g, dtensor)]
    plain = [g for g in grads if not isinstance(g, dtensor)]
    mesh, reps = dts[0].device_mesh, [_replication(g) for g in dts]
    world = dist.get_world_size()
    group, size = (mesh.get_group(), mesh.size()) if mesh.ndim == 1 else (None, world)
    if any(g.device_mesh != mesh for g in dts) or None in reps or mesh.size() != size:
        if plain:
            raise NotImplementedError(
                "gradient norms of a mix of plain tensors and DTensors on several meshes, or with "
                "Partial placements, are not supported"
            )
        outs = []  # DTensor's own operators (any placements); every rank must call
        for o in ords:
            total = torch.nn.utils.get_total_norm(dts, o)
            full = getattr(total, "full_tensor", None)
            outs.append((full() if full is not None else total).to(torch.float64))
        return torch.stack(outs)
    # weight each tensor's contribution by 1/replication so one sum over the mesh counts it once
    local = [g.to_local() for g in dts] + plain
    weights = [1.0 / float(r or 1) for r in reps] + [1.0 / size] * len(plain)
    device = local[0].device
    sums = []
    for o in ords:
        norms = [n.to(device, torch.float64) for n in per_tensor_norms(local, o)]
        acc = torch.zeros((), dtype=torch.float64, device=device)
        for w in dict.fromkeys(weights):  # one product per weight (no host-to-device copy)
            part = torch.stack([n for n, wi in zip(norms, weights, strict=True) if wi == w])
            acc = acc + (part.square() if o == 2.0 else part).sum() * w
        sums.append(acc)
    vals = torch.stack(sums)
    dist.all_reduce(vals, op=dist.ReduceOp.SUM, group=group)
    return torch.stack(
        [v.clamp_min(0.0).sqrt() if o == 2.0 else v for v, o in zip(vals, ords, strict=True)]
    )


@torch.no_grad()
def grad_norms(
    parameters: ParamsLike, kinds: Sequence[str] = ("l2",), *, device: torch.device | None = None
) -> torch.Tensor:
    """The global norms of the gradients of ``parameters`` (tensors, a module or an optimizer), one
    per kind, as a device tensor; parameters without a gradient are skipped (none at all: zeros).

    >>> import torch
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> p.grad = torch.tensor([3.0, -4.0])
    >>> grad_norms([p], ("l2", "l1"))
    tensor([5., 7.])
    """
    return norms_of(grads_of(parameters), [GRADIENT_KINDS[k] for k in kinds], device)


def norms_of(
    grads: list[torch.Tensor], ords: Sequence[float], device: torch.device | None = None
) -> torch.Tensor:
    """The global norms of ``grads``, one per order in ``ords`` (2.0 or 1.0), as a device tensor
    (``device`` only matters when ``grads`` is empty: zeros there)."""
    if not grads:
        return torch.zeros(len(ords), device=device)
    dtensor = dtensor_type()
    if dtensor is not None and any(isinstance(g, dtensor) for g in grads):
        return _distributed_norms(grads, ords, dtensor)
    groups = _group(grads)
    if len(groups) == 1:  # the common case, kept short: it runs every step
        totals = [_total(torch.stack(_same_kind_norms(grads, o, grads[0].device)), o) for o in ords]
        return totals[0].reshape(1) if len(totals) == 1 else torch.stack(totals)
    first = grads[0].device  # several devices or dtypes: gather the per-tensor norms there
    dtype = torch.float64 if any(dt == torch.float64 for _, dt in groups) else torch.float32
    gathered = [torch.stack([n.to(first, dtype) for n in per_tensor_norms(grads, o)]) for o in ords]
    return torch.stack([_total(ns, o) for ns, o in zip(gathered, ords, strict=True)])


@torch.no_grad()
def clip_(
    grads: list[torch.Tensor],
    ords: Sequence[float],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``grads``' norms of the orders ``ords`` and their total norm of order ``norm_type``, computed
    in one pass where the orders allow; then ``grads`` are clipped like
    ``torch.nn.utils.clip_grad_norm_`` does, multiplied in place by
    ``coef = min(1, max_norm / (total + 1e-6))``. Returns ``(norms, total, coef)``."""
    nt, n = float(norm_type), len(ords)
    if nt in (1.0, 2.0):  # one pass
        both = norms_of(grads, ords if nt in ords else (*ords, nt))
        norms, total = both[:n], both[(*ords, nt).index(nt)]
    else:
        norms, total = norms_of(grads, ords), torch.nn.utils.get_total_norm(grads, nt)
        full = getattr(total, "full_tensor", None)  # a DTensor: the norm over the mesh
        total = full() if full is not None else total
    if error_if_nonfinite and bool(torch.logical_or(total.isnan(), total.isinf())):
        raise RuntimeError(
            f"The total norm of order {nt} for gradients from `parameters` is non-finite, so "
            "it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    coef = torch.clamp(float(max_norm) / (total + 1e-6), max=1.0)
    dtensor = dtensor_type()
    local = [g.to_local() if dtensor is not None and isinstance(g, dtensor) else g for g in grads]
    for (device, _), idx in _group(local).items():
        ts = [local[i] for i in idx]
        c = coef.to(device)
        if device.type in ("cpu", "cuda"):
            torch._foreach_mul_(ts, c)
        else:
            for t in ts:
                t.mul_(c)
    return norms, total, coef


def params_of(obj: ParamsLike) -> list[torch.Tensor]:
    """The parameters of a tensor, an iterable of tensors or param groups, a module or an optimizer."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, torch.nn.Module):
        return list(obj.parameters())
    out: list[torch.Tensor] = []
    for item in obj.param_groups if isinstance(obj, Optimizer) else obj:
        out.extend(item["params"] if isinstance(item, Mapping) else [item])  # a param group
    return out


def grads_of(obj: ParamsLike) -> list[torch.Tensor]:
    """The gradients of the parameters of ``obj`` that have one."""
    return [p.grad for p in params_of(obj) if p.grad is not None]
