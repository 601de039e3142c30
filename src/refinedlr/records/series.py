"""Choosing the series (column, key, field) that holds the gradient norms in a foreign log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .record import RecordError, brief, brief_list, norm_type

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
    unparsed: Mapping[str, str] | None = None,
) -> str:
    """Choose one series: the one named ``wanted``; else the only candidate; else a default name.
    ``unparsed`` maps the series that hold no numbers to what they hold (see
    :func:`refuse_unparsed_norms`)."""
    if wanted is not None:
        if wanted in candidates:
            return wanted
        if aliases and wanted in aliases:
            return aliases[wanted]
        raise RecordError(
            f"no {what} {brief(wanted)!r}; the {what if what.endswith('s') else what + 's'} are "
            f"{brief_list(list(candidates))}",
            path=p,
            line=line,
            key=wanted,
        )
    refuse_unparsed_norms(unparsed or {}, p, what)
    if len(candidates) == 1:
        return candidates[0]
    if default := next((n for n in DEFAULT_NAMES if n in candidates), None):
        return default
    if not candidates:
        raise RecordError(f"no numeric {what} holding gradient norms", path=p, line=line)
    raise RecordError(
        f"several {what}s {brief_list(list(candidates))}: choose one with column=... (--column)",
        path=p,
        line=line,
    )


def refuse_unparsed_norms(unparsed: Mapping[str, str], p: Path, what: str) -> None:
    """Refuse a log in which a series named as a gradient norm (``grad_norm``, ``l2``, ...: see
    :func:`~refinedlr.records.record.norm_type`) holds no numbers; ``unparsed`` maps the series
    without numbers to what they hold instead."""
    for name, held in unparsed.items():
        if norm_type(name) is not None:
            raise RecordError(
                f"the {what} {brief(name)!r} is named as a gradient norm but holds no numbers "
                f"({held}); no other {what} is taken in its place: fix the log, or name the "
                f"{what} to read with column=... (--column)",
                path=p,
                key=name,
            )
