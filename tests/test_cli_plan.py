"""``refinedlr plan``: the transfer and extend forms, their files, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from refinedlr import Continuation, Cosine, LinearDecay, WarmupStableDecay
from refinedlr.cli import main
from refinedlr.plan import extend, predict, transfer_lr
from refinedlr.schedule_io import load_schedule


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse refusing an argument
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_transfer_prints_the_lr_of_each_target(capsys, tmp_path):
    code, out, err = _run(
        capsys,
        "plan", "--lr", "3e-4", "--from", "linear", "--steps", "10000",
        "--to", "wsd:decay=0.2,decay_shape=1-sqrt", "--to-steps", "40000",
        "-o", str(tmp_path / "wsd.json"),
    )  # fmt: skip
    assert code == 0, err
    wsd = WarmupStableDecay(40_000, decay=0.2, decay_shape="1-sqrt")
    lr = transfer_lr(3e-4, LinearDecay(10_000), wsd)
    line = next(x for x in out.splitlines() if x.startswith("wsd:"))
    assert f"{lr:.4g}" in line and "40,000" in line
    ratio = predict(3e-4, LinearDecay(10_000), [wsd]).candidates[0]
    assert f"{ratio.final / predict(3e-4, LinearDecay(10_000), [wsd]).source.final:.4f}" in line
    assert "constant (the bound's worst case" in out
    assert load_schedule(tmp_path / "wsd.json") == wsd
    assert f"train it with peak LR {lr:.4g}" in out


def test_transfer_ranks_several_targets_and_plots(capsys, tmp_path):
    code, out, err = _run(
        capsys,
        "plan", "--lr", "0.1", "--from", "linear", "--steps", "2000",
        "--to", "constant", "--to", "cosine", "--to", "linear@8000",
        "--plot", str(tmp_path / "plan.png"),
    )  # fmt: skip
    assert code == 0, err
    rows = [x.split()[0] for x in out.splitlines()[2:5]]
    assert rows == ["linear@8000", "cosine", "constant"]
    assert (tmp_path / "plan.png").stat().st_size > 10_000


def test_transfer_with_recorded_norms_and_losses(capsys, tmp_path):
    T = 500
    t = np.arange(T)
    norms = 1 + 4 * np.exp(-t / 50)
    log = tmp_path / "norms.csv"
    log.write_text(
        "step,l2,loss\n" + "".join(f"{i},{g},{1 / (1 + i)}\n" for i, g in enumerate(norms))
    )
    code, out, err = _run(
        capsys, "plan", "--lr", "0.05", "--from", "linear", "--steps", str(T),
        "--to", "cosine", "--norms", str(log), "--losses", str(log),
    )  # fmt: skip
    assert code == 0, err
    assert f"{transfer_lr(0.05, LinearDecay(T), Cosine(T), norms=norms):.4g}" in out
    assert re.search(r"fit: loss ~ \S+ \+ \S+ x bound", out)
    assert f"{log} ({T:,} steps)" in out


def test_a_warning_of_the_planner_is_printed_once(capsys, tmp_path):
    T = 500
    log = tmp_path / "rising.csv"  # losses that rise while the bound falls: no fit
    log.write_text("step,l2,loss\n" + "".join(f"{i},1.0,{1 + i / T}\n" for i in range(T)))
    code, _out, err = _run(
        capsys, "plan", "--lr", "0.05", "--from", "linear", "--steps", str(T),
        "--to", "cosine", "--losses", str(log),
    )  # fmt: skip
    assert code == 0, err
    lines = [x for x in err.splitlines() if "do not fall as its bound does" in x]
    assert len(lines) == 1 and lines[0].startswith("refinedlr: warning: the source's losses"), err


def test_extend_writes_a_continuation_that_resumes(capsys, tmp_path):
    out_file = tmp_path / "longer.json"
    code, out, err = _run(
        capsys, "plan", "--lr", "3e-4", "--from", "wsd:decay=0.2,decay_shape=1-sqrt",
        "--steps", "1000", "--at", "800", "--to-steps", "2000", "-o", str(out_file),
        "--plot", str(tmp_path / "ext.png"),
    )  # fmt: skip
    assert code == 0, err
    base = WarmupStableDecay(1000, decay=0.2, decay_shape="1-sqrt")
    want = extend(base, at_step=800, total_steps=2000)
    got = load_schedule(out_file)
    assert isinstance(got, Continuation) and got == want
    assert out.count("\n* ") == 1 and "chosen: " in out
    assert f"{3e-4 * want.level:.4g}" in out
    assert (tmp_path / "ext.png").stat().st_size > 10_000


def test_extend_family_choice(capsys, tmp_path):
    code, out, _ = _run(
        capsys, "plan", "--lr", "1", "--from", "linear", "--steps", "100", "--at", "100",
        "--to-steps", "300", "--family", "rescale", "-o", str(tmp_path / "x.json"),
    )  # fmt: skip
    assert code == 0
    rows = [
        x[2:].split()[0] for x in out.splitlines() if x[:2] in ("* ", "  ") and "family" not in x
    ]
    assert rows == ["rescale", "rescale"]  # linear and 1-sqrt cooldowns
    assert (
        json.loads((tmp_path / "x.json").read_text())["spec"]["provenance"]["family"] == "rescale"
    )


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--lr", "0", "--from", "linear", "--steps", "10", "--to", "cosine"], "positive finite"),
        (["--lr", "nan", "--from", "linear", "--steps", "10", "--to", "cosine"], "positive finite"),
        (["--lr", "inf", "--from", "linear", "--steps", "10", "--to", "cosine"], "positive finite"),
        (["--lr", "1", "--from", "linear", "--to", "cosine"], "needs its horizon"),
        (["--lr", "1", "--from", "linear", "--steps", "10"], "either --to"),
        (
            ["--lr", "1", "--from", "linear", "--steps", "10", "--to", "x", "--at", "5"],
            "either --to",
        ),
        (
            ["--lr", "1", "--from", "linear", "--steps", "10", "--at", "10", "--to-steps", "10"],
            "must come before the new horizon",
        ),
        (
            ["--lr", "1", "--from", "linear", "--steps", "10", "--at", "12", "--to-steps", "20"],
            "past the end",
        ),
        (["--lr", "1", "--from", "linear", "--steps", "10", "--at", "5"], "needs --to-steps"),
        (
            ["--lr", "1", "--from", "linear", "--steps", "10", "--at", "5", "--to-steps", "10" * 7],
            "MAX_STEPS",
        ),
        (["--lr", "1", "--from", "linear", "--steps", "10" * 7, "--to", "cosine"], "MAX_STEPS"),
        (["--lr", "1", "--from", "nosuch", "--steps", "10", "--to", "cosine"], "unknown schedule"),
        (["--lr", "1", "--from", "linear", "--steps", "10", "--to", "cosine:floor"], "KEY=VALUE"),
        (["--lr", "1", "--from", "linear", "--steps", "10", "--to", "cosine:floor=2"], "floor"),
        (["--lr", "1", "--from", "linear", "--steps", "10", "--to", "cosine@x"], "after @"),
        (
            [
                "--lr",
                "1",
                "--from",
                "linear",
                "--steps",
                "10",
                "--to",
                "a",
                "--to",
                "b",
                "-o",
                "x.json",
            ],
            "single --to",
        ),
        (
            ["--lr", "1", "--from", "linear", "--steps", "10", "--to", "cosine", "-o", "x.txt"],
            "unknown output type",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "plan", *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and re.search(match, err), err
    assert "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_zero_schedule_and_mismatched_record(capsys, tmp_path):
    zeros = tmp_path / "zeros.npy"
    np.save(zeros, np.zeros(10))
    code, _, err = _run(capsys, "plan", "--lr", "1", "--from", str(zeros), "--to", "cosine")
    assert code == 2 and "zero on every step" in err
    log = tmp_path / "n.csv"
    log.write_text("step,l2\n" + "".join(f"{i},1.0\n" for i in range(7)))
    code, _, err = _run(
        capsys, "plan", "--lr", "1", "--from", "linear", "--steps", "10", "--to", "cosine",
        "--norms", str(log),
    )  # fmt: skip
    assert code == 2 and f"{log}: 7 steps of norms; the plan needs 10" in err
    assert len(err.strip().splitlines()) == 1


def test_an_extreme_lr_scales_exactly(capsys):
    code, out, err = _run(
        capsys, "plan", "--lr", "1e300", "--from", "linear", "--steps", "1000", "--to", "cosine"
    )
    assert code == 0, err
    assert f"{transfer_lr(1e300, LinearDecay(1000), Cosine(1000)):.4g}" in out
    assert "inf" not in out and "nan" not in out
