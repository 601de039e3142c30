"""Lightning: a callback that records gradient norms, and refinedlr schedules in ``configure_optimizers``.

:class:`GradNormCallback` records in ``on_before_optimizer_step`` (under manual optimization in the
precision plugin's ``clip_gradients``, wrapped for the ``fit``). The Integrations page shows both.
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
from ..pytorch.seams import inverse_scale, patch
from ..schedule_io import ScheduleLike
from . import _recording
from ._recording import RecordingCallback

__all__ = ["NORMS_FILENAME", "GradNormCallback", "lr_scheduler_config"]

#: The record's file name in the Trainer's ``default_root_dir`` when no path is given.
NORMS_FILENAME = _recording.NORMS_FILENAME


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
    """``{"scheduler": ScheduleLR(...), "interval": "step", "frequency": 1, "name": name}``, the
    ``lr_scheduler`` entry of ``configure_optimizers``.

    Args:
        schedule, total_steps, on_mismatch, schedule_kwargs: those of
            :class:`~refinedlr.pytorch.ScheduleLR`; ``total_steps`` defaults to
            ``trainer.estimated_stepping_batches`` (pass ``trainer=self.trainer``).
        name: the scheduler's name (``LearningRateMonitor``'s); ``None`` for none.
        num_optimizers: under manual optimization, the optimizers stepping once per batch: the
            default horizon becomes ``min(estimated_stepping_batches, ceil(max_steps / N))``.

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
    sched = ScheduleLR(optimizer, schedule, total_steps, on_mismatch=on_mismatch, **schedule_kwargs)
    config: dict[str, Any] = {"scheduler": sched, "interval": "step", "frequency": 1}
    return config if name is None else {**config, "name": name}


class GradNormCallback(RecordingCallback, pl.Callback):
    """Record the global gradient norm of every optimizer step (unscaled, before clipping).

    ``path`` defaults to ``<trainer.default_root_dir>/refinedlr_norms.csv``; ``optimizer_index``:
    which of ``trainer.optimizers``; ``options``: ``flush_every=100``, ``keep_in_memory=False``,
    ``fsync=True``.

    >>> cb = GradNormCallback(kinds=("l2", "l1"))
    >>> cb.state_dict()  # before training: the step to start from
    {'version': 1, 'step': 0, 'kinds': ['l2', 'l1']}
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        kinds: Sequence[str] | str = ("l2",),
        *,
        optimizer_index: int = 0,
        **options: Any,
    ) -> None:
        RecordingCallback.__init__(self, kinds, path, **options)
        self.optimizer_index = optimizer_index
        self._loaded_step: int | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            kinds=list(self.kinds), path=None if self.path is None else str(self.path)
        )

    def record_path(self, trainer: pl.Trainer) -> Path:
        """Where the record is written for this Trainer."""
        return self._file_in(trainer.default_root_dir)

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
        plugin = trainer.precision_plugin
        # gradients=False: Lightning runs the closure, and so on_before_optimizer_step (the
        # gradient source), inside step(), after the step's pre-hooks
        rec = self._start(
            self.record_path(trainer),
            self._start_step(trainer, manual),
            trainer.optimizers[self.optimizer_index],
            getattr(plugin, "scaler", None),
            gradients=False,
        )
        self._loaded_step = None
        if manual:
            original = plugin.clip_gradients

            def clip_gradients(optimizer: Any, *args: Any, **kwargs: Any) -> Any:
                if self._grad_kinds and self._is_target(trainer, optimizer):
                    values = grad_norms(optimizer.param_groups, self._grad_kinds)
                    inv = inverse_scale(getattr(plugin, "scaler", None), optimizer)
                    rec.record_norms(values if inv is None else values * inv.to(values))
                return original(optimizer, *args, **kwargs)

            self._undo = (patch(plugin, "clip_gradients", clip_gradients),)  # this fit only
            n, max_steps = len(trainer.optimizers), trainer.max_steps
            for config in trainer.lr_scheduler_configs if n > 1 and max_steps > 0 else ():
                sched = config.scheduler
                if isinstance(sched, ScheduleLR) and sched.schedule.total_steps == max_steps:
                    msg = (
                        f"a ScheduleLR's horizon is max_steps={max_steps}, but under manual "
                        f"optimization global_step counts the steps of all {n} optimizers, so each "
                        f"optimizer steps about {math.ceil(max_steps / n)} times: pass "
                        f"lr_scheduler_config(..., num_optimizers={n}) or total_steps="
                    )
                    warnings.warn(msg, RuntimeWarning, stacklevel=2)

    def _start_step(self, trainer: pl.Trainer, manual: bool) -> int:
        """The step the record continues at: the checkpoint's own count of the recorded
        optimizer's steps (``global_step`` counts every optimizer's under manual optimization)."""
        global_step, n = int(trainer.global_step), len(trainer.optimizers)
        if self._loaded_step is not None:
            if not manual and self._loaded_step != global_step:
                msg = (
                    f"the checkpoint's record state is at step {self._loaded_step} but the "
                    f"Trainer resumes at global_step {global_step}; the record continues at "
                    f"{self._loaded_step}"
                )
                warnings.warn(msg, RuntimeWarning, stacklevel=3)
            return self._loaded_step
        if manual and n > 1 and global_step > 0:
            msg = (
                f"resuming at global_step {global_step} without this callback's state in the "
                f"checkpoint: under manual optimization global_step counts the steps of all {n} "
                f"optimizers; the record continues at {global_step // n} (assuming each stepped "
                "once per batch)"
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            return global_step // n
        return global_step

    def _is_target(self, trainer: pl.Trainer, optimizer: Any) -> bool:
        target = trainer.optimizers[self.optimizer_index]
        return optimizer is target or getattr(optimizer, "optimizer", None) is target

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        if self.recorder is not None and self._is_target(trainer, optimizer):
            self.recorder.record_step(optimizer.param_groups)  # unless clip_gradients recorded

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._stop()

    def state_dict(self) -> dict[str, Any]:
        """The step the record continues from (flushes the record first) and the kinds."""
        if self.recorder is not None:
            return self.recorder.state_dict()
        return {"version": 1, "step": self._loaded_step or 0, "kinds": list(self.kinds)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        kinds = tuple(state_dict.get("kinds", self.kinds))
        if kinds != self.kinds:
            raise ValueError(
                f"the checkpoint recorded kinds {list(kinds)}, this callback {list(self.kinds)}"
            )
        self._loaded_step = int(state_dict["step"])
