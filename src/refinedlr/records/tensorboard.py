"""TensorBoard event files (``events.out.tfevents.*``) or a run directory holding them; needs the
optional ``tensorboard`` package, imported only when an event file is read."""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from .inputs import open_regular
from .record import GradNormRecord, IntArray, MissingExtraError, RecordError, brief, brief_list
from .series import DEFAULT_NAMES
from .steps import ReadRequest, last_wins, make_record, order_steps


def event_files(d: Path) -> list[Path]:
    """TensorBoard event files in ``d`` (or, if none there, anywhere below it)."""
    direct = sorted(f for f in d.glob("events.out.tfevents.*") if f.is_file())
    return direct or sorted(f for f in d.rglob("events.out.tfevents.*") if f.is_file())


def _why_cut(f: Path, events: int) -> str | None:
    """Why the reader stopped after ``events`` events of the file ``f`` (``None``: at its end), from
    the TFRecord framing (an 8-byte length, a 4-byte checksum, the data, a 4-byte checksum)."""
    n = pos = 0
    with open_regular(f) as fh:
        size = os.fstat(fh.fileno()).st_size
        while pos + 12 <= size:
            fh.seek(pos)
            (length,) = struct.unpack("<Q", fh.read(8))
            if pos + 16 + length > size:
                break
            n, pos = n + 1, pos + 16 + length
    if n > events:
        return (
            f"{n} complete event(s), but the reader stopped after {events} (a damaged event: its "
            "checksum fails)"
        )
    if pos < size:
        return "cut off in the middle of an event (a writer stopped mid-write, or a partial copy)"
    return None


class _Scalars:
    """The scalars of one event file: values of the tags kept (tag -> (steps, values), in file
    order), the names of every scalar tag, and why the file was not read to its end (``cut``)."""

    def __init__(self, p: Path, f: Path, keep: Callable[[str], bool]) -> None:
        try:
            from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
            from tensorboard.util import tensor_util
        except ImportError:
            raise MissingExtraError(
                "reading TensorBoard event files needs the tensorboard package: "
                "pip install 'refinedlr[tensorboard]'",
                path=p,
                extra="tensorboard",
            ) from None
        self.file = f
        self.series: dict[str, tuple[array[int], array[float]]] = {}
        self.tags: dict[str, None] = {}
        budget = limits.max_lines()
        kept = self.events = 0
        try:
            for event in EventFileLoader(str(f)).Load():
                self.events += 1
                for v in event.summary.value if event.HasField("summary") else ():
                    x = _scalar(v, tensor_util)
                    if x is None:
                        continue
                    if v.tag not in self.tags and len(self.tags) >= limits.MAX_COLUMNS:
                        raise RecordError(
                            f"more than {limits.MAX_COLUMNS:,} scalar tags: not a log", path=f
                        )
                    self.tags[v.tag] = None
                    if not keep(v.tag):
                        continue
                    kept += 1
                    if kept > budget:
                        raise RecordError(
                            f"more than {budget:,} values of the tag(s) read, over the size "
                            "limit for a log (raise refinedlr.limits.MAX_STEPS or --max-steps "
                            "if it really is one)",
                            path=f,
                        )
                    steps, vals = self.series.setdefault(v.tag, (array("q"), array("d")))
                    steps.append(int(event.step))
                    vals.append(x)
        except RecordError:
            raise
        except Exception as exc:  # the reader raises assorted protobuf / IO errors
            raise RecordError(
                f"cannot read the event file: {type(exc).__name__}: {brief(str(exc), 80)}", path=f
            ) from None
        if self.events == 0:
            raise RecordError(
                "no TensorBoard event could be read (an empty, corrupt or foreign file)", path=f
            )
        self.cut = _why_cut(f, self.events)

    def cut_warning(self, name: str, steps: IntArray) -> str:
        read = (
            f"{steps.size} value(s) of the tag {name!r} read, steps {int(steps.min())}.."
            f"{int(steps.max())} as written"
            if steps.size
            else f"no value of the tag {name!r} before the cut"
        )
        return (
            f"{self.file}: the event file is not read to its end: {self.cut}; read the "
            f"{self.events} event(s) before that: {read}; the steps after it are missing"
        )


def _scalar(v: Any, tensor_util: Any) -> float | None:
    """The value of a summary value that is a scalar (a simple value or a one-element numeric
    tensor of the scalars plugin), else ``None``."""
    which = v.WhichOneof("value")
    if which == "simple_value":
        return float(v.simple_value)
    plugin = v.metadata.plugin_data.plugin_name
    if which != "tensor" or (plugin and plugin != "scalars"):
        return None
    a = tensor_util.make_ndarray(v.tensor)
    return float(a.reshape(-1)[0]) if a.size == 1 and a.dtype.kind in "iuf" else None


def one_based_offset(steps: IntArray) -> tuple[int, str | None]:
    """``(-1, why)`` when ``steps`` (in order) look 1-based, else ``(0, None)``.

    Hugging Face's TensorBoard callback logs the optimizer steps *completed* (``k, 2k, ...`` for
    0-based steps ``k-1, 2k-1, ...``): a log is 1-based when its first step ``k >= 1`` divides every
    step (a 0-based log starts at 0 or, as Lightning's, at ``k - 1``).

    >>> one_based_offset(np.array([10, 20, 30]))[0], one_based_offset(np.array([0, 10, 20]))[0]
    (-1, 0)
    """
    k = int(steps[0]) if steps.size else 0
    if k < 1 or np.any(steps % k):
        return 0, None
    every = "every step" if k == 1 else f"a multiple of {k}"
    return -1, (
        f"the steps start at {k} and each is {every}: read as 1-based (Hugging Face's "
        "TensorBoard callback logs the number of optimizer steps completed) and shifted by -1 "
        "(step_offset=0 or --step-offset 0 keeps the steps as written)"
    )


def read_tensorboard(p: Path, request: ReadRequest) -> GradNormRecord:
    """TensorBoard scalars (see :func:`~refinedlr.records.read_record`, format
    ``tensorboard``); without ``step_offset`` a 1-based log is shifted (:func:`one_based_offset`)."""
    wanted = request.tag if request.tag is not None else request.column
    files = event_files(p) if p.is_dir() else [p]
    if not files:
        raise RecordError("no TensorBoard event files (events.out.tfevents.*) here", path=p)
    dirs = sorted({f.parent for f in files})
    if len(dirs) > 1:
        rel = [str(d.relative_to(p)) for d in dirs]
        raise RecordError(
            f"event files of {len(dirs)} runs {rel}: pass one run's directory", path=p
        )

    def order(f: Path) -> tuple[int, str]:  # by the time stamp in the name
        parts = f.name.split(".")
        return int(parts[3] if len(parts) > 3 and parts[3].isdigit() else "0"), f.name

    files.sort(key=order)
    keep = DEFAULT_NAMES.__contains__ if wanted is None else wanted.__eq__  # the tags kept
    per_file = [_Scalars(p, f, keep) for f in files]
    tags = {t: None for scalars in per_file for t in scalars.tags}
    if not tags:
        raise RecordError("no scalar summaries in the event file(s)", path=p)
    name = next((t for t in DEFAULT_NAMES if t in tags), None) if wanted is None else wanted
    if name is None:
        raise RecordError(
            f"no scalar tagged {' or '.join(DEFAULT_NAMES)}; choose one with tag=... "
            f"(--tag) among {brief_list(sorted(tags))}",
            path=p,
        )
    if name not in tags:
        raise RecordError(
            f"no scalar tag {brief(name)!r}; the tags are {brief_list(sorted(tags))}",
            path=p,
            key=name,
        )
    all_steps, all_vals, notes, warned, repeated = [], [], [], [], 0
    for scalars in per_file:
        s_raw, v_raw = scalars.series.get(name, (array("q"), array("d")))
        st = np.frombuffer(s_raw, dtype=np.int64) if s_raw else np.zeros(0, np.int64)
        if scalars.cut:
            warned.append(scalars.cut_warning(name, st))
        bad = np.flatnonzero(st < 0)
        if bad.size:
            at = f"tag {name!r}, event {int(bad[0])}"
            raise RecordError(f"negative step {int(st[bad[0]])}", path=scalars.file, key=at)

        def where(i: int, s: IntArray = st) -> dict[str, Any]:
            return {"key": f"tag {name!r}, step {int(s[i])} (event {i})"}

        st, vals, extra = order_steps(st, {name: np.array(v_raw, np.float64)}, where, scalars.file)
        repeated += int(extra.get("repeated_steps", 0))
        notes.extend(extra.get("notes", []))
        all_steps.append(st)
        all_vals.append(vals[name])
    steps, values = np.concatenate(all_steps), np.concatenate(all_vals)
    uniq, last = last_wins(steps)  # a restart's files overlap: the later file wins
    if steps.size > uniq.size:
        notes.append(
            f"{steps.size - uniq.size} step(s) in several event files: the latest file's value kept"
        )
        repeated += steps.size - uniq.size
    meta: dict[str, Any] = {"format": "tensorboard", "tag": name, "files": [str(f) for f in files]}
    meta["notes"] = notes
    if warned:
        meta["warnings"] = warned
    if repeated:
        meta["repeated_steps"] = repeated
    steps, values = uniq, values[last]

    def where_all(i: int) -> dict[str, Any]:
        return {"key": f"tag {name!r}, step {int(steps[i])}"}

    place = request.placement(*one_based_offset(steps))
    return make_record(p, steps, {name: values}, meta, where_all, place)
