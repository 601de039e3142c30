"""Gradient-norm logs: every reader on real-shaped files, malformed files, RecordWriter resume."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refinedlr import limits
from refinedlr.records import GradNormRecord, RecordError, RecordWriter, read_record

# -- helpers -------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def error(path: Path, **kwargs: Any) -> RecordError:
    """Read ``path`` expecting a RecordError; check it names the file and hides inner tracebacks."""
    with pytest.raises(RecordError) as info:
        read_record(path, **kwargs)
    exc = info.value
    assert str(path) in str(exc)
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    return exc


# -- the library's own format --------------------------------------------------------------------


def test_own_format_with_nan_rows(tmp_path: Path) -> None:
    p = write(tmp_path / "norms.csv", "step,l2,l1\n0,12.5,30110.2\n1,nan,nan\n2,11.875,29870.4\n")
    rec = read_record(p)
    assert rec.kinds == ("l2", "l1")
    assert rec.steps.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(rec.values["l2"], [12.5, np.nan, 11.875])
    np.testing.assert_array_equal(rec.norms("l1"), [30110.2, np.nan, 29870.4])
    assert rec.meta["format"] == "csv" and rec.meta["step_column"] == "step"
    assert "3 rows over steps 0..2" in rec.describe()
    assert "1 missing l2 value(s)" in rec.describe()
    only = read_record(p, column="l1")
    assert only.kinds == ("l1",)
    # empty cells: NaN where the row has another kind, no row where it has none
    p = write(tmp_path / "gaps.csv", "step,l2,l1\n0,1,2\n1,,3\n2,,\n3,4,5\n")
    rec = read_record(p)
    assert rec.steps.tolist() == [0, 1, 3]
    np.testing.assert_array_equal(rec.values["l2"], [1, np.nan, 4])
    assert read_record(p, column="l2").steps.tolist() == [0, 3]


def test_own_format_truncated_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    good = "step,l2,l1\n0,1.5,40\n1,1.25,38\n"
    for cut in ("2,1.1", "2,1.125,3", "2"):  # cut mid-field, mid-number (still parses), mid-step
        p = write(tmp_path / "killed.csv", good + cut)
        with pytest.warns(UserWarning, match=r"killed\.csv, line 4") as w:
            rec = read_record(p)
        assert repr(cut) in str(w[0].message)
        assert rec.steps.tolist() == [0, 1]
        np.testing.assert_array_equal(rec.values["l1"], [40.0, 38.0])


def test_truncated_line_warning_points_at_the_caller(tmp_path: Path) -> None:
    # the warning is attributed to the line that called read_record, not to the reader's insides
    p = write(tmp_path / "killed.csv", "step,l2\n0,1\n1,2\n2,1.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        read_record(p)
    (w,) = caught
    assert w.filename == __file__ and w.lineno == line, (w.filename, w.lineno)
    assert "line 4" in str(w.message)
    with pytest.warns(UserWarning):
        assert read_record(p).meta["warnings"] == [str(w.message)]


def test_complete_files_do_not_warn(tmp_path: Path) -> None:
    p = write(tmp_path / "ok.csv", "step,l2\n0,1\n1,2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_record(p)) == 2
    # a foreign CSV without a final newline keeps its last row
    p = write(tmp_path / "foreign.csv", "global_step,grad_norm\n0,1\n1,2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_record(p).steps.tolist() == [0, 1]


@pytest.mark.parametrize(
    "content,line,words",
    [
        ("step,l2\n0,1.0\n1,abc\n", 3, ["not a number", "'abc'", "l2"]),
        ("step,l2,l1\n0,1.0,2.0\n1,2.0\n2,3,4\n", 3, ["expected 3 field", "got 2"]),
        ("step,l2\n0,1\n1,2\n5,3\n3,1\n", 5, ["step 3 follows step 5"]),
        ("step,l2\n0,1\n1.5,2\n", 3, ["not a whole number"]),
        ("step,l2\n0,1\n-1,2\n", 3, ["negative"]),
        ("step,l2\n0,1\n,2\n", 3, ["no step"]),
        ("step,l2\n0,1\nx,2\n", 3, ["not a number", "'x'"]),
        ("step,l2,l2\n0,1,2\n", 1, ["appears twice"]),
        ("grad_norm\n1.0\n2.0\n1,5\n", 4, ["expected 1 field"]),
    ],
)
def test_malformed_csv_names_file_and_line(
    tmp_path: Path, content: str, line: int, words: list[str]
) -> None:
    p = write(tmp_path / "bad.csv", content)
    exc = error(p)
    assert exc.line == line, str(exc)
    assert f"line {line}" in str(exc)
    for w in words:
        assert w in str(exc)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "step,l2\n", "step,l2\n\n"])
def test_empty_files(tmp_path: Path, content: str) -> None:
    p = write(tmp_path / "empty.csv", content)
    msg = str(error(p))
    assert "empty" in msg or "no data rows" in msg


def test_missing_column_names_the_key_and_lists_columns(tmp_path: Path) -> None:
    p = write(tmp_path / "n.csv", "step,l2,l1\n0,1,2\n1,3,4\n")
    exc = error(p, column="l9")
    assert exc.key == "l9" and "'l2', 'l1'" in str(exc)


def test_repeated_steps_keep_the_last_value(tmp_path: Path) -> None:
    # a run resumed at step 3 after it had logged up to step 4
    p = write(tmp_path / "resumed.csv", "step,l2\n0,1\n1,2\n2,3\n3,4\n4,5\n3,40\n4,50\n5,60\n")
    rec = read_record(p)
    assert rec.steps.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(rec.values["l2"], [1, 2, 3, 40, 50, 60])
    assert rec.meta["repeated_steps"] == 2
    assert "2 step(s) logged more than once" in rec.describe()
    # ... but a step going back to one never logged is an error naming the line
    p = write(tmp_path / "shuffled.csv", "step,l2\n0,1\n2,3\n4,5\n3,4\n")
    exc = error(p)
    assert exc.line == 5 and "step 3 follows step 4" in str(exc)


def test_large_file_errors_still_name_the_line(tmp_path: Path) -> None:
    # the fast path has no line numbers; an error must still name the right one
    lines = [f"{2 * i},{1 + i % 7}" for i in range(2000)]
    lines[1500] = "11,3"  # line 1502 of the file; step 11 was never logged
    p = write(tmp_path / "big.csv", "step,l2\n" + "\n".join(lines) + "\n")
    exc = error(p)
    assert exc.line == 1502 and "step 11 follows step 2998" in str(exc)


# -- any CSV / TSV -------------------------------------------------------------------------------


def test_plain_csv_with_one_numeric_column_and_text(tmp_path: Path) -> None:
    p = write(tmp_path / "log.csv", "run,global_step,norm\nabc,0,3.5\nabc,1,3.0\nabc,2,2.5\n")
    rec = read_record(p)
    assert rec.kinds == ("norm",) and rec.steps.tolist() == [0, 1, 2]
    assert rec.meta["step_column"] == "global_step"


@pytest.mark.parametrize("step_name", ["step", "Step", "global_step", "iteration", "_step"])
def test_step_column_names(tmp_path: Path, step_name: str) -> None:
    p = write(tmp_path / "s.csv", f"{step_name},grad_norm\n10,2\n20,1\n")
    rec = read_record(p)
    assert rec.steps.tolist() == [10, 20] and rec.kinds == ("grad_norm",)


def test_csv_without_step_column_uses_rows(tmp_path: Path) -> None:
    p = write(tmp_path / "rows.csv", "grad_norm\n3\n2\n1\n")
    rec = read_record(p)
    assert rec.steps.tolist() == [0, 1, 2] and rec.meta["steps"] == "row index"


def test_several_numeric_columns_need_a_choice(tmp_path: Path) -> None:
    p = write(tmp_path / "m.csv", "Step,loss,lr\n0,2.0,0.1\n1,1.5,0.1\n")
    exc = error(p)
    assert "'loss', 'lr'" in str(exc) and "column=" in str(exc) and exc.line == 1
    assert read_record(p, column="loss").values["loss"].tolist() == [2.0, 1.5]
    # grad_norm is taken when present among others
    p = write(tmp_path / "g.csv", "Step,loss,grad_norm\n0,2.0,5\n1,1.5,4\n")
    assert read_record(p).kinds == ("grad_norm",)


def test_lightning_metrics_csv_with_gaps(tmp_path: Path) -> None:
    # Lightning's CSVLogger: train and validation rows interleaved, empty where not logged
    content = (
        "epoch,step,train_loss,grad_norm,val_loss\n"
        "0,49,2.31,5.5,\n"
        "0,99,2.01,4.5,\n"
        "0,99,,,1.98\n"
        "1,149,1.80,3.5,\n"
    )
    p = write(tmp_path / "metrics.csv", content)
    rec = read_record(p)
    assert rec.kinds == ("grad_norm",)
    assert rec.steps.tolist() == [49, 99, 149]
    np.testing.assert_array_equal(rec.values["grad_norm"], [5.5, 4.5, 3.5])
    val = read_record(p, column="val_loss")
    assert val.steps.tolist() == [99] and val.values["val_loss"].tolist() == [1.98]


def test_text_column_cannot_be_chosen(tmp_path: Path) -> None:
    p = write(tmp_path / "t.csv", "step,run,grad_norm\n0,a,1\n1,b,2\n")
    exc = error(p, column="run")
    assert exc.line == 2 and exc.key == "run" and "'a'" in str(exc)


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_tsv_and_semicolons(tmp_path: Path, delimiter: str) -> None:
    rows = ["iteration", "loss", "grad_norm"], ["0", "2.5", "4.25"], ["1", "2.4", "nan"]
    p = write(tmp_path / "log.tsv", "".join(delimiter.join(r) + "\n" for r in rows))
    rec = read_record(p)
    assert rec.kinds == ("grad_norm",)
    np.testing.assert_array_equal(rec.values["grad_norm"], [4.25, np.nan])


def test_decimal_comma_gets_a_hint(tmp_path: Path) -> None:
    p = write(tmp_path / "eu.csv", "step;grad_norm\n0;1.5\n1;2,5\n")
    exc = error(p)
    assert exc.line == 3 and "decimal comma" in str(exc)


def test_headerless_single_column(tmp_path: Path) -> None:
    p = write(tmp_path / "norms.txt", "4.0\n3.0\n\nnan\n1e0\n")
    rec = read_record(p)
    assert rec.kinds == ("l2",) and rec.steps.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(rec.values["l2"], [4.0, 3.0, np.nan, 1.0])
    assert read_record(p, column="l1").kinds == ("l1",)
    exc = error(write(tmp_path / "bad.txt", "4.0\n3.0\nthree\n"))
    assert exc.line == 3 and "'three'" in str(exc)
    exc = error(write(tmp_path / "two.txt", "0,4.0\n1,3.0\n"))
    assert exc.line == 1 and "no header" in str(exc)


def test_crlf_and_bom(tmp_path: Path) -> None:
    p = tmp_path / "win.csv"
    p.write_bytes("\ufeffstep,l2\r\n0,1.5\r\n1,2.5\r\n".encode())
    rec = read_record(p)
    assert rec.kinds == ("l2",) and rec.values["l2"].tolist() == [1.5, 2.5]


def test_binary_file_as_csv(tmp_path: Path) -> None:
    p = tmp_path / "blob.csv"
    p.write_bytes(b"step,l2\n0,1\n\xff\xfe\x01\n")
    exc = error(p)
    assert exc.line == 3 and "UTF-8" in str(exc)


# -- sparse logs ---------------------------------------------------------------------------------


def test_sparse_log_is_placed_and_interpolated(tmp_path: Path) -> None:
    p = write(tmp_path / "sparse.csv", "step,l2\n9,10\n19,nan\n29,6\n39,5\n")
    rec = read_record(p)
    assert rec.total_steps == 40 and rec.stride == 10 and rec.coverage == 0.1
    n = rec.norms()
    assert n.shape == (40,)
    np.testing.assert_array_equal(n[:10], 10.0)  # before the first logged value: that value
    assert math.isnan(n[19])  # a logged NaN stays missing
    np.testing.assert_allclose(n[29:40], np.linspace(6, 5, 11))
    np.testing.assert_allclose(n[20], 10 - 4 * 11 / 20)  # across the NaN: between 9 and 29
    d = rec.describe()
    assert "one row every 10 steps" in d and "10.0% of steps logged" in d
    assert rec.meta["stride"] == 10


# -- Weights & Biases ----------------------------------------------------------------------------

WANDB_HEADER = (
    '"Step","sunny-dream-12 - train/grad_norm","sunny-dream-12 - train/grad_norm__MIN",'
    '"sunny-dream-12 - train/grad_norm__MAX"\n'
)


def wandb_rows(rows: list[tuple[int, str]]) -> str:
    return "".join(f'"{s}","{v}","{v}","{v}"\n' for s, v in rows)


def test_wandb_export(tmp_path: Path) -> None:
    rows = [(10, "4.5"), (20, "4.25"), (30, ""), (40, "3.75")]
    p = write(tmp_path / "wandb_export_2024-05-01T10_00_00.csv", WANDB_HEADER + wandb_rows(rows))
    rec = read_record(p)
    assert rec.meta["format"] == "wandb"
    assert rec.kinds == ("train/grad_norm",)
    assert rec.meta["run"] == "sunny-dream-12"
    assert rec.steps.tolist() == [10, 20, 40]  # an empty cell is no row for that step
    np.testing.assert_array_equal(rec.values["train/grad_norm"], [4.5, 4.25, 3.75])
    assert rec.norms()[30] == pytest.approx(4.0)


def test_wandb_several_runs(tmp_path: Path) -> None:
    header = (
        '"Step","run-a - grad_norm","run-a - grad_norm__MIN","run-a - grad_norm__MAX",'
        '"run-b - grad_norm","run-b - grad_norm__MIN","run-b - grad_norm__MAX"\n'
    )
    body = '"0","1","1","1","","",""\n"1","2","2","2","7","7","7"\n"2","","","","8","8","8"\n'
    p = write(tmp_path / "export.csv", header + body)
    exc = error(p)
    assert "run-a - grad_norm" in str(exc) and "run-b - grad_norm" in str(exc)
    assert "column=" in str(exc)
    b = read_record(p, column="run-b")
    assert b.steps.tolist() == [1, 2] and b.values["grad_norm"].tolist() == [7.0, 8.0]
    a = read_record(p, column="run-a - grad_norm")
    assert a.steps.tolist() == [0, 1]
    exc = error(p, column="grad_norm")  # the metric is in both runs: ambiguous
    assert exc.key == "grad_norm"
    exc = error(p, column="run-c")
    assert "run-c" in str(exc)


def test_wandb_one_run_several_metrics(tmp_path: Path) -> None:
    header = (
        '"Step","run-a - train/loss","run-a - train/loss__MIN","run-a - train/loss__MAX",'
        '"run-a - train/grad_norm","run-a - train/grad_norm__MIN","run-a - train/grad_norm__MAX"\n'
    )
    p = write(tmp_path / "export.csv", header + '"5","2.5","2.5","2.5","9","9","9"\n')
    rec = read_record(p)
    assert rec.kinds == ("train/grad_norm",) and rec.steps.tolist() == [5]
    assert read_record(p, column="train/loss").values["train/loss"].tolist() == [2.5]


def test_wandb_resumed_run_keeps_the_last_values(tmp_path: Path) -> None:
    rows = [(0, "5"), (1, "4"), (2, "3"), (3, "2"), (2, "30"), (3, "20"), (4, "10")]
    p = write(tmp_path / "resumed.csv", WANDB_HEADER + wandb_rows(rows))
    rec = read_record(p)
    assert rec.steps.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(rec.values["train/grad_norm"], [5, 4, 30, 20, 10])
    assert rec.meta["repeated_steps"] == 2 and "logged more than once" in rec.describe()
    rows = [(0, "5"), (10, "4"), (20, "3"), (15, "2")]
    p = write(tmp_path / "broken.csv", WANDB_HEADER + wandb_rows(rows))
    exc = error(p)
    assert exc.line == 5 and "step 15 follows step 20" in str(exc)


def test_wandb_malformed(tmp_path: Path) -> None:
    p = write(tmp_path / "w.csv", WANDB_HEADER + '"0","1.5","1","2"\n"1","oops","1","2"\n')
    exc = error(p)
    assert exc.line == 3 and "'oops'" in str(exc)
    p = write(tmp_path / "notw.csv", "step,l2\n0,1\n")
    exc = error(p, format="wandb")
    assert "W&B" in str(exc) and exc.line == 1


# -- JSON lines ----------------------------------------------------------------------------------


def test_jsonl(tmp_path: Path) -> None:
    lines = [
        {"step": 0, "loss": 2.3, "grad_norm": 5.0},
        {"step": 1, "loss": 2.2, "grad_norm": None},
        {"step": 1, "eval_loss": 2.5},
        {"step": 2, "loss": 2.1, "grad_norm": 4.0},
    ]
    p = write(tmp_path / "log.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    rec = read_record(p)
    assert rec.kinds == ("grad_norm",) and rec.steps.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(rec.values["grad_norm"], [5.0, np.nan, 4.0])
    assert rec.meta["skipped"] == 1 and "1 line(s) without 'grad_norm' skipped" in rec.describe()
    loss = read_record(p, column="loss")
    assert loss.values["loss"].tolist() == [2.3, 2.2, 2.1]
    ev = read_record(p, column="eval_loss")
    assert ev.steps.tolist() == [1] and ev.meta["skipped"] == 3


def test_jsonl_step_keys_and_row_index(tmp_path: Path) -> None:
    p = write(tmp_path / "a.ndjson", '{"_step": 5, "gn": 1}\n{"_step": 10, "gn": 2}\n')
    rec = read_record(p)
    assert rec.steps.tolist() == [5, 10] and rec.kinds == ("gn",)
    p = write(tmp_path / "b.json", '{"gn": 1}\n{"gn": 2}\n{"gn": 3}\n')  # .json holding lines
    rec = read_record(p)
    assert rec.meta["format"] == "jsonl" and rec.steps.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "content,line,words",
    [
        ('{"step": 0, "grad_norm": 1}\n{"step": 1, "grad_no', 2, ["not JSON", "cut-off"]),
        ('{"step": 0, "grad_norm": 1}\n[1, 2]\n', 2, ["expected a JSON object"]),
        ('{"step": 0, "grad_norm": 1}\n{"step": 1, "grad_norm": "big"}\n', 2, ["'big'"]),
        ('{"step": 0, "grad_norm": 1}\n{"grad_norm": 2}\n', 2, ["no 'step'"]),
        ('{"step": 4, "grad_norm": 1}\n{"step": 2, "grad_norm": 2}\n', 2, ["step 2 follows"]),
        ('{"step": 0.5, "grad_norm": 1}\n', 1, ["not a whole number"]),
    ],
)
def test_malformed_jsonl(tmp_path: Path, content: str, line: int, words: list[str]) -> None:
    p = write(tmp_path / "bad.jsonl", content)
    exc = error(p)
    assert exc.line == line, str(exc)
    for w in words:
        assert w in str(exc)


def test_jsonl_key_choice(tmp_path: Path) -> None:
    p = write(tmp_path / "k.jsonl", '{"step": 0, "loss": 1, "lr": 0.1}\n')
    exc = error(p)
    assert "'loss', 'lr'" in str(exc)
    exc = error(p, column="grad_norm")
    assert exc.key == "grad_norm" and "'loss', 'lr'" in str(exc)


# -- Hugging Face trainer_state.json ------------------------------------------------------------


def trainer_state(max_steps: int = 100, logging_steps: int = 10) -> dict[str, Any]:
    """The structure transformers' Trainer writes (train logs, eval logs, final summary)."""
    history: list[dict[str, Any]] = []
    for s in range(logging_steps, max_steps + 1, logging_steps):
        history.append(
            {
                "epoch": round(s / 50, 2),
                "grad_norm": 10.0 / s,
                "learning_rate": 5e-5 * (1 - s / max_steps),
                "loss": 2.0 - s / 100,
                "step": s,
            }
        )
        if s % 50 == 0:
            history.append(
                {
                    "epoch": round(s / 50, 2),
                    "eval_loss": 1.9,
                    "eval_runtime": 1.2,
                    "eval_samples_per_second": 800.0,
                    "eval_steps_per_second": 100.0,
                    "step": s,
                }
            )
    history.append(
        {
            "epoch": 2.0,
            "step": max_steps,
            "total_flos": 12345.0,
            "train_loss": 1.5,
            "train_runtime": 30.5,
            "train_samples_per_second": 100.0,
            "train_steps_per_second": 3.3,
        }
    )
    return {
        "best_metric": None,
        "best_model_checkpoint": None,
        "epoch": 2.0,
        "eval_steps": 50,
        "global_step": max_steps,
        "is_hyper_param_search": False,
        "is_local_process_zero": True,
        "is_world_process_zero": True,
        "log_history": history,
        "logging_steps": logging_steps,
        "max_steps": max_steps,
        "num_input_tokens_seen": 0,
        "num_train_epochs": 2,
        "save_steps": 500,
        "stateful_callbacks": {},
        "total_flos": 12345.0,
        "train_batch_size": 8,
        "trial_name": None,
        "trial_params": None,
    }


def test_trainer_state(tmp_path: Path) -> None:
    p = tmp_path / "checkpoint-100" / "trainer_state.json"
    p.parent.mkdir()
    write(p, json.dumps(trainer_state(), indent=2, sort_keys=True))
    rec = read_record(p)
    assert rec.kinds == ("l2",)
    # HF's step s counts completed optimizer steps: its grad_norm belongs to step s - 1
    assert rec.steps.tolist() == list(range(9, 100, 10))
    np.testing.assert_allclose(rec.values["l2"], [10.0 / s for s in range(10, 101, 10)])
    assert rec.meta["format"] == "trainer_state" and rec.meta["logging_steps"] == 10
    assert rec.meta["stride"] == 10 and rec.meta["step_offset"] == -1
    assert rec.meta["skipped"] == 3  # two eval entries and the final summary
    assert rec.total_steps == 100 and rec.norms().shape == (100,)
    assert "one row every 10 steps" in rec.describe() and "s - 1" in rec.describe()
    assert read_record(p.parent).steps.tolist() == rec.steps.tolist()  # the checkpoint dir
    lr = read_record(p, column="learning_rate")
    assert lr.kinds == ("learning_rate",) and lr.steps[0] == 9


def test_trainer_state_guessed_by_content(tmp_path: Path) -> None:
    p = write(tmp_path / "state.json", json.dumps(trainer_state(), indent=2, sort_keys=True))
    assert read_record(p).meta["format"] == "trainer_state"
    p = write(tmp_path / "compact.json", json.dumps(trainer_state()))
    assert read_record(p).meta["format"] == "trainer_state"


def test_trainer_state_malformed(tmp_path: Path) -> None:
    text = json.dumps(trainer_state(), indent=2, sort_keys=True)
    p = write(tmp_path / "trainer_state.json", text[: len(text) // 2])
    exc = error(p)
    assert "truncated" in str(exc) and exc.line is not None and exc.line > 10
    doc = trainer_state()
    doc["log_history"][2]["grad_norm"] = "large"
    exc = error(write(p, json.dumps(doc)))
    assert exc.key == "log_history[2].grad_norm" and "'large'" in str(exc)
    doc = trainer_state()
    del doc["log_history"][1]["step"]
    exc = error(write(p, json.dumps(doc)))
    assert exc.key == "log_history[1].step"
    doc = trainer_state()
    for entry in doc["log_history"]:
        entry.pop("grad_norm", None)
    exc = error(write(p, json.dumps(doc)))
    assert exc.key == "log_history" and "grad_norm" in str(exc)
    exc = error(write(p, json.dumps({"global_step": 3})))
    assert exc.key == "log_history"
    doc = trainer_state()
    doc["log_history"][3]["step"] = 15  # goes back to a step never logged
    exc = error(write(p, json.dumps(doc)))
    assert exc.key == "log_history[3].step" and "follows" in str(exc)


def test_trainer_state_nan_norm(tmp_path: Path) -> None:
    doc = trainer_state()
    doc["log_history"][0]["grad_norm"] = float("nan")
    p = write(tmp_path / "trainer_state.json", json.dumps(doc))  # json writes NaN
    rec = read_record(p)
    assert math.isnan(rec.values["l2"][0]) and "1 missing l2 value(s)" in rec.describe()


# -- .npy ----------------------------------------------------------------------------------------


def test_npy_one_and_two_dimensional(tmp_path: Path) -> None:
    p = tmp_path / "n.npy"
    np.save(p, np.array([3.0, 2.0, np.nan], dtype=np.float32))
    rec = read_record(p)
    assert rec.kinds == ("l2",) and rec.steps.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(rec.values["l2"], [3.0, 2.0, np.nan])
    assert read_record(p, column="l1").kinds == ("l1",)
    np.save(p, np.array([[1.0, 10.0], [2.0, 20.0]]))
    rec = read_record(p)
    assert rec.kinds == ("col0", "col1")
    assert read_record(p, column="1").values["col1"].tolist() == [10.0, 20.0]
    assert read_record(p, column="col0").values["col0"].tolist() == [1.0, 2.0]
    exc = error(p, column="col5")
    assert "col0" in str(exc) and exc.key == "col5"
    np.save(p, np.arange(4, dtype=np.int32).reshape(4, 1) + 1)
    assert read_record(p).values["l2"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_npy_structured_with_steps(tmp_path: Path) -> None:
    arr = np.zeros(3, dtype=[("step", "i8"), ("l2", "f4"), ("l1", "f8")])
    arr["step"] = [0, 10, 20]
    arr["l2"] = [3, 2, 1]
    arr["l1"] = [30, 20, 10]
    p = tmp_path / "s.npy"
    np.save(p, arr)
    rec = read_record(p)
    assert rec.kinds == ("l2", "l1") and rec.steps.tolist() == [0, 10, 20]
    assert read_record(p, column="l1").kinds == ("l1",)


def test_npy_malformed(tmp_path: Path) -> None:
    p = tmp_path / "bad.npy"
    np.save(p, np.array([1.0, "x", None], dtype=object), allow_pickle=True)
    exc = error(p)
    assert exc.key == "dtype" and "object" in str(exc)
    np.save(p, np.array([True, False]))
    exc = error(p)
    assert exc.key == "dtype" and "bool" in str(exc)
    np.save(p, np.array(["a", "b"]))
    assert error(p).key == "dtype"
    np.save(p, np.ones((2, 2, 2)))
    assert "shape (2, 2, 2)" in str(error(p))
    np.save(p, np.zeros(0))
    assert "empty" in str(error(p))
    np.save(p, np.array(3.0))
    assert "shape ()" in str(error(p))
    np.save(p, np.arange(1000.0))
    data = p.read_bytes()
    p.write_bytes(data[:600])
    assert "not fully written" in str(error(p)) or "cannot read" in str(error(p))
    p.write_bytes(data[:40])
    assert "cannot read" in str(error(p))
    import pickle

    p.write_bytes(pickle.dumps([1.0, 2.0]))
    assert "pickle" in str(error(p))
    z = tmp_path / "z.npz"
    np.savez(z, a=np.ones(3))
    assert ".npz" in str(error(z))
    p.write_bytes(b"")
    assert "empty" in str(error(p))


# -- TensorBoard ---------------------------------------------------------------------------------


def tb_write(logdir: Path, series: dict[str, list[tuple[int, float]]], name: str) -> Path:
    """Write scalars with tensorboard's own event writer (legacy simple_value summaries)."""
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir.mkdir(parents=True, exist_ok=True)
    before = set(logdir.iterdir())
    w = EventFileWriter(str(logdir))
    for tag, points in series.items():
        for step, value in points:
            summary = summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
            )
            w.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    w.close()
    (written,) = set(logdir.iterdir()) - before
    target = logdir / name
    written.rename(target)
    return target


def test_tensorboard_with_torch_summary_writer(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    tb = pytest.importorskip("torch.utils.tensorboard")
    run = tmp_path / "runs" / "May01_10-00-00_host"
    w = tb.SummaryWriter(log_dir=str(run))
    for s in range(10, 101, 10):
        w.add_scalar("train/grad_norm", 10.0 / s, s)
        w.add_scalar("train/loss", 2.0 - s / 100, s)
    w.close()
    for path in (run, tmp_path / "runs", next(run.glob("events.out.tfevents.*"))):
        rec = read_record(path)
        assert rec.meta["format"] == "tensorboard" and rec.meta["tag"] == "train/grad_norm"
        assert rec.kinds == ("train/grad_norm",)
        # logged at 10, 20, ..., 100 as HF's callback does (steps completed): read as t = s - 1
        assert rec.steps.tolist() == list(range(9, 100, 10))
        assert rec.meta["step_offset"] == -1 and "1-based" in rec.describe()
        np.testing.assert_allclose(rec.values["train/grad_norm"], [10 / (s + 1) for s in rec.steps])
    loss = read_record(run, tag="train/loss", step_offset=0)  # the steps as written
    assert loss.steps.tolist() == list(range(10, 101, 10)) and "step_offset" not in loss.meta
    np.testing.assert_allclose(loss.values["train/loss"], 2.0 - loss.steps / 100, rtol=1e-6)


def test_tensorboard_with_tensorboard_writer(tmp_path: Path) -> None:
    f = tb_write(
        tmp_path / "run",
        {"gradients/l2": [(0, 3.0), (1, 2.0), (2, 1.5)], "loss": [(0, 1.0)]},
        "events.out.tfevents.1000.host.1.0",
    )
    exc = error(f)
    assert "'gradients/l2', 'loss'" in str(exc) and "tag=" in str(exc)
    rec = read_record(f, tag="gradients/l2")
    assert rec.steps.tolist() == [0, 1, 2] and rec.values["gradients/l2"].tolist() == [3, 2, 1.5]
    exc = error(f, tag="nope")
    assert exc.key == "nope" and "gradients/l2" in str(exc)
    assert read_record(f, format="tensorboard", column="loss").kinds == ("loss",)


def test_tensorboard_restarted_run_and_several_runs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    tb_write(run, {"grad_norm": [(0, 5.0), (1, 4.0), (2, 3.0)]}, "events.out.tfevents.1000.h.1.0")
    tb_write(run, {"grad_norm": [(2, 30.0), (3, 20.0)]}, "events.out.tfevents.2000.h.2.0")
    rec = read_record(run)
    assert rec.steps.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(rec.values["grad_norm"], [5, 4, 30, 20])
    assert rec.meta["repeated_steps"] == 1 and len(rec.meta["files"]) == 2
    tb_write(tmp_path / "other", {"grad_norm": [(0, 1.0)]}, "events.out.tfevents.3000.h.3.0")
    exc = error(tmp_path)
    assert "2 runs" in str(exc) and "'other'" in str(exc)


def test_tensorboard_corrupt_file(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    p = tmp_path / "events.out.tfevents.1.host"
    p.write_bytes(b"\x00" * 7 + b"garbage that is not a record" * 3)
    with pytest.raises(RecordError) as info:
        rec = read_record(p)
        # a reader that shrugs off garbage must still find no scalars
        pytest.fail(f"read {rec!r}")
    assert str(p) in str(info.value)


def test_tensorboard_missing_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "events.out.tfevents.1.host"
    p.write_bytes(b"")
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    exc = error(p)
    assert "pip install 'refinedlr[tensorboard]'" in str(exc)


# -- format guessing -----------------------------------------------------------------------------


def test_format_guessing(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "step,l2\n0,1\n")
    write(tmp_path / "w.csv", WANDB_HEADER + wandb_rows([(0, "1")]))
    write(tmp_path / "j.jsonl", '{"step": 0, "grad_norm": 1}\n')
    write(tmp_path / "trainer_state.json", json.dumps(trainer_state()))
    np.save(tmp_path / "n.npy", np.ones(3))
    expected = {"a.csv": "csv", "w.csv": "wandb", "j.jsonl": "jsonl", "n.npy": "npy"}
    expected["trainer_state.json"] = "trainer_state"
    for name, fmt in expected.items():
        assert read_record(tmp_path / name).meta["format"] == fmt
    # a .npy under another name is recognised by its magic bytes
    (tmp_path / "n.npy").rename(tmp_path / "norms.bin")
    assert read_record(tmp_path / "norms.bin").meta["format"] == "npy"


def test_format_override_and_unknown(tmp_path: Path) -> None:
    p = write(tmp_path / "w.csv", WANDB_HEADER + wandb_rows([(0, "1"), (1, "2")]))
    rec = read_record(p, format="csv", column="sunny-dream-12 - train/grad_norm")
    assert rec.meta["format"] == "csv" and rec.steps.tolist() == [0, 1]
    exc = error(p, format="parquet")
    assert "unknown format 'parquet'" in str(exc) and "trainer_state" in str(exc)
    blob = tmp_path / "x.parquet"
    blob.write_bytes(b"PAR1\x00\x00")
    assert "cannot tell the format" in str(error(blob))
    assert "no such file" in str(error(tmp_path / "missing.csv"))
    assert "trainer_state.json" in str(error(tmp_path))  # an empty directory
    exc = error(write(tmp_path / "doc.json", '{\n  "spec": {"name": "linear"}\n}\n'))
    assert "log_history" in str(exc)
    assert "directory" in str(error(tmp_path, format="csv"))


# -- RecordWriter --------------------------------------------------------------------------------


def test_writer_resume_truncates_at_start_step(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    with RecordWriter(p, kinds=("l2", "l1")) as w:
        w.write(range(6), np.arange(12.0).reshape(6, 2))
    with RecordWriter(p, kinds=("l2", "l1"), start_step=4) as w:
        assert w.last_step == 3
        w.write([4, 5], [[40, 41], [50, 51]])
    rec = read_record(p)
    assert rec.steps.tolist() == list(range(6))
    assert rec.values["l2"].tolist() == [0, 2, 4, 6, 40, 50]
    # without start_step a resumed writer continues after the last row
    with RecordWriter(p, kinds=("l2", "l1")) as w:
        assert w.last_step == 5
        with pytest.raises(RecordError, match="steps must increase"):
            w.write([5], [[1, 1]])
        w.write([6], [[60, 61]])
    assert read_record(p).steps.tolist() == list(range(7))


def test_writer_header_mismatch(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    with RecordWriter(p, kinds=("l2",)) as w:
        w.write([0], [[1.0]])
    with pytest.raises(RecordError) as info:
        RecordWriter(p, kinds=("l2", "l1"))
    assert info.value.line == 1 and str(p) in str(info.value) and "'step,l2'" in str(info.value)


def test_writer_drops_truncated_last_line_on_resume(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    write(p, "step,l2\n0,1\n1,2\n2,1.2")
    with RecordWriter(p, kinds=("l2",)) as w:
        assert w.last_step == 1
        w.write([2], [[3.0]])
    assert p.read_text() == "step,l2\n0,1\n1,2\n2,3\n"


def test_writer_errors(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    w = RecordWriter(p, kinds=("l2",))
    with pytest.raises(RecordError, match="values for 2 steps"):
        w.write([0, 1], [1.0, 2.0, 3.0])
    w.write([], [])
    w.close()
    with pytest.raises(RecordError, match="closed"):
        w.write([0], [[1.0]])
    with pytest.raises(RecordError, match="bad norm kind"):
        RecordWriter(tmp_path / "k.csv", kinds=("a,b",))


finite_or_nan = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64), st.just(float("nan"))
)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.integers(0, 10**9), min_size=1, max_size=40, unique=True),
    data=st.data(),
    two=st.booleans(),
)
def test_writer_reader_round_trip(steps: list[int], data: st.DataObject, two: bool) -> None:
    steps = sorted(steps)
    kinds = ("l2", "l1") if two else ("l2",)
    rows = data.draw(
        st.lists(
            st.lists(finite_or_nan, min_size=len(kinds), max_size=len(kinds)),
            min_size=len(steps),
            max_size=len(steps),
        )
    )
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "r.csv")
        with RecordWriter(p, kinds=kinds) as w:
            half = len(steps) // 2
            w.write(steps[:half], rows[:half])
            w.write(steps[half:], rows[half:])
        with mock.patch.object(
            limits, "MAX_STEPS", 2 * 10**9
        ):  # steps up to 10^9: over the default
            rec = read_record(p)
    assert rec.kinds == kinds
    assert rec.steps.tolist() == steps
    expected = np.asarray(rows, dtype=np.float64)
    for j, k in enumerate(kinds):
        np.testing.assert_allclose(rec.values[k], expected[:, j], rtol=1e-8, atol=0)


# -- the record type and the core's imports -----------------------------------------------------


def test_record_validation() -> None:
    with pytest.raises(RecordError, match="increase strictly"):
        GradNormRecord.from_arrays({"l2": [1, 2]}, steps=[3, 3])
    rec = GradNormRecord.from_arrays({"l2": [1.0, 2.0]}, meta={"notes": ["a note"]})
    assert rec.describe().endswith("a note")


def test_records_package_has_no_import_cycles() -> None:
    # every module of refinedlr.records, and the package modules each imports (module level)
    import ast

    import refinedlr.records

    root = Path(refinedlr.records.__file__).parent
    graph: dict[str, set[str]] = {}
    for f in root.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.add(node.module or "__init__")
                if node.module is None:
                    deps.update(a.name for a in node.names)
        graph[f.stem] = deps
    assert {"record", "writer", "detect", "steps", "delimited", "tensorboard"} <= set(graph)
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        assert name not in stack, f"import cycle: {' -> '.join((*stack, name))}"
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, (*stack, name))
        done.add(name)

    for name in graph:
        visit(name, ())
    # the package exports the public names only
    assert all(not n.startswith("_") for n in refinedlr.records.__all__)
    assert set(refinedlr.records.__all__) == {
        "DEFAULT_NAMES", "FORMATS", "STEP_NAMES", "GradNormRecord", "NormKindWarning", "RecordError",
        "RecordWriter", "read_record",
    }  # fmt: skip


def test_import_does_not_pull_torch_or_tensorboard() -> None:
    code = (
        "import sys, refinedlr.records; "
        "bad = [m for m in ('torch', 'tensorboard') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
