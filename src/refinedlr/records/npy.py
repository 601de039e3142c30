"""``.npy`` arrays written by ``np.save`` (1-D, 2-D ``(steps, kinds)`` or structured); loaded with
``allow_pickle=False``: pickles are never loaded."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import limits
from .inputs import binary_stream
from .record import GradNormRecord, RecordError, brief
from .series import pick_series, refuse_unparsed_norms
from .steps import ReadRequest, find_step_column, int_steps, make_record

_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
    (3, 0): np.lib.format.read_array_header_2_0,
}


def load_array(p: Path) -> npt.NDArray[Any]:
    """The array in ``p``, after checking its header: never a pickle, never an allocation larger
    than the data the file holds (a header may claim any shape)."""
    with binary_stream(p) as f:
        magic = f.read(8)
        if not magic:
            raise RecordError("empty file", path=p)
        if magic.startswith(b"PK\x03\x04"):
            raise RecordError(
                "an .npz archive (or another zip file); save a single array with "
                "np.save(path, norms) instead",
                path=p,
            )
        if not magic.startswith(b"\x93NUMPY") or len(magic) < 8:
            what = "a Python pickle" if magic[:1] == b"\x80" else "no NPY header"
            raise RecordError(
                f"not a .npy file ({what}); only arrays written by np.save are read, and "
                "pickles are never loaded",
                path=p,
            )
        read_header = _HEADER_READERS.get((magic[6], magic[7]))
        if read_header is None:
            raise RecordError(f"unknown NPY format version {magic[6]}.{magic[7]}", path=p)
        try:
            shape, _, dtype = read_header(f)
        except Exception as exc:  # numpy's header parser raises assorted errors on garbage
            raise RecordError(
                f"cannot read the array: a broken header ({type(exc).__name__}: "
                f"{brief(str(exc), 80)})",
                path=p,
            ) from None
        if dtype.hasobject:
            raise RecordError(
                "an object array (Python objects need unpickling, which is never done); save "
                "numbers: np.save(path, np.asarray(norms, dtype=float))",
                path=p,
                key="dtype",
            )
        need = math.prod(shape) * dtype.itemsize
        data_start = f.tell()
        have = f.seek(0, io.SEEK_END) - data_start
        if have < need:
            raise RecordError(
                f"cannot read the array: not fully written (its header says shape "
                f"{brief(str(shape))}, {need:,} bytes of data, but the file holds {have:,})",
                path=p,
            )
        if need > limits.max_bytes():
            raise RecordError(
                f"its header says shape {brief(str(shape))}, {need:,} bytes of data: more than "
                f"the {limits.max_bytes():,} bytes a log may hold (raise "
                "refinedlr.limits.MAX_STEPS or --max-steps if it really is one)",
                path=p,
            )
        f.seek(0)
        try:
            arr = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # (object arrays are refused above)
            raise RecordError(f"cannot read the array: {brief(str(exc), 80)}", path=p) from None
    if not isinstance(arr, np.ndarray):
        raise RecordError(f"not an array but {type(arr).__name__}", path=p)
    return arr


def read_npy(p: Path, request: ReadRequest) -> GradNormRecord:
    """A ``.npy`` array (see :func:`~refinedlr.records.read_record`, format ``npy``)."""
    wanted, arr = request.wanted, load_array(p)
    meta: dict[str, Any] = {"format": "npy", "steps": "row index"}
    steps = None

    def real(dt: np.dtype[Any], key: str) -> None:
        if dt.kind not in "iuf":
            what = "is not a real number type (integers or floats)"
            raise RecordError(f"dtype {dt} {what}", path=p, key=key)

    if arr.dtype.names is not None:
        if arr.ndim != 1:
            raise RecordError(f"a structured array must be 1-D, got shape {arr.shape}", path=p)
        fields = list(arr.dtype.names)
        js = find_step_column(fields)
        if js is not None:
            real(arr.dtype[fields[js]], f"field {fields[js]!r}")
        numeric = [f for i, f in enumerate(fields) if i != js and arr.dtype[f].kind in "iuf"]
        if wanted is not None:
            if wanted in fields and wanted not in numeric:
                real(arr.dtype[wanted], f"field {wanted!r}")
            chosen = [pick_series(numeric, wanted, p, "field")]
        else:
            unparsed = {f: f"dtype {arr.dtype[f]}" for f in fields if f not in numeric}
            refuse_unparsed_norms(unparsed, p, "field")
            chosen = numeric or [pick_series(numeric, None, p, "field")]
        if arr.size == 0:
            raise RecordError("empty array", path=p)
        columns = {f: arr[f] for f in chosen}
        if js is not None:
            key = f"field {fields[js]!r}"
            raw = np.asarray(arr[fields[js]], dtype=np.float64)
            steps = int_steps(raw, lambda i: {"key": f"{key}, row {i}"}, p)
            meta["steps"] = key
    else:
        real(arr.dtype, "dtype")
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim not in (1, 2):
            raise RecordError(
                f"shape {arr.shape}: expected a 1-D array of norms or a 2-D array (steps, kinds)",
                path=p,
                key="shape",
            )
        if arr.shape[0] == 0:
            raise RecordError("empty array", path=p)
        if arr.ndim == 1:
            columns = {wanted or "l2": arr}
        else:
            names = [f"col{j}" for j in range(arr.shape[1])]
            aliases = {str(j): f"col{j}" for j in range(arr.shape[1])}
            if wanted is not None:
                names = [pick_series(names, wanted, p, "column", aliases=aliases)]
            columns = {c: arr[:, int(c[3:])] for c in names}
    values = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    if steps is None:
        steps = np.arange(len(arr), dtype=np.int64)
    return make_record(p, steps, values, meta, lambda i: {"key": f"row {i}"}, request.placement())
