"""Hugging Face ``trainer_state.json``: ``log_history[*]["grad_norm"]``, HF's step ``s`` read as
0-based optimizer step ``t = s - 1``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .inputs import json_float, read_json
from .record import GradNormRecord, RecordError, brief
from .steps import ReadRequest, make_record

__all__ = ["read_trainer_state"]


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
    return make_record(p, st, values, meta, lambda i: {"key": keys[i]}, **request.placement(-1, hf))
