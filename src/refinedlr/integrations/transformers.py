"""Hugging Face ``transformers``: record gradient norms from a ``Trainer``; train on refinedlr schedules.

:func:`record_grad_norms` records the Trainer's own pre-clip ``grad_norm`` as ``l2`` (HF step ``s``
is record step ``s - 1``) by wrapping ``accelerator.clip_grad_norm_`` for one ``train()``. The
Integrations page shows both and every setting.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

try:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments
except ImportError as exc:
    raise ImportError(
        "refinedlr.integrations.transformers needs torch, transformers and accelerate "
        f'({exc}): pip install "refinedlr[transformers]"'
    ) from exc

from ..pytorch import OnMismatch, ScheduleLR, grad_norms
from ..pytorch.seams import patch
from ..schedule_io import SCHEDULE_SUFFIXES, ScheduleLike
from ..schedules import ScheduleError
from . import _recording
from ._recording import RecordingCallback

__all__ = [
    "NORMS_FILENAME",
    "GradNormCallback",
    "make_scheduler",
    "record_grad_norms",
    "use_schedule",
]

#: The record's file name in the Trainer's ``output_dir`` when no path is given.
NORMS_FILENAME = _recording.NORMS_FILENAME


def make_scheduler(
    args: TrainingArguments | Trainer,
    optimizer: torch.optim.Optimizer,
    schedule: ScheduleLike | None = None,
    *,
    num_training_steps: int | None = None,
    warmup: int | float | None = None,
    path: str | os.PathLike[str] | None = None,
    on_mismatch: OnMismatch = "raise",
    **schedule_kwargs: Any,
) -> ScheduleLR:
    """A :class:`~refinedlr.pytorch.ScheduleLR` for a Trainer, set up from its ``TrainingArguments``.

    Args:
        args: the ``TrainingArguments`` (or the ``Trainer``, whose ``args`` are used).
        schedule: anything :func:`~refinedlr.schedule_io.as_schedule` accepts; ``None``:
            ``"refined"`` with ``path``, else the arguments' ``lr_scheduler_type`` and kwargs.
        num_training_steps, warmup: the horizon (default ``args.max_steps``); a named schedule's
            warm-up steps (``int``) or fraction (``float``), default from the arguments.
        path: the schedule file of ``"refined"`` (from ``refinedlr refine``), resampled.
        on_mismatch, schedule_kwargs: those of :class:`~refinedlr.pytorch.ScheduleLR`.

    >>> import tempfile, torch
    >>> from transformers import TrainingArguments
    >>> args = TrainingArguments(tempfile.mkdtemp(), max_steps=10, warmup_steps=2, report_to=[])
    >>> opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
    >>> sched = make_scheduler(args, opt, "linear")
    >>> sched.schedule
    LinearDecay(total_steps=10, warmup=2, after_horizon='hold', floor=0.0)
    """
    if isinstance(args, Trainer):
        args = args.args
    total = num_training_steps
    if total is None:
        if args.max_steps is None or args.max_steps <= 0:
            raise ValueError(
                "the horizon is unknown: TrainingArguments.max_steps is not set (an epoch-based "
                "run); pass num_training_steps=..., or use use_schedule(trainer, ...), which gets "
                "the number of optimizer steps from the Trainer"
            )
        total = int(args.max_steps)
    from_args = schedule is None and path is None
    if from_args:
        schedule = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
        hf_kwargs: Any = args.lr_scheduler_kwargs or {}
        for k, v in (json.loads(hf_kwargs) if isinstance(hf_kwargs, str) else hf_kwargs).items():
            schedule_kwargs.setdefault(k, v)  # (given as JSON on a command line, or as a dict)
    elif schedule is None:
        schedule = "refined"
    if path is not None:
        schedule_kwargs["path"] = path
    if warmup is not None:
        schedule_kwargs["warmup"] = warmup
    elif isinstance(schedule, str) and not schedule.lower().endswith(SCHEDULE_SUFFIXES):
        schedule_kwargs["warmup"] = int(args.get_warmup_steps(total))  # the arguments' warm-up
    schedule_kwargs.setdefault("base_lr", args.learning_rate)
    try:
        return ScheduleLR(optimizer, schedule, total, on_mismatch=on_mismatch, **schedule_kwargs)
    except ScheduleError as exc:
        if not from_args:
            raise
        raise ScheduleError(f"{exc} (TrainingArguments: lr_scheduler_type={schedule!r})") from None


def use_schedule(
    trainer: Trainer,
    schedule: ScheduleLike | None = None,
    *,
    on_mismatch: OnMismatch = "raise",
    **kwargs: Any,
) -> None:
    """Make ``trainer`` build a :class:`~refinedlr.pytorch.ScheduleLR` (its ``create_scheduler``
    replaced) when training starts, on the Trainer's horizon; arguments: :func:`make_scheduler`'s.

    >>> import tempfile, torch
    >>> from transformers import Trainer, TrainingArguments
    >>> args = TrainingArguments(tempfile.mkdtemp(), max_steps=8, report_to=[], use_cpu=True)
    >>> trainer = Trainer(model=torch.nn.Linear(2, 2), args=args)
    >>> use_schedule(trainer, "cosine", floor=0.1)
    >>> trainer.create_optimizer_and_scheduler(num_training_steps=8)
    >>> type(trainer.lr_scheduler).__name__, trainer.lr_scheduler.schedule.total_steps
    ('ScheduleLR', 8)
    """
    if not isinstance(trainer, Trainer):
        raise TypeError(f"use_schedule needs a transformers.Trainer, got {type(trainer).__name__}")
    if trainer.lr_scheduler is not None and not getattr(trainer, "_created_lr_scheduler", False):
        raise ValueError(
            "this Trainer was given a scheduler (optimizers=(optimizer, scheduler)); pass a "
            "ScheduleLR there (make_scheduler) or drop it to use use_schedule"
        )

    def create_scheduler(
        num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> ScheduleLR:
        if trainer.lr_scheduler is None:
            opt = optimizer if optimizer is not None else trainer.optimizer
            if opt is None:
                raise RuntimeError("create_scheduler needs the optimizer: create it first")
            trainer.lr_scheduler = make_scheduler(  # type: ignore[assignment]
                trainer.args,
                opt,
                schedule,
                num_training_steps=num_training_steps,
                on_mismatch=on_mismatch,
                **kwargs,
            )
            trainer._created_lr_scheduler = True  # (rebuilt when train() is called again)
        return trainer.lr_scheduler  # type: ignore[return-value]

    patch(trainer, "create_scheduler", create_scheduler)


def _pre_clip_norms(
    accelerator: Any,
    clip: Callable[..., Any],
    params: list[torch.Tensor],
    kinds: Sequence[str],
    max_norm: float,
    norm_type: float = 2.0,
    *args: Any,
    **kwargs: Any,
) -> tuple[Any, dict[str, Any]]:
    """Call the accelerator's ``clip`` on ``params``; its result and the pre-clip norms by kind."""
    from_total = float(norm_type) == 2.0  # l2 is the clip's own total norm
    own = [k for k in kinds if not (k == "l2" and from_total)]
    scaled = getattr(accelerator, "scaler", None) is not None  # fp16: clip() unscales first
    before = grad_norms(params, own) if own and not scaled else None
    total = clip(params, max_norm, norm_type, *args, **kwargs)
    if own and scaled:  # undo the clip, coef = min(1, max_norm / (total + 1e-6))
        after = grad_norms(params, own)
        before = after / torch.clamp(float(max_norm) / (total.to(after) + 1e-6), max=1.0)
    values: dict[str, Any] = dict.fromkeys(kinds, math.nan)
    if before is not None:
        values.update(zip(own, before.unbind(), strict=True))
    if "l2" in kinds and from_total and total is not None:  # (None only under DeepSpeed: refused)
        values["l2"] = torch.as_tensor(total).detach()
    return total, values


class GradNormCallback(RecordingCallback, TrainerCallback):
    """A ``TrainerCallback`` that records the pre-clip global gradient norm of every optimizer step.

    Prefer :func:`record_grad_norms`. It needs the Trainer: pass ``trainer=`` or call :meth:`bind`.
    ``options``: ``kinds``, ``path`` (default ``<output_dir>/refinedlr_norms.csv``),
    ``flush_every=100`` (each save flushes too), ``keep_in_memory=False`` and ``fsync=True``.
    """

    def __init__(self, trainer: Trainer | None = None, **options: Any) -> None:
        RecordingCallback.__init__(self, **options)
        self._trainer: Trainer | None = None
        if trainer is not None:
            self.bind(trainer)

    def bind(self, trainer: Trainer) -> GradNormCallback:
        """Record from ``trainer`` (its accelerator's ``clip_grad_norm_``); returns ``self``."""
        if not isinstance(trainer, Trainer):
            raise TypeError(f"bind needs a transformers.Trainer, got {type(trainer).__name__}")
        self._trainer = trainer
        return self

    def record_path(self, args: TrainingArguments) -> Path:
        """Where the record is written for these arguments."""
        return self._file_in(str(args.output_dir))

    def on_train_begin(
        self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any
    ) -> None:
        trainer = self._trainer
        if trainer is None:
            raise RuntimeError(
                "GradNormCallback is not bound to its Trainer: use record_grad_norms(trainer, ...) "
                "or GradNormCallback(trainer, ...) / callback.bind(trainer)"
            )
        acc = trainer.accelerator
        dist = str(getattr(acc, "distributed_type", "")).upper()
        fsdp1 = dist.endswith("FSDP") and not getattr(acc, "is_fsdp2", False)
        if "DEEPSPEED" in dist or (fsdp1 and self.kinds != ("l2",)):
            raise NotImplementedError(
                "recording gradient norms under DeepSpeed (it clips inside its engine), or l1 and "
                "the update kinds under FSDP1 (flat local shards), is not supported; use FSDP2"
            )
        optimizer = kwargs.get("optimizer", trainer.optimizer)
        rec = self._start(
            self.record_path(args),
            int(state.global_step),
            optimizer,
            getattr(acc, "scaler", None),
            gradients=True,
        )
        original, kinds = acc.clip_grad_norm_, self._grad_kinds

        def clip_grad_norm_(parameters: Any, max_norm: float, *a: Any, **kw: Any) -> Any:
            params = list(parameters)
            if not any(p.grad is not None for p in params):
                rec.record(params)  # no gradients: missing values, with a warning
                return original(params, max_norm, *a, **kw)
            total, values = _pre_clip_norms(acc, original, params, kinds, max_norm, *a, **kw)
            rec.record_norms(values)
            return total

        self._undo = (patch(acc, "clip_grad_norm_", clip_grad_norm_),)  # this train() only

    def on_step_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        rec = self.recorder
        if rec is not None and rec.step < state.global_step:  # no complete row for this step
            msg = (
                f"no complete row at optimizer step {rec.step}: neither "
                "accelerator.clip_grad_norm_ nor optimizer.step ran in this step (e.g. a step "
                "the fp16 scaler skipped without clipping); such steps are recorded as missing"
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            rec.end_step()

    def on_save(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recorder is not None:
            self.recorder.flush()

    def on_train_end(
        self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any
    ) -> None:
        self._stop()


def record_grad_norms(
    trainer: Trainer, kinds: Sequence[str] | str = ("l2",), **options: Any
) -> GradNormCallback:
    """Add a bound :class:`GradNormCallback` (``options``: its own) to ``trainer``; returns it.

    >>> import tempfile, torch
    >>> from transformers import Trainer, TrainingArguments
    >>> args = TrainingArguments(tempfile.mkdtemp(), max_steps=8, report_to=[], use_cpu=True)
    >>> trainer = Trainer(model=torch.nn.Linear(2, 2), args=args)
    >>> cb = record_grad_norms(trainer, kinds=("l2", "l1"))
    >>> cb in trainer.callback_handler.callbacks, cb.record_path(args).name
    (True, 'refinedlr_norms.csv')
    """
    trainer.add_callback(cb := GradNormCallback(trainer, kinds=kinds, **options))
    return cb
