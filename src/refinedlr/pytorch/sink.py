"""``RowSink``: complete rows of norms -> a device buffer -> the host -> a record file, durably.

A preallocated device buffer (float64; float32 on ``mps``; no per-step sync), copied to the host
every ``flush_every`` rows (CUDA: ``non_blocking`` into pinned memory) and written by a
:class:`~refinedlr.records.RecordWriter`, flushed at every copy, checkpoint, close, ``SIGTERM`` and
exit. A writer's error reaches the caller of the step; at exit or garbage collection it is printed.
"""

from __future__ import annotations

import atexit
import math
import os
import sys
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import torch

from ..fileio import Closing
from ..records import GradNormRecord, RecordError, RecordWriter, read_record
from .process import env_rank, flush_on_sigterm, process_rank, stop_flushing_on_sigterm

__all__ = ["MAX_FLUSH_EVERY", "Row", "RowSink"]

#: The largest ``flush_every``: the buffer holds that many rows (at most 32 MB for four kinds).
MAX_FLUSH_EVERY = 1_000_000
_STATE_VERSION = 1
Row = torch.Tensor | Sequence[torch.Tensor | float]


def _int_in(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high:,} (rows held in memory), got {value:,}")
    return value


def _close_quietly(sink: RowSink | None, when: str) -> None:
    try:
        if sink is not None:
            sink.close()
    except Exception as exc:  # nobody can catch it there: say it on one line
        print(f"refinedlr: {when}, {sink!r} could not write: {exc}", file=sys.stderr)


class _Chunk(NamedTuple):  # rows on their way to the host
    host: torch.Tensor
    first_step: int
    n: int
    event: Any  # the CUDA event of the copy, or None


class RowSink(Closing):
    """Write complete rows of norms, one per optimizer step, to a record (or to memory).

    Args:
        path: the record file (``step,<kind>...`` CSV), or ``None`` (memory only). An existing
            file keeps its rows before the first step written here (a run from step 0 overwrites).
        flush_every: rows between copies to the host and the file (1 to :data:`MAX_FLUSH_EVERY`).
        start_step, write_rank: the first row's step (:meth:`load_state_dict` sets it on resume);
            in a distributed run, the only rank that writes the file.
        keep_in_memory: keep the rows in memory too (default: when this process writes no file).
        fsync, close_at_exit: ``fsync`` at every flush; flush and close at interpreter exit, and
            flush on ``SIGTERM``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        kinds: Sequence[str],
        *,
        flush_every: int = 100,
        start_step: int = 0,
        write_rank: int = 0,
        keep_in_memory: bool | None = None,
        fsync: bool = True,
        close_at_exit: bool = True,
    ) -> None:
        self.flush_every = _int_in("flush_every", flush_every, 1, MAX_FLUSH_EVERY)
        start_step = _int_in("start_step", start_step, 0)
        self.path = None if path is None else Path(path)
        self.kinds = tuple(kinds)
        self.write_rank, self.keep_in_memory, self.fsync = write_rank, keep_in_memory, fsync
        self._step = self._first_step = self._chunk_start = start_step  # next / first / buffer's
        self._n = 0  # rows in the device buffer
        self._buf: torch.Tensor | None = None
        self._rows: list[torch.Tensor] = []
        self._pool: list[torch.Tensor] = []  # free pinned host buffers (CUDA)
        self._pending: deque[_Chunk] = deque()  # copies to the host not written yet
        self._last_copy: Any = None  # CUDA event of the last device-to-host copy
        self._memory: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
        self._writer: RecordWriter | None = None
        self._closed = False
        self._rank, self._env_rank = process_rank(), env_rank()  # fixed once a group answers
        self._pid = os.getpid()  # a forked copy (a DataLoader worker) never writes the file
        ref = weakref.ref(self)
        self._atexit = lambda: _close_quietly(ref(), "at exit")
        if close_at_exit:
            atexit.register(self._atexit)
            flush_on_sigterm(self)

    @property
    def step(self) -> int:
        """The step of the next row (= rows so far, counting from the resume step)."""
        return self._step

    @property
    def rank(self) -> int | None:
        """This process's rank (``refinedlr.pytorch.process``); ``None`` for a single process."""
        if self._rank is None:
            self._rank = process_rank()
        return self._rank if self._rank is not None else self._env_rank

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the file: rank ``write_rank``, or a single process."""
        rank, mine = self.rank, os.getpid() == self._pid
        return self.path is not None and rank in (None, self.write_rank) and mine

    def _keeps_memory(self) -> bool:
        return not self.is_writer if self.keep_in_memory is None else self.keep_in_memory

    def __repr__(self) -> str:
        path = None if self.path is None else str(self.path)
        return f"{type(self).__name__}(path={path!r}, kinds={self.kinds}, step={self._step})"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")

    def put(self, row: Row) -> None:
        """Append a complete row (a value per kind; non-finite: missing) as step :attr:`step`."""
        self._check_open()
        count = row.numel() if isinstance(row, torch.Tensor) else len(row)
        if count != len(self.kinds):
            raise ValueError(f"{count} values for kinds {self.kinds}")
        if self._buf is None:
            device = row.device if isinstance(row, torch.Tensor) else torch.device("cpu")
            dtype = torch.float32 if device.type == "mps" else torch.float64  # (mps: no float64)
            self._buf = torch.full((self.flush_every, count), math.nan, dtype=dtype, device=device)
            self._rows = list(self._buf.unbind(0))
        if self._n == 0 and self._last_copy is not None:
            # do not overwrite the buffer before the last copy out of it has read it
            torch.cuda.current_stream(self._buf.device).wait_event(self._last_copy)
        dest = self._rows[self._n]
        if isinstance(row, torch.Tensor):
            if row.device != dest.device:
                row = row.to(dest.device, non_blocking=True)
            dest.copy_(row.reshape(-1))
        else:  # 0-d tensors (a copy on their device) and floats (no host-to-device copy)
            for j, v in enumerate(row):
                dest[j].fill_(v)
        self._n += 1
        self._step += 1
        if self._rank is None:  # fix the rank while a process group exists
            self._rank = process_rank()
        if self._n == self.flush_every:
            self._to_host()
        if self._pending:
            self._drain(block=False)

    def _to_host(self) -> None:
        """Start copying the buffered rows to the host (no host sync on CUDA)."""
        if self._buf is None or self._n == 0:
            return
        n, buf = self._n, self._buf
        event = None
        if buf.is_cuda:
            if not self._pool:
                self._pool.append(torch.empty(buf.shape, dtype=buf.dtype, pin_memory=True))
            host = self._pool.pop()
            host[:n].copy_(buf[:n], non_blocking=True)
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]  # unannotated in torch
            event.record(torch.cuda.current_stream(buf.device))
            self._last_copy = event
        else:
            host = buf[:n].to("cpu", copy=True)
        self._pending.append(_Chunk(host, self._chunk_start, n, event))
        self._chunk_start += n
        self._n = 0

    def _drain(self, block: bool) -> None:
        """Write the copies that have landed (all of them, waiting, with ``block``)."""
        while self._pending:
            chunk = self._pending[0]
            if chunk.event is not None:
                if block:
                    chunk.event.synchronize()
                elif not chunk.event.query():
                    return
            rows = chunk.host[: chunk.n].numpy().astype(np.float64, copy=True)
            rows[~np.isfinite(rows)] = np.nan
            steps = np.arange(chunk.first_step, chunk.first_step + chunk.n, dtype=np.int64)
            if self.is_writer:  # an error here (disk full, file gone) reaches the caller
                writer = self._open_writer()
                writer.write(steps, rows)
                if self.fsync:
                    writer.flush(fsync=True)
            if self._keeps_memory():
                self._memory.append((steps, rows))
            self._pending.popleft()
            if chunk.event is not None:
                self._pool.append(chunk.host)

    def _open_writer(self) -> RecordWriter:
        if self._writer is None:
            assert self.path is not None
            self._writer = RecordWriter(self.path, self.kinds, start_step=self._first_step)
        return self._writer

    def flush(self) -> None:
        """Copy every row to the host and write it now (waits for the device)."""
        self._to_host()
        self._drain(block=True)  # (each write is flushed, and fsync'ed with fsync=True)

    def close(self) -> None:
        """Flush and close the file; idempotent."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            atexit.unregister(self._atexit)
            stop_flushing_on_sigterm(self)

    def __del__(self) -> None:
        # dropped without close() (a local of a finished function): still write the last rows
        if not getattr(self, "_closed", True):
            _close_quietly(self, "at garbage collection")

    def to_record(self, source: Literal["auto", "file", "memory"] = "auto") -> GradNormRecord:
        """The rows so far as a :class:`~refinedlr.records.GradNormRecord` (flushes first).

        ``"auto"``: from the file where this process writes one (with the rows kept from before a
        resume), otherwise from memory; ``"memory"``: the rows this process recorded since it
        started or resumed (full precision; needs ``keep_in_memory``); ``"file"``: the file.
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
            steps = np.concatenate([s for s, _ in self._memory] or [np.zeros(0, np.int64)])
            rows = np.concatenate([r for _, r in self._memory] or [np.zeros((0, len(self.kinds)))])
            values = {k: rows[:, j] for j, k in enumerate(self.kinds)}
            return GradNormRecord.from_arrays(values, steps=steps, source="<memory>")
        if self.path is None:
            raise RecordError("this recorder has no file (path=None)")
        return read_record(self.path)

    def state_dict(self) -> dict[str, Any]:
        """The step to continue from and the kinds; flushes, so every earlier step is on disk.

        >>> RowSink(None, ["l1"]).state_dict()
        {'version': 1, 'step': 0, 'kinds': ['l1']}
        """
        if not self._closed:
            self.flush()
        return {"version": _STATE_VERSION, "step": self._step, "kinds": list(self.kinds)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue at the checkpoint's step (call it before any row): the file keeps its rows
        before that step only."""
        self._check_open()
        kinds = state.get("kinds") if isinstance(state, Mapping) else None
        if not isinstance(kinds, (list, tuple)) or tuple(kinds) != self.kinds:
            raise RecordError(
                f"the checkpoint recorded kinds {kinds!r}, this recorder {list(self.kinds)}",
                path=self.path,
            )
        if self._step != self._first_step or self._n or self._pending:
            raise RuntimeError(
                "load_state_dict must be called before this recorder records anything "
                f"(it has recorded steps {self._first_step}..{self._step - 1})"
            )
        step = _int_in("the checkpoint's step", state.get("step"), 0)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._step = self._first_step = self._chunk_start = step
        self._memory.clear()
        if self.is_writer and self.rank is not None:  # (else when it first writes, if it does)
            self._open_writer()  # drops rows at or after `step` now
