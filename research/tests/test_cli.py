"""The research suite's entry points: ``refinedlr bench|data`` and ``python -m refinedlr_bench``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from refinedlr_bench.cli import bench_main, data_main, main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_the_entry_points_are_the_two_commands() -> None:
    eps = {ep.name: ep for ep in entry_points(group="refinedlr.commands")}
    if not eps:
        pytest.skip("refinedlr-bench is not installed (its entry points are missing)")
    assert eps["bench"].load() is bench_main
    assert eps["data"].load() is data_main


def test_bench_without_a_suite_prints_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main([]) == 2
    assert bench_main(["nonsense"]) == 2
    assert bench_main(["--help"]) == 0
    err = capsys.readouterr().err
    assert err.count("usage: refinedlr bench {convex,deep,study,plan}") == 3


def test_python_dash_m_runs_the_same_commands() -> None:
    r = run("-m", "refinedlr_bench", "data", "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split()[:2] == ["dataset", "cached"]
    assert "iris" in r.stdout
    r = run("-m", "refinedlr_bench")
    assert r.returncode == 2 and "usage: python -m refinedlr_bench" in r.stderr


def test_the_library_command_line_reaches_the_suite() -> None:
    if not entry_points(group="refinedlr.commands"):
        pytest.skip("refinedlr-bench is not installed (its entry points are missing)")
    r = run("-m", "refinedlr.cli", "bench", "convex", "--help")
    assert r.returncode == 0, r.stderr
    assert "usage: refinedlr bench convex" in r.stdout


def test_main_dispatches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench"]) == 2
    assert "usage: refinedlr bench" in capsys.readouterr().err
