"""Delimited text logs: this library's ``step,<kind>...`` CSV, any CSV/TSV/semicolon file with a
header, a headerless column of numbers, and W&B chart CSV exports (``"Step","<run> - <metric>"``).

Two parsers fill one :class:`Table`: numpy's C parser for clean rectangular files (fast, no line
numbers) and a line-by-line parser that accepts gaps and text columns and names bad lines (rerun
by :func:`with_lines` when an error needs a line number). Both walk the text in place, after
checking lines times columns against :func:`refinedlr.limits.max_cells`.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import warnings
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import limits
from .inputs import compression, lines_of, read_text
from .record import FloatArray, GradNormRecord, IntArray, RecordError, brief, brief_list, norm_type
from .series import DEFAULT_NAMES, INDEX_NAMES, pick_series
from .steps import Placement, ReadRequest, find_step_column, make_record


class _NeedLines(Exception):
    """Raised by the fast CSV path when an error message needs line numbers it did not keep."""


@dataclasses.dataclass
class Table:
    """A parsed delimited file: one float column per header name (``None`` for a text column),
    with ``present`` masks (``None`` = every cell filled) and the line number of every row
    (``None`` on the fast path, which does not keep them)."""

    path: Path
    names: list[str]
    header_line: int | None
    columns: list[FloatArray | None]
    present: list[npt.NDArray[np.bool_] | None]
    lines: IntArray | None
    text_at: dict[int, tuple[int, str]]  # text column -> (line, first text cell)
    rows: int

    def has_values(self, j: int) -> bool:
        """Column ``j`` is numeric and has at least one filled cell."""
        mask = self.present[j]
        return self.columns[j] is not None and (mask is None or bool(mask.any()))

    def where(self, i: int) -> dict[str, Any]:
        if self.lines is None:
            raise _NeedLines
        return {"line": int(self.lines[i])}

    def values(self, j: int, problem: str = "not a number") -> FloatArray:
        """Column ``j``; a text column is an error quoting its first text cell."""
        col = self.columns[j]
        if col is None:
            line, cell = self.text_at[j]
            key = self.names[j]
            raise RecordError(f"{problem}: {brief(cell)!r}", path=self.path, line=line, key=key)
        return col

    def steps(self, j: int | None) -> FloatArray:
        """The steps: column ``j``, which every row must fill, or (``None``) the row index."""
        if j is None:
            return np.arange(self.rows, dtype=np.float64)
        col, mask = self.values(j, "not a step number"), self.present[j]
        if mask is not None:
            where = self.where(int(np.flatnonzero(~mask)[0]))
            raise RecordError("no step in this row", path=self.path, key=self.names[j], **where)
        return col

    def record(
        self,
        steps: FloatArray,
        values: dict[str, FloatArray],
        keep: npt.NDArray[np.bool_] | None,
        meta: dict[str, Any],
        place: Placement,
    ) -> GradNormRecord:
        """The record of the rows ``keep`` (``None``: every row)."""
        if keep is None:
            return make_record(self.path, steps, values, meta, self.where, place)
        rows = np.flatnonzero(keep)
        values = {k: v[rows] for k, v in values.items()}
        where = self.where
        return make_record(
            self.path, steps[rows], values, meta, lambda i: where(int(rows[i])), place
        )


def split_header(line: str, delimiter: str) -> list[str]:
    return [f.strip() for f in next(csv.reader([line], delimiter=delimiter))]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


@dataclasses.dataclass
class CsvText:
    """The text of a delimited file split into header and body (``text[body_start:body_end]``,
    not copied), ready for either parser."""

    header: list[str] | None  # None: headerless
    header_line: int | None
    delimiter: str
    first_body_line: int  # 1-based line number of the first body line
    text: str
    body_start: int
    body_end: int
    dropped: str | None = None  # the warning about a cut-off last line that was removed
    plain: bool = True  # the file holds this text as is (not compressed): numpy may read it

    @property
    def names(self) -> list[str]:
        return [""] if self.header is None else list(self.header)

    def lines(self) -> Iterator[tuple[int, str]]:
        """``(line number, line)`` of the body, one at a time."""
        body = lines_of(self.text, self.body_start, self.body_end)
        return ((i, line) for i, (_, line) in enumerate(body, self.first_body_line))


def _split_csv_text(p: Path, text: str) -> CsvText:
    # the header is the first line neither blank nor a '#' comment; the body stays in place
    lines = enumerate(lines_of(text))
    found = next(
        ((k, pos, x) for k, (pos, x) in lines if x.strip() and x.lstrip()[:1] != "#"), None
    )
    if found is None:
        raise RecordError("empty file", path=p)
    k, pos, first = found
    at: dict[str, Any] = {"path": p, "line": k + 1}
    body_start = min(pos + len(first) + 1, len(text))
    delimiter = next((d for d in "\t,;" if d in first), ",")
    if first.count(delimiter) >= limits.MAX_COLUMNS:
        raise RecordError(
            f"more than {limits.MAX_COLUMNS:,} columns in the first line: not a log", **at
        )
    try:
        fields = split_header(first, delimiter)
    except csv.Error as exc:
        raise RecordError(f"cannot read the header: {exc}", **at) from None
    if all(_is_number(f) for f in fields):
        if len(fields) != 1:
            raise RecordError(
                f"no header and {len(fields)} columns; add a header line naming the columns "
                "(e.g. step,l2) or keep a single column of norms",
                **at,
            )
        return CsvText(None, None, delimiter, k + 1, text, pos, len(text))
    seen: set[str] = set()
    for f in fields:
        if not f:
            raise RecordError("an empty column name in the header", **at)
        if f in seen:
            raise RecordError(f"column {brief(f)!r} appears twice", key=f, **at)
        seen.add(f)
    ct = CsvText(fields, k + 1, delimiter, k + 2, text, body_start, len(text))
    own = k == 0 and delimiter == "," and first.startswith("step,") and '"' not in first
    last_nl = text.rfind("\n")
    cut = own and not text.endswith("\n") and last_nl >= body_start - 1
    if cut and text[last_nl + 1 :].strip():  # our own format, its writer stopped mid-line
        line = text.count("\n") + 1
        ct.dropped = (
            f"{p}, line {line}: dropped the last line {brief(text[last_nl + 1 :])!r}: it has no "
            "end of line, so the writer was stopped in the middle of it"
        )
        ct.body_end = max(body_start, last_nl + 1)
    return ct


def _fast_table(p: Path, ct: CsvText) -> Table | None:
    """Rectangular files without gaps via numpy's C parser (columns whose first cell is text left
    out, as the line-by-line parser leaves them); ``None`` when anything is unusual."""
    ncol = len(ct.names)
    first = next(ct.lines(), (0, ""))[1]
    try:
        cells = next(csv.reader([first], delimiter=ct.delimiter))
    except (csv.Error, StopIteration):
        return None
    if len(cells) != ncol or not first.strip():
        return None
    text_cols = [j for j, c in enumerate(cells) if c.strip() and not _is_number(c.strip())]
    use = [j for j in range(ncol) if j not in text_cols]
    if (ct.header is None and text_cols) or not use:
        return None
    # numpy's reader is quickest on the file itself (opened here: given a path, numpy would
    # decompress by the name's suffix); a cut or a compressed file is fed line by line
    whole = ct.body_end == len(ct.text) and ct.plain
    source: AbstractContextManager[Iterable[str]] = (
        open(p, encoding="utf-8") if whole else nullcontext(line for _, line in ct.lines())
    )
    try:
        with warnings.catch_warnings(), source as rows:
            warnings.simplefilter("error")
            arr = np.loadtxt(
                rows,
                skiprows=ct.first_body_line - 1 if whole else 0,
                encoding="utf-8",
                delimiter=ct.delimiter,
                dtype=np.float64,
                ndmin=2,
                comments=None,
                quotechar='"',
                usecols=use if text_cols else None,
            )
    except (ValueError, TypeError, OverflowError, UserWarning):
        return None  # the line-by-line parser will say what is wrong, and where
    if arr.shape[1] != len(use):
        return None
    columns: list[FloatArray | None] = [None] * ncol
    for i, j in enumerate(use):
        columns[j] = arr[:, i]  # views: the record copies what it keeps
    text_at = {j: (ct.first_body_line, cells[j].strip()) for j in text_cols}
    present: list[npt.NDArray[np.bool_] | None] = [None] * ncol
    return Table(p, ct.names, ct.header_line, columns, present, None, text_at, arr.shape[0])


def _slow_table(p: Path, ct: CsvText) -> Table:
    """Line by line, keeping line numbers, to accept gaps and text and to name bad lines."""
    names, d = ct.names, ct.delimiter
    ncol = len(names)
    cells = [array("d") for _ in range(ncol)]
    filled = [bytearray() for _ in range(ncol)]
    numeric = [False] * ncol  # a number was read in the column (text after it is an error)
    text_at: dict[int, tuple[int, str]] = {}
    line_numbers = array("q")
    for i, line in ct.lines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = next(csv.reader([line], delimiter=d)) if '"' in line else line.split(d)
        except csv.Error as exc:
            raise RecordError(f"cannot split the line: {exc}", path=p, line=i) from None
        if len(fields) != ncol:
            hint = f" (header: {brief(d.join(names), 60)})" if ct.header is not None else ""
            raise RecordError(
                f"expected {ncol} field(s){hint}, got {len(fields)}: {brief(line)!r}",
                path=p,
                line=i,
            )
        line_numbers.append(i)
        for j, raw in enumerate(fields):
            s = raw.strip()
            x, ok = math.nan, bool(s) and j not in text_at
            if ok:
                try:
                    x = float(s)
                except ValueError:
                    if numeric[j] or ct.header is None:
                        raise _not_a_number(p, ct, i, j, s) from None
                    text_at[j], ok = (i, s), False  # a text column: not read
            numeric[j] = numeric[j] or ok
            cells[j].append(x)
            filled[j].append(ok)
    columns: list[FloatArray | None] = []
    present: list[npt.NDArray[np.bool_] | None] = []
    for j in range(ncol):
        mask = np.frombuffer(filled[j], dtype=np.uint8).astype(bool)
        columns.append(None if j in text_at else np.array(cells[j], dtype=np.float64))
        present.append(None if j in text_at or mask.all() else mask)
        cells[j] = filled[j] = None  # type: ignore[call-overload]  # free as we go
    lines = np.array(line_numbers, dtype=np.int64)
    return Table(p, names, ct.header_line, columns, present, lines, text_at, len(line_numbers))


def _not_a_number(p: Path, ct: CsvText, i: int, j: int, s: str) -> RecordError:
    col = "the column" if ct.header is None else f"column {brief(ct.names[j])!r}"
    hint = ""
    if ct.delimiter == ";" and "," in s and _is_number(s.replace(",", ".")):
        hint = " (a decimal comma? use '.' as decimal point)"
    key = None if ct.header is None else ct.names[j]
    return RecordError(f"not a number: {brief(s)!r} in {col}{hint}", path=p, line=i, key=key)


def _assemble_csv(
    p: Path, ct: CsvText, t: Table, wanted: str | None, place: Placement
) -> GradNormRecord:
    if t.rows == 0:
        raise RecordError("no data rows" if ct.header is not None else "empty file", path=p)
    meta: dict[str, Any] = {"format": "csv"}
    if ct.dropped is not None:
        meta["warnings"] = [ct.dropped]
    if ct.header is None:
        meta["steps"] = "row index"
        return t.record(t.steps(None), {wanted or "l2": t.values(0)}, t.present[0], meta, place)
    names = t.names
    js = find_step_column(names)
    if js is not None:
        t.values(js, "not a step number")
    numeric = [names[j] for j in range(len(names)) if j != js and t.has_values(j)]
    if wanted is not None and wanted in names and wanted not in numeric:
        if names.index(wanted) == js:
            raise RecordError(f"{brief(wanted)!r} is the step column", path=p, key=wanted)
        t.values(names.index(wanted))
        raise RecordError("the column has no values", path=p, key=wanted)
    unparsed = {
        names[j]: _unparsed(t, j)
        for j in range(len(names))
        if j != js and not t.has_values(j) and norm_type(names[j]) is not None
    }
    candidates = [c for c in numeric if c.lower() not in INDEX_NAMES]
    if wanted is None and len(candidates) > 1 and js == 0 and names[0] == "step" and not t.text_at:
        # our own format (step,l2,l1): every kind; a row with some cells empty keeps them as NaN
        chosen = candidates
    else:
        pool = candidates if wanted is None else numeric
        chosen = [pick_series(pool, wanted, p, "column", line=t.header_line, unparsed=unparsed)]
    idx = [names.index(c) for c in chosen]
    masks = [m for j in idx if (m := t.present[j]) is not None]
    keep = np.logical_or.reduce(masks) if len(masks) == len(idx) else None
    if js is None:
        meta["steps"] = "row index"
    else:
        meta["step_column"] = names[js]
    if len(chosen) == 1:
        meta["column"] = chosen[0]
    values = {c: t.values(j) for c, j in zip(chosen, idx, strict=True)}
    return t.record(t.steps(js), values, keep, meta, place)


def _unparsed(t: Table, j: int) -> str:
    """What column ``j``, which holds no numbers, holds instead."""
    if j in t.text_at:
        line, cell = t.text_at[j]
        return f"not a number: {brief(cell)!r} on line {line}"
    return "the column has no values"


def _parse(p: Path) -> tuple[CsvText, Table]:
    text = read_text(p)
    if not text or text.isspace():
        raise RecordError("empty file", path=p)
    ct = _split_csv_text(p, text)
    del text
    ct.plain = compression(p) is None
    ncol = len(ct.names)
    lines = ct.text.count("\n", ct.body_start, ct.body_end) + 1
    lines -= ct.text.endswith("\n", ct.body_start, ct.body_end)
    if lines * ncol > limits.max_cells():
        raise RecordError(
            f"{lines:,} lines of {ncol:,} columns: more than the {limits.max_cells():,} values a "
            "log may hold (raise refinedlr.limits.MAX_STEPS or --max-steps if it really is one)",
            path=p,
        )
    return ct, _fast_table(p, ct) or _slow_table(p, ct)


def with_lines(p: Path, build: Callable[[CsvText, Table], GradNormRecord]) -> GradNormRecord:
    """Build from the fast table; if an error needs line numbers, parse again keeping them."""
    ct, table = _parse(p)
    try:
        return build(ct, table)
    except _NeedLines:
        pass  # (outside the handler, so that the error raised next carries no context)
    return build(ct, _slow_table(p, ct))


def read_delimited(p: Path, request: ReadRequest) -> GradNormRecord:
    """A delimited log (see :func:`~refinedlr.records.read_record`, format ``csv``)."""
    return with_lines(p, lambda ct, t: _assemble_csv(p, ct, t, request.wanted, request.placement()))


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
        series = [h for h in ct.header[1:] if not h.endswith(("__MIN", "__MAX"))]
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
