"""The framework internals refinedlr touches, all in one place (``tests/integrations/test_seams.py``
pins each to the version range of its extra in ``pyproject.toml``):

* torch ``GradScaler`` (``torch>=2.4``): :func:`scaler_stage` reads
  ``_per_optimizer_states[id(optimizer)]["stage"]``, :func:`inverse_scale` reads ``_scale``;
  :meth:`~refinedlr.pytorch.GradNormRecorder.attach` wraps the instance's ``update`` with
  :func:`patch`; :func:`in_grad_scaler_step` finds the live scalers through ``gc``.
* accelerate (``accelerate>=0.26``): the Trainer's ``Accelerator.clip_grad_norm_(parameters,
  max_norm, norm_type)`` is wrapped on the instance for one ``train()``.
* transformers (``transformers>=4.40``): ``Trainer.create_scheduler(num_training_steps,
  optimizer)`` is replaced on the instance; ``Trainer._created_lr_scheduler`` is set as there.
* Lightning (``lightning>=2.2``): the precision plugin's ``clip_gradients(optimizer, ...)`` is
  wrapped on the instance for one ``fit`` (manual optimization).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["in_grad_scaler_step", "inverse_scale", "patch", "scaler_stage"]


def patch(obj: Any, name: str, wrapper: Callable[..., Any]) -> Callable[[], None]:
    """Set the instance attribute ``obj.<name> = wrapper``; returns the undo, after which the
    class's method shows through again."""
    setattr(obj, name, wrapper)

    def undo() -> None:
        if obj.__dict__.get(name) is wrapper:
            delattr(obj, name)

    return undo


def scaler_stage(scaler: Any, optimizer: Any) -> str:
    """Where ``optimizer`` is in the current step of a ``torch.amp.GradScaler``: ``"READY"`` (not
    unscaled yet), ``"UNSCALED"`` or ``"STEPPED"``, since the scaler's last ``update()``."""
    state = scaler._per_optimizer_states.get(id(getattr(optimizer, "optimizer", optimizer)))
    return "READY" if state is None else str(state["stage"].name)


def inverse_scale(scaler: Any, optimizer: Any) -> torch.Tensor | None:
    """``1 / scale`` while ``optimizer``'s gradients are still scaled by an enabled ``scaler``,
    else ``None`` (no host sync: the scale stays a device tensor)."""
    if scaler is None or not scaler.is_enabled() or scaler_stage(scaler, optimizer) != "READY":
        return None
    scale = scaler._scale
    return None if scale is None else 1.0 / scale


def in_grad_scaler_step(optimizer: Any) -> bool:
    """Whether a live ``torch.amp.GradScaler`` has unscaled ``optimizer`` for the step now
    running (a scan of the garbage collector's objects: call it once, not every step)."""
    from torch.amp.grad_scaler import GradScaler

    return any(
        issubclass(type(o), GradScaler) and scaler_stage(o, optimizer) == "UNSCALED"
        for o in gc.get_objects()
    )
