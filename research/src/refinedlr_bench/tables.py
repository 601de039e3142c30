"""Markdown tables, CSV files and number formats shared by the suites' reports.

>>> print("\\n".join(markdown_table(["schedule", "ratio"], [["cosine", fmt_number(0.9123)]])))
| schedule | ratio |
|---|---|
| cosine | 0.912 |
>>> fmt_number(float("nan")), fmt_number(float("-inf")), fmt_number(None)
('–', '-∞', '–')
>>> fmt_number(float("nan"), ".4f", missing="n/a", infinity="inf")
'n/a'
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from refinedlr.fileio import atomic_write

from refinedlr_bench.stats import RatioCI

__all__ = [
    "OPTIMIZER_LABELS",
    "figure_list",
    "fmt_number",
    "fmt_ratio_ci",
    "markdown_table",
    "write_csv",
]

#: How the reports name the optimizers.
OPTIMIZER_LABELS = {"adam": "Adam", "sgd": "SGD"}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a markdown table: header, separator, one line per row."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def figure_list(figures: Sequence[tuple[str, str]]) -> list[str]:
    """A "Figures" section linking each ``(file, caption)`` (nothing for no figures).

    >>> figure_list([("a.png", "the first")])
    ['## Figures', '', '- [a.png](a.png): the first', '']
    """
    if not figures:
        return []
    return ["## Figures", "", *(f"- [{f}]({f}): {caption}" for f, caption in figures), ""]


def fmt_number(
    x: float | None, spec: str = ".3g", *, missing: str = "–", infinity: str = "∞"
) -> str:
    """``format(x, spec)``; ``missing`` for ``None`` or NaN; ``infinity`` (with a minus sign
    when negative) for infinities."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    if math.isinf(x):
        return infinity if x > 0 else "-" + infinity
    return format(x, spec)


def fmt_ratio_ci(r: RatioCI | None) -> str:
    """``ratio [low, high]`` with ``▼`` for a win (interval below 1) and ``▲`` for a loss.

    >>> from refinedlr_bench.stats import paired_log_ratio
    >>> fmt_ratio_ci(paired_log_ratio([1.0, 2.0, 4.0], [2.0, 4.0, 8.0]))
    '0.5 [0.5, 0.5] ▼'
    """
    if r is None:
        return "–"
    mark = {"win": " ▼", "loss": " ▲", "tie": ""}[r.outcome]
    return f"{fmt_number(r.ratio)} [{fmt_number(r.low)}, {fmt_number(r.high)}]{mark}"


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV file (header, then rows) atomically."""
    with atomic_write(path) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
