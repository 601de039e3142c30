"""JSON lines logs: one object per line. Lines are parsed one at a time and only the chosen key's
numbers kept (a first pass without ``column=`` keeps only the numeric keys' names), so memory stays
proportional to the rows, whatever the lines hold."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from .inputs import json_float, json_number, lines_of, load_json, read_text
from .record import GradNormRecord, RecordError, brief, brief_list, norm_type
from .series import INDEX_NAMES, pick_series
from .steps import STEP_NAMES, ReadRequest, find_step_column, make_record

__all__ = ["read_jsonl"]


def _objects(p: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line, parsed one at a time."""
    for i, (_, line) in enumerate(lines_of(text), 1):
        if line.strip():
            obj = load_json(p, line, line=i)
            if not isinstance(obj, dict):
                what = type(obj).__name__
                raise RecordError(f"expected a JSON object, got {what}", path=p, line=i)
            yield i, obj


def _numeric_keys(p: Path, text: str) -> tuple[list[str], dict[str, str]]:
    """The keys holding a number on some line (in order of appearance), and the keys named as a
    gradient norm that hold none (with what they hold)."""
    step_keys = set(STEP_NAMES)
    numeric: dict[str, None] = {}
    other: dict[str, str] = {}
    lines = 0
    for i, obj in _objects(p, text):
        lines += 1
        for k, v in obj.items():
            if k in numeric or k.lower() in step_keys:
                continue
            if v is not None and json_number(v) is not None:
                numeric[k] = None
                other.pop(k, None)
                if len(numeric) > limits.MAX_COLUMNS:
                    raise RecordError(
                        f"more than {limits.MAX_COLUMNS:,} numeric keys: not a log", path=p
                    )
            elif k not in other and norm_type(k) is not None:
                other[k] = f"line {i}: {brief(repr(v), 40)}"
    if not lines:
        raise RecordError("empty file", path=p)
    return list(numeric), other


def read_jsonl(p: Path, request: ReadRequest) -> GradNormRecord:
    """A JSON lines log (see :func:`~refinedlr.records.read_record`, format ``jsonl``)."""
    text = read_text(p)
    if request.wanted is not None:
        key = request.wanted
    else:
        numeric, unparsed = _numeric_keys(p, text)
        candidates = [k for k in numeric if k.lower() not in INDEX_NAMES]
        key = pick_series(candidates, None, p, "key", unparsed=unparsed)
    steps, vals, lines = array("d"), array("d"), array("q")
    step_key: str | None = None
    skipped = 0
    for i, obj in _objects(p, text):
        if key not in obj:
            skipped += 1
            continue
        x = json_float(obj[key], "not a number", p, line=i, key=key)
        if not lines:
            found = find_step_column(list(obj))
            step_key = None if found is None else list(obj)[found]
        if step_key is None:
            steps.append(float(len(lines)))
        elif step_key not in obj:
            raise RecordError(
                f"no {step_key!r} in this line, though earlier lines have one",
                path=p,
                line=i,
                key=step_key,
            )
        else:
            at = {"line": i, "key": step_key}
            steps.append(json_float(obj[step_key], "not a step number", p, null=False, **at))
        vals.append(x)
        lines.append(i)
    if not lines:
        if skipped == 0:
            raise RecordError("empty file", path=p)
        seen = brief_list(_numeric_keys(p, text)[0])
        raise RecordError(
            f"no line has the key {brief(key)!r}; numeric keys seen: {seen}", path=p, key=key
        )
    del text
    meta: dict[str, Any] = {"format": "jsonl", "column": key, "skipped": skipped}
    meta["step_key"] = step_key if step_key is not None else "line index"
    if skipped:
        meta["notes"] = [f"{skipped} line(s) without {brief(key)!r} skipped"]
    values, place = {key: np.array(vals, dtype=np.float64)}, request.placement()
    st = np.frombuffer(steps, dtype=np.float64)
    return make_record(p, st, values, meta, lambda i: {"line": lines[i], "key": step_key}, **place)
