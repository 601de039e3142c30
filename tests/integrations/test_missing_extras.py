"""Issue 11 §6: an adapter whose framework is missing says in one line which extra to install.

Each case runs in a fresh interpreter with a blocking import hook on ``sys.meta_path`` that makes
the framework's modules unimportable (as if not installed), imports the adapter and prints the
exception."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import importlib, importlib.abc, sys
blocked = set(sys.argv[2].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
try:
    importlib.import_module(sys.argv[1])
except ImportError as exc:
    print(type(exc).__name__ + ": " + str(exc))
else:
    print("imported")
"""

CASES = [
    ("refinedlr.pytorch", "torch", "torch"),
    ("refinedlr.integrations.transformers", "transformers", "transformers"),
    ("refinedlr.integrations.transformers", "accelerate", "transformers"),
    ("refinedlr.integrations.transformers", "torch", "transformers"),
    ("refinedlr.integrations.lightning", "lightning", "lightning"),
    ("refinedlr.integrations.lightning", "torch", "lightning"),
    ("refinedlr.integrations.optax", "optax", "jax"),
    ("refinedlr.integrations.optax", "jax", "jax"),
]


@pytest.mark.parametrize(("module", "blocked", "extra"), CASES)
def test_missing_framework_names_the_extra(module: str, blocked: str, extra: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, module, blocked],
        capture_output=True,
        text=True,
        timeout=120,
        env={"JAX_PLATFORMS": "cpu", "PATH": "", "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    assert lines[0].startswith(f"ImportError: {module} needs"), lines[0]
    assert lines[0].endswith(f'pip install "refinedlr[{extra}]"'), lines[0]
    assert blocked in lines[0]  # says what is missing


def test_importing_the_integrations_package_imports_no_framework() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "refinedlr.integrations", "torch,transformers,lightning,jax"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "imported", out.stdout + out.stderr
