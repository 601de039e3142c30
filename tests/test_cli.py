"""The command line, end to end through subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refinedlr.refinement import refine
from refinedlr.schedule_io import load_schedule


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "refinedlr.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture()
def log(tmp_path: Path) -> Path:
    t = np.arange(400)
    rng = np.random.default_rng(0)
    l2 = 1 + 9 * np.exp(-t / 40) + 0.1 * rng.random(400)
    l1 = 30 * l2
    path = tmp_path / "norms.csv"
    with open(path, "w") as f:
        f.write("step,l2,l1\n")
        for i in t:
            f.write(f"{i},{float(l2[i])!r},{float(l1[i])!r}\n")
    return path


def test_help_is_readable() -> None:
    r = run("--help")
    assert r.returncode == 0
    for word in ("refine", "show", "plot", "demo", "gradient norms", "examples:"):
        assert word in r.stdout
    r = run("refine", "--help")
    assert r.returncode == 0 and "--tau" in r.stdout and "trainer_state.json" in r.stdout


@pytest.mark.parametrize("suffix", ["json", "npy", "csv"])
def test_refine_writes_the_same_schedule_as_the_library(
    log: Path, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"refined.{suffix}"
    png = tmp_path / "refined.png"
    r = run("refine", str(log), "--norm", "l1", "--tau", "0.2", "-o", str(out), "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert "peak" in r.stdout and "bound vs linear" in r.stdout
    expected = refine(np.loadtxt(log, delimiter=",", skiprows=1)[:, 2], tau=0.2, norm="l1")
    np.testing.assert_allclose(load_schedule(out).preview(), expected.preview(), rtol=1e-15)
    if suffix == "npy":
        arr = np.load(out, allow_pickle=False)
        assert arr.shape == (400,) and arr[-1] == 0.0 and arr.max() == 1.0
    if suffix == "json":
        doc = json.loads(out.read_text())
        assert doc["spec"]["provenance"]["tau"] == 0.2
        assert doc["spec"]["provenance"]["norm"] == "l1"
    assert png.stat().st_size > 10_000


def test_refine_to_another_horizon(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.npy"
    r = run("refine", str(log), "--steps", "1000", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert np.load(out).shape == (1000,)


def test_show_schedule_and_log(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert run("refine", str(log), "-o", str(out)).returncode == 0
    r = run("show", str(out), "--norms", str(log))
    assert r.returncode == 0, r.stderr
    assert "implied warm-up" in r.stdout and "bound vs linear" in r.stdout
    assert "fingerprint" in r.stdout
    r = run("show", str(log))
    assert r.returncode == 0, r.stderr
    assert "400 rows" in r.stdout and "refined schedule" in r.stdout and "cosine" in r.stdout


def test_show_warns_on_collapsing_norms(tmp_path: Path) -> None:
    path = tmp_path / "collapse.npy"
    np.save(path, np.r_[np.ones(300), np.geomspace(1, 1e-4, 100)])
    r = run("show", str(path), "--as", "log")
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "degenerate" in r.stderr


def test_plot(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "sched.json"
    assert run("refine", str(log), "-o", str(out)).returncode == 0
    png = tmp_path / "p.png"
    r = run("plot", str(log), str(out), "--baselines", "linear,cosine", "-o", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "content,args,match",
    [
        (None, [], "no such file"),
        ("step,l2\n0,1.0\n1,abc\n", [], "line 3"),
        ("", [], "empty"),
        ("step,l2\n0,1\n1,2\n2,0\n3,1\n4,1\n", [], "step 2 has 0.0"),
        ("step,l2\n0,1\n1,2\n2,1\n3,1\n", ["--tau", "5"], "tau must be"),
        ("step,l2\n0,1\n1,2\n2,1\n3,1\n", ["--column", "l9"], "l9"),
    ],
)
def test_bad_input_gives_one_line_and_status_2(
    tmp_path: Path, content: str | None, args: list[str], match: str
) -> None:
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    r = run("refine", str(path), "-o", str(tmp_path / "o.json"), *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("refinedlr: error:"), r.stderr
    assert match in lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_output_type(log: Path, tmp_path: Path) -> None:
    r = run("refine", str(log), "-o", str(tmp_path / "o.txt"))
    assert r.returncode == 2 and "use .json, .npy or .csv" in r.stderr


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "refinedlr"
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("refinedlr ")
