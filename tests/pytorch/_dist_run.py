"""Helper script for the multi-process tests: 2 CPU processes, gloo backend, DDP or FSDP2.

``python _dist_run.py MODE OUT_DIR PORT STEPS RANK`` with MODE ``ddp`` or ``fsdp`` is started once
per rank (rank 0 and 1, like ``torchrun`` would; the test starts both processes). Each trains ``build_model()`` on its half of ``batch(step)``
and records gradient norms; it saves, per rank, ``rank<r>.pt`` with the norms it computed and
(FSDP2) the final full parameters. The test computes the single-process reference in-process from
the same ``build_model`` and ``batch``.

* ``ddp``: ``DistributedDataParallel``; the recorder is attached to the optimizer (step pre-hook)
  and writes ``OUT_DIR/ddp.csv`` from rank 0 only.
* ``fsdp``: ``torch.distributed.fsdp.fully_shard`` on each Linear and the root (gradients are
  DTensors sharded on dim 0); ``recorder.clip_grad_norm_`` records the pre-clip norms and clips,
  and a second recorder attached to the optimizer records the post-clip norms.
* ``ddp_adamw`` / ``fsdp_adamw``: the same models with ``AdamW``; a recorder attached to the
  optimizer records ``l2``, ``update_l2`` and ``update_l1`` (the update direction from the
  optimizer's state after each step: replicated under DDP, DTensor shards under FSDP2).
"""

from __future__ import annotations

import os
import sys

import torch

WORLD = 2
MAX_NORM = 0.4


def build_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(7, 13), torch.nn.ReLU(), torch.nn.Linear(13, 5), torch.nn.ReLU(),
        torch.nn.Linear(5, 3),
    )  # fmt: skip


UPDATE_KINDS = ("l2", "update_l2", "update_l1")


def adamw(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=0.02, weight_decay=0.1)


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(500 + step)
    return torch.randn(16, 7, generator=g), torch.randn(16, 3, generator=g)


def as_array(record: object) -> torch.Tensor:
    """The record's values as a (steps, kinds) float64 tensor (steps must be 0..n-1)."""
    steps = record.steps  # type: ignore[attr-defined]
    assert steps.tolist() == list(range(len(steps)))
    values = record.values  # type: ignore[attr-defined]
    return torch.stack([torch.as_tensor(values[k]) for k in values], dim=1)


def worker(rank: int, mode: str, out: str, port: int, steps: int) -> None:
    import torch.distributed as dist

    from refinedlr.pytorch import GradNormRecorder

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        model = build_model()
        result: dict[str, object] = {"rank": rank}
        if mode.endswith("_adamw"):
            if mode == "ddp_adamw":
                from torch.nn.parallel import DistributedDataParallel

                model = DistributedDataParallel(model)
            else:
                from torch.distributed.fsdp import fully_shard

                for layer in model:
                    if isinstance(layer, torch.nn.Linear):
                        fully_shard(layer)
                fully_shard(model)
            opt = adamw(model)
            rec = GradNormRecorder(kinds=UPDATE_KINDS, flush_every=2, keep_in_memory=True)
            rec.attach(opt)
            for step in range(steps):
                x, y = batch(step)
                xs, ys = x.chunk(WORLD)[rank], y.chunk(WORLD)[rank]
                opt.zero_grad()
                torch.nn.functional.mse_loss(model(xs), ys).backward()
                opt.step()
            result["norms"] = as_array(rec.to_record(source="memory"))
            rec.close()
            torch.save(result, os.path.join(out, f"rank{rank}.pt"))
            return
        if mode == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model)
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            rec = GradNormRecorder(
                os.path.join(out, "ddp.csv"), kinds=("l2", "l1"), flush_every=3,
                keep_in_memory=True,
            )  # fmt: skip
            rec.attach(opt)
            post = None
        else:
            from torch.distributed.fsdp import fully_shard

            for layer in model:
                if isinstance(layer, torch.nn.Linear):
                    fully_shard(layer)
            fully_shard(model)
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            rec = GradNormRecorder(kinds=("l2", "l1"), flush_every=3)
            post = GradNormRecorder(kinds=("l2",), flush_every=3)
            post.attach(opt)  # sees the clipped gradients
        for step in range(steps):
            x, y = batch(step)
            xs, ys = x.chunk(WORLD)[rank], y.chunk(WORLD)[rank]
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(xs), ys).backward()
            if mode == "fsdp":
                rec.clip_grad_norm_(model.parameters(), MAX_NORM)
            opt.step()
        result["is_writer"] = rec.is_writer
        result["norms"] = as_array(rec.to_record(source="memory"))
        if post is not None:
            result["post"] = as_array(post.to_record())
            post.close()
        rec.close()
        if mode == "fsdp":
            result["dtensor_cases"] = dtensor_cases()
            result["params"] = [p.full_tensor().detach().clone() for p in model.parameters()]
            result["placements"] = [str(p.grad.placements) for p in model.parameters()]
        torch.save(result, os.path.join(out, f"rank{rank}.pt"))
        # every rank done before the group goes: without it gloo sometimes aborts one process at
        # exit ("terminate called without an active exception", 3 of 24 tries on a loaded machine)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def dtensor_cases() -> list[list[float]]:
    """grad_norms of DTensor gradients with other placements: [computed l2, l1, true l2, l1]."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    from refinedlr.pytorch import grad_norms

    g = torch.Generator().manual_seed(7)
    full = [torch.randn(6, 4, generator=g), torch.randn(5, generator=g)]
    mesh1 = init_device_mesh("cpu", (WORLD,))
    mesh2 = init_device_mesh("cpu", (WORLD, 1))
    cases = [
        [(mesh1, [Replicate()]), (mesh1, [Replicate()])],
        [(mesh1, [Shard(0)]), (mesh1, [Replicate()])],
        [(mesh2, [Replicate(), Shard(0)]), (mesh2, [Shard(0), Replicate()])],
    ]
    out = []
    for case in cases:
        params = []
        for t, (mesh, placements) in zip(full, case, strict=True):
            p = torch.nn.Parameter(torch.zeros_like(t))
            p.grad = distribute_tensor(t.clone(), mesh, placements)
            params.append(p)
        got = grad_norms(params, ("l2", "l1")).tolist()
        true = [torch.nn.utils.get_total_norm(full, o).item() for o in (2.0, 1.0)]
        out.append(got + true)
    # plain (replicated) tensors mixed with sharded DTensors
    p = torch.nn.Parameter(torch.zeros(6, 4))
    p.grad = distribute_tensor(full[0].clone(), mesh1, [Shard(0)])
    q = torch.nn.Parameter(torch.zeros(5))
    q.grad = full[1].clone()
    got = grad_norms([p, q], ("l2", "l1")).tolist()
    out.append(got + [torch.nn.utils.get_total_norm(full, o).item() for o in (2.0, 1.0)])
    return out


def main(argv: list[str]) -> int:
    mode, out, port, steps, rank = argv[0], argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    worker(rank, mode, out, port, steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
