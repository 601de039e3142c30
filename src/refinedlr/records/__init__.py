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

:func:`read_record` reads this format and foreign logs: any CSV/TSV, a Weights & Biases CSV
export, JSON lines, Hugging Face ``trainer_state.json``, ``.npy`` arrays and TensorBoard event
files. Step conventions per format, in short (details in :func:`read_record`):

==================  ===========================================  ===============================
format              step ``t`` of a value                        kind (name of the series)
==================  ===========================================  ===============================
``csv`` (own)       the ``step`` column                          the header names (``l2``, ``l1``)
``csv`` (other)     a ``step``-like column, else the row index   the column name; headerless: ``l2``
``npy``             the row index (or a ``step`` field)          ``l2`` (1-D), ``col0``.. (2-D)
``wandb``           the ``Step`` column                          the metric
``jsonl``           a ``step``-like key, else the line index     the key
``trainer_state``   HF's ``step`` minus one                      ``l2`` (HF's ``grad_norm``)
``tensorboard``     the event's step (1-based logs: minus one)   the tag
==================  ===========================================  ===============================

Every reader takes ``step_offset=`` (added to the steps as written, replacing the format's own
convention; checked in Python integers, so no offset overflows). Sizes are bounded by
:mod:`refinedlr.limits`, whose one setting is :data:`refinedlr.limits.MAX_STEPS`: a log whose steps
reach it is refused before anything is allocated, and a file over its byte, line or value budget
is refused while it is read (decompressed), before it is parsed. JSON is read with bounded nesting
and number length. Only regular files are read (a named pipe or a device is refused, not waited
on); gzip, bzip2 and xz files are read as the file they hold. A series named as a gradient norm
(``grad_norm``, ``l2``...) that holds no numbers is an error, never replaced by another column.

Modules: :mod:`.record` (the record type and :class:`RecordError`), :mod:`.writer`
(:class:`RecordWriter`), :mod:`.detect` (:func:`read_record`: format guessing and dispatch),
:mod:`.steps` and :mod:`.series` (shared by the readers: steps, their order, the series to pick),
:mod:`.inputs` (reading a user's file), and one module per reader: :mod:`.delimited` (CSV/TSV),
:mod:`.wandb`, :mod:`.jsonl`, :mod:`.trainer_state`, :mod:`.npy`, :mod:`.tensorboard`.

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
