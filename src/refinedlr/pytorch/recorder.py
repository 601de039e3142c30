"""``GradNormRecorder``: record the global gradient norm of every optimizer step, cheaply and durably.

A :class:`~refinedlr.pytorch.sink.RowSink` fed by sources (the optimizer's step hooks, the AMP
scaler's ``update()``, explicit calls, the framework callbacks), each handing its part of the step's
row to one place, ``_put``; the end of a step writes the row, the kinds still missing as ``NaN``.
"""

from __future__ import annotations

import math
import os
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.optim import Optimizer
from torch.utils.hooks import RemovableHandle

from .norms import GRADIENT_KINDS, ParamsLike, clip_, grads_of, norms_of
from .seams import in_grad_scaler_step, patch, scaler_stage
from .sink import RowSink
from .updates import UPDATE_KINDS, check_update_optimizer, update_norms

When = Literal["pre_clip", "post_clip"]


def check_kinds(kinds: Sequence[str] | str) -> tuple[str, ...]:
    """``kinds`` as a tuple of distinct known kinds (one name is one kind); else ValueError.

    >>> check_kinds("l1"), check_kinds(["l2", "l1"])
    (('l1',), ('l2', 'l1'))
    """
    known = (*GRADIENT_KINDS, *UPDATE_KINDS)
    out = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not out or len(set(out)) != len(out) or any(k not in known for k in out):
        raise ValueError(f"kinds must be distinct entries of {known}, got {kinds!r}")
    return out


def _optimizer_source(rec: GradNormRecorder, gradients: bool) -> tuple[Any, Any]:
    """The step hooks of :meth:`GradNormRecorder.attach`: before the step, the gradients as the
    step sees them (unless recorded explicitly); after it, the update kinds, ending the row."""

    def pre_hook(opt: Optimizer, args: Any, kwargs: Any) -> None:
        if gradients:
            if not (rec._amp_checked or rec._explicit or rec._scalers):
                rec._amp_checked = True  # (once: a scan of the live objects)
                if in_grad_scaler_step(opt):
                    raise RuntimeError(
                        "GradNormRecorder.attach(optimizer) alone cannot see the steps a "
                        "GradScaler skips (optimizer.step() is not called), so every later row "
                        "would be shifted: use attach(optimizer, scaler=scaler), or record "
                        "explicitly (scaler.unscale_(optimizer); recorder.clip_grad_norm_(...) "
                        "or recorder.record(optimizer); scaler.step(optimizer))"
                    )
            rec.record_step(opt)

    def post_hook(opt: Optimizer, args: Any, kwargs: Any) -> None:
        if not rec._closed:
            u = update_norms(opt, rec._update_kinds)
            rec._put(rec._update_kinds, u, explicit=rec._explicit, end=True)

    return pre_hook, post_hook


def _scaler_source(rec: GradNormRecorder, scaler: Any, update: Callable[..., Any]) -> Any:
    """``scaler.update`` that first ends a row of missing values when an attached optimizer
    went through ``scaler.step`` and left no row (a step the scaler skipped)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        opts = (r() for r in rec._optimizers)
        if any(scaler_stage(scaler, o) == "STEPPED" for o in opts if o is not None):
            if not rec._closed and (rec._row or rec._since_update == 0):
                rec.end_step()  # (with the step's gradient part, if any)
            rec._since_update, rec._explicit = 0, False
        return update(*args, **kwargs)

    return wrapper


class GradNormRecorder(RowSink):
    """Record per-step global gradient norms to a CSV record (or to memory with ``path=None``).

    Args:
        path: the record file (``step,<kind>...`` CSV); ``None`` keeps the values in memory only.
        kinds: the columns, in order: ``"l2"``, ``"l1"`` (gradient norms) and ``"update_l2"``,
            ``"update_l1"`` (the update direction of an Adam-type optimizer; need :meth:`attach`).
        when: what :meth:`clip_grad_norm_` records: ``"pre_clip"`` (default) or ``"post_clip"``.
        options: those of :class:`~refinedlr.pytorch.sink.RowSink` (``flush_every=100``, ...).

    >>> import torch, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "norms.csv")
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> rec = GradNormRecorder(path, flush_every=2)
    >>> handle = rec.attach(opt)  # records once per optimizer.step()
    >>> for _ in range(5):
    ...     opt.zero_grad()
    ...     model(torch.ones(4, 3)).sum().backward()
    ...     opt.step()
    >>> rec.close()
    >>> print(open(path).read().splitlines()[:2])
    ['step,l2', '0,8']
    >>> len(rec.to_record())
    5
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        kinds: Sequence[str] | str = ("l2",),
        *,
        when: When = "pre_clip",
        **options: Any,
    ) -> None:
        kinds = check_kinds(kinds)
        if when not in ("pre_clip", "post_clip"):
            raise ValueError(f"when must be 'pre_clip' or 'post_clip', got {when!r}")
        self.when: When = when
        self._grad_kinds = tuple(k for k in kinds if k in GRADIENT_KINDS)
        self._update_kinds = tuple(k for k in kinds if k in UPDATE_KINDS)
        self._ords = tuple(GRADIENT_KINDS[k] for k in self._grad_kinds)
        self._row: dict[str, Any] = {}  # this step's values so far
        self._explicit = False  # an explicit record since the last optimizer.step()
        self._since_update = 0  # rows since the last GradScaler.update()
        self._amp_checked = self._warned_empty = False
        self._optimizers: list[weakref.ReferenceType[Optimizer]] = []  # attached
        self._scalers: list[Any] = []  # watched GradScalers
        self._undo: list[Callable[[], None]] = []  # removes the hooks, restores the scalers
        super().__init__(path, kinds, **options)

    def _put(
        self,
        kinds: tuple[str, ...],
        values: torch.Tensor | Sequence[Any],
        explicit: bool = True,
        end: bool = False,
    ) -> None:
        """The one place a row is assembled: add ``values`` (one per kind of ``kinds``) to this
        step's row, written once complete (or at once with ``end``: the optimizer's post-hook,
        ``NaN`` for kinds not given). A kind given again ends the earlier step first.
        ``explicit``: a call outside the optimizer's hook (which then skips this step)."""
        if kinds == self.kinds and not self._row:  # a whole row at once: the common case
            self._since_update += 1
            self.put(values)
        else:
            if any(k in self._row for k in kinds):
                self.end_step()
            parts = values.reshape(-1).unbind() if isinstance(values, torch.Tensor) else values
            self._row.update(zip(kinds, parts, strict=True))
            if end or len(self._row) == len(self.kinds):
                self.end_step()
        self._explicit = explicit and bool(self._optimizers)

    def end_step(self) -> None:
        """End the current optimizer step: write its row now, ``NaN`` for the kinds not given."""
        row, self._row = self._row, {}
        self._since_update += 1
        self.put([row.get(k, math.nan) for k in self.kinds])

    def _gradient_norms(self, grads: list[torch.Tensor]) -> torch.Tensor:  # (under no_grad)
        if grads:
            return norms_of(grads, self._ords)
        if not self._warned_empty:
            self._warned_empty = True
            msg = (
                f"GradNormRecorder: no parameter has a gradient at step {self.step}; its "
                f"{', '.join(self._grad_kinds)} are recorded as missing (said once)"
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=4)
        return torch.full((len(self._ords),), math.nan, dtype=torch.float64)

    def attach(
        self, optimizer: Optimizer, *, scaler: Any = None, gradients: bool = True
    ) -> RemovableHandle:
        """Record once per ``optimizer.step()`` (a step pre-hook); returns the hook's handle.

        The hook records the gradients (:meth:`record_step`) unless an explicit call recorded
        this step (``gradients=False``: never); update kinds come from a step post-hook.
        ``scaler``: the ``torch.amp.GradScaler`` stepping this optimizer (a step it skipped is
        written as missing values at its ``update()``).
        """
        self._check_open()
        if self._update_kinds:
            check_update_optimizer(optimizer)
        if scaler is not None and all(sc is not scaler for sc in self._scalers):
            self._scalers.append(scaler)
            self._undo.append(patch(scaler, "update", _scaler_source(self, scaler, scaler.update)))
            self._since_update = 0
        pre_hook, post_hook = _optimizer_source(self, gradients)
        handle = optimizer.register_step_pre_hook(pre_hook)
        self._undo.append(handle.remove)
        if self._update_kinds:
            self._undo.append(optimizer.register_step_post_hook(post_hook).remove)
        self._optimizers.append(weakref.ref(optimizer))
        return handle

    def detach(self) -> None:
        """Remove the hooks added by :meth:`attach` (and restore the scalers' ``update``)."""
        undo, self._undo = self._undo, []
        for u in undo:
            u()
        self._optimizers.clear()
        self._scalers.clear()

    @torch.no_grad()
    def record_step(self, parameters: ParamsLike) -> None:
        """What the attached hook does: record the gradients of ``parameters`` unless this step
        was recorded explicitly already (for callbacks that run inside ``optimizer.step()``)."""
        if self._explicit:
            self._explicit = False
        elif self._grad_kinds:
            self._put(self._grad_kinds, self._gradient_norms(grads_of(parameters)), explicit=False)

    @torch.no_grad()
    def record(self, parameters: ParamsLike | None = None) -> torch.Tensor:
        """Record the gradients' norms of ``parameters`` (tensors, a module, an optimizer; ``None``:
        the attached optimizer) as the next step; returns them (one per gradient kind, no sync)."""
        self._check_sources()
        if parameters is None:
            opts = [o for o in (r() for r in self._optimizers) if o is not None]
            if not opts:
                raise TypeError("record() needs parameters (or an attached optimizer)")
            grads = [g for o in opts for g in grads_of(o)]
        else:
            grads = grads_of(parameters)
        vals = self._gradient_norms(grads)
        self._put(self._grad_kinds, vals)
        return vals

    @torch.no_grad()
    def record_norms(
        self, values: torch.Tensor | float | Sequence[float] | Mapping[str, Any]
    ) -> None:
        """Record norms computed elsewhere as the next step: one per kind (non-finite: missing),
        one per gradient kind (the attached hook adds the update kinds), or ``{kind: value}``.

        >>> rec = GradNormRecorder(kinds=("l2",))
        >>> rec.record_norms(2.5); rec.record_norms(float("inf"))
        >>> rec.to_record().values["l2"]
        array([2.5, nan])
        """
        self._check_open()
        vals: torch.Tensor | list[Any]
        if isinstance(values, Mapping):
            kinds, vals = tuple(values), list(values.values())
        else:
            vals = (
                values.detach().reshape(-1)
                if isinstance(values, torch.Tensor)
                else np.atleast_1d(values).tolist()
            )
            kinds = self.kinds if len(vals) == len(self.kinds) else self._grad_kinds
        if not kinds or len(vals) != len(kinds) or not set(kinds) <= set(self.kinds):
            raise ValueError(
                f"{len(vals)} values for kinds {list(kinds)}; this recorder: {self.kinds}"
            )
        if kinds != self.kinds:  # a part of the row: the optimizer's hook must add the rest
            self._check_sources()
        self._put(kinds, vals)

    @torch.no_grad()
    def clip_grad_norm_(
        self,
        parameters: ParamsLike,
        max_norm: float,
        norm_type: float = 2.0,
        error_if_nonfinite: bool = False,
    ) -> torch.Tensor:
        """Record the step's norms (before the clip, or after with ``when="post_clip"``) and clip
        like ``torch.nn.utils.clip_grad_norm_``: multiply the gradients by ``min(1, max_norm /
        (norm + 1e-6))``; returns the total norm. With DTensor gradients every rank must call it.

        >>> import torch
        >>> p = torch.nn.Parameter(torch.zeros(2)); p.grad = torch.tensor([3.0, 4.0])
        >>> rec = GradNormRecorder()
        >>> rec.clip_grad_norm_([p], max_norm=1.0)
        tensor(5.)
        >>> p.grad, rec.to_record().values["l2"]
        (tensor([0.6000, 0.8000]), array([5.]))
        """
        self._check_sources()
        grads = grads_of(parameters)
        if grads:
            vals, total, coef = clip_(grads, self._ords, max_norm, norm_type, error_if_nonfinite)
            vals = vals if self.when == "pre_clip" else vals * coef.to(vals)
        else:  # nothing to clip: missing values (and torch's zero norm)
            vals, total = self._gradient_norms(grads), torch.zeros(())
        self._put(self._grad_kinds, vals)
        return total

    def _check_sources(self) -> None:
        self._check_open()
        if self._update_kinds and not self._optimizers:
            raise RuntimeError(
                f"the kinds {list(self._update_kinds)} come from the optimizer after its step: "
                "attach(optimizer) first (explicit records then get them from its hook)"
            )

    def close(self) -> None:
        """Write the last row (missing values for a step left open), close the file, remove the
        hooks; idempotent."""
        try:
            if not self._closed and self._row:
                self.end_step()
        finally:
            try:
                super().close()
            finally:
                self.detach()
