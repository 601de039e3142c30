"""JSON for the suites' caches and summaries: non-finite floats and numpy values.

Strict JSON has no ``inf`` or ``nan``. The caches and summaries write them as the strings
``"inf"``, ``"-inf"`` and ``"nan"`` (:func:`json_float`, :func:`to_jsonable`), which ``float()``
reads back. Numpy scalars and arrays become Python numbers and lists.

>>> to_jsonable({"gap": [1.5, float("inf")], 3: np.float32(0.25), "k": np.int64(2)})
{'gap': [1.5, 'inf'], '3': 0.25, 'k': 2}
>>> [float(x) for x in to_jsonable([float("nan"), -float("inf")])]
[nan, -inf]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["json_float", "numpy_default", "to_jsonable"]


def json_float(x: float) -> float | str:
    """``x`` itself if finite, else ``"inf"``, ``"-inf"`` or ``"nan"``."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def to_jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as strings, numpy values as Python values and mapping keys
    as strings (recursively through dicts, lists and tuples)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return json_float(float(obj))
    return obj


def numpy_default(obj: Any) -> Any:
    """A ``default=`` for :func:`json.dumps`: numpy scalars and arrays as Python values (floats
    stay floats, so non-finite ones are written as ``Infinity``/``NaN``)."""
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
