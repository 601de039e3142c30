"""Gradient-norm records: the in-memory type, the on-disk format written while training, readers.

A record holds, per optimizer step ``t`` (0-based, after gradient accumulation), one value per norm
kind (``"l2"``, ``"l1"``, or a column name taken from a foreign log). A missing value (a step skipped
by the AMP scaler, a non-finite norm) is ``NaN``. Sparse logs (one value every ``k`` steps) keep only
the logged steps; :meth:`GradNormRecord.norms` places them on their steps and interpolates onto every
step, and :meth:`GradNormRecord.describe` says how sparse the log was.

The format written by :class:`RecordWriter` (and by the PyTorch recorder) is a CSV file with a
header ``step,<kind>,<kind>...`` and one row per optimizer step, appended and flushed in chunks so a
killed process loses only the rows it had not flushed::

    step,l2,l1
    0,12.5,30110.2
    1,11.875,29870.4

Units: a norm is that of the whole gradient ``g_t`` (all parameters together) in the units of the
loss per unit of parameter: ``l2 = sqrt(sum_i g_{t,i}^2)``, ``l1 = sum_i |g_{t,i}|``. Readers never
rescale values; they only place them on steps.

:func:`read_record` reads this format and foreign logs (any CSV/TSV, a Weights & Biases CSV
export, JSON lines, Hugging Face ``trainer_state.json``, ``.npy`` arrays, TensorBoard event files),
each with its own step convention, within the size limits of :mod:`refinedlr.limits`. Modules:
:mod:`.record` (the record type and :class:`RecordError`), :mod:`.writer`, :mod:`.detect`
(format guessing), :mod:`.steps` and :mod:`.series` (shared by the readers), :mod:`.inputs`
(reading a user's file), and one module per reader (:mod:`.delimited` reads CSV/TSV and W&B
exports).

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "norms.csv")
    >>> with RecordWriter(path, kinds=("l2",)) as w:
    ...     w.write([0, 1, 2], [[3.0], [2.0], [float("nan")]])
    >>> rec = read_record(path)
    >>> rec.norms("l2")
    array([ 3.,  2., nan])
"""

from __future__ import annotations

from .detect import FORMATS, read_record
from .record import GradNormRecord, NormKindWarning, RecordError
from .series import DEFAULT_NAMES
from .steps import STEP_NAMES
from .writer import RecordWriter

__all__ = [
    "DEFAULT_NAMES",
    "FORMATS",
    "STEP_NAMES",
    "GradNormRecord",
    "NormKindWarning",
    "RecordError",
    "RecordWriter",
    "read_record",
]
