"""Reading a user's file: only regular files (a named pipe would block forever), compressed files
decompressed transparently, text decoded as UTF-8 with errors naming the line, and JSON numbers.

Compression is recognised by the file's first bytes, whatever its name: gzip (``.gz``), bzip2
(``.bz2``) and xz (``.xz``) are read as the file they hold, up to :data:`MAX_DECOMPRESSED` bytes
(a small archive can expand to any size); zstd and zip archives are refused with advice.
"""

from __future__ import annotations

import bz2
import gzip
import io
import math
import os
import stat
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .record import RecordError

__all__ = [
    "COMPRESSED_SUFFIXES",
    "MAX_DECOMPRESSED",
    "binary_stream",
    "compression",
    "decode_text",
    "json_number",
    "open_regular",
    "read_bytes",
    "read_head",
    "read_text",
    "uncompressed_name",
]

#: The most bytes a compressed log may expand to.
MAX_DECOMPRESSED = 1 << 30
#: File name endings of the compressed files read transparently.
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")

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


def _decompress(p: Path, method: str, f: IO[bytes], limit: int) -> bytes:
    """At most ``limit`` bytes of the decompressed content (``limit + 1`` reveals more)."""
    try:
        with _OPENERS[method](f) as z:
            return z.read(limit)
    except ImportError:
        raise RecordError(
            f"{method}-compressed, and this Python cannot decompress {method}; decompress it first",
            path=p,
        ) from None
    except _DECOMPRESS_ERRORS as exc:
        raise RecordError(
            f"{method}-compressed, but the data is corrupt or cut off ({exc}); decompress it to "
            "see what it holds",
            path=p,
        ) from None


def read_bytes(p: Path) -> bytes:
    """The content of ``p`` (decompressed if it is compressed)."""
    method = compression(p)
    with open_regular(p) as f:
        try:
            if method is None:
                return f.read()
            data = _decompress(p, method, f, MAX_DECOMPRESSED + 1)
        except OSError as exc:
            raise RecordError(f"cannot read: {exc.strerror or exc}", path=p) from None
    if len(data) > MAX_DECOMPRESSED:
        raise RecordError(
            f"{method}-compressed, and it expands to more than {MAX_DECOMPRESSED:,} bytes; "
            "decompress it yourself if it really is a log",
            path=p,
        )
    return data


def read_head(p: Path, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of the content of ``p`` (decompressed if it is compressed)."""
    method = compression(p)
    with open_regular(p) as f:
        try:
            return f.read(size) if method is None else _decompress(p, method, f, size)
        except OSError as exc:
            raise RecordError(f"cannot read: {exc.strerror or exc}", path=p) from None


def binary_stream(p: Path) -> IO[bytes]:
    """A binary stream of the content of ``p``: the open file, or its decompressed bytes."""
    if compression(p) is None:
        return open_regular(p)
    return io.BytesIO(read_bytes(p))


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
