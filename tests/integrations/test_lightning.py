"""Lightning: the norm-recording callback (unscaled, pre-clip, once per optimizer step under
gradient accumulation), the scheduler config, checkpoint and resume, with a real Trainer on CPU."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip(
    "lightning", reason="Lightning is not installed (pip install 'refinedlr[lightning]')"
)

from refinedlr import get_schedule, read_record, refine, save_schedule  # noqa: E402
from refinedlr.integrations.lightning import (  # noqa: E402
    NORMS_FILENAME,
    GradNormCallback,
    lr_scheduler_config,
)
from refinedlr.pytorch import ScheduleLR, grad_norms  # noqa: E402
from refinedlr.schedule_io import load_schedule  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning",
    "ignore:.*(Checkpoint directory|dirpath has changed|num_workers|many workers|LeafSpec).*",
    "ignore:.*manual optimization and every_n_train_steps.*",
    "ignore:.*resuming from a checkpoint that ended before the epoch ended.*",
    # torch's false alarm when the AMP scaler skipped the first optimizer step
    "ignore:.*Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`.*",
)

LR = 0.05
STEPS = 20
ACCUM = 2
CLIP = 0.5


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """Tiny models: one intra-op thread is much faster on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def loader(n: int = 512, batch: int = 8) -> Any:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    y = x @ torch.randn(6, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=False
    )


class Model(L.LightningModule):  # type: ignore[misc]
    def __init__(self, schedule: Any = "linear", **schedule_kwargs: Any) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        )
        self.schedule = schedule
        self.schedule_kwargs = schedule_kwargs

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y) * 10.0  # large enough to be clipped

    def configure_gradient_clipping(self, optimizer: Any, *args: Any, **kwargs: Any) -> None:
        super().configure_gradient_clipping(optimizer, *args, **kwargs)
        probe = getattr(self, "probe", None)
        if probe is not None:  # what optimizer.step() will use: clipped gradients, the step's LR
            t = self.trainer.global_step
            probe.lrs[t] = optimizer.param_groups[0]["lr"]
            probe.post_clip[t] = float(grad_norms(optimizer)[0])

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=LR, momentum=0.9)
        cfg = lr_scheduler_config(opt, self.schedule, trainer=self.trainer, **self.schedule_kwargs)
        return {"optimizer": opt, "lr_scheduler": cfg}


class Probe(L.Callback):  # type: ignore[misc]
    """Per optimizer step: its LR, and the gradients right after clipping (from the model)."""

    def __init__(self) -> None:
        self.lrs: dict[int, float] = {}
        self.post_clip: dict[int, float] = {}
        self.before_step_calls = 0
        self.batches = 0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        pl_module.probe = self

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self.before_step_calls += 1

    def on_train_batch_end(self, *args: Any) -> None:
        self.batches += 1


def fit(
    root: Path,
    model: Any,
    *,
    ckpt_path: Any = None,
    max_steps: int = STEPS,
    callbacks: list[Any] | None = None,
    **kw: Any,
) -> tuple[Any, GradNormCallback, Probe]:
    cb = GradNormCallback(kinds=("l2", "l1"), keep_in_memory=True, flush_every=3)
    probe = Probe()
    ckpt = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=root / "ckpt", every_n_train_steps=8, save_top_k=-1
    )
    args: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        accumulate_grad_batches=ACCUM,
        gradient_clip_val=CLIP,
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
        default_root_dir=str(root),
        num_sanity_val_steps=0,
    )
    args.update(kw)
    trainer = L.Trainer(callbacks=[cb, probe, ckpt, *(callbacks or [])], **args)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended.*")
        trainer.fit(model, loader(), ckpt_path=ckpt_path)
    return trainer, cb, probe


@pytest.fixture(scope="module")
def run1(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("lightning") / "run1"
    trainer, cb, probe = fit(root, Model("linear", warmup=2))
    return {
        "root": root,
        "trainer": trainer,
        "cb": cb,
        "probe": probe,
        "rec": read_record(root / NORMS_FILENAME),
        "mem": cb.to_record("memory"),
    }


def test_one_row_per_optimizer_step_under_accumulation(run1: dict[str, Any]) -> None:
    rec, probe = run1["rec"], run1["probe"]
    assert run1["trainer"].global_step == STEPS
    assert probe.batches == STEPS * ACCUM  # two micro-batches per optimizer step...
    assert probe.before_step_calls == STEPS  # ...and one on_before_optimizer_step per step
    assert rec.steps.tolist() == list(range(STEPS)) and rec.kinds == ("l2", "l1")
    assert np.all(np.isfinite(rec.values["l2"])) and np.all(rec.values["l1"] > 0)


def test_norms_are_of_the_accumulated_unclipped_gradient(run1: dict[str, Any]) -> None:
    mem, probe = run1["mem"], run1["probe"]
    l2 = mem.values["l2"]
    assert (l2 > CLIP).sum() >= 3, "the test needs clipped steps"
    for t in range(STEPS):
        coef = min(1.0, CLIP / (l2[t] + 1e-6))
        assert probe.post_clip[t] == pytest.approx(l2[t] * coef, rel=1e-5)


def test_the_recorded_norm_is_the_accumulated_gradient(tmp_path: Path) -> None:
    # one step by hand: the mean of two micro-batch losses' gradients (Lightning divides each loss
    # by accumulate_grad_batches)
    _, cb, _ = fit(tmp_path, Model("constant"), max_steps=1, gradient_clip_val=None)
    model = Model("constant")
    batches = [b for _, b in zip(range(ACCUM), loader(), strict=False)]
    for x, y in batches:
        (model.training_step((x, y), 0) / ACCUM).backward()
    expect = grad_norms(model, ("l2", "l1")).numpy()
    got = cb.to_record("memory")
    np.testing.assert_allclose([got.values["l2"][0], got.values["l1"][0]], expect, rtol=1e-5)


def test_amp_gradients_are_recorded_unscaled(tmp_path: Path) -> None:
    # fp16 AMP with a GradScaler (on the CPU here): the callback sees the unscaled gradients
    from lightning.pytorch.plugins import MixedPrecision

    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    plugin = MixedPrecision("16-mixed", device="cpu", scaler=scaler)
    _, amp, _ = fit(
        tmp_path / "amp", Model("constant"), max_steps=3, plugins=[plugin], gradient_clip_val=None
    )
    _, ref, _ = fit(tmp_path / "fp32", Model("constant"), max_steps=3, gradient_clip_val=None)
    assert scaler.get_scale() == 1024.0  # no overflow: every step was taken
    np.testing.assert_allclose(
        amp.to_record("memory").values["l2"], ref.to_record("memory").values["l2"], rtol=1e-2
    )


def test_learning_rates_follow_the_schedule(run1: dict[str, Any]) -> None:
    sched = run1["trainer"].lr_scheduler_configs[0]
    assert isinstance(sched.scheduler, ScheduleLR)
    assert sched.interval == "step" and sched.frequency == 1
    # horizon: estimated_stepping_batches = max_steps (optimizer steps, after accumulation)
    expect = LR * get_schedule("linear", STEPS, warmup=2).preview()
    got = np.array([run1["probe"].lrs[t] for t in range(STEPS)])
    np.testing.assert_allclose(got, expect, rtol=1e-12)


def test_resume_keeps_record_and_schedule(run1: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "run1b"
    shutil.copytree(run1["root"], root)
    ckpt = root / "ckpt" / "epoch=0-step=8.ckpt"
    assert ckpt.exists(), sorted(p.name for p in (root / "ckpt").iterdir())
    saved = torch.load(ckpt, weights_only=False)["callbacks"]
    state = next(v for k, v in saved.items() if k.startswith("GradNormCallback"))
    assert state["step"] == 8  # the callback's state is in the checkpoint
    _, cb, probe = fit(root, Model("linear", warmup=2), ckpt_path=str(ckpt))
    assert sorted(probe.lrs) == list(range(8, STEPS))
    for t in range(8, STEPS):
        assert probe.lrs[t] == run1["probe"].lrs[t]
    rec = read_record(root / NORMS_FILENAME)
    assert rec.steps.tolist() == list(range(STEPS))  # each step exactly once
    np.testing.assert_array_equal(rec.values["l2"][:8], run1["rec"].values["l2"][:8])
    assert cb.to_record("memory").steps.tolist() == list(range(8, STEPS))


def test_refined_schedule_from_the_record(run1: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "refined.json"
    save_schedule(refine(run1["rec"], norm="l2", tau=0.2), path)
    horizon = 14
    _, _, probe = fit(tmp_path / "run2", Model("refined", path=path), max_steps=horizon)
    expect = LR * load_schedule(path, total_steps=horizon).preview()
    got = np.array([probe.lrs[t] for t in range(horizon)])
    np.testing.assert_allclose(got, expect, rtol=1e-12)


def test_config_needs_a_horizon() -> None:
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler_config(opt, "linear")
    cfg = lr_scheduler_config(opt, get_schedule("cosine", 10), total_steps=40, name=None)
    assert cfg["scheduler"].schedule.total_steps == 40 and "name" not in cfg


def test_checkpoint_with_other_kinds_is_refused() -> None:
    cb = GradNormCallback(kinds="l1")
    with pytest.raises(ValueError, match="kinds"):
        cb.load_state_dict({"version": 1, "step": 3, "kinds": ["l2"]})
    with pytest.raises(ValueError, match="kinds"):
        GradNormCallback(kinds=("l3",))


# ---------------------------------------------------------------------------------------------
# manual optimization (issue 11 §5b)


class TwoOptimizers(L.LightningModule):  # type: ignore[misc]
    """Manual optimization, two optimizers stepped once per batch (a GAN-like pattern);
    ``clip`` clips optimizer 0's gradients with ``self.clip_gradients`` before its step."""

    def __init__(self, clip: float | None = None, num_optimizers: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.automatic_optimization = False
        self.a = torch.nn.Linear(6, 1)
        self.b = torch.nn.Linear(6, 1)
        self.clip = clip
        self.num_optimizers = num_optimizers
        self.pre_clip: dict[int, list[float]] = {}  # per step of optimizer 0: [l2, l1]
        self.lrs: list[float] = []
        self.steps_a = 0

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        opt_a, opt_b = self.optimizers()
        sched_a = self.lr_schedulers()
        opt_a.zero_grad()
        self.manual_backward(torch.nn.functional.mse_loss(self.a(x), y) * 10.0)
        self.pre_clip[self.steps_a] = grad_norms(self.a, ("l2", "l1")).tolist()
        self.lrs.append(opt_a.param_groups[0]["lr"])
        if self.clip is not None:
            self.clip_gradients(opt_a, gradient_clip_val=self.clip, gradient_clip_algorithm="norm")
        opt_a.step()
        sched_a.step()
        self.steps_a += 1
        opt_b.zero_grad()
        self.manual_backward(torch.nn.functional.mse_loss(self.b(x), y))
        opt_b.step()

    def configure_optimizers(self) -> Any:
        opt_a = torch.optim.SGD(self.a.parameters(), lr=LR)
        opt_b = torch.optim.SGD(self.b.parameters(), lr=LR)
        cfg = lr_scheduler_config(
            opt_a, "linear", trainer=self.trainer, num_optimizers=self.num_optimizers
        )
        return [opt_a, opt_b], [cfg]


class StopAt(L.Callback):  # type: ignore[misc]
    """Stop the fit once global_step reaches ``step`` (an interrupted run)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def fit_manual(
    root: Path,
    model: Any,
    *,
    max_steps: int,
    ckpt_path: Any = None,
    callbacks: list[Any] | None = None,
    **kw: Any,
):
    cb = GradNormCallback(kinds=("l2", "l1"), keep_in_memory=True, flush_every=100)
    ckpt = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=root / "ckpt", every_n_train_steps=6, save_top_k=-1
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
        default_root_dir=str(root),
        callbacks=[cb, ckpt, *(callbacks or [])],
        **kw,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        trainer.fit(model, loader(), ckpt_path=ckpt_path)
    return trainer, cb


def test_manual_two_optimizers_resume_leaves_no_gap(tmp_path: Path) -> None:
    """global_step counts both optimizers (16 after 8 batches); the record counts optimizer 0's
    steps, and a resume from the checkpoint at global_step 6 (3 steps of optimizer 0) continues
    at 3: rows 0..7, each once."""
    full, _ = fit_manual(tmp_path / "full", TwoOptimizers(), max_steps=16)
    assert full.global_step == 16
    rec_full = read_record(tmp_path / "full" / NORMS_FILENAME)
    assert rec_full.steps.tolist() == list(range(8))
    root = tmp_path / "resumed"
    fit_manual(root, TwoOptimizers(), max_steps=16, callbacks=[StopAt(6)])  # after 3 batches
    ckpt = root / "ckpt" / "epoch=0-step=6.ckpt"
    assert ckpt.exists(), sorted(p.name for p in (root / "ckpt").iterdir())
    model = TwoOptimizers()
    _, cb = fit_manual(root, model, max_steps=16, ckpt_path=str(ckpt))
    rec = read_record(root / NORMS_FILENAME)
    assert rec.steps.tolist() == list(range(8))  # no gap (was 0..2 then 6..10)
    mem = cb.to_record("memory")
    assert mem.steps.tolist() == list(range(3, 8))
    # rows 0..2 from the interrupted run (the same as the uninterrupted run's), 3..7 resumed
    np.testing.assert_allclose(rec.values["l2"][:3], rec_full.values["l2"][:3], rtol=1e-6)
    np.testing.assert_allclose(rec.values["l2"][3:], mem.values["l2"], rtol=1e-6)
    # the horizon: 16 global steps = 8 steps of each optimizer (num_optimizers=2)
    assert full.lr_scheduler_configs[0].scheduler.schedule.total_steps == 8
    lrs = full.lightning_module.lrs
    np.testing.assert_allclose(lrs, LR * get_schedule("linear", 8).preview(), rtol=1e-12)


def test_manual_horizon_of_max_steps_warns(tmp_path: Path) -> None:
    with pytest.warns(RuntimeWarning, match="num_optimizers=2"):
        fit_manual(tmp_path, TwoOptimizers(num_optimizers=1), max_steps=4)


def test_manual_clip_gradients_records_pre_clip_norms(tmp_path: Path) -> None:
    """self.clip_gradients(...) before opt.step(): on_before_optimizer_step sees clipped
    gradients (every l2 would be the clip value); the callback records the norms before it."""
    clip = 0.05
    trainer, cb = fit_manual(tmp_path, TwoOptimizers(clip=clip), max_steps=12)
    model = trainer.lightning_module
    got = cb.to_record("memory")
    want = np.array([model.pre_clip[t] for t in range(6)])
    assert (want[:, 0] > clip).all(), "the test needs clipped steps"
    np.testing.assert_allclose(np.c_[got.values["l2"], got.values["l1"]], want, rtol=1e-6)
    assert "clip_gradients" not in vars(trainer.precision_plugin)  # unwrapped after fit


def test_manual_clip_under_amp_records_unscaled_pre_clip_norms(tmp_path: Path) -> None:
    from lightning.pytorch.plugins import MixedPrecision

    scaler = torch.amp.GradScaler("cpu", init_scale=16.0)
    plugin = MixedPrecision("16-mixed", device="cpu", scaler=scaler)
    trainer, cb = fit_manual(tmp_path, TwoOptimizers(clip=1e9), max_steps=6, plugins=[plugin])
    model = trainer.lightning_module
    got = cb.to_record("memory").values["l2"]
    # the module's probe saw the scaled gradients (before Lightning unscales in opt.step())
    scaled = np.array([model.pre_clip[t][0] for t in range(3)])
    assert scaler.get_scale() == 16.0  # no step was skipped: the scale stayed
    np.testing.assert_allclose(got, scaled / 16.0, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# update-direction norms (issue 12 §1)


class AdamModel(Model):
    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=LR, weight_decay=0.1)
        return {
            "optimizer": opt,
            "lr_scheduler": lr_scheduler_config(opt, "constant", trainer=self.trainer),
        }


class UpdateProbe(L.Callback):  # type: ignore[misc]
    """u = (p_old * (1 - lr * wd) - p_new) / lr of every step of the optimizer, by hooks."""

    def __init__(self) -> None:
        self.norms: list[tuple[float, float]] = []

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        opt = trainer.optimizers[0]
        before: dict[int, torch.Tensor] = {}

        def pre(o: Any, a: Any, k: Any) -> None:
            before.clear()
            before.update({id(p): p.detach().double().clone() for p in o.param_groups[0]["params"]})

        def post(o: Any, a: Any, k: Any) -> None:
            g = o.param_groups[0]
            lr, wd = float(g["lr"]), float(g["weight_decay"])
            u = torch.cat(
                [
                    ((before[id(p)] * (1 - lr * wd) - p.detach().double()) / lr).reshape(-1)
                    for p in g["params"]
                ]
            )
            self.norms.append((u.norm().item(), u.abs().sum().item()))

        opt.register_step_pre_hook(pre)
        opt.register_step_post_hook(post)


def test_callback_records_update_norms(tmp_path: Path) -> None:
    probe = UpdateProbe()
    cb = GradNormCallback(kinds=("l2", "update_l2", "update_l1"), keep_in_memory=True)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=6,
        accumulate_grad_batches=ACCUM,
        gradient_clip_val=CLIP,
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
        callbacks=[cb, probe],
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        trainer.fit(AdamModel(), loader())
    rec = read_record(tmp_path / NORMS_FILENAME)
    assert rec.kinds == ("l2", "update_l2", "update_l1") and rec.steps.tolist() == list(range(6))
    np.testing.assert_allclose(
        np.c_[rec.values["update_l2"], rec.values["update_l1"]], probe.norms, rtol=1e-5
    )
    assert (rec.values["l2"] > CLIP).any()  # the l2 column: pre-clip gradients, as before


def test_update_only_kinds_under_amp_keep_rows_aligned(tmp_path: Path) -> None:
    """fp16 AMP whose first steps overflow (the scaler skips them, optimizer.step() never
    runs): those rows are missing updates, and the later rows stay aligned with the steps."""
    from lightning.pytorch.plugins import MixedPrecision

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**30)  # overflows at first
    plugin = MixedPrecision("16-mixed", device="cpu", scaler=scaler)
    probe = UpdateProbe()
    cb = GradNormCallback(kinds="update_l2", keep_in_memory=True)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=6,
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
        callbacks=[cb, probe],
        plugins=[plugin],
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        trainer.fit(AdamModel(), loader())
    v = read_record(tmp_path / NORMS_FILENAME).values["update_l2"]
    skipped = int(np.isnan(v).sum())
    assert skipped >= 1 and np.isnan(v[:skipped]).all()  # the first steps were skipped
    assert len(v) == trainer.global_step  # one row per batch, taken or skipped
    np.testing.assert_allclose(v[skipped:], [n[0] for n in probe.norms], rtol=1e-4)


def test_update_kinds_refuse_sgd(tmp_path: Path) -> None:
    from refinedlr.pytorch.updates import UnsupportedOptimizerError

    cb = GradNormCallback(kinds=("update_l2",))
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[cb],
    )
    with pytest.raises(UnsupportedOptimizerError, match="SGD"):
        trainer.fit(Model(), loader())
