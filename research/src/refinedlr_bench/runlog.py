"""The invocation log of a suite's output folder: ``runlog.jsonl``, one JSON object per command.

Every suite appends one entry per invocation (date, command, wall time, runs trained, ...) and its
report lists them, so the command that trained the results and its cost stay on record when a
later invocation only rereads the cache.

Bad lines: a line that is not a JSON object (for example the half-written last line of a command
killed while appending) is skipped with a :class:`RuntimeWarning` that names the file and line;
the other entries are read. :func:`append_runlog` starts a new line if the file does not end
with one, so one bad line never swallows the next entry.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> append_runlog(out, {"command": "refinedlr bench convex", "wall_seconds": 1.5})
>>> [e["command"] for e in read_runlog(out)]
['refinedlr bench convex']
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from refinedlr_bench.jsonio import to_jsonable

__all__ = ["RUNLOG", "append_runlog", "read_runlog"]

#: The file name, in the suite's output folder.
RUNLOG = "runlog.jsonl"


def append_runlog(out: Path, entry: Mapping[str, Any]) -> None:
    """Append ``entry`` as one line to ``out/runlog.jsonl`` (created if missing)."""
    path = Path(out) / RUNLOG
    line = json.dumps(to_jsonable(dict(entry))) + "\n"
    with path.open("a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = "\n" + line
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def read_runlog(out: Path) -> list[dict[str, Any]]:
    """The entries of ``out/runlog.jsonl`` in order (``[]`` if there is none); bad lines are
    skipped with a warning naming them."""
    path = Path(out) / RUNLOG
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            warnings.warn(
                f"{path}:{lineno}: not a JSON object; line skipped", RuntimeWarning, stacklevel=2
            )
            continue
        entries.append(entry)
    return entries
