"""Reading a user's file: its text (UTF-8, with errors naming the line) and JSON numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .record import RecordError

__all__ = ["json_number", "read_text"]


def read_text(p: Path) -> str:
    """The file as text (UTF-8, BOM dropped, universal newlines); errors name file and line."""
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RecordError(f"cannot read: {exc.strerror or exc}", path=p) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RecordError(
            f"not UTF-8 text (byte {exc.start}); a binary file? pass format=...",
            path=p,
            line=line,
        ) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def json_number(v: Any) -> float | None:
    """A JSON value as a float (``None`` -> NaN); ``None`` if it is not a number."""
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        return float(v)
    except OverflowError:  # an integer beyond the float range
        return None
