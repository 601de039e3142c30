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

Units: a norm is that of the whole gradient ``g_t`` (all parameters together) in the units of the
loss per unit of parameter: ``l2 = sqrt(sum_i g_{t,i}^2)``, ``l1 = sum_i |g_{t,i}|``. Readers never
rescale values; they only place them on steps.

:func:`read_record` reads this format and foreign logs: any CSV/TSV, a Weights & Biases CSV
export, JSON lines, Hugging Face ``trainer_state.json``, ``.npy`` arrays and TensorBoard event
files. Step conventions per format, in short (details in :func:`read_record`):

==================  ===========================================  ===============================
format              step ``t`` of a value                        kind (name of the series)
==================  ===========================================  ===============================
``csv`` (own)       the ``step`` column                          the header names (``l2``, ``l1``)
``csv`` (other)     a ``step``-like column, else the row index   the column name; headerless: ``l2``
``npy``             the row index (or a ``step`` field)          ``l2`` (1-D), ``col0``.. (2-D)
``wandb``           the ``Step`` column                          the metric
``jsonl``           a ``step``-like key, else the line index     the key
``trainer_state``   HF's ``step`` minus one                      ``l2`` (HF's ``grad_norm``)
``tensorboard``     the event's step                             the tag
==================  ===========================================  ===============================

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

import csv
import dataclasses
import io
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_NAMES",
    "FORMATS",
    "STEP_NAMES",
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
        :func:`refinedlr.refinement.refine` to fill and report). Steps without a row (sparse logs) are
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
        parts.extend(str(note) for note in self.meta.get("notes", ()))
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

#: Column / key names taken as the step, in order of preference (compared case-insensitively).
STEP_NAMES: tuple[str, ...] = (
    "step",
    "global_step",
    "_step",
    "train/global_step",
    "trainer/global_step",
    "iteration",
    "iter",
    "steps",
)
#: Series picked without ``column=`` / ``tag=`` when a log has several, in order of preference.
DEFAULT_NAMES: tuple[str, ...] = ("grad_norm", "train/grad_norm")
#: Numeric columns that are never taken as a norm without being asked for by name.
_INDEX_NAMES = frozenset(
    {"epoch", "_runtime", "_timestamp", "timestamp", "wall_time", "walltime", "time", "runtime"}
)
FORMATS: tuple[str, ...] = ("csv", "npy", "wandb", "jsonl", "trainer_state", "tensorboard")
_ALIASES = {"tsv": "csv", "ndjson": "jsonl", "tb": "tensorboard", "tfevents": "tensorboard"}
_TB_HINT = "pip install refinedlr[tensorboard]"


class _NeedLines(Exception):
    """Raised by the fast CSV path when an error message needs line numbers it did not keep."""


_Where = Callable[[int], dict[str, Any]]


def read_record(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    column: str | None = None,
    tag: str | None = None,
) -> GradNormRecord:
    """Read a gradient-norm log; the format is guessed from the name and content unless given.

    Formats (``format=``), what becomes a step, and the norm kind the values are stored under:

    ``csv``
        This library's own format (first column ``step``, then only numeric columns: every
        column is a kind; an empty cell is NaN unless the whole row is empty), or any CSV/TSV/semicolon file with a header
        (``column=`` names the column; without it the only numeric value column, or
        ``grad_norm``/``train/grad_norm``; ``epoch`` and time stamps are never picked), or a
        single headerless column of numbers (kind ``column`` or ``"l2"``). The delimiter is
        sniffed from the header (tab, comma, semicolon). The step column is the first of
        :data:`STEP_NAMES` present (any case: ``step``, ``Step``, ``global_step``, ``_step``,
        ``iteration``...); without one, data row ``i`` is step ``i``. An empty cell is no row
        for that step; ``nan`` is a missing value. Our own format with a cut-off last line (no
        end of line: a writer killed mid-write) loses that line, with a warning naming it.
    ``npy``
        ``np.load(allow_pickle=False)``: a 1-D array (kind ``column`` or ``"l2"``), a 2-D array
        ``(steps, kinds)`` with kinds ``col0, col1, ...`` (``column="col1"`` or ``"1"`` picks
        one), or a structured array whose fields are kinds and whose ``step`` field (if any)
        holds the steps. Row ``i`` of a plain array is step ``i``.
    ``wandb``
        A Weights & Biases chart CSV export: header ``"Step","<run> - <metric>",
        "<run> - <metric>__MIN","<run> - <metric>__MAX"...``. The ``__MIN``/``__MAX`` columns are
        ignored; with several runs or metrics ``column=`` picks one (the full header, or a run
        or metric that names one series; a lone ``grad_norm`` metric is taken by default).
        Kind: the metric. ``Step`` is taken as written; an empty cell is no row for that step.
    ``jsonl``
        One JSON object per line; ``column=`` names the key (default ``grad_norm``,
        ``train/grad_norm`` or the only numeric key); the step key is the first of
        :data:`STEP_NAMES` present, else the ``i``-th line with the key is step ``i``. Lines
        without the key are skipped and counted (``meta["skipped"]``); ``null`` is a missing value.
    ``trainer_state``
        Hugging Face ``trainer_state.json`` (or a checkpoint directory holding one):
        ``log_history[*]["grad_norm"]``, the global l2 norm of the last step before logging,
        before clipping, so kind ``"l2"`` (a sample every ``logging_steps``, not an average).
        HF's ``step`` counts optimizer steps *completed* when the entry was logged, so the
        value logged at ``step = s`` belongs to 0-based optimizer step ``t = s - 1``
        (``meta["step_offset"] = -1``); entries without ``grad_norm`` (evaluation, the final
        summary) are skipped and counted. ``meta`` holds ``logging_steps``, ``global_step``,
        ``max_steps`` (when the file has them) and the observed ``stride``.
    ``tensorboard``
        Event files (``events.out.tfevents.*``) or a run directory holding them; needs the
        ``tensorboard`` package (``pip install refinedlr[tensorboard]``). ``tag=`` names the
        scalar (default ``grad_norm`` or ``train/grad_norm``); kind: the tag. Steps as
        written (note: HF's TensorBoard callback writes its ``global_step``, i.e. ``t + 1``).

    ``column=`` and ``tag=`` name the series (``tag`` is TensorBoard's word; each reader takes
    its own word first and the other one if its own is not given). Every format
    places a sparse log on its logged steps (see :meth:`GradNormRecord.norms`). A step logged
    twice (a resumed run) keeps its *last* value, reported in ``meta["repeated_steps"]`` and
    :meth:`GradNormRecord.describe`; steps that go back to a step never logged before are an
    error naming the line. Every malformed input raises :class:`RecordError` naming the file,
    the line or key, and the problem.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "log.tsv"
    >>> _ = p.write_text("iteration\\tloss\\tgrad_norm\\n10\\t2.5\\t4.0\\n20\\t2.1\\t2.0\\n")
    >>> rec = read_record(p)  # grad_norm is preferred over loss; sparse: logged every 10 steps
    >>> rec.kinds, rec.steps.tolist(), rec.stride
    (('grad_norm',), [10, 20], 10)
    >>> rec.norms()[9:14]  # steps 0..9 take the first value; 11..19 are interpolated
    array([4. , 4. , 3.8, 3.6, 3.4])
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise RecordError("no such file", path=p)
    if format is None:
        fmt = _guess_format(p)
    else:
        fmt = _ALIASES.get(format.lower(), format.lower())
    reader = _READERS.get(fmt)
    if reader is None:
        raise RecordError(f"unknown format {format!r}; known: {list(FORMATS)}", path=p)
    if p.is_dir() and fmt not in ("tensorboard", "trainer_state"):
        raise RecordError(f"a directory, not a {fmt} file", path=p)
    return reader(p, column=column, tag=tag)


# -- format guessing ----------------------------------------------------------------------------


def _event_files(d: Path) -> list[Path]:
    """TensorBoard event files in ``d`` (or, if none there, anywhere below it)."""
    direct = sorted(f for f in d.glob("events.out.tfevents.*") if f.is_file())
    if direct:
        return direct
    return sorted(f for f in d.rglob("events.out.tfevents.*") if f.is_file())


def _guess_format(p: Path) -> str:
    if p.is_dir():
        if (p / "trainer_state.json").is_file():
            return "trainer_state"
        if _event_files(p):
            return "tensorboard"
        raise RecordError(
            "a directory without trainer_state.json or TensorBoard event files "
            "(events.out.tfevents.*); pass a file",
            path=p,
        )
    name = p.name.lower()
    suffix = p.suffix.lower()
    if name.startswith("events.out.tfevents") or ".tfevents." in name:
        return "tensorboard"
    if name == "trainer_state.json":
        return "trainer_state"
    if suffix in (".npy", ".npz"):
        return "npy"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    try:
        with open(p, "rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise RecordError(f"cannot read: {exc.strerror or exc}", path=p) from None
    if head.startswith(b"\x93NUMPY") or head.startswith(b"PK\x03\x04"):
        return "npy"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("{") or suffix == ".json":
        return _guess_json(p, head)
    if b"\0" not in head and suffix in ("", ".csv", ".tsv", ".txt", ".dat", ".log"):
        first = text.split("\n", 1)[0]
        return "wandb" if _looks_like_wandb(first) else "csv"
    raise RecordError(
        f"cannot tell the format of {p.name!r} from its name and content; pass format=... "
        f"(one of {list(FORMATS)})",
        path=p,
    )


def _guess_json(p: Path, head: bytes) -> str:
    with open(p, encoding="utf-8-sig", errors="replace") as f:
        first = ""
        for first in f:
            if first.strip():
                break
    try:
        obj = json.loads(first)
    except ValueError:
        obj = None  # a pretty-printed (multi-line) document, or not JSON at all
    if isinstance(obj, dict):
        return "trainer_state" if "log_history" in obj else "jsonl"
    if b'"log_history"' in head:
        return "trainer_state"
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except (ValueError, OSError):
        doc = None
    if isinstance(doc, dict) and "log_history" in doc:
        return "trainer_state"
    raise RecordError(
        "a JSON file that is neither JSON lines (one object per line) nor a Hugging Face "
        "trainer_state.json (no 'log_history' key); pass format=...",
        path=p,
    )


def _looks_like_wandb(header_line: str) -> bool:
    fields = _split_header(header_line, ",")
    return len(fields) >= 2 and fields[0] == "Step" and all(" - " in f for f in fields[1:])


# -- shared helpers ----------------------------------------------------------------------------


def _read_text(p: Path) -> str:
    """The file as text (UTF-8, BOM dropped, universal newlines); errors name file and line."""
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RecordError(f"cannot read: {exc.strerror or exc}", path=p) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RecordError(
            f"not UTF-8 text (byte {exc.start}); a binary file? pass format=...",
            path=p,
            line=line,
        ) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _as_number(v: Any) -> float | None:
    """A JSON value as a float (``None`` -> NaN); ``None`` if it is not a number."""
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        return float(v)
    except OverflowError:  # an integer beyond the float range
        return None


def _int_steps(raw: FloatArray, where: _Where, path: Path, what: str) -> IntArray:
    """Float step values -> int64, checking they are whole numbers >= 0."""
    bad = np.flatnonzero(~np.isfinite(raw) | (raw != np.round(raw)) | (raw < 0) | (raw > 2**53))
    if bad.size:
        i = int(bad[0])
        v = float(raw[i])
        problem = "negative" if v < 0 else "too large" if v > 2**53 else "not a whole number"
        raise RecordError(f"{what} {v!r} is {problem}", path=path, **where(i))
    return raw.astype(np.int64)


def _order_steps(
    steps: IntArray, values: dict[str, FloatArray], where: _Where, path: Path
) -> tuple[IntArray, dict[str, FloatArray], dict[str, Any]]:
    """Sort out repeated steps: the last value of a step wins; a step may only go back to a
    step logged before (a resumed run logging some steps again), else the file is malformed.

    Returns the strictly increasing steps, the matching values and meta entries.
    """
    d = np.diff(steps)
    if not np.any(d <= 0):
        return steps, values, {}
    back = np.flatnonzero(d <= 0) + 1
    uniq, first = np.unique(steps, return_index=True)
    first_seen = first[np.searchsorted(uniq, steps[back])]
    unexplained = back[first_seen >= back]
    if unexplained.size:
        i = int(unexplained[0])
        raise RecordError(
            f"step {int(steps[i])} follows step {int(steps[i - 1])}: steps must increase "
            "(a resumed run may only repeat steps it logged before)",
            path=path,
            **where(i),
        )
    rev_uniq, rev_idx = np.unique(steps[::-1], return_index=True)
    last = steps.size - 1 - rev_idx
    repeated = int(steps.size - rev_uniq.size)
    counts = np.bincount(np.searchsorted(rev_uniq, steps))
    n_steps = int(np.count_nonzero(counts > 1))
    meta: dict[str, Any] = {
        "repeated_steps": n_steps,
        "notes": [
            f"{n_steps} step(s) logged more than once (first: step {int(rev_uniq[counts > 1][0])}; "
            f"{repeated} earlier value(s) replaced by the last one logged)"
        ],
    }
    return rev_uniq.astype(np.int64), {k: v[last] for k, v in values.items()}, meta


def _make_record(
    p: Path,
    steps: IntArray,
    values: dict[str, FloatArray],
    meta: dict[str, Any],
    where: _Where,
) -> GradNormRecord:
    if steps.size == 0:
        raise RecordError("no rows with a value", path=p)
    steps, values, extra = _order_steps(steps, values, where, p)
    notes = [*meta.pop("notes", []), *extra.pop("notes", [])]
    meta.update(extra)
    if steps.size >= 2:
        gaps, counts = np.unique(np.diff(steps), return_counts=True)
        meta["stride"] = int(gaps[np.argmax(counts)])
    else:
        meta["stride"] = 1
    if notes:
        meta["notes"] = notes
    return GradNormRecord(steps=steps, values=values, source=str(p), meta=meta)


def _pick(
    candidates: Sequence[str],
    wanted: str | None,
    p: Path,
    what: str,
    *,
    line: int | None = None,
    aliases: Mapping[str, str] | None = None,
) -> str:
    """Choose one series: the one named ``wanted``; else the only candidate; else a default name."""
    if wanted is not None:
        if wanted in candidates:
            return wanted
        if aliases and wanted in aliases:
            return aliases[wanted]
        raise RecordError(
            f"no {what} {wanted!r}; the {what}s are {list(candidates)}",
            path=p,
            line=line,
            key=wanted,
        )
    if len(candidates) == 1:
        return candidates[0]
    for name in DEFAULT_NAMES:
        if name in candidates:
            return name
    if not candidates:
        raise RecordError(f"no numeric {what} holding gradient norms", path=p, line=line)
    raise RecordError(
        f"several {what}s {list(candidates)}: choose one with column=... (--column)",
        path=p,
        line=line,
    )


def _find_step(names: Sequence[str]) -> int | None:
    lowered = [n.lower() for n in names]
    for s in STEP_NAMES:
        if s in lowered:
            return lowered.index(s)
    return None


# -- CSV ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Table:
    """A parsed delimited file: one float column per header name (``None`` for a text column),
    with ``present`` masks (``None`` = every cell filled) and the line number of every row
    (``None`` on the fast path, which does not keep them)."""

    names: list[str]
    header_line: int | None
    columns: list[FloatArray | None]
    present: list[npt.NDArray[np.bool_] | None]
    lines: IntArray | None
    text_at: dict[int, tuple[int, str]]  # text column -> (line, first text cell)
    rows: int

    @property
    def n(self) -> int:
        return self.rows

    def has_values(self, j: int) -> bool:
        """Column ``j`` is numeric and has at least one filled cell."""
        mask = self.present[j]
        return self.columns[j] is not None and (mask is None or bool(mask.any()))

    def where(self, i: int) -> dict[str, Any]:
        if self.lines is None:
            raise _NeedLines
        return {"line": int(self.lines[i])}


def _split_header(line: str, delimiter: str) -> list[str]:
    return [f.strip() for f in next(csv.reader([line], delimiter=delimiter))]


def _sniff_delimiter(line: str) -> str:
    for d in ("\t", ",", ";"):
        if d in line:
            return d
    return ","


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


@dataclasses.dataclass
class _CsvText:
    """The text of a delimited file split into header and body, ready for either parser."""

    header: list[str] | None  # None: headerless
    header_line: int | None
    delimiter: str
    first_body_line: int  # 1-based line number of the first body line
    body: str
    own_format: bool  # this library's ``step,<kind>...`` format
    to_end: bool = True  # the body runs to the end of the file (no cut-off line removed)


def _split_csv_text(p: Path, text: str) -> _CsvText:
    # find the header (the first line that is neither blank nor a '#' comment) without
    # splitting the whole text: a million-line body is handed to the parser as one string
    pos, k = 0, 0
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end]
        if line.strip() and not line.lstrip().startswith("#"):
            break
        pos, k = end + 1, k + 1
    else:
        raise RecordError("empty file", path=p)
    first = line
    body_start = min(end + 1, len(text))
    delimiter = _sniff_delimiter(first)
    try:
        fields = _split_header(first, delimiter)
    except csv.Error as exc:
        raise RecordError(f"cannot read the header: {exc}", path=p, line=k + 1) from None
    if all(_is_number(f) for f in fields):
        if len(fields) != 1:
            raise RecordError(
                f"no header and {len(fields)} columns; add a header line naming the columns "
                "(e.g. step,l2) or keep a single column of norms",
                path=p,
                line=k + 1,
            )
        return _CsvText(None, None, delimiter, k + 1, text[pos:], own_format=False)
    seen: set[str] = set()
    for f in fields:
        if not f:
            raise RecordError("an empty column name in the header", path=p, line=k + 1)
        if f in seen:
            raise RecordError(f"column {f!r} appears twice", path=p, line=k + 1, key=f)
        seen.add(f)
    own = k == 0 and delimiter == "," and first.startswith("step,") and '"' not in first
    body_end = len(text)
    if own and not text.endswith("\n"):
        last_nl = text.rfind("\n")
        if last_nl >= body_start - 1 and text[last_nl + 1 :].strip():
            cut = text.count("\n") + 1
            warnings.warn(
                f"{p}, line {cut}: dropped the last line {text[last_nl + 1 :]!r}: it has no "
                "end of line, so the writer was stopped in the middle of it",
                UserWarning,
                stacklevel=6,  # the caller of read_record
            )
            body_end = last_nl + 1
    body = text[body_start:body_end] if body_start < body_end else ""
    return _CsvText(
        fields, k + 1, delimiter, k + 2, body, own_format=own, to_end=body_end == len(text)
    )


def _fast_table(p: Path, ct: _CsvText) -> _Table | None:
    """Rectangular files without gaps via numpy's C parser; ``None`` when anything is unusual.

    Columns whose first cell is text are left out (as the line-by-line parser would leave them).
    """
    ncol = 1 if ct.header is None else len(ct.header)
    if not ct.body or ct.body.isspace():
        return None
    nl = ct.body.find("\n")
    first = ct.body[: nl if nl >= 0 else len(ct.body)]
    try:
        cells = next(csv.reader([first], delimiter=ct.delimiter))
    except (csv.Error, StopIteration):
        return None
    if len(cells) != ncol or not first.strip():
        return None
    text_cols = [j for j, c in enumerate(cells) if c.strip() and not _is_number(c.strip())]
    if ct.header is None and text_cols:
        return None
    use = [j for j in range(ncol) if j not in text_cols]
    if not use:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # numpy's reader is quickest on the file itself; the text serves a cut file
            arr = np.loadtxt(
                p if ct.to_end else io.StringIO(ct.body),
                skiprows=ct.first_body_line - 1 if ct.to_end else 0,
                encoding="utf-8",
                delimiter=ct.delimiter,
                dtype=np.float64,
                ndmin=2,
                comments=None,
                quotechar='"',
                usecols=use if text_cols else None,
            )
    except (ValueError, TypeError, OverflowError, UserWarning):
        return None  # the line-by-line parser will say what is wrong, and where
    if arr.shape[1] != len(use):
        return None
    columns: list[FloatArray | None] = [None] * ncol
    for i, j in enumerate(use):
        columns[j] = np.ascontiguousarray(arr[:, i])
    names = [""] if ct.header is None else list(ct.header)
    first_line = ct.first_body_line
    return _Table(
        names=names,
        header_line=ct.header_line,
        columns=columns,
        present=[None] * ncol,
        lines=None,
        text_at={j: (first_line, cells[j].strip()) for j in text_cols},
        rows=int(arr.shape[0]),
    )


def _slow_table(p: Path, ct: _CsvText) -> _Table:
    """Line by line, keeping line numbers, to accept gaps and text and to name bad lines."""
    ncol = 1 if ct.header is None else len(ct.header)
    names = [""] if ct.header is None else list(ct.header)
    cells: list[list[float]] = [[] for _ in range(ncol)]
    filled: list[list[bool]] = [[] for _ in range(ncol)]
    kind: list[str | None] = [None] * ncol  # "num" | "text" | None (not decided yet)
    text_at: dict[int, tuple[int, str]] = {}
    line_numbers: list[int] = []
    d = ct.delimiter
    for i, line in enumerate(ct.body.split("\n"), start=ct.first_body_line):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if '"' in line:
            try:
                fields = next(csv.reader([line], delimiter=d))
            except csv.Error as exc:
                raise RecordError(f"cannot split the line: {exc}", path=p, line=i) from None
        else:
            fields = line.split(d)
        if len(fields) != ncol:
            hint = f" (header: {d.join(names)})" if ct.header is not None else ""
            raise RecordError(
                f"expected {ncol} field(s){hint}, got {len(fields)}: {line!r}", path=p, line=i
            )
        line_numbers.append(i)
        for j, raw in enumerate(fields):
            s = raw.strip()
            if not s:
                cells[j].append(math.nan)
                filled[j].append(False)
                continue
            if kind[j] == "text":
                cells[j].append(math.nan)
                filled[j].append(False)
                continue
            try:
                x = float(s)
            except ValueError:
                if kind[j] is None and ct.header is not None:
                    kind[j] = "text"
                    text_at[j] = (i, s)
                    cells[j].append(math.nan)
                    filled[j].append(False)
                    continue
                col = f"column {names[j]!r}" if ct.header is not None else "the column"
                hint = ""
                if d == ";" and "," in s and _is_number(s.replace(",", ".")):
                    hint = " (a decimal comma? use '.' as decimal point)"
                raise RecordError(
                    f"not a number: {s!r} in {col}{hint}",
                    path=p,
                    line=i,
                    key=None if ct.header is None else names[j],
                ) from None
            kind[j] = "num"
            cells[j].append(x)
            filled[j].append(True)
    columns: list[FloatArray | None] = []
    present: list[npt.NDArray[np.bool_] | None] = []
    for j in range(ncol):
        if kind[j] == "text":
            columns.append(None)
            present.append(None)
        else:
            columns.append(np.asarray(cells[j], dtype=np.float64))
            mask = np.asarray(filled[j], dtype=bool)
            present.append(None if mask.all() else mask)
    return _Table(
        names=names,
        header_line=ct.header_line,
        columns=columns,
        present=present,
        lines=np.asarray(line_numbers, dtype=np.int64),
        text_at=text_at,
        rows=len(line_numbers),
    )


def _assemble_csv(p: Path, ct: _CsvText, t: _Table, wanted: str | None, fmt: str) -> GradNormRecord:
    n = t.n
    if n == 0:
        raise RecordError("no data rows" if ct.header is not None else "empty file", path=p)
    meta: dict[str, Any] = {"format": fmt}
    if ct.header is None:
        v = t.columns[0]
        assert v is not None
        kind = wanted or "l2"
        mask = t.present[0]
        steps = np.arange(n, dtype=np.int64)
        values = {kind: v}
        meta["steps"] = "row index"
        if mask is not None:
            steps, values = steps[mask], {kind: v[mask]}
        return _make_record(p, steps, values, meta, t.where)
    names = t.names
    js = _find_step(names)
    if js is not None and t.columns[js] is None:
        line, cell = t.text_at[js]
        raise RecordError(f"not a step number: {cell!r}", path=p, line=line, key=names[js])
    numeric = [names[j] for j in range(len(names)) if j != js and t.has_values(j)]
    if wanted is not None and wanted in names and wanted not in numeric:
        j = names.index(wanted)
        if j == js:
            raise RecordError(f"{wanted!r} is the step column", path=p, key=wanted)
        if j in t.text_at:
            line, cell = t.text_at[j]
            raise RecordError(f"not a number: {cell!r}", path=p, line=line, key=wanted)
        raise RecordError("the column has no values", path=p, key=wanted)
    candidates = [c for c in numeric if c.lower() not in _INDEX_NAMES]
    own_format = js == 0 and names[0] == "step" and not t.text_at
    if wanted is None and own_format and len(candidates) > 1:
        # our own format (step,l2,l1): every kind; a row with some cells empty keeps them as NaN
        chosen = candidates
    else:
        chosen = [
            _pick(
                candidates if wanted is None else numeric,
                wanted,
                p,
                "column",
                line=t.header_line,
            )
        ]
    idx = [names.index(c) for c in chosen]
    cols = [t.columns[j] for j in idx]
    masks = [t.present[j] for j in idx]
    if any(m is not None for m in masks):
        keep = np.zeros(n, dtype=bool)
        for m in masks:
            keep |= np.ones(n, dtype=bool) if m is None else m
    else:
        keep = None
    if js is None:
        raw_steps = np.arange(n, dtype=np.float64)
        meta["steps"] = "row index"
    else:
        sc = t.columns[js]
        assert sc is not None
        sm = t.present[js]
        if sm is not None:
            i = int(np.flatnonzero(~sm)[0])
            raise RecordError("no step in this row", path=p, key=names[js], **t.where(i))
        raw_steps = sc
        meta["step_column"] = names[js]
    if len(chosen) == 1:
        meta["column"] = chosen[0]
    rows = np.flatnonzero(keep) if keep is not None else None

    def where(i: int) -> dict[str, Any]:
        return t.where(int(rows[i]) if rows is not None else i)

    if rows is not None:
        raw_steps = raw_steps[rows]
        cols = [c[rows] for c in cols if c is not None]
    steps = _int_steps(raw_steps, where, p, "step")
    values = {c: np.asarray(v, dtype=np.float64) for c, v in zip(chosen, cols, strict=True)}
    return _make_record(p, steps, values, meta, where)


def _read_delimited(p: Path) -> tuple[_CsvText, _Table]:
    text = _read_text(p)
    if not text or text.isspace():
        raise RecordError("empty file", path=p)
    ct = _split_csv_text(p, text)
    table = _fast_table(p, ct)
    return ct, table if table is not None else _slow_table(p, ct)


def _with_lines(p: Path, build: Callable[[_CsvText, _Table], GradNormRecord]) -> GradNormRecord:
    """Build from the fast table; if an error needs line numbers, parse again keeping them."""
    ct, table = _read_delimited(p)
    try:
        return build(ct, table)
    except _NeedLines:
        pass  # (outside the handler, so that the error raised next carries no context)
    return build(ct, _slow_table(p, ct))


def _read_csv(p: Path, *, column: str | None = None, tag: str | None = None) -> GradNormRecord:
    wanted = column if column is not None else tag
    return _with_lines(p, lambda ct, t: _assemble_csv(p, ct, t, wanted, "csv"))


# -- Weights & Biases --------------------------------------------------------------------------


def _read_wandb(p: Path, *, column: str | None = None, tag: str | None = None) -> GradNormRecord:
    wanted = column if column is not None else tag

    def build(ct: _CsvText, t: _Table) -> GradNormRecord:
        if ct.header is None or ct.header[0] != "Step" or ct.delimiter != ",":
            raise RecordError(
                'not a W&B CSV export: the header should start with "Step" followed by '
                '"<run> - <metric>" columns',
                path=p,
                line=ct.header_line or 1,
            )
        series = [h for h in ct.header[1:] if not (h.endswith("__MIN") or h.endswith("__MAX"))]
        runs: dict[str, list[str]] = {}
        metrics: dict[str, list[str]] = {}
        for h in series:
            run, _, metric = h.rpartition(" - ")
            runs.setdefault(run, []).append(h)
            metrics.setdefault(metric, []).append(h)
        aliases = {k: v[0] for d in (runs, metrics) for k, v in d.items() if len(v) == 1}
        choice = wanted
        defaults = [h for h in series if h.rpartition(" - ")[2] in DEFAULT_NAMES]
        if choice is None and len(series) > 1 and len(defaults) == 1:
            choice = defaults[0]
        if choice is None and len(series) > 1:
            raise RecordError(
                f"{len(series)} series in this export {series}: choose one with column=... "
                "(the full column name, its run or its metric)",
                path=p,
                line=ct.header_line,
            )
        name = _pick(series, choice, p, "series", line=ct.header_line, aliases=aliases)
        run, _, metric = name.rpartition(" - ")
        j = t.names.index(name)
        col = t.columns[j]
        if col is None:
            line, cell = t.text_at[j]
            raise RecordError(f"not a number: {cell!r}", path=p, line=line, key=name)
        sc = t.columns[0]
        if sc is None:
            line, cell = t.text_at[0]
            raise RecordError(f"not a step number: {cell!r}", path=p, line=line, key="Step")
        sm = t.present[0]
        if sm is not None:
            i = int(np.flatnonzero(~sm)[0])
            raise RecordError("no step in this row", path=p, key="Step", **t.where(i))
        mask = t.present[j]
        rows = np.flatnonzero(mask) if mask is not None else None

        def where(i: int) -> dict[str, Any]:
            return t.where(int(rows[i]) if rows is not None else i)

        raw_steps, vals = (sc, col) if rows is None else (sc[rows], col[rows])
        steps = _int_steps(raw_steps, where, p, "step")
        meta = {"format": "wandb", "column": name, "run": run, "metric": metric}
        return _make_record(p, steps, {metric: vals}, meta, where)

    return _with_lines(p, build)


# -- JSON lines --------------------------------------------------------------------------------


def _read_jsonl(p: Path, *, column: str | None = None, tag: str | None = None) -> GradNormRecord:
    wanted = column if column is not None else tag
    text = _read_text(p)
    objs: list[tuple[int, dict[str, Any]]] = []
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(
                f"not JSON ({exc.msg} at column {exc.colno}); a cut-off line?", path=p, line=i
            ) from None
        if not isinstance(obj, dict):
            raise RecordError(f"expected a JSON object, got {type(obj).__name__}", path=p, line=i)
        objs.append((i, obj))
    if not objs:
        raise RecordError("empty file", path=p)
    step_keys = set(STEP_NAMES)
    numeric: dict[str, None] = {}
    for _, obj in objs:
        for k, v in obj.items():
            if k.lower() not in step_keys and _as_number(v) is not None and v is not None:
                numeric.setdefault(k, None)
    if wanted is not None:
        key = wanted
    else:
        candidates = [k for k in numeric if k.lower() not in _INDEX_NAMES]
        key = _pick(candidates, None, p, "key")
    steps: list[float] = []
    vals: list[float] = []
    lines: list[int] = []
    step_key: str | None = None
    skipped = 0
    for i, obj in objs:
        if key not in obj:
            skipped += 1
            continue
        x = _as_number(obj[key])
        if x is None:
            raise RecordError(f"not a number: {obj[key]!r:.40}", path=p, line=i, key=key)
        if not lines:
            found = _find_step(list(obj))
            step_key = None if found is None else list(obj)[found]
        if step_key is not None:
            if step_key not in obj:
                raise RecordError(
                    f"no {step_key!r} in this line, though earlier lines have one",
                    path=p,
                    line=i,
                    key=step_key,
                )
            s = _as_number(obj[step_key])
            if s is None or obj[step_key] is None:
                raise RecordError(
                    f"not a step number: {obj[step_key]!r:.40}", path=p, line=i, key=step_key
                )
            steps.append(s)
        else:
            steps.append(float(len(lines)))
        vals.append(x)
        lines.append(i)
    if not lines:
        raise RecordError(
            f"no line has the key {key!r}; numeric keys seen: {list(numeric)}", path=p, key=key
        )

    def where(i: int) -> dict[str, Any]:
        return {"line": lines[i], "key": step_key}

    st = _int_steps(np.asarray(steps, dtype=np.float64), where, p, "step")
    meta: dict[str, Any] = {"format": "jsonl", "column": key, "skipped": skipped}
    meta["step_key"] = step_key if step_key is not None else "line index"
    if skipped:
        meta["notes"] = [f"{skipped} line(s) without {key!r} skipped"]
    return _make_record(p, st, {key: np.asarray(vals, dtype=np.float64)}, meta, where)


# -- Hugging Face trainer_state.json -----------------------------------------------------------


def _read_trainer_state(
    p: Path, *, column: str | None = None, tag: str | None = None
) -> GradNormRecord:
    if p.is_dir():
        p = p / "trainer_state.json"
    key = column if column is not None else (tag if tag is not None else "grad_norm")
    text = _read_text(p)
    if not text.strip():
        raise RecordError("empty file", path=p)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"not valid JSON ({exc.msg} at column {exc.colno}); a truncated file?",
            path=p,
            line=exc.lineno,
        ) from None
    if not isinstance(doc, dict) or "log_history" not in doc:
        raise RecordError(
            "not a Hugging Face trainer_state.json: no top-level 'log_history'",
            path=p,
            key="log_history",
        )
    history = doc["log_history"]
    if not isinstance(history, list):
        raise RecordError("'log_history' is not a list", path=p, key="log_history")
    steps: list[float] = []
    vals: list[float] = []
    keys: list[str] = []
    skipped = 0
    for i, entry in enumerate(history):
        where_i = f"log_history[{i}]"
        if not isinstance(entry, dict):
            raise RecordError(f"expected an object, got {entry!r:.40}", path=p, key=where_i)
        if key not in entry:
            skipped += 1
            continue
        x = _as_number(entry[key])
        if x is None:
            raise RecordError(f"not a number: {entry[key]!r:.40}", path=p, key=f"{where_i}.{key}")
        s = _as_number(entry.get("step"))
        if s is None or entry.get("step") is None:
            raise RecordError(
                f"no step number (got {entry.get('step')!r:.40})", path=p, key=f"{where_i}.step"
            )
        if s < 1:
            raise RecordError(
                f"step {s!r}: Hugging Face logs after an optimizer step, so steps start at 1",
                path=p,
                key=f"{where_i}.step",
            )
        steps.append(s - 1.0)
        vals.append(x)
        keys.append(where_i)
    if not keys:
        raise RecordError(
            f"no log_history entry has {key!r} ({len(history)} entries; was gradient clipping "
            "off, or logging_steps larger than the run?)",
            path=p,
            key="log_history",
        )

    def where(i: int) -> dict[str, Any]:
        return {"key": f"{keys[i]}.step"}

    st = _int_steps(np.asarray(steps, dtype=np.float64) + 1.0, where, p, "step") - 1
    kind = "l2" if key == "grad_norm" else key
    meta: dict[str, Any] = {
        "format": "trainer_state",
        "column": key,
        "step_offset": -1,
        "skipped": skipped,
        "notes": ["Hugging Face step s (optimizer steps completed) read as step t = s - 1"],
    }
    for k in ("logging_steps", "global_step", "max_steps"):
        if k in doc:
            meta[k] = doc[k]
    return _make_record(p, st, {kind: np.asarray(vals, dtype=np.float64)}, meta, where)


# -- .npy --------------------------------------------------------------------------------------


def _read_npy(p: Path, *, column: str | None = None, tag: str | None = None) -> GradNormRecord:
    wanted = column if column is not None else tag
    try:
        with open(p, "rb") as f:
            magic = f.read(8)
    except OSError as exc:
        raise RecordError(f"cannot read: {exc.strerror or exc}", path=p) from None
    if not magic:
        raise RecordError("empty file", path=p)
    if magic.startswith(b"PK\x03\x04"):
        raise RecordError(
            "an .npz archive; save a single array with np.save(path, norms) instead", path=p
        )
    if not magic.startswith(b"\x93NUMPY"):
        what = "a Python pickle" if magic[:1] == b"\x80" else "no NPY header"
        raise RecordError(
            f"not a .npy file ({what}); only arrays written by np.save are read, and pickles "
            "are never loaded",
            path=p,
        )
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as exc:
        msg = str(exc)
        if "pickle" in msg.lower() or "object" in msg.lower():
            raise RecordError(
                "an object array (Python objects need unpickling, which is never done); save "
                "numbers: np.save(path, np.asarray(norms, dtype=float))",
                path=p,
                key="dtype",
            ) from None
        raise RecordError(f"cannot read the array: {msg}", path=p) from None
    except (OSError, EOFError) as exc:
        raise RecordError(f"cannot read the array: {exc}", path=p) from None
    if not isinstance(arr, np.ndarray):
        raise RecordError(f"not an array but {type(arr).__name__}", path=p)
    meta: dict[str, Any] = {"format": "npy", "steps": "row index"}

    def where(i: int) -> dict[str, Any]:
        return {"key": f"row {i}"}

    def check_dtype(dt: np.dtype[Any], key: str) -> None:
        if dt.kind not in "iuf":
            raise RecordError(
                f"dtype {dt} is not a real number type (integers or floats)", path=p, key=key
            )

    if arr.dtype.names is not None:
        if arr.ndim != 1:
            raise RecordError(f"a structured array must be 1-D, got shape {arr.shape}", path=p)
        fields = list(arr.dtype.names)
        js = _find_step(fields)
        if js is not None:
            check_dtype(arr.dtype[fields[js]], f"field {fields[js]!r}")
        numeric = [f for i, f in enumerate(fields) if i != js and arr.dtype[f].kind in "iuf"]
        if wanted is not None:
            if wanted in fields and wanted not in numeric:
                check_dtype(arr.dtype[wanted], f"field {wanted!r}")
            chosen = [_pick(numeric, wanted, p, "field")]
        else:
            chosen = numeric or [_pick(numeric, None, p, "field")]
        if arr.size == 0:
            raise RecordError("empty array", path=p)
        values = {f: np.asarray(arr[f], dtype=np.float64) for f in chosen}
        if js is not None:
            steps = _int_steps(
                np.asarray(arr[fields[js]], dtype=np.float64),
                lambda i: {"key": f"field {fields[js]!r}, row {i}"},
                p,
                "step",
            )
            meta["steps"] = f"field {fields[js]!r}"
        else:
            steps = np.arange(arr.size, dtype=np.int64)
        return _make_record(p, steps, values, meta, where)

    check_dtype(arr.dtype, "dtype")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        if arr.size == 0:
            raise RecordError("empty array", path=p)
        kind = wanted or "l2"
        return _make_record(
            p,
            np.arange(arr.size, dtype=np.int64),
            {kind: np.asarray(arr, dtype=np.float64)},
            meta,
            where,
        )
    if arr.ndim != 2:
        raise RecordError(
            f"shape {arr.shape}: expected a 1-D array of norms or a 2-D array (steps, kinds)",
            path=p,
            key="shape",
        )
    if arr.shape[0] == 0:
        raise RecordError("empty array", path=p)
    names = [f"col{j}" for j in range(arr.shape[1])]
    aliases = {str(j): f"col{j}" for j in range(arr.shape[1])}
    chosen = names if wanted is None else [_pick(names, wanted, p, "column", aliases=aliases)]
    values = {c: np.asarray(arr[:, names.index(c)], dtype=np.float64) for c in chosen}
    return _make_record(p, np.arange(arr.shape[0], dtype=np.int64), values, meta, where)


# -- TensorBoard -------------------------------------------------------------------------------


def _tb_scalars(p: Path, f: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar series in one event file: tag -> (steps, values) in file order."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import (
            EventFileLoader,
        )
        from tensorboard.util import tensor_util
    except ImportError:
        raise RecordError(
            f"reading TensorBoard event files needs the tensorboard package: {_TB_HINT}",
            path=p,
        ) from None
    out: dict[str, tuple[list[int], list[float]]] = {}
    events = 0
    try:
        for event in EventFileLoader(str(f)).Load():
            events += 1
            if not event.HasField("summary"):
                continue
            for v in event.summary.value:
                which = v.WhichOneof("value")
                if which == "simple_value":
                    x = float(v.simple_value)
                elif which == "tensor":
                    plugin = v.metadata.plugin_data.plugin_name
                    if plugin and plugin != "scalars":
                        continue
                    a = tensor_util.make_ndarray(v.tensor)
                    if a.size != 1 or a.dtype.kind not in "iuf":
                        continue
                    x = float(a.reshape(-1)[0])
                else:
                    continue
                steps, vals = out.setdefault(v.tag, ([], []))
                steps.append(int(event.step))
                vals.append(x)
    except Exception as exc:  # the reader raises assorted protobuf / IO errors
        raise RecordError(
            f"cannot read the event file: {type(exc).__name__}: {exc}", path=f
        ) from None
    if events == 0:
        raise RecordError(
            "no TensorBoard event could be read (an empty, corrupt or foreign file)", path=f
        )
    return out


def _read_tensorboard(
    p: Path, *, column: str | None = None, tag: str | None = None
) -> GradNormRecord:
    wanted = tag if tag is not None else column
    if p.is_dir():
        files = _event_files(p)
        if not files:
            raise RecordError("no TensorBoard event files (events.out.tfevents.*) here", path=p)
        dirs = sorted({f.parent for f in files})
        if len(dirs) > 1:
            rel = [str(d.relative_to(p)) for d in dirs]
            raise RecordError(
                f"event files of {len(dirs)} runs {rel}: pass one run's directory", path=p
            )
    else:
        files = [p]

    def order(f: Path) -> tuple[int, str]:
        parts = f.name.split(".")
        stamp = parts[3] if len(parts) > 3 and parts[3].isdigit() else "0"
        return int(stamp), f.name

    files.sort(key=order)
    per_file = [(f, _tb_scalars(p, f)) for f in files]
    tags: dict[str, None] = {}
    for _, series in per_file:
        for t in series:
            tags.setdefault(t, None)
    if not tags:
        raise RecordError("no scalar summaries in the event file(s)", path=p)
    if wanted is None:
        found = [t for t in DEFAULT_NAMES if t in tags]
        if not found:
            raise RecordError(
                f"no scalar tagged {' or '.join(DEFAULT_NAMES)}; choose one with tag=... "
                f"(--tag) among {sorted(tags)}",
                path=p,
            )
        name = found[0]
    elif wanted in tags:
        name = wanted
    else:
        raise RecordError(
            f"no scalar tag {wanted!r}; the tags are {sorted(tags)}", path=p, key=wanted
        )
    all_steps: list[IntArray] = []
    all_vals: list[FloatArray] = []
    notes: list[str] = []
    repeated = 0
    for f, series in per_file:
        if name not in series:
            continue
        s_raw, v_raw = series[name]
        st = np.asarray(s_raw, dtype=np.int64)
        bad = np.flatnonzero(st < 0)
        if bad.size:
            raise RecordError(
                f"negative step {int(st[bad[0]])}", path=f, key=f"tag {name!r}, event {int(bad[0])}"
            )

        def where(i: int, s: IntArray = st) -> dict[str, Any]:
            return {"key": f"tag {name!r}, step {int(s[i])} (event {i})"}

        st2, vals, extra = _order_steps(st, {name: np.asarray(v_raw, np.float64)}, where, f)
        repeated += int(extra.get("repeated_steps", 0))
        notes.extend(extra.get("notes", []))
        all_steps.append(st2)
        all_vals.append(vals[name])
    steps = np.concatenate(all_steps)
    values = np.concatenate(all_vals)
    if len(all_steps) > 1:
        # several files of one run (a restart): where they overlap, the later file wins
        rev_uniq, rev_idx = np.unique(steps[::-1], return_index=True)
        overlap = steps.size - rev_uniq.size
        if overlap:
            notes.append(f"{overlap} step(s) in several event files: the latest file's value kept")
            repeated += overlap
        last = steps.size - 1 - rev_idx
        steps, values = rev_uniq.astype(np.int64), values[last]
    meta: dict[str, Any] = {
        "format": "tensorboard",
        "tag": name,
        "files": [str(f) for f in files],
        "notes": notes,
    }
    if repeated:
        meta["repeated_steps"] = repeated

    def where_all(i: int) -> dict[str, Any]:  # pragma: no cover - steps are already in order
        return {"key": f"tag {name!r}"}

    return _make_record(p, steps, {name: values}, meta, where_all)


_READERS: dict[str, Callable[..., GradNormRecord]] = {
    "csv": _read_csv,
    "npy": _read_npy,
    "wandb": _read_wandb,
    "jsonl": _read_jsonl,
    "trainer_state": _read_trainer_state,
    "tensorboard": _read_tensorboard,
}
