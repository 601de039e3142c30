"""One tiny training run per task: the loss falls, the recorder writes one row per step."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import torch
from refinedlr import get_schedule, read_record

from refinedlr_bench.deep_data import (
    prepare_chars,
    prepare_images,
    synthetic_images,
    synthetic_text,
)
from refinedlr_bench.deep_train import ImageConfig, LMConfig, train_image, train_lm

IMAGE = ImageConfig(channels=(4, 8), batch_size=32, steps=40, eval_train_size=200)
LM = LMConfig(n_layer=1, n_head=2, d_model=32, context=16, batch_size=8, steps=60, val_windows=32)


@pytest.fixture(scope="module")
def image_data():  # type: ignore[no-untyped-def]
    return prepare_images(*synthetic_images(400, 100), eval_train_size=IMAGE.eval_train_size)


@pytest.fixture(scope="module")
def char_data():  # type: ignore[no-untyped-def]
    return prepare_chars(synthetic_text(20_000), 0.1)


def test_image_run_learns_and_records(tmp_path: Path, image_data) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    spec = get_schedule("linear", IMAGE.steps, warmup=0.05).to_spec()
    rec = tmp_path / "norms.csv"
    out = train_image(IMAGE, image_data, spec, 0.05, 0, rec)
    assert out["steps_done"] == IMAGE.steps and not out["diverged"]
    curve = out["curve"]["train_loss"]
    assert curve[-1] < 0.7 * curve[0]
    assert out["metrics"]["train_loss"] < math.log(10)  # better than chance
    assert 0.0 <= out["metrics"]["test_acc"] <= 1.0
    r = read_record(rec)
    assert r.kinds == ("l2",)
    assert r.steps.tolist() == list(range(IMAGE.steps))  # one row per optimizer step
    assert np.all(np.isfinite(r.norms("l2"))) and np.all(r.norms("l2") > 0)
    again = train_image(IMAGE, image_data, spec, 0.05, 0, tmp_path / "again.csv")
    assert again["metrics"] == out["metrics"]  # same seed: same initialisation and data order
    np.testing.assert_array_equal(read_record(tmp_path / "again.csv").norms("l2"), r.norms("l2"))


def test_lm_run_learns_and_records(tmp_path: Path, char_data) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    spec = get_schedule("cosine", LM.steps, warmup=0.05).to_spec()
    rec = tmp_path / "norms.csv"
    out = train_lm(LM, char_data, spec, 0.01, 1, rec)
    assert out["steps_done"] == LM.steps and not out["diverged"]
    curve = out["curve"]["train_loss"]
    assert curve[-1] < curve[0] - 0.3
    start_bits = math.log2(char_data.vocab_size)
    assert out["metrics"]["val_bpc"] < start_bits - 0.3
    assert out["val_chars"] > 0
    r = read_record(rec)
    assert r.kinds == ("l2", "l1")
    assert len(r) == LM.steps
    assert np.all(r.norms("l1") > r.norms("l2"))  # l1 >= l2 for any vector (many entries)


def _sf_reference_image(config: ImageConfig, data, lr: float, seed: int, warmup: int):  # type: ignore[no-untyped-def]
    """The schedulefree README's recipe, written out here: train with SGDScheduleFree, then
    ``optimizer.eval()``, 50 training batches forward in train mode, eval mode; the model."""
    import schedulefree
    from torch.nn import functional as F

    from refinedlr_bench.deep_data import image_batches
    from refinedlr_bench.deep_models import SmallCNN

    torch.manual_seed(seed)
    model = SmallCNN(config.channels, data.n_classes, image_size=int(data.x_train.shape[-1]))
    opt = schedulefree.SGDScheduleFree(
        model.parameters(),
        lr=lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        warmup_steps=warmup,
    )
    model.train()
    opt.train()
    for idx in image_batches(data.n_train, config.batch_size, config.steps, seed):
        opt.zero_grad()
        F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
    opt.eval()
    with torch.no_grad():
        for idx in image_batches(data.n_train, config.batch_size, 50, seed):
            model(data.x_train[idx])
    model.eval()
    return model


def test_schedule_free_image_run_is_scored_at_the_averaged_point(
    tmp_path: Path, image_data
) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    spec = get_schedule("constant", IMAGE.steps, warmup=1).to_spec()  # documents the LR only
    out = train_image(IMAGE, image_data, spec, 0.2, 0, tmp_path / "sf.csv", schedule_free_warmup=2)
    assert out["steps_done"] == IMAGE.steps and not out["diverged"]
    assert len(read_record(tmp_path / "sf.csv")) == IMAGE.steps
    model = _sf_reference_image(IMAGE, image_data, 0.2, 0, 2)
    idx = image_data.eval_idx
    with torch.no_grad():
        ref = float(
            torch.nn.functional.cross_entropy(
                model(image_data.x_train[idx]), image_data.y_train[idx]
            )
        )
        # the same weights without the batch-norm recipe score differently (the recipe matters)
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
        model.eval()
        raw = float(
            torch.nn.functional.cross_entropy(
                model(image_data.x_train[idx]), image_data.y_train[idx]
            )
        )
    assert out["metrics"]["train_loss"] == pytest.approx(ref, rel=1e-5)
    assert abs(raw - ref) > 1e-3
    assert out["metrics"]["train_loss"] < math.log(10)


def test_schedule_free_lm_run_learns(tmp_path: Path, char_data) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    spec = get_schedule("constant", LM.steps, warmup=2).to_spec()
    out = train_lm(LM, char_data, spec, 0.01, 1, tmp_path / "sf.csv", schedule_free_warmup=3)
    assert out["steps_done"] == LM.steps and not out["diverged"]
    assert out["metrics"]["val_bpc"] < math.log2(char_data.vocab_size) - 0.3
    assert read_record(tmp_path / "sf.csv").kinds == ("l2", "l1")


def test_an_ema_run_is_the_scheduled_run_scored_at_its_weight_ema(
    tmp_path: Path, image_data
) -> None:  # type: ignore[no-untyped-def]
    """Issue 20's EMA arms: the run's trajectory (its last iterate and its record) is the
    scheduled run's, and its metrics are those of the torch.optim.swa_utils EMA of its weights
    (here with decay 0: the EMA is the last iterate, with batch-norm statistics from update_bn)."""
    torch.set_num_threads(1)
    spec = get_schedule("linear", IMAGE.steps, warmup=0.05).to_spec()
    plain = train_image(IMAGE, image_data, spec, 0.05, 1, tmp_path / "plain.csv")
    ema = train_image(IMAGE, image_data, spec, 0.05, 1, tmp_path / "ema.csv", ema_decay=0.8)
    assert ema["last_iterate"] == plain["metrics"] and ema["ema_decay"] == 0.8
    assert ema["metrics"] != plain["metrics"]
    same = read_record(tmp_path / "plain.csv").norms("l2")
    np.testing.assert_array_equal(read_record(tmp_path / "ema.csv").norms("l2"), same)
    zero = train_image(IMAGE, image_data, spec, 0.05, 1, tmp_path / "zero.csv", ema_decay=0.0)
    # the same weights; only the batch-norm statistics differ (update_bn's 50 batches)
    assert zero["metrics"]["train_acc"] == pytest.approx(plain["metrics"]["train_acc"], abs=0.05)


def test_an_lm_ema_run(tmp_path: Path, char_data) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    spec = get_schedule("cosine", LM.steps, warmup=0.05).to_spec()
    plain = train_lm(LM, char_data, spec, 0.01, 0, tmp_path / "plain.csv")
    ema = train_lm(LM, char_data, spec, 0.01, 0, tmp_path / "ema.csv", ema_decay=0.9)
    assert ema["last_iterate"] == plain["metrics"]
    assert ema["metrics"]["train_bpc"] == plain["metrics"]["train_bpc"]
    assert ema["metrics"]["val_bpc"] != plain["metrics"]["val_bpc"]
    zero = train_lm(LM, char_data, spec, 0.01, 0, tmp_path / "zero.csv", ema_decay=0.0)
    assert zero["metrics"] == plain["metrics"]  # decay 0: the EMA is the last iterate
