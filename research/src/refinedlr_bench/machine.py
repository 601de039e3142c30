"""What machine a benchmark ran on (for the reports): CPU model, cores, memory, versions, kernels."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from refinedlr_bench.cpu_kernels import cpu_kernels

__all__ = ["loadavg", "machine_info"]


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory (GiB), OS, Python, torch (its thread count and CPU kernels) and
    numpy.

    >>> sorted(machine_info())  # doctest: +NORMALIZE_WHITESPACE
    ['cores', 'cpu', 'cpu_kernels', 'memory_gib', 'numpy', 'platform', 'python', 'torch',
     'torch_threads']
    """
    mem = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "",
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem.split()[0]) / 1024**2, 1) if mem else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_kernels": cpu_kernels(),
        "numpy": np.__version__,
    }


def loadavg() -> list[float]:
    """The 1, 5 and 15-minute load averages (``[]`` where unavailable)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - not on Unix
        return []
