"""Lightning: a callback that records gradient norms, and refinedlr schedules in ``configure_optimizers``.

::

    import lightning as L
    from refinedlr.integrations.lightning import GradNormCallback, lr_scheduler_config

    class Model(L.LightningModule):
        ...
        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
            # horizon: self.trainer.estimated_stepping_batches (optimizer steps, after accumulation)
            return {"optimizer": opt,
                    "lr_scheduler": lr_scheduler_config(opt, "linear", trainer=self.trainer)}

    trainer = L.Trainer(max_steps=10_000, callbacks=[GradNormCallback(kinds=("l2", "l1"))])
    trainer.fit(Model())   # -> <default_root_dir>/refinedlr_norms.csv

then ``refinedlr refine refinedlr_norms.csv --norm l1 -o refined.json`` and, in the next run,
``lr_scheduler_config(opt, "refined", path="refined.json", trainer=self.trainer)``.

What is recorded:
    :class:`GradNormCallback` records in ``on_before_optimizer_step``, which Lightning calls once
    per optimizer step, after the last backward of the step (so with ``accumulate_grad_batches``
    the gradients are the accumulated ones, one row per optimizer step), after AMP's unscaling and
    before gradient clipping (``gradient_clip_val``). So the record holds the global l2 / l1 norm
    of the unscaled, unclipped gradient of the optimizer's parameters. Steps whose gradients are
    not finite (skipped by the fp16 scaler) are written as missing values.

Checkpoints:
    The callback's ``state_dict`` (saved in every Lightning checkpoint) holds the recorder's step
    and first flushes the record, so the file holds every step up to the checkpoint. Resuming with
    ``trainer.fit(model, ckpt_path=...)`` continues the record at that step (later rows are
    replaced); the scheduler's state is restored by Lightning and the learning rates continue.

Settings:
    * The horizon of the schedule is the number of optimizer steps:
      ``trainer.estimated_stepping_batches`` (it accounts for ``max_steps``, ``max_epochs``,
      ``accumulate_grad_batches`` and the number of devices), or ``total_steps=`` explicitly.
    * One optimizer: the callback records the steps of ``trainer.optimizers[optimizer_index]``.
    * Distributed: every process computes the norm (DDP gradients are already averaged in
      ``on_before_optimizer_step``; ``ModelParallelStrategy``'s (FSDP2) DTensor gradients are
      reduced); rank 0 writes. ``FSDPStrategy`` (FSDP1) and ``DeepSpeedStrategy`` hold flat
      local shards of the gradient and are refused.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

try:
    import lightning.pytorch as pl
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "refinedlr.integrations.lightning needs Lightning: pip install 'refinedlr[lightning]'"
    ) from exc

from ..pytorch import OnMismatch, ScheduleLR
from ..schedule_io import ScheduleLike, as_schedule
from ._recording import RecordingCallback

__all__ = ["NORMS_FILENAME", "GradNormCallback", "lr_scheduler_config"]

#: The record's file name in the Trainer's ``default_root_dir`` when no path is given.
NORMS_FILENAME = "refinedlr_norms.csv"


def lr_scheduler_config(
    optimizer: torch.optim.Optimizer,
    schedule: ScheduleLike = "linear",
    *,
    total_steps: int | None = None,
    trainer: pl.Trainer | None = None,
    on_mismatch: OnMismatch = "raise",
    name: str | None = "refinedlr",
    **schedule_kwargs: Any,
) -> dict[str, Any]:
    """The ``lr_scheduler`` entry for ``configure_optimizers``: a ScheduleLR stepped every step.

    Returns ``{"scheduler": ScheduleLR(...), "interval": "step", "frequency": 1, "name": name}``.

    Args:
        optimizer: the optimizer to schedule (its ``lr`` is the peak learning rate).
        schedule: anything :func:`~refinedlr.schedule_io.as_schedule` accepts: a name for
            :func:`~refinedlr.schedules.get_schedule` (``"linear"``, ``"cosine"``, ``"refined"``
            with ``path=...``; ``warmup=`` and other arguments go in ``**schedule_kwargs``), a
            :class:`~refinedlr.schedules.Schedule`, a schedule file or a spec (put on the
            horizon with :meth:`~refinedlr.schedules.Schedule.with_horizon`).
        total_steps: the horizon in optimizer steps; default ``trainer.estimated_stepping_batches``
            (pass ``trainer=self.trainer`` inside ``configure_optimizers``).
        trainer: the Lightning Trainer, for the default horizon.
        on_mismatch: what resuming from a checkpoint made with another schedule does
            (:class:`~refinedlr.pytorch.ScheduleLR`).
        name: the scheduler's name (as shown by ``LearningRateMonitor``); ``None`` for none.

    >>> import torch
    >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    >>> cfg = lr_scheduler_config(opt, "linear", total_steps=100, warmup=0.05)
    >>> cfg["interval"], cfg["frequency"], cfg["scheduler"].schedule.total_steps
    ('step', 1, 100)
    """
    if total_steps is None:
        if trainer is None:
            raise ValueError(
                "the horizon is unknown: pass total_steps=... or trainer=self.trainer "
                "(its estimated_stepping_batches)"
            )
        est = trainer.estimated_stepping_batches
        if not math.isfinite(est):
            raise ValueError(
                "the Trainer has no finite horizon (max_steps=-1 and max_epochs=-1); pass total_steps"
            )
        total_steps = int(est)
    sched = as_schedule(schedule, total_steps, **schedule_kwargs)
    config: dict[str, Any] = {
        "scheduler": ScheduleLR(optimizer, sched, on_mismatch=on_mismatch),
        "interval": "step",
        "frequency": 1,
    }
    if name is not None:
        config["name"] = name
    return config


class GradNormCallback(RecordingCallback, pl.Callback):
    """Record the global gradient norm of every optimizer step (unscaled, before clipping).

    Args:
        path: the record file; default ``<trainer.default_root_dir>/refinedlr_norms.csv``.
        kinds: ``"l2"`` (SGD), ``"l1"`` (Adam-type optimizers) or both; the record's columns.
        flush_every: steps between writes to the file (also flushed at every checkpoint).
        optimizer_index: which of ``trainer.optimizers`` to record.
        keep_in_memory: also keep the values in memory (:meth:`to_record` with
            ``source="memory"``).
        fsync: ``fsync`` the file at every flush.

    Attributes:
        recorder: the :class:`~refinedlr.pytorch.GradNormRecorder` of the current ``fit``.

    >>> cb = GradNormCallback(kinds=("l2", "l1"))
    >>> cb.state_dict()  # before training: the step to start from
    {'version': 1, 'step': 0, 'kinds': ['l2', 'l1']}
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        kinds: Sequence[str] | str = ("l2",),
        *,
        flush_every: int = 100,
        optimizer_index: int = 0,
        keep_in_memory: bool = False,
        fsync: bool = True,
    ) -> None:
        self._init_recording(kinds, path, flush_every, keep_in_memory, fsync)
        self.optimizer_index = optimizer_index
        self._loaded_step: int | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            kinds=list(self.kinds), path=None if self.path is None else str(self.path)
        )

    def record_path(self, trainer: pl.Trainer) -> Path:
        """Where the record is written for this Trainer."""
        return (
            self.path if self.path is not None else Path(trainer.default_root_dir) / NORMS_FILENAME
        )

    # -- hooks ----------------------------------------------------------------------------------

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        start = int(trainer.global_step)
        if self._loaded_step is not None and self._loaded_step != start:
            warnings.warn(
                f"the checkpoint's record state is at step {self._loaded_step} but the Trainer "
                f"resumes at global_step {start}; the record continues at {start}",
                RuntimeWarning,
                stacklevel=2,
            )
        self._loaded_step = None
        strategy = type(trainer.strategy).__name__
        if strategy.startswith(("FSDP", "DeepSpeed")):
            raise NotImplementedError(
                f"recording gradient norms under {strategy} is not supported: its gradients are "
                "flat local shards, so the norms would be those of this process's shard (use "
                "ModelParallelStrategy / FSDP2, whose DTensor gradients are reduced, or DDP)"
            )
        if len(trainer.optimizers) <= self.optimizer_index:
            raise ValueError(
                f"optimizer_index={self.optimizer_index} but the Trainer has "
                f"{len(trainer.optimizers)} optimizer(s)"
            )
        self._open_recorder(self.record_path(trainer), start)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        rec = self.recorder
        if rec is None:
            return
        target = trainer.optimizers[self.optimizer_index]
        if optimizer is not target and getattr(optimizer, "optimizer", None) is not target:
            return
        rec.record(optimizer.param_groups)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_recorder()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._close_recorder()

    # -- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The step the record continues from (flushes the record first) and the kinds."""
        if self.recorder is not None:
            return self.recorder.state_dict()
        step = 0 if self._loaded_step is None else self._loaded_step
        return {"version": 1, "step": step, "kinds": list(self.kinds)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        kinds = tuple(state_dict.get("kinds", self.kinds))
        if kinds != self.kinds:
            raise ValueError(
                f"the checkpoint recorded kinds {list(kinds)}, this callback {list(self.kinds)}"
            )
        self._loaded_step = int(state_dict["step"])
