"""Gradient-norm records: the in-memory type, the on-disk format written while training, readers.

A record holds, per optimizer step ``t`` (0-based, after gradient accumulation), one value per norm
kind (``"l2"``, ``"l1"``, or a column name taken from a foreign log). A missing value (a step skipped
by the AMP scaler, a non-finite norm) is ``NaN``. Sparse logs (one value every ``k`` steps) keep only
the logged steps; :meth:`GradNormRecord.norms` places them on their steps and interpolates onto every
step, and :meth:`GradNormRecord.describe` says how sparse the log was.

The format written by :class:`RecordWriter` (and by the PyTorch recorder) is a CSV file with a
header ``step,<kind>,<kind>...`` and one row per optimizer step, appended and flushed in chunks so a
killed process loses only the rows it had not flushed::

    step,l2,l1
    0,12.5,30110.2
    1,11.875,29870.4

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "norms.csv")
    >>> with RecordWriter(path, kinds=("l2",)) as w:
    ...     w.write([0, 1, 2], [[3.0], [2.0], [float("nan")]])
    >>> rec = read_record(path)
    >>> rec.norms("l2")
    array([ 3.,  2., nan])
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "GradNormRecord",
    "RecordError",
    "RecordWriter",
    "read_record",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class RecordError(ValueError):
    """A gradient-norm log could not be read or written; the message names file, line and problem."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.key = key
        where = ""
        if self.path is not None:
            where = self.path
            if line is not None:
                where += f", line {line}"
            if key is not None:
                where += f", {key}"
            where += ": "
        super().__init__(where + message)


@dataclasses.dataclass(frozen=True, eq=False)
class GradNormRecord:
    """Per-step gradient norms of one training run.

    Attributes:
        steps: strictly increasing optimizer steps (int64, >= 0) that have a row.
        values: norm kind -> float64 array aligned with ``steps``; ``NaN`` marks a missing value.
        source: where the record came from (a path, or ``"<memory>"``).
        meta: free-form details from the reader (format, column, tag, notes).

    >>> rec = GradNormRecord.from_arrays({"l2": [4.0, 2.0, 1.0]})
    >>> rec.kinds, rec.total_steps
    (('l2',), 3)
    """

    steps: IntArray
    values: Mapping[str, FloatArray]
    source: str = "<memory>"
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        steps = np.asarray(self.steps)
        if steps.ndim != 1:
            raise RecordError(f"steps must be 1-D, got shape {steps.shape}", path=self.source)
        if steps.size and steps.dtype.kind not in "iu":
            if steps.dtype.kind != "f" or not np.all(steps == np.round(steps)):
                raise RecordError("steps must be integers", path=self.source)
        steps = steps.astype(np.int64)
        if steps.size and int(steps[0]) < 0:
            raise RecordError(f"steps must be >= 0, got {int(steps[0])}", path=self.source)
        bad = np.flatnonzero(np.diff(steps) <= 0)
        if bad.size:
            i = int(bad[0])
            raise RecordError(
                f"steps must increase strictly; step {int(steps[i + 1])} follows {int(steps[i])} "
                f"(row {i + 1})",
                path=self.source,
            )
        vals: dict[str, FloatArray] = {}
        if not self.values:
            raise RecordError("a record needs at least one norm kind", path=self.source)
        for kind, v in self.values.items():
            arr = np.asarray(v, dtype=np.float64)
            if arr.shape != steps.shape:
                raise RecordError(
                    f"{arr.shape[0] if arr.ndim else 0} values for {steps.size} steps",
                    path=self.source,
                    key=kind,
                )
            arr = arr.copy()
            arr.setflags(write=False)
            vals[str(kind)] = arr
        steps.setflags(write=False)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "meta", dict(self.meta))

    @classmethod
    def from_arrays(
        cls,
        values: Mapping[str, npt.ArrayLike],
        steps: npt.ArrayLike | None = None,
        *,
        source: str = "<memory>",
        meta: Mapping[str, Any] | None = None,
    ) -> GradNormRecord:
        """Build a record from arrays; ``steps`` defaults to ``0 .. n-1``."""
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
        n = next(iter(arrays.values())).shape[0] if arrays else 0
        st = np.arange(n, dtype=np.int64) if steps is None else np.asarray(steps)
        return cls(steps=st, values=arrays, source=source, meta=dict(meta or {}))

    # -- shape --------------------------------------------------------------------------------

    @property
    def kinds(self) -> tuple[str, ...]:
        """The norm kinds (columns) present, in file order."""
        return tuple(self.values)

    @property
    def total_steps(self) -> int:
        """Number of steps the record spans: last step + 1 (0 for an empty record)."""
        return int(self.steps[-1]) + 1 if self.steps.size else 0

    def __len__(self) -> int:
        return int(self.steps.size)

    @property
    def coverage(self) -> float:
        """Fraction of the steps ``0 .. total_steps-1`` that have a row (1.0 = dense)."""
        return len(self) / self.total_steps if self.total_steps else 0.0

    @property
    def stride(self) -> int:
        """The most common gap between logged steps (1 for a dense record)."""
        if self.steps.size < 2:
            return 1
        gaps, counts = np.unique(np.diff(self.steps), return_counts=True)
        return int(gaps[np.argmax(counts)])

    def resolve_kind(self, kind: str | None = None) -> str:
        """The kind to use: ``kind`` if present; else the only kind; else an error listing them."""
        if kind is not None:
            if kind in self.values:
                return kind
            if len(self.values) == 1:
                return next(iter(self.values))
            raise RecordError(
                f"no norm kind {kind!r} in this record; it has {list(self.values)}",
                path=self.source,
            )
        if len(self.values) == 1:
            return next(iter(self.values))
        raise RecordError(
            f"the record has several norm kinds {list(self.values)}: choose one", path=self.source
        )

    def norms(self, kind: str | None = None) -> FloatArray:
        """Values of ``kind`` on every step ``0 .. total_steps-1``.

        Steps with a row keep their value (``NaN`` stays ``NaN``: a missing value for
        :func:`refinedlr.refine.refine` to fill and report). Steps without a row (sparse logs) are
        interpolated linearly between the nearest logged finite values; steps before the first
        logged one take its value.

        >>> GradNormRecord.from_arrays({"l2": [4.0, 2.0]}, steps=[1, 3]).norms()
        array([4., 4., 3., 2.])
        """
        k = self.resolve_kind(kind)
        v = self.values[k]
        n = self.total_steps
        if len(self) == n:
            return np.array(v, dtype=np.float64)
        out = np.full(n, np.nan, dtype=np.float64)
        finite = np.isfinite(v)
        if finite.any():
            out[:] = np.interp(np.arange(n), self.steps[finite], v[finite])
        out[self.steps] = v
        return out

    def describe(self) -> str:
        """One paragraph a person can read: source, kinds, steps, sparsity, missing values."""
        parts = [f"{self.source}: {len(self)} rows over steps 0..{max(self.total_steps - 1, 0)}"]
        parts.append(f"kinds {', '.join(self.kinds)}")
        if self.coverage < 1.0 and len(self):
            parts.append(
                f"sparse: one row every {self.stride} steps ({self.coverage:.1%} of steps logged;"
                " the rest are interpolated)"
            )
        for k, v in self.values.items():
            missing = int(np.count_nonzero(~np.isfinite(v)))
            if missing:
                parts.append(f"{missing} missing {k} value(s)")
        return "; ".join(parts)


# ----------------------------------------------------------------------------------------------
# the native format


def _format_value(v: float) -> str:
    return "nan" if not math.isfinite(v) else format(v, ".9g")


class RecordWriter:
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
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("\n".join([self.header, *kept]) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        if kept:
            self.last_step = int(kept[-1].split(",", 1)[0])

    def write(self, steps: Iterable[int], rows: npt.ArrayLike) -> None:
        """Append rows: ``steps[i]`` with ``rows[i]`` (one value per kind; NaN for missing)."""
        if self._file is None:
            raise RecordError("the writer is closed", path=self.path)
        st = np.asarray(list(steps) if not isinstance(steps, np.ndarray) else steps, np.int64)
        vals = np.asarray(rows, dtype=np.float64).reshape(st.shape[0], -1)
        if vals.shape[1] != len(self.kinds):
            raise RecordError(
                f"{vals.shape[1]} values per row for kinds {list(self.kinds)}", path=self.path
            )
        if st.size == 0:
            return
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

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# readers


def read_record(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    column: str | None = None,
    tag: str | None = None,
) -> GradNormRecord:
    """Read a gradient-norm log; the format is guessed from the name and content unless given.

    Formats: ``csv`` (this library's own, or any CSV/TSV with a named or single column),
    ``npy`` (a 1-D array, or 2-D with one column per kind; no pickles), ``wandb`` (a Weights &
    Biases CSV export), ``jsonl`` (one JSON object per line), ``trainer_state`` (Hugging Face
    ``trainer_state.json``) and ``tensorboard`` (event files; needs the ``tensorboard`` extra).
    """
    p = Path(path)
    if not p.exists():
        raise RecordError("no such file", path=p)
    fmt = format or _guess_format(p)
    reader = _READERS.get(fmt)
    if reader is None:
        raise RecordError(f"unknown format {fmt!r}; known: {sorted(_READERS)}", path=p)
    record: GradNormRecord = reader(p, column=column, tag=tag)
    return record


def _guess_format(p: Path) -> str:
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return "npy"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise RecordError(
        f"cannot tell the format of {p.name!r} from its name; pass format=... "
        f"(one of {sorted(_READERS)})",
        path=p,
    )


def _read_csv(p: Path, *, column: str | None = None, tag: str | None = None) -> GradNormRecord:
    text = p.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise RecordError("empty file", path=p)
    header = [h.strip() for h in lines[0].split(",")]
    if header[0] != "step":
        raise RecordError(f"expected a header starting with 'step', got {lines[0]!r}", path=p)
    kinds = header[1:]
    steps: list[int] = []
    rows: list[list[float]] = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != len(header):
            raise RecordError(f"expected {len(header)} fields, got {len(fields)}", path=p, line=i)
        try:
            steps.append(int(fields[0]))
            rows.append([float(x) for x in fields[1:]])
        except ValueError as exc:
            raise RecordError(f"not a number: {exc}", path=p, line=i) from None
    arr = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(kinds))
    values = {k: arr[:, j] for j, k in enumerate(kinds)}
    if column is not None:
        if column not in values:
            raise RecordError(f"no column {column!r}; columns are {kinds}", path=p)
        values = {column: values[column]}
    return GradNormRecord(
        steps=np.asarray(steps, dtype=np.int64),
        values=values,
        source=str(p),
        meta={"format": "csv"},
    )


_READERS: dict[str, Any] = {"csv": _read_csv}
