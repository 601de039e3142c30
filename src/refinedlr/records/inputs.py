"""Reading a user's file: only regular files (a named pipe would block forever), gzip, bzip2 and
xz files decompressed transparently (recognised by their first bytes, whatever their name), all
within the budgets of :mod:`refinedlr.limits`, counted while reading and decompressing, text
decoded as UTF-8 with errors naming the line, JSON parsed with bounded nesting and number length.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import math
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any

from .. import limits
from .record import RecordError, brief

#: File name endings of the compressed files read transparently.
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")
_CHUNK = 1 << 20

try:  # lzma is missing from some Python builds
    import lzma
except ImportError:  # pragma: no cover - depends on the build
    lzma = None  # type: ignore[assignment]
_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
_MODULES: dict[str | None, Any] = {"gzip": gzip, "bzip2": bz2, "xz": lzma}
#: what reading a damaged file, or decompressing one, raises
_BAD_DATA = (OSError, EOFError, ValueError, zlib.error, *([lzma.LZMAError] if lzma else []))
_MODES = {stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFIFO: "a named pipe (FIFO)"}
_MODES.update({stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"})


def describe_mode(mode: int) -> str:
    """What a file that is not a regular file is, from its ``st_mode``."""
    return _MODES.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(p: Path, *, write: bool = False) -> IO[bytes]:
    """Open ``p`` in binary mode if it is a regular file (never blocks: a named pipe is refused,
    not read); ``write`` opens it for appending, created if need be, unbuffered."""
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0) if write else 0
    try:
        fd = os.open(p, flags | getattr(os, "O_NONBLOCK", 0), 0o644)
    except OSError as exc:
        what = "write" if write else "read"
        raise RecordError(f"cannot {what}: {exc.strerror or exc}", path=p) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            advice = "a record is written to a file" if write else "pass the log file itself"
            raise RecordError(f"{describe_mode(mode)}, not a regular file: {advice}", path=p)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb+" if write else "rb", buffering=0 if write else -1)
    except BaseException:
        os.close(fd)
        raise


def compression(p: Path) -> str | None:
    """``"gzip"``, ``"bzip2"`` or ``"xz"`` when ``p`` is compressed that way, else ``None``."""
    with open_regular(p) as f:
        head = f.read(8)
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise RecordError(
            "a zstd-compressed file; decompress it first (gzip, bzip2 and xz files are read "
            "directly)",
            path=p,
        )
    return next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)


def uncompressed_name(name: str) -> str:
    """``name`` without a compression suffix: ``norms.csv.gz`` -> ``norms.csv``."""
    for suffix in COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _too_big(p: Path, what: str, count: int, limit: int, unit: str) -> RecordError:
    return RecordError(
        f"{what} more than {limit:,} {unit} (at least {count:,}), over the size limit for a log "
        "(raise refinedlr.limits.MAX_STEPS or --max-steps if it really is one)",
        path=p,
    )


@contextlib.contextmanager
def _content(p: Path) -> Iterator[tuple[str | None, int, IO[bytes]]]:
    """The compression of ``p``, its size on disk and its (decompressed) content."""
    method = compression(p)
    module = _MODULES.get(method)
    with open_regular(p) as raw:
        if method is not None and module is None:  # pragma: no cover - depends on the build
            raise RecordError(
                f"{method}-compressed, and this Python cannot decompress {method}; decompress it "
                "first",
                path=p,
            )
        try:
            with raw if module is None else module.open(raw) as f:
                yield method, os.fstat(raw.fileno()).st_size, f
        except RecordError:
            raise
        except _BAD_DATA as exc:
            if method is None:
                why = getattr(exc, "strerror", None) or exc
                raise RecordError(f"cannot read: {why}", path=p) from None
            raise RecordError(
                f"{method}-compressed, but the data is corrupt or cut off "
                f"({brief(str(exc), 80)}); decompress it to see what it holds",
                path=p,
            ) from None


def read_bytes(p: Path, *, text: bool = True, budget: int | None = None) -> bytes:
    """The (decompressed) content of ``p``: at most ``budget`` bytes (default
    :func:`refinedlr.limits.max_bytes`) and, for ``text``, :func:`refinedlr.limits.max_lines` lines
    (``\\n`` or ``\\r``), refused as soon as the excess is read."""
    limit = limits.max_bytes() if budget is None else budget
    max_lines = limits.max_lines()
    out = io.BytesIO()
    total = newlines = returns = 0
    with _content(p) as (method, size, f):
        what = f"{method}-compressed, and it expands to" if method else "it holds"
        if method is None and size > limit:
            raise _too_big(p, what, size, limit, "bytes")
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
    return out.getvalue()


def read_head(p: Path, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of the content of ``p`` (decompressed if it is compressed)."""
    with _content(p) as (_, _, f):
        return f.read(size)


def binary_stream(p: Path) -> IO[bytes]:
    """A binary stream of the content of ``p``: the open file, or its decompressed bytes."""
    return open_regular(p) if compression(p) is None else io.BytesIO(read_bytes(p, text=False))


def decode_text(p: Path, data: bytes) -> str:
    """``data`` as text (UTF-8, BOM dropped, universal newlines); errors name file and line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordError(
            f"not UTF-8 text (byte {exc.start}); a binary file? pass format=...",
            path=p,
            line=data[: exc.start].count(b"\n") + 1,
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def read_text(p: Path) -> str:
    """The file as text (UTF-8, BOM dropped, universal newlines); errors name file and line."""
    return decode_text(p, read_bytes(p))


def read_json(p: Path) -> Any:
    """The JSON document in ``p``, within half a log's byte budget and the limits of load_json."""
    text = decode_text(p, read_bytes(p, budget=limits.max_bytes() // 2))
    if not text.strip():
        raise RecordError("empty file", path=p)
    return load_json(p, text)


def lines_of(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, str]]:
    """``(offset, line)`` of each line of ``text[start:end]``, without copying the text."""
    end = len(text) if end is None else end
    while start < end:
        nl = text.find("\n", start, end)
        stop = end if nl < 0 else nl
        yield start, text[start:stop]
        start = stop + 1


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


def json_float(v: Any, problem: str, p: Path, *, null: bool = True, **where: Any) -> float:
    """A JSON value as a float (``null`` as NaN, unless ``null`` is false), else an error
    quoting it."""
    x = json_number(v)
    if x is None or (v is None and not null):
        raise RecordError(f"{problem}: {brief(repr(v), 40)}", path=p, **where)
    return x


class _LongNumber(ValueError):
    pass


def _number(text: str, convert: Callable[[str], Any] = float) -> Any:
    if len(text) > limits.MAX_NUMBER_CHARS:
        raise _LongNumber(len(text))
    return convert(text)


_DECODER = json.JSONDecoder(parse_int=partial(_number, convert=int), parse_float=_number)


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
    """JSON over a limit of :mod:`refinedlr.limits` (nesting, number length): not a log."""


def load_json(p: Path, text: str, *, line: int | None = None) -> Any:
    """``text`` (the whole of ``p``, or its ``line``) as JSON, within the limits of
    :mod:`refinedlr.limits`: nesting at most :data:`~refinedlr.limits.MAX_JSON_DEPTH` deep, numbers
    at most :data:`~refinedlr.limits.MAX_NUMBER_CHARS` characters long. Errors name the line."""
    depth = limits.MAX_JSON_DEPTH
    too_deep = f"JSON nested more than {depth} levels deep (a log or a schedule needs a few)"
    try:
        doc = _DECODER.decode(text)
    except _LongNumber as exc:
        raise _JsonLimit(
            f"a number {exc.args[0]:,} characters long (at most {limits.MAX_NUMBER_CHARS} are "
            "read): not a gradient norm or a step",
            path=p,
            line=line,
        ) from None
    except RecursionError:
        raise _JsonLimit(too_deep, path=p, line=line) from None
    except json.JSONDecodeError as exc:
        hint = "a cut-off line?" if line is not None else "a truncated file?"
        raise RecordError(
            f"not JSON ({exc.msg} at column {exc.colno}); {hint}",
            path=p,
            line=exc.lineno if line is None else line,
        ) from None
    except ValueError as exc:  # e.g. a number the conversion refuses
        raise RecordError(f"not JSON ({brief(str(exc), 80)})", path=p, line=line) from None
    if _depth(doc) > limits.MAX_JSON_DEPTH:
        raise _JsonLimit(too_deep, path=p, line=line)
    return doc
