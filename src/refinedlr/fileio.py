"""Writing files safely: atomic replacement, and the ``with`` protocol of the library's writers.

Every file the library writes whole (schedules, refined tables, rewritten records) goes through
:func:`atomic_write`: the content is written to a temporary file in the same directory, flushed to
disk and renamed over the target, so a reader (or a crash) never sees half a file. Files that grow
while training (gradient-norm records) are appended instead; their writers share :class:`Closing`.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "out", "a.txt")
    >>> with atomic_write(path) as f:
    ...     _ = f.write("hello\\n")
    >>> open(path).read()
    'hello\\n'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

__all__ = ["Closing", "atomic_write"]

_C = TypeVar("_C", bound="Closing")


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, binary: bool = False, fsync: bool = True
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    Missing parent directories are created. On an exception the temporary file is removed and
    ``path`` is left as it was. ``binary`` opens the file in binary mode (text is UTF-8).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        f: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        try:
            mode = target.stat().st_mode & 0o777  # keep an existing file's permissions
        except OSError:
            mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Closing:
    """``with obj: ...`` calls ``obj.close()`` on the way out (the writers' shared protocol)."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
