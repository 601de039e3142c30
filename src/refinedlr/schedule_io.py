"""Saving and loading schedules: ``.json`` holds the spec and its fingerprint, ``.npy`` the
multipliers of steps ``0 .. T-1``, ``.csv`` ``step,multiplier`` rows. Loading reads only regular
files, within the budgets of :mod:`refinedlr.limits`, and never unpickles anything.

Example:
    >>> import os, tempfile
    >>> from refinedlr.schedules import Cosine
    >>> d = tempfile.mkdtemp()
    >>> s = Cosine(total_steps=8, warmup=2)
    >>> save_schedule(s, os.path.join(d, "s.json"))
    >>> load_schedule(os.path.join(d, "s.json")) == s
    True
    >>> save_schedule(s, os.path.join(d, "s.npy"))
    >>> load_schedule(os.path.join(d, "s.npy")).preview().round(3)
    array([0.333, 0.667, 1.   , 0.933, 0.75 , 0.5  , 0.25 , 0.067])
"""

from __future__ import annotations

import json
import os
import warnings
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import limits
from .fileio import atomic_write
from .records import RecordError
from .records.inputs import decode_text, lines_of, read_bytes, read_json
from .records.npy import load_array
from .records.record import brief, elide
from .registry import get_schedule, schedule_from_spec
from .schedules import Schedule, ScheduleError, Tabulated

__all__ = ["FORMAT_VERSION", "SCHEDULE_SUFFIXES", "as_schedule", "load_schedule", "save_schedule"]

#: File types a schedule is saved as and loaded from.
SCHEDULE_SUFFIXES = (".json", ".npy", ".csv")

FORMAT_VERSION = 1


def _suffix(p: Path) -> str:
    """The schedule file type of ``p`` (its suffix, lower case); an unknown one is refused."""
    suffix = p.suffix.lower()
    if suffix not in SCHEDULE_SUFFIXES:
        raise ScheduleError(
            f"{p}: unknown schedule file type {brief(suffix)!r}; use .json, .npy or .csv"
        )
    return suffix


def save_schedule(schedule: Schedule, path: str | os.PathLike[str]) -> None:
    """Write ``schedule`` to ``path``; the suffix (.json, .npy, .csv) chooses the format."""
    p = Path(path)
    suffix = _suffix(p)
    with atomic_write(p, binary=suffix == ".npy") as f:
        if suffix == ".json":
            doc = {"refinedlr_schedule": FORMAT_VERSION, "fingerprint": schedule.fingerprint()}
            f.write(json.dumps({**doc, "spec": schedule.to_spec()}, indent=1) + "\n")
        elif suffix == ".npy":
            np.save(f, schedule.preview(), allow_pickle=False)
        else:
            f.write("step,multiplier\n")
            f.writelines(f"{i},{v!r}\n" for i, v in enumerate(schedule.preview().tolist()))


def load_schedule(path: str | os.PathLike[str], total_steps: int | None = None) -> Schedule:
    """Read a schedule written by :func:`save_schedule` (or any array of multipliers), on its own
    horizon or on ``total_steps``; any problem with the file raises a ``ScheduleError`` naming it.
    """
    p = Path(path)
    if not p.exists():
        raise ScheduleError(f"{p}: no such schedule file")
    suffix = _suffix(p)
    try:
        if suffix == ".json":
            doc = read_json(p)
            if not isinstance(doc, dict):
                raise ScheduleError(f"expected a JSON object, got {type(doc).__name__}")
            schedule = schedule_from_spec(doc.get("spec", doc))  # also accept a bare spec
            stored = doc.get("fingerprint")
            if stored is not None and stored != schedule.fingerprint():
                warnings.warn(
                    f"{p}: the schedule's fingerprint {schedule.fingerprint()} differs from the "
                    f"one stored in the file ({brief(repr(stored), 40)}); the spec was edited "
                    "after it was saved",
                    stacklevel=2,
                )
        else:  # an .npy header is checked first; pickles are never loaded
            values = _read_csv_values(p) if suffix == ".csv" else load_array(p)
            if values.ndim != 1 or values.dtype.kind not in "fiu":
                got = f"{values.dtype} {brief(str(values.shape))}"
                raise ScheduleError(f"expected a 1-D numeric array, got {got}")
            source = {"source_file": str(p)}
            schedule = Tabulated(total_steps=len(values), values=values, provenance=source)
        return schedule if total_steps is None else schedule.with_horizon(total_steps)
    except RecordError as exc:  # the file could not be read: not regular, too large, not JSON
        raise ScheduleError(str(exc)) from None
    except ScheduleError as exc:  # every message names the file first
        if str(exc).startswith(f"{p}"):
            raise
        raise ScheduleError(f"{p}: {elide(str(exc))}") from None


def _read_csv_values(p: Path) -> np.ndarray[Any, Any]:
    text = decode_text(p, read_bytes(p))
    if text.count("\n") > limits.MAX_STEPS + 1:  # a header and a multiplier per step at most
        raise ScheduleError(
            f"{p}: more than {limits.MAX_STEPS + 1:,} lines, more steps than the limit of "
            f"{limits.MAX_STEPS:,} (raise refinedlr.limits.MAX_STEPS or --max-steps)"
        )
    col, values = None, array("d")
    for i, (_, line) in enumerate(lines_of(text), 1):
        if not line.strip():
            continue
        fields = line.split(",")
        if col is None:
            col, header = 0, [h.strip() for h in fields]
            try:
                [float(h) for h in header]
            except ValueError:  # a header: choose the column
                col = header.index("multiplier") if "multiplier" in header else len(header) - 1
                continue
        try:
            values.append(float(fields[col]))
        except (ValueError, IndexError):
            raise ScheduleError(
                f"{p}, line {i}: expected a number, got {brief(repr(line))}"
            ) from None
    if not values:
        raise ScheduleError(f"{p}: {'empty file' if not text.strip() else 'no values'}")
    return np.array(values, dtype=np.float64)


ScheduleLike = Schedule | str | os.PathLike[str] | Mapping[str, Any]


def as_schedule(
    schedule: ScheduleLike,
    total_steps: int | None = None,
    *,
    base_lr: float | None = None,
    **kwargs: Any,
) -> Schedule:
    """Whatever a user passes as a schedule, as a :class:`~refinedlr.schedules.Schedule` on
    ``total_steps``: a ``Schedule``, a spec mapping, a path for :func:`load_schedule`, or a name
    for :func:`get_schedule` with ``**kwargs`` and ``base_lr`` (``"refined"`` with ``path=FILE``
    loads a saved schedule, and takes ``warmup``).

    >>> as_schedule("linear", 4).preview()
    array([1.  , 0.75, 0.5 , 0.25])
    >>> as_schedule({"name": "linear", "total_steps": 4}, total_steps=2).preview()
    array([1. , 0.5])
    """
    if isinstance(schedule, Schedule):
        _no_kwargs(kwargs, "a Schedule")
        return _on_horizon(schedule, total_steps)
    if isinstance(schedule, Mapping):
        _no_kwargs(kwargs, "a spec")
        return _on_horizon(schedule_from_spec(schedule), total_steps)
    if isinstance(schedule, os.PathLike) or (
        isinstance(schedule, str) and schedule.lower().endswith(SCHEDULE_SUFFIXES)
    ):
        _no_kwargs(kwargs, "a schedule file")
        return load_schedule(schedule, total_steps)
    if isinstance(schedule, str):
        path = kwargs.pop("path", None)
        if path is not None:
            if schedule.strip().lower() not in ("refined", "tabulated"):
                raise ScheduleError(f"path= is for the 'refined' schedule, not {schedule!r}")
            warmup = kwargs.pop("warmup", 0)
            _no_kwargs(kwargs, "a schedule file")
            loaded = load_schedule(path, total_steps)
            if warmup and isinstance(loaded, Tabulated):
                return Tabulated(
                    total_steps=loaded.total_steps,
                    values=loaded.values,
                    provenance=loaded.provenance,
                    warmup=warmup,
                )
            return loaded
        return get_schedule(schedule, total_steps, base_lr=base_lr, **kwargs)
    raise ScheduleError(
        "a schedule is a refinedlr Schedule, a schedule name, a schedule file or a spec "
        f"mapping, got {type(schedule).__name__}"
    )


def _no_kwargs(kwargs: Mapping[str, Any], what: str) -> None:
    if kwargs:
        raise ScheduleError(
            f"schedule arguments {sorted(kwargs)} are only for a schedule given by name, not {what}"
        )


def _on_horizon(schedule: Schedule, total_steps: int | None) -> Schedule:
    if total_steps is None or total_steps == schedule.total_steps:
        return schedule
    return schedule.with_horizon(total_steps)
