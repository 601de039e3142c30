"""The planning evidence's CSV tables: rows of dicts written and read back.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> write_rows(path, [{"a": 1, "b": 0.5}, {"a": 2, "c": float("nan")}])
>>> read_rows(path)
[{'a': '1', 'b': '0.5', 'c': ''}, {'a': '2', 'b': '', 'c': ''}]
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from refinedlr_bench.tables import write_csv

__all__ = ["read_rows", "write_rows"]


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.10g}"
    return v


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of dicts as a CSV (columns in order of first appearance; missing cells empty; NaN
    empty; floats with 10 significant digits), written atomically."""
    header: dict[str, None] = {}
    for r in rows:
        header.update(dict.fromkeys(r))
    cols = list(header)
    write_csv(path, cols, ([_cell(r.get(c, "")) for c in cols] for r in rows))


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV written by :func:`write_rows` (``[]`` if there is no such file)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
