"""Saving and loading schedules: a JSON spec, or the array of multipliers as ``.npy`` or CSV.

* ``.json`` holds the spec (:meth:`~refinedlr.schedules.Schedule.to_spec`: name, horizon,
  parameters, and for tabulated schedules the table and its provenance) plus the fingerprint.
* ``.npy`` holds exactly the multipliers of steps ``0 .. T-1`` (float64, one per step), loaded
  without pickles.
* ``.csv`` holds ``step,multiplier`` rows, one per step.

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
from pathlib import Path
from typing import Any

import numpy as np

from .schedules import Schedule, ScheduleError, Tabulated, schedule_from_spec

__all__ = ["FORMAT_VERSION", "load_schedule", "save_schedule"]

FORMAT_VERSION = 1


def save_schedule(schedule: Schedule, path: str | os.PathLike[str]) -> None:
    """Write ``schedule`` to ``path``; the suffix (.json, .npy, .csv) chooses the format."""
    p = Path(path)
    suffix = p.suffix.lower()
    p.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        doc: dict[str, Any] = {
            "refinedlr_schedule": FORMAT_VERSION,
            "fingerprint": schedule.fingerprint(),
            "spec": schedule.to_spec(),
        }
        p.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    elif suffix == ".npy":
        np.save(p, schedule.preview(), allow_pickle=False)
    elif suffix == ".csv":
        values = schedule.preview()
        with open(p, "w", encoding="utf-8") as f:
            f.write("step,multiplier\n")
            f.writelines(f"{i},{v!r}\n" for i, v in enumerate(values.tolist()))
    else:
        raise ScheduleError(f"{p}: unknown schedule file type {suffix!r}; use .json, .npy or .csv")


def load_schedule(path: str | os.PathLike[str], total_steps: int | None = None) -> Schedule:
    """Read a schedule written by :func:`save_schedule` (or any array of multipliers).

    ``total_steps`` puts the loaded schedule on another horizon (a tabulated schedule is resampled
    on normalised time); by default the file's own horizon is kept.
    """
    p = Path(path)
    if not p.exists():
        raise ScheduleError(f"{p}: no such schedule file")
    suffix = p.suffix.lower()
    schedule: Schedule
    if suffix == ".json":
        schedule = _load_json(p)
    elif suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise ScheduleError(f"{p}: not a plain numeric .npy array ({exc})") from None
        if arr.ndim != 1 or arr.dtype.kind not in "fiu":
            raise ScheduleError(f"{p}: expected a 1-D numeric array, got {arr.dtype} {arr.shape}")
        schedule = _tabulated(p, arr, {"source_file": str(p)})
    elif suffix == ".csv":
        schedule = _tabulated(p, _read_csv_values(p), {"source_file": str(p)})
    else:
        raise ScheduleError(f"{p}: unknown schedule file type {suffix!r}; use .json, .npy or .csv")
    if total_steps is not None:
        schedule = schedule.with_horizon(total_steps)
    return schedule


def _tabulated(p: Path, arr: np.ndarray[Any, Any], provenance: dict[str, Any]) -> Tabulated:
    try:
        return Tabulated(total_steps=len(arr), values=arr, provenance=provenance)
    except ScheduleError as exc:
        raise ScheduleError(f"{p}: {exc}") from None


def _load_json(p: Path) -> Schedule:
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScheduleError(f"{p}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise ScheduleError(f"{p}: expected a JSON object")
    spec = doc.get("spec", doc)  # also accept a bare spec
    try:
        schedule = schedule_from_spec(spec)
    except ScheduleError as exc:
        raise ScheduleError(f"{p}: {exc}") from None
    stored = doc.get("fingerprint")
    if stored is not None and stored != schedule.fingerprint():
        warnings.warn(
            f"{p}: the schedule's fingerprint {schedule.fingerprint()} differs from the one stored "
            f"in the file ({stored}); the spec was edited after it was saved",
            stacklevel=3,
        )
    return schedule


def _read_csv_values(p: Path) -> np.ndarray[Any, Any]:
    lines = p.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ScheduleError(f"{p}: empty file")
    start = 0
    col = 0
    header = [h.strip() for h in lines[0].split(",")]
    try:
        [float(h) for h in header]
    except ValueError:
        start = 1
        col = header.index("multiplier") if "multiplier" in header else len(header) - 1
    values: list[float] = []
    for i, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            values.append(float(fields[col]))
        except (ValueError, IndexError):
            raise ScheduleError(f"{p}, line {i}: expected a number, got {line!r}") from None
    if not values:
        raise ScheduleError(f"{p}: no values")
    return np.asarray(values, dtype=np.float64)
