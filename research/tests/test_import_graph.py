"""The research suite's import graph: no cycles, commands on top, the library never imports it.

Every ``import`` statement counts, at any depth (functions, ``if TYPE_CHECKING`` blocks), so a
function-level import cannot hide a cycle. The layers themselves are import-linter contracts in
``research/pyproject.toml`` (``[tool.importlinter]``), checked here with ``lint-imports``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
import refinedlr

import refinedlr_bench

PACKAGE = "refinedlr_bench"
_DYNAMIC = {"import_module", "__import__"}
ROOT = Path(refinedlr_bench.__file__).resolve().parent


def module_name(path: Path, root: Path, package: str) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, name: str, package: str) -> set[str]:
    """Absolute names of everything ``path`` (module ``name``) imports from ``package``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # `from pkg import module` imports the module too
            found.update(f"{target}.{a.name}" for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in _DYNAMIC
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return {m for m in found if m == package or m.startswith(package + ".")}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` (only names that are modules)."""
    files = {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = {m for m in imported_modules(path, name, package) if m in files} - {name}
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_imports_are_read_at_any_depth(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n    return b\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n"
    )
    (pkg / "c.py").write_text("import importlib\nm = importlib.import_module('pkg.a')\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.a"] == {"pkg", "pkg.b"} and graph["pkg.b"] == {"pkg.a"}
    assert graph["pkg.c"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]


def test_the_research_suite_has_no_import_cycle() -> None:
    graph = import_graph(ROOT, PACKAGE)
    assert len(graph) > 20  # the package was found
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_the_entry_points_import_the_command_lines() -> None:
    graph = import_graph(ROOT, PACKAGE)
    top = {f"{PACKAGE}.cli", f"{PACKAGE}.__main__"}
    for name, deps in graph.items():
        if name in top or name.startswith(f"{PACKAGE}.commands"):
            continue
        assert not {d for d in deps if d.startswith(f"{PACKAGE}.commands")}, name


def test_the_library_never_imports_the_research_suite() -> None:
    lib = Path(refinedlr.__file__).resolve().parent
    offenders = []
    files = sorted(lib.rglob("*.py"))
    if not files:
        pytest.skip("the library's sources are not available")
    for path in files:
        if imported_modules(path, module_name(path, lib, "refinedlr"), PACKAGE):
            offenders.append(path.name)
    assert offenders == []


def test_the_import_contracts_are_kept() -> None:
    """lint-imports checks the layers declared in research/pyproject.toml."""
    exe = Path(sys.executable).with_name("lint-imports")
    config = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not exe.exists() or not config.is_file():
        pytest.skip("import-linter or the research suite's pyproject.toml is not available")
    r = subprocess.run(
        [str(exe), "--config", str(config)], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout
