"""Size limits checked before anything is allocated, so that a hostile or mistaken input is
refused with a clear message instead of a ``MemoryError`` after minutes of swapping.

:data:`MAX_STEPS` bounds the number of optimizer steps a gradient-norm record is expanded to
(:meth:`refinedlr.records.GradNormRecord.norms`), and a schedule's horizon. Every function that
applies it takes a ``max_steps=`` argument to raise it (``None``: no limit), and every command
that reads a log or a schedule takes ``--max-steps``.

Sizes: ``MAX_STEPS`` float64 values take 80 MB; refinement and bounds keep a handful of such
arrays. Runs longer than ten million optimizer steps are rare; pass a larger limit for them.

>>> MAX_STEPS
10000000
>>> check_steps(1_000, max_steps=MAX_STEPS)
>>> check_steps(10**12, max_steps=MAX_STEPS)
'1,000,000,000,000 steps, more than the limit of 10,000,000 (raise it with max_steps=... or
--max-steps if the run really was that long)'
"""

from __future__ import annotations

__all__ = ["MAX_STEPS", "check_steps"]

#: The most optimizer steps a record is expanded to, or a schedule spans, without being asked.
MAX_STEPS = 10_000_000


def check_steps(total_steps: int, *, max_steps: int | None) -> str | None:
    """What is wrong with ``total_steps`` steps under the limit ``max_steps`` (``None``: no
    limit), or ``None`` when it is within the limit. The caller raises its own error type with
    this text, adding the file or argument it concerns."""
    if max_steps is None or total_steps <= max_steps:
        return None
    return (
        f"{total_steps:,} steps, more than the limit of {max_steps:,} (raise it with "
        "max_steps=... or --max-steps if the run really was that long)"
    )
