"""Hugging Face Trainer: recording pre-clip norms, refinement from the Trainer's files, schedules,
resume. One tiny GPT-2 built from a config (no Hub), trained on synthetic tokens on the CPU."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate", reason="the transformers integration needs accelerate")
transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'refinedlr[transformers]')"
)

from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from refinedlr import get_schedule, read_record, refine  # noqa: E402
from refinedlr.integrations.transformers import (  # noqa: E402
    NORMS_FILENAME,
    GradNormCallback,
    make_scheduler,
    record_grad_norms,
    use_schedule,
)
from refinedlr.pytorch import ScheduleLR, ScheduleMismatchError, grad_norms  # noqa: E402
from refinedlr.schedule_io import load_schedule  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """One intra-op thread: these models are tiny, and on a shared 2-core machine a second
    OpenMP thread makes each step ~15x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


LR = 2e-3
STEPS = 24
ACCUM = 2
BATCH = 4
SEQ = 16
VOCAB = 64


class Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
    """Synthetic sequences with a learnable pattern (next token = token + 1 mod VOCAB, noisy)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, VOCAB, (n, 1), generator=g)
        seq = (start + torch.arange(SEQ)) % VOCAB
        noise = torch.rand(n, SEQ, generator=g) < 0.2
        self.ids = torch.where(noise, torch.randint(0, VOCAB, (n, SEQ), generator=g), seq)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def tiny_model() -> Any:
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=32)
    return GPT2LMHeadModel(cfg)


def make_args(out: Path, **kw: Any) -> Any:
    base: dict[str, Any] = dict(
        output_dir=str(out),
        max_steps=STEPS,
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=ACCUM,
        learning_rate=LR,
        warmup_steps=3,
        logging_steps=5,
        max_grad_norm=1.0,
        save_strategy="steps",
        save_steps=12,
        report_to=[],
        use_cpu=True,
        seed=0,
        data_seed=0,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    base.update(kw)
    return TrainingArguments(**base)


class Probe(TrainerCallback):  # type: ignore[misc]
    """The LR of every optimizer step and the norms of the gradients the optimizer steps with
    (after clipping): a step pre-hook on the torch optimizer (every transformers version)."""

    def __init__(self) -> None:
        self.lrs: dict[int, float] = {}
        self.post_clip: dict[int, tuple[float, float]] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        opt = kw["optimizer"]
        while hasattr(opt, "optimizer"):  # accelerate's AcceleratedOptimizer
            opt = opt.optimizer

        def hook(o: Any, a: Any, k: Any) -> None:
            t = state.global_step
            self.lrs[t] = o.param_groups[0]["lr"]
            n = grad_norms(o, ("l2", "l1"))
            self.post_clip[t] = (float(n[0]), float(n[1]))

        self._handle = opt.register_step_pre_hook(hook)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._handle.remove()


def train(
    out: Path,
    *,
    schedule: tuple[Any, dict[str, Any]] | None = (None, {}),
    resume: Any = None,
    kinds: tuple[str, ...] = ("l2", "l1"),
    **kw: Any,
) -> tuple[Any, GradNormCallback, Probe]:
    trainer = Trainer(model=tiny_model(), args=make_args(out, **kw), train_dataset=Tokens(256))
    if schedule is not None:
        use_schedule(trainer, schedule[0], **schedule[1])
    cb = record_grad_norms(trainer, kinds=kinds, keep_in_memory=True, flush_every=7)
    probe = Probe()
    trainer.add_callback(probe)
    trainer.train(resume_from_checkpoint=resume)
    return trainer, cb, probe


@pytest.fixture(scope="module")
def run1(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("hf") / "run1"
    trainer, cb, probe = train(out)
    rec = read_record(out / NORMS_FILENAME)
    return {
        "out": out,
        "trainer": trainer,
        "cb": cb,
        "probe": probe,
        "rec": rec,
        "mem": cb.to_record("memory"),
        "log": list(trainer.state.log_history),
    }


def test_one_row_per_optimizer_step(run1: dict[str, Any]) -> None:
    rec = run1["rec"]
    assert rec.kinds == ("l2", "l1")
    assert rec.steps.tolist() == list(range(STEPS))  # not STEPS * ACCUM rows
    for k in rec.kinds:
        v = rec.values[k]
        assert np.all(np.isfinite(v)) and np.all(v > 0)
    assert run1["trainer"].state.global_step == STEPS


def test_l2_equals_the_trainers_logged_grad_norm(run1: dict[str, Any]) -> None:
    logged = [(e["step"], e["grad_norm"]) for e in run1["log"] if "grad_norm" in e]
    assert [s for s, _ in logged] == [5, 10, 15, 20]  # logging_steps=5
    mem, rec = run1["mem"], run1["rec"]
    for s, g in logged:
        assert mem.values["l2"][s - 1] == g  # exactly the value the Trainer computed
        assert np.float32(rec.values["l2"][s - 1]) == np.float32(g)  # the file: float32-exact
    # the state file on disk says the same
    state = json.loads((run1["out"] / "checkpoint-24" / "trainer_state.json").read_text())
    on_disk = {e["step"]: e["grad_norm"] for e in state["log_history"] if "grad_norm" in e}
    assert on_disk == dict(logged)


def test_norms_are_pre_clip(run1: dict[str, Any]) -> None:
    mem, probe = run1["mem"], run1["probe"]
    l2, l1 = mem.values["l2"], mem.values["l1"]
    clipped = [t for t in range(STEPS) if l2[t] > 1.0]
    assert clipped, "the test needs steps whose norm exceeds max_grad_norm"
    for t in range(STEPS):
        post_l2, post_l1 = probe.post_clip[t]
        coef = min(1.0, 1.0 / (l2[t] + 1e-6))
        assert post_l2 == pytest.approx(l2[t] * coef, rel=1e-5)
        assert post_l1 == pytest.approx(l1[t] * coef, rel=1e-5)
        if t in clipped:
            assert post_l2 < l2[t] and post_l1 < l1[t]


def test_learning_rates_follow_the_training_arguments(run1: dict[str, Any]) -> None:
    sched = run1["trainer"].lr_scheduler
    assert isinstance(sched, ScheduleLR)
    # lr_scheduler_type "linear" and warmup_steps=3 from the TrainingArguments, horizon max_steps
    expect = LR * get_schedule("linear", STEPS, warmup=3).preview()
    got = np.array([run1["probe"].lrs[t] for t in range(STEPS)])
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    assert got[0] > 0  # refinedlr's warm-up never starts at zero


def test_refine_cli_on_trainer_state_and_on_the_record(
    run1: dict[str, Any], tmp_path: Path
) -> None:
    from refinedlr.cli import main

    state = run1["out"] / "checkpoint-24" / "trainer_state.json"
    out = tmp_path / "from_state.json"
    assert main(["refine", str(state), "-o", str(out), "--tau", "0.2"]) == 0
    doc = json.loads(out.read_text())
    assert doc["spec"]["name"] == "tabulated"
    # the Trainer logs a sample every logging_steps: HF step 20 is 0-based step 19
    assert doc["spec"]["total_steps"] == 20
    assert doc["spec"]["provenance"]["kind"] == "l2"
    # the dense record of the callback, l1 for AdamW, through the installed command
    out2 = tmp_path / "from_record.json"
    exe = Path(sys.executable).with_name("refinedlr")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "refinedlr.cli"]
    subprocess.run(
        [*cmd, "refine", str(run1["out"] / NORMS_FILENAME), "--norm", "l1", "-o", str(out2)],
        check=True,
        capture_output=True,
        text=True,
    )
    spec = json.loads(out2.read_text())["spec"]
    assert spec["total_steps"] == STEPS and spec["provenance"]["kind"] == "l1"
    expect = refine(run1["rec"], norm="l1", tau=0.1).preview()
    np.testing.assert_allclose(spec["values"], expect, rtol=1e-9)


def test_second_run_on_the_refined_schedule(run1: dict[str, Any], tmp_path: Path) -> None:
    sched_path = tmp_path / "refined.json"
    from refinedlr import save_schedule

    save_schedule(refine(run1["rec"], norm="l1", tau=0.2), sched_path)
    horizon = 30  # another horizon: the table is resampled
    _trainer, _cb, probe = train(
        tmp_path / "run2",
        schedule=("refined", {"path": sched_path}),
        max_steps=horizon,
        warmup_steps=0,
        save_strategy="no",
        kinds=("l1",),
    )
    expect = LR * load_schedule(sched_path, total_steps=horizon).preview()
    got = np.array([probe.lrs[t] for t in range(horizon)])
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    assert got[-1] == 0.0  # a refined schedule ends at zero
    rec = read_record(tmp_path / "run2" / NORMS_FILENAME)
    assert rec.kinds == ("l1",) and rec.steps.tolist() == list(range(horizon))


def test_resume_continues_schedule_and_record(run1: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "run1b"
    shutil.copytree(run1["out"], out)
    before = read_record(out / NORMS_FILENAME)
    assert before.steps.tolist() == list(range(STEPS))
    _trainer, cb, probe = train(out, resume=str(out / "checkpoint-12"))
    assert sorted(probe.lrs) == list(range(12, STEPS))  # only the steps after the checkpoint ran
    for t in range(12, STEPS):
        assert probe.lrs[t] == run1["probe"].lrs[t]
    rec = read_record(out / NORMS_FILENAME)
    assert rec.steps.tolist() == list(range(STEPS))  # each step exactly once
    np.testing.assert_array_equal(rec.values["l2"][:12], before.values["l2"][:12])
    # the resumed steps were recorded by this run (same data order and state: same norms)
    np.testing.assert_allclose(rec.values["l2"][12:], run1["rec"].values["l2"][12:], rtol=1e-4)
    assert cb.to_record("memory").steps.tolist() == list(range(12, STEPS))


def test_resume_with_another_horizon_is_an_error(run1: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "run1c"
    shutil.copytree(run1["out"] / "checkpoint-12", out / "checkpoint-12")
    with pytest.raises(ScheduleMismatchError, match="horizon 24 -> 30"):
        train(out, resume=str(out / "checkpoint-12"), max_steps=30)


def test_no_clipping_still_records_every_step(tmp_path: Path) -> None:
    # max_grad_norm=0: no clipping; the gradients the optimizer sees are the recorded ones
    trainer, cb, probe = train(
        tmp_path / "noclip", max_grad_norm=0.0, max_steps=6, save_strategy="no", logging_steps=2
    )
    mem = cb.to_record("memory")
    assert mem.steps.tolist() == list(range(6))
    for t in range(6):
        assert mem.values["l2"][t] == pytest.approx(probe.post_clip[t][0], rel=1e-6)
        assert mem.values["l1"][t] == pytest.approx(probe.post_clip[t][1], rel=1e-6)
    logged = [(e["step"], e["grad_norm"]) for e in trainer.state.log_history if "grad_norm" in e]
    # recent transformers log the unclipped norm too (older ones log none without clipping)
    assert all(mem.values["l2"][s - 1] == g for s, g in logged)


def test_step_hook_records_when_the_trainer_computes_no_norm(tmp_path: Path) -> None:
    # older transformers compute no norm without clipping; simulate that on recent versions
    trainer = Trainer(
        model=tiny_model(),
        args=make_args(tmp_path, max_grad_norm=0.0, max_steps=4, save_strategy="no"),
        train_dataset=Tokens(64),
    )
    if hasattr(trainer, "_get_grad_norm"):
        trainer._get_grad_norm = lambda model, grad_norm=None: grad_norm
    cb = record_grad_norms(trainer, kinds=("l2", "l1"), keep_in_memory=True)
    probe = Probe()
    trainer.add_callback(probe)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "no gradient norm" warning
        trainer.train()
    mem = cb.to_record("memory")
    assert mem.steps.tolist() == list(range(4))
    for t in range(4):
        np.testing.assert_allclose(
            [mem.values["l2"][t], mem.values["l1"][t]], probe.post_clip[t], rtol=1e-6
        )


def test_scaled_gradients_path_undoes_the_clip() -> None:
    """With an fp16 GradScaler (not available on CPU) l1 comes from the clipped gradients."""
    p = torch.nn.Parameter(torch.zeros(3))

    class FakeAccelerator:
        scaler = object()
        distributed_type = "NO"

        def clip_grad_norm_(self, parameters: Any, max_norm: float, norm_type: float = 2) -> Any:
            return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type)

    from refinedlr.integrations.transformers import _pre_clip_norms

    acc = FakeAccelerator()
    p.grad = torch.tensor([3.0, -4.0, 12.0])  # l2 13, l1 19
    total, values = _pre_clip_norms(acc, acc.clip_grad_norm_, [p], ("l2", "l1"), 1.0, 2.0)
    assert float(total) == 13.0
    np.testing.assert_allclose([float(values["l2"]), float(values["l1"])], [13.0, 19.0], rtol=1e-6)
    assert float(p.grad.norm()) == pytest.approx(1.0, rel=1e-5)  # it did clip


def test_make_scheduler_and_optimizers_tuple(tmp_path: Path) -> None:
    model = tiny_model()
    # a warm-up ratio: warmup_steps=0.2 in transformers 5, warmup_ratio=0.2 in 4.x
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    ratio = (
        {"warmup_ratio": 0.2, "warmup_steps": 0}
        if "warmup_ratio" in fields
        else {"warmup_steps": 0.2}
    )
    args = make_args(
        tmp_path, max_steps=10, lr_scheduler_type="cosine", save_strategy="no", **ratio
    )
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    sched = make_scheduler(args, opt)  # lr_scheduler_type and warm-up ratio from the arguments
    assert sched.schedule == get_schedule("cosine", 10, warmup=2)
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(64), optimizers=(opt, sched))
    probe = Probe()
    trainer.add_callback(probe)
    trainer.train()
    got = np.array([probe.lrs[t] for t in range(10)])
    np.testing.assert_allclose(got, LR * get_schedule("cosine", 10, warmup=2).preview(), rtol=1e-12)
    with pytest.raises(ValueError, match="max_steps"):
        make_scheduler(make_args(tmp_path, max_steps=-1, num_train_epochs=1), opt)
    with pytest.raises(ValueError, match="was given a scheduler"):
        use_schedule(trainer, "linear")


def test_epoch_based_horizon_comes_from_the_trainer(tmp_path: Path) -> None:
    # 64 samples, batch 4, accumulation 2: 8 optimizer steps per epoch, 2 epochs
    args = make_args(tmp_path, max_steps=-1, num_train_epochs=2, warmup_steps=0, save_strategy="no")
    trainer = Trainer(model=tiny_model(), args=args, train_dataset=Tokens(64))
    use_schedule(trainer, "linear")
    trainer.train()
    assert trainer.lr_scheduler.schedule.total_steps == 16 == trainer.state.global_step


def test_unbound_callback_says_how_to_bind(tmp_path: Path) -> None:
    trainer = Trainer(
        model=tiny_model(),
        args=make_args(tmp_path, max_steps=2, save_strategy="no"),
        train_dataset=Tokens(32),
        callbacks=[GradNormCallback()],
    )
    with pytest.raises(RuntimeError, match="record_grad_norms"):
        trainer.train()


def test_accelerator_is_restored_after_training(run1: dict[str, Any]) -> None:
    acc = run1["trainer"].accelerator
    assert "clip_grad_norm_" not in acc.__dict__
    assert not math.isnan(float(acc.clip_grad_norm_(run1["trainer"].model.parameters(), 1e9)))


def test_scheduler_kwargs_from_the_arguments(tmp_path: Path) -> None:
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    args = make_args(
        tmp_path,
        max_steps=20,
        warmup_steps=0,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": 0.1},
    )
    assert make_scheduler(args, opt).schedule == get_schedule("cosine", 20, floor=0.1)
    # explicit arguments win over the TrainingArguments
    sched = make_scheduler(args, opt, "linear", warmup=4, num_training_steps=50).schedule
    assert sched == get_schedule("linear", 50, warmup=4)
    # a Schedule object is put on the horizon
    refined = refine(np.r_[4.0, 3, 2, 2, 2, 2, 2, 1.5])
    assert make_scheduler(args, opt, refined).schedule.total_steps == 20


class UpdateProbe(TrainerCallback):  # type: ignore[misc]
    """The true update direction of every step: u = (p_old * (1 - lr * wd) - p_new) / lr (AdamW's
    decoupled weight decay taken out), from hooks around the torch optimizer's step."""

    def __init__(self) -> None:
        self.norms: dict[int, tuple[float, float]] = {}
        self.kind = ""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        opt = kw["optimizer"]
        while hasattr(opt, "optimizer"):
            opt = opt.optimizer
        self.kind = type(opt).__name__
        before: dict[int, torch.Tensor] = {}

        def pre(o: Any, a: Any, k: Any) -> None:
            before.clear()
            for g in o.param_groups:
                for p in g["params"]:
                    if p.grad is not None:
                        before[id(p)] = p.detach().double().clone()

        def post(o: Any, a: Any, k: Any) -> None:
            parts = []
            for g in o.param_groups:
                lr, wd = float(g["lr"]), float(g["weight_decay"])
                for p in g["params"]:
                    if id(p) in before:
                        old = before[id(p)]
                        parts.append(((old * (1 - lr * wd) - p.detach().double()) / lr).reshape(-1))
            u = torch.cat(parts)
            self.norms[state.global_step] = (u.norm().item(), u.abs().sum().item())

        self._handles = [opt.register_step_pre_hook(pre), opt.register_step_post_hook(post)]

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        for h in self._handles:
            h.remove()


def test_update_norms_of_the_trainers_adamw(tmp_path: Path) -> None:
    """Issue 12 §1: record_grad_norms(trainer, kinds=(..., "update_l2", "update_l1")) records the
    norms of AdamW's update direction, equal to the parameters' change / lr of every step."""
    trainer = Trainer(
        model=tiny_model(),
        args=make_args(
            tmp_path, max_steps=8, weight_decay=0.05, warmup_steps=0, save_strategy="no"
        ),
        train_dataset=Tokens(256),
    )
    cb = record_grad_norms(trainer, kinds=("update_l2", "l2", "update_l1"), keep_in_memory=True)
    probe = UpdateProbe()
    trainer.add_callback(probe)
    trainer.train()
    assert probe.kind in ("AdamW", "Adam")
    rec = read_record(tmp_path / NORMS_FILENAME)
    assert rec.kinds == ("update_l2", "l2", "update_l1") and rec.steps.tolist() == list(range(8))
    want = np.array([probe.norms[t] for t in range(8)])
    got = np.c_[rec.values["update_l2"], rec.values["update_l1"]]
    np.testing.assert_allclose(got, want, rtol=1e-5)  # float32 parameters: the change is rounded
    assert np.all(np.isfinite(rec.values["l2"]))
    mem = cb.to_record("memory")
    np.testing.assert_allclose(mem.values["update_l2"], want[:, 0], rtol=1e-5)


def test_update_kinds_need_an_adam_type_optimizer(tmp_path: Path) -> None:
    from refinedlr.pytorch.updates import UnsupportedOptimizerError

    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
    trainer = Trainer(
        model=model,
        args=make_args(tmp_path, max_steps=2, save_strategy="no"),
        train_dataset=Tokens(64),
        optimizers=(opt, sched),
    )
    record_grad_norms(trainer, kinds=("l2", "update_l2"))
    with pytest.raises(UnsupportedOptimizerError, match="SGD"):
        trainer.train()
