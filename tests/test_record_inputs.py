"""Readers against awkward inputs (issue 11 §2 and §4, reader side): files that are not regular,
compressed logs, arrays that are not numbers, step numbers far beyond any real run, 1-based
TensorBoard steps, and a norm kind the record does not hold."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refinedlr import limits
from refinedlr.limits import MAX_STEPS
from refinedlr.records import GradNormRecord, RecordError, read_record
from refinedlr.records.record import NormKindWarning
from refinedlr.refinement import refine

# -- helpers -------------------------------------------------------------------------------------


def error(path: Path, **kwargs: Any) -> RecordError:
    """Read ``path`` expecting a RecordError that names the file."""
    with pytest.raises(RecordError) as info:
        read_record(path, **kwargs)
    assert str(path) in str(info.value), str(info.value)
    return info.value


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) if it blocks."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s: it blocks"
    if "error" in box:
        raise box["error"]
    return box.get("value")


CSV = "step,l2\n0,3.0\n1,2.5\n2,2.0\n3,1.5\n"


def trainer_state(steps: list[int], norm: Callable[[int], float]) -> dict[str, Any]:
    history: list[dict[str, Any]] = [
        {"epoch": s / 100, "grad_norm": norm(s), "learning_rate": 1e-4, "loss": 1.0, "step": s}
        for s in steps
    ]
    history.append({"epoch": 2.0, "step": steps[-1], "train_loss": 1.0, "train_runtime": 3.0})
    return {"global_step": steps[-1], "log_history": history, "max_steps": steps[-1]}


def tb_write(logdir: Path, tag: str, points: list[tuple[int, float]]) -> Path:
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir.mkdir(parents=True, exist_ok=True)
    w = EventFileWriter(str(logdir))
    for step, value in points:
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
        )
        w.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    w.close()
    return logdir


# -- only regular files --------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
@pytest.mark.parametrize("fmt", [None, "csv", "npy", "jsonl", "wandb", "trainer_state"])
def test_named_pipe_is_refused_not_waited_on(tmp_path: Path, fmt: str | None) -> None:
    fifo = tmp_path / "norms.csv"
    os.mkfifo(fifo)
    with pytest.raises(RecordError) as info:
        within(10, lambda: read_record(fifo, format=fmt))
    assert str(fifo) in str(info.value) and "named pipe" in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_named_pipe_inside_a_checkpoint_directory(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "trainer_state.json")
    with pytest.raises(RecordError) as info:
        within(10, lambda: read_record(tmp_path, format="trainer_state"))
    assert "trainer_state.json" in str(info.value) and "not a regular file" in str(info.value)


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_device_is_refused() -> None:
    exc = error(Path("/dev/null"))
    assert "a device" in str(exc)


# -- compressed logs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix,compress",
    [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress), ("", gzip.compress)],
)
def test_compressed_csv_is_read_as_the_file_it_holds(
    tmp_path: Path, suffix: str, compress: Callable[[bytes], bytes]
) -> None:
    p = tmp_path / f"norms.csv{suffix}"
    p.write_bytes(compress(CSV.encode()))
    rec = read_record(p)
    assert rec.meta["format"] == "csv" and rec.kinds == ("l2",)
    np.testing.assert_array_equal(rec.values["l2"], [3.0, 2.5, 2.0, 1.5])


def test_compressed_other_formats(tmp_path: Path) -> None:
    p = tmp_path / "trainer_state.json.gz"
    p.write_bytes(gzip.compress(json.dumps(trainer_state([1, 2, 3], lambda s: 1.0 / s)).encode()))
    rec = read_record(p)
    assert rec.meta["format"] == "trainer_state" and rec.steps.tolist() == [0, 1, 2]
    p = tmp_path / "log.jsonl.xz"
    p.write_bytes(lzma.compress(b'{"step": 0, "grad_norm": 2}\n{"step": 1, "grad_norm": 1}\n'))
    assert read_record(p).meta["format"] == "jsonl"
    p = tmp_path / "state.json.gz"  # recognised by its content after decompression
    p.write_bytes(gzip.compress(json.dumps(trainer_state([1, 2], lambda s: 1.0)).encode()))
    assert read_record(p).meta["format"] == "trainer_state"
    raw = tmp_path / "n.npy"
    np.save(raw, np.array([3.0, 2.0, 1.0]))
    p = tmp_path / "n.npy.gz"
    p.write_bytes(gzip.compress(raw.read_bytes()))
    assert read_record(p).values["l2"].tolist() == [3.0, 2.0, 1.0]
    q = tmp_path / "blob.gz"  # no inner suffix: the content tells (a .npy)
    q.write_bytes(p.read_bytes())
    assert read_record(q).meta["format"] == "npy"


def test_corrupt_and_cut_compressed_files(tmp_path: Path) -> None:
    data = gzip.compress((CSV * 200).encode())
    p = tmp_path / "norms.csv.gz"
    p.write_bytes(data[: len(data) // 2])
    exc = error(p)
    assert "gzip-compressed" in str(exc) and "corrupt or cut off" in str(exc)
    p.write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    assert "gzip-compressed" in str(error(p))
    p = tmp_path / "norms.csv.zst"
    p.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    exc = error(p)
    assert "zstd" in str(exc) and "decompress it first" in str(exc)


def test_decompression_is_bounded(tmp_path: Path) -> None:
    """A bomb is refused while it is decompressed, as soon as it has too many lines."""

    def bomb(chunk: bytes, total: int) -> None:  # compressed in chunks: never held whole
        z = zlib.compressobj(9, zlib.DEFLATED, 31)
        with open(p, "wb") as f:
            f.write(z.compress(b"step,l2\n"))
            for _ in range(total // len(chunk) + 1):
                f.write(z.compress(chunk))
            f.write(z.flush())

    p = tmp_path / "bomb.csv.gz"
    bomb(b"0,1\n" * 250_000, 4 * limits.max_lines())
    exc = error(p)
    assert f"expands to more than {limits.max_lines():,} lines" in str(exc)
    # (a bomb of bytes without lines is refused at limits.max_bytes(): the hostile corpus's
    # cli-gzip-bomb-bytes, in a process of its own, since up to that budget is held)


# -- arrays that are not numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.array(["0.5", "0.25"]),
        np.array([b"a", b"b"]),
        np.array([1 + 2j, 3j]),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.zeros(2, dtype=[("step", "i8"), ("name", "U4")]),
    ],
)
def test_npy_of_non_numbers_is_refused_clearly(tmp_path: Path, array: Any) -> None:
    p = tmp_path / "a.npy"
    np.save(p, array)
    exc = error(p, column="name" if array.dtype.names else None)
    assert "not a real number type" in str(exc)


def test_npy_object_array_is_never_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    p = tmp_path / "o.npy"
    np.save(p, np.array([1.0, None], dtype=object), allow_pickle=True)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    exc = error(p)
    assert exc.key == "dtype" and "never done" in str(exc)


def test_npy_header_claiming_a_huge_shape_is_refused_without_allocating(tmp_path: Path) -> None:
    p = tmp_path / "liar.npy"
    header = np.lib.format.header_data_from_array_1_0(np.zeros(3))
    header["shape"] = (10**12,)
    with open(p, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(np.zeros(3).tobytes())
    t0 = time.perf_counter()
    exc = error(p)
    assert "not fully written" in str(exc) and "(1000000000000,)" in str(exc)
    assert time.perf_counter() - t0 < 5
    p.write_bytes(b"\x93NUMPY\x09\x00" + b"\x00" * 30)
    assert "unknown NPY format version 9.0" in str(error(p))


# -- step numbers far beyond any run -------------------------------------------------------------


@pytest.mark.parametrize("last", [10**9, 10**12])
def test_huge_steps_in_a_small_csv_are_refused_at_once(tmp_path: Path, last: int) -> None:
    p = tmp_path / "huge.csv"
    p.write_text(f"step,l2\n0,1.0\n1,0.9\n2,0.8\n{last},0.7\n")
    t0 = time.perf_counter()
    exc = error(p)
    assert time.perf_counter() - t0 < 2
    assert exc.line == 5 and f"step {last}" in str(exc)
    assert "more than the limit of 10,000,000" in str(exc) and "--max-steps" in str(exc)
    # the caller can raise the limit
    with pytest.MonkeyPatch.context() as m:
        m.setattr(limits, "MAX_STEPS", last + 1)
        assert read_record(p).total_steps == last + 1


@pytest.mark.parametrize("last", [10**9, 10**12])
def test_huge_steps_in_trainer_state_are_refused_at_once(tmp_path: Path, last: int) -> None:
    p = tmp_path / "trainer_state.json"
    p.write_text(json.dumps(trainer_state([1, 2, 3, last], lambda s: 1.0)))
    exc = error(p)
    assert exc.key == "log_history[3].step" and f"step {last - 1}" in str(exc)
    assert "limit" in str(exc)


def test_huge_steps_in_other_formats(tmp_path: Path) -> None:
    p = tmp_path / "log.jsonl"
    p.write_text('{"step": 0, "grad_norm": 1}\n{"step": 100000000000, "grad_norm": 1}\n')
    assert error(p).line == 2
    arr = np.zeros(2, dtype=[("step", "i8"), ("l2", "f8")])
    arr["step"] = [0, 10**11]
    q = tmp_path / "s.npy"
    np.save(q, arr)
    assert "limit" in str(error(q))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(limits, "MAX_STEPS", 5)
        assert "limit" in str(error(tmp_path / "log.jsonl"))  # a lower limit, too


def test_huge_steps_in_tensorboard(tmp_path: Path) -> None:
    run = tb_write(tmp_path / "run", "grad_norm", [(0, 1.0), (5 * 10**11, 2.0)])
    exc = error(run)
    assert "limit" in str(exc) and "grad_norm" in str(exc)


def test_norms_refuse_to_expand_a_huge_record() -> None:
    rec = GradNormRecord.from_arrays({"l2": [1.0, 2.0, 3.0, 4.0]}, steps=[0, 1, 2, 10**12])
    t0 = time.perf_counter()
    with pytest.raises(RecordError, match="more than the limit of 10,000,000"):
        rec.norms()
    assert time.perf_counter() - t0 < 1
    assert MAX_STEPS == 10_000_000


def test_the_default_limit_is_read_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``refinedlr.limits.MAX_STEPS = N`` (the one setting) raises or lowers the limit of every
    reader and record, read when used."""
    p = tmp_path / "n.csv"
    p.write_text("step,l2\n0,1\n99,2\n")
    rec = read_record(p)
    assert rec.norms().shape == (100,)
    monkeypatch.setattr(limits, "MAX_STEPS", 50)
    with pytest.raises(RecordError, match="limit of 50"):
        rec.norms()
    assert "step 99: more than the limit of 50 steps" in str(error(p))
    monkeypatch.setattr(limits, "MAX_STEPS", 100)
    assert read_record(p).norms().shape == (100,)


def test_refine_of_a_huge_sparse_record_is_refused() -> None:
    rec = GradNormRecord.from_arrays({"l2": [1.0, 2.0]}, steps=[0, 10**10])
    with pytest.raises(RecordError, match="limit"):
        refine(rec, tau=0.1)


# -- step offsets --------------------------------------------------------------------------------


@pytest.mark.parametrize("logging_steps", [1, 10])
def test_tensorboard_and_trainer_state_of_one_run_agree(tmp_path: Path, logging_steps: int) -> None:
    """A 200-step Trainer run logs steps 1..200 (every ``logging_steps``) to both files."""
    hf_steps = list(range(logging_steps, 201, logging_steps))

    def norm(s: int) -> float:
        return 5.0 / (1 + s / 50)

    state = tmp_path / "checkpoint-200" / "trainer_state.json"
    state.parent.mkdir()
    state.write_text(json.dumps(trainer_state(hf_steps, norm)))
    run = tb_write(tmp_path / "runs", "train/grad_norm", [(s, norm(s)) for s in hf_steps])
    a, b = read_record(state), read_record(run)
    assert a.steps.tolist() == b.steps.tolist() == [s - 1 for s in hf_steps]
    assert a.total_steps == b.total_steps == 200
    np.testing.assert_allclose(b.values["train/grad_norm"], a.values["l2"], rtol=1e-6)
    assert b.meta["step_offset"] == -1 and "1-based" in b.describe()
    assert refine(a).total_steps == refine(b).total_steps == 200
    # an explicit offset replaces the automatic one
    assert read_record(run, step_offset=0).steps.tolist() == hf_steps
    assert read_record(state, step_offset=0).steps.tolist() == hf_steps


def test_zero_based_tensorboard_logs_are_kept(tmp_path: Path) -> None:
    for name, steps in {
        "a": [0, 1, 2, 3],
        "b": [9, 19, 29],
        "c": [5, 6, 7],
        "d": [0, 10, 20],
    }.items():
        rec = read_record(tb_write(tmp_path / name, "grad_norm", [(s, 1.0) for s in steps]))
        assert rec.steps.tolist() == steps and "step_offset" not in rec.meta, name


def test_step_offset_for_any_format(tmp_path: Path) -> None:
    p = tmp_path / "one_based.csv"
    p.write_text("step,l2\n1,3\n2,2\n3,1\n")
    rec = read_record(p, step_offset=-1)
    assert rec.steps.tolist() == [0, 1, 2] and rec.meta["step_offset"] == -1
    assert "shifted by -1" in rec.describe()
    assert read_record(p, step_offset=2).steps.tolist() == [3, 4, 5]
    exc = error(p, step_offset=-2)
    assert exc.line == 2 and "negative" in str(exc)
    with pytest.raises(RecordError, match="step_offset must be an integer"):
        read_record(p, step_offset=0.5)  # type: ignore[arg-type]


# -- the norm a record holds ---------------------------------------------------------------------


def test_trainer_state_says_it_holds_l2_and_l1_requests_warn(tmp_path: Path) -> None:
    p = tmp_path / "trainer_state.json"
    p.write_text(json.dumps(trainer_state(list(range(1, 41)), lambda s: 3.0 / s**0.5)))
    rec = read_record(p)
    assert rec.kinds == ("l2",) and rec.meta["norm"] == "l2" and "l2 norm" in rec.describe()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        s = refine(rec, norm="l1")
    kind_warnings = [w for w in caught if issubclass(w.category, NormKindWarning)]
    assert len(kind_warnings) == 1
    (w,) = kind_warnings
    msg = str(w.message)
    assert "\n" not in msg and "holds l2 norms, not l1" in msg and str(p) in msg
    assert 'record_grad_norms(trainer, kinds=("l2", "l1"))' in msg
    assert w.filename == __file__ and w.lineno == line  # points at the caller, not the library
    assert s.provenance["kind"] == "l2"  # the provenance names the kind actually used
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refine(rec, norm="l2")  # what it holds: no warning


@pytest.mark.parametrize(
    "column,asked,warns",
    [
        ("grad_norm", "l1", True),  # Hugging Face's name for the l2 norm
        ("train/grad_norm", "l1", True),
        ("l1", "l2", True),
        ("grad_norm", "l2", False),
        ("norm", "l1", False),  # a name that says nothing: the user knows what it holds
        ("l1", "l1", False),
    ],
)
def test_norm_kind_warning_by_series_name(column: str, asked: str, warns: bool) -> None:
    rec = GradNormRecord.from_arrays({column: [3.0, 2.0, 1.0]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rec.resolve_kind(asked) == column
    assert any(issubclass(w.category, NormKindWarning) for w in caught) == warns


# -- found by the fuzz test ----------------------------------------------------------------------


def test_old_mac_line_endings_are_guessed(tmp_path: Path) -> None:
    p = tmp_path / "log"
    p.write_bytes(b"step,l2\r0,2\r1,1\r")
    assert read_record(p).values["l2"].tolist() == [2.0, 1.0]
    p.write_bytes(b"\x01\r\x01")
    assert "no numeric column" in str(error(p))


def test_plain_file_with_a_compressed_name(tmp_path: Path) -> None:
    p = tmp_path / "norms.csv.gz"  # not compressed after all: read as what it is
    p.write_text(CSV)
    assert read_record(p).values["l2"].tolist() == [3.0, 2.5, 2.0, 1.5]


@pytest.mark.parametrize(
    "data", [b"\x93NUMPY\x01\x00\x02\x00\x00{", b"\x93NUMPY\x01\x00F\x00\n \x01\x01{"]
)
def test_npy_garbage_header(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "g.npy"
    p.write_bytes(data)
    assert "broken header" in str(error(p))
