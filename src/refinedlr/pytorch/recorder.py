"""``GradNormRecorder``: record the global gradient norm of every optimizer step, cheaply and durably.

What is recorded, per optimizer step ``t`` (0-based, counted after gradient accumulation), one row:

* ``l2``: ``sqrt(sum over all parameters' gradients of g**2)``, torch's
  ``clip_grad_norm_(norm_type=2)`` total norm; ``l1``: ``sum |g|`` (:mod:`.norms`: on the
  gradients' device, accumulated in float32, float64 for float64 gradients, DTensor-aware).
* ``update_l2`` / ``update_l1``: the norms of an Adam-type optimizer's update direction
  ``m_hat / (sqrt(v_hat) + eps)`` (the step divided by the learning rate), from its state after
  the step (:mod:`.updates`; ``Adam``, ``AdamW``, ``NAdam``, ``RAdam``). They need
  :meth:`GradNormRecorder.attach`: a step post-hook completes the row.
* A missing value is ``NaN``, never a number: a non-finite norm (``inf``/``NaN`` gradients, a step
  that AMP's ``GradScaler`` skips), and a step where no parameter has a gradient (with a warning
  that names the step, once). The step still has exactly one row.

The recorder is a :class:`~refinedlr.pytorch.sink.RowSink` (buffering, file, flushing, SIGTERM,
ranks, resume) plus the sources below. Each source hands the sink its part of the step's row; the
row is assembled in one place (``_put``) and written once every kind has a value, or when the step
ends (an optimizer step, a scaler's ``update()``), its missing kinds ``NaN``.

Three ways to record, and what each sees:

``recorder.attach(optimizer)``
    a step pre-hook records the gradients as ``optimizer.step()`` sees them, once per step (so
    gradient accumulation gives one row per optimizer step). If you clip with
    ``torch.nn.utils.clip_grad_norm_`` before ``step()``, that is the *post-clip* norm.
``recorder.clip_grad_norm_(parameters, max_norm)``
    computes the total norm once, records it and clips the gradients with that same norm (as
    ``torch.nn.utils.clip_grad_norm_`` does; it returns the norm too). With ``when="pre_clip"``
    (default) the recorded value is the norm before clipping; with ``when="post_clip"`` it is the
    norm after clipping, ``norm * min(1, max_norm / (norm + 1e-6))`` (for ``l1`` too: every
    gradient is scaled by that factor). An attached hook does not record that step again.
``recorder.record(parameters_or_optimizer)``
    records the gradients as they are now (one call = one step); an attached hook does not
    record that step again. :meth:`GradNormRecorder.record_norms` records values you computed.

Use one style per run (explicit calls every step, or only the hook): the hook skips a step
exactly when an explicit call was made since the previous ``optimizer.step()``.

AMP: call ``scaler.unscale_(optimizer)`` first, then ``recorder.clip_grad_norm_`` or
``recorder.record``; then ``scaler.step(optimizer)``. With the hook alone, pass the scaler:
``recorder.attach(optimizer, scaler=scaler)``. A step the scaler skips never calls
``optimizer.step()``; the recorder then records it as missing at ``scaler.update()``, so rows stay
aligned. A hook called inside ``GradScaler.step`` without ``scaler=`` raises rather than shift
rows (found through the scaler's per-optimizer state: the seam ``_in_grad_scaler_step``).

Distributed: every process must record at the same steps (collectives may run). Under DDP every
rank computes the same norm locally; ``DTensor`` gradients (FSDP2, tensor parallel) are reduced
exactly over their mesh (:mod:`.norms`). Only rank ``write_rank`` (0) writes the file
(:mod:`.process`); other ranks never write or truncate it.

The file is the core format (:class:`refinedlr.records.RecordWriter`): ``step,<kind>...``, flushed
every ``flush_every`` steps and at checkpoints, exit and ``SIGTERM`` (a process killed by
``SIGKILL`` loses only its unflushed steps). :meth:`~RowSink.state_dict` /
:meth:`~RowSink.load_state_dict` continue the same file at the right step on resume.

Example (explicit recording with clipping, kept in memory):
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(4, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> rec = GradNormRecorder(kinds=("l2", "l1"))
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     model(torch.randn(8, 4)).square().mean().backward()
    ...     norm = rec.clip_grad_norm_(model.parameters(), max_norm=1.0)
    ...     opt.step()
    >>> r = rec.to_record()
    >>> r.steps.tolist(), r.kinds
    ([0, 1, 2], ('l2', 'l1'))
    >>> bool(abs(r.values["l2"][-1] - norm.item()) < 1e-6)
    True
"""

from __future__ import annotations

import gc
import math
import os
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch.optim import Optimizer
from torch.utils.hooks import RemovableHandle

from .norms import GRADIENT_KINDS, ParamsLike, grad_norms, grads_of, norms_of, scale_
from .sink import RowSink
from .updates import UPDATE_KINDS, check_update_optimizer, update_norms

__all__ = ["GradNormRecorder", "check_kinds", "grad_norms", "scaler_stage"]

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


def scaler_stage(scaler: Any, optimizer: Any) -> str:
    """Where ``optimizer`` is in the step of a ``torch.amp.GradScaler``: ``"READY"`` (not
    unscaled yet), ``"UNSCALED"`` or ``"STEPPED"`` (since the scaler's last ``update()``).

    The one seam into the scaler's internals (torch >= 2.4, pinned by
    tests/integrations/test_seams.py): ``GradScaler._per_optimizer_states[id(optimizer)]["stage"]``.
    """
    state = scaler._per_optimizer_states.get(id(getattr(optimizer, "optimizer", optimizer)))
    return "READY" if state is None else str(state["stage"].name)


def _in_grad_scaler_step(optimizer: Optimizer) -> bool:
    """Whether a ``torch.amp.GradScaler`` has unscaled ``optimizer`` for the step now running
    (the scalers are found through the garbage collector, once per recorder)."""
    from torch.amp.grad_scaler import GradScaler

    return any(
        issubclass(type(o), GradScaler) and scaler_stage(o, optimizer) == "UNSCALED"
        for o in gc.get_objects()
    )


class GradNormRecorder(RowSink):
    """Record per-step global gradient norms to a CSV record (or to memory with ``path=None``).

    Args:
        path: the record file (``step,<kind>...`` CSV, read back with
            :func:`refinedlr.records.read_record`); ``None`` keeps the values in memory only.
        kinds: the columns, in order: ``"l2"``, ``"l1"`` (gradient norms) and ``"update_l2"``,
            ``"update_l1"`` (the update direction of an Adam-type optimizer; need :meth:`attach`).
        when: what :meth:`clip_grad_norm_` records: ``"pre_clip"`` (default) or ``"post_clip"``.
        flush_every, start_step, write_rank, keep_in_memory, fsync, close_at_exit: the file and
            its lifetime (:class:`~refinedlr.pytorch.sink.RowSink`).

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
        flush_every: int = 100,
        when: When = "pre_clip",
        start_step: int = 0,
        write_rank: int = 0,
        keep_in_memory: bool | None = None,
        fsync: bool = True,
        close_at_exit: bool = True,
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
        self._handles: list[RemovableHandle] = []
        self._optimizers: list[weakref.ReferenceType[Optimizer]] = []
        self._scalers: list[tuple[Any, Any]] = []  # (GradScaler, its update wrapper)
        super().__init__(
            path, kinds, flush_every=flush_every, start_step=start_step, write_rank=write_rank,
            keep_in_memory=keep_in_memory, fsync=fsync, close_at_exit=close_at_exit,
        )  # fmt: skip

    # -- the one place a row is assembled -------------------------------------------------------

    def _put(self, kinds: tuple[str, ...], values: torch.Tensor | Sequence[Any]) -> None:
        """Add ``values`` (one per kind of ``kinds``) to this step's row; write the row once it
        has every kind. A kind given again means the earlier step has ended: its row goes first."""
        if kinds == self.kinds and not self._row:  # a whole row at once: the common case
            self._since_update += 1
            self.put(values)
            return
        if any(k in self._row for k in kinds):
            self.end_step()
        parts = values.reshape(-1).unbind() if isinstance(values, torch.Tensor) else values
        self._row.update(zip(kinds, parts, strict=True))
        if len(self._row) == len(self.kinds):
            self.end_step()

    def end_step(self) -> None:
        """End the current optimizer step: write its row now, ``NaN`` for the kinds not given."""
        row, self._row = self._row, {}
        self._since_update += 1
        self.put([row.get(k, math.nan) for k in self.kinds])

    @torch.no_grad()
    def _gradient_norms(self, grads: list[torch.Tensor]) -> torch.Tensor:
        if grads:
            return norms_of(grads, self._ords)
        if not self._warned_empty:
            self._warned_empty = True
            warnings.warn(
                f"GradNormRecorder: no parameter has a gradient at step {self.step}; its "
                f"{', '.join(self._grad_kinds)} are recorded as missing (said once)",
                RuntimeWarning,
                stacklevel=4,
            )
        return torch.full((len(self._ords),), math.nan, dtype=torch.float64)

    # -- sources: the optimizer's hooks and the AMP scaler ------------------------------------

    def attach(
        self, optimizer: Optimizer, *, scaler: Any = None, gradients: bool = True
    ) -> RemovableHandle:
        """Record once per ``optimizer.step()`` (a step pre-hook); returns the hook's handle.

        The hook records the gradients as ``step()`` sees them (:meth:`record_step`), unless an
        explicit :meth:`record` / :meth:`clip_grad_norm_` / :meth:`record_norms` call already
        recorded this step. ``gradients=False``: the hook never records gradients (you record
        them every step, e.g. from a framework callback inside ``step()``). With update kinds a
        step post-hook ends the row from the optimizer's state after the step (it must be one of
        :data:`~refinedlr.pytorch.updates.SUPPORTED_OPTIMIZERS`).

        ``scaler``: the ``torch.amp.GradScaler`` that steps this optimizer, if any: a step it
        skips never calls ``optimizer.step()``, so each ``scaler.update()`` after an iteration
        without a row ends a row of missing values, keeping rows aligned with the steps.
        """
        self._check_open()
        if self._update_kinds:
            check_update_optimizer(optimizer)
        if scaler is not None:
            self._watch(scaler)

        def pre_hook(opt: Optimizer, args: Any, kwargs: Any) -> None:
            if not gradients:
                return
            if not self._amp_checked and not self._explicit:
                self._amp_checked = True
                if not self._scalers and _in_grad_scaler_step(opt):
                    raise RuntimeError(
                        "GradNormRecorder.attach(optimizer) alone cannot see the steps a "
                        "GradScaler skips (optimizer.step() is not called), so every later row "
                        "would be shifted: use attach(optimizer, scaler=scaler), or record "
                        "explicitly (scaler.unscale_(optimizer); recorder.clip_grad_norm_(...) "
                        "or recorder.record(optimizer); scaler.step(optimizer))"
                    )
            self.record_step(opt)

        def post_hook(opt: Optimizer, args: Any, kwargs: Any) -> None:
            if not self._closed:
                u = update_norms(opt, self._update_kinds).unbind()
                self._row.update(zip(self._update_kinds, u, strict=True))
                self.end_step()

        handle = optimizer.register_step_pre_hook(pre_hook)
        self._handles.append(handle)
        if self._update_kinds:
            self._handles.append(optimizer.register_step_post_hook(post_hook))
        self._optimizers.append(weakref.ref(optimizer))
        return handle

    def _watch(self, scaler: Any) -> None:
        """Seam (torch >= 2.4): the instance attribute ``scaler.update`` is wrapped until
        :meth:`detach`; after a ``scaler.step`` of an attached optimizer that left no row (a
        skipped step), the wrapper ends a row of missing values."""
        if any(sc is scaler for sc, _ in self._scalers):
            return
        if not callable(getattr(scaler, "update", None)):
            raise TypeError(f"scaler must be a torch.amp.GradScaler, got {type(scaler).__name__}")
        original = scaler.update

        def update(*args: Any, **kwargs: Any) -> Any:
            opts = (r() for r in self._optimizers)
            if any(scaler_stage(scaler, o) == "STEPPED" for o in opts if o is not None):
                if not self._closed and (self._row or self._since_update == 0):
                    self.end_step()  # the step the scaler skipped (its gradient part, if any)
                self._since_update, self._explicit = 0, False
            return original(*args, **kwargs)

        scaler.update = update
        self._scalers.append((scaler, update))
        self._since_update = 0

    def detach(self) -> None:
        """Remove the hooks added by :meth:`attach` (and restore the scalers' ``update``)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._optimizers.clear()
        for scaler, wrapper in self._scalers:
            if scaler.__dict__.get("update") is wrapper:
                del scaler.update  # the class's method shows through again
        self._scalers.clear()

    # -- sources: explicit calls --------------------------------------------------------------

    @torch.no_grad()
    def record_step(self, parameters: ParamsLike) -> None:
        """What the attached hook does: record the gradients of ``parameters`` unless this step
        was recorded explicitly already (for callbacks that run inside ``optimizer.step()``)."""
        if self._explicit:
            self._explicit = False
        elif self._grad_kinds:
            self._put(self._grad_kinds, self._gradient_norms(grads_of(parameters)))

    @torch.no_grad()
    def record(self, parameters: ParamsLike | None = None) -> torch.Tensor:
        """Record the current gradients' norms as the next step; returns them (device tensor).

        ``parameters``: tensors, a module, an optimizer, or ``None`` for the attached optimizer.
        The returned tensor holds one value per gradient kind (in ``kinds`` order; no sync).
        """
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
        self._explicit = bool(self._handles)  # the attached hook skips this step
        return vals

    @torch.no_grad()
    def record_norms(
        self, values: torch.Tensor | float | Sequence[float] | Mapping[str, Any]
    ) -> None:
        """Record norms computed elsewhere (one per kind; non-finite means missing) as the next
        step; or only the gradient kinds (the attached optimizer's hook adds the update part);
        or a mapping ``{kind: value}`` of some kinds.

        >>> rec = GradNormRecorder(kinds=("l2",))
        >>> rec.record_norms(2.5); rec.record_norms(float("inf"))
        >>> rec.to_record().values["l2"]
        array([2.5, nan])
        """
        self._check_open()
        vals: torch.Tensor | list[Any]
        if isinstance(values, Mapping):
            kinds, vals = tuple(values), list(values.values())
            if not set(kinds) <= set(self.kinds):
                raise ValueError(f"values for kinds {list(kinds)}; this recorder: {self.kinds}")
        elif isinstance(values, torch.Tensor):
            vals = values.detach().reshape(-1)
        else:
            vals = [float(v) for v in ([values] if isinstance(values, (int, float)) else values)]
        if not isinstance(values, Mapping):
            n = len(vals)
            kinds = self.kinds if n == len(self.kinds) else self._grad_kinds
            if not kinds or n != len(kinds):
                raise ValueError(f"{n} values for kinds {self.kinds}")
        if kinds != self.kinds:  # a part of the row: the optimizer's hook must add the rest
            self._check_sources()
        self._put(kinds, vals)
        self._explicit = bool(self._handles)  # the attached hook skips this step

    @torch.no_grad()
    def clip_grad_norm_(
        self,
        parameters: ParamsLike,
        max_norm: float,
        norm_type: float = 2.0,
        error_if_nonfinite: bool = False,
    ) -> torch.Tensor:
        """Record the step's norms and clip, like ``torch.nn.utils.clip_grad_norm_``.

        The total norm of order ``norm_type`` is computed once and used both for the record and
        for clipping (gradients are multiplied by ``min(1, max_norm / (norm + 1e-6))``); it is
        returned (a device tensor, float32 for half-precision gradients). With ``when="pre_clip"``
        the recorded values are the norms before clipping, with ``"post_clip"`` after. Works with
        DTensor gradients (FSDP2): every rank must call it.

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
        nt, n = float(norm_type), len(self._ords)
        if not grads:
            vals, total = self._gradient_norms(grads), torch.zeros(())
        elif nt in self._ords:
            vals = norms_of(grads, self._ords)
            total = vals[self._ords.index(nt)]
        elif nt in (1.0, 2.0):
            both = norms_of(grads, (*self._ords, nt))
            vals, total = both[:n], both[n]
        else:
            vals = norms_of(grads, self._ords)
            t = torch.nn.utils.get_total_norm(grads, nt)
            full = getattr(t, "full_tensor", None)  # a DTensor: the norm over the mesh
            total = full() if full is not None else t
        if error_if_nonfinite and bool(torch.logical_or(total.isnan(), total.isinf())):
            raise RuntimeError(
                f"The total norm of order {nt} for gradients from `parameters` is non-finite, so "
                "it cannot be clipped. To disable this error and scale the gradients by the "
                "non-finite norm anyway, set `error_if_nonfinite=False`"
            )
        coef = torch.clamp(float(max_norm) / (total + 1e-6), max=1.0)
        if grads:
            scale_(grads, coef)
        self._put(self._grad_kinds, vals if self.when == "pre_clip" else vals * coef.to(vals))
        self._explicit = bool(self._handles)  # the attached hook skips this step
        return total

    def _check_sources(self) -> None:
        self._check_open()
        if self._update_kinds and not self._handles:
            raise RuntimeError(
                f"the kinds {list(self._update_kinds)} come from the optimizer after its step: "
                "attach(optimizer) first (explicit records then get them from its hook)"
            )

    def close(self) -> None:
        """Write the last row (a step left open gets missing values), flush, close the file and
        remove the hooks; idempotent."""
        try:
            if not self._closed and self._row:
                self.end_step()
        finally:
            try:
                super().close()
            finally:
                self.detach()
