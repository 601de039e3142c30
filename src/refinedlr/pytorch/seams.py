"""The framework internals refinedlr touches, all in one place; ``tests/integrations/test_seams.py``
pins each to the version range of its extra in ``pyproject.toml`` (the API reference lists them).
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
