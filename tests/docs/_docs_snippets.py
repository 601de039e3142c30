"""Code blocks of the documentation pages, and how the tests run them.

A page's fenced blocks are read in order. What happens to each depends on its language:

``python``
    executed, in one namespace per page (so later blocks use what earlier ones defined);
``pycon``
    a doctest (``>>>`` lines and their expected output), in the same namespace;
``bash``
    every line is a ``refinedlr ...`` command, run through :func:`refinedlr.cli.main` in the
    same folder; it must exit 0;
``console``
    ``$ refinedlr ...`` lines followed by their expected output (stdout and stderr together),
    compared like a doctest (``...`` matches anything, whitespace is normalised);
``text``, ``csv``, ``json``, ``jsonl``, ``toml``
    data or output shown to the reader, not run.

A block that cannot run in the tests (it installs packages, needs a GPU, takes minutes) is marked
on the line just before it with ``<!-- not run: REASON -->``; the reason is required. A block that
runs under ``torchrun`` is marked ``<!-- run: torchrun NPROC -->``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import doctest
import io
import re
import shlex
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs"

RUN = {"python", "pycon", "bash", "console"}
DATA = {"text", "csv", "json", "jsonl", "toml", "ini", "none"}

_FENCE = re.compile(
    r"^(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)
_MARK = re.compile(r"<!--\s*(?P<what>not run|run)\s*:\s*(?P<arg>.*?)\s*-->\s*$")


@dataclasses.dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    mark: str | None = None  # "not run" or "run"
    arg: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[str]:
    """The docs' own Markdown pages (docs/integrations.md has its own test)."""
    found = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    return [p for p in found if p != "integrations.md" and not p.startswith("_")]


def blocks(page: str) -> list[Block]:
    text = (DOCS / page).read_text(encoding="utf-8")
    out: list[Block] = []
    for m in _FENCE.finditer(text):
        info = m.group("info").strip()
        if info.startswith("{"):  # a MyST directive, not code
            continue
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        out.append(
            Block(
                page=page,
                line=line,
                lang=(info.split() or ["none"])[0],
                code=m.group("body"),
                mark=mark.group("what") if mark else None,
                arg=mark.group("arg") if mark else "",
            )
        )
    return out


def cli(line: str) -> tuple[int, str]:
    """Run one ``refinedlr ...`` command line in this process; its exit status and output."""
    from refinedlr.cli import main

    argv = shlex.split(line, comments=True)
    assert argv and argv[0] == "refinedlr", f"not a refinedlr command: {line!r}"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            status = main(argv[1:])
        except SystemExit as exc:  # --help, --version, argparse errors
            status = exc.code if isinstance(exc.code, int) else 1
    return status, buf.getvalue()


_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_block(block: Block, ns: dict[str, Any]) -> None:
    """Run one block (see the module documentation); raises AssertionError on a failure."""
    if block.lang == "python":
        exec(compile(block.code, block.where, "exec"), ns)
    elif block.lang == "pycon":
        test = doctest.DocTestParser().get_doctest(
            block.code, ns, block.where, block.page, block.line
        )
        runner = doctest.DocTestRunner(optionflags=_FLAGS)
        report = io.StringIO()
        result = runner.run(test, out=report.write, clear_globs=False)
        ns.update(test.globs)  # DocTest runs on a copy of the namespace
        assert result.failed == 0, f"{block.where}: doctest failed\n{report.getvalue()}"
    elif block.lang == "bash":
        for raw in block.code.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            status, output = cli(line)
            assert status == 0, f"{block.where}: `{line}` exited {status}\n{output}"
    elif block.lang == "console":
        for command, expected in _console_steps(block.code):
            status, output = cli(command)
            if not _CHECKER.check_output(expected, output, _FLAGS):
                raise AssertionError(
                    f"{block.where}: `{command}` (exit {status}) printed\n{output}\n"
                    f"expected\n{expected}"
                )
    else:
        raise AssertionError(f"{block.where}: no rule to run a {block.lang!r} block")


def _console_steps(code: str) -> list[tuple[str, str]]:
    steps: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"console block: output before the first command: {line!r}")
    return [(cmd, "\n".join(out).strip() + "\n") for cmd, out in steps]
