"""The README's code: the quick start (run 1, refine, run 2) runs as written; its links resolve.

The torchrun example moved to the docs (docs/how-to/torchrun.md, run by tests/docs).
"""

from __future__ import annotations

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


def test_readme_links_to_files_that_exist() -> None:
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into the docs"
    missing = [t for t in local if not (README.parent / t).exists()]
    assert not missing, missing
