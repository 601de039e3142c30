"""Fuzzing the readers: whatever the bytes, the name and the options, :func:`read_record` either
returns a valid :class:`GradNormRecord` or raises :class:`RecordError` naming the file; never
another exception, never a raw numpy warning, never a hang."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refinedlr.limits import MAX_STEPS
from refinedlr.records import FORMATS, GradNormRecord, RecordError, read_record

# -- inputs ---------------------------------------------------------------------------------------

NAMES = ["step", "Step", "global_step", "_step", "l2", "l1", "grad_norm", "train/grad_norm",
         "loss", "epoch", "x", "", " ", "a,b", '"q"', "step "]  # fmt: skip

numbers = st.one_of(
    st.integers(-(10**15), 10**15).map(str),
    st.integers(0, 50).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "1e-300", "-0.0", "1e400", "0x10", "1_000"]),
)
cells = st.one_of(
    numbers, st.sampled_from(["", " ", "abc", '"1"', '"', "1,5", "\t"]), st.text(max_size=5)
)


@st.composite
def delimited(draw: st.DrawFn) -> bytes:
    d = draw(st.sampled_from([",", "\t", ";"]))
    ncol = draw(st.integers(1, 4))
    lines = []
    if draw(st.booleans()):
        lines.append(d.join(draw(st.lists(st.sampled_from(NAMES), min_size=ncol, max_size=ncol))))
    for _ in range(draw(st.integers(0, 12))):
        n = ncol if draw(st.integers(0, 9)) else draw(st.integers(0, 6))
        lines.append(d.join(draw(st.lists(cells, min_size=n, max_size=n))))
    if draw(st.booleans()) and lines:  # W&B-shaped header
        lines[0] = '"Step","run - grad_norm","run - grad_norm__MIN","run - grad_norm__MAX"'
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = end.join(lines) + (end if draw(st.booleans()) else "")
    prefix = "\ufeff" if draw(st.integers(0, 9)) == 0 else ""
    return (prefix + text).encode("utf-8", errors="surrogatepass")


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=5),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(NAMES), inner, max_size=3)
    ),
    max_leaves=8,
)
entries = st.dictionaries(
    st.sampled_from(NAMES),
    st.one_of(json_values, st.integers(0, 40), st.floats(0.01, 10)),
    max_size=5,
)


@st.composite
def json_like(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["lines", "state", "any"]))
    if shape == "lines":
        objs = draw(st.lists(st.one_of(entries, json_values), max_size=8))
        text = "\n".join(json.dumps(o) for o in objs)
        if draw(st.booleans()) and text:
            text = text[: draw(st.integers(0, len(text)))]  # cut off
    elif shape == "state":
        doc: Any = {"log_history": draw(st.one_of(st.lists(entries, max_size=8), json_values))}
        if draw(st.booleans()):
            doc["logging_steps"] = draw(json_values)
        text = json.dumps(doc, indent=draw(st.sampled_from([None, 1])))
    else:
        text = json.dumps(draw(json_values))
    return text.encode()


@st.composite
def npy_like(draw: st.DrawFn) -> bytes:
    dtype = draw(
        st.one_of(
            hnp.floating_dtypes(),
            hnp.integer_dtypes(),
            hnp.unsigned_integer_dtypes(),
            hnp.boolean_dtypes(),
            hnp.complex_number_dtypes(),
            hnp.unicode_string_dtypes(max_len=3),
            hnp.byte_string_dtypes(max_len=3),
            st.just(np.dtype([("step", "i8"), ("l2", "f4")])),
            st.just(np.dtype([("step", "f8"), ("name", "U2")])),
        )
    )
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    arr = draw(hnp.arrays(dtype, shape))
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    data = buf.getvalue()
    mutation = draw(st.sampled_from(["none", "cut", "flip"]))
    if mutation == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    return data


contents = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", errors="surrogatepass")),
    delimited(),
    json_like(),
    npy_like(),
)
file_names = st.sampled_from(
    ["log", "log.csv", "log.tsv", "log.txt", "log.json", "log.jsonl", "log.npy", "log.npz",
     "log.csv.gz", "log.gz", "log.dat", "log.bin", "trainer_state.json",
     "events.out.tfevents.1700000000.host.1.0"]
)  # fmt: skip


#: examples per run: fixed for CI (a few seconds); raise it locally to search harder
FUZZ_EXAMPLES = int(os.environ.get("REFINEDLR_FUZZ_EXAMPLES", "300"))

# -- the property ---------------------------------------------------------------------------------


def check_record(rec: Any, path: Path) -> None:
    assert isinstance(rec, GradNormRecord)
    assert rec.steps.dtype == np.int64 and rec.steps.ndim == 1 and len(rec) >= 1
    assert int(rec.steps[0]) >= 0 and np.all(np.diff(rec.steps) > 0)
    assert rec.total_steps <= MAX_STEPS
    assert rec.kinds and all(isinstance(k, str) for k in rec.kinds)
    for v in rec.values.values():
        assert v.dtype == np.float64 and v.shape == rec.steps.shape
    assert isinstance(rec.describe(), str) and rec.source == str(path)
    if rec.total_steps <= 100_000:
        for k in rec.kinds:
            assert rec.norms(k).shape == (rec.total_steps,)


def read_within(seconds: float, path: Path, options: dict[str, Any]) -> Any:
    """``read_record`` in a daemon thread: a hang fails the test instead of blocking it."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)  # raw numpy warnings are bugs
                warnings.simplefilter("ignore", UserWarning)  # the reader's own notices
                box["value"] = read_record(path, **options)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"read_record({path.name!r}, {options}) still running: a hang"
    if "error" in box:
        raise box["error"]
    return box["value"]


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # the thread's timeout bounds each example instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=contents,
    name=file_names,
    compress=st.integers(0, 9),
    fmt=st.one_of(st.none(), st.none(), st.sampled_from([*FORMATS, "tsv", "bogus"])),
    column=st.one_of(st.none(), st.sampled_from(NAMES)),
    step_offset=st.one_of(st.none(), st.integers(-3, 3)),
)
def test_readers_return_a_record_or_raise_record_error(
    data: bytes,
    name: str,
    compress: int,
    fmt: str | None,
    column: str | None,
    step_offset: int | None,
) -> None:
    if compress == 0:
        data = gzip.compress(data)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        options = {"format": fmt, "column": column, "step_offset": step_offset}
        try:
            rec = read_within(20, path, options)
        except RecordError as exc:
            assert str(path) in str(exc) or (path.name in str(exc)), str(exc)
            assert "\n" not in str(exc).strip() or "Traceback" not in str(exc)
            return
        check_record(rec, path)


def test_fuzz_catches_what_it_should() -> None:
    """The property itself can fail: a reader error that is not a RecordError is reported."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.csv"
        path.write_text("step,l2\n0,1\n")
        with pytest.raises(TypeError):
            read_within(5, path, {"no_such_option": 1})
        assert math.isfinite(read_within(5, path, {}).values["l2"][0])
