"""``GradNormRecorder``: record the global gradient norm of every optimizer step, cheaply and durably.

What is recorded, per optimizer step ``t`` (0-based, counted after gradient accumulation), one row:

* ``l2``: ``sqrt(sum over all parameters' gradients of g**2)``, torch's
  ``clip_grad_norm_(norm_type=2)`` total norm; ``l1``: ``sum |g|``. Norms are computed on the
  gradients' device with foreach kernels, accumulated in float32 (float64 for float64 gradients),
  kept in a preallocated device buffer and copied to the host only every ``flush_every`` steps
  (on CUDA: ``non_blocking`` into pinned memory, written once the copy has landed), so recording
  adds no per-step ``.item()`` or device synchronisation.
* ``update_l2`` / ``update_l1``: the norms of an Adam-type optimizer's update direction
  ``m_hat / (sqrt(v_hat) + eps)`` (the step divided by the learning rate), from its state after
  the step (:mod:`refinedlr.pytorch.updates`; ``Adam``, ``AdamW``, ``NAdam``, ``RAdam``). They
  need :meth:`GradNormRecorder.attach`: a step post-hook completes the row.
* A non-finite norm (``inf``/``NaN`` gradients, i.e. a step that AMP's ``GradScaler`` skips) is
  written as ``NaN``: a missing value, never a number; the step still has exactly one row.

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
aligned. A hook called from ``GradScaler.step`` without ``scaler=`` raises rather than shift rows.

Distributed: every process must record at the same steps (collectives may run). Under DDP the
gradients are already averaged, so every rank computes the same norm locally. Gradients that are
``DTensor`` s (FSDP2's ``fully_shard``, tensor parallel) are reduced exactly: local partial sums of
squares (and of ``|g|``) on the local shards, divided by their replication factor, then one
``all_reduce`` over the device mesh. Only rank ``write_rank`` (0) writes the file; the rank is
``torch.distributed``'s (kept after ``destroy_process_group``) or, before the process group exists,
the launcher's ``RANK`` / ``LOCAL_RANK`` (:mod:`refinedlr.pytorch.process`); other ranks never
write or truncate it.

The file is the core format (:class:`refinedlr.records.RecordWriter`): ``step,<kind>...``. It is
appended and flushed (``fsync`` by default) every ``flush_every`` steps, on :meth:`flush`,
:meth:`state_dict`, :meth:`close`, on ``SIGTERM`` (then the signal goes on to the handler
installed before) and, best effort, when the recorder is garbage-collected or at interpreter
exit; a process killed by ``SIGKILL`` loses only the rows of its unflushed steps. :meth:`state_dict` / :meth:`load_state_dict` continue the
same file at the right step on resume (rows at or after the resume step are replaced).

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

import atexit
import functools
import math
import os
import sys
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch.optim import Optimizer
from torch.utils.hooks import RemovableHandle

from ..fileio import Closing
from ..records import GradNormRecord, RecordError, RecordWriter, read_record
from .norms import GRADIENT_KINDS, ParamsLike, grad_norms, grads_of, norms_of, params_of, scale_
from .process import env_rank, flush_on_sigterm, process_rank, stop_flushing_on_sigterm
from .updates import UPDATE_KINDS, check_update_optimizer, update_norms

__all__ = ["GradNormRecorder", "check_kinds", "grad_norms"]

When = Literal["pre_clip", "post_clip"]
_STATE_VERSION = 1


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


# ----------------------------------------------------------------------------------------------
# the recorder


def _close_at_exit(ref: weakref.ReferenceType[GradNormRecorder]) -> None:
    rec = ref()
    if rec is not None:
        try:
            rec.close()
        except Exception:  # best effort at interpreter exit
            pass


def _called_by_grad_scaler(depth: int = 8) -> bool:
    """Whether a ``GradScaler`` method is among the callers (the hook's, a few frames up)."""
    grad_scaler = getattr(getattr(torch, "amp", None), "GradScaler", None)
    if grad_scaler is None:  # pragma: no cover - torch without torch.amp
        return False
    frame: FrameType | None = sys._getframe(2)
    for _ in range(depth):
        if frame is None:
            return False
        if isinstance(frame.f_locals.get("self"), grad_scaler):
            return True
        frame = frame.f_back
    return False


class _Chunk:
    __slots__ = ("event", "first_step", "host", "n")

    def __init__(self, host: torch.Tensor, first_step: int, n: int, event: Any) -> None:
        self.host, self.first_step, self.n, self.event = host, first_step, n, event


class GradNormRecorder(Closing):
    """Record per-step global gradient norms to a CSV record (or to memory with ``path=None``).

    Args:
        path: the record file (``step,<kind>...`` CSV, read back with
            :func:`refinedlr.records.read_record`); ``None`` keeps the values in memory only.
        kinds: the columns of the file, in this order: ``"l2"``, ``"l1"`` (gradient norms) and
            ``"update_l2"``, ``"update_l1"`` (norms of the update direction of an Adam-type
            optimizer after its step, :mod:`refinedlr.pytorch.updates`; these need
            :meth:`attach`).
        flush_every: steps between copies of the device buffer to the host and the file.
        when: what :meth:`clip_grad_norm_` records: ``"pre_clip"`` (default) or ``"post_clip"``.
        start_step: the step of the first row (0; :meth:`load_state_dict` sets it on resume).
        write_rank: in a distributed run, the only rank that writes the file.
        keep_in_memory: keep the rows in memory too (default: when this process writes no file).
        fsync: ``fsync`` the file at every flush (durable against power loss, not only against a
            killed process).
        close_at_exit: flush and close at interpreter exit if not closed before, and flush when
            the process gets ``SIGTERM`` (then the signal goes on to the handler installed
            before, so the process still stops; see :mod:`refinedlr.pytorch.process`).

    An existing file at ``path`` is continued: rows before the first step this recorder writes are
    kept, later ones are replaced (a fresh run from step 0 overwrites the file).

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
        if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
            raise ValueError(f"flush_every must be an int >= 1, got {flush_every!r}")
        if when not in ("pre_clip", "post_clip"):
            raise ValueError(f"when must be 'pre_clip' or 'post_clip', got {when!r}")
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            raise ValueError(f"start_step must be an int >= 0, got {start_step!r}")
        self.path = None if path is None else Path(path)
        self.kinds: tuple[str, ...] = kinds
        self.flush_every = flush_every
        self.when: When = when
        self.write_rank = write_rank
        self.keep_in_memory = keep_in_memory
        self.fsync = fsync
        grad_kinds = tuple(k for k in kinds if k in GRADIENT_KINDS)
        self._update_kinds = tuple(k for k in kinds if k in UPDATE_KINDS)
        internal = (*grad_kinds, *self._update_kinds)  # the device buffer's column order
        self._ords = tuple(GRADIENT_KINDS[k] for k in grad_kinds)
        self._ng = len(grad_kinds)
        self._from_user = [kinds.index(k) for k in internal]  # internal = user[_from_user]
        self._to_user = [internal.index(k) for k in kinds]  # user = internal[_to_user]
        self._open = False  # a row's gradient part is stored; its update part is not yet
        self._step = start_step  # the next step to record
        self._first_step = start_step  # first step this session writes (file continues before it)
        self._chunk_start = start_step  # step of row 0 of the device buffer
        self._n = 0  # rows in the device buffer
        self._buf: torch.Tensor | None = None
        self._rows: list[torch.Tensor] = []
        self._pool: list[torch.Tensor] = []  # free pinned host buffers (CUDA)
        self._pending: deque[_Chunk] = deque()
        self._last_copy: Any = None  # CUDA event of the last device-to-host copy
        self._memory: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
        self._writer: RecordWriter | None = None
        self._explicit = False  # an explicit record since the last optimizer.step()
        self._handles: list[RemovableHandle] = []
        self._optimizers: list[weakref.ReferenceType[Optimizer]] = []
        self._closed = False
        self._rank: int | None = process_rank()  # fixed once a process group answers
        self._env_rank = env_rank()
        self._pid = os.getpid()  # a forked copy (a DataLoader worker) never writes the file
        self._scalers: list[tuple[Any, Any]] = []  # (GradScaler, its update wrapper)
        self._rows_since_update = 0  # rows recorded since the last GradScaler.update()
        self._amp_checked = False
        self._atexit: functools.partial[None] | None = None
        self._on_sigterm = False
        if close_at_exit:
            self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
            atexit.register(self._atexit)
            self._on_sigterm = flush_on_sigterm(self)

    # -- properties -----------------------------------------------------------------------------

    @property
    def step(self) -> int:
        """The optimizer step the next record is for (= steps recorded so far, with resumes)."""
        return self._step

    @property
    def rank(self) -> int | None:
        """This process's rank: ``torch.distributed``'s, fixed the first time a process group
        answers (at creation or at any step, so it outlives ``destroy_process_group``); before
        that the launcher's ``RANK`` / ``LOCAL_RANK``; ``None`` if nothing says (one process)."""
        if self._rank is None:
            self._rank = process_rank()
        return self._rank if self._rank is not None else self._env_rank

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the file: rank ``write_rank``, or a single process (no
        process group and no ``RANK`` / ``LOCAL_RANK``). Other ranks never write or truncate."""
        rank = self.rank
        return (
            self.path is not None
            and (rank is None or rank == self.write_rank)
            and os.getpid() == self._pid
        )

    def _rank_known(self) -> bool:
        return self.rank is not None

    def _keeps_memory(self) -> bool:
        if self.keep_in_memory is not None:
            return self.keep_in_memory
        return not self.is_writer

    def __repr__(self) -> str:
        return (
            f"GradNormRecorder(path={None if self.path is None else str(self.path)!r}, "
            f"kinds={self.kinds}, step={self._step}, flush_every={self.flush_every})"
        )

    # -- recording ------------------------------------------------------------------------------

    def attach(
        self, optimizer: Optimizer, *, scaler: Any = None, gradients: bool = True
    ) -> RemovableHandle:
        """Record once per ``optimizer.step()`` (a step pre-hook); returns the hook's handle.

        The hook records the gradients as ``step()`` sees them, unless an explicit
        :meth:`record` / :meth:`clip_grad_norm_` / :meth:`record_norms` call already recorded
        this step. ``gradients=False``: the hook never records gradients (you record them
        explicitly every step, e.g. from a framework callback that runs inside ``step()``); the
        optimizer then only provides the update kinds.

        With the kinds ``update_l2`` / ``update_l1`` a step post-hook completes the row from the
        optimizer's state after the step (:func:`~refinedlr.pytorch.updates.update_norms`); the
        optimizer must be Adam-type (:data:`~refinedlr.pytorch.updates.SUPPORTED_OPTIMIZERS`).

        ``scaler``: the ``torch.amp.GradScaler`` that steps this optimizer, if any. A step it
        skips (``inf``/``NaN`` gradients) never calls ``optimizer.step()``, so the hook alone
        would not see it and every later row would move one step early. With ``scaler=`` each
        ``scaler.update()`` that follows an iteration without a row records a missing value
        (``NaN``) for it, so rows stay aligned with the optimizer steps. Without it, a hook that
        finds itself called from ``GradScaler.step`` raises (pass the scaler, or record
        explicitly: ``scaler.unscale_(opt)``, :meth:`clip_grad_norm_`, ``scaler.step(opt)``).
        """
        self._check_open()

        def hook(opt: Optimizer, args: Any, kwargs: Any) -> None:
            if not gradients:
                return
            if self._explicit:
                self._explicit = False
                return
            if not self._amp_checked:
                self._amp_checked = True
                if not self._scalers and _called_by_grad_scaler():
                    raise RuntimeError(
                        "GradNormRecorder.attach(optimizer) alone cannot see the steps a "
                        "GradScaler skips (optimizer.step() is not called), so every later row "
                        "would be shifted: use attach(optimizer, scaler=scaler), or record "
                        "explicitly (scaler.unscale_(optimizer); recorder.clip_grad_norm_(...) "
                        "or recorder.record(optimizer); scaler.step(optimizer))"
                    )
            with torch.no_grad():
                self._begin(self._norms_of(grads_of(opt)) if self._ng else None)

        def post_hook(opt: Optimizer, args: Any, kwargs: Any) -> None:
            if self._closed:
                return
            if self._open:
                self._finish(update_norms(opt, self._update_kinds))
            elif not gradients and not self._ng:  # update kinds only: the row is this
                self._begin(None)
                self._finish(update_norms(opt, self._update_kinds))

        if self._update_kinds:
            check_update_optimizer(optimizer)
        if scaler is not None:
            self._watch_scaler(scaler)
        handle = optimizer.register_step_pre_hook(hook)
        self._handles.append(handle)
        if self._update_kinds:
            self._handles.append(optimizer.register_step_post_hook(post_hook))
        self._optimizers.append(weakref.ref(optimizer))
        return handle

    def _watch_scaler(self, scaler: Any) -> None:
        if any(sc is scaler for sc, _ in self._scalers):
            return
        if not callable(getattr(scaler, "update", None)):
            raise TypeError(f"scaler must be a torch.amp.GradScaler, got {type(scaler).__name__}")
        original = scaler.update

        def update(*args: Any, **kwargs: Any) -> Any:
            if self._open and not self._closed:  # the step was skipped: no update
                self._finish(None)
            elif not self._closed and self._rows_since_update == 0:
                self.record_norms([math.nan] * len(self.kinds))  # the step the scaler skipped
                self._explicit = False
            self._rows_since_update = 0
            return original(*args, **kwargs)

        scaler.update = update
        self._scalers.append((scaler, update))
        self._rows_since_update = 0

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

    @torch.no_grad()
    def record(self, parameters: ParamsLike | None = None) -> torch.Tensor:
        """Record the current gradients' norms as the next step; returns them (device tensor).

        ``parameters``: tensors, a module, an optimizer, or ``None`` for the attached optimizer.
        The returned tensor holds one value per gradient kind (``l2``, ``l1``, in ``kinds``
        order; no synchronisation). The update kinds of this row are added after the step by the
        attached optimizer's hook.
        """
        self._check_open()
        self._check_update_source()
        if parameters is None:
            opts = [o for o in (r() for r in self._optimizers) if o is not None]
            if not opts:
                raise TypeError("record() needs parameters (or an attached optimizer)")
            grads = [g for o in opts for g in grads_of(o)]
        else:
            grads = grads_of(parameters)
        vals = self._norms_of(grads)
        self._begin(vals)
        self._explicit = bool(self._handles)  # the attached hook skips this step
        return vals

    @torch.no_grad()
    def record_norms(self, values: torch.Tensor | float | Sequence[float]) -> None:
        """Record norms computed elsewhere (one per kind; non-finite means missing) as the next step.

        With update kinds, ``values`` may also hold only the gradient kinds (in ``kinds``
        order); the attached optimizer's hook then adds the update part after the step.

        >>> rec = GradNormRecorder(kinds=("l2",))
        >>> rec.record_norms(2.5); rec.record_norms(float("inf"))
        >>> rec.to_record().values["l2"]
        array([2.5, nan])
        """
        self._check_open()
        if isinstance(values, torch.Tensor):
            vals: torch.Tensor | list[float] = values.detach().reshape(-1)
            count = values.numel()
        else:
            vals = (
                [float(values)] if isinstance(values, (int, float)) else [float(v) for v in values]
            )
            count = len(vals)
        if self._update_kinds and self._ng and count == self._ng != len(self.kinds):
            self._check_update_source()
            self._begin(vals)
            self._explicit = bool(self._handles)
            return
        if count != len(self.kinds):
            raise ValueError(f"{count} values for kinds {self.kinds}")
        if self._open:  # an earlier row whose optimizer step never came
            self._finish(None)
        self._store(self._internal_order(vals))
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
        self._check_open()
        self._check_update_source()
        params = params_of(parameters)
        grads = [p.grad for p in params if p.grad is not None]
        nt = float(norm_type)
        n = len(self._ords)
        if nt in self._ords:
            vals = self._norms_of(grads)
            total = vals[self._ords.index(nt)]
        elif nt in (1.0, 2.0):
            both = self._norms_of(grads, (*self._ords, nt))
            vals, total = both[:n], both[n]
        else:
            vals = self._norms_of(grads)
            t = torch.nn.utils.get_total_norm(grads, nt) if grads else torch.zeros(())
            full = getattr(t, "full_tensor", None)
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
        self._begin(vals if self.when == "pre_clip" else vals * coef.to(vals.dtype))
        self._explicit = bool(self._handles)  # the attached hook skips this step
        return total

    def _norms_of(
        self, grads: list[torch.Tensor], ords: Sequence[float] | None = None
    ) -> torch.Tensor:
        # callers run under torch.no_grad()
        device = self._buf.device if self._buf is not None else None
        return norms_of(grads, self._ords if ords is None else ords, device)

    # -- buffering and writing ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this GradNormRecorder is closed")

    def _allocate(self, device: torch.device) -> None:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self._buf = torch.full(
            (self.flush_every, len(self.kinds)), math.nan, dtype=dtype, device=device
        )
        self._rows = list(self._buf.unbind(0))

    def _check_update_source(self) -> None:
        if self._update_kinds and not self._handles:
            raise RuntimeError(
                f"the kinds {list(self._update_kinds)} come from the optimizer after its step: "
                "attach(optimizer) first (explicit records then get them from its hook)"
            )

    def _internal_order(self, vals: torch.Tensor | list[float]) -> torch.Tensor | list[float]:
        if self._from_user == list(range(len(self.kinds))):
            return vals
        if isinstance(vals, list):
            return [vals[i] for i in self._from_user]
        flat = vals.reshape(-1)
        return torch.stack([flat[i] for i in self._from_user])  # views: no index upload

    def _write(self, start: int, vals: torch.Tensor | list[float]) -> None:
        """Write ``vals`` into columns ``start...`` of the current row (no host sync)."""
        count = vals.numel() if isinstance(vals, torch.Tensor) else len(vals)
        if count == 0:
            return
        if self._buf is None:
            self._allocate(vals.device if isinstance(vals, torch.Tensor) else torch.device("cpu"))
        assert self._buf is not None
        if self._n == 0 and self._last_copy is not None:
            # do not overwrite the buffer before the last copy out of it has read it
            torch.cuda.current_stream(self._buf.device).wait_event(self._last_copy)
        row = self._rows[self._n][start : start + count]
        if isinstance(vals, torch.Tensor):
            if vals.device != row.device:
                vals = vals.to(row.device, non_blocking=True)
            row.copy_(vals.reshape(-1))
        else:  # python floats: fill kernels, no host-to-device copy
            for j, v in enumerate(vals):
                row[j].fill_(v)

    def _store(self, vals: torch.Tensor | list[float]) -> None:
        """Record a whole row (internal column order)."""
        self._write(0, vals)
        self._advance()

    def _begin(self, grad_vals: torch.Tensor | list[float] | None) -> None:
        """A step's gradient part; the row is complete now, or once :meth:`_finish` adds the
        update part (a row left open by a step that never came gets NaN update values)."""
        if self._open:
            self._finish(None)
        if not self._update_kinds:
            assert grad_vals is not None
            self._store(grad_vals)
            return
        if grad_vals is not None:
            self._write(0, grad_vals)
        self._open = True

    def _finish(self, update_vals: torch.Tensor | None) -> None:
        self._open = False
        nu = len(self._update_kinds)
        self._write(self._ng, [math.nan] * nu if update_vals is None else update_vals)
        self._advance()

    def _advance(self) -> None:
        self._n += 1
        self._step += 1
        self._rows_since_update += 1
        if self._rank is None:  # fix the rank while a process group exists
            self._rank = process_rank()
        if self._n == self.flush_every:
            self._flush_buffer()
            self._drain(block=False)
        elif self._pending:
            self._drain(block=False)

    def _flush_buffer(self) -> None:
        """Start copying the device buffer's rows to the host (no host sync on CUDA)."""
        if self._buf is None or self._n == 0:
            return
        n, buf = self._n, self._buf
        if buf.is_cuda:
            host = (
                self._pool.pop()
                if self._pool
                else torch.empty(buf.shape, dtype=buf.dtype, pin_memory=True)
            )
            host[:n].copy_(buf[:n], non_blocking=True)
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]  # unannotated in torch
            event.record(torch.cuda.current_stream(buf.device))
            self._last_copy = event
            chunk = _Chunk(host, self._chunk_start, n, event)
        elif buf.device.type == "cpu":
            chunk = _Chunk(buf[:n].clone(), self._chunk_start, n, None)
        else:
            chunk = _Chunk(buf[:n].to("cpu"), self._chunk_start, n, None)
        self._pending.append(chunk)
        self._chunk_start += n
        self._n = 0
        if self._open:  # the open row moves to the front (after the copy, in stream order)
            self._rows[0].copy_(self._rows[n])

    def _drain(self, block: bool) -> None:
        """Write the chunks whose copies have landed (all of them, waiting, with ``block``)."""
        while self._pending:
            chunk = self._pending[0]
            if chunk.event is not None:
                if block:
                    chunk.event.synchronize()
                elif not chunk.event.query():
                    return
            self._pending.popleft()
            rows = chunk.host[: chunk.n].numpy().astype(np.float64, copy=True)
            if chunk.event is not None:
                self._pool.append(chunk.host)
            self._emit(chunk.first_step, rows)

    def _emit(self, first_step: int, rows: npt.NDArray[np.float64]) -> None:
        rows = rows[:, self._to_user]
        rows[~np.isfinite(rows)] = np.nan
        steps = np.arange(first_step, first_step + rows.shape[0], dtype=np.int64)
        if self._keeps_memory():
            self._memory.append((steps, rows))
        if self.is_writer:
            writer = self._open_writer()
            writer.write(steps, rows)
            if self.fsync:
                writer.flush(fsync=True)

    def _open_writer(self) -> RecordWriter:
        if self._writer is None:
            assert self.path is not None
            self._writer = RecordWriter(self.path, self.kinds, start_step=self._first_step)
        return self._writer

    def flush(self) -> None:
        """Copy every recorded step to the host and write it now (waits for the device)."""
        self._flush_buffer()
        self._drain(block=True)
        if self._writer is not None:
            self._writer.flush(fsync=self.fsync)

    def close(self) -> None:
        """Flush, close the file and remove the hooks; idempotent."""
        if self._closed:
            return
        try:
            if self._open:  # the last row's optimizer step never came
                self._finish(None)
            self.flush()
        finally:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            self.detach()
            if self._atexit is not None:
                atexit.unregister(self._atexit)
                self._atexit = None
            if self._on_sigterm:
                stop_flushing_on_sigterm(self)
                self._on_sigterm = False

    def __del__(self) -> None:
        # a recorder dropped without close() (e.g. a local of a finished function) still writes
        # its last rows; best effort, like the atexit handler
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass

    # -- reading and checkpoints ----------------------------------------------------------------

    def to_record(self, source: Literal["auto", "file", "memory"] = "auto") -> GradNormRecord:
        """What was recorded so far as a :class:`~refinedlr.records.GradNormRecord` (flushes first).

        ``source="auto"``: from the file where this process writes one (it includes the rows kept
        from before a resume), otherwise from memory. ``"memory"``: the values kept in memory
        (full precision; the steps recorded by this process since it started or resumed; needs
        ``keep_in_memory``). ``"file"``: read the file. Missing values are ``NaN``.
        """
        if source not in ("auto", "file", "memory"):
            raise ValueError(f"source must be 'auto', 'file' or 'memory', got {source!r}")
        if not self._closed:
            self.flush()
            if self.is_writer and source != "memory":
                self._open_writer()  # the file exists (and was continued at the right step)
        if source == "memory" or (source == "auto" and not self.is_writer):
            if not self._keeps_memory():
                raise RecordError(
                    "this recorder keeps no values in memory (pass keep_in_memory=True)",
                    path=self.path,
                )
            return self._memory_record()
        if self.path is None:
            raise RecordError("this recorder has no file (path=None)")
        return read_record(self.path)

    def _memory_record(self) -> GradNormRecord:
        if self._memory:
            steps = np.concatenate([s for s, _ in self._memory])
            rows = np.concatenate([r for _, r in self._memory])
        else:
            steps = np.zeros(0, dtype=np.int64)
            rows = np.zeros((0, len(self.kinds)))
        return GradNormRecord.from_arrays(
            {k: rows[:, j] for j, k in enumerate(self.kinds)}, steps=steps, source="<memory>"
        )

    def state_dict(self) -> dict[str, Any]:
        """The step to continue from and the kinds; flushes, so every earlier step is on disk.

        >>> GradNormRecorder(kinds="l1").state_dict()
        {'version': 1, 'step': 0, 'kinds': ['l1']}
        """
        if not self._closed:
            self.flush()
        return {"version": _STATE_VERSION, "step": self._step, "kinds": list(self.kinds)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue at the checkpoint's step: the file keeps its rows before that step only.

        Call it before recording anything in this process.
        """
        self._check_open()
        kinds = tuple(state["kinds"])
        if kinds != self.kinds:
            raise RecordError(
                f"the checkpoint recorded kinds {list(kinds)}, this recorder {list(self.kinds)}",
                path=self.path,
            )
        if self._step != self._first_step or self._n or self._pending:
            raise RuntimeError(
                "load_state_dict must be called before this recorder records anything "
                f"(it has recorded steps {self._first_step}..{self._step - 1})"
            )
        step = int(state["step"])
        if step < 0:
            raise ValueError(f"bad step {step} in a recorder state")
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._step = self._first_step = self._chunk_start = step
        self._memory.clear()
        if self.is_writer and self._rank_known():
            self._open_writer()  # drops rows at or after `step` now
        # with the rank not known yet (no process group, no RANK), the file is continued when
        # this process first writes, once it knows whether it is the writer
