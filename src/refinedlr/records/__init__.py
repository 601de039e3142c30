"""Gradient-norm records: the in-memory type, the on-disk ``step,<kind>...`` CSV rows written while
training (:class:`RecordWriter`, the PyTorch recorder), and the readers of it and of other logs.

A record holds, per optimizer step ``t`` (0-based, after gradient accumulation), one value per norm
kind (``"l2"``, ``"l1"``, or a column name taken from a foreign log): the norm of the whole gradient
(``l2 = sqrt(sum_i g_i^2)``, ``l1 = sum_i |g_i|``), never rescaled. A missing value (a step
skipped by the AMP scaler, a non-finite norm) is ``NaN``. Sparse logs keep only the logged steps;
:meth:`GradNormRecord.norms` interpolates onto every step.

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
