"""Each framework internal refinedlr touches (``refinedlr.pytorch.seams``), pinned to its extra.

Every test first checks that the installed framework is inside the version range its extra gives
in ``pyproject.toml`` (so a CI run on another version is said, not hidden), then that the seam is
still there and behaves as the adapters assume. A framework release that moves a seam fails here,
by name, before it breaks a record.
"""

from __future__ import annotations

import inspect
import math
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

torch = pytest.importorskip("torch")

from refinedlr.pytorch.seams import (  # noqa: E402
    in_grad_scaler_step,
    inverse_scale,
    patch,
    scaler_stage,
)

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def in_extra_range(extra: str, package: str) -> str:
    """The installed version of ``package``, asserted inside the range of ``extra``."""
    line = re.search(rf"^{extra} = \[(.*)\]$", PYPROJECT.read_text(), re.MULTILINE)
    assert line is not None, f"no extra [{extra}] in pyproject.toml"
    reqs = [Requirement(r) for r in re.findall(r'"([^"]+)"', line.group(1))]
    req = next(r for r in reqs if r.name == package)
    installed = version(package)
    assert req.specifier.contains(installed, prereleases=True), (
        f"{package} {installed} is outside the range {req} of the extra [{extra}]: check the "
        "seams in refinedlr/pytorch/seams.py against it, then widen the range"
    )
    return installed


def test_torch_grad_scaler_stages_and_scale() -> None:
    in_extra_range("torch", "torch")
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    seen: list[str] = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append(scaler_stage(scaler, o)))
    opt.register_step_pre_hook(lambda o, a, k: seen.append(str(in_grad_scaler_step(o))))
    assert scaler_stage(scaler, opt) == "READY"
    scaler.scale(p.sum()).backward()
    inv = inverse_scale(scaler, opt)
    assert isinstance(inv, torch.Tensor) and float(inv) == 1 / 8  # the scale, on its device
    scaler.unscale_(opt)
    assert scaler_stage(scaler, opt) == "UNSCALED" and inverse_scale(scaler, opt) is None
    scaler.step(opt)
    assert seen == ["UNSCALED", "True"]  # inside GradScaler.step, before optimizer.step runs
    assert scaler_stage(scaler, opt) == "STEPPED"
    scaler.update()
    assert scaler_stage(scaler, opt) == "READY"
    assert inverse_scale(torch.amp.GradScaler("cpu", enabled=False), opt) is None


def test_patch_wraps_an_instance_method_and_undoes_it() -> None:
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    calls: list[int] = []
    original = scaler.get_scale
    undo = patch(scaler, "get_scale", lambda: (calls.append(1), original())[1])
    assert scaler.get_scale() == 4.0 and calls == [1] and "get_scale" in vars(scaler)
    undo()
    assert "get_scale" not in vars(scaler)  # the class's method shows through again
    undo()  # idempotent
    assert scaler.get_scale() == 4.0 and calls == [1]


def test_accelerate_clip_grad_norm_on_the_instance() -> None:
    pytest.importorskip("accelerate")
    in_extra_range("transformers", "accelerate")
    from accelerate import Accelerator

    params = list(inspect.signature(Accelerator.clip_grad_norm_).parameters)
    assert params[:4] == ["self", "parameters", "max_norm", "norm_type"]
    acc = Accelerator(cpu=True)
    assert hasattr(acc, "scaler") and hasattr(acc, "distributed_type")
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    seen: list[Any] = []
    original = acc.clip_grad_norm_
    undo = patch(acc, "clip_grad_norm_", lambda ps, m, *a: seen.append(m) or original(ps, m, *a))
    total = acc.clip_grad_norm_([p], 1.0)  # what the Trainer calls, once per optimizer step
    assert seen == [1.0] and float(total) == 5.0  # the pre-clip total norm is returned
    assert math.isclose(float(p.grad.norm()), 1.0, rel_tol=1e-5)
    undo()
    assert "clip_grad_norm_" not in vars(acc)


def test_transformers_create_scheduler_and_its_flag() -> None:
    pytest.importorskip("transformers")
    in_extra_range("transformers", "transformers")
    from transformers import Trainer, TrainingArguments

    params = list(inspect.signature(Trainer.create_scheduler).parameters)
    assert params[:3] == ["self", "num_training_steps", "optimizer"]
    # the Trainer rebuilds a scheduler it created itself (this flag) when train() runs again
    assert "_created_lr_scheduler" in inspect.getsource(Trainer)
    assert callable(TrainingArguments.get_warmup_steps)


def test_lightning_precision_clip_gradients() -> None:
    pytest.importorskip("lightning")
    in_extra_range("lightning", "lightning")
    from lightning.pytorch import Callback
    from lightning.pytorch.plugins import MixedPrecision, Precision

    params = list(inspect.signature(Precision.clip_gradients).parameters)
    assert params[:2] == ["self", "optimizer"]
    scaler = torch.amp.GradScaler("cpu")
    assert MixedPrecision("16-mixed", device="cpu", scaler=scaler).scaler is scaler
    assert callable(Callback._generate_state_key)  # the callback's state_key
