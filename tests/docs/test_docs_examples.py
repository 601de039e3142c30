"""Every code block of the documentation pages runs as written (see ``_docs_snippets.py`` for the rules),
or is marked not runnable with a reason.

Each page runs in its own temporary folder and Python namespace, its blocks in order. Inputs a
guide assumes the reader already has (a Weights & Biases export, a TensorBoard run, ...) are made
by ``PAGE_INPUTS`` below before the page runs.
"""

from __future__ import annotations

import doctest
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _docs_snippets import DATA, DOCS, RUN, Block, _console_steps, blocks, pages, run_block

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

OPTIONAL = ("torch", "matplotlib", "tensorboard", "transformers", "lightning", "jax", "optax")


def _needs(page_blocks: list[Block]) -> set[str]:
    code = "\n".join(b.code for b in page_blocks if b.mark is None and b.lang in RUN)
    needs = {m for m in OPTIONAL if re.search(rf"^\s*(import|from)\s+{m}\b", code, re.M)}
    if re.search(r"--plot\b|^\s*refinedlr plot\b", code, re.M):
        needs.add("matplotlib")
    if "refinedlr demo" in code:
        needs |= {"torch", "matplotlib", "sklearn"}
    return needs


# -- inputs the guides assume ------------------------------------------------------------------


def _norms(T: int = 300) -> np.ndarray:
    t = np.arange(T)
    return 2.0 + 6.0 * np.exp(-t / 30.0)


def _existing_logs(folder: Path) -> None:
    """The logs of "Refining logs you already have": one of each format, 300 steps."""
    n = _norms()
    T = n.size
    # a Weights & Biases chart export (run "glowing-sun-12", metric train/grad_norm)
    lines = ['"Step","glowing-sun-12 - train/grad_norm","glowing-sun-12 - train/grad_norm__MIN",'
             '"glowing-sun-12 - train/grad_norm__MAX"']  # fmt: skip
    lines += [f"{t},{v},{v},{v}" for t, v in enumerate(n)]
    (folder / "wandb_export.csv").write_text("\n".join(lines) + "\n")
    # a Hugging Face trainer_state.json, logging every 10 steps (HF steps are 1-based)
    history: list[dict[str, Any]] = [
        {"step": s, "loss": 1.0, "grad_norm": float(n[s - 1]), "learning_rate": 1e-3}
        for s in range(10, T + 1, 10)
    ]
    history.append({"step": T, "eval_loss": 0.9})
    (folder / "output").mkdir()
    state = {"global_step": T, "max_steps": T, "logging_steps": 10, "log_history": history}
    (folder / "output" / "trainer_state.json").write_text(json.dumps(state))
    # JSON lines, as many loggers write them
    with open(folder / "metrics.jsonl", "w") as f:
        for t, v in enumerate(n):
            f.write(json.dumps({"step": t, "loss": 1.0, "grad_norm": float(v)}) + "\n")
    # a numpy array, one value per step
    np.save(folder / "norms.npy", n)
    # any CSV with a step column
    with open(folder / "log.csv", "w") as f:
        f.write("global_step,loss,grad_norm\n")
        for t, v in enumerate(n):
            f.write(f"{t},1.0,{v}\n")
    # a TensorBoard run (the reader needs the tensorboard extra)
    if importlib.util.find_spec("tensorboard") is not None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        writer = EventFileWriter(str(folder / "runs" / "exp1"))
        for t, v in enumerate(n):
            summary = summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag="train/grad_norm", simple_value=float(v))]
            )
            writer.add_event(event_pb2.Event(step=t, summary=summary))
        writer.close()


def _two_runs(folder: Path) -> None:
    """Records of a linear-decay run and a refined run, for pages that verify."""
    from refinedlr.records import RecordWriter

    n = _norms()
    for name, values in (("run1", n), ("run2", n * 1.02)):
        (folder / name).mkdir()
        with RecordWriter(folder / name / "norms.csv", kinds=("l2",)) as w:
            w.write(np.arange(values.size), values[:, None])


def _troubleshooting(folder: Path) -> None:
    """The logs above, and a record whose norms fall late (the refinement-risk warning)."""
    _existing_logs(folder)
    from refinedlr.records import RecordWriter

    falling = np.r_[np.ones(270), np.full(30, 0.5)]
    with RecordWriter(folder / "falling.csv", kinds=("l2",)) as w:
        w.write(np.arange(falling.size), falling[:, None])


PAGE_INPUTS: dict[str, Callable[[Path], None]] = {
    "how-to/existing-logs.md": _existing_logs,
    "troubleshooting.md": _troubleshooting,
    "concepts/refine-then-verify.md": _two_runs,
    "concepts/bound.md": _two_runs,
    "how-to/tau-and-norm.md": _two_runs,
}


# -- the tests -----------------------------------------------------------------------------------


def test_every_block_runs_or_says_why_not() -> None:
    problems = []
    for page in pages():
        for b in blocks(page):
            if b.lang not in RUN | DATA:
                problems.append(f"{b.where}: unknown block language {b.lang!r}")
            if b.lang in DATA and b.mark:
                problems.append(f"{b.where}: a {b.lang} block is not code; drop the mark")
            if b.mark == "not run" and len(b.arg) < 10:
                problems.append(f"{b.where}: say why the block is not run")
            if b.mark == "run" and not re.fullmatch(r"torchrun \d+", b.arg):
                problems.append(f"{b.where}: unknown run mark {b.arg!r}")
    assert not problems, "\n".join(problems)


# The tutorial runs as its reader runs it (test_tutorial_runs_as_a_reader_runs_it), not here.
TUTORIAL = "getting-started/first-schedule.md"


def _runnable_pages() -> list[str]:
    return [
        p
        for p in pages()
        if p != TUTORIAL and any(b.lang in RUN and b.mark is None for b in blocks(p))
    ]


@pytest.mark.parametrize("page", _runnable_pages())
def test_page_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page_blocks = blocks(page)
    for module in sorted(_needs(page_blocks)):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{page} needs {module} (its extra is not installed)")
    monkeypatch.chdir(tmp_path)
    if page in PAGE_INPUTS:
        PAGE_INPUTS[page](tmp_path)
    threads = None
    if "torch" in sys.modules or "torch" in _needs(page_blocks):
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny models on a shared machine
    ns: dict[str, Any] = {"__name__": "__docs__"}
    try:
        for b in page_blocks:
            if b.lang in RUN and b.mark is None:
                run_block(b, ns)
    finally:
        if threads is not None:
            torch.set_num_threads(threads)


def test_tutorial_runs_as_a_reader_runs_it(tmp_path: Path) -> None:
    """The tutorial, done as it says: its Python blocks pasted in order into one script, run with
    ``python first_schedule.py`` in an empty folder; then its terminal blocks (``$ ...``), typed
    in the same folder, print what the page shows."""
    for module in ("torch", "matplotlib"):
        pytest.importorskip(module, reason=f"the tutorial needs {module} (its extra)")
    page_blocks = [b for b in blocks(TUTORIAL) if b.mark is None]
    langs = {b.lang for b in page_blocks}
    assert langs == {"python", "console"}, (
        f"{TUTORIAL}: the page promises Python blocks that make one script and optional $ "
        f"blocks for a terminal; it has {sorted(langs)}"
    )
    script = "\n\n".join(b.code for b in page_blocks if b.lang == "python")
    (tmp_path / "first_schedule.py").write_text(script, encoding="utf-8")
    # a terminal: `refinedlr` on the PATH (the environment's scripts), output in the order printed
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",  # tiny models on a shared machine
    }
    r = subprocess.run(
        [sys.executable, "first_schedule.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, f"python first_schedule.py failed:\n{r.stdout}\n{r.stderr[-4000:]}"
    for line in ("linear decay: best LR", "refined schedule over 400 steps", "refined: best LR"):
        assert line in r.stdout, f"the script did not print {line!r}:\n{r.stdout}"
    for made in ("run1/norms.csv", "run2/norms.csv", "refined.json", "refined.png"):
        assert (tmp_path / made).is_file(), f"the script did not write {made}"
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for block in (b for b in page_blocks if b.lang == "console"):
        for command, expected in _console_steps(block.code):
            argv = shlex.split(command)
            assert argv[0] == "refinedlr", f"{block.where}: not a refinedlr command: {command}"
            out = subprocess.run(
                argv,
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=300,
            )
            assert out.returncode == 0, f"{block.where}: `{command}` exited {out.returncode}"
            assert checker.check_output(expected, out.stdout, flags), (
                f"{block.where}: `{command}` printed\n{out.stdout}\nexpected\n{expected}"
            )


def _torchrun_blocks() -> list[Block]:
    return [b for p in pages() for b in blocks(p) if b.mark == "run"]


@pytest.mark.multiprocess
@pytest.mark.parametrize("block", _torchrun_blocks(), ids=lambda b: b.where)
def test_torchrun_examples_run(block: Block, tmp_path: Path) -> None:
    """The torchrun examples, in really separate processes (gloo on CPU), with fewer steps."""
    pytest.importorskip("torch")
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this interpreter")
    nproc = block.arg.split()[1]
    code = block.code.replace("range(1000)", "range(40)").replace(
        "total_steps=1000", "total_steps=40"
    )
    (tmp_path / "train.py").write_text(code)
    # The launch is retried (4 tries) for two failures that are not the example's, and only them:
    # - --standalone picks a free port before the processes bind it; on this shared machine another
    #   program may take it first ("address already in use");
    # - torch's gloo backend sometimes aborts a process while it exits, after its work is done
    #   ("terminate called without an active exception"): measured here with plain torch DDP and
    #   no refinedlr at all, 3 of 20 launches, 5 of 30 with a barrier before
    #   destroy_process_group, 6 of 30 without destroy_process_group.
    transient = ("address already in use", "terminate called without an active exception")
    for attempt in range(4):
        r = subprocess.run(
            [str(torchrun), "--standalone", "--nproc-per-node", nproc, "train.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        if r.returncode == 0 or attempt == 3 or not any(t in r.stderr.lower() for t in transient):
            break
    if r.returncode != 0:  # every rank's error lines, then the launcher's summary
        errors = [ln for ln in r.stderr.splitlines() if re.search(r"Error|error|what\(\)", ln)]
        pytest.fail("\n".join(errors[:40]) + "\n...\n" + r.stderr[-2000:])
    from refinedlr.records import read_record

    for record in sorted(tmp_path.rglob("*.csv")):
        rec = read_record(record)
        assert rec.steps.tolist() == list(range(40)), record


def test_pages_exist_for_every_link_target_in_the_index() -> None:
    """The home page's map of the site names only pages that exist."""
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+\.md)", text):
        assert (DOCS / target).exists(), target


def test_the_runner_fails_on_wrong_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks above can fail: wrong expected output and failing commands are caught."""
    monkeypatch.chdir(tmp_path)
    wrong = [
        Block("x.md", 1, "pycon", ">>> 1 + 1\n3\n"),
        Block("x.md", 1, "console", "$ refinedlr --version\nrefinedlr 99.0\n"),
        Block("x.md", 1, "bash", "refinedlr refine missing.csv -o out.json\n"),
        Block("x.md", 1, "python", "raise RuntimeError('boom')\n"),
    ]
    for block in wrong:
        with pytest.raises((AssertionError, RuntimeError)):
            run_block(block, {})
    run_block(Block("x.md", 1, "console", "$ refinedlr --version\nrefinedlr ...\n"), {})


def test_troubleshooting_names_every_error_and_warning_class() -> None:
    """Every exception and warning class the library defines has its entry on the page."""
    import ast

    text = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    src = DOCS.parent / "src" / "refinedlr"
    missing = []
    for path in sorted(src.rglob("*.py")):
        if "bench" in path.relative_to(src).parts:
            continue  # the research suite (moving to research/) is not the library's
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
            if any(b.endswith(("Error", "Exception", "Warning")) for b in bases):
                if node.name not in text:
                    missing.append(f"{path.relative_to(src)}: {node.name}")
    assert not missing, f"error/warning classes not on troubleshooting.md: {missing}"


def test_install_page_lists_every_extra() -> None:
    """The extras table of the install page is the pyproject's list of extras."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((DOCS.parent / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(project["project"]["optional-dependencies"])
    text = (DOCS / "getting-started" / "install.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z]+)` \|", text, flags=re.M))
    assert listed == extras, f"install.md lists {sorted(listed)}, pyproject has {sorted(extras)}"
