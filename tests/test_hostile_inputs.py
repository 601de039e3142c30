"""A corpus of hostile inputs to the command line (issue 11 §2): each one exits with status 2 and
exactly one line on stderr naming the file (or the option) and the problem, no traceback, no raw
numpy warning, and nothing written.

Most cases run ``main([...])`` in-process (fast); a few run the installed command in a real
subprocess, with a time limit (a named pipe must be refused, not waited on).
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import pickle
import re
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refinedlr.cli import main

# -- building blocks -------------------------------------------------------------------------------


def norms_csv(values: list[float] | np.ndarray, name: str = "norms.csv") -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / name
        with open(p, "w") as f:
            f.write("step,l2\n")
            for i, v in enumerate(values):
                f.write(f"{i},{float(v)!r}\n")
        return p

    return make


def text(content: str | bytes, name: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        return p

    return make


def npy(array: Any, name: str = "norms.npy", **kw: Any) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / name
        np.save(p, array, **kw)
        return p

    return make


def lying_npy(shape: tuple[int, ...], name: str = "norms.npy") -> Callable[[Path], Path]:
    """A .npy whose header claims ``shape`` but holds three values."""

    def make(d: Path) -> Path:
        p = d / name
        header = np.lib.format.header_data_from_array_1_0(np.zeros(3))
        header["shape"] = shape
        with open(p, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(np.zeros(3).tobytes())
        return p

    return make


def trainer_state(entries: list[dict[str, Any]] | Any) -> Callable[[Path], Path]:
    return text(json.dumps({"global_step": 50, "log_history": entries}), "trainer_state.json")


def spec(doc: Any, name: str = "schedule.json") -> Callable[[Path], Path]:
    return text(json.dumps(doc), name)


def fifo(name: str = "norms.csv") -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / name
        os.mkfifo(p)
        return p

    return make


T = np.arange(400)
GOOD = (1 + 9 * np.exp(-T / 40)).tolist()


def with_value(i: int, v: float) -> list[float]:
    out = list(GOOD)
    out[i] = v
    return out


@dataclass
class Case:
    """``make`` writes the input into a directory and returns its path; ``argv`` gets the input
    path as ``{in}`` and the directory as ``{dir}``; ``names`` must appear in the error line
    (default: the input path)."""

    id: str
    make: Callable[[Path], Path]
    argv: tuple[str, ...] = ("refine", "{in}", "-o", "{dir}/out.json")
    names: str = "{in}"
    needs: str | None = None  # a module the case needs (skips without it)


good = norms_csv(GOOD)

CASES: list[Case] = [
    # -- files that are not logs at all
    Case("named-pipe", fifo()),
    Case("named-pipe-show", fifo(), ("show", "{in}")),
    Case("named-pipe-as-schedule", fifo("s.json"), ("show", "{in}", "--as", "schedule")),
    Case("directory-without-logs", lambda d: d, ("refine", "{in}", "-o", "{dir}/../out.json")),
    Case("empty-file", text("", "norms.csv")),
    Case("blank-lines", text("\n \n\t\n", "norms.csv")),
    Case("header-only", text("step,l2\n", "norms.csv")),
    Case("binary-garbage", text(bytes(range(256)) * 4, "norms.csv")),
    Case("not-utf8", text(b"step,l2\n0,1\n1,\xff\xfe\n", "norms.csv")),
    Case("unknown-binary-type", text(b"PAR1\x00\x01\x02", "norms.parquet")),
    Case("corrupt-gzip", text(b"\x1f\x8b\x08\x00garbage", "norms.csv.gz")),
    Case("cut-gzip", lambda d: text(gzip.compress(b"step,l2\n" * 50)[:30], "n.csv.gz")(d)),
    Case("corrupt-bzip2", text(b"BZh91AY&SYgarbage", "norms.csv.bz2")),
    Case("zstd", text(b"\x28\xb5\x2f\xfd" + b"\x00" * 16, "norms.csv.zst")),
    Case("gzip-of-garbage", lambda d: text(gzip.compress(bytes(range(256))), "n.csv.gz")(d)),
    Case("bzip2-empty-log", lambda d: text(bz2.compress(b""), "n.csv.bz2")(d)),
    # -- .npy files
    Case("npy-strings", npy(np.array(["0.5", "0.25", "0.1", "0.05"]))),
    Case("npy-strings-show", npy(np.array(["0.5", "0.25", "0.1", "0.05"])), ("show", "{in}")),
    Case("npy-object", npy(np.array([1.0, None], dtype=object), allow_pickle=True)),
    Case("npy-bool", npy(np.array([True, False, True, True]))),
    Case("npy-complex", npy(np.array([1 + 1j, 2j, 3.0, 4.0]))),
    Case("npy-3d", npy(np.ones((4, 2, 2)))),
    Case("npy-scalar", npy(np.array(3.0))),
    Case("npy-empty", npy(np.zeros(0))),
    Case("npy-lying-header", lying_npy((10**12,))),
    Case("npy-lying-header-show", lying_npy((10**12,)), ("show", "{in}")),
    Case("npy-lying-schedule", lying_npy((10**12,), "s.npy"), ("show", "{in}", "--as", "schedule")),
    Case("pickle-as-npy", text(pickle.dumps([1.0, 2.0, 3.0, 4.0]), "norms.npy")),
    Case("npz", lambda d: (np.savez(d / "n.npz", a=np.ones(9)), d / "n.npz")[1]),
    Case("npy-truncated", lambda d: text((npy(np.arange(1.0, 500.0))(d)).read_bytes()[:300], "t.npy")(d)),
    # -- step numbers far beyond any run
    Case("csv-steps-1e9", text("step,l2\n0,1\n1,2\n2,3\n1000000000,4\n", "norms.csv")),
    Case("csv-steps-1e12", text("step,l2\n0,1\n1,2\n2,3\n1000000000000,4\n", "norms.csv")),
    Case("csv-steps-1e12-show", text("step,l2\n0,1\n1,2\n2,3\n1000000000000,4\n", "n.csv"), ("show", "{in}")),
    Case("csv-steps-1e12-plot", text("step,l2\n0,1\n1,2\n2,3\n1000000000000,4\n", "n.csv"),
         ("plot", "{in}", "-o", "{dir}/f.png"), needs="matplotlib"),
    Case("trainer-state-steps-1e9", trainer_state([{"step": s, "grad_norm": 1.0} for s in (1, 2, 3, 10**9)])),
    Case("trainer-state-steps-1e12", trainer_state([{"step": s, "grad_norm": 1.0} for s in (1, 2, 3, 10**12)])),
    Case("steps-over-a-lowered-limit", good, ("refine", "{in}", "-o", "{dir}/o.json", "--max-steps", "100")),
    Case("refine-steps-1e9", good, ("refine", "{in}", "--steps", "1000000000", "-o", "{dir}/o.json"), "--steps"),
    Case("spec-total-steps-1e10", spec({"refinedlr_schedule": 1, "spec": {"name": "linear", "total_steps": 10**10}}),
         ("show", "{in}")),
    Case("spec-total-steps-1e10-plot", spec({"spec": {"name": "cosine", "total_steps": 10**10}}),
         ("plot", "{in}", "-o", "{dir}/f.png", "--as", "schedule"), needs="matplotlib"),
    # -- the eight refusals that must name the file
    Case("all-nan", norms_csv([float("nan")] * 50)),
    Case("negative", norms_csv([-1.0] * 50)),
    Case("zero", norms_csv([0.0] * 50)),
    Case("one-row", norms_csv([1.0])),
    Case("three-rows", norms_csv([3.0, 2.0, 1.0])),
    Case("all-1e308", norms_csv([1e308] * 50)),
    Case("all-1e-300", norms_csv([1e-300] * 50)),
    Case("trainer-state-all-null", trainer_state([{"step": s, "grad_norm": None} for s in range(1, 51)])),
    Case("all-nan-show", norms_csv([float("nan")] * 50), ("show", "{in}")),
    Case("three-rows-show", norms_csv([3.0, 2.0, 1.0]), ("show", "{in}")),
    Case("all-1e308-show", norms_csv([1e308] * 50), ("show", "{in}")),
    Case("zero-plot", norms_csv([0.0] * 50), ("plot", "{in}", "-o", "{dir}/f.png"), needs="matplotlib"),
    # -- one bad value in a normal record
    Case("one-1e308", norms_csv(with_value(17, 1e308))),
    Case("one-1e308-show", norms_csv(with_value(17, 1e308)), ("show", "{in}")),
    Case("one-1e-300-show", norms_csv(with_value(17, 1e-300)), ("show", "{in}")),
    Case("one-negative", norms_csv(with_value(17, -1.0))),
    Case("one-zero", norms_csv(with_value(17, 0.0))),
    # -- malformed logs
    Case("steps-go-back", text("step,l2\n0,1\n1,2\n5,3\n3,1\n", "norms.csv")),
    Case("fractional-step", text("step,l2\n0,1\n1.5,2\n", "norms.csv")),
    Case("negative-step", text("step,l2\n0,1\n-1,2\n", "norms.csv")),
    Case("duplicate-column", text("step,l2,l2\n0,1,2\n", "norms.csv")),
    Case("ragged-rows", text("step,l2,l1\n0,1,2\n1,2\n", "norms.csv")),
    Case("decimal-comma", text("step;grad_norm\n0;1.5\n1;2,5\n", "norms.csv")),
    Case("text-in-column", text("step,l2\n0,1\n1,abc\n", "norms.csv")),
    Case("several-columns", text("Step,loss,lr\n0,2.0,0.1\n1,1.5,0.1\n", "norms.csv")),
    Case("missing-column", good, ("refine", "{in}", "-o", "{dir}/o.json", "--column", "nope")),
    Case("jsonl-cut", text('{"step": 0, "grad_norm": 1}\n{"step": 1, "grad_no', "log.jsonl")),
    Case("jsonl-not-object", text('{"step": 0, "grad_norm": 1}\n[1, 2]\n', "log.jsonl")),
    Case("jsonl-string-value", text('{"step": 0, "grad_norm": "big"}\n', "log.jsonl")),
    Case("json-not-a-log", text('{\n "spec": 3\n}\n', "notes.json"), ("refine", "{in}", "-o", "{dir}/o.json")),
    Case("trainer-state-truncated", text('{"log_history": [{"step": 1, "grad_norm": 2.0}, {"st', "trainer_state.json")),
    Case("trainer-state-no-history", text('{"global_step": 3}', "trainer_state.json")),
    Case("trainer-state-history-not-list", trainer_state({"a": 1})),
    Case("trainer-state-string-norm", trainer_state([{"step": 1, "grad_norm": "large"}])),
    Case("wrong-format-flag", good, ("refine", "{in}", "--format", "npy", "-o", "{dir}/o.json")),
    Case("tensorboard-garbage", text(b"\x00" * 7 + b"not an event" * 5, "events.out.tfevents.1.host"),
         needs="tensorboard"),
    Case("step-offset-negative", good, ("refine", "{in}", "--step-offset", "-5", "-o", "{dir}/o.json")),
    Case("no-such-file", lambda d: d / "missing.csv"),
    Case("verified-bad-check", good,
         ("refine", "{in}", "--method", "verified", "--check", "{dir}/missing.csv", "-o", "{dir}/o.json"),
         "{dir}/missing.csv"),
    # -- outputs
    Case("output-under-a-file", good, ("refine", "{in}", "-o", "{in}/out.json"), "{in}"),
    Case("output-is-a-directory", good, ("refine", "{in}", "-o", "{dir}"), "{dir}"),
    Case("output-is-a-directory-json", lambda d: (good(d), (d / "o.json").mkdir())[0],
         ("refine", "{in}", "-o", "{dir}/o.json"), "{dir}/o.json"),
    Case("output-is-the-input", lambda d: text("step,l2\n" + "".join(f"{i},{v}\n" for i, v in enumerate(GOOD)), "n.csv")(d),
         ("refine", "{in}", "-o", "{in}"), "{in}"),
    Case("output-is-the-input-npy", npy(np.asarray(GOOD), "n.npy"), ("refine", "{in}", "-o", "{in}"), "{in}"),
    Case("output-unknown-type", good, ("refine", "{in}", "-o", "{dir}/out.txt"), "{dir}/out.txt"),
    Case("output-device", good, ("refine", "{in}", "-o", "/dev/null"), "/dev/null"),
    Case("plot-output-under-a-file", good, ("refine", "{in}", "-o", "{dir}/o.json", "--plot", "{in}/f.png"),
         "{in}", needs="matplotlib"),
    Case("plot-output-is-the-schedule", good, ("refine", "{in}", "-o", "{dir}/o.json", "--plot", "{dir}/o.json"),
         "{dir}/o.json"),
    Case("plot-command-output-dir", good, ("plot", "{in}", "-o", "{dir}"), "{dir}", needs="matplotlib"),
    Case("plot-command-output-is-input", npy(np.asarray(GOOD), "n.png"), ("plot", "{in}", "-o", "{in}", "--format", "npy"),
         "{in}", needs="matplotlib"),
    Case("plot-command-output-type", good, ("plot", "{in}", "-o", "{dir}/f.txt"), "{dir}/f.txt"),
    # -- schedule files
    Case("spec-unknown-name", spec({"spec": {"name": "nope", "total_steps": 100}}), ("show", "{in}")),
    Case("spec-truncated", text('{"refinedlr_schedule": 1, "spec": {"name": "lin', "schedule.json"),
         ("show", "{in}", "--as", "schedule")),
    Case("schedule-npy-nan", npy(np.array([1.0, np.nan, 0.5, 0.0]), "s.npy"), ("show", "{in}", "--as", "schedule")),
    Case("schedule-csv-garbage", text("step,multiplier\n0,1\n1,x\n", "s.csv"), ("show", "{in}", "--as", "schedule")),
    Case("show-norms-hostile", spec({"spec": {"name": "linear", "total_steps": 400}}),
         ("show", "{in}", "--norms", "{dir}/bad.csv"), "{dir}/bad.csv"),
    # -- verify
    Case("verify-run2-missing", good, ("verify", "{in}", "{dir}/missing.csv", "-o", "{dir}/o.json"), "{dir}/missing.csv"),
    Case("verify-run1-all-nan", norms_csv([float("nan")] * 50), ("verify", "{in}", "{in}", "-o", "{dir}/o.json")),
    Case("verify-output-is-input", good, ("verify", "{in}", "{in}", "-o", "{in}"), "{in}"),
    Case("verify-huge-steps", text("step,l2\n0,1\n1,2\n2,3\n1000000000000,4\n", "n.csv"),
         ("verify", "{in}", "{in}", "-o", "{dir}/o.json")),
]  # fmt: skip


def _listing(d: Path) -> dict[str, int]:
    return {
        str(p.relative_to(d)): (p.lstat().st_size if not p.is_dir() else -1) for p in d.rglob("*")
    }


def _prepare(case: Case, tmp_path: Path) -> tuple[list[str], str]:
    if case.needs:
        pytest.importorskip(case.needs)
    if "fifo" in case.make.__qualname__ and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    work = tmp_path / "work"
    work.mkdir()
    if case.id == "show-norms-hostile":
        norms_csv([1e308] * 400, "bad.csv")(work)
    inp = case.make(work)
    subs = {"{in}": str(inp), "{dir}": str(work)}

    def fill(s: str) -> str:
        for k, v in subs.items():
            s = s.replace(k, v)
        return s

    return [fill(a) for a in case.argv], fill(case.names)


def run_main(argv: list[str], seconds: float = 60) -> int:
    """``main(argv)`` in a daemon thread: an input that makes it block fails the test instead of
    hanging the suite."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["status"] = main(argv)
        except SystemExit as exc:  # argparse
            box["status"] = int(exc.code or 0)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"refinedlr {' '.join(argv)} is still running: it blocks"
    if "error" in box:
        raise box["error"]
    return int(box["status"])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_in_one_line(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, name = _prepare(case, tmp_path)
    work = tmp_path / "work"
    before = _listing(tmp_path)
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        status = run_main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert status == 2, f"status {status}; stderr: {err}"
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    assert lines[0].startswith("refinedlr"), lines[0]
    assert "Traceback" not in err and not re.search(r"\bnan\b", out), out
    assert not [w for w in raw if issubclass(w.category, RuntimeWarning)], [
        str(w.message) for w in raw
    ]
    assert _listing(tmp_path) == before, "something was written"
    assert work.exists()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


# -- real subprocesses -----------------------------------------------------------------------------


def run_cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "refinedlr.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


SUBPROCESS_CASES = ["named-pipe", "npy-lying-header", "one-1e308-show", "output-under-a-file",
                    "trainer-state-steps-1e12", "refine-steps-1e9", "spec-total-steps-1e10"]  # fmt: skip


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_hostile_input_in_a_real_process(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    argv, name = _prepare(case, tmp_path)
    before = _listing(tmp_path)
    r = run_cli(*argv, timeout=60)  # a hang fails here
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and name in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "RuntimeWarning" not in r.stderr
    assert _listing(tmp_path) == before


def test_hostile_corpus_inputs_that_are_now_accepted(tmp_path: Path) -> None:
    """Inputs once refused or mishandled that are read correctly now."""
    p = tmp_path / "norms.csv.gz"
    p.write_bytes(
        gzip.compress(("step,l2\n" + "".join(f"{i},{v}\n" for i, v in enumerate(GOOD))).encode())
    )
    r = run_cli("show", str(p))
    assert r.returncode == 0, r.stderr
    assert "400 rows" in r.stdout and "nan" not in r.stdout
