"""What the Hugging Face and Lightning callbacks share: the recorder's settings and its lifetime
(one :class:`~refinedlr.pytorch.GradNormRecorder` per ``fit`` / ``train()``; they keep no values).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from torch.optim import Optimizer

from ..pytorch.recorder import GradNormRecorder, check_kinds
from ..pytorch.updates import UPDATE_KINDS, check_update_optimizer
from ..records import GradNormRecord

#: The record's file name in the run's directory when no path is given.
NORMS_FILENAME = "refinedlr_norms.csv"


class RecordingCallback:
    """The settings of the recorder a framework callback creates (``kinds``, ``path``,
    ``flush_every``, ``keep_in_memory``, ``fsync``: see each callback), and what it recorded:
    :attr:`recorder`, the :class:`~refinedlr.pytorch.GradNormRecorder` of the current run."""

    recorder: GradNormRecorder | None = None
    _undo: tuple[Callable[[], None], ...] = ()  # the seams patched for the current run

    def __init__(
        self,
        kinds: Sequence[str] | str = ("l2",),
        path: str | os.PathLike[str] | None = None,
        *,
        flush_every: int = 100,
        keep_in_memory: bool = False,
        fsync: bool = True,
    ) -> None:
        self.kinds = check_kinds(kinds)
        self.path = None if path is None else Path(path)
        self.flush_every, self.keep_in_memory, self.fsync = flush_every, keep_in_memory, fsync
        self._grad_kinds = tuple(k for k in self.kinds if k not in UPDATE_KINDS)

    def _file_in(self, run_dir: str | os.PathLike[str]) -> Path:
        return self.path if self.path is not None else Path(run_dir) / NORMS_FILENAME

    def _start(
        self, path: Path, start_step: int, optimizer: Any, scaler: Any, *, gradients: bool
    ) -> GradNormRecorder:
        """Close the previous run's recorder; a new one writing ``path`` from ``start_step``,
        attached to the torch optimizer inside ``optimizer`` and to ``scaler``."""
        self._stop()
        inner = optimizer  # accelerate's AcceleratedOptimizer wraps the torch optimizer
        while isinstance(getattr(inner, "optimizer", None), Optimizer):
            inner = inner.optimizer
        if len(self._grad_kinds) < len(self.kinds):
            check_update_optimizer(inner)
        self.recorder = GradNormRecorder(
            path,
            self.kinds,
            flush_every=self.flush_every,
            start_step=start_step,
            keep_in_memory=self.keep_in_memory,
            fsync=self.fsync,
        )
        if isinstance(inner, Optimizer):
            self.recorder.attach(inner, scaler=scaler, gradients=gradients)
        return self.recorder

    def _stop(self) -> None:
        """Close the recorder and undo the run's patches (end of a run, or an exception)."""
        undo, self._undo = self._undo, ()
        try:
            if self.recorder is not None:
                self.recorder.close()
        finally:
            for u in undo:
                u()

    def to_record(self, source: Literal["auto", "file", "memory"] = "auto") -> GradNormRecord:
        """The record so far (see :meth:`~refinedlr.pytorch.GradNormRecorder.to_record`)."""
        if self.recorder is None:
            raise RuntimeError("nothing recorded yet: train first")
        return self.recorder.to_record(source)
