"""Size limits that keep hostile or mistaken input from exhausting memory.

A gradient-norm record or a schedule is tabulated on every optimizer step, so a horizon of ``T``
steps costs ``8 T`` bytes per array. A log whose step numbers reach ``10**12`` (a corrupt file, a
counter in microseconds) would ask for terabytes; such input is refused up front with
:data:`MAX_STEPS`, before anything is allocated. Raise the limit when you really train longer::

    import refinedlr.limits
    refinedlr.limits.MAX_STEPS = 100_000_000

The command line takes ``--max-steps N`` for the same purpose.
"""

from __future__ import annotations

__all__ = ["MAX_STEPS"]

#: The largest horizon (optimizer steps) a schedule or a record may span: 80 MB per float64 array.
MAX_STEPS: int = 10_000_000
