"""JSON logs. JSON lines: one object per line, parsed one at a time, keeping only the chosen key's
numbers (a first pass without ``column=`` keeps only the numeric keys' names), so memory stays
proportional to the rows. Hugging Face ``trainer_state.json``: ``log_history[*]["grad_norm"]``, HF's
step ``s`` read as 0-based optimizer step ``t = s - 1``."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from .inputs import json_float, json_number, lines_of, load_json, read_json, read_text
from .record import GradNormRecord, RecordError, brief, brief_list, norm_type
from .series import INDEX_NAMES, pick_series
from .steps import STEP_NAMES, ReadRequest, find_step_column, make_record


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
    i = 0
    for i, obj in _objects(p, text):
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
    if not i:
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
        at: dict[str, Any] = {"line": i, "key": step_key}
        if step_key is None:
            steps.append(float(len(lines)))
        elif step_key not in obj:
            raise RecordError(
                f"no {step_key!r} in this line, though earlier lines have one", path=p, **at
            )
        else:
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
    return make_record(p, st, values, meta, lambda i: {"line": lines[i], "key": step_key}, place)


def read_trainer_state(p: Path, request: ReadRequest) -> GradNormRecord:
    """A ``trainer_state.json`` (see :func:`~refinedlr.records.read_record`); ``step_offset``
    replaces HF's convention ``t = s - 1`` (``-1``) when given."""
    if p.is_dir():
        p = p / "trainer_state.json"
    key = request.wanted if request.wanted is not None else "grad_norm"
    doc = read_json(p)
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
            raise RecordError(
                f"expected an object, got {brief(repr(entry), 40)}", path=p, key=where_i
            )
        if key not in entry:
            skipped += 1
            continue
        x = json_float(entry[key], "not a number", p, key=f"{where_i}.{key}")
        s = json_float(entry.get("step"), "not a step number", p, null=False, key=f"{where_i}.step")
        if s < 1 and request.step_offset is None:
            raise RecordError(
                f"step {s!r}: Hugging Face logs after an optimizer step, so steps start at 1",
                path=p,
                key=f"{where_i}.step",
            )
        steps.append(s)
        vals.append(x)
        keys.append(f"{where_i}.step")
    if not keys:
        raise RecordError(
            f"no log_history entry has {brief(key)!r} ({len(history)} entries; was gradient clipping "
            "off, or logging_steps larger than the run?)",
            path=p,
            key="log_history",
        )
    kind = "l2" if key == "grad_norm" else key
    meta: dict[str, Any] = {"format": "trainer_state", "column": key, "skipped": skipped}
    if key == "grad_norm":
        meta["norm"] = "l2"
        meta["notes"] = [
            "grad_norm is Hugging Face's l2 norm of the whole gradient, before clipping"
        ]
    meta.update({k: doc[k] for k in ("logging_steps", "global_step", "max_steps") if k in doc})
    hf = "Hugging Face step s (optimizer steps completed) read as step t = s - 1"
    values, st = {kind: np.asarray(vals, dtype=np.float64)}, np.asarray(steps, dtype=np.float64)
    return make_record(p, st, values, meta, lambda i: {"key": keys[i]}, request.placement(-1, hf))
