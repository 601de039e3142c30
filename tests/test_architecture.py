"""The library's shape: layered imports, no cycles, a core without frameworks or research code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "refinedlr"
FRAMEWORKS = ("torch", "jax", "optax", "transformers", "lightning", "matplotlib")
CORE = (
    "refinedlr.limits",
    "refinedlr.fileio",
    "refinedlr.schedules",
    "refinedlr.bounds",
    "refinedlr.records",
    "refinedlr.registry",
    "refinedlr.refinement",
    "refinedlr.decision",
    "refinedlr.schedule_io",
    "refinedlr.risk",
    "refinedlr.verify",
    "refinedlr.summary",
)


def test_import_contracts_are_kept() -> None:
    """lint-imports checks the layers declared in pyproject.toml ([tool.importlinter])."""
    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in graph.modules or w == "refinedlr":
                continue  # the package root only re-exports (nothing in the library imports it)
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return out


def test_no_import_cycles_anywhere_in_the_library() -> None:
    graph = grimp.build_graph("refinedlr")
    assert _cycles(graph) == []


def test_the_cycle_check_can_fail() -> None:
    graph = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_only_the_command_line_imports_the_package_root() -> None:
    graph = grimp.build_graph("refinedlr")
    importers = graph.find_modules_that_directly_import("refinedlr")
    assert importers <= {"refinedlr.cli"}, importers


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_no_framework(module: str) -> None:
    graph = grimp.build_graph("refinedlr", include_external_packages=True)
    modules = {module} | graph.find_descendants(module) if graph.find_children(module) else {module}
    for m in modules:
        imported = graph.find_modules_directly_imported_by(m)
        assert not (imported & set(FRAMEWORKS)), (m, imported & set(FRAMEWORKS))


def test_nothing_in_the_library_imports_the_research_suite_or_the_demo() -> None:
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.startswith(("refinedlr_bench", "refinedlr_demo")) for n in names), path


def _row_writes(tree: ast.AST) -> list[str]:
    """The functions that write a recorder's open row (``x._row.update(...)``, ``x._row[k] = v``)."""
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("update", "__setitem__", "setdefault"):
                    target = node.func.value
            elif isinstance(node, ast.Assign):
                target = next((t.value for t in node.targets if isinstance(t, ast.Subscript)), None)
            if isinstance(target, ast.Attribute) and target.attr == "_row":
                out.append(fn.name)
    return out


def test_a_row_is_assembled_in_one_place() -> None:
    """Issue 21: the recorder's sources hand values to ``_put``; nothing else fills a row."""
    writers = {
        f"{path.relative_to(SRC)}:{name}"
        for path in [*(SRC / "pytorch").glob("*.py"), *(SRC / "integrations").glob("*.py")]
        for name in _row_writes(ast.parse(path.read_text(encoding="utf-8")))
    }
    assert writers == {"pytorch/recorder.py:_put"}
    # the check sees a write outside _put
    hook = "def post_hook(rec):\n    rec._row.update({'l2': 1.0})\n    rec._row['l1'] = 2.0\n"
    assert _row_writes(ast.parse(hook)) == ["post_hook", "post_hook"]


def test_the_library_is_laid_out_by_the_formatter() -> None:
    # The library's size (issue 21 counts its lines) is that of code as `ruff format` lays it
    # out: no hand-packed regions kept from the formatter.
    packed = [
        f"{p.relative_to(SRC)}:{i}"
        for p in sorted(SRC.rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "fmt: skip" in line or "fmt: off" in line
    ]
    assert not packed, packed


def test_the_library_holds_fewer_than_10000_lines_of_python() -> None:
    """Issue 10's number, kept by issue 21: what the wheel ships (src/refinedlr, every line of
    every module, as `find src/refinedlr -name '*.py' | xargs cat | wc -l` counts them). Growing
    past it is a decision to make in an issue, not by accident."""
    lines = sum(len(p.read_bytes().splitlines()) for p in SRC.rglob("*.py"))
    assert lines < 10_000, f"the library holds {lines:,} lines of Python"
