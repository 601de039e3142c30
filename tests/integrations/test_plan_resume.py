"""Resuming onto a planned extension (refinedlr.plan.extend) through the Hugging Face Trainer,
Lightning and optax: the checkpoint's schedule continues along the plan, and an accidental change
of horizon is still refused."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

torch = pytest.importorskip("torch")

from refinedlr import WarmupStableDecay  # noqa: E402
from refinedlr.plan import extend  # noqa: E402
from refinedlr.pytorch import ScheduleMismatchError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")

WSD = WarmupStableDecay(16, warmup=2, decay=0.25, decay_shape="1-sqrt")  # cooldown from step 12
LONGER = extend(WSD, at_step=12, total_steps=32)
LR = 0.05


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _lr_probe(opt: Any, step: Any, lrs: dict[int, float]) -> None:
    while hasattr(opt, "optimizer"):  # accelerate's AcceleratedOptimizer
        opt = opt.optimizer
    opt.register_step_pre_hook(lambda o, a, k: lrs.__setitem__(step(), o.param_groups[0]["lr"]))


# ------------------------------------------------------------------------------------------------
# Hugging Face Trainer


def _hf_train(
    out: Path, schedule: Any, max_steps: int, resume: str | None = None
) -> dict[int, float]:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from refinedlr.integrations.transformers import use_schedule

    class Probe(transformers.TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            _lr_probe(kw["optimizer"], lambda: state.global_step, lrs)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    class Regression(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, x: Any, labels: Any) -> dict[str, Any]:
            return {"loss": torch.nn.functional.mse_loss(self.net(x), labels)}

    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    data = [{"x": x[i], "labels": x[i, :1] * 2} for i in range(256)]
    args = transformers.TrainingArguments(
        output_dir=str(out), max_steps=max_steps, per_device_train_batch_size=8,
        learning_rate=LR, save_strategy="steps", save_steps=12, report_to=[], use_cpu=True,
        seed=0, disable_tqdm=True, dataloader_num_workers=0, optim="sgd",
    )  # fmt: skip
    trainer = transformers.Trainer(model=Regression(), args=args, train_dataset=data)
    use_schedule(trainer, schedule)
    lrs: dict[int, float] = {}
    trainer.add_callback(Probe())
    trainer.train(resume_from_checkpoint=resume)
    return lrs


def test_hugging_face_resumes_onto_the_plan(tmp_path: Path) -> None:
    out = tmp_path / "hf"
    first = _hf_train(out, WSD, 16)
    assert first[3] == pytest.approx(LR * float(WSD(3)))
    lrs = _hf_train(out, LONGER, 32, resume=str(out / "checkpoint-12"))
    assert sorted(lrs) == list(range(12, 32))
    for t, lr in lrs.items():
        assert lr == pytest.approx(LR * float(LONGER(t)), rel=1e-12)
    with pytest.raises(ScheduleMismatchError, match="horizon 16 -> 32"):
        _hf_train(out, WSD.with_horizon(32), 32, resume=str(out / "checkpoint-12"))


# ------------------------------------------------------------------------------------------------
# Lightning


def _lightning_fit(root: Path, schedule: Any, max_steps: int, ckpt: Path | None = None) -> Any:
    L = pytest.importorskip("lightning")
    from refinedlr.integrations.lightning import lr_scheduler_config

    lrs: dict[int, float] = {}

    class Model(L.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=LR)
            _lr_probe(opt, lambda: self.trainer.global_step, lrs)
            cfg = lr_scheduler_config(opt, schedule, trainer=self.trainer)
            return {"optimizer": opt, "lr_scheduler": cfg}

    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 4, generator=g)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x[:, :1]), batch_size=8)
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=root / "ckpt", every_n_train_steps=12, save_top_k=-1
    )
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=max_steps, enable_progress_bar=False,
        logger=False, enable_model_summary=False, default_root_dir=str(root),
        callbacks=[checkpoints],
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Model(), data, ckpt_path=str(ckpt) if ckpt else None)
    return lrs


def test_lightning_resumes_onto_the_plan(tmp_path: Path) -> None:
    root = tmp_path / "pl"
    _lightning_fit(root, WSD, 16)
    ckpt = root / "ckpt" / "epoch=0-step=12.ckpt"
    assert ckpt.exists(), sorted(p.name for p in (root / "ckpt").iterdir())
    lrs = _lightning_fit(tmp_path / "pl2", LONGER, 32, ckpt=ckpt)
    assert sorted(lrs) == list(range(12, 32))
    for t, lr in lrs.items():
        assert lr == pytest.approx(LR * float(LONGER(t)), rel=1e-12)
    with pytest.raises(ScheduleMismatchError, match="horizon 16 -> 32"):
        _lightning_fit(tmp_path / "pl3", WSD.with_horizon(32), 32, ckpt=ckpt)


# ------------------------------------------------------------------------------------------------
# optax


def test_optax_follows_the_plan_from_the_restored_count() -> None:
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import optax

    from refinedlr.integrations.optax import optax_schedule

    params = {"w": jnp.ones(3)}
    sgd = optax.sgd(optax_schedule(WSD, LR))
    state = sgd.init(params)
    grads = {"w": jnp.ones(3)}
    for _ in range(12):  # the original run up to its checkpoint
        _, state = sgd.update(grads, state, params)
    longer = optax.sgd(optax_schedule(LONGER, LR))  # the restored state carries the count
    seen = []
    for _ in range(20):
        updates, state = longer.update(grads, state, params)
        seen.append(-float(updates["w"][0]))  # sgd: update = -lr * grad
    want = [LR * float(LONGER(t)) for t in range(12, 32)]
    np.testing.assert_allclose(seen, want, rtol=1e-6)
