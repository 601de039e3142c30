#!/usr/bin/env python3
"""Run the README's quick start against the refinedlr installed in this interpreter's environment.

Usage: VENV/bin/python .ci/readme_quickstart.py

In a temporary folder: the README's plain PyTorch loop (linear decay, recording gradient norms to
run1/norms.csv), then ``refinedlr refine run1/norms.csv -o refined.json`` with the environment's
own ``refinedlr`` command, then the loop again with the refined schedule. Also checks that
``refinedlr bench`` says in one line how to get the research suite when it is not installed.
Exit 1 with the failing step's output on any failure.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
FIRST = 'recorder = GradNormRecorder("run1/norms.csv", kinds=("l2", "l1"))'
SECOND = 'load_schedule("refined.json", total_steps=T)'


def block(text: str, marker: str) -> str:
    found = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if marker in b]
    if len(found) != 1:
        raise SystemExit(f"readme_quickstart: expected one README block containing {marker!r}")
    return str(found[0])


def step(label: str, cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if r.returncode not in ok:
        print(f"readme_quickstart: {label} failed (exit {r.returncode})", file=sys.stderr)
        print(r.stdout[-3000:] + r.stderr[-3000:], file=sys.stderr)
        raise SystemExit(1)
    print(f"readme_quickstart: {label}: ok")
    return r.stderr


def main() -> int:
    text = README.read_text(encoding="utf-8")
    first, second = block(text, FIRST), block(text, SECOND)
    bindir = Path(sys.executable).parent
    refinedlr = str(bindir / "refinedlr")
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "run1.py").write_text(first, encoding="utf-8")
        (cwd / "run2.py").write_text(first + "\n" + second, encoding="utf-8")
        step("run 1 (linear decay, recording norms)", [sys.executable, "run1.py"], cwd)
        step(
            "refinedlr refine",
            [refinedlr, "refine", "run1/norms.csv", "--norm", "l2", "-o", "refined.json"],
            cwd,
        )
        step("run 2 (the refined schedule)", [sys.executable, "run2.py"], cwd)
        err = step("refinedlr bench without the research suite", [refinedlr, "bench"], cwd, (3,))
        if len(err.strip().splitlines()) != 1 or "research" not in err:
            print(f"readme_quickstart: expected one line naming the research suite: {err!r}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
