"""Format detection and dispatch: :func:`read_record` guesses a log's format from its name and
content and hands it to the reader of that format (one module per format in this package)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import limits
from .delimited import looks_like_wandb, read_delimited, read_wandb
from .inputs import (
    _JsonLimit,
    decode_text,
    load_json,
    open_regular,
    read_bytes,
    read_head,
    uncompressed_name,
)
from .jsonl import read_jsonl, read_trainer_state
from .npy import read_npy
from .record import GradNormRecord, RecordError, brief, warn_at_caller
from .steps import ReadRequest
from .tensorboard import event_files, read_tensorboard

_READERS: dict[str, Callable[[Path, ReadRequest], GradNormRecord]] = {
    "csv": read_delimited,
    "npy": read_npy,
    "wandb": read_wandb,
    "jsonl": read_jsonl,
    "trainer_state": read_trainer_state,
    "tensorboard": read_tensorboard,
}
FORMATS: tuple[str, ...] = tuple(_READERS)
_ALIASES = {"tsv": "csv", "ndjson": "jsonl", "tb": "tensorboard", "tfevents": "tensorboard"}


def read_record(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    column: str | None = None,
    tag: str | None = None,
    step_offset: int | None = None,
) -> GradNormRecord:
    """Read a gradient-norm log; the format is guessed from the name and content unless given.

    Formats (``format=``), what becomes a step, and the kind the values are stored under:

    * ``csv``: this library's own ``step,<kind>...`` format (a cut-off last line is dropped with
      a warning), any CSV/TSV/semicolon file with a header (the ``column=`` named, else the only
      numeric column or ``grad_norm``/``train/grad_norm``; ``epoch`` and time stamps never), or
      a headerless column (kind ``"l2"``). Steps: the first of :data:`STEP_NAMES` present (any
      case), else the row index. An empty cell is no row for that step; ``nan`` is missing.
    * ``npy`` (``allow_pickle=False``): 1-D (kind ``"l2"``), 2-D ``(steps, kinds)`` (kinds
      ``col0, col1, ...``; ``column="1"`` picks one) or structured (fields, a ``step`` field).
    * ``wandb``: a W&B chart CSV export; ``column=`` picks a series by header, run or metric
      (default: a lone ``grad_norm``); kind: the metric.
    * ``jsonl``: one object per line; keys and steps as for ``csv`` (else the line index); lines
      without the key are skipped and counted; ``null`` is missing.
    * ``trainer_state``: Hugging Face's ``log_history[*]["grad_norm"]`` (kind ``"l2"``); its
      step ``s`` counts steps *completed*, so it is step ``t = s - 1``.
    * ``tensorboard``: event files or a run directory (needs ``refinedlr[tensorboard]``);
      ``tag=`` names the scalar (default ``grad_norm``, ``train/grad_norm``); a 1-based log
      (its first step divides every step, as Hugging Face's callback writes) is shifted by -1.

    ``column=`` and ``tag=`` both name the series; ``step_offset`` is added to every step as
    written, instead of the format's convention. A step logged twice keeps its *last* value.
    Sizes are bounded by :mod:`refinedlr.limits` before anything is allocated; only regular files
    are read, gzip, bzip2 and xz files as the file they hold. Malformed input raises
    :class:`RecordError` naming file, line or key, and problem; what the reader worked around is a
    :class:`UserWarning` (also in ``meta["warnings"]``).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "log.tsv"
    >>> _ = p.write_text("iteration\\tloss\\tgrad_norm\\n10\\t2.5\\t4.0\\n20\\t2.1\\t2.0\\n")
    >>> rec = read_record(p)  # grad_norm is preferred over loss; sparse: logged every 10 steps
    >>> rec.kinds, rec.steps.tolist(), rec.stride
    (('grad_norm',), [10, 20], 10)
    >>> rec.norms()[9:14]  # steps 0..9 take the first value; 11..19 are interpolated
    array([4. , 4. , 3.8, 3.6, 3.4])
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise RecordError("no such file", path=p)
    if not p.is_dir():
        open_regular(p).close()  # refuses a named pipe, a device, a socket (without blocking)
    if isinstance(step_offset, bool) or not isinstance(step_offset, (int, type(None))):
        raise RecordError(f"step_offset must be an integer, got {brief(repr(step_offset))}", path=p)
    fmt = guess_format(p) if format is None else _ALIASES.get(format.lower(), format.lower())
    reader = _READERS.get(fmt)
    if reader is None:
        raise RecordError(f"unknown format {brief(str(format))!r}; known: {list(FORMATS)}", path=p)
    if p.is_dir() and fmt not in ("tensorboard", "trainer_state"):
        raise RecordError(f"a directory, not a {fmt} file", path=p)
    record = reader(p, ReadRequest(column=column, tag=tag, step_offset=step_offset))
    # readers never warn themselves: what they would say is in meta["warnings"], said here and
    # attributed to the first caller outside the library, however deep the reader's calls go
    for message in record.meta.get("warnings", ()):
        warn_at_caller(message, UserWarning)
    return record


def guess_format(p: Path) -> str:
    """The format of ``p`` (one of :data:`FORMATS`) from its name, then its first bytes."""
    if p.is_dir():
        if (p / "trainer_state.json").is_file():
            return "trainer_state"
        if event_files(p):
            return "tensorboard"
        raise RecordError(
            "a directory without trainer_state.json or TensorBoard event files "
            "(events.out.tfevents.*); pass a file",
            path=p,
        )
    name = uncompressed_name(p.name).lower()
    suffix = Path(name).suffix
    if name.startswith("events.out.tfevents") or ".tfevents." in name:
        return "tensorboard"
    if name == "trainer_state.json":
        return "trainer_state"
    if suffix in (".npy", ".npz"):
        return "npy"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    head = read_head(p)
    if head.startswith(b"\x93NUMPY") or head.startswith(b"PK\x03\x04"):
        return "npy"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("{") or suffix == ".json":
        return _guess_json(p, head)
    if b"\0" not in head and suffix in ("", ".csv", ".tsv", ".txt", ".dat", ".log"):
        first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
        return "wandb" if looks_like_wandb(first) else "csv"
    raise RecordError(
        f"cannot tell the format of {p.name!r} from its name and content; pass format=... "
        f"(one of {list(FORMATS)})",
        path=p,
    )


def _guess_json(p: Path, head: bytes) -> str:
    lines = head.decode("utf-8", errors="replace").lstrip("\ufeff").split("\n")
    obj = _json_or_none(p, next((x for x in lines if x.strip()), lines[-1]))  # the first line
    if isinstance(obj, dict):
        return "trainer_state" if "log_history" in obj else "jsonl"
    if b'"log_history"' in head:
        return "trainer_state"
    data = read_bytes(p, budget=limits.max_bytes() // 2)  # over budget: refused, not guessed
    doc = _json_or_none(p, decode_text(p, data))  # a pretty-printed (multi-line) document?
    if isinstance(doc, dict) and "log_history" in doc:
        return "trainer_state"
    raise RecordError(
        "a JSON file that is neither JSON lines (one object per line) nor a Hugging Face "
        "trainer_state.json (no 'log_history' key); pass format=...",
        path=p,
    )


def _json_or_none(p: Path, text: str) -> Any:
    """``text`` as JSON, or ``None`` when it is not JSON (JSON over the limits is refused)."""
    try:
        return load_json(p, text)
    except _JsonLimit:
        raise
    except RecordError:
        return None
