"""What the Hugging Face and Lightning callbacks share: the recorder's settings and its lifetime.

Both callbacks build one :class:`~refinedlr.pytorch.GradNormRecorder` per ``fit`` / ``train()``
from the same settings (kinds, file, flush interval, memory, fsync); this mixin holds them.
Needs torch (both frameworks do).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ..pytorch.recorder import GradNormRecorder, check_kinds
from ..records import GradNormRecord

__all__ = ["RecordingCallback"]


class RecordingCallback:
    """Settings of the recorder a framework callback creates, and access to what it recorded."""

    recorder: GradNormRecorder | None

    def _init_recording(
        self,
        kinds: Sequence[str] | str,
        path: str | os.PathLike[str] | None,
        flush_every: int,
        keep_in_memory: bool,
        fsync: bool,
    ) -> None:
        self.kinds = check_kinds(kinds)
        self.path = None if path is None else Path(path)
        self.flush_every = flush_every
        self.keep_in_memory = keep_in_memory
        self.fsync = fsync
        self.recorder = None

    def _open_recorder(self, path: Path, start_step: int) -> GradNormRecorder:
        """Close the previous run's recorder; a new one writing ``path`` from ``start_step``."""
        self._close_recorder()
        self.recorder = GradNormRecorder(
            path,
            self.kinds,
            flush_every=self.flush_every,
            start_step=start_step,
            keep_in_memory=self.keep_in_memory,
            fsync=self.fsync,
        )
        return self.recorder

    def _close_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.close()

    def to_record(self, source: Literal["auto", "file", "memory"] = "auto") -> GradNormRecord:
        """The record so far (see :meth:`~refinedlr.pytorch.GradNormRecorder.to_record`)."""
        if self.recorder is None:
            raise RuntimeError("nothing recorded yet: train first")
        return self.recorder.to_record(source)
