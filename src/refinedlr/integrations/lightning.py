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

Manual optimization (``self.automatic_optimization = False``):
    * Lightning calls ``on_before_optimizer_step`` inside ``opt.step()``, after any
      ``self.clip_gradients(opt, ...)`` of the training step. The callback therefore also wraps
      the precision plugin's ``clip_gradients`` during ``fit`` and records the norms *before* that
      clip (unscaled, under an fp16 ``GradScaler``). A direct ``torch.nn.utils.clip_grad_norm_``
      in ``training_step`` is invisible to Lightning: the record then holds the clipped norms.
      Use ``self.clip_gradients``, or record yourself.
    * With several optimizers ``trainer.global_step`` counts the steps of all of them. The record
      counts the steps of ``trainer.optimizers[optimizer_index]`` only, and a resumed run
      continues at the checkpoint's own count, so no steps are skipped.
    * The horizon: ``estimated_stepping_batches`` follows ``max_steps``, which counts every
      optimizer's steps. Pass ``lr_scheduler_config(..., num_optimizers=N)`` when each of the N
      optimizers steps once per batch: the horizon becomes ``ceil(max_steps / N)``. Otherwise
      pass ``total_steps=``. The callback warns at ``fit`` when a ``ScheduleLR`` horizon equals
      ``max_steps`` under manual optimization with several optimizers.

Settings:
    * The horizon of the schedule is the number of optimizer steps:
      ``trainer.estimated_stepping_batches`` (it accounts for ``max_steps``, ``max_epochs``,
      ``accumulate_grad_batches`` and the number of devices), or ``total_steps=`` explicitly.
    * The callback records the steps of ``trainer.optimizers[optimizer_index]``.
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

try:
    import lightning.pytorch as pl
    import torch
except ImportError as exc:
    raise ImportError(
        f"refinedlr.integrations.lightning needs torch and Lightning ({exc}): "
        'pip install "refinedlr[lightning]"'
    ) from exc

from ..pytorch import OnMismatch, ScheduleLR, grad_norms
from ..pytorch.updates import UPDATE_KINDS, check_update_optimizer
from ..schedule_io import ScheduleLike
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
    num_optimizers: int = 1,
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
        num_optimizers: under manual optimization, how many optimizers step once per batch:
            ``trainer.global_step`` (and so ``max_steps``) counts the steps of all of them, so the
            default horizon becomes ``min(estimated_stepping_batches, ceil(max_steps / N))``,
            the number of steps of each optimizer (and of a scheduler stepped once per batch).

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
        if isinstance(num_optimizers, bool) or not isinstance(num_optimizers, int):
            raise TypeError(f"num_optimizers must be an int, got {num_optimizers!r}")
        if num_optimizers < 1:
            raise ValueError(f"num_optimizers must be >= 1, got {num_optimizers}")
        if num_optimizers > 1 and trainer.max_steps > 0:
            total_steps = min(total_steps, math.ceil(trainer.max_steps / num_optimizers))
    scheduler = ScheduleLR(
        optimizer, schedule, total_steps=total_steps, on_mismatch=on_mismatch, **schedule_kwargs
    )
    config: dict[str, Any] = {
        "scheduler": scheduler,
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
        kinds: the record's columns: ``"l2"`` (SGD), ``"l1"`` (Adam-type optimizers), and
            ``"update_l2"`` / ``"update_l1"``: the norms of the update direction of an Adam-type
            optimizer (``Adam``, ``AdamW``, ``NAdam``, ``RAdam``) after its step, from its state
            (:mod:`refinedlr.pytorch.updates`), for the verification of a refined schedule.
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
        self._grad_kinds = tuple(k for k in self.kinds if k not in UPDATE_KINDS)
        self.optimizer_index = optimizer_index
        self._loaded_step: int | None = None
        self._pending: torch.Tensor | None = None  # manual optimization: norms before the clip
        self._clip_wrap: tuple[Any, Any] | None = None

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
        manual = not pl_module.automatic_optimization
        target = trainer.optimizers[self.optimizer_index]
        if any(k in UPDATE_KINDS for k in self.kinds):
            check_update_optimizer(target)
        rec = self._open_recorder(self.record_path(trainer), self._start_step(trainer, manual))
        if any(k in UPDATE_KINDS for k in self.kinds):
            # its post-hook adds the update part after each step; a step the fp16 scaler skips
            # gets a missing update at the scaler's update()
            # (gradients=False: Lightning runs the closure, and so on_before_optimizer_step,
            # inside step(), after the step's pre-hooks)
            rec.attach(
                target, scaler=getattr(trainer.precision_plugin, "scaler", None), gradients=False
            )
        self._loaded_step = None
        self._pending = None
        if manual:
            self._wrap_clip(trainer)
            if len(trainer.optimizers) > 1:
                _warn_horizons(trainer)

    def _start_step(self, trainer: pl.Trainer, manual: bool) -> int:
        """The step the record continues at: the checkpoint's own count of the recorded
        optimizer's steps (``global_step`` counts every optimizer's under manual optimization)."""
        global_step = int(trainer.global_step)
        if self._loaded_step is not None:
            if not manual and self._loaded_step != global_step:
                warnings.warn(
                    f"the checkpoint's record state is at step {self._loaded_step} but the "
                    f"Trainer resumes at global_step {global_step}; the record continues at "
                    f"{self._loaded_step}",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return self._loaded_step
        n = len(trainer.optimizers)
        if manual and n > 1 and global_step > 0:
            warnings.warn(
                f"resuming at global_step {global_step} without this callback's state in the "
                f"checkpoint: under manual optimization global_step counts the steps of all {n} "
                f"optimizers; the record continues at {global_step // n} (assuming each stepped "
                "once per batch)",
                RuntimeWarning,
                stacklevel=3,
            )
            return global_step // n
        return global_step

    def _is_target(self, trainer: pl.Trainer, optimizer: Any) -> bool:
        target = trainer.optimizers[self.optimizer_index]
        return optimizer is target or getattr(optimizer, "optimizer", None) is target

    def _wrap_clip(self, trainer: pl.Trainer) -> None:
        """Record the norms before ``self.clip_gradients`` (manual optimization) clips them."""
        plugin = trainer.precision_plugin
        original = plugin.clip_gradients
        callback = self

        def clip_gradients(optimizer: Any, *args: Any, **kwargs: Any) -> Any:
            rec = callback.recorder
            if (
                rec is not None
                and callback._grad_kinds
                and callback._pending is None
                and callback._is_target(trainer, optimizer)
            ):
                values = grad_norms(optimizer.param_groups, callback._grad_kinds)
                inv = _inverse_scale(plugin, optimizer)
                callback._pending = values if inv is None else values * inv.to(values)
            return original(optimizer, *args, **kwargs)

        plugin.clip_gradients = clip_gradients  # type: ignore[method-assign]  # this fit only
        self._clip_wrap = (plugin, clip_gradients)

    def _unwrap_clip(self) -> None:
        if self._clip_wrap is not None:
            plugin, wrapper = self._clip_wrap
            if plugin.__dict__.get("clip_gradients") is wrapper:
                del plugin.clip_gradients  # the class's method shows through again
            self._clip_wrap = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._pending = None  # a clip without a step does not carry over

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        rec = self.recorder
        if rec is None or not self._is_target(trainer, optimizer):
            return
        if self._pending is not None:  # manual optimization: norms from before the clip
            rec.record_norms(self._pending)
            self._pending = None
        elif self._grad_kinds:
            rec.record(optimizer.param_groups)
        # (update kinds only: the post-hook of the attached optimizer records the row)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_recorder()
        self._unwrap_clip()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._close_recorder()
        self._unwrap_clip()

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


def _inverse_scale(plugin: Any, optimizer: Any) -> torch.Tensor | None:
    """``1 / scale`` of an fp16 GradScaler whose gradients are still scaled, else ``None`` (no
    host sync: the scale stays a device tensor)."""
    scaler = getattr(plugin, "scaler", None)
    if scaler is None or not scaler.is_enabled():
        return None
    from torch.amp.grad_scaler import OptState

    raw = getattr(optimizer, "optimizer", optimizer)
    state = scaler._per_optimizer_states.get(id(raw))
    if state is not None and state["stage"] is not OptState.READY:
        return None  # already unscaled
    scale = scaler._scale
    return None if scale is None else 1.0 / scale


def _warn_horizons(trainer: pl.Trainer) -> None:
    n = len(trainer.optimizers)
    if trainer.max_steps <= 0:
        return
    for config in trainer.lr_scheduler_configs:
        sched = config.scheduler
        if isinstance(sched, ScheduleLR) and sched.schedule.total_steps == trainer.max_steps:
            warnings.warn(
                f"a ScheduleLR's horizon is max_steps={trainer.max_steps}, but under manual "
                f"optimization global_step counts the steps of all {n} optimizers, so each "
                f"optimizer steps about {math.ceil(trainer.max_steps / n)} times: pass "
                f"lr_scheduler_config(..., num_optimizers={n}) or total_steps=",
                RuntimeWarning,
                stacklevel=3,
            )
