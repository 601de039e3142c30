"""Readers and encoders for the dataset file formats (pure functions: no network, no cache).

* :func:`read_arff` -- dense ARFF (Weka) files with numeric and nominal attributes.
* :func:`read_svmlight` -- LIBSVM / svmlight files (via scikit-learn), with the offending line
  located when a file is malformed.
* :func:`read_idx` -- idx files (MNIST / Fashion-MNIST layout), optionally gzip-compressed.
* :func:`read_text_corpus` -- a text file or a directory of ``.txt`` files, concatenated.
* :func:`encode_columns` -- numeric / nominal columns -> a float64 design matrix (nominal features
  one-hot encoded, missing values kept as NaN) and int64 labels ``0..K-1``.

Every parse error is a :class:`DataFormatError` whose message names the file and, where it is
known, the line.

Example:
    >>> cols = [Column("x", np.array([1.0, np.nan, 3.0])),
    ...         Column("colour", np.array([0, 2, -1]), ["red", "green", "blue"]),
    ...         Column("class", np.array([1, 0, 1]), ["no", "yes"])]
    >>> enc = encode_columns(cols, target="class")
    >>> enc.X
    array([[ 1.,  1.,  0.,  0.],
           [nan,  0.,  0.,  1.],
           [ 3., nan, nan, nan]])
    >>> enc.y, enc.class_names
    (array([1, 0, 1]), ['no', 'yes'])
"""

from __future__ import annotations

import bz2
import gzip
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Column",
    "DataFormatError",
    "Encoded",
    "TextCorpus",
    "default_arff_target",
    "encode_columns",
    "frame_to_columns",
    "join_texts",
    "label_values_to_codes",
    "normalise_text",
    "parse_arff_text",
    "read_arff",
    "read_idx",
    "read_svmlight",
    "read_text_corpus",
    "sanitise_name",
]

PathLike = str | os.PathLike[str]


class DataFormatError(ValueError):
    """A data file is malformed or unsupported; the message names the file (and line if known)."""


# --------------------------------------------------------------------------------------------
# Columns and encoding
# --------------------------------------------------------------------------------------------


@dataclass
class Column:
    """One raw column.

    ``levels is None``: numeric column, ``values`` float64 with NaN for missing.
    Otherwise nominal: ``values`` are int codes into ``levels`` with -1 for missing.
    """

    name: str
    values: np.ndarray
    levels: list[str] | None = None

    @property
    def nominal(self) -> bool:
        return self.levels is not None


@dataclass
class Encoded:
    """Result of :func:`encode_columns`."""

    X: np.ndarray  # float64 [n, d], NaN = missing
    y: np.ndarray  # int64 [n], 0..K-1
    feature_names: list[str]
    class_names: list[str]
    categorical: list[dict[str, Any]] = field(default_factory=list)
    n_dropped_unlabelled: int = 0


def _one_hot(col: Column) -> tuple[np.ndarray, list[str]]:
    assert col.levels is not None
    codes = np.asarray(col.values, dtype=np.int64)
    n_levels = len(col.levels)
    missing = codes < 0
    if n_levels <= 2:
        # one indicator: of the second level (binary) or of the only level
        level = n_levels - 1 if n_levels == 2 else 0
        out = (codes == level).astype(np.float64)[:, None]
        names = [f"{col.name}={col.levels[level]}"] if n_levels else [f"{col.name}"]
    else:
        out = np.zeros((codes.shape[0], n_levels))
        rows = np.flatnonzero(~missing)
        out[rows, codes[rows]] = 1.0
        names = [f"{col.name}={lev}" for lev in col.levels]
    out[missing, :] = np.nan
    return out, names


def label_values_to_codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map arbitrary label values (numbers or strings) to ``0..K-1`` in sorted order.

    >>> label_values_to_codes(np.array([3.0, -1.0, 3.0, 7.5]))
    (array([1, 0, 1, 2]), ['-1', '3', '7.5'])
    """
    values = np.asarray(values)
    uniq, codes = np.unique(values, return_inverse=True)
    names = []
    for u in uniq.tolist():
        if isinstance(u, float) and math.isfinite(u) and u == int(u):
            names.append(str(int(u)))
        else:
            names.append(str(u))
    return codes.astype(np.int64).reshape(-1), names


def encode_columns(columns: Sequence[Column], target: str, drop: Iterable[str] = ()) -> Encoded:
    """Encode raw columns into a float64 design matrix and int64 labels ``0..K-1``.

    * numeric feature -> one column (NaN kept for missing values);
    * nominal feature with 1 or 2 levels -> one 0/1 indicator (of the second level, or of the
      only level); with K > 2 levels -> K indicator columns (declared level order);
      a missing nominal value -> NaN in all of its indicator columns;
    * target: nominal codes or numeric values; classes that never occur are dropped and the
      remaining ones renumbered ``0..K-1`` in declared (nominal) or sorted (numeric) order;
      rows whose label is missing are dropped (counted in ``n_dropped_unlabelled``).
    """
    drop = set(drop)
    by_name = {c.name: c for c in columns}
    if target not in by_name:
        raise DataFormatError(f"target column {target!r} not found among {list(by_name)}")
    tcol = by_name[target]
    if tcol.nominal:
        assert tcol.levels is not None
        codes = np.asarray(tcol.values, dtype=np.int64)
        keep = codes >= 0
        present = np.unique(codes[keep])
        remap = np.full(len(tcol.levels), -1, dtype=np.int64)
        remap[present] = np.arange(present.size)
        y = remap[codes[keep]]
        class_names = [tcol.levels[i] for i in present.tolist()]
    else:
        vals = np.asarray(tcol.values, dtype=np.float64)
        keep = ~np.isnan(vals)
        y, class_names = label_values_to_codes(vals[keep])
    blocks: list[np.ndarray] = []
    names: list[str] = []
    categorical: list[dict[str, Any]] = []
    for col in columns:
        if col.name == target or col.name in drop:
            continue
        if col.nominal:
            block, bnames = _one_hot(col)
            categorical.append(
                {"name": col.name, "levels": list(col.levels or []), "columns": len(bnames)}
            )
        else:
            block = np.asarray(col.values, dtype=np.float64)[:, None]
            bnames = [col.name]
        blocks.append(block[keep])
        names.extend(bnames)
    n = int(keep.sum())
    X = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))
    return Encoded(
        X=np.ascontiguousarray(X, dtype=np.float64),
        y=y.astype(np.int64),
        feature_names=names,
        class_names=class_names,
        categorical=categorical,
        n_dropped_unlabelled=int((~keep).sum()),
    )


def frame_to_columns(frame: Any) -> list[Column]:
    """Columns of a pandas DataFrame (as returned by ``rdata``): categoricals become nominal
    columns (R factor level order), numbers float64, other objects nominal in sorted order."""
    out: list[Column] = []
    for name in frame.columns:
        s = frame[name]
        dtype = s.dtype
        if getattr(dtype, "name", "") == "category":
            levels = [str(v) for v in s.cat.categories]
            out.append(Column(str(name), np.asarray(s.cat.codes, dtype=np.int64), levels))
        elif getattr(dtype, "kind", "O") in "biuf":
            vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
            out.append(Column(str(name), vals))
        else:
            raw = s.to_numpy(dtype=object)
            missing = np.array([v is None or (isinstance(v, float) and v != v) for v in raw])
            levels = sorted({str(v) for v, m in zip(raw, missing, strict=True) if not m})
            index = {lev: i for i, lev in enumerate(levels)}
            codes = np.array(
                [-1 if m else index[str(v)] for v, m in zip(raw, missing, strict=True)],
                dtype=np.int64,
            )
            out.append(Column(str(name), codes, levels))
    return out


# --------------------------------------------------------------------------------------------
# ARFF
# --------------------------------------------------------------------------------------------

_NUMERIC_TYPES = {"numeric", "real", "integer"}


def _read_bytes(path: PathLike) -> bytes:
    p = Path(path)
    with open(p, "rb") as fh:
        head = fh.read(3)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(p, "rb") as fh:
            return fh.read()
    if head == b"BZh":
        with bz2.open(p, "rb") as fh:
            return fh.read()
    return p.read_bytes()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _split_values(text: str, where: str) -> list[str | None]:
    """Split an ARFF comma-separated list; quoted values ('..' or "..") are unquoted.

    Returns ``None`` for an unquoted ``?`` (missing value).
    """
    out: list[str | None] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "'\"":
            quote = text[i]
            i += 1
            buf = []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            if i >= n:
                raise DataFormatError(f"{where}: unterminated quoted value")
            i += 1
            value: str | None = "".join(buf)
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] != ",":
                raise DataFormatError(f"{where}: unexpected text after quoted value")
        else:
            j = text.find(",", i)
            j = n if j < 0 else j
            raw = text[i:j].strip()
            value = None if raw == "?" else raw
            i = j
        out.append(value)
        if i >= n:
            return out
        i += 1  # skip the comma


def parse_arff_text(text: str, source: str = "<arff>") -> list[Column]:
    """Parse dense ARFF text into :class:`Column` objects (numeric / nominal attributes).

    ``string``, ``date`` and ``relational`` attributes and sparse rows are rejected with a
    :class:`DataFormatError` naming ``source`` and the line.

    >>> cols = parse_arff_text("@relation r\\n@attribute a numeric\\n"
    ...                        "@attribute c {yes,'n o'}\\n@data\\n1,yes\\n?,'n o'\\n")
    >>> [(c.name, c.levels, c.values.tolist()) for c in cols]
    [('a', None, [1.0, nan]), ('c', ['yes', 'n o'], [0, 1])]
    """
    attrs: list[tuple[str, list[str] | None]] = []
    rows: list[list[str | None]] = []
    row_lines: list[int] = []
    in_data = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("%"):
            continue
        where = f"{source}:{lineno}"
        if not in_data:
            low = s.lower()
            if low.startswith("@relation"):
                continue
            if low.startswith("@data"):
                in_data = True
                continue
            if not low.startswith("@attribute"):
                raise DataFormatError(f"{where}: expected @attribute or @data, got {s[:60]!r}")
            rest = s[len("@attribute") :].strip()
            if rest[:1] in ("'", '"'):
                end = rest.find(rest[0], 1)
                if end < 0:
                    raise DataFormatError(f"{where}: unterminated attribute name")
                name, spec = rest[1:end], rest[end + 1 :].strip()
            else:
                parts = rest.split(None, 1)
                if len(parts) != 2:
                    raise DataFormatError(f"{where}: attribute without a type: {s[:60]!r}")
                name, spec = parts
            if spec.startswith("{"):
                if not spec.endswith("}"):
                    raise DataFormatError(f"{where}: nominal specification without '}}'")
                levels = [v for v in _split_values(spec[1:-1], where) if v is not None]
                attrs.append((name, levels))
            elif spec.split()[0].lower() in _NUMERIC_TYPES:
                attrs.append((name, None))
            else:
                kind = spec.split()[0]
                raise DataFormatError(
                    f"{where}: attribute {name!r} has unsupported type {kind!r} "
                    "(only numeric and nominal attributes are supported)"
                )
            continue
        if s.startswith("{"):
            raise DataFormatError(f"{where}: sparse ARFF rows are not supported")
        values = _split_values(s, where)
        if len(values) != len(attrs):
            raise DataFormatError(
                f"{where}: expected {len(attrs)} values, found {len(values)}: {s[:80]!r}"
            )
        rows.append(values)
        row_lines.append(lineno)
    if not attrs:
        raise DataFormatError(f"{source}: no @attribute declarations (is this an ARFF file?)")
    if not in_data:
        raise DataFormatError(f"{source}: no @data section")
    columns: list[Column] = []
    for j, (name, declared) in enumerate(attrs):
        if declared is None:
            col = np.empty(len(rows))
            for i, row in enumerate(rows):
                v = row[j]
                if v is None:
                    col[i] = np.nan
                    continue
                try:
                    col[i] = float(v)
                except ValueError:
                    raise DataFormatError(
                        f"{source}:{row_lines[i]}: attribute {name!r}: {v!r} is not a number"
                    ) from None
            columns.append(Column(name, col))
        else:
            index = {lev: k for k, lev in enumerate(declared)}
            codes = np.empty(len(rows), dtype=np.int64)
            for i, row in enumerate(rows):
                v = row[j]
                if v is None:
                    codes[i] = -1
                elif v in index:
                    codes[i] = index[v]
                else:
                    raise DataFormatError(
                        f"{source}:{row_lines[i]}: attribute {name!r}: value {v!r} "
                        f"is not one of its declared levels {declared}"
                    )
            columns.append(Column(name, codes, list(declared)))
    return columns


def read_arff(path: PathLike) -> list[Column]:
    """Read an ARFF file (optionally .gz/.bz2 compressed); see :func:`parse_arff_text`."""
    try:
        data = _read_bytes(path)
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_arff_text(_decode(data), str(path))


def default_arff_target(columns: Sequence[Column]) -> str:
    """The attribute named ``class`` (any case) if there is one, else the last attribute."""
    for c in columns:
        if c.name.lower() == "class":
            return c.name
    return columns[-1].name


# --------------------------------------------------------------------------------------------
# LIBSVM / svmlight
# --------------------------------------------------------------------------------------------

_MAX_DENSE_BYTES = 4 * 2**30


def _open_text_lines(path: Path) -> Iterable[bytes]:
    data = _read_bytes(path)
    return io.BytesIO(data)


def _locate_svmlight_error(path: Path) -> str | None:
    """Find the first malformed line of a LIBSVM file; ``None`` if every line looks valid."""
    for lineno, raw in enumerate(_open_text_lines(path), start=1):
        line = raw.split(b"#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        label = tokens[0].decode("utf-8", "replace")
        where = f"{path}:{lineno}"
        if "," in label:
            return f"{where}: multi-label line ({label!r}); only single-label files are supported"
        try:
            float(label)
        except ValueError:
            return f"{where}: label {label!r} is not a number"
        last = -1
        for tok in tokens[1:]:
            t = tok.decode("utf-8", "replace")
            if t.startswith("qid:"):
                return f"{where}: 'qid:' fields are not supported here"
            if t.count(":") != 1:
                return f"{where}: feature {t!r} is not of the form index:value"
            idx_s, val_s = t.split(":")
            try:
                idx = int(idx_s)
            except ValueError:
                return f"{where}: feature index {idx_s!r} is not an integer"
            if idx < 0:
                return f"{where}: negative feature index {idx}"
            try:
                float(val_s)
            except ValueError:
                return f"{where}: feature value {val_s!r} is not a number"
            if idx <= last:
                return f"{where}: feature indices must be strictly increasing ({last} then {idx})"
            last = idx
    return None


def read_svmlight(paths: PathLike | Sequence[PathLike]) -> tuple[np.ndarray, np.ndarray]:
    """Read one or several LIBSVM / svmlight files into a dense float64 ``X`` and raw labels.

    Several files (e.g. ``pendigits`` and ``pendigits.t``) share one feature space and are
    concatenated in the given order. Index base (0 or 1) is detected by scikit-learn
    (``zero_based="auto"``). ``.gz`` / ``.bz2`` files are decompressed transparently.
    Raises :class:`DataFormatError` with ``file:line`` for malformed files.
    """
    from sklearn.datasets import load_svmlight_files

    plist = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    if not plist:
        raise DataFormatError("no LIBSVM file given")
    for p in plist:
        if not p.is_file():
            raise DataFormatError(f"{p}: no such file")
        if p.stat().st_size == 0:
            raise DataFormatError(f"{p}: empty file")
    try:
        loaded = load_svmlight_files([str(p) for p in plist], dtype=np.float64)
    except (ValueError, TypeError, IndexError, OSError) as exc:
        for p in plist:
            located = _locate_svmlight_error(p)
            if located:
                raise DataFormatError(located) from None
        names = ", ".join(str(p) for p in plist)
        raise DataFormatError(f"{names}: not a valid LIBSVM/svmlight file: {exc}") from None
    Xs, ys = loaded[0::2], loaded[1::2]
    n = sum(x.shape[0] for x in Xs)
    d = Xs[0].shape[1]
    if n == 0:
        raise DataFormatError(f"{plist[0]}: no samples")
    if n * d * 8 > _MAX_DENSE_BYTES:
        raise DataFormatError(
            f"{plist[0]}: {n} x {d} is too large to hold densely "
            f"({n * d * 8 / 2**30:.1f} GiB > {_MAX_DENSE_BYTES / 2**30:.0f} GiB)"
        )
    X = np.concatenate([x.toarray() for x in Xs], axis=0)
    y = np.concatenate([np.asarray(v, dtype=np.float64) for v in ys])
    return X, y


# --------------------------------------------------------------------------------------------
# idx (MNIST / Fashion-MNIST)
# --------------------------------------------------------------------------------------------

_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(
    source: PathLike | bytes, *, ndim: int | None = None, name: str | None = None
) -> np.ndarray:
    """Parse an idx file (bytes or a path; gzip detected from its magic bytes).

    Header: two zero bytes, a dtype code (0x08 = uint8, ...), the number of dimensions, then one
    big-endian uint32 per dimension. ``ndim`` (if given) is checked; the payload size must match.

    >>> read_idx(b"\\x00\\x00\\x08\\x01\\x00\\x00\\x00\\x03\\x07\\x00\\x09")
    array([7, 0, 9], dtype=uint8)
    """
    if isinstance(source, bytes):
        data, label = source, name or "<idx bytes>"
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise DataFormatError(f"{label}: corrupt gzip data: {exc}") from None
    else:
        label = name or str(source)
        try:
            data = _read_bytes(source)
        except (OSError, EOFError) as exc:
            raise DataFormatError(f"{label}: cannot read: {exc}") from None
    if len(data) < 4:
        raise DataFormatError(f"{label}: too short for an idx header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    code, dims = data[2], data[3]
    if data[:2] != b"\x00\x00" or code not in _IDX_DTYPES or dims == 0:
        raise DataFormatError(
            f"{label}: bad idx magic number 0x{magic:08x} (expected 0x000008NN for uint8 data)"
        )
    if ndim is not None and dims != ndim:
        raise DataFormatError(
            f"{label}: idx header announces {dims} dimension(s), expected {ndim} "
            f"(magic 0x{magic:08x}; images are 0x00000803, labels 0x00000801)"
        )
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataFormatError(f"{label}: truncated idx header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataFormatError(
            f"{label}: idx payload is {len(data) - header} bytes but shape {shape} needs {expected}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


@dataclass
class TextCorpus:
    """A concatenated text corpus and the files it came from (in concatenation order)."""

    text: str
    files: list[str]
    n_chars: list[int]


def normalise_text(raw: bytes) -> str:
    """Decode (UTF-8, falling back to Latin-1), turn CRLF / CR into LF, end with one newline."""
    text = _decode(raw).replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip("\n") + "\n"


def join_texts(parts: Sequence[str]) -> str:
    """Join normalised works with one blank line between them."""
    return "\n".join(parts)


def read_text_corpus(path: PathLike) -> TextCorpus:
    """Read a text file, or all ``*.txt`` files of a directory in sorted path order.

    Directory: the ``*.txt`` files directly inside it, or if there are none, all ``*.txt`` files
    below it (sorted by relative path). Each file goes through :func:`normalise_text`; files are
    joined with one blank line between them (:func:`join_texts`).
    """
    p = Path(path)
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = sorted(f for f in p.glob("*.txt") if f.is_file())
        if not files:
            files = sorted((f for f in p.rglob("*.txt") if f.is_file()), key=lambda f: str(f))
        if not files:
            raise DataFormatError(f"{p}: directory holds no .txt files")
    else:
        raise DataFormatError(f"{p}: no such file or directory")
    parts = []
    for f in files:
        try:
            parts.append(normalise_text(_read_bytes(f)))
        except OSError as exc:
            raise DataFormatError(f"{f}: cannot read: {exc.strerror or exc}") from None
    names = [str(f.relative_to(p)) if p.is_dir() else f.name for f in files]
    return TextCorpus(join_texts(parts), names, [len(t) for t in parts])


def sanitise_name(text: str) -> str:
    """A cache-friendly dataset name: lower case, ``[a-z0-9_-]``."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")
    return name
