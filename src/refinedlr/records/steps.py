"""Steps shared by every reader: which column holds them, turning them into whole numbers,
ordering them (a resumed run logs some steps again; the last value wins), building the record."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import limits
from .record import FloatArray, GradNormRecord, IntArray, RecordError, step_stride

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

#: How a reader places its steps: the shift of the steps as written, and why (or ``None``).
Placement = tuple[int, str | None]
#: ``where(i)``: the location of the ``i``-th value for an error message (``line=``, ``key=``).
Where = Callable[[int], dict[str, Any]]


def find_step_column(names: Sequence[str]) -> int | None:
    """Index of the step column among ``names`` (the first of :data:`STEP_NAMES`), or ``None``."""
    lowered = [n.lower() for n in names]
    return next((lowered.index(s) for s in STEP_NAMES if s in lowered), None)


def int_steps(raw: FloatArray, where: Where, path: Path) -> IntArray:
    """Float step values -> int64, checking they are whole numbers >= 0."""
    bad = np.flatnonzero(~np.isfinite(raw) | (raw != np.round(raw)) | (raw < 0) | (raw > 2**53))
    if bad.size:
        i = int(bad[0])
        v = float(raw[i])
        problem = "negative" if v < 0 else "too large" if v > 2**53 else "not a whole number"
        raise RecordError(f"step {v!r} is {problem}", path=path, **where(i))
    return raw.astype(np.int64)


def order_steps(
    steps: IntArray, values: dict[str, FloatArray], where: Where, path: Path
) -> tuple[IntArray, dict[str, FloatArray], dict[str, Any]]:
    """The strictly increasing steps, their values (the last value of a step wins) and meta
    entries; a step may only go back to a step logged before (a resumed run logging again)."""
    back = np.flatnonzero(np.diff(steps) <= 0) + 1
    if not back.size:
        return steps, values, {}
    uniq, first = np.unique(steps, return_index=True)
    unexplained = back[first[np.searchsorted(uniq, steps[back])] >= back]
    if unexplained.size:
        i = int(unexplained[0])
        raise RecordError(
            f"step {int(steps[i])} follows step {int(steps[i - 1])}: steps must increase "
            "(a resumed run may only repeat steps it logged before)",
            path=path,
            **where(i),
        )
    uniq, last = last_wins(steps)
    counts = np.bincount(np.searchsorted(uniq, steps))
    n_steps = int(np.count_nonzero(counts > 1))
    note = (
        f"{n_steps} step(s) logged more than once (first: step {int(uniq[counts > 1][0])}; "
        f"{steps.size - uniq.size} earlier value(s) replaced by the last one logged)"
    )
    meta = {"repeated_steps": n_steps, "notes": [note]}
    return uniq, {k: v[last] for k, v in values.items()}, meta


def last_wins(steps: IntArray) -> tuple[IntArray, IntArray]:
    """The distinct ``steps`` in order, and the index of the last occurrence of each."""
    uniq, rev_idx = np.unique(steps[::-1], return_index=True)
    return uniq.astype(np.int64), steps.size - 1 - rev_idx


@dataclasses.dataclass(frozen=True)
class ReadRequest:
    """What the caller of :func:`~refinedlr.records.read_record` asked of a reader."""

    column: str | None = None
    tag: str | None = None
    step_offset: int | None = None

    @property
    def wanted(self) -> str | None:
        """The series asked for by name (``column``, else ``tag``)."""
        return self.column if self.column is not None else self.tag

    def placement(self, default: int = 0, reason: str | None = None) -> Placement:
        """The shift asked for, else the format's own convention (``default``, for ``reason``)."""
        return (default, reason) if self.step_offset is None else (self.step_offset, None)


def make_record(
    p: Path,
    steps: npt.NDArray[Any],
    values: dict[str, FloatArray],
    meta: dict[str, Any],
    where: Where,
    place: Placement = (0, None),
) -> GradNormRecord:
    """The record of a reader: ``steps`` (as read, in file order; floats must be whole) shifted by
    ``place``'s offset (its reason in the notes), checked against the step limit before anything
    is allocated (in Python integers: no offset overflows), repeated steps resolved."""
    if steps.size == 0:
        raise RecordError("no rows with a value", path=p)
    if steps.dtype.kind == "f":
        steps = int_steps(steps, where, p)
    step_offset, offset_reason = place
    notes = list(meta.pop("notes", []))
    first, last = int(steps.min()), int(steps.max())
    if first + step_offset < 0:
        i = int(np.flatnonzero(steps < min(-step_offset, 2**62))[0])
        raise RecordError(
            f"step {int(steps[i])} shifted by the step offset {step_offset} is negative",
            path=p,
            **where(i),
        )
    if last + step_offset >= limits.MAX_STEPS:  # reading is cheap; norms() checks memory
        i = int(np.flatnonzero(steps >= max(limits.MAX_STEPS - step_offset, 0))[0])
        s = int(steps[i]) + step_offset
        raise RecordError(
            f"step {s}: more than the limit of {limits.MAX_STEPS:,} steps (raise "
            "refinedlr.limits.MAX_STEPS or --max-steps if the run was that long)",
            path=p,
            **where(i),
        )
    if step_offset:
        steps = steps + step_offset
        meta["step_offset"] = step_offset
        notes.append(offset_reason or f"steps as written shifted by {step_offset:+d} (step_offset)")
    steps, values, extra = order_steps(steps, values, where, p)
    notes.extend(extra.pop("notes", []))
    meta.update(extra)
    meta["stride"] = step_stride(steps)
    if notes:
        meta["notes"] = notes
    return GradNormRecord(steps=steps, values=values, source=str(p), meta=meta)
