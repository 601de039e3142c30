"""The CPU kernels are pinned to AVX2 where the processor has it, unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from refinedlr_bench import cpu_kernels
from refinedlr_bench.cpu_kernels import PINNED, pin_cpu_kernels


def test_pins_only_what_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_kernels, "_has_avx2", lambda: True)
    for key in PINNED:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx512")
    done = pin_cpu_kernels()
    assert "ATEN_CPU_CAPABILITY" not in done
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx512"
    assert os.environ["MKL_ENABLE_INSTRUCTIONS"] == "AVX2" == done["MKL_ENABLE_INSTRUCTIONS"]


def test_nothing_is_pinned_without_avx2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_kernels, "_has_avx2", lambda: False)
    for key in PINNED:
        monkeypatch.delenv(key, raising=False)
    assert pin_cpu_kernels() == {}
    assert not any(key in os.environ for key in PINNED)


def test_a_fresh_process_runs_the_pinned_kernels() -> None:
    if not cpu_kernels._has_avx2():
        pytest.skip("not an x86-64 processor with AVX2")
    env = {k: v for k, v in os.environ.items() if k not in PINNED}
    code = (
        "from refinedlr_bench.cpu_kernels import pin_cpu_kernels, cpu_kernels\n"
        "pin_cpu_kernels()\n"
        "import torch\n"
        "torch.softmax(torch.ones(3), 0)\n"
        "print(cpu_kernels())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "avx2"
