"""Hugging Face ``transformers``: record gradient norms from a ``Trainer``; train on refinedlr schedules.

Recording (the norms a later refinement needs, one row per optimizer step)::

    from refinedlr.integrations.transformers import record_grad_norms, use_schedule

    trainer = Trainer(model=model, args=args, train_dataset=train_ds)
    record_grad_norms(trainer, kinds=("l2", "l1"))  # -> <output_dir>/refinedlr_norms.csv
    trainer.train()

then ``refinedlr refine <output_dir>/refinedlr_norms.csv --norm l1 -o refined.json`` (AdamW: l1;
SGD: l2), and train the next run on the refined schedule::

    trainer = Trainer(model=model, args=args, train_dataset=train_ds)
    use_schedule(trainer, "refined", path="refined.json")
    trainer.train()

What is recorded, and why it matches the Trainer's own ``grad_norm``:
    The Trainer clips inside its training loop, *before* any callback event of that step
    (``on_pre_optimizer_step`` already sees clipped gradients), and logs ``grad_norm`` only every
    ``logging_steps``. :func:`record_grad_norms` therefore wraps the Trainer's
    ``accelerator.clip_grad_norm_`` (on that one accelerator object, for the duration of
    ``train()``): the Trainer calls it once per optimizer step, after gradient accumulation and AMP
    unscaling, and it returns the pre-clip total l2 norm, the very value the Trainer logs. That
    value is recorded as ``l2``, so on the logged steps the record equals ``log_history``'s
    ``grad_norm`` (HF step ``s`` is record step ``s - 1``). ``l1`` is computed from the same
    gradients before clipping (with an fp16 ``GradScaler``, from the clipped gradients divided by
    the clip coefficient). When the Trainer computes no norm in a step (older transformers with
    ``max_grad_norm = 0``), a step pre-hook on the optimizer records the norms of the gradients
    ``optimizer.step()`` uses (unscaled, unclipped). Rows are committed in ``on_step_end``: exactly one per optimizer step,
    also under gradient accumulation and for steps the AMP scaler skips (a non-finite norm is
    written as a missing value).

Settings:
    * ``max_grad_norm``: any value. With ``max_grad_norm > 0`` the Trainer clips (the record holds
      the norms before clipping); with ``max_grad_norm = 0`` recent transformers still compute the
      norm once per step (with ``inf`` as the bound), and older ones compute none: then a step
      pre-hook on the optimizer records the (unclipped) gradients the step uses.
    * ``logging_steps`` does not matter for the record (it only thins ``trainer_state.json``).
      ``refinedlr refine <output_dir>/trainer_state.json`` refines from the Trainer's own log
      (l2 only, a sample every ``logging_steps``); the record of :func:`record_grad_norms` is dense
      and also has ``l1``.
    * Checkpoints: resuming (``trainer.train(resume_from_checkpoint=...)``) continues the record
      at the checkpoint's ``global_step``: earlier rows are kept, later ones replaced. The record
      is flushed at every checkpoint save.
    * Distributed (DDP, FSDP2): every process computes the norms of the full gradient (FSDP2's
      DTensor gradients are reduced); only the main process writes. Not supported: DeepSpeed (it
      clips inside its engine) and ``l1`` with FSDP1 (flat sharded gradients).

Schedules: :func:`use_schedule` makes the Trainer build a :class:`~refinedlr.pytorch.ScheduleLR`
in its ``create_scheduler`` hook, on the Trainer's own horizon (``max_steps``, or the number of
optimizer steps of ``num_train_epochs``) and warm-up (``warmup_steps`` / ``warmup_ratio``); the
scheduler's state goes into each checkpoint's ``scheduler.pt`` and a resumed run continues the
same schedule (a changed horizon raises unless ``on_mismatch`` says otherwise).
:func:`make_scheduler` builds the scheduler for ``Trainer(optimizers=(optimizer, scheduler))``.

Warm-up note: refinedlr's warm-up gives step ``t < W`` the multiplier ``(t + 1) / (W + 1)``
(never zero); Hugging Face's gives ``t / W`` (zero at step 0).
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
from ..pytorch.updates import UPDATE_KINDS, check_update_optimizer, update_norms
from ..schedule_io import SCHEDULE_SUFFIXES, ScheduleLike, as_schedule
from ..schedules import ScheduleError
from ._recording import RecordingCallback

__all__ = [
    "NORMS_FILENAME",
    "GradNormCallback",
    "make_scheduler",
    "record_grad_norms",
    "use_schedule",
]

#: The record's file name in the Trainer's ``output_dir`` when no path is given.
NORMS_FILENAME = "refinedlr_norms.csv"


# ----------------------------------------------------------------------------------------------
# schedules


def _warmup_steps(args: TrainingArguments, total: int) -> int:
    get = getattr(args, "get_warmup_steps", None)
    if get is not None:
        return int(get(total))
    ratio = float(getattr(args, "warmup_ratio", 0.0) or 0.0)  # pragma: no cover - old versions
    steps = float(getattr(args, "warmup_steps", 0) or 0)  # pragma: no cover
    return int(steps) if steps >= 1 else math.ceil(total * (steps or ratio))  # pragma: no cover


def _hf_schedule_name(args: TrainingArguments) -> tuple[str, dict[str, Any]]:
    kind = args.lr_scheduler_type
    name = str(getattr(kind, "value", kind))
    kwargs: Any = args.lr_scheduler_kwargs or {}
    if isinstance(kwargs, str):  # given as JSON on a command line
        kwargs = json.loads(kwargs)
    return name, dict(kwargs)


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
        optimizer: the optimizer the scheduler drives.
        schedule: a schedule name for :func:`~refinedlr.schedules.get_schedule` (``"linear"``,
            ``"cosine"``, ``"refined"`` with ``path=``, ...), a
            :class:`~refinedlr.schedules.Schedule`, a schedule file or a spec (put on the
            Trainer's horizon with :meth:`~refinedlr.schedules.Schedule.with_horizon`; its own
            warm-up is kept; :func:`~refinedlr.schedule_io.as_schedule` resolves all these), or
            ``None``: ``"refined"`` when ``path`` is given, else the arguments'
            ``lr_scheduler_type`` and ``lr_scheduler_kwargs`` (refinedlr's equivalent of HF's
            schedule of that name).
        num_training_steps: the horizon in optimizer steps (after gradient accumulation). Default:
            ``args.max_steps``; an epoch-based run (``max_steps=-1``) needs it, or use
            :func:`use_schedule`, which gets it from the Trainer.
        warmup: warm-up steps (``int``) or fraction (``float``) for a named schedule; default
            from the arguments (``warmup_steps``, ``warmup_ratio``).
        path: the schedule file of ``schedule="refined"`` (``.json``/``.npy``/``.csv``, e.g. from
            ``refinedlr refine``); it is resampled onto the horizon.
        on_mismatch: what a resume from a checkpoint made with another schedule or horizon does
            (see :class:`~refinedlr.pytorch.ScheduleLR`).
        **schedule_kwargs: more arguments of the named schedule (``floor=0.1``, ...).

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
    kwargs = dict(schedule_kwargs)
    from_args = schedule is None and path is None
    if from_args:
        schedule, hf_kwargs = _hf_schedule_name(args)
        for k, v in hf_kwargs.items():
            kwargs.setdefault(k, v)
    elif schedule is None:
        schedule = "refined"
    if path is not None:
        kwargs["path"] = path
    if warmup is not None:
        kwargs["warmup"] = warmup
    elif isinstance(schedule, str) and not schedule.lower().endswith(SCHEDULE_SUFFIXES):
        kwargs["warmup"] = _warmup_steps(args, total)  # a schedule by name: the arguments' warm-up
    try:
        sched = as_schedule(schedule, total, base_lr=args.learning_rate, **kwargs)
    except ScheduleError as exc:
        if not from_args:
            raise
        raise ScheduleError(f"{exc} (TrainingArguments: lr_scheduler_type={schedule!r})") from None
    return ScheduleLR(optimizer, sched, on_mismatch=on_mismatch)


def use_schedule(
    trainer: Trainer,
    schedule: ScheduleLike | None = None,
    *,
    warmup: int | float | None = None,
    path: str | os.PathLike[str] | None = None,
    on_mismatch: OnMismatch = "raise",
    **schedule_kwargs: Any,
) -> None:
    """Make ``trainer`` use a refinedlr schedule (a :class:`~refinedlr.pytorch.ScheduleLR`).

    Replaces the Trainer's ``create_scheduler`` hook on this ``trainer`` object (works with any
    ``Trainer`` subclass), so the scheduler is built when training starts, on the Trainer's
    horizon (its ``max_steps``, or the number of optimizer steps of ``num_train_epochs``) and with
    the arguments' warm-up; see :func:`make_scheduler` for the arguments. The scheduler is saved
    in every checkpoint and ``trainer.train(resume_from_checkpoint=...)`` continues it.

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
                warmup=warmup,
                path=path,
                on_mismatch=on_mismatch,
                **schedule_kwargs,
            )
            # the Trainer rebuilds a scheduler it created when train() is called again
            trainer._created_lr_scheduler = True
        sched: ScheduleLR = trainer.lr_scheduler  # type: ignore[assignment]
        return sched

    trainer.create_scheduler = create_scheduler  # type: ignore[method-assign]


# ----------------------------------------------------------------------------------------------
# recording


class GradNormCallback(RecordingCallback, TrainerCallback):
    """A ``TrainerCallback`` that records the pre-clip global gradient norm of every optimizer step.

    Prefer :func:`record_grad_norms`, which creates it, binds it to the Trainer and adds it. The
    callback needs the Trainer itself (callbacks are not given its accelerator): pass
    ``trainer=`` or call :meth:`bind` before training.

    Args:
        trainer: the Trainer to record from (or :meth:`bind` it later).
        kinds: the columns of the record: ``"l2"`` (SGD; the Trainer's ``grad_norm``), ``"l1"``
            (Adam-type optimizers), and ``"update_l2"`` / ``"update_l1"``: the norms of the
            update direction of an Adam-type optimizer (``Adam``, ``AdamW``, ``NAdam``,
            ``RAdam``) after its step, from its state (:mod:`refinedlr.pytorch.updates`), for
            the verification of a refined schedule; a step the fp16 scaler skipped is missing.
        path: the record file; default ``<output_dir>/refinedlr_norms.csv``.
        flush_every: steps between writes to the file (it is also flushed at every checkpoint).
        keep_in_memory: also keep the values in memory (full precision, :meth:`to_record` with
            ``source="memory"``).
        fsync: ``fsync`` the file at every flush.

    Attributes:
        recorder: the :class:`~refinedlr.pytorch.GradNormRecorder` of the current ``train()``
            call (``None`` before training).
    """

    def __init__(
        self,
        trainer: Trainer | None = None,
        *,
        kinds: Sequence[str] | str = ("l2",),
        path: str | os.PathLike[str] | None = None,
        flush_every: int = 100,
        keep_in_memory: bool = False,
        fsync: bool = True,
    ) -> None:
        self._init_recording(kinds, path, flush_every, keep_in_memory, fsync)
        self._grad_kinds = tuple(k for k in self.kinds if k not in UPDATE_KINDS)
        self._update_kinds = tuple(k for k in self.kinds if k in UPDATE_KINDS)
        self._trainer: Trainer | None = None
        self._accelerator: Any = None
        self._wrapper: Callable[..., Any] | None = None
        self._hooks: list[Any] = []
        self._pending: torch.Tensor | None = None
        self._pending_update: torch.Tensor | None = None
        self._in_step = False
        self._missing = 0
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
        return self.path if self.path is not None else Path(str(args.output_dir)) / NORMS_FILENAME

    # -- the wrapper around accelerator.clip_grad_norm_ ----------------------------------------

    def _install(self, accelerator: Any, optimizer: Any) -> None:
        self._uninstall()
        original = accelerator.clip_grad_norm_
        callback = self

        def clip_grad_norm_(
            parameters: Any, max_norm: float, norm_type: float = 2, *args: Any, **kwargs: Any
        ) -> Any:
            if callback.recorder is None or not callback._in_step:
                return original(parameters, max_norm, norm_type, *args, **kwargs)
            params = list(parameters)
            total, values = callback._norms_around(
                accelerator, original, params, max_norm, norm_type, args, kwargs
            )
            callback._pending = values
            return total

        self._accelerator = accelerator
        self._wrapper = clip_grad_norm_
        accelerator.clip_grad_norm_ = clip_grad_norm_

        # Fallback for steps on which the Trainer computes no norm (older transformers without
        # clipping): a step pre-hook on the torch optimizer sees the gradients the step uses,
        # unscaled (an AMP scaler unscales before it calls step) and, there, unclipped.
        inner: Any = optimizer
        while isinstance(getattr(inner, "optimizer", None), torch.optim.Optimizer):
            inner = inner.optimizer  # accelerate's AcceleratedOptimizer wraps the real one
        if isinstance(inner, torch.optim.Optimizer):

            def pre_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
                if callback.recorder is not None and callback._in_step:
                    if callback._pending is None:
                        callback._pending = grad_norms(opt, self._grad_kinds)

            # the update kinds: from the state right after the step (the Trainer zeroes the
            # gradients before on_step_end; a step the fp16 scaler skips never gets here)
            def post_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
                if callback.recorder is not None and callback._in_step:
                    callback._pending_update = update_norms(opt, self._update_kinds)

            self._hooks = [inner.register_step_pre_hook(pre_step)]
            if self._update_kinds:
                self._hooks.append(inner.register_step_post_hook(post_step))

    def _uninstall(self) -> None:
        acc = self._accelerator
        if acc is not None and acc.__dict__.get("clip_grad_norm_") is self._wrapper:
            del acc.clip_grad_norm_  # the class's method shows through again
        for hook in self._hooks:
            hook.remove()
        self._accelerator = None
        self._wrapper = None
        self._hooks = []

    def _norms_around(
        self,
        accelerator: Any,
        original: Callable[..., Any],
        params: list[torch.Tensor],
        max_norm: float,
        norm_type: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[Any, torch.Tensor]:
        """Call the original clip; return its result and this step's norms (pre-clip)."""
        l2_from_total = float(norm_type) == 2.0
        own = [k for k in self._grad_kinds if not (k == "l2" and l2_from_total)]
        # with an fp16 GradScaler the gradients are still scaled here (the original unscales)
        scaled = getattr(accelerator, "scaler", None) is not None
        before: torch.Tensor | None = None
        if own and not scaled:
            before = grad_norms(params, own)
        total = original(params, max_norm, norm_type, *args, **kwargs)
        if own and scaled:
            # the original clipped every gradient by coef = min(1, max_norm / (total + 1e-6)),
            # total being its norm of order norm_type: undo that factor
            after = grad_norms(params, own)
            if isinstance(total, torch.Tensor):
                coef = torch.clamp(float(max_norm) / (total.to(after) + 1e-6), max=1.0)
                before = after / coef
            else:  # pragma: no cover - no tensor norm to undo the clip with
                before = after
        parts: list[torch.Tensor] = []
        for k in self._grad_kinds:
            if k == "l2" and l2_from_total:
                if total is None:  # pragma: no cover - DeepSpeed without an engine
                    parts.append(torch.tensor(math.nan, dtype=torch.float64))
                else:
                    parts.append(torch.as_tensor(total).detach().reshape(()))
            else:
                assert before is not None
                parts.append(before[own.index(k)].reshape(()))
        if not parts:  # update kinds only
            return total, torch.zeros(0, dtype=torch.float64)
        dev = parts[0].device
        dtype = torch.float32 if dev.type == "mps" else torch.float64
        values = torch.stack([p.to(dev, dtype) for p in parts])
        return total, values

    # -- callback events ----------------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any
    ) -> None:
        trainer = self._trainer
        if trainer is None:
            raise RuntimeError(
                "GradNormCallback is not bound to its Trainer: use record_grad_norms(trainer, ...) "
                "or GradNormCallback(trainer, ...) / callback.bind(trainer)"
            )
        accelerator = trainer.accelerator
        dtype = str(getattr(accelerator, "distributed_type", ""))
        if "DEEPSPEED" in dtype.upper():
            raise NotImplementedError(
                "recording gradient norms under DeepSpeed is not supported (DeepSpeed clips inside "
                "its engine; the norm the Trainer gets is DeepSpeed's)"
            )
        if (
            "l1" in self.kinds
            and dtype.upper().endswith("FSDP")
            and not getattr(accelerator, "is_fsdp2", False)
        ):
            raise NotImplementedError("the l1 norm under FSDP1 is not supported; use FSDP2 or l2")
        optimizer = kwargs.get("optimizer", trainer.optimizer)
        if self._update_kinds:
            if dtype.upper().endswith("FSDP") and not getattr(accelerator, "is_fsdp2", False):
                raise NotImplementedError(
                    "update_l2 / update_l1 under FSDP1 are not supported (flat local shards of "
                    "the optimizer state); use FSDP2"
                )
            check_update_optimizer(optimizer)
        self._open_recorder(self.record_path(args), int(state.global_step))
        self._pending = None
        self._in_step = False
        self._missing = 0
        self._install(accelerator, optimizer)

    def on_step_begin(
        self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any
    ) -> None:
        self._in_step = True
        self._pending = None
        self._pending_update = None

    def on_step_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        rec = self.recorder
        if rec is None:
            return
        grads = self._pending
        if grads is None and self._grad_kinds:
            self._missing += 1
            if self._missing == 1:
                warnings.warn(
                    f"no gradient norm at optimizer step {rec.step}: neither "
                    "accelerator.clip_grad_norm_ nor optimizer.step ran in this step (e.g. a step "
                    "the fp16 scaler skipped without clipping); such steps are recorded as missing",
                    RuntimeWarning,
                    stacklevel=2,
                )
        values: dict[str, Any] = dict.fromkeys(self.kinds, math.nan)
        if grads is not None:
            values.update(zip(self._grad_kinds, grads.unbind(), strict=True))
        if self._pending_update is not None:
            values.update(zip(self._update_kinds, self._pending_update.unbind(), strict=True))
        rec.record_norms(_row([values[k] for k in self.kinds]))
        self._pending = None
        self._pending_update = None
        self._in_step = False

    def on_save(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recorder is not None:
            self.recorder.flush()

    def on_train_end(
        self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any
    ) -> None:
        self._close_recorder()
        self._uninstall()
        self._in_step = False


def record_grad_norms(
    trainer: Trainer,
    kinds: Sequence[str] | str = ("l2",),
    *,
    path: str | os.PathLike[str] | None = None,
    flush_every: int = 100,
    keep_in_memory: bool = False,
    fsync: bool = True,
) -> GradNormCallback:
    """Record the pre-clip gradient norms of every optimizer step of ``trainer`` to a CSV record.

    Adds a bound :class:`GradNormCallback` to ``trainer`` and returns it. The record goes to
    ``path`` (default ``<output_dir>/refinedlr_norms.csv``), written by the main process only, one
    row per optimizer step; ``l2`` equals the ``grad_norm`` the Trainer logs. See the module
    documentation for the settings.

    >>> import tempfile, torch
    >>> from transformers import Trainer, TrainingArguments
    >>> args = TrainingArguments(tempfile.mkdtemp(), max_steps=8, report_to=[], use_cpu=True)
    >>> trainer = Trainer(model=torch.nn.Linear(2, 2), args=args)
    >>> cb = record_grad_norms(trainer, kinds=("l2", "l1"))
    >>> cb in trainer.callback_handler.callbacks, cb.record_path(args).name
    (True, 'refinedlr_norms.csv')
    """
    cb = GradNormCallback(
        trainer,
        kinds=kinds,
        path=path,
        flush_every=flush_every,
        keep_in_memory=keep_in_memory,
        fsync=fsync,
    )
    trainer.add_callback(cb)
    return cb


def _row(values: list[Any]) -> torch.Tensor | list[float]:
    """One record row from 0-d device tensors and python floats (NaN), without a host sync."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return [float(v) for v in values]
    dev = tensors[0].device
    dtype = torch.float32 if dev.type == "mps" else torch.float64
    return torch.stack(
        [
            v.to(dev, dtype).reshape(())
            if isinstance(v, torch.Tensor)
            else torch.full((), float(v), dtype=dtype, device=dev)
            for v in values
        ]
    )
