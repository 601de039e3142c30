"""Choosing the series (column, key, field) that holds the gradient norms in a foreign log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .record import RecordError

__all__ = ["DEFAULT_NAMES", "INDEX_NAMES", "pick_series"]

#: Series picked without ``column=`` / ``tag=`` when a log has several, in order of preference.
DEFAULT_NAMES: tuple[str, ...] = ("grad_norm", "train/grad_norm")
#: Numeric columns that are never taken as a norm without being asked for by name.
INDEX_NAMES = frozenset(
    {"epoch", "_runtime", "_timestamp", "timestamp", "wall_time", "walltime", "time", "runtime"}
)


def pick_series(
    candidates: Sequence[str],
    wanted: str | None,
    p: Path,
    what: str,
    *,
    line: int | None = None,
    aliases: Mapping[str, str] | None = None,
) -> str:
    """Choose one series: the one named ``wanted``; else the only candidate; else a default name."""
    if wanted is not None:
        if wanted in candidates:
            return wanted
        if aliases and wanted in aliases:
            return aliases[wanted]
        raise RecordError(
            f"no {what} {wanted!r}; the {what if what.endswith('s') else what + 's'} are {list(candidates)}",
            path=p,
            line=line,
            key=wanted,
        )
    if len(candidates) == 1:
        return candidates[0]
    for name in DEFAULT_NAMES:
        if name in candidates:
            return name
    if not candidates:
        raise RecordError(f"no numeric {what} holding gradient norms", path=p, line=line)
    raise RecordError(
        f"several {what}s {list(candidates)}: choose one with column=... (--column)",
        path=p,
        line=line,
    )
