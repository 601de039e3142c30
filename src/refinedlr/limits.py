"""Size limits that keep hostile or mistaken input from exhausting memory.

A gradient-norm record or a schedule is tabulated on every optimizer step, so a horizon of ``T``
steps costs ``8 T`` bytes per array. A log whose step numbers reach ``10**12`` (a corrupt file, a
counter in microseconds) would ask for terabytes; such input is refused up front, before anything
is allocated.

There is one setting, :data:`MAX_STEPS`, read whenever a size is checked. Raise it when you really
train longer (the command line's ``--max-steps N`` sets it for one command)::

    import refinedlr.limits
    refinedlr.limits.MAX_STEPS = 100_000_000

Every other budget follows from it, so raising the one setting raises them all:

* a log may hold :func:`max_lines` lines, :func:`max_cells` values (rows times columns) and
  :func:`max_bytes` bytes once decompressed (a JSON document half of that); these are checked
  while the file is read, before it is parsed;
* a horizon must also fit in memory: :func:`steps_problem` refuses one whose arrays
  (:data:`BYTES_PER_STEP` per step) would not fit in this machine's memory (or the process's
  address-space limit), whatever :data:`MAX_STEPS` says;
* JSON is nested at most :data:`MAX_JSON_DEPTH` levels and a number is at most
  :data:`MAX_NUMBER_CHARS` characters long; a run is continued at most
  :data:`MAX_CONTINUATIONS` times in one schedule.
"""

from __future__ import annotations

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

#: Memory a command may use per step of its horizon: about sixteen float64 arrays (norms,
#: smoothed norms, weights, the schedule, its table, a figure's copies).
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
    """Lines a text log may hold: two per step of :data:`MAX_STEPS` (a resumed run logs some
    steps twice), at least a million."""
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
    try:
        known.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            known.append(int(soft))
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        pass
    known = [k for k in known if k > 0]
    return min(known) if known else None


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def steps_problem(total_steps: int, *, limit: int | None = None) -> str | None:
    """Why a horizon of ``total_steps`` steps cannot be used, or ``None`` when it can.

    It is refused when it exceeds ``limit`` (default :data:`MAX_STEPS`) or when its arrays
    (:data:`BYTES_PER_STEP` per step) would not fit in :func:`memory_bytes`.

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
    memory = memory_bytes()
    need = total_steps * BYTES_PER_STEP
    if memory is not None and need > memory:
        return (
            f"{total_steps:,} steps need about {_size(need)} of memory ({BYTES_PER_STEP} bytes "
            f"per step), more than the {_size(memory)} this process may use"
        )
    return None
