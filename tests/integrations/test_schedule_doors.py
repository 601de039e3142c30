"""Every adapter resolves "a schedule or a name" through ``refinedlr.schedule_io.as_schedule``:
``ScheduleLR``, Lightning's ``lr_scheduler_config``, Hugging Face's ``make_scheduler`` and
``optax_schedule`` give the same multipliers as ``as_schedule`` for a name, a ``Schedule`` put on
another horizon, a spec, a schedule file, ``"refined"`` with ``path=``, and an absolute argument
(Hugging Face's ``lr_end``) that needs the base learning rate, which each adapter knows."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refinedlr import get_schedule, save_schedule  # noqa: E402
from refinedlr.pytorch import ScheduleLR  # noqa: E402
from refinedlr.schedule_io import as_schedule  # noqa: E402

os.environ.setdefault("JAX_PLATFORMS", "cpu")

T = 12


def cases(tmp: Path) -> list[tuple[str, Any, dict[str, Any]]]:
    save_schedule(get_schedule("cosine", 30, warmup=3), tmp / "s.json")
    table = np.linspace(1.0, 0.1, 20) ** 2
    save_schedule(get_schedule("refined", 20, values=table), tmp / "r.npy")
    return [
        ("name", "linear", {"warmup": 2}),
        ("name+kwargs", "cosine", {"floor": 0.1}),
        ("Schedule on another horizon", get_schedule("cosine", 40, warmup=0.25), {}),
        ("spec", get_schedule("step", 7).to_spec(), {}),
        ("file", str(tmp / "s.json"), {}),
        ("refined path", "refined", {"path": tmp / "r.npy"}),
        # an absolute argument: every door knows the base LR (1.0 here)
        ("polynomial lr_end", "polynomial", {"lr_end": 0.25, "power": 2.0}),
    ]


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)


def test_scheduler_and_integrations_agree_with_as_schedule(tmp_path: Path) -> None:
    for label, schedule, kw in cases(tmp_path):
        want = as_schedule(schedule, T, base_lr=1.0, **kw).preview()
        got = {"ScheduleLR": ScheduleLR(optimizer(), schedule, total_steps=T, **kw).schedule}
        if importlib.util.find_spec("lightning") is not None:
            from refinedlr.integrations.lightning import lr_scheduler_config

            cfg = lr_scheduler_config(optimizer(), schedule, total_steps=T, **kw)
            got["lightning"] = cfg["scheduler"].schedule
        if importlib.util.find_spec("transformers") is not None:
            from transformers import TrainingArguments

            from refinedlr.integrations.transformers import make_scheduler

            args = TrainingArguments(
                str(tmp_path / "hf"), max_steps=T, learning_rate=1.0, report_to=[]
            )
            # (a schedule by name takes the arguments' warm-up when not given: 0 here)
            got["transformers"] = make_scheduler(args, optimizer(), schedule, **kw).schedule
        for door, sched in got.items():
            assert sched.total_steps == T, (label, door)
            np.testing.assert_array_equal(sched.preview(), want, err_msg=f"{label}: {door}")
        if importlib.util.find_spec("optax") is not None:
            import jax
            import jax.numpy as jnp

            from refinedlr.integrations.optax import optax_schedule

            lr = optax_schedule(schedule, 1.0, total_steps=T, **kw)
            vals = np.array([float(lr(jnp.int32(t))) for t in range(T)])
            tol = 0 if jax.config.jax_enable_x64 else 1e-7  # float32 table
            np.testing.assert_allclose(vals, want, rtol=tol, atol=tol, err_msg=f"{label}: optax")
