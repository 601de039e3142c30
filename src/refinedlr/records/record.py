"""The in-memory gradient-norm record (:class:`GradNormRecord`), the error every reader and
writer raises (:class:`RecordError`) and the warning for a norm kind the record does not hold
(:class:`NormKindWarning`)."""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import limits
from .kinds import norm_kind

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LIBRARY_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def brief(text: str, width: int = 60) -> str:
    """``text`` cut to about ``width`` characters (``...`` marks the cut).

    >>> brief("x" * 100, 10)
    'xxxxxxx...'
    """
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."


def elide(text: str, width: int = 200) -> str:
    """``text`` with its middle cut out when it is longer than ``width``.

    >>> elide("a" * 10 + "b" * 10, 11)
    'aaaaaaa ... b'
    """
    if len(text) <= width:
        return text
    head = width * 2 // 3
    return f"{text[:head]} ... {text[len(text) - max(width - head - 5, 1) :]}"


def brief_list(names: Sequence[str], shown: int = 6) -> str:
    """The first ``shown`` of ``names`` as a list, and how many more there are.

    >>> brief_list(["a", "b", "c"], 2)
    "['a', 'b', ... (1 more)]"
    """
    head = ", ".join(repr(brief(n, 40)) for n in names[:shown])
    more = f", ... ({len(names) - shown:,} more)" if len(names) > shown else ""
    return f"[{head}{more}]"


def norm_type(kind: str) -> str | None:
    """``"l2"`` or ``"l1"`` when the name ``kind`` says which norm a series holds, else ``None``.

    >>> norm_type("l1"), norm_type("train/grad_norm"), norm_type("loss")
    ('l1', 'l2', None)
    """
    return norm_kind(kind)  # by its name: see refinedlr.records.kinds


def step_stride(steps: IntArray) -> int:
    """The most common gap between ``steps`` (1 for fewer than two)."""
    if steps.size < 2:
        return 1
    gaps, counts = np.unique(np.diff(steps), return_counts=True)
    return int(gaps[np.argmax(counts)])


def warn_at_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn, attributed to the first caller outside the refinedlr package (``skip_file_prefixes``
    of Python 3.12, on every version)."""
    frame = sys._getframe(1)
    level = 2  # 1 is this function; 2 its caller
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


class NormKindWarning(UserWarning):
    """A norm kind was asked for that the record does not hold, and another kind was used."""


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
        self.path, self.line, self.key = None if path is None else str(path), line, key
        where = [self.path, None if line is None else f"line {line}", key and brief(key, 80)]
        if self.path is not None:
            message = ", ".join(w for w in where if w is not None) + ": " + message
        super().__init__(message)


class MissingExtraError(RecordError):
    """Reading this log needs an optional dependency that is not installed (``extra`` names the
    ``refinedlr[...]`` extra that provides it)."""

    def __init__(self, message: str, *, extra: str, path: str | os.PathLike[str] | None = None):
        super().__init__(message, path=path)
        self.extra = extra


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
        src, steps = self.source, np.asarray(self.steps)
        kind = steps.dtype.kind if steps.size else "i"
        if steps.ndim != 1:
            raise RecordError(f"steps must be 1-D, got shape {steps.shape}", path=src)
        if kind not in "iuf" or (kind == "f" and not np.all(steps == np.round(steps))):
            raise RecordError("steps must be integers", path=src)
        if kind in "uf" and np.any(np.abs(steps) >= 2**63):
            raise RecordError("steps must be below 2^63", path=src)
        steps = steps.astype(np.int64)
        if steps.size and int(steps[0]) < 0:
            raise RecordError(f"steps must be >= 0, got {int(steps[0])}", path=src)
        bad = np.flatnonzero(np.diff(steps) <= 0)
        if bad.size:
            i = int(bad[0])
            raise RecordError(
                f"steps must increase strictly; step {int(steps[i + 1])} follows {int(steps[i])} "
                f"(row {i + 1})",
                path=src,
            )
        if not self.values:
            raise RecordError("a record needs at least one norm kind", path=src)
        vals = {str(k): np.array(v, dtype=np.float64) for k, v in self.values.items()}
        for k, arr in vals.items():
            if arr.shape != steps.shape:
                n = arr.shape[0] if arr.ndim else 0
                raise RecordError(f"{n} values for {steps.size} steps", path=src, key=k)
            arr.setflags(write=False)
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
        return step_stride(self.steps)

    def resolve_kind(self, kind: str | None = None) -> str:
        """``kind`` if present; else the only kind (a :class:`NormKindWarning` when its name says it
        holds the other of ``"l1"``/``"l2"``); else an error listing them."""
        if kind is not None and kind in self.values:
            return kind
        if len(self.values) == 1:
            only, held = self.kinds[0], norm_type(self.kinds[0])
            if kind in ("l1", "l2") and held is not None and held != kind:
                warn_at_caller(self._kind_mismatch(kind, only, held), NormKindWarning)
            return only
        if kind is not None:
            raise RecordError(
                f"no norm kind {brief(kind)!r} in this record; it has {brief_list(self.kinds)}",
                path=self.source,
            )
        raise RecordError(
            f"the record has several norm kinds {brief_list(self.kinds)}: choose one",
            path=self.source,
        )

    def _kind_mismatch(self, kind: str, only: str, held: str) -> str:
        name = "" if only == held else f" (its series {only!r})"
        how = (
            'record l1 norms while training, e.g. record_grad_norms(trainer, kinds=("l2", '
            '"l1")) or GradNormRecorder(..., kinds=("l2", "l1"))'
            if kind == "l1"
            else 'record l2 norms while training (kinds=("l2", ...))'
        )
        return (
            f"{self.source}: holds {held} norms{name}, not {kind}: using the {held} values where "
            f"{kind} was asked for; to refine with {kind} norms, {how}"
        )

    def norms(self, kind: str | None = None) -> FloatArray:
        """Values of ``kind`` on every step ``0 .. total_steps-1``: a logged step keeps its value
        (``NaN`` is missing), the others are interpolated between the nearest logged finite
        values (before the first, its value). A record too long for
        :func:`refinedlr.limits.steps_problem` is refused before anything is allocated.

        >>> GradNormRecord.from_arrays({"l2": [4.0, 2.0]}, steps=[1, 3]).norms()
        array([4., 4., 3., 2.])
        >>> GradNormRecord.from_arrays({"l2": [4.0, 2.0]}, steps=[0, 10**12]).norms()
        Traceback (most recent call last):
        ...
        refinedlr.records.record.RecordError: <memory>: the record spans 1,000,000,000,001 steps, ...
        """
        v, n = self.values[self.resolve_kind(kind)], self.total_steps
        problem = limits.steps_problem(n)
        if problem is not None:
            raise RecordError(f"the record spans {problem}", path=self.source)
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
        kinds = [brief(k, 40) for k in self.kinds[:8]]
        more = f" and {len(self.kinds) - 8:,} more" if len(self.kinds) > 8 else ""
        parts.append(f"kinds {', '.join(kinds)}{more}")
        if self.coverage < 1.0 and len(self):
            first, missing = int(self.steps[0]), self.total_steps - len(self)
            if self.stride > 1:
                parts.append(
                    f"sparse: one row every {self.stride} steps ({self.coverage:.1%} of steps "
                    "logged; the rest are interpolated)"
                )
            elif missing > first:
                parts.append(f"{missing - first} step(s) without a row, interpolated")
            if first:
                parts.append(f"no row before step {first}: steps 0..{first - 1} take its value")
        for k, v in list(self.values.items())[:8]:
            if missing := int(np.count_nonzero(~np.isfinite(v))):
                parts.append(f"{missing} missing {brief(k, 40)} value(s)")
        parts.extend(str(note) for note in self.meta.get("notes", ()))
        return "; ".join(parts)
