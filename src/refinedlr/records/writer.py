"""The on-disk record format written while training, and its writer (:class:`RecordWriter`).

A CSV file with a header ``step,<kind>,<kind>...`` and one row per optimizer step, appended and
flushed in chunks so a killed process loses only the rows it had not flushed::

    step,l2,l1
    0,12.5,30110.2
    1,11.875,29870.4
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..fileio import Closing, atomic_write
from .record import RecordError

__all__ = ["RecordWriter"]


def _format_value(v: float) -> str:
    return "nan" if not math.isfinite(v) else format(v, ".9g")


class RecordWriter(Closing):
    """Append rows ``step,<kind>...`` to a CSV record, durably.

    Rows are buffered by the caller's rhythm: every :meth:`write` goes to the OS at once
    (``flush``); :meth:`flush` with ``fsync=True`` also asks the OS to put them on disk. Opening an
    existing file continues it: the header must name the same kinds, a truncated last line (a
    process killed mid-write) is dropped, and with ``start_step`` rows at or after that step are
    removed so a resumed run neither duplicates nor skips steps.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "r.csv")
    >>> with RecordWriter(p, kinds=("l2", "l1")) as w:
    ...     w.write([0, 1], [[1.0, 2.0], [3.0, 4.0]])
    >>> with RecordWriter(p, kinds=("l2", "l1"), start_step=1) as w:  # resume at step 1
    ...     w.write([1], [[5.0, 6.0]])
    >>> print(open(p).read().strip())
    step,l2,l1
    0,1,2
    1,5,6
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        kinds: Sequence[str] = ("l2",),
        *,
        start_step: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.kinds = tuple(kinds)
        if not self.kinds:
            raise RecordError("a record needs at least one norm kind", path=self.path)
        for k in self.kinds:
            if not k or "," in k or k == "step" or k != k.strip():
                raise RecordError(f"bad norm kind name {k!r}", path=self.path)
        self.header = ",".join(("step", *self.kinds))
        self.last_step: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            self._continue_existing(start_step)
        else:
            with open(self.path, "w", encoding="utf-8") as f:
                f.write(self.header + "\n")
        self._file: io.TextIOWrapper | None = open(self.path, "a", encoding="utf-8")

    def _continue_existing(self, start_step: int | None) -> None:
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        lines = text.split("\n")
        if lines[0].strip() != self.header:
            raise RecordError(
                f"existing record has header {lines[0].strip()!r}, expected {self.header!r}; "
                "write to a new file or record the same norm kinds",
                path=self.path,
                line=1,
            )
        complete = text.endswith("\n")
        body = lines[1:-1]  # without a final newline the last piece was cut mid-write: drop it
        kept: list[str] = []
        for i, line in enumerate(body, start=2):
            if not line.strip():
                continue
            try:
                step = int(line.split(",", 1)[0])
            except ValueError:
                raise RecordError(
                    f"cannot continue the record: bad step in {line!r}", path=self.path, line=i
                ) from None
            if start_step is not None and step >= start_step:
                break
            kept.append(line)
        if len(kept) != len([b for b in body if b.strip()]) or not complete:
            with atomic_write(self.path) as f:
                f.write("\n".join([self.header, *kept]) + "\n")
        if kept:
            self.last_step = int(kept[-1].split(",", 1)[0])

    def write(self, steps: Iterable[int], rows: npt.ArrayLike) -> None:
        """Append rows: ``steps[i]`` with ``rows[i]`` (one value per kind; NaN for missing)."""
        if self._file is None:
            raise RecordError("the writer is closed", path=self.path)
        st = np.asarray(list(steps) if not isinstance(steps, np.ndarray) else steps, np.int64)
        if st.ndim != 1:
            raise RecordError(f"steps must be 1-D, got shape {st.shape}", path=self.path)
        vals = np.asarray(rows, dtype=np.float64)
        if st.size == 0 and vals.size == 0:
            return
        if vals.size != st.size * len(self.kinds):
            raise RecordError(
                f"{vals.size} values for {st.size} steps and kinds {list(self.kinds)}; "
                f"expected {st.size * len(self.kinds)}",
                path=self.path,
            )
        vals = vals.reshape(st.shape[0], len(self.kinds))
        prev = -1 if self.last_step is None else self.last_step
        if int(st[0]) <= prev or np.any(np.diff(st) <= 0):
            raise RecordError(
                f"steps must increase: writing step {int(st[0])} after {prev}", path=self.path
            )
        lines = [
            ",".join((str(int(s)), *(_format_value(float(x)) for x in row)))
            for s, row in zip(st, vals, strict=True)
        ]
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()
        self.last_step = int(st[-1])

    def flush(self, fsync: bool = True) -> None:
        """Push written rows to the OS, and with ``fsync`` to the disk."""
        if self._file is None:
            return
        self._file.flush()
        if fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.flush(fsync=True)
            self._file.close()
            self._file = None
