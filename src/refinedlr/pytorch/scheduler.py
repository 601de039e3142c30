"""``ScheduleLR``: drive any PyTorch optimizer from a refinedlr schedule (its checkpointed state:
the how-to page "Resuming and changing the horizon").
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from ..registry import schedule_from_spec
from ..schedule_io import ScheduleLike, as_schedule
from ..schedules import Continuation, Schedule, ScheduleError

OnMismatch = Literal["raise", "rescale", "use_new"]
_POLICIES = ("raise", "rescale", "use_new")
_STATE_VERSION = 1
#: The deepest effective-schedule tree a state may hold (one level per resume that changed it).
MAX_RESUMES = 100
# instance attributes that are configuration of this process, not state of the run
_NOT_STATE = ("optimizer", "schedule", "on_mismatch", "_effective", "_tree")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ScheduleMismatchError(ScheduleError):
    """A checkpoint was saved with another schedule (horizon or shape) than the one given now, or
    its schedule state is not one this scheduler wrote."""


def _build(node: Any, budget: list[int], depth: int = 0) -> Callable[[IntArray], FloatArray]:
    """The multipliers of an effective-schedule tree as a function of steps (each schedule holds
    its last value past its horizon); every node is evaluated once per call."""
    budget[0] -= 1
    if depth > MAX_RESUMES or budget[0] < 0 or not isinstance(node, Mapping):
        raise ScheduleMismatchError(
            f"a ScheduleLR state whose effective schedule is not a tree of at most {MAX_RESUMES} "
            "resumes: it was not saved by ScheduleLR"
        )
    kind = node.get("kind")
    if kind == "schedule":
        spec = dict(node["spec"])
        if isinstance(spec.get("values"), torch.Tensor):
            spec["values"] = spec["values"].detach().cpu().double().numpy()
        s = schedule_from_spec(spec)
        return lambda t: np.asarray(s(np.minimum(t, s.total_steps - 1)), dtype=np.float64)
    k = int(node["at"])
    if kind == "switched":
        before, after = (_build(node[n], budget, depth + 1) for n in ("before", "after"))
        return lambda t: np.where(t < k, before(t), after(t))
    if kind != "rescaled":
        raise ScheduleMismatchError(f"unknown node {kind!r} in a ScheduleLR state")
    old, new = int(node["old_total"]), int(node["new_total"])
    source = _build(node["source"], budget, depth + 1)

    def rescaled(t: IntArray) -> FloatArray:
        tt = np.minimum(t, max(new - 1, k)).astype(np.float64)  # (new - 1 <= k: x = k, held)
        x = k + (tt - k) * max(old - 1 - k, 0) / max(new - 1 - k, 1)
        x = np.clip(np.maximum(x, float(k)), 0.0, old - 1.0)  # between two steps of the old one
        lo = np.floor(x).astype(np.int64)
        w = x - lo
        here, a, b = np.split(
            source(np.concatenate([np.minimum(t, k), lo, np.minimum(lo + 1, old - 1)])), 3
        )
        return np.where(t < k, here, np.where(w == 0.0, a, (1.0 - w) * a + w * b))

    return rescaled


def _plain(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in a scheduler state")


def _spec_state(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec as plain Python types (``values`` as a float64 tensor) for ``weights_only`` loads."""
    out: dict[str, Any] = json.loads(
        json.dumps({k: v for k, v in spec.items() if k != "values"}, default=_plain)
    )
    if "values" in spec:
        out["values"] = torch.as_tensor(np.asarray(spec["values"], dtype=np.float64))
    return out


def _describe(spec: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in spec.items() if k not in ("values", "provenance", "total_steps")}
    if "values" in spec:
        shown["values"] = f"<{len(spec['values'])} values>"
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())


def _default_lr(optimizer: Optimizer) -> float | None:
    """The optimizer's default learning rate (the reference of absolute arguments such as
    ``lr_end``), or ``None`` when it is not a positive number."""
    lr = optimizer.defaults.get("lr")
    if isinstance(lr, torch.Tensor) and lr.numel() == 1 and lr.device.type == "cpu":
        lr = float(lr)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        return None
    return float(lr)


def _at(schedule: Schedule, effective: Callable[[IntArray], FloatArray] | None, t: int) -> float:
    """The multiplier at step ``t``: the schedule's, or the effective schedule's after resumes."""
    return schedule(t) if effective is None else float(effective(np.asarray([t]))[0])


def _planned_from(new: Schedule, info: Mapping[str, Any], effective: Any, k: int) -> bool:
    """Whether ``new`` is a planned continuation (:func:`refinedlr.plan.extend`) of the
    checkpoint's schedule: its base is that schedule and it branches at or after step ``k``."""
    if not isinstance(new, Continuation) or new.base.fingerprint() != info["fingerprint"]:
        return False
    if not (isinstance(effective, Mapping) and effective.get("kind") == "schedule"):
        return False  # the checkpoint already followed a composed schedule: use on_mismatch
    if k > new.at_step:
        raise ScheduleMismatchError(
            f"the checkpoint is at step {k}, past step {new.at_step} where the planned "
            f"continuation leaves the original schedule; plan it from this checkpoint instead "
            f"(refinedlr.plan.extend(..., at_step={k}))"
        )
    return True


class ScheduleLR(LRScheduler):
    """A :class:`torch.optim.lr_scheduler.LRScheduler` that follows a refinedlr schedule.

    Group ``i``'s learning rate at step ``t`` is ``base_lrs[i] * s_t`` (``base_lrs``: the groups'
    ``lr`` on creation). Call :meth:`step` once per optimizer step, after ``optimizer.step()``.

    Args:
        schedule: anything :func:`~refinedlr.schedule_io.as_schedule` accepts (a name takes
            ``**schedule_kwargs``; ``"refined"`` takes ``path=``).
        total_steps: the horizon in optimizer steps (a name needs it).
        last_epoch: torch's convention (``-1`` starts fresh); prefer :meth:`load_state_dict`.
        on_mismatch: what :meth:`load_state_dict` does when the checkpoint's schedule differs:
            ``"raise"`` (default), ``"rescale"`` or ``"use_new"``.

    >>> import torch
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.AdamW(
    ...     [{"params": [model.weight], "lr": 1e-3}, {"params": [model.bias], "lr": 1e-2}]
    ... )
    >>> sched = ScheduleLR(opt, "cosine", total_steps=100, warmup=0.1)
    >>> [round(lr, 8) for lr in sched.get_last_lr()]  # step 0 of the warm-up: 1/11 of each base
    [9.091e-05, 0.00090909]
    """

    schedule: Schedule
    on_mismatch: OnMismatch

    def __init__(
        self,
        optimizer: Optimizer,
        schedule: ScheduleLike,
        total_steps: int | None = None,
        *,
        last_epoch: int = -1,
        on_mismatch: OnMismatch = "raise",
        **schedule_kwargs: Any,
    ) -> None:
        if on_mismatch not in _POLICIES:
            raise ValueError(f"on_mismatch must be one of {_POLICIES}, got {on_mismatch!r}")
        schedule_kwargs.setdefault("base_lr", _default_lr(optimizer))
        self.schedule = as_schedule(schedule, total_steps, **schedule_kwargs)
        self.on_mismatch = on_mismatch
        self._tree: dict[str, Any] | None = None  # what earlier resumes composed (None: nothing)
        self._effective: Callable[[IntArray], FloatArray] | None = None  # ... as a function
        super().__init__(optimizer, last_epoch)

    def multiplier(self, step: int | None = None) -> float:
        """The multiplier at ``step`` (default: :attr:`last_epoch`); after a resume with
        ``on_mismatch="rescale"`` or ``"use_new"``, that of the composed schedule followed."""
        t = self.last_epoch if step is None else int(step)
        m = self.schedule(t)  # (its rule past the horizon applies after a resume too)
        return m if self._effective is None else _at(self.schedule, self._effective, t)

    def _get_closed_form_lr(self) -> list[float | torch.Tensor]:
        m = self.multiplier()  # tensor base LRs give tensors (no .item(), no device sync)
        return [base * m for base in self.base_lrs]

    def get_lr(self) -> list[float | torch.Tensor]:
        """The learning rates of step :attr:`last_epoch` (closed form; use :meth:`get_last_lr`)."""
        if not self._get_lr_called_within_step:
            msg = "To get the last learning rate computed by the scheduler, use `get_last_lr()`."
            warnings.warn(msg, UserWarning, stacklevel=2)
        return self._get_closed_form_lr()

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state: torch's fields plus the schedule's horizon, fingerprints and spec
        (only plain types, lists, dicts and tensors: it loads with ``weights_only=True``)."""
        state = {k: v for k, v in self.__dict__.items() if k not in _NOT_STATE}
        state["schedule"] = info = {
            "version": _STATE_VERSION,
            "total_steps": self.schedule.total_steps,
            "fingerprint": self.schedule.fingerprint(),
            "shape_fingerprint": self.schedule.shape_fingerprint(),
            "spec": _spec_state(self.schedule.to_spec()),
        }
        state["effective_schedule"] = self._tree or {"kind": "schedule", "spec": info["spec"]}
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the step counter and base learning rates; another schedule than this one is
        handled as ``on_mismatch`` says. A state ScheduleLR did not write (tampered or foreign)
        raises :class:`ScheduleMismatchError` and changes nothing."""
        state = dict(state_dict)
        info = state.pop("schedule", None)
        tree = state.pop("effective_schedule", None)
        if not isinstance(info, Mapping) or tree is None:
            raise ScheduleMismatchError(
                "this state was not saved by refinedlr's ScheduleLR (it has no schedule "
                "fingerprint); cannot check that the schedule matches"
            )
        try:
            k = int(state.get("last_epoch", 0))
            if _planned_from(self.schedule, info, tree, k):
                tree = {"kind": "schedule"}  # the plan itself, from the first step
            elif info["fingerprint"] != self.schedule.fingerprint():
                tree = self._reconcile(info, tree, k)
            if tree["kind"] == "schedule":
                tree, effective = None, None
            else:
                effective = _build(tree, [10 * MAX_RESUMES])
            m = _at(self.schedule, effective, k)
            lrs = [base * m for base in state.get("base_lrs", self.base_lrs)]
        except ScheduleMismatchError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            raise ScheduleMismatchError(
                f"a damaged ScheduleLR state, or not one ScheduleLR saved ({type(exc).__name__}: "
                f"{str(exc)[:120]})"
            ) from None
        self.__dict__.update(state)
        self._tree, self._effective = tree, effective
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = [
            g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else g["lr"]
            for g in self.optimizer.param_groups
        ]

    def _reconcile(self, info: Mapping[str, Any], tree: dict[str, Any], k: int) -> dict[str, Any]:
        new = self.schedule
        old_total = int(info["total_steps"])
        shape_changed = info["shape_fingerprint"] != new.shape_fingerprint()
        changes = []
        if old_total != new.total_steps:
            changes.append(f"horizon {old_total} -> {new.total_steps} steps")
        if shape_changed:
            changes.append(
                f"shape {info['spec'].get('name')!r} ({_describe(info['spec'])}) -> "
                f"{new.kind!r} ({_describe(new.to_spec())})"
            )
        # same horizon and shape hash but another full fingerprint
        what = "; ".join(changes) or f"fingerprint {info['fingerprint']} -> {new.fingerprint()}"
        if self.on_mismatch == "raise":
            raise ScheduleMismatchError(
                f"the checkpoint (step {k}) was saved with another schedule: {what}. Pass "
                "on_mismatch='rescale' to stretch the rest of the old schedule onto the new horizon, "
                "or on_mismatch='use_new' to switch to the new schedule from this step, or resume "
                "with the original schedule"
            )
        if self.on_mismatch == "rescale":
            if shape_changed:
                msg = (
                    f"resuming at step {k} with on_mismatch='rescale': the checkpoint's schedule is "
                    f"stretched onto the new horizon; the new schedule's shape is ignored ({what})"
                )
                warnings.warn(msg, UserWarning, stacklevel=3)
            total = new.total_steps
            return dict(kind="rescaled", at=k, old_total=old_total, new_total=total, source=tree)
        old_m = _at(new, _build(tree, [10 * MAX_RESUMES]), k)
        new_m = float(new(k)) if k < new.total_steps or new.after_horizon == "hold" else math.nan
        msg = (
            f"resuming at step {k} with on_mismatch='use_new' ({what}): the learning-rate "
            f"multiplier jumps from {old_m:.6g} to {new_m:.6g}"
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
        after = {"kind": "schedule", "spec": _spec_state(new.to_spec())}
        return {"kind": "switched", "at": k, "before": tree, "after": after}
