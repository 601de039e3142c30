"""TensorBoard event files (``events.out.tfevents.*``) or a run directory holding them; needs the
optional ``tensorboard`` package, imported only when an event file is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .record import FloatArray, GradNormRecord, IntArray, MissingExtraError, RecordError
from .series import DEFAULT_NAMES
from .steps import ReadRequest, make_record, order_steps

__all__ = ["event_files", "one_based_offset", "read_tensorboard"]

_TB_HINT = "pip install 'refinedlr[tensorboard]'"


def event_files(d: Path) -> list[Path]:
    """TensorBoard event files in ``d`` (or, if none there, anywhere below it)."""
    direct = sorted(f for f in d.glob("events.out.tfevents.*") if f.is_file())
    if direct:
        return direct
    return sorted(f for f in d.rglob("events.out.tfevents.*") if f.is_file())


def _tb_scalars(p: Path, f: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar series in one event file: tag -> (steps, values) in file order."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import (
            EventFileLoader,
        )
        from tensorboard.util import tensor_util
    except ImportError:
        raise MissingExtraError(
            f"reading TensorBoard event files needs the tensorboard package: {_TB_HINT}",
            path=p,
            extra="tensorboard",
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


def one_based_offset(steps: IntArray) -> tuple[int, str | None]:
    """``(-1, why)`` when ``steps`` (in order) look 1-based, else ``(0, None)``.

    Hugging Face's TensorBoard callback writes the number of optimizer steps *completed*, so a run
    logged every ``k`` steps has its values at steps ``k, 2k, ...`` (``1, 2, ...`` for ``k = 1``),
    which belong to 0-based steps ``k-1, 2k-1, ...``. A log read as 1-based: its first step
    ``k >= 1`` divides every step. A 0-based log that logs every ``k`` steps starts at 0 (or, as
    Lightning's, at ``k - 1``), so it is left as written.

    >>> one_based_offset(np.array([10, 20, 30]))[0], one_based_offset(np.array([0, 10, 20]))[0]
    (-1, 0)
    """
    if steps.size == 0 or int(steps[0]) < 1:
        return 0, None
    k = int(steps[0])
    if np.any(steps % k):
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
    if p.is_dir():
        files = event_files(p)
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

        st2, vals, extra = order_steps(st, {name: np.asarray(v_raw, np.float64)}, where, f)
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

    def where_all(i: int) -> dict[str, Any]:
        return {"key": f"tag {name!r}, step {int(steps[i])}"}

    offset, reason = (0, None) if request.step_offset is not None else one_based_offset(steps)
    return make_record(
        p,
        steps,
        {name: values},
        meta,
        where_all,
        step_offset=offset if request.step_offset is None else request.step_offset,
        offset_reason=reason,
        max_steps=request.max_steps,
    )
