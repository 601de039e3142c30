"""The examples of docs/integrations.md run as written: per framework section, its ``python``
blocks in order in one namespace and its ``refinedlr ...`` shell lines through the CLI, in a
temporary directory."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# third-party deprecation notices (Lightning on this torch) are not what these tests are about
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*", "ignore::FutureWarning")

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"

SECTIONS = {
    "PyTorch": ("torch",),
    "Hugging Face Trainer": ("torch", "transformers", "accelerate"),
    "Lightning": ("torch", "lightning"),
    "JAX / optax": ("jax", "optax"),
}


def blocks(section: str) -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    body = dict(zip(parts[1::2], parts[2::2], strict=True))[section]
    return re.findall(r"^```(python|bash)\n(.*?)^```", body, flags=re.M | re.S)


@pytest.mark.parametrize("section", list(SECTIONS))
def test_examples_run(section: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in SECTIONS[section]:
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed (the {section} extra)")
    from refinedlr.cli import main

    monkeypatch.chdir(tmp_path)
    threads = None
    if "torch" in SECTIONS[section]:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny models on a shared machine
    found = blocks(section)
    assert found, f"no examples in section {section!r}"
    ns: dict[str, Any] = {"__name__": "__docs__"}
    try:
        for lang, code in found:
            if lang == "python":
                exec(compile(code, f"{DOC.name}:{section}", "exec"), ns)
                continue
            for line in code.splitlines():
                if line.strip().startswith("refinedlr "):
                    assert main(shlex.split(line)[1:]) == 0, line
    finally:
        if threads is not None:
            torch.set_num_threads(threads)
    # every section's first run left a dense record and the refined schedule it was refined to;
    # the records hold the update direction's norm too (issue 12)
    from refinedlr import read_record

    records = sorted(tmp_path.rglob("*norms*.csv"))
    assert records
    assert sorted(tmp_path.glob("*refined*.json"))
    for path in records:
        record = read_record(path)
        assert "update_l2" in record.kinds, path
        assert (record.values["update_l2"] > 0).all(), path
