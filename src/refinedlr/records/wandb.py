"""Weights & Biases chart CSV exports (``"Step","<run> - <metric>",...__MIN,...__MAX``)."""

from __future__ import annotations

import csv
from pathlib import Path

from .delimited import CsvText, Table, split_header, with_lines
from .record import GradNormRecord, RecordError, brief_list
from .series import DEFAULT_NAMES, pick_series
from .steps import ReadRequest

__all__ = ["looks_like_wandb", "read_wandb"]


def looks_like_wandb(header_line: str) -> bool:
    """``header_line`` is that of a W&B export: ``Step`` then only ``<run> - <metric>`` columns."""
    try:
        fields = split_header(header_line, ",")
    except csv.Error:
        return False
    return len(fields) >= 2 and fields[0] == "Step" and all(" - " in f for f in fields[1:])


def read_wandb(p: Path, request: ReadRequest) -> GradNormRecord:
    """A W&B CSV export (see :func:`~refinedlr.records.read_record`, format ``wandb``)."""
    wanted, place = request.wanted, request.placement()

    def build(ct: CsvText, t: Table) -> GradNormRecord:
        if ct.header is None or ct.header[0] != "Step" or ct.delimiter != ",":
            raise RecordError(
                'not a W&B CSV export: the header should start with "Step" followed by '
                '"<run> - <metric>" columns',
                path=p,
                line=ct.header_line or 1,
            )
        series = [h for h in ct.header[1:] if not (h.endswith("__MIN") or h.endswith("__MAX"))]
        runs: dict[str, list[str]] = {}
        metrics: dict[str, list[str]] = {}
        for h in series:
            run, _, metric = h.rpartition(" - ")
            runs.setdefault(run, []).append(h)
            metrics.setdefault(metric, []).append(h)
        aliases = {k: v[0] for d in (runs, metrics) for k, v in d.items() if len(v) == 1}
        choice = wanted
        defaults = [h for h in series if h.rpartition(" - ")[2] in DEFAULT_NAMES]
        if choice is None and len(series) > 1 and len(defaults) == 1:
            choice = defaults[0]
        if choice is None and len(series) > 1:
            raise RecordError(
                f"{len(series)} series in this export {brief_list(series)}: choose one with column=... "
                "(the full column name, its run or its metric)",
                path=p,
                line=ct.header_line,
            )
        name = pick_series(series, choice, p, "series", line=ct.header_line, aliases=aliases)
        run, _, metric = name.rpartition(" - ")
        j = t.names.index(name)
        col = t.values(j)
        meta = {"format": "wandb", "column": name, "run": run, "metric": metric}
        return t.record(t.steps(0), {metric: col}, t.present[j], meta, place)

    return with_lines(p, build)
