"""JSON lines logs: one JSON object per line (a step-like key, and the norm under some key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .inputs import json_number, read_text
from .record import GradNormRecord, RecordError
from .series import INDEX_NAMES, pick_series
from .steps import STEP_NAMES, ReadRequest, find_step_column, int_steps, make_record

__all__ = ["read_jsonl"]


def read_jsonl(p: Path, request: ReadRequest) -> GradNormRecord:
    """A JSON lines log (see :func:`~refinedlr.records.read_record`, format ``jsonl``)."""
    wanted = request.wanted
    text = read_text(p)
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
            if k.lower() not in step_keys and json_number(v) is not None and v is not None:
                numeric.setdefault(k, None)
    if wanted is not None:
        key = wanted
    else:
        candidates = [k for k in numeric if k.lower() not in INDEX_NAMES]
        key = pick_series(candidates, None, p, "key")
    steps: list[float] = []
    vals: list[float] = []
    lines: list[int] = []
    step_key: str | None = None
    skipped = 0
    for i, obj in objs:
        if key not in obj:
            skipped += 1
            continue
        x = json_number(obj[key])
        if x is None:
            raise RecordError(f"not a number: {obj[key]!r:.40}", path=p, line=i, key=key)
        if not lines:
            found = find_step_column(list(obj))
            step_key = None if found is None else list(obj)[found]
        if step_key is not None:
            if step_key not in obj:
                raise RecordError(
                    f"no {step_key!r} in this line, though earlier lines have one",
                    path=p,
                    line=i,
                    key=step_key,
                )
            s = json_number(obj[step_key])
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

    st = int_steps(np.asarray(steps, dtype=np.float64), where, p, "step")
    meta: dict[str, Any] = {"format": "jsonl", "column": key, "skipped": skipped}
    meta["step_key"] = step_key if step_key is not None else "line index"
    if skipped:
        meta["notes"] = [f"{skipped} line(s) without {key!r} skipped"]
    values = {key: np.asarray(vals, dtype=np.float64)}
    return make_record(p, st, values, meta, where, **request.placement())
