"""``ScheduleLR``: drive any PyTorch optimizer from a refinedlr schedule.

The learning rate of parameter group ``i`` at optimizer step ``t`` (0-based) is
``base_lrs[i] * s_t`` where ``base_lrs[i]`` is the group's ``initial_lr`` (its ``lr`` when the
scheduler was created) and ``s_t`` the schedule's multiplier. It is computed in closed form from the
step counter at every :meth:`~ScheduleLR.step`, never by chained multiplication, so it does not
drift and a restored scheduler continues exactly.

Checkpoints record the horizon, the schedule's fingerprints and its spec. Resuming with another
horizon or shape raises :class:`ScheduleMismatchError` unless ``on_mismatch`` says what to do:

* ``"rescale"``: the part of the *old* schedule after the resume step ``k`` is stretched onto the
  new remaining steps ``[k, T_new)`` by linear interpolation: step ``t >= k`` reads the old schedule
  at ``k + (t - k) (T_old - 1 - k) / (T_new - 1 - k)``. It is continuous at ``k`` (same learning
  rate as the interrupted run) and ends on the old schedule's last value at ``T_new - 1``. The new
  schedule contributes only its horizon (a changed shape is ignored, with a warning).
* ``"use_new"``: the new schedule is used as it is from step ``k`` on, with a warning that gives the
  learning-rate jump at ``k``.

A planned continuation of the checkpoint's schedule (a :class:`~refinedlr.schedules.Continuation`
from :func:`refinedlr.plan.extend` whose base is that schedule, branching at or after the
checkpoint's step) is not a mismatch: it resumes without an error or a warning, whatever
``on_mismatch`` says. Any other change of horizon or shape is still refused.

Example:
    >>> import torch
    >>> from refinedlr import LinearDecay
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> sched = ScheduleLR(opt, LinearDecay(total_steps=4))
    >>> lrs = []
    >>> for _ in range(4):
    ...     lrs.append(round(sched.get_last_lr()[0], 6))
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [0.1, 0.075, 0.05, 0.025]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from ..registry import schedule_from_spec
from ..schedule_io import ScheduleLike, as_schedule
from ..schedules import Continuation, Schedule, ScheduleError

__all__ = ["OnMismatch", "ScheduleLR", "ScheduleMismatchError"]

OnMismatch = Literal["raise", "rescale", "use_new"]
_POLICIES = ("raise", "rescale", "use_new")
_STATE_VERSION = 1
# instance attributes that are configuration of this process, not state of the run
_NOT_STATE = ("optimizer", "schedule", "on_mismatch", "_effective", "_effective_state")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ScheduleMismatchError(ScheduleError):
    """A checkpoint was saved with another schedule (horizon or shape) than the one given now."""


# ----------------------------------------------------------------------------------------------
# the effective schedule: the user's schedule, or a composition left by earlier resumes
#
# Its state is a tree of plain dicts (weights_only-loadable):
#   {"kind": "schedule", "spec": spec}
#   {"kind": "rescaled", "at": k, "old_total": T_old, "new_total": T_new, "source": node}
#   {"kind": "switched", "at": k, "before": node, "after": node}


class _Node:
    total: int

    def at(self, t: IntArray) -> FloatArray:  # pragma: no cover - interface
        raise NotImplementedError

    def at_position(self, x: FloatArray) -> FloatArray:
        """Linear interpolation between the integer steps around the real positions ``x``."""
        x = np.clip(x, 0.0, self.total - 1.0)
        lo = np.floor(x).astype(np.int64)
        hi = np.minimum(lo + 1, self.total - 1)
        w = x - lo
        a = self.at(lo)
        b = self.at(hi)
        return np.asarray(np.where(w == 0.0, a, (1.0 - w) * a + w * b), dtype=np.float64)


class _Plain(_Node):
    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.total = schedule.total_steps

    def at(self, t: IntArray) -> FloatArray:
        return np.asarray(self.schedule(np.minimum(t, self.total - 1)), dtype=np.float64)


class _Rescaled(_Node):
    def __init__(self, source: _Node, at: int, old_total: int, new_total: int) -> None:
        self.source, self.k, self.old_total, self.total = source, at, old_total, new_total

    def at(self, t: IntArray) -> FloatArray:
        k = self.k
        old_rest = max(self.old_total - 1 - k, 0)
        new_rest = self.total - 1 - k
        tt = np.minimum(t, max(self.total - 1, k)).astype(np.float64)
        if new_rest > 0:
            x = k + (tt - k) * old_rest / new_rest
        else:  # the new horizon ends at or before k: hold the value at k
            x = np.full(tt.shape, float(k))
        before = self.source.at(np.minimum(t, k))
        after = self.source.at_position(np.maximum(x, float(k)))
        return np.asarray(np.where(t < k, before, after), dtype=np.float64)


class _Switched(_Node):
    def __init__(self, before: _Node, at: int, after: _Node) -> None:
        self.before, self.k, self.after = before, at, after
        self.total = after.total

    def at(self, t: IntArray) -> FloatArray:
        return np.asarray(np.where(t < self.k, self.before.at(t), self.after.at(t)), np.float64)


def _plain(obj: Any) -> Any:
    """``obj`` with numpy scalars, arrays and tuples turned into Python scalars and lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a scheduler state")


def _spec_to_state(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec as plain Python types (``values`` as a float64 tensor) for ``weights_only`` loads."""
    out: dict[str, Any] = _plain({k: v for k, v in spec.items() if k != "values"})
    if "values" in spec:
        out["values"] = torch.as_tensor(np.asarray(spec["values"], dtype=np.float64))
    return out


def _spec_from_state(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    if isinstance(out.get("values"), torch.Tensor):
        out["values"] = out["values"].detach().cpu().numpy().astype(np.float64).tolist()
    return out


def _build(node: Mapping[str, Any]) -> _Node:
    kind = node.get("kind")
    if kind == "schedule":
        return _Plain(schedule_from_spec(_spec_from_state(node["spec"])))
    if kind == "rescaled":
        return _Rescaled(
            _build(node["source"]), int(node["at"]), int(node["old_total"]), int(node["new_total"])
        )
    if kind == "switched":
        return _Switched(_build(node["before"]), int(node["at"]), _build(node["after"]))
    raise ScheduleError(f"unknown node {kind!r} in a ScheduleLR state")


def _describe(spec: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in spec.items() if k not in ("values", "provenance", "total_steps")}
    if "values" in spec:
        v = spec["values"]
        n = int(v.numel()) if isinstance(v, torch.Tensor) else len(v)
        shown["values"] = f"<{n} values>"
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())


def _default_lr(optimizer: Optimizer) -> float | None:
    """The optimizer's default learning rate (Hugging Face's reference for absolute arguments
    such as ``lr_end``), or ``None`` when it is not a positive number."""
    lr = optimizer.defaults.get("lr")
    if isinstance(lr, torch.Tensor) and lr.numel() == 1 and lr.device.type == "cpu":
        lr = float(lr)
    return (
        float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0 else None
    )


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

    Args:
        optimizer: any :class:`torch.optim.Optimizer`. Every parameter group is scheduled from its
            own ``initial_lr`` (set to its ``lr`` on creation, as torch's schedulers do).
        schedule: anything :func:`~refinedlr.schedule_io.as_schedule` accepts: a
            :class:`~refinedlr.schedules.Schedule`, a name for
            :func:`~refinedlr.schedules.get_schedule` (then ``**schedule_kwargs`` go to it, e.g.
            ``total_steps=1000, warmup=0.05, after_horizon="raise"``), ``"refined"`` with
            ``path=`` and ``total_steps=``, a schedule file, or a spec from
            :meth:`~refinedlr.schedules.Schedule.to_spec`. ``total_steps=`` also puts a
            ``Schedule``, a spec or a file on that horizon.
        last_epoch: torch's convention: the index of the last step taken; ``-1`` starts fresh.
            Prefer :meth:`load_state_dict` to resume.
        on_mismatch: what :meth:`load_state_dict` does when the checkpoint's schedule differs
            from this one: ``"raise"`` (default; :class:`ScheduleMismatchError`), ``"rescale"``
            or ``"use_new"`` (see the module documentation).

    Call :meth:`step` once per optimizer step, after ``optimizer.step()``; the learning rate for
    step ``t`` is set when :attr:`last_epoch` becomes ``t`` (so right after creation the groups hold
    the learning rate of step 0). Learning rates held as tensors (``lr=torch.tensor(0.01)``, for
    compiled optimizers) are updated in place, keeping the tensor object.

    To resume: create the optimizer and this scheduler, then load the optimizer's state, then
    ``scheduler.load_state_dict(...)``; the state loads with ``torch.load(weights_only=True)``.

    It keeps torch's scheduler conventions (``last_epoch``, ``base_lrs``, ``_last_lr``,
    ``get_last_lr()``, ``step()`` without arguments), so it works unchanged as a Hugging Face
    ``Trainer``'s scheduler (``optimizers=(optimizer, scheduler)``, stepped once per optimizer
    step) and in Lightning's ``configure_optimizers`` as
    ``{"scheduler": scheduler, "interval": "step"}``. Give the horizon in optimizer steps (after
    gradient accumulation).

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
        *,
        last_epoch: int = -1,
        on_mismatch: OnMismatch = "raise",
        **schedule_kwargs: Any,
    ) -> None:
        if on_mismatch not in _POLICIES:
            raise ValueError(f"on_mismatch must be one of {_POLICIES}, got {on_mismatch!r}")
        schedule_kwargs.setdefault("base_lr", _default_lr(optimizer))
        self.schedule = as_schedule(schedule, **schedule_kwargs)
        self.on_mismatch = on_mismatch
        self._set_effective({"kind": "schedule", "spec": _spec_to_state(self.schedule.to_spec())})
        super().__init__(optimizer, last_epoch)

    # -- evaluation -----------------------------------------------------------------------------

    def _set_effective(self, state: dict[str, Any]) -> None:
        self._effective_state = state
        self._effective: _Node = (
            _Plain(self.schedule) if state["kind"] == "schedule" else _build(state)
        )

    def multiplier(self, step: int | None = None) -> float:
        """The schedule's multiplier at ``step`` (default: the current step :attr:`last_epoch`).

        After a resume with ``on_mismatch="rescale"`` or ``"use_new"`` this is the composed
        schedule actually followed.

        With ``after_horizon="raise"`` step ``T`` (``total_steps``) is allowed and holds the last
        value: the documented loop's last ``step()``, after the last optimizer step, evaluates it
        although no optimizer step uses it (as torch's ``OneCycleLR`` allows). Steps after ``T``
        raise :class:`~refinedlr.schedules.ScheduleError`.
        """
        t = self.last_epoch if step is None else int(step)
        if t < 0:
            raise ScheduleError(f"steps are counted from 0; got {t}")
        total = self.schedule.total_steps
        if self.schedule.after_horizon == "raise" and t > total:
            raise ScheduleError(
                f"step {t} is past the horizon total_steps={total} (after_horizon='raise'; "
                f"steps 0..{total - 1} are scheduled, and step {total} is the loop's last "
                "scheduler.step())"
            )
        if isinstance(self._effective, _Plain):
            return float(self.schedule(min(t, total - 1)))
        return float(self._effective.at(np.asarray([t], dtype=np.int64))[0])

    def _lrs_at(self, step: int) -> list[float | torch.Tensor]:
        m = self.multiplier(step)
        # tensor base LRs give tensors (no .item(): no device sync); the base class writes them
        # into tensor group LRs with fill_, in place
        return [base * m for base in self.base_lrs]

    def get_lr(self) -> list[float | torch.Tensor]:
        """The learning rates of step :attr:`last_epoch` (closed form; use :meth:`get_last_lr`)."""
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, use `get_last_lr()`.",
                UserWarning,
                stacklevel=2,
            )
        return self._lrs_at(self.last_epoch)

    def _get_closed_form_lr(self) -> list[float | torch.Tensor]:
        return self._lrs_at(self.last_epoch)

    # -- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state: torch's fields plus the schedule's horizon, fingerprints and spec.

        Holds only ``int``/``float``/``str``/``bool``/``None``, lists, dicts and tensors, so it
        loads with ``torch.load(..., weights_only=True)``.
        """
        state = {k: v for k, v in self.__dict__.items() if k not in _NOT_STATE}
        state["schedule"] = {
            "version": _STATE_VERSION,
            "total_steps": self.schedule.total_steps,
            "fingerprint": self.schedule.fingerprint(),
            "shape_fingerprint": self.schedule.shape_fingerprint(),
            "spec": _spec_to_state(self.schedule.to_spec()),
        }
        state["effective_schedule"] = self._effective_state
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the step counter and base learning rates; check the schedule against this one.

        A checkpoint with the same schedule (horizon and shape) continues exactly. Otherwise the
        policy ``on_mismatch`` applies: ``"raise"`` names what changed (``horizon T_old ->
        T_new`` and/or the shapes), ``"rescale"`` stretches the rest of the old schedule onto the new
        horizon, ``"use_new"`` switches to the new schedule with a warning. The groups' learning
        rates are then set for the current step.
        """
        state = dict(state_dict)
        info = state.pop("schedule", None)
        effective = state.pop("effective_schedule", None)
        if not isinstance(info, Mapping) or effective is None:
            raise ScheduleMismatchError(
                "this state was not saved by refinedlr's ScheduleLR (it has no schedule "
                "fingerprint); cannot check that the schedule matches"
            )
        k = int(state.get("last_epoch", 0))
        new = self.schedule
        if _planned_from(new, info, effective, k):
            effective = {"kind": "schedule", "spec": _spec_to_state(new.to_spec())}
        elif info["fingerprint"] != new.fingerprint():
            effective = self._reconcile(info, effective, k)
        self.__dict__.update(state)
        self._set_effective(effective)
        for group, lr in zip(
            self.optimizer.param_groups, self._lrs_at(self.last_epoch), strict=True
        ):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = [
            g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else g["lr"]
            for g in self.optimizer.param_groups
        ]

    def _reconcile(self, info: Mapping[str, Any], effective: dict[str, Any], k: int) -> Any:
        new = self.schedule
        old_total = int(info["total_steps"])
        horizon_changed = old_total != new.total_steps
        shape_changed = info["shape_fingerprint"] != new.shape_fingerprint()
        changes = []
        if horizon_changed:
            changes.append(f"horizon {old_total} -> {new.total_steps} steps")
        if shape_changed:
            changes.append(
                f"shape {info['spec'].get('name')!r} ({_describe(info['spec'])}) -> "
                f"{new.kind!r} ({_describe(new.to_spec())})"
            )
        if not changes:  # same horizon and shape hash but another full fingerprint
            changes.append(f"fingerprint {info['fingerprint']} -> {new.fingerprint()}")
        what = "; ".join(changes)
        if self.on_mismatch == "raise":
            raise ScheduleMismatchError(
                f"the checkpoint (step {k}) was saved with another schedule: {what}. Pass "
                "on_mismatch='rescale' to stretch the rest of the old schedule onto the new horizon, "
                "or on_mismatch='use_new' to switch to the new schedule from this step, or resume "
                "with the original schedule"
            )
        old_node = _build(effective)
        old_m = float(old_node.at(np.asarray([k], dtype=np.int64))[0])
        if self.on_mismatch == "rescale":
            if shape_changed:
                warnings.warn(
                    f"resuming at step {k} with on_mismatch='rescale': the checkpoint's schedule is "
                    f"stretched onto the new horizon; the new schedule's shape is ignored ({what})",
                    UserWarning,
                    stacklevel=3,
                )
            return {
                "kind": "rescaled",
                "at": k,
                "old_total": int(old_node.total),
                "new_total": new.total_steps,
                "source": effective,
            }
        new_m = float(new(k)) if k < new.total_steps or new.after_horizon == "hold" else math.nan
        warnings.warn(
            f"resuming at step {k} with on_mismatch='use_new' ({what}): the learning-rate "
            f"multiplier jumps from {old_m:.6g} to {new_m:.6g}",
            UserWarning,
            stacklevel=3,
        )
        return {
            "kind": "switched",
            "at": k,
            "before": effective,
            "after": {"kind": "schedule", "spec": _spec_to_state(new.to_spec())},
        }
