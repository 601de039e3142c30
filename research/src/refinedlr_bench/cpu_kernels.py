"""The CPU kernels torch runs, pinned so that the suites' numbers do not depend on the machine.

torch picks its CPU kernels at run time from the instruction sets the processor has: on a machine
with AVX-512, ATen's vectorised kernels (softmax, element-wise updates) and oneDNN's convolutions
use 16-float vectors, on an AVX2 machine 8-float ones. The two round differently in float32, so
the same command gives different numbers on the two kinds of machine: in the convex suite 2,277 of
27,380 runs moved, by up to 90% of the gap where SGD is chaotic; in the quick image study all 32
runs moved, by up to 3.4%. The committed results were made with AVX2 kernels.

:func:`pin_cpu_kernels` therefore asks for the AVX2 kernels (``ATEN_CPU_CAPABILITY=avx2``,
``MKL_ENABLE_INSTRUCTIONS=AVX2``, ``ONEDNN_MAX_CPU_ISA=AVX2``) on x86-64 processors that have
AVX2, unless the variables are already set. It must run before torch executes its first
operation in the process (the choice is made once); :func:`cpu_kernels` reports the kernels
actually in use, which the reports and the convex cache key record. Worker processes inherit the
variables.

Within one kind of kernels a run is reproducible bit for bit when the same command is rerun
(from scratch or resumed from its cache). The convex suite trains many runs as one batched
tensor, and float32 rounding inside a matrix product or softmax depends on a run's position in
that tensor and on the tensor's width, so a configuration trained in a different batch (another
``--methods`` set, or an arm of the refinement study) can differ in the last bits, which chaotic
runs amplify; the convex report states this tolerance.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["PINNED", "cpu_kernels", "pin_cpu_kernels"]

#: The environment variables :func:`pin_cpu_kernels` sets (when unset) on x86-64 with AVX2.
PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def _has_avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return any(line.startswith("flags") and " avx2" in line for line in text.splitlines())


def pin_cpu_kernels() -> dict[str, str]:
    """Ask for the AVX2 kernels (see the module docstring); returns the variables it set."""
    if not _has_avx2():
        return {}
    done = {}
    for key, value in PINNED.items():
        if key not in os.environ:
            os.environ[key] = value
            done[key] = value
    return done


def cpu_kernels() -> str:
    """The kernels torch uses in this process, lower case (e.g. ``"avx2"``, ``"avx512"``)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability()).lower()
