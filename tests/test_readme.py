"""The README's code: the quick-start loop and the torchrun example run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def block_containing(text: str) -> str:
    found = [b for b in python_blocks() if text in b]
    assert len(found) == 1, f"expected one README block containing {text!r}"
    return found[0]


def run_python(code: str, cwd: Path, *cmd_prefix: str) -> subprocess.CompletedProcess[str]:
    script = cwd / "snippet.py"
    script.write_text(code)
    cmd = [*cmd_prefix, str(script)] if cmd_prefix else [sys.executable, str(script)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_quick_start_loop_then_refine_then_second_run(tmp_path: Path) -> None:
    first = block_containing('recorder = GradNormRecorder("run1/norms.csv", kinds=("l2", "l1"))')
    second = block_containing('load_schedule("refined.json", total_steps=T)')
    r = run_python(first, tmp_path)
    assert r.returncode == 0, r.stderr
    cli = [sys.executable, "-m", "refinedlr.cli"]
    r2 = subprocess.run(
        [*cli, "refine", "run1/norms.csv", "--norm", "l2", "-o", "refined.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r2.returncode == 0, r2.stderr
    r3 = run_python(first + "\n" + second + "\nprint(sched.get_last_lr())\n", tmp_path)
    assert r3.returncode == 0, r3.stderr


@pytest.mark.multiprocess
def test_torchrun_ddp_example(tmp_path: Path) -> None:
    code = block_containing("torchrun --standalone --nproc-per-node 2 train.py")
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this interpreter")
    env_code = code.replace("range(1000)", "range(60)").replace(
        "total_steps=1000", "total_steps=60"
    )
    (tmp_path / "train.py").write_text(env_code)
    r = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "train.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    from refinedlr.records import read_record

    rec = read_record(tmp_path / "run1" / "norms.csv")
    assert rec.steps.tolist() == list(range(60))
    assert set(rec.kinds) == {"l1", "l2"}
