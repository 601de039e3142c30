"""The writer of the on-disk record format (:class:`RecordWriter`): ``step,<kind>...`` CSV rows,
appended while training by one writer at a time."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from ..fileio import Closing
from .inputs import open_regular
from .record import RecordError, brief
from .series import INDEX_NAMES
from .steps import STEP_NAMES

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking
    fcntl = None  # type: ignore[assignment]

#: The characters a norm kind may hold: a letter, digit or ``_`` first, then also ``. : / @ + -``
#: (no space, comma, quote or line break), at most 100 in all; so that every record written is read
#: back with the same kinds.
KIND_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/@+\-]{0,99}")
_RESERVED = frozenset(STEP_NAMES) | INDEX_NAMES
#: errno values of file systems without ``flock``: the file is written without a lock there
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def _check_kind(kind: object, path: Path) -> str:
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind):
        raise RecordError(
            f"bad norm kind name {brief(repr(kind))}: use letters, digits and _ . : / @ + - "
            "(a letter, digit or _ first; at most 100 characters)",
            path=path,
        )
    if kind.lower() in _RESERVED:
        raise RecordError(
            f"bad norm kind name {kind!r}: readers take it for a step or time column", path=path
        )
    return kind


class RecordWriter(Closing):
    """Append rows ``step,<kind>...`` to a CSV record, durably.

    Every :meth:`write` goes to the OS at once (:meth:`flush` also to the disk). An existing file
    is continued (same kinds; a cut-off last line and rows from ``start_step`` on are removed). The
    file is locked until :meth:`close`: a second writer raises :class:`RecordError`, as do writes
    after the file was deleted or replaced and writes the OS refuses (a partial row is removed).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "r.csv")
    >>> with RecordWriter(p, kinds=("l2", "l1")) as w:
    ...     w.write([0, 1], [[1.0, 2.0], [3.0, 4.0]])
    >>> with RecordWriter(p, kinds=("l2", "l1"), start_step=1) as w:  # resume at step 1
    ...     w.write([1], [[5.0, 6.0]])
    >>> print(open(p).read().strip())
    step,l2,l1
    0,1,2
    1,5,6
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        kinds: Sequence[str] = ("l2",),
        *,
        start_step: int | None = None,
    ) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = None
        if isinstance(kinds, str):
            raise self._error(f"kinds must be a sequence of names, not the string {brief(kinds)!r}")
        self.kinds = tuple(_check_kind(k, self.path) for k in kinds)
        if not self.kinds:
            raise self._error("a record needs at least one norm kind")
        if len(set(self.kinds)) != len(self.kinds):
            raise self._error(f"a norm kind appears twice in {list(self.kinds)}")
        if start_step is not None and (
            isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0
        ):
            raise self._error(f"start_step must be an integer >= 0, got {brief(repr(start_step))}")
        self.header = ",".join(("step", *self.kinds))
        self.last_step: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._open_locked()
            self._continue_existing(start_step)
        except OSError as exc:
            self._abandon()
            raise self._error(f"cannot write: {exc.strerror or exc}") from None
        except BaseException:
            self._abandon()
            raise
        self._good = os.fstat(self._file.fileno()).st_size  # the end of the last complete row

    def _open_locked(self) -> IO[bytes]:
        f = open_regular(self.path, write=True)
        try:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise self._error(
                "another writer is recording to this file (a second recorder or RecordWriter on "
                "the same path, in this process or another); give each run or rank its own file"
            ) from None
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                f.close()
                raise
        return f

    def _error(self, message: str, **where: Any) -> RecordError:
        return RecordError(message, path=self.path, **where)

    def _abandon(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _continue_existing(self, start_step: int | None) -> None:
        """Cut an existing record back to its last complete row before ``start_step``, in place."""
        assert self._file is not None
        self._file.seek(0)
        data = self._file.read()
        if not data:
            self._append((self.header + "\n").encode())
            return
        nl = data.find(b"\n")
        first = (data if nl < 0 else data[:nl]).decode("utf-8", "replace").strip()
        if first != self.header:
            raise self._error(
                f"existing record has header {brief(first)!r}, expected {self.header!r}; "
                "write to a new file or record the same norm kinds",
                line=1,
            )
        if nl < 0:  # only the header, cut before its end of line
            self._append(b"\n")
            return
        keep = pos = nl + 1
        line_no = 1
        while pos < len(data):
            end = data.find(b"\n", pos)
            if end < 0:
                break  # a last line without its end: cut mid-write, dropped
            line_no += 1
            line = data[pos:end]
            if line.strip():
                try:
                    step = int(line.split(b",", 1)[0])
                except ValueError:
                    raise self._error(
                        f"cannot continue the record: bad step in {brief(repr(line))}",
                        line=line_no,
                    ) from None
                if start_step is not None and step >= start_step:
                    break
                self.last_step = step
            keep = pos = end + 1
        if keep < len(data):
            os.ftruncate(self._file.fileno(), keep)

    def _append(self, data: bytes) -> None:
        assert self._file is not None
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) or 0 :]

    def _check_still_there(self) -> None:
        assert self._file is not None
        own, now = os.fstat(self._file.fileno()), None
        with contextlib.suppress(OSError):
            now = os.stat(self.path)
        if now is None or (now.st_ino, now.st_dev) != (own.st_ino, own.st_dev):
            raise self._error(
                "the record file was deleted or replaced while recording (its directory removed "
                "or cleaned up?); the rows from here on cannot be saved to it"
            )

    def write(self, steps: Iterable[int], rows: npt.ArrayLike) -> None:
        """Append rows: ``steps[i]`` with ``rows[i]`` (one value per kind; NaN for missing)."""
        if self._file is None:
            raise self._error("the writer is closed")
        try:
            st = np.asarray(list(steps) if not isinstance(steps, np.ndarray) else steps, np.int64)
            vals = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise self._error(
                f"steps must be integers below 2^63 and rows numbers ({brief(str(exc), 80)})"
            ) from None
        if st.ndim != 1:
            raise self._error(f"steps must be 1-D, got shape {st.shape}")
        if st.size == 0 and vals.size == 0:
            return
        if vals.size != st.size * len(self.kinds):
            raise self._error(
                f"{vals.size} values for {st.size} steps and kinds {list(self.kinds)}; "
                f"expected {st.size * len(self.kinds)}"
            )
        vals = vals.reshape(st.shape[0], len(self.kinds))
        prev = -1 if self.last_step is None else self.last_step
        if int(st[0]) <= prev or np.any(np.diff(st) <= 0):
            raise self._error(f"steps must increase: writing step {int(st[0])} after {prev}")
        lines = [
            ",".join((str(int(s)), *(format(x, ".9g") if math.isfinite(x) else "nan" for x in row)))
            for s, row in zip(st, vals, strict=True)
        ]
        self._check_still_there()
        lost = f"steps {int(st[0])}..{int(st[-1])}"
        try:
            self._append(("\n".join(lines) + "\n").encode())
        except OSError as exc:
            with contextlib.suppress(OSError):  # remove a partly written row: no half row stays
                os.ftruncate(self._file.fileno(), self._good)
            raise self._error(
                f"cannot write {lost}: {exc.strerror or exc} (errno {exc.errno})"
            ) from None
        self._good = os.fstat(self._file.fileno()).st_size
        self.last_step = int(st[-1])

    def flush(self, fsync: bool = True) -> None:
        """Rows already reach the OS at each :meth:`write`; with ``fsync``, also the disk."""
        if self._file is None or not fsync:
            return
        try:
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise self._error(f"cannot save to disk: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Save to disk and release the file (and its lock); idempotent."""
        if self._file is not None:
            try:
                self.flush(fsync=True)
            finally:
                self._abandon()
