"""Reading a user's file: only regular files (a named pipe would block forever), compressed files
decompressed transparently, everything within the budgets of :mod:`refinedlr.limits`, text decoded
as UTF-8 with errors naming the line, JSON parsed with bounded nesting and number length.

Compression is recognised by the file's first bytes, whatever its name: gzip (``.gz``), bzip2
(``.bz2``) and xz (``.xz``) are read as the file they hold; zstd and zip archives are refused with
advice. Content is read in chunks and counted as it arrives, so a file over its byte or line budget
(a small archive can expand to any size) is refused before it is held in memory, let alone parsed.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import math
import os
import stat
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .. import limits
from .record import RecordError, brief

__all__ = [
    "COMPRESSED_SUFFIXES",
    "binary_stream",
    "compression",
    "decode_text",
    "json_number",
    "load_json",
    "open_regular",
    "read_bytes",
    "read_head",
    "read_text",
    "uncompressed_name",
]

#: File name endings of the compressed files read transparently.
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")
_CHUNK = 1 << 20

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = ((b"\x28\xb5\x2f\xfd", "zstd"),)


try:  # lzma is optional in some Python builds
    import lzma
except ImportError:  # pragma: no cover - depends on the build
    lzma = None  # type: ignore[assignment]
    _LZMA_ERRORS: tuple[type[Exception], ...] = ()
else:
    _LZMA_ERRORS = (lzma.LZMAError,)
_DECOMPRESS_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    *_LZMA_ERRORS,
)


def _xz_open(f: IO[bytes]) -> io.BufferedIOBase:
    if lzma is None:  # pragma: no cover - depends on the build
        raise ImportError("lzma")
    return lzma.LZMAFile(f)


_OPENERS: dict[str, Callable[[IO[bytes]], io.BufferedIOBase]] = {
    "gzip": lambda f: gzip.GzipFile(fileobj=f),
    "bzip2": lambda f: bz2.BZ2File(f),
    "xz": _xz_open,
}


def _describe_mode(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def open_regular(p: Path) -> IO[bytes]:
    """Open ``p`` for reading in binary mode if it is a regular file (never blocks: a named pipe
    is refused, not read)."""
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise RecordError(f"cannot read: {exc.strerror or exc}", path=p) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RecordError(
                f"{_describe_mode(mode)}, not a regular file: pass the log file itself", path=p
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _sniff(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def compression(p: Path) -> str | None:
    """``"gzip"``, ``"bzip2"`` or ``"xz"`` when ``p`` is compressed that way, else ``None``."""
    with open_regular(p) as f:
        head = f.read(8)
    for magic, name in _REFUSED_MAGIC:
        if head.startswith(magic):
            raise RecordError(
                f"a {name}-compressed file; decompress it first (gzip, bzip2 and xz files are "
                "read directly)",
                path=p,
            )
    return _sniff(head)


def uncompressed_name(name: str) -> str:
    """``name`` without a compression suffix: ``norms.csv.gz`` -> ``norms.csv``."""
    lower = name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _too_big(p: Path, what: str, count: int, limit: int, unit: str) -> RecordError:
    return RecordError(
        f"{what} more than {limit:,} {unit} (at least {count:,}), over the size limit for a log "
        "(raise refinedlr.limits.MAX_STEPS or --max-steps if it really is one)",
        path=p,
    )


def _read_error(p: Path, method: str | None, exc: BaseException) -> RecordError:
    if method is None:
        return RecordError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", path=p)
    return RecordError(
        f"{method}-compressed, but the data is corrupt or cut off ({brief(str(exc), 80)}); "
        "decompress it to see what it holds",
        path=p,
    )


def _content(p: Path, method: str | None, f: IO[bytes]) -> IO[bytes]:
    """The content of the open file ``f``: itself, or a decompressing reader over it."""
    if method is None:
        return f
    try:
        return _OPENERS[method](f)  # type: ignore[return-value]
    except ImportError:
        raise RecordError(
            f"{method}-compressed, and this Python cannot decompress {method}; decompress it first",
            path=p,
        ) from None


def read_bytes(p: Path, *, text: bool = True, budget: int | None = None) -> bytes:
    """The content of ``p`` (decompressed if it is compressed), read in chunks within budget.

    At most ``budget`` bytes (default :func:`refinedlr.limits.max_bytes`) and, for ``text``,
    :func:`refinedlr.limits.max_lines` lines (``\\n`` or ``\\r``); a file over budget is refused as
    soon as the excess is read, with at most one budget of content in memory.
    """
    limit = limits.max_bytes() if budget is None else budget
    max_lines = limits.max_lines()
    method = compression(p)
    what = f"{method}-compressed, and it expands to" if method else "it holds"
    out = io.BytesIO()
    total = newlines = returns = 0
    with open_regular(p) as raw:
        try:
            size = os.fstat(raw.fileno()).st_size
            if method is None and size > limit:
                raise _too_big(p, what, size, limit, "bytes")
            with _content(p, method, raw) as f:
                while chunk := f.read(_CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise _too_big(p, what, total, limit, "bytes")
                    if text:
                        newlines += chunk.count(b"\n")
                        returns += chunk.count(b"\r")
                        if max(newlines, returns) > max_lines:
                            raise _too_big(p, what, max(newlines, returns), max_lines, "lines")
                    out.write(chunk)
        except _DECOMPRESS_ERRORS as exc:
            if isinstance(exc, RecordError):
                raise
            raise _read_error(p, method, exc) from None
    return out.getvalue()


def read_head(p: Path, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of the content of ``p`` (decompressed if it is compressed)."""
    method = compression(p)
    with open_regular(p) as raw:
        try:
            with _content(p, method, raw) as f:
                return f.read(size)
        except _DECOMPRESS_ERRORS as exc:
            if isinstance(exc, RecordError):
                raise
            raise _read_error(p, method, exc) from None


def binary_stream(p: Path) -> IO[bytes]:
    """A binary stream of the content of ``p``: the open file, or its decompressed bytes."""
    if compression(p) is None:
        return open_regular(p)
    return io.BytesIO(read_bytes(p, text=False))


def decode_text(p: Path, data: bytes) -> str:
    """``data`` as text (UTF-8, BOM dropped, universal newlines); errors name file and line."""
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


def read_text(p: Path) -> str:
    """The file as text (UTF-8, BOM dropped, universal newlines); errors name file and line."""
    return decode_text(p, read_bytes(p))


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


class _LongNumber(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.length = len(text)


def _number(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > limits.MAX_NUMBER_CHARS:
            raise _LongNumber(text)
        return convert(text)

    return parse


_DECODER = json.JSONDecoder(parse_int=_number(int), parse_float=_number(float))


def _depth(doc: Any) -> int:
    """How deeply arrays and objects nest in ``doc`` (0 for a number or a string)."""
    deepest, todo = 0, [(doc, 1)]
    while todo:
        obj, d = todo.pop()
        if isinstance(obj, (dict, list)):
            deepest = max(deepest, d)
            if d <= limits.MAX_JSON_DEPTH:
                todo.extend((v, d + 1) for v in (obj.values() if isinstance(obj, dict) else obj))
    return deepest


class _JsonLimit(RecordError):
    """JSON over a limit of :mod:`refinedlr.limits` (nesting, number length): not a log, whatever
    else it might be."""


def load_json(p: Path, text: str, *, line: int | None = None) -> Any:
    """``text`` (the whole of ``p``, or its ``line``) as JSON, within the limits of
    :mod:`refinedlr.limits`: nesting at most :data:`~refinedlr.limits.MAX_JSON_DEPTH` deep, numbers
    at most :data:`~refinedlr.limits.MAX_NUMBER_CHARS` characters long. Errors name the line."""
    too_deep = _JsonLimit(
        f"JSON nested more than {limits.MAX_JSON_DEPTH} levels deep (a log or a schedule needs "
        "a few)",
        path=p,
        line=line,
    )
    try:
        doc = _DECODER.decode(text)
    except _LongNumber as exc:
        raise _JsonLimit(
            f"a number {exc.length:,} characters long (at most {limits.MAX_NUMBER_CHARS} are "
            "read): not a gradient norm or a step",
            path=p,
            line=line,
        ) from None
    except RecursionError:
        raise too_deep from None
    except json.JSONDecodeError as exc:
        where = line if line is not None else exc.lineno
        hint = "a cut-off line?" if line is not None else "a truncated file?"
        raise RecordError(
            f"not JSON ({exc.msg} at column {exc.colno}); {hint}", path=p, line=where
        ) from None
    except ValueError as exc:  # e.g. a number the conversion refuses
        raise RecordError(f"not JSON ({brief(str(exc), 80)})", path=p, line=line) from None
    if _depth(doc) > limits.MAX_JSON_DEPTH:
        raise too_deep
    return doc
