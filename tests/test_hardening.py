"""Issue 19, class by class: bounded parsing, checked step arithmetic, one step limit, all-or-none
outputs, column choice, truncated event files, the record writer's ownership, regular files only,
short error lines, read-only outputs, and the one-step horizon. Each test states the behaviour;
the hostile corpus (tests/hostile/) runs many more inputs under a memory cap."""

from __future__ import annotations

import gzip
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refinedlr import limits
from refinedlr.cli import main
from refinedlr.fileio import after_commit, atomic_write, transaction
from refinedlr.records import GradNormRecord, RecordError, RecordWriter, read_record
from refinedlr.records.writer import KIND_PATTERN
from refinedlr.refinement import MIN_STEPS, RefineError, refine
from refinedlr.schedule_io import load_schedule, save_schedule
from refinedlr.schedules import LinearDecay, ScheduleError

GOOD = (1 + 9 * np.exp(-np.arange(400) / 40)).tolist()


def good_csv(path: Path) -> Path:
    path.write_text("step,l2\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(GOOD)))
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(err: str, name: str) -> str:
    """The one error line on stderr (after any warnings), which must name ``name``."""
    lines = [x for x in err.strip().splitlines() if not x.startswith("refinedlr: warning: ")]
    assert len(lines) == 1, err
    assert name in lines[0], lines[0]
    return lines[0]


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


# -- bounded JSON -----------------------------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "name,content",
    [
        ("trainer_state.json", '{"log_history": ' + DEEP + "}"),
        ("log.jsonl", '{"step": 0, "grad_norm": 1}\n{"a": ' + DEEP + "}\n"),
        ("log.json", '{"step": 0, "grad_norm": 1, "x": ' + "[" * 65 + "]" * 65 + "}\n"),
    ],
)
def test_json_nested_too_deep_is_refused(tmp_path: Path, name: str, content: str) -> None:
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(RecordError, match="nested more than 64 levels deep") as info:
        read_record(p)
    assert str(p) in str(info.value)


def test_json_nesting_within_the_limit_is_read(tmp_path: Path) -> None:
    p = tmp_path / "log.jsonl"
    nested = "[" * 63 + "]" * 63  # 64 levels with the line's object
    p.write_text("".join(f'{{"step": {i}, "grad_norm": 2, "x": {nested}}}\n' for i in range(5)))
    assert read_record(p).values["grad_norm"].tolist() == [2.0] * 5


def test_schedule_file_nested_too_deep(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text('{"spec": ' + DEEP + "}")
    with pytest.raises(ScheduleError, match="nested more than 64"):
        load_schedule(p)


@pytest.mark.parametrize("number", ["9" * 5000, "1." + "5" * 200, "1e" + "9" * 150])
def test_overlong_json_number_is_refused(tmp_path: Path, number: str) -> None:
    p = tmp_path / "log.jsonl"
    p.write_text('{"step": 0, "grad_norm": 1}\n{"step": 1, "grad_norm": ' + number + "}\n")
    with pytest.raises(RecordError) as info:
        read_record(p)
    assert info.value.line == 2 and f"a number {len(number):,} characters long" in str(info.value)
    state = tmp_path / "trainer_state.json"
    state.write_text('{"log_history": [{"step": 1, "grad_norm": ' + number + "}]}")
    with pytest.raises(RecordError, match="characters long"):
        read_record(state)


def test_json_nan_and_long_but_sane_numbers_still_read(tmp_path: Path) -> None:
    p = tmp_path / "log.jsonl"
    p.write_text(
        '{"step": 0, "grad_norm": NaN}\n{"step": 1, "grad_norm": 0.1000000000000000055511151231}\n'
    )
    v = read_record(p).values["grad_norm"]
    assert np.isnan(v[0]) and v[1] == 0.1


# -- byte, line and value budgets --------------------------------------------------------------------


def test_gzip_bomb_is_refused_by_its_lines_while_decompressing(tmp_path: Path) -> None:
    p = tmp_path / "bomb.csv.gz"
    p.write_bytes(gzip.compress(b"1\n" * (limits.max_lines() + 10), 9))
    t0 = time.perf_counter()
    with pytest.raises(RecordError, match=r"expands to more than 20,000,000 lines"):
        read_record(p)
    assert time.perf_counter() - t0 < 20


def test_plain_file_over_the_byte_budget_is_refused_unread(tmp_path: Path) -> None:
    p = tmp_path / "huge.csv"
    with open(p, "wb") as f:  # a sparse file: nothing is written, nothing must be read
        f.write(b"step,l2\n")
        f.truncate(limits.max_bytes() + 1)
    t0 = time.perf_counter()
    with pytest.raises(RecordError, match="holds more than 640,000,000 bytes"):
        read_record(p, format="csv")
    assert time.perf_counter() - t0 < 2


def test_budgets_follow_the_one_step_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (limits.max_lines(), limits.max_cells(), limits.max_bytes()) == (
        20_000_000,
        80_000_000,
        640_000_000,
    )
    monkeypatch.setattr(limits, "MAX_STEPS", 10**8)
    assert (limits.max_lines(), limits.max_cells(), limits.max_bytes()) == (
        2 * 10**8,
        8 * 10**8,
        64 * 10**8,
    )
    monkeypatch.setattr(limits, "MAX_STEPS", 10)  # lowered: the floors still read small files
    assert limits.max_lines() == 1 << 20 and limits.max_bytes() == 64 << 20


def test_too_many_values_are_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_STEPS", 1)  # the floor of the value budget: 8 Mi values
    p = tmp_path / "wide.csv"
    ncol = 1000
    rows = limits.max_cells() // ncol + 1
    line = ",".join("1" for _ in range(ncol)) + "\n"
    p.write_text(",".join(f"c{j}" for j in range(ncol)) + "\n" + line * rows)
    with pytest.raises(RecordError, match=f"{rows:,} lines of {ncol:,} columns"):
        read_record(p)


def test_npy_header_over_the_byte_budget(tmp_path: Path) -> None:
    p = tmp_path / "big.npy"
    n = limits.max_bytes() // 8 + 1
    header = np.lib.format.header_data_from_array_1_0(np.zeros(3))
    header["shape"] = (n,)
    with open(p, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.truncate(f.tell() + 8 * n)  # sparse: the data "is there"
    with pytest.raises(RecordError, match="more than the 640,000,000 bytes a log may hold"):
        read_record(p)


# -- checked step arithmetic and the memory a horizon implies ----------------------------------------


@pytest.mark.parametrize("offset", [10**30, 2**63, 10**7])
def test_huge_step_offset_is_refused_not_overflowed(tmp_path: Path, offset: int) -> None:
    p = good_csv(tmp_path / "n.csv")
    with pytest.raises(RecordError, match="more than the limit of 10,000,000") as info:
        read_record(p, step_offset=offset)
    assert f"step {offset}" in str(info.value) and info.value.line == 2


@pytest.mark.parametrize("offset", [-(10**30), -(2**63) - 1, -1])
def test_hugely_negative_step_offset_is_refused(tmp_path: Path, offset: int) -> None:
    p = good_csv(tmp_path / "n.csv")
    with pytest.raises(
        RecordError, match=f"step 0 shifted by the step offset {offset} is negative"
    ):
        read_record(p, step_offset=offset)


def test_step_offset_just_inside_the_limit(tmp_path: Path) -> None:
    p = good_csv(tmp_path / "n.csv")
    rec = read_record(p, step_offset=limits.MAX_STEPS - 400)
    assert rec.total_steps == limits.MAX_STEPS and int(rec.steps[0]) == limits.MAX_STEPS - 400


def test_step_offset_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = good_csv(tmp_path / "n.csv")
    for value in ("100000000000000000000000", "-" + "9" * 40, "1e23"):
        status, _, err = cli(capsys, "refine", str(p), "--step-offset", value, "-o", "o.json")
        line = one_error_line(err, "--step-offset")
        assert status == 2 and len(line) < 260
    status, _, err = cli(
        capsys, "refine", str(p), "--step-offset", str(2**53), "-o", str(tmp_path / "o.json")
    )
    assert status == 2 and "limit of 10,000,000" in one_error_line(err, str(p))


def test_max_steps_is_checked_against_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "n.csv"
    p.write_text("step,l2\n0,1\n1,2\n2,3\n1000000000000,4\n")
    status, _, err = cli(capsys, "refine", str(p), "--max-steps", str(10**13), "-o", "o.json")
    line = one_error_line(err, "--max-steps")
    assert status == 2 and "TB of memory" in line and "this process may use" in line
    assert limits.MAX_STEPS == 10_000_000


def test_steps_problem() -> None:
    assert limits.steps_problem(limits.MAX_STEPS) is None
    assert "more than the limit of 10,000,000" in str(limits.steps_problem(limits.MAX_STEPS + 1))
    memory = limits.memory_bytes()
    assert memory is not None and memory > 0
    n = memory // limits.BYTES_PER_STEP + 1
    assert "of memory" in str(limits.steps_problem(n, limit=n))
    assert limits.steps_problem(n - 1, limit=n) is None


def test_record_norms_check_memory_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_STEPS", 10**14)  # the limit allows it; memory does not
    rec = GradNormRecord.from_arrays({"l2": [1.0, 2.0]}, steps=[0, 10**13])
    with pytest.raises(RecordError, match="of memory"):
        rec.norms()


def test_one_way_to_set_the_step_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``limits.MAX_STEPS`` is the one setting: no reader or record takes a limit of its own,
    and ``--max-steps`` sets it for one command only."""
    assert "max_steps" not in inspect.signature(read_record).parameters
    assert "max_steps" not in inspect.signature(GradNormRecord).parameters
    assert "max_steps" not in inspect.signature(GradNormRecord.norms).parameters
    p = tmp_path / "n.csv"
    p.write_text("step,l2\n0,1\n19999999,2\n")
    with pytest.raises(RecordError, match="limit of 10,000,000"):
        read_record(p)
    status, out, _ = cli(capsys, "show", str(p), "--max-steps", "20000000")
    assert status == 0 and "2 rows" in out and limits.MAX_STEPS == 10_000_000
    monkeypatch.setattr(limits, "MAX_STEPS", 20_000_000)
    assert read_record(p).total_steps == 20_000_000
    with pytest.raises(ScheduleError, match="MAX_STEPS"):
        LinearDecay(20_000_001)
    assert LinearDecay(20_000_000).total_steps == 20_000_000


# -- one output transaction per command ---------------------------------------------------------------


def test_a_failing_figure_leaves_no_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    p = good_csv(tmp_path / "n.csv")

    def fail(self: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", fail)
    before = listing(tmp_path)
    status, out, err = cli(
        capsys, "refine", str(p), "-o", str(tmp_path / "o.json"), "--plot", str(tmp_path / "f.png")
    )
    assert status == 2 and "No space left on device" in one_error_line(err, "f.png")
    assert listing(tmp_path) == before  # neither the schedule nor a temporary file
    assert "wrote" not in out  # nor a word of having written it


def test_a_full_disk_during_plot_leaves_no_output(tmp_path: Path) -> None:
    """A real file-size limit (``RLIMIT_FSIZE``) lets the schedule be written but not the figure:
    the command fails and leaves neither."""
    pytest.importorskip("matplotlib")
    p = good_csv(tmp_path / "n.csv")
    out, png = tmp_path / "o.json", tmp_path / "f.png"

    def limited(*argv: str) -> subprocess.CompletedProcess[str]:
        code = (
            "import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))\n"
            "from refinedlr.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n"
        )
        return subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120
        )

    before = listing(tmp_path)
    r = limited("refine", str(p), "-o", str(out), "--plot", str(png))
    assert r.returncode == 2, r.stderr
    assert "File too large" in one_error_line(r.stderr, str(png))
    assert listing(tmp_path) == before
    r = limited("refine", str(p), "-o", str(out))  # without the figure, the schedule fits
    assert r.returncode == 0 and out.exists(), r.stderr


def test_transaction_is_all_or_none(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    with pytest.raises(RuntimeError), transaction():
        with atomic_write(a) as f:
            f.write("new a")
        assert a.read_text() == "old a"  # staged, not yet renamed
        raise RuntimeError("the second output failed")
    assert a.read_text() == "old a" and listing(tmp_path) == ["a.txt"]
    with transaction():
        with atomic_write(a) as f:
            f.write("new a")
        with transaction(), atomic_write(b) as f:  # a nested block joins the outer one
            f.write("b")
        assert not b.exists()
    assert a.read_text() == "new a" and b.read_text() == "b"


def test_after_commit_runs_once_the_files_are_in_place_and_never_on_failure(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    after_commit(lambda: said.append("outside"))  # no transaction: now
    with pytest.raises(RuntimeError), transaction():
        after_commit(lambda: said.append("failed"))
        raise RuntimeError("an output failed")
    a = tmp_path / "a.txt"
    with transaction():
        with atomic_write(a) as f:
            f.write("a")
        after_commit(lambda: said.append(f"wrote a: {a.exists()}"))
        with transaction():  # a nested block's actions wait for the outer one
            after_commit(lambda: said.append("nested"))
        assert said == ["outside"]
    assert said == ["outside", "wrote a: True", "nested"]


# -- read-only outputs ----------------------------------------------------------------------------------


def test_read_only_output_is_not_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = good_csv(tmp_path / "n.csv")
    out = tmp_path / "o.json"
    out.write_text("keep me\n")
    out.chmod(0o444)
    status, _, err = cli(capsys, "refine", str(p), "-o", str(out))
    assert status == 2 and "read-only" in one_error_line(err, str(out))
    assert out.read_text() == "keep me\n"
    with pytest.raises(PermissionError, match="read-only"):
        save_schedule(LinearDecay(10), out)
    with pytest.raises(PermissionError), atomic_write(out) as f:
        f.write("x")
    assert out.read_text() == "keep me\n" and listing(tmp_path) == ["n.csv", "o.json"]
    out.chmod(0o644)
    assert cli(capsys, "refine", str(p), "-o", str(out))[0] == 0


# -- column choice ----------------------------------------------------------------------------------------


def test_unparsed_norm_column_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("step,loss,grad_norm\n" + "".join(f"{i},{v},abc\n" for i, v in enumerate(GOOD)))
    with pytest.raises(RecordError) as info:
        read_record(p)
    msg = str(info.value)
    assert "'grad_norm' is named as a gradient norm but holds no numbers" in msg
    assert "'abc' on line 2" in msg and info.value.key == "grad_norm"
    assert read_record(p, column="loss").kinds == ("loss",)  # asked for by name: fine
    empty = tmp_path / "empty.csv"
    empty.write_text("step,loss,l2\n0,1,\n1,2,\n")
    with pytest.raises(RecordError, match="'l2' is named as a gradient norm"):
        read_record(empty)


def test_unparsed_norm_key_in_jsonl_and_field_in_npy(tmp_path: Path) -> None:
    p = tmp_path / "log.jsonl"
    p.write_text("".join(f'{{"step": {i}, "loss": 2, "grad_norm": "n/a"}}\n' for i in range(5)))
    with pytest.raises(RecordError, match=r"key 'grad_norm' is named as a gradient norm.*line 1"):
        read_record(p)
    q = tmp_path / "log.npy"
    arr = np.zeros(4, dtype=[("step", "i8"), ("loss", "f8"), ("grad_norm", "U3")])
    np.save(q, arr)
    with pytest.raises(RecordError, match=r"field 'grad_norm' is named as a gradient norm"):
        read_record(q)


def test_refine_does_not_fall_back_to_the_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "log.csv"
    p.write_text("step,loss,grad_norm\n" + "".join(f"{i},{v},abc\n" for i, v in enumerate(GOOD)))
    status, out, err = cli(capsys, "refine", str(p), "-o", str(tmp_path / "o.json"))
    assert status == 2 and "grad_norm" in one_error_line(err, str(p)) and not out
    assert not (tmp_path / "o.json").exists()


# -- truncated TensorBoard event files ----------------------------------------------------------------------


def _event_file(d: Path, n: int = 400) -> Path:
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    d.mkdir(parents=True, exist_ok=True)
    w = EventFileWriter(str(d))
    for step in range(n):
        value = summary_pb2.Summary.Value(tag="grad_norm", simple_value=1.0 + step)
        w.add_event(event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[value])))
    w.close()
    return next(d.glob("events.out.tfevents.*"))


@pytest.mark.parametrize("fraction", [0.31, 0.62, 0.97])
def test_truncated_event_file_is_reported(tmp_path: Path, fraction: float) -> None:
    f = _event_file(tmp_path / "run")
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * fraction)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_record(tmp_path / "run")
    assert 0 < rec.total_steps < 400
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and str(f) in messages[0], messages
    assert "not read to its end: cut off in the middle of an event" in messages[0]
    assert (
        f"{len(rec)} value(s) of the tag 'grad_norm' read, steps 0..{rec.total_steps - 1}"
        in (messages[0])
    )
    assert rec.meta["warnings"] == messages


def test_damaged_event_is_reported(tmp_path: Path) -> None:
    f = _event_file(tmp_path / "run")
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a bit flip inside a record: its checksum fails
    f.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_record(tmp_path / "run")
    assert 100 < rec.total_steps < 400
    [message] = [str(w.message) for w in caught]
    assert str(f) in message and "401 complete event(s), but the reader stopped after" in message


def test_complete_event_file_gives_no_warning(tmp_path: Path) -> None:
    _event_file(tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_record(tmp_path / "run").total_steps == 400


def test_truncated_event_file_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _event_file(tmp_path / "run")
    f.write_bytes(f.read_bytes()[:-7])
    status, out, err = cli(capsys, "show", str(tmp_path / "run"))
    assert status == 0 and "399 rows" in out
    lines = err.strip().splitlines()
    assert lines[0].startswith("refinedlr: warning: ") and str(f) in lines[0]


# -- the record writer ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    ["l2\n5", "", " l2", "a,b", 'q"', "a b", "step", "Global_Step", "epoch", "x" * 101, "é", 3],
)
def test_writer_refuses_unsafe_kind_names(tmp_path: Path, kind: Any) -> None:
    with pytest.raises(RecordError, match="bad norm kind name"):
        RecordWriter(tmp_path / "r.csv", kinds=(kind,))
    assert not (tmp_path / "r.csv").exists()


@given(kinds=st.lists(st.from_regex(KIND_PATTERN, fullmatch=True), min_size=1, max_size=3))
@example(kinds=["l2", "update_l2", "train/grad_norm"])
@example(kinds=["0", "nan", "1e5"])
def test_every_kind_the_writer_accepts_reads_back(kinds: list[str]) -> None:
    import tempfile

    from refinedlr.records.series import INDEX_NAMES
    from refinedlr.records.steps import STEP_NAMES

    if len({k for k in kinds}) != len(kinds) or {k.lower() for k in kinds} & (
        set(STEP_NAMES) | INDEX_NAMES
    ):
        return  # refused (tested above)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.csv"
        with RecordWriter(p, kinds=kinds) as w:
            w.write([0, 1], np.arange(2.0 * len(kinds)).reshape(2, len(kinds)))
        rec = read_record(p, column=kinds[0] if len(kinds) == 1 else None)
        assert rec.kinds == tuple(kinds)


def test_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    with RecordWriter(p) as first:
        first.write([0], [[1.0]])
        with pytest.raises(RecordError, match="another writer is recording to this file") as info:
            RecordWriter(p)
        assert str(p) in str(info.value)
        first.write([1], [[2.0]])
    with RecordWriter(p) as again:  # released on close
        again.write([2], [[3.0]])
    assert read_record(p).values["l2"].tolist() == [1.0, 2.0, 3.0]


def test_second_writer_in_another_process_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    code = textwrap.dedent(
        f"""
        import sys, time
        from refinedlr.records import RecordWriter
        with RecordWriter({str(p)!r}) as w:
            w.write([0], [[1.0]])
            print("ready", flush=True)
            sys.stdin.readline()
            w.write([1], [[2.0]])
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with pytest.raises(RecordError, match="another writer"):
            RecordWriter(p)
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(60) == 0
    finally:
        child.kill()
    assert read_record(p).values["l2"].tolist() == [1.0, 2.0]  # nothing of the child's lost


@pytest.mark.parametrize("remove", ["file", "directory", "replaced"])
def test_writer_reports_a_file_deleted_mid_run(tmp_path: Path, remove: str) -> None:
    run = tmp_path / "run"
    p = run / "r.csv"
    w = RecordWriter(p)
    w.write([0], [[1.0]])
    if remove == "file":
        p.unlink()
    elif remove == "directory":
        p.unlink()
        run.rmdir()
    else:
        p.unlink()
        p.write_text("step,l2\n")
    with pytest.raises(RecordError, match="deleted or replaced while recording") as info:
        w.write([1], [[2.0]])
    assert str(p) in str(info.value)
    w.close()


def test_writer_names_the_file_under_a_file_size_limit(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    code = textwrap.dedent(
        f"""
        import resource, signal
        from refinedlr.records import RecordError, RecordWriter
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
        w = RecordWriter({str(p)!r})
        try:
            for step in range(100):
                w.write([step], [[1.0 + step]])
        except RecordError as exc:
            print(exc)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert str(p) in r.stdout and "File too large" in r.stdout and "cannot write steps" in r.stdout
    rec = read_record(p)  # the partly written row was removed: every row is whole
    assert rec.values["l2"].tolist() == [1.0 + s for s in range(len(rec))]
    assert p.read_text().endswith("\n")


def test_writer_refuses_a_named_pipe_and_a_device(tmp_path: Path) -> None:
    fifo = tmp_path / "r.csv"
    os.mkfifo(fifo)
    with pytest.raises(RecordError, match="not a regular file"):
        RecordWriter(fifo)
    with pytest.raises(RecordError, match="not a regular file"):
        RecordWriter("/dev/null")


# -- regular files only, everywhere ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".npy", ".csv"])
def test_load_schedule_refuses_a_named_pipe(tmp_path: Path, suffix: str) -> None:
    fifo = tmp_path / f"s{suffix}"
    os.mkfifo(fifo)
    r = subprocess.run(  # a hang would fail here rather than block the suite
        [
            sys.executable,
            "-c",
            f"from refinedlr import load_schedule; load_schedule({str(fifo)!r})",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "ScheduleError" in r.stderr and "named pipe" in r.stderr


def test_load_schedule_refuses_a_directory(tmp_path: Path) -> None:
    d = tmp_path / "s.json"
    d.mkdir()
    with pytest.raises(ScheduleError, match="a directory"):
        load_schedule(d)


# -- short error lines ---------------------------------------------------------------------------------------


def test_huge_schedule_name_is_not_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"spec": {"name": "x" * 10_000_000, "total_steps": 10}}))
    status, _, err = cli(capsys, "show", str(p))
    line = one_error_line(err, str(p))
    assert status == 2 and "unknown schedule name" in line
    assert len(line) <= len(str(p)) + 250


def test_ten_thousand_columns_are_not_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "wide.csv"
    p.write_text(",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join(["1"] * 10_000) + "\n")
    with pytest.raises(RecordError) as info:
        read_record(p)
    assert "several columns ['c0', 'c1'" in str(info.value) and "(9,994 more)" in str(info.value)
    assert len(str(info.value)) < len(str(p)) + 200
    status, _, err = cli(capsys, "refine", str(p), "-o", str(tmp_path / "o.json"))
    assert status == 2 and len(one_error_line(err, str(p))) <= len(str(p)) + 250


def test_surrogate_names_do_not_break_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "log.jsonl"
    p.write_text("".join(f'{{"step": {i}, "\\ud800x": {v}}}\n' for i, v in enumerate(GOOD)))
    status, out, _ = cli(capsys, "show", str(p))
    assert status == 0 and "\\ud800x" in out


# -- the one-step horizon -------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1, 2, MIN_STEPS - 1])
def test_horizons_shorter_than_the_minimum_are_refused(steps: int) -> None:
    with pytest.raises(RefineError, match=f"total_steps={steps} \\(--steps\\): .* at least 4"):
        refine(GOOD, total_steps=steps)


def test_shortest_horizon_keeps_the_ends() -> None:
    v = refine(GOOD, total_steps=MIN_STEPS).preview()
    full = refine(GOOD).preview()
    assert v[0] == full[0] and v[-1] == 0.0 and v.shape == (MIN_STEPS,)


def test_steps_1_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = good_csv(tmp_path / "n.csv")
    status, _, err = cli(capsys, "refine", str(p), "--steps", "1", "-o", str(tmp_path / "o.json"))
    assert status == 2 and "--steps" in one_error_line(err, str(p))
    assert not (tmp_path / "o.json").exists()


def test_save_and_load_word_an_unknown_suffix_alike(tmp_path):
    from refinedlr import LinearDecay, load_schedule, save_schedule
    from refinedlr.schedules import ScheduleError

    path = tmp_path / ("s." + "q" * 200)
    path.write_text("{}")
    messages = []
    for call in (lambda: save_schedule(LinearDecay(10), path), lambda: load_schedule(path)):
        with pytest.raises(ScheduleError) as info:
            call()
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "unknown schedule file type '.qqq" in messages[0] and "...'" in messages[0]
