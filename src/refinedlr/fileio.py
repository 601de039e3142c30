"""Writing files safely: :func:`atomic_write` writes a file beside its target, flushes it and
renames it over the target (a reader or a crash never sees half a file; a read-only target is
never replaced); inside :func:`transaction` the files of a block appear together or not at all.
Files that grow while training are appended instead; their writers share :class:`Closing`.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

__all__ = ["Closing", "after_commit", "atomic_write", "check_replaceable", "transaction"]

_C = TypeVar("_C", bound="Closing")
#: The files of the current transaction, written and flushed: (temporary, target, mode).
_STAGED: contextvars.ContextVar[list[tuple[Path, Path, int]] | None] = contextvars.ContextVar(
    "refinedlr_transaction", default=None
)
#: What to do once the current transaction's files are in place (e.g. say "wrote ...").
_AFTER: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "refinedlr_after_commit", default=None
)


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`PermissionError` when ``path`` is an existing file whose permission bits
    allow no writing (it is not replaced, even by a user whom the permissions do not stop)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) and not mode & 0o222:
        raise PermissionError(
            errno.EACCES, "a read-only file (no write permission): not replaced", os.fspath(path)
        )


@contextlib.contextmanager
def transaction() -> Iterator[None]:
    """Write every file of the block all or none: :func:`atomic_write` inside it writes and
    flushes each file beside its target, and the block's end renames them all; an exception
    removes them all, leaving every target as it was. Nested blocks join the outer one.

    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> try:
    ...     with transaction():
    ...         with atomic_write(os.path.join(d, "a.txt")) as f:
    ...             _ = f.write("a")
    ...         raise RuntimeError("the second file failed")
    ... except RuntimeError:
    ...     pass
    >>> os.listdir(d)
    []
    """
    if _STAGED.get() is not None:
        yield
        return
    staged: list[tuple[Path, Path, int]] = []
    after: list[Callable[[], None]] = []
    tokens = _STAGED.set(staged), _AFTER.set(after)
    try:
        yield
        while staged:
            _commit(*staged[0])
            staged.pop(0)
    finally:
        _STAGED.reset(tokens[0])
        _AFTER.reset(tokens[1])
        for tmp, _, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for action in after:  # (reached only when every file is in place)
        action()


def after_commit(action: Callable[[], None]) -> None:
    """Run ``action`` once the enclosing :func:`transaction` has put its files in place (never if
    it fails: a command does not say "wrote" of a file it then takes back); outside one, now."""
    pending = _AFTER.get()
    if pending is None:
        action()
    else:
        pending.append(action)


def _commit(tmp: Path, target: Path, mode: int) -> None:
    os.chmod(tmp, mode)
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, binary: bool = False, fsync: bool = True
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it over ``path`` (at the end of
    the enclosing :func:`transaction`, if there is one).

    Missing parent directories are created; on an exception ``path`` is left as it was. Text is
    UTF-8 unless ``binary``. A read-only ``path`` is refused (:func:`check_replaceable`).

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "out", "a.txt")
    >>> with atomic_write(path) as f:
    ...     _ = f.write("hello\\n")
    >>> open(path).read()
    'hello\\n'
    """
    target = Path(path)
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
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
        staged = _STAGED.get()
        if staged is None:
            _commit(tmp, target, mode)
        else:
            staged.append((tmp, target, mode))
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
