"""Every ``refinedlr.<name>`` that a docstring, a comment or a documentation page mentions exists.

Docstrings and pages name the library's modules, classes, functions and methods by dotted path
(``refinedlr.registry.get_schedule``, ``:func:`~refinedlr.schedule_io.as_schedule```). A rename
that misses one leaves a reference to nothing (issue 21 found four citing a
``refinedlr.schedules.get_schedule`` that never existed). This test imports each name.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    *sorted((ROOT / "src" / "refinedlr").rglob("*.py")),
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "docs").rglob("*.rst")),
    ROOT / "README.md",
]
# a dotted name starting at the package (not a file name like refinedlr_norms.csv, not a URL)
NAME = re.compile(r"(?<![\w/.-])refinedlr(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
NOT_PYTHON = {"refinedlr.commands"}  # the entry-point group of command plugins


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or an attribute path inside the longest importable one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if exc.name is not None and not dotted.startswith(exc.name):
                raise  # a missing dependency, not a missing refinedlr module
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def references() -> list[tuple[str, int, str]]:
    out = []
    for path in SOURCES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for m in NAME.finditer(line):
                out.append((str(path.relative_to(ROOT)), n, m.group(0).rstrip(".")))
    return out


def test_there_are_references_to_check() -> None:
    refs = references()
    assert len(refs) > 100  # the scan reads what it should
    assert any(name == "refinedlr.registry.get_schedule" for _, _, name in refs)


def test_every_referenced_name_exists() -> None:
    pytest.importorskip("torch")
    refs = [(f, n, name) for f, n, name in references() if name not in NOT_PYTHON]
    bad = [f"{f}:{n}: {name}" for f, n, name in refs if not resolves(name)]
    assert not bad, "references to names that do not exist:\n" + "\n".join(bad)


def test_the_check_catches_a_stale_name() -> None:
    assert resolves("refinedlr.registry.get_schedule")
    assert resolves("refinedlr.pytorch.GradNormRecorder.attach")
    assert not resolves("refinedlr.schedules.get_schedule")
    assert not resolves("refinedlr.nonexistent")
