"""Size limits that keep hostile or mistaken input (a log whose steps reach ``10**12``) from
exhausting memory: it is refused before anything is allocated. The one setting is
:data:`MAX_STEPS`; raise it when you really train longer (``--max-steps N`` for one command)::

    import refinedlr.limits
    refinedlr.limits.MAX_STEPS = 100_000_000

The budgets of a log (:func:`max_lines`, :func:`max_cells`, :func:`max_bytes`) follow from it, and
a horizon must also fit in memory (:func:`steps_problem`).
"""

from __future__ import annotations

import contextlib
import os

__all__ = [
    "BYTES_PER_STEP",
    "MAX_COLUMNS",
    "MAX_CONTINUATIONS",
    "MAX_JSON_DEPTH",
    "MAX_NUMBER_CHARS",
    "MAX_STEPS",
    "max_bytes",
    "max_cells",
    "max_lines",
    "memory_bytes",
    "steps_problem",
]

#: The largest horizon (optimizer steps) a schedule or a record may span: 80 MB per float64 array.
MAX_STEPS: int = 10_000_000

#: Memory a command may use per step of its horizon: about sixteen float64 arrays.
BYTES_PER_STEP = 128
#: The deepest nesting of JSON arrays and objects read (a log or schedule needs 3 or 4 levels).
MAX_JSON_DEPTH = 64
#: The most continuations (:func:`refinedlr.plan.extend`) one schedule may nest: each is a level of
#: a schedule file's spec, which must stay within :data:`MAX_JSON_DEPTH`.
MAX_CONTINUATIONS = 16
#: The longest number read from JSON, in characters (a float64 needs at most 24).
MAX_NUMBER_CHARS = 100
#: The most columns a delimited log may have.
MAX_COLUMNS = 65_536
#: Floors of the budgets below, so that a lowered MAX_STEPS still reads a small file.
_MIN_LINES, _MIN_BYTES = 1 << 20, 64 << 20


def max_lines() -> int:
    """Lines a text log may hold: two per step of :data:`MAX_STEPS`, at least a million."""
    return max(2 * MAX_STEPS, _MIN_LINES)


def max_cells() -> int:
    """Values (lines times columns) a delimited log may hold: eight per step."""
    return max(8 * MAX_STEPS, 8 * _MIN_LINES)


def max_bytes() -> int:
    """Bytes a log may hold once decompressed: 64 per step (640 MB by default), at least 64 MiB."""
    return max(64 * MAX_STEPS, _MIN_BYTES)


def memory_bytes() -> int | None:
    """The memory this process may use: physical memory, or the address-space limit
    (``RLIMIT_AS``) when that is lower; ``None`` when neither is known."""
    known: list[int] = []
    with contextlib.suppress(AttributeError, OSError, ValueError):  # not POSIX
        known.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            known.append(int(soft))
    known = [k for k in known if k > 0]
    return min(known) if known else None


def _size(n: float) -> str:
    unit = "bytes"
    for bigger in ("KB", "MB", "GB", "TB"):
        if n < 1000:
            break
        n, unit = n / 1000, bigger
    return f"{n:,.0f} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"


def steps_problem(total_steps: int, *, limit: int | None = None) -> str | None:
    """Why a horizon of ``total_steps`` steps cannot be used, or ``None`` when it can.

    It exceeds ``limit`` (default :data:`MAX_STEPS`), or its arrays (:data:`BYTES_PER_STEP` per
    step) would not fit in :func:`memory_bytes`.

    >>> steps_problem(1000) is None
    True
    >>> steps_problem(10**13, limit=10**14)
    '10,000,000,000,000 steps need about 1,280.0 TB of memory ...'
    """
    cap = MAX_STEPS if limit is None else limit
    if total_steps > cap:
        return (
            f"{total_steps:,} steps, more than the limit of {cap:,} (if the run really was that "
            "long, raise it: refinedlr.limits.MAX_STEPS = ... or --max-steps)"
        )
    memory, need = memory_bytes(), total_steps * BYTES_PER_STEP
    if memory is not None and need > memory:
        return (
            f"{total_steps:,} steps need about {_size(need)} of memory ({BYTES_PER_STEP} bytes "
            f"per step), more than the {_size(memory)} this process may use"
        )
    return None
