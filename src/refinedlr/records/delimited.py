"""Delimited text logs: this library's own ``step,<kind>...`` CSV, any CSV/TSV/semicolon file with a
header, and a single headerless column of numbers.

Two parsers share one result (:class:`Table`): numpy's C parser for clean rectangular files (fast,
no line numbers) and a line-by-line parser that accepts gaps and text columns and names bad lines.
When an error found on the fast path needs a line number, the file is parsed again line by line
(:func:`with_lines`). Neither copies the text: both walk its lines in place, and the number of
values (lines times columns) is checked against :func:`refinedlr.limits.max_cells` first.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import warnings
from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import limits
from .inputs import compression, read_text
from .record import FloatArray, GradNormRecord, IntArray, RecordError, brief, norm_type
from .series import INDEX_NAMES, pick_series
from .steps import Placement, ReadRequest, find_step_column, int_steps, make_record

__all__ = ["CsvText", "Table", "read_delimited", "split_header", "with_lines"]


class _NeedLines(Exception):
    """Raised by the fast CSV path when an error message needs line numbers it did not keep."""


@dataclasses.dataclass
class Table:
    """A parsed delimited file: one float column per header name (``None`` for a text column),
    with ``present`` masks (``None`` = every cell filled) and the line number of every row
    (``None`` on the fast path, which does not keep them)."""

    names: list[str]
    header_line: int | None
    columns: list[FloatArray | None]
    present: list[npt.NDArray[np.bool_] | None]
    lines: IntArray | None
    text_at: dict[int, tuple[int, str]]  # text column -> (line, first text cell)
    rows: int

    @property
    def n(self) -> int:
        return self.rows

    def has_values(self, j: int) -> bool:
        """Column ``j`` is numeric and has at least one filled cell."""
        mask = self.present[j]
        return self.columns[j] is not None and (mask is None or bool(mask.any()))

    def where(self, i: int) -> dict[str, Any]:
        if self.lines is None:
            raise _NeedLines
        return {"line": int(self.lines[i])}


def split_header(line: str, delimiter: str) -> list[str]:
    return [f.strip() for f in next(csv.reader([line], delimiter=delimiter))]


def _sniff_delimiter(line: str) -> str:
    for d in ("\t", ",", ";"):
        if d in line:
            return d
    return ","


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
    own_format: bool  # this library's ``step,<kind>...`` format
    dropped: str | None = None  # the warning about a cut-off last line that was removed
    plain: bool = True  # the file holds this text as is (not compressed): numpy may read it

    @property
    def to_end(self) -> bool:
        """The body runs to the end of the file (no cut-off line removed)."""
        return self.body_end == len(self.text)

    def body_is_blank(self) -> bool:
        return (
            self.body_start >= self.body_end
            or not self.text[self.body_start : self.body_end].strip()
        )

    def lines(self) -> Iterator[tuple[int, str]]:
        """``(line number, line)`` of the body, one at a time."""
        text, pos, end, i = self.text, self.body_start, self.body_end, self.first_body_line
        while pos < end:
            nl = text.find("\n", pos, end)
            stop = end if nl < 0 else nl
            yield i, text[pos:stop]
            pos, i = stop + 1, i + 1

    def count_lines(self) -> int:
        n = self.text.count("\n", self.body_start, self.body_end)
        return n + (0 if self.text.endswith("\n", self.body_start, self.body_end) else 1)


def _split_csv_text(p: Path, text: str) -> CsvText:
    # find the header (the first line that is neither blank nor a '#' comment) without
    # splitting the whole text: a million-line body is handed to the parser in place
    pos, k = 0, 0
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end]
        if line.strip() and not line.lstrip().startswith("#"):
            break
        pos, k = end + 1, k + 1
    else:
        raise RecordError("empty file", path=p)
    first = line
    body_start = min(end + 1, len(text))
    delimiter = _sniff_delimiter(first)
    if first.count(delimiter) >= limits.MAX_COLUMNS:
        raise RecordError(
            f"more than {limits.MAX_COLUMNS:,} columns in the first line: not a log",
            path=p,
            line=k + 1,
        )
    try:
        fields = split_header(first, delimiter)
    except csv.Error as exc:
        raise RecordError(f"cannot read the header: {exc}", path=p, line=k + 1) from None
    if all(_is_number(f) for f in fields):
        if len(fields) != 1:
            raise RecordError(
                f"no header and {len(fields)} columns; add a header line naming the columns "
                "(e.g. step,l2) or keep a single column of norms",
                path=p,
                line=k + 1,
            )
        return CsvText(None, None, delimiter, k + 1, text, pos, len(text), own_format=False)
    seen: set[str] = set()
    for f in fields:
        if not f:
            raise RecordError("an empty column name in the header", path=p, line=k + 1)
        if f in seen:
            raise RecordError(f"column {brief(f)!r} appears twice", path=p, line=k + 1, key=f)
        seen.add(f)
    own = k == 0 and delimiter == "," and first.startswith("step,") and '"' not in first
    body_end = len(text)
    dropped = None
    if own and not text.endswith("\n"):
        last_nl = text.rfind("\n")
        if last_nl >= body_start - 1 and text[last_nl + 1 :].strip():
            cut = text.count("\n") + 1
            dropped = (
                f"{p}, line {cut}: dropped the last line {brief(text[last_nl + 1 :])!r}: it has "
                "no end of line, so the writer was stopped in the middle of it"
            )
            body_end = last_nl + 1
    return CsvText(
        fields,
        k + 1,
        delimiter,
        k + 2,
        text,
        body_start,
        max(body_start, body_end),
        own_format=own,
        dropped=dropped,
    )


def _fast_table(p: Path, ct: CsvText) -> Table | None:
    """Rectangular files without gaps via numpy's C parser; ``None`` when anything is unusual.

    Columns whose first cell is text are left out (as the line-by-line parser would leave them).
    """
    ncol = 1 if ct.header is None else len(ct.header)
    if ct.body_is_blank():
        return None
    _, first = next(ct.lines())
    try:
        cells = next(csv.reader([first], delimiter=ct.delimiter))
    except (csv.Error, StopIteration):
        return None
    if len(cells) != ncol or not first.strip():
        return None
    text_cols = [j for j, c in enumerate(cells) if c.strip() and not _is_number(c.strip())]
    if ct.header is None and text_cols:
        return None
    use = [j for j in range(ncol) if j not in text_cols]
    if not use:
        return None
    # numpy's reader is quickest on the file itself (opened here: given a path, numpy would
    # decompress by the name's suffix); a cut or a compressed file is fed line by line
    whole = ct.to_end and ct.plain
    source: Iterable[str] = open(p, encoding="utf-8") if whole else (line for _, line in ct.lines())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            arr = np.loadtxt(
                source,
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
    finally:
        if whole:
            source.close()  # type: ignore[attr-defined]
    if arr.shape[1] != len(use):
        return None
    columns: list[FloatArray | None] = [None] * ncol
    for i, j in enumerate(use):
        columns[j] = arr[:, i]  # views: the record copies what it keeps
    names = [""] if ct.header is None else list(ct.header)
    first_line = ct.first_body_line
    return Table(
        names=names,
        header_line=ct.header_line,
        columns=columns,
        present=[None] * ncol,
        lines=None,
        text_at={j: (first_line, cells[j].strip()) for j in text_cols},
        rows=int(arr.shape[0]),
    )


def _slow_table(p: Path, ct: CsvText) -> Table:
    """Line by line, keeping line numbers, to accept gaps and text and to name bad lines."""
    ncol = 1 if ct.header is None else len(ct.header)
    names = [""] if ct.header is None else list(ct.header)
    cells = [array("d") for _ in range(ncol)]
    filled = [bytearray() for _ in range(ncol)]
    kind: list[str | None] = [None] * ncol  # "num" | "text" | None (not decided yet)
    text_at: dict[int, tuple[int, str]] = {}
    line_numbers = array("q")
    d = ct.delimiter
    for i, line in ct.lines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if '"' in line:
            try:
                fields = next(csv.reader([line], delimiter=d))
            except csv.Error as exc:
                raise RecordError(f"cannot split the line: {exc}", path=p, line=i) from None
        else:
            fields = line.split(d)
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
            if not s or kind[j] == "text":
                cells[j].append(math.nan)
                filled[j].append(0)
                continue
            try:
                x = float(s)
            except ValueError:
                if kind[j] is None and ct.header is not None:
                    kind[j] = "text"
                    text_at[j] = (i, s)
                    cells[j].append(math.nan)
                    filled[j].append(0)
                    continue
                col = f"column {brief(names[j])!r}" if ct.header is not None else "the column"
                hint = ""
                if d == ";" and "," in s and _is_number(s.replace(",", ".")):
                    hint = " (a decimal comma? use '.' as decimal point)"
                raise RecordError(
                    f"not a number: {brief(s)!r} in {col}{hint}",
                    path=p,
                    line=i,
                    key=None if ct.header is None else names[j],
                ) from None
            kind[j] = "num"
            cells[j].append(x)
            filled[j].append(1)
    columns: list[FloatArray | None] = []
    present: list[npt.NDArray[np.bool_] | None] = []
    for j in range(ncol):
        if kind[j] == "text":
            columns.append(None)
            present.append(None)
        else:
            columns.append(np.array(cells[j], dtype=np.float64))
            mask = np.frombuffer(filled[j], dtype=np.uint8).astype(bool)
            present.append(None if mask.all() else mask)
        cells[j] = filled[j] = None  # type: ignore[call-overload]  # free as we go
    return Table(
        names=names,
        header_line=ct.header_line,
        columns=columns,
        present=present,
        lines=np.array(line_numbers, dtype=np.int64),
        text_at=text_at,
        rows=len(line_numbers),
    )


def _assemble_csv(
    p: Path, ct: CsvText, t: Table, wanted: str | None, fmt: str, place: Placement
) -> GradNormRecord:
    n = t.n
    if n == 0:
        raise RecordError("no data rows" if ct.header is not None else "empty file", path=p)
    meta: dict[str, Any] = {"format": fmt}
    if ct.dropped is not None:
        meta["warnings"] = [ct.dropped]
    if ct.header is None:
        v = t.columns[0]
        assert v is not None
        kind = wanted or "l2"
        mask = t.present[0]
        steps = np.arange(n, dtype=np.int64)
        values = {kind: v}
        meta["steps"] = "row index"
        if mask is not None:
            steps, values = steps[mask], {kind: v[mask]}
        return make_record(p, steps, values, meta, t.where, **place)
    names = t.names
    js = find_step_column(names)
    if js is not None and t.columns[js] is None:
        line, cell = t.text_at[js]
        raise RecordError(f"not a step number: {brief(cell)!r}", path=p, line=line, key=names[js])
    numeric = [names[j] for j in range(len(names)) if j != js and t.has_values(j)]
    if wanted is not None and wanted in names and wanted not in numeric:
        j = names.index(wanted)
        if j == js:
            raise RecordError(f"{brief(wanted)!r} is the step column", path=p, key=wanted)
        if j in t.text_at:
            line, cell = t.text_at[j]
            raise RecordError(f"not a number: {brief(cell)!r}", path=p, line=line, key=wanted)
        raise RecordError("the column has no values", path=p, key=wanted)
    unparsed = {
        names[j]: _unparsed(t, j)
        for j in range(len(names))
        if j != js and not t.has_values(j) and norm_type(names[j]) is not None
    }
    candidates = [c for c in numeric if c.lower() not in INDEX_NAMES]
    own_format = js == 0 and names[0] == "step" and not t.text_at
    if wanted is None and own_format and len(candidates) > 1:
        # our own format (step,l2,l1): every kind; a row with some cells empty keeps them as NaN
        chosen = candidates
    else:
        chosen = [
            pick_series(
                candidates if wanted is None else numeric,
                wanted,
                p,
                "column",
                line=t.header_line,
                unparsed=unparsed,
            )
        ]
    idx = [names.index(c) for c in chosen]
    cols = [t.columns[j] for j in idx]
    masks = [t.present[j] for j in idx]
    if any(m is not None for m in masks):
        keep = np.zeros(n, dtype=bool)
        for m in masks:
            keep |= np.ones(n, dtype=bool) if m is None else m
    else:
        keep = None
    if js is None:
        raw_steps = np.arange(n, dtype=np.float64)
        meta["steps"] = "row index"
    else:
        sc = t.columns[js]
        assert sc is not None
        sm = t.present[js]
        if sm is not None:
            i = int(np.flatnonzero(~sm)[0])
            raise RecordError("no step in this row", path=p, key=names[js], **t.where(i))
        raw_steps = sc
        meta["step_column"] = names[js]
    if len(chosen) == 1:
        meta["column"] = chosen[0]
    rows = np.flatnonzero(keep) if keep is not None else None

    def where(i: int) -> dict[str, Any]:
        return t.where(int(rows[i]) if rows is not None else i)

    if rows is not None:
        raw_steps = raw_steps[rows]
        cols = [c[rows] for c in cols if c is not None]
    steps = int_steps(raw_steps, where, p, "step")
    values = {c: np.asarray(v, dtype=np.float64) for c, v in zip(chosen, cols, strict=True)}
    return make_record(p, steps, values, meta, where, **place)


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
    ncol = 1 if ct.header is None else len(ct.header)
    lines = ct.count_lines()
    if lines * ncol > limits.max_cells():
        raise RecordError(
            f"{lines:,} lines of {ncol:,} columns: more than the {limits.max_cells():,} values a "
            "log may hold (raise refinedlr.limits.MAX_STEPS or --max-steps if it really is one)",
            path=p,
        )
    table = _fast_table(p, ct)
    return ct, table if table is not None else _slow_table(p, ct)


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
    wanted, place = request.wanted, request.placement()
    return with_lines(p, lambda ct, t: _assemble_csv(p, ct, t, wanted, "csv", place))
