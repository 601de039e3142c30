"""Command-line options for reading logs (``--max-steps``, ``--step-offset``), the norm-kind
warning, atomic outputs, and commands whose optional dependency is missing (issue 11 §2, §4, §6)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from refinedlr import limits
from refinedlr.cli import main
from refinedlr.schedule_io import load_schedule

GOOD = 1 + 9 * np.exp(-np.arange(400) / 40)


def write_log(path: Path, values: np.ndarray, first_step: int = 0) -> Path:
    with open(path, "w") as f:
        f.write("step,l2\n")
        for i, v in enumerate(values):
            f.write(f"{first_step + i},{float(v)!r}\n")
    return path


def trainer_state(path: Path, steps: int, logging_steps: int = 1) -> Path:
    history = [
        {"step": s, "grad_norm": float(GOOD[(s - 1) % 400]), "loss": 1.0, "learning_rate": 1e-4}
        for s in range(logging_steps, steps + 1, logging_steps)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"global_step": steps, "log_history": history}))
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


# -- --max-steps -----------------------------------------------------------------------------------


def test_max_steps_lowers_and_raises_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "n.csv", GOOD)
    status, _, err = cli(capsys, "show", str(log), "--max-steps", "399")
    assert status == 2 and "limit of 399" in err and str(log) in err
    status, out, _ = cli(capsys, "show", str(log), "--max-steps", "400")
    assert status == 0 and "400 rows" in out
    assert limits.MAX_STEPS == 10_000_000  # restored after the command
    sparse = tmp_path / "sparse.csv"
    sparse.write_text("step,l2\n0,4\n5000000,3\n10000000,2\n15000000,1\n")
    status, _, err = cli(capsys, "show", str(sparse))
    assert status == 2 and "limit of 10,000,000" in err and "--max-steps" in err
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"spec": {"name": "linear", "total_steps": 500}}))
    status, _, err = cli(capsys, "show", str(spec), "--max-steps", "100")
    assert status == 2 and str(spec) in err and "100" in err
    assert cli(capsys, "show", str(spec))[0] == 0
    status, _, err = cli(capsys, "refine", str(log), "--steps", "1000", "--max-steps", "999", "-o",
                         str(tmp_path / "o.json"))  # fmt: skip
    assert status == 2 and "--steps 1,000" in err and not (tmp_path / "o.json").exists()
    status, _, err = cli(capsys, "show", str(log), "--max-steps", "0")
    assert status == 2 and "--max-steps" in err and len(err.strip().splitlines()) == 1


def test_huge_step_numbers_are_refused_fast(tmp_path: Path) -> None:
    log = tmp_path / "huge.csv"
    log.write_text("step,l2\n0,1\n1,2\n2,3\n1000000000000,4\n")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "refinedlr.cli", "refine", str(log), "-o",
                        str(tmp_path / "o.json")], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "line 5" in r.stderr
    assert time.perf_counter() - t0 < 30  # was: a MemoryError after ~18 s of allocation


# -- --step-offset and 1-based TensorBoard logs ----------------------------------------------------


def test_step_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write_log(tmp_path / "one_based.csv", GOOD, first_step=1)
    out = tmp_path / "r.npy"
    assert cli(capsys, "refine", str(log), "-o", str(out))[0] == 0
    assert np.load(out).shape == (401,)  # as written: steps 1..400
    status, stdout, _ = cli(capsys, "refine", str(log), "--step-offset", "-1", "-o", str(out))
    assert status == 0 and "shifted by -1" in stdout
    assert np.load(out).shape == (400,)


def test_tensorboard_and_trainer_state_give_the_same_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    state = trainer_state(tmp_path / "ckpt" / "trainer_state.json", 200)
    run = tmp_path / "runs"
    run.mkdir()
    w = EventFileWriter(str(run))
    for entry in json.loads(state.read_text())["log_history"]:  # HF's callback: step = s
        v = summary_pb2.Summary.Value(tag="train/grad_norm", simple_value=entry["grad_norm"])
        w.add_event(event_pb2.Event(wall_time=1.0, step=entry["step"], summary=summary_pb2.Summary(value=[v])))  # fmt: skip
    w.close()
    a, b, c = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "c.npy"
    assert cli(capsys, "refine", str(state), "-o", str(a))[0] == 0
    status, stdout, _ = cli(capsys, "refine", str(run), "-o", str(b))
    assert status == 0 and "1-based" in stdout
    assert np.load(a).shape == np.load(b).shape == (200,)
    np.testing.assert_allclose(np.load(a), np.load(b), rtol=1e-6)
    assert cli(capsys, "refine", str(run), "--step-offset", "0", "-o", str(c))[0] == 0
    assert np.load(c).shape == (201,)


# -- the norm kind a log holds ---------------------------------------------------------------------


def test_refine_l1_of_an_l2_log_warns_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = trainer_state(tmp_path / "trainer_state.json", 400)
    out = tmp_path / "r.json"
    status, stdout, err = cli(capsys, "refine", str(state), "--norm", "l1", "-o", str(out))
    assert status == 0
    kind_lines = [line for line in err.splitlines() if "not l1" in line]
    assert len(kind_lines) == 1, err
    assert kind_lines[0].startswith("refinedlr: warning: ")
    assert "holds l2 norms" in kind_lines[0] and "record_grad_norms(trainer" in kind_lines[0]
    assert "l2 norm of the whole gradient" in stdout  # the record says what it holds
    provenance = json.loads(out.read_text())["spec"]["provenance"]
    assert provenance["kind"] == "l2"
    status, _, err = cli(capsys, "refine", str(state), "-o", str(out))  # l2: what it holds
    assert status == 0 and "not l1" not in err


# -- outputs ---------------------------------------------------------------------------------------


def test_a_refused_command_leaves_an_existing_output_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    out.write_text("the previous schedule\n")
    bad = write_log(tmp_path / "bad.csv", np.full(50, np.nan))
    assert cli(capsys, "refine", str(bad), "-o", str(out))[0] == 2
    assert out.read_text() == "the previous schedule\n"
    good = write_log(tmp_path / "good.csv", GOOD)
    assert cli(capsys, "refine", str(good), "-o", str(out))[0] == 0
    assert load_schedule(out).total_steps == 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv", "r.json"]


def test_figures_are_written_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    log = write_log(tmp_path / "n.csv", GOOD)
    for fmt in ("png", "svg", "pdf"):
        fig = tmp_path / f"f.{fmt}"
        assert cli(capsys, "plot", str(log), "-o", str(fig), "--baselines", "linear")[0] == 0
        assert fig.stat().st_size > 1000
    assert cli(capsys, "refine", str(log), "-o", str(tmp_path / "r.json"), "--plot",
               str(tmp_path / "r.png"))[0] == 0  # fmt: skip
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files


# -- missing extras (issue 11 §6) ------------------------------------------------------------------

#: Makes the named top-level modules unimportable, then runs the command line.
_BLOCKED_RUN = """
import sys
blocked = set(sys.argv[1].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Block())
from refinedlr.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_without(modules: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, modules, *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "blocked,argv,extra",
    [
        ("matplotlib", ("plot", "{log}", "-o", "{dir}/f.png"), "refinedlr[plot]"),
        ("matplotlib", ("refine", "{log}", "-o", "{dir}/r.json", "--plot", "{dir}/f.png"), "refinedlr[plot]"),
        ("torch", ("demo", "--quick", "--out", "{dir}/demo"), "refinedlr["),
        ("sklearn", ("demo", "--quick", "--out", "{dir}/demo"), "refinedlr["),
        ("tensorboard", ("refine", "{dir}/events.out.tfevents.1.host", "-o", "{dir}/r.json"), "refinedlr[tensorboard]"),
    ],
)  # fmt: skip
def test_missing_extra_is_named_in_one_line(
    tmp_path: Path, blocked: str, argv: tuple[str, ...], extra: str
) -> None:
    log = write_log(tmp_path / "n.csv", GOOD)
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"")
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run_without(blocked, *(a.format(log=log, dir=tmp_path) for a in argv))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 3, r.stderr
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("refinedlr: error: ") and f"pip install '{extra}" in lines[0]
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    if argv[0] == "demo":
        assert ("PyTorch" if blocked == "torch" else "scikit-learn") in lines[0].split("(")[1]


def test_the_core_commands_need_no_extra(tmp_path: Path) -> None:
    log = write_log(tmp_path / "n.csv", GOOD)
    r = run_without("matplotlib,torch,tensorboard,sklearn,tqdm", "refine", str(log), "-o",
                    str(tmp_path / "r.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_without("matplotlib,torch,tensorboard,sklearn,tqdm", "show", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
