"""One training run of ``refinedlr bench deep``, written as a user of refinedlr would write it.

Every run uses only refinedlr's public API: the learning rate follows
:class:`refinedlr.pytorch.ScheduleLR` (stepped after every optimizer step) and the per-step
gradient norms go to a CSV record through :class:`refinedlr.pytorch.GradNormRecorder`:

* image task (SGD): ``recorder.attach(optimizer)`` records the l2 norm in a step pre-hook;
* LM task (AdamW): ``recorder.clip_grad_norm_(params, max_norm)`` records the pre-clip l2 and
  l1 norms and clips by the l2 norm (no clipping with ``clip=0``: ``recorder.record``).

The model is initialised from ``torch.manual_seed(seed)`` and the data order comes from a
generator seeded with ``seed`` (:mod:`refinedlr_bench.deep_data`), so for a given seed every
schedule and learning rate starts from the same weights and sees the same batches.

A run whose training loss becomes non-finite stops there and is marked ``diverged`` (its
selection metric is ``inf``).

Schedule-free runs (payload key ``"schedule_free_warmup"``: the warm-up in steps) use the ``schedulefree`` package
instead of an LR schedule: ``SGDScheduleFree`` (image task; its ``momentum`` is the interpolation
constant beta) or ``AdamWScheduleFree`` (LM task), with the package's own linear warm-up
(``warmup_steps``), ``optimizer.train()`` before training and ``optimizer.eval()`` before
evaluation, so every metric is measured at the averaged point ``x``. For the batch-norm CNN the
running statistics are then recomputed at ``x``, as the package's README says: 50 training
batches forward in train mode (without gradients), then eval mode.

Weight-EMA runs (payload key ``"ema_decay"``) train exactly like the scheduled run and keep an
exponential moving average of the weights with ``torch.optim.swa_utils``:
``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))``, updated after every
optimizer step. The metrics are those of the average (for the CNN after
``torch.optim.swa_utils.update_bn`` on the same 50 training batches); the last iterate's are kept
under ``"last_iterate"`` (the run is the scheduled run with the same LR and seed).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import schedulefree
import torch
from refinedlr.pytorch import GradNormRecorder, ScheduleLR
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from refinedlr_bench.deep_data import (
    CharData,
    ImageData,
    image_batches,
    lm_batches,
    prepare_chars,
    prepare_images,
    synthetic_images,
    synthetic_text,
    val_offsets,
)
from refinedlr_bench.deep_models import SmallCNN, TinyGPT, count_parameters, nats_to_bits

__all__ = [
    "DataSource",
    "ImageConfig",
    "LMConfig",
    "load_task_data",
    "run_payload",
    "train_image",
    "train_lm",
]

#: Changing the training code invalidates cached results through this tag.
TRAINER_VERSION = "deep-train-v1"

#: Number of points of the stored training-loss curve (block means).
CURVE_POINTS = 100

#: Training batches run forward in train mode at the averaged point before a schedule-free
#: CNN is evaluated (the ``schedulefree`` README's batch-norm recipe uses 50).
SF_BN_BATCHES = 50


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """Sizes of the image task: a batch-norm CNN on 28x28 images, SGD with momentum."""

    channels: tuple[int, ...] = (16, 32, 64)
    batch_size: int = 128
    steps: int = 800
    momentum: float = 0.9
    weight_decay: float = 5e-4
    train_size: int | None = None
    eval_train_size: int | None = 10_000
    eval_batch: int = 1000


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Sizes of the LM task: a character-level GPT-style decoder, AdamW."""

    n_layer: int = 3
    n_head: int = 4
    d_model: int = 64
    context: int = 64
    batch_size: int = 16
    steps: int = 1200
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    clip: float = 1.0
    val_fraction: float = 0.1
    val_windows: int = 2048
    eval_batch: int = 64


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where a task's data comes from: the refinedlr dataset cache (``cache_dir``), a user file or
    folder (``path``, passed to the loader's ``path=``), or a synthetic stand-in."""

    task: str
    path: str | None = None
    cache_dir: str | None = None
    synthetic: bool = False


def load_task_data(source: DataSource, config: ImageConfig | LMConfig) -> ImageData | CharData:
    """Load and prepare the data of ``source.task`` (raises the loader's ``DatasetNotCached``)."""
    if source.task == "image":
        assert isinstance(config, ImageConfig)
        if source.synthetic:
            arrays = synthetic_images(n_train=2000, n_test=500)
        else:
            from refinedlr_bench.data import load_fashion_mnist

            arrays = load_fashion_mnist(cache_dir=source.cache_dir, path=source.path)
        return prepare_images(
            *arrays, train_size=config.train_size, eval_train_size=config.eval_train_size
        )
    assert isinstance(config, LMConfig)
    if source.synthetic:
        text = synthetic_text(60_000)
    else:
        from refinedlr_bench.data import load_shakespeare

        text = load_shakespeare(cache_dir=source.cache_dir, path=source.path)
    return prepare_chars(text, config.val_fraction)


class _Curve:
    """Block means of the training loss (``CURVE_POINTS`` blocks over the horizon)."""

    def __init__(self, steps: int) -> None:
        self.every = max(1, math.ceil(steps / CURVE_POINTS))
        self.means: list[float] = []
        self._sum = 0.0
        self._n = 0
        self.last: list[float] = []
        self.tail = max(1, steps // 20)

    def add(self, v: float) -> None:
        self._sum += v
        self._n += 1
        self.last.append(v)
        if len(self.last) > self.tail:
            self.last.pop(0)
        if self._n == self.every:
            self.means.append(round(self._sum / self._n, 6))
            self._sum, self._n = 0.0, 0

    def doc(self) -> dict[str, Any]:
        return {"every": self.every, "train_loss": self.means}


def _optimize(
    batches: Iterable[Any],
    loss_of: Callable[[Any], torch.Tensor],
    opt: torch.optim.Optimizer,
    sched: ScheduleLR | None,
    curve: _Curve,
    after_backward: Callable[[], None] | None = None,
    after_step: Callable[[], None] | None = None,
) -> tuple[int, bool]:
    """One optimizer step per batch (backward, ``after_backward``, step, ``after_step``,
    schedule step) until a non-finite loss; returns ``(steps done, diverged)``. ``sched=None``:
    the optimizer sets its own learning rate (schedule-free)."""
    steps_done = 0
    for batch in batches:
        opt.zero_grad(set_to_none=True)
        loss = loss_of(batch)
        loss.backward()  # type: ignore[no-untyped-call]
        if after_backward is not None:
            after_backward()
        opt.step()
        if after_step is not None:
            after_step()
        if sched is not None:
            sched.step()
        v = loss.item()
        steps_done += 1
        if not math.isfinite(v):
            return steps_done, True
        curve.add(v)
    return steps_done, False


def _finish(
    t0: float, c0: float, steps_done: int, diverged: bool, curve: _Curve, metrics: dict[str, float]
) -> dict[str, Any]:
    return {
        "steps_done": steps_done,
        "diverged": diverged,
        "metrics": metrics,
        "curve": curve.doc(),
        "seconds": round(time.perf_counter() - t0, 3),
        "cpu_seconds": round(time.process_time() - c0, 3),
        "threads": torch.get_num_threads(),
        "load_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


@torch.no_grad()
def _eval_images(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int
) -> tuple[float, float]:
    model.eval()
    total, correct = 0.0, 0
    for i in range(0, x.shape[0], batch):
        logits = model(x[i : i + batch])
        yb = y[i : i + batch]
        total += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return total / x.shape[0], correct / x.shape[0]


def _ema(model: torch.nn.Module, decay: float | None) -> AveragedModel | None:
    """The weight EMA of ``model`` (``None`` without a decay)."""
    if decay is None:
        return None
    avg_fn = get_ema_multi_avg_fn(float(decay))  # type: ignore[no-untyped-call]
    return AveragedModel(model, multi_avg_fn=avg_fn)


@torch.no_grad()
def _recompute_batch_norm(model: torch.nn.Module, data: ImageData, batch: int, seed: int) -> None:
    """Batch-norm running statistics at the current weights: :data:`SF_BN_BATCHES` training
    batches (the first ones of the run's data order) forward in train mode, no gradients."""
    model.train()
    for idx in image_batches(data.n_train, batch, SF_BN_BATCHES, seed):
        model(data.x_train[idx])


def train_image(
    config: ImageConfig,
    data: ImageData,
    schedule: Mapping[str, Any],
    lr: float,
    seed: int,
    record_path: str | os.PathLike[str] | None,
    *,
    schedule_free_warmup: int | None = None,
    ema_decay: float | None = None,
) -> dict[str, Any]:
    """Train the CNN with SGD (momentum, weight decay) on ``schedule`` (a spec) at peak ``lr``.

    With ``ema_decay`` the metrics are those of the weight EMA (batch-norm statistics
    recomputed by ``update_bn`` on the first :data:`SF_BN_BATCHES` training batches); the last
    iterate's are under ``"last_iterate"``.

    With ``schedule_free_warmup`` (a step count) the optimizer is the package's
    ``SGDScheduleFree`` (beta = ``config.momentum``, the same weight decay) with that linear
    warm-up and no schedule (``schedule`` only documents the LR sequence); the model is evaluated
    at the averaged point with recomputed batch-norm statistics.

    Metrics: ``train_loss`` / ``train_acc`` on the fixed training subset ``data.eval_idx`` and
    ``test_loss`` / ``test_acc`` on the test set, all in eval mode after the last step.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    T = config.steps
    torch.manual_seed(seed)
    model = SmallCNN(config.channels, data.n_classes, image_size=int(data.x_train.shape[-1]))
    sf = schedule_free_warmup is not None
    opt: torch.optim.Optimizer
    sched: ScheduleLR | None
    if sf:
        opt = schedulefree.SGDScheduleFree(
            model.parameters(),
            lr=lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            warmup_steps=int(schedule_free_warmup or 0),
        )
        opt.train()  # type: ignore[attr-defined]
        sched = None
    else:
        opt = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        sched = ScheduleLR(opt, schedule)
    rec = GradNormRecorder(record_path, kinds=("l2",), flush_every=200, fsync=False)
    rec.attach(opt)
    curve = _Curve(T)
    ema = _ema(model, ema_decay)
    model.train()
    steps_done, diverged = _optimize(
        image_batches(data.n_train, config.batch_size, T, seed),
        lambda idx: F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]),
        opt,
        sched,
        curve,
        after_step=None if ema is None else lambda: ema.update_parameters(model),
    )
    rec.close()
    if diverged:
        metrics = {
            "train_loss": math.inf,
            "train_acc": math.nan,
            "test_loss": math.inf,
            "test_acc": math.nan,
        }
        last = None
    else:
        if sf:
            opt.eval()  # type: ignore[attr-defined]  # parameters at the averaged point x
            _recompute_batch_norm(model, data, config.batch_size, seed)
        metrics = last = _image_metrics(model, data, config)
        if ema is not None:
            bn = image_batches(data.n_train, config.batch_size, SF_BN_BATCHES, seed)
            update_bn((data.x_train[i] for i in bn), ema)
            metrics = _image_metrics(ema.module, data, config)
    out = _finish(t0, c0, steps_done, diverged, curve, metrics)
    out["parameters"] = count_parameters(model)
    if ema is not None:
        out["ema_decay"] = ema_decay
        out["last_iterate"] = last
    return out


def _image_metrics(
    model: torch.nn.Module, data: ImageData, config: ImageConfig
) -> dict[str, float]:
    """Loss and accuracy on the fixed training subset and on the test set (eval mode)."""
    idx = data.eval_idx
    tr_loss, tr_acc = _eval_images(model, data.x_train[idx], data.y_train[idx], config.eval_batch)
    te_loss, te_acc = _eval_images(model, data.x_test, data.y_test, config.eval_batch)
    return {"train_loss": tr_loss, "train_acc": tr_acc, "test_loss": te_loss, "test_acc": te_acc}


@torch.no_grad()
def eval_bits_per_char(
    model: torch.nn.Module, ids: torch.Tensor, context: int, n_windows: int, batch: int
) -> tuple[float, int]:
    """Mean next-character cross-entropy in bits over fixed windows of ``ids``, and the number
    of predicted characters (every position of every window counts)."""
    model.eval()
    offs = val_offsets(ids.numel(), context, n_windows)
    cols = torch.arange(context + 1)
    total, count = 0.0, 0
    for i in range(0, offs.numel(), batch):
        w = ids[offs[i : i + batch, None] + cols]
        logits = model(w[:, :-1])
        total += float(
            F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum"
            )
        )
        count += w[:, 1:].numel()
    return nats_to_bits(total / count), count


def train_lm(
    config: LMConfig,
    data: CharData,
    schedule: Mapping[str, Any],
    lr: float,
    seed: int,
    record_path: str | os.PathLike[str] | None,
    *,
    schedule_free_warmup: int | None = None,
    ema_decay: float | None = None,
) -> dict[str, Any]:
    """Train the GPT with AdamW (decoupled weight decay on matrices and embeddings only).

    With ``ema_decay`` ``val_bpc`` is that of the weight EMA (``train_bpc`` stays the training
    loss of the run); the last iterate's metrics are under ``"last_iterate"``.

    With ``schedule_free_warmup`` (a step count) the optimizer is the package's
    ``AdamWScheduleFree`` (the same parameter groups, betas, eps and weight decay) with that
    linear warm-up and no schedule; validation is measured at the averaged point.

    Metrics: ``val_bpc`` (bits per character on fixed validation windows, eval mode) and
    ``train_bpc`` (mean training loss of the last 5% of the steps, in bits; for schedule-free
    runs the loss at the gradient points y, not at the averaged point).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    T = config.steps
    torch.manual_seed(seed)
    model = TinyGPT(data.vocab_size, config.context, config.n_layer, config.n_head, config.d_model)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": other, "weight_decay": 0.0},
    ]
    sf = schedule_free_warmup is not None
    opt: torch.optim.Optimizer
    sched: ScheduleLR | None
    if sf:
        opt = schedulefree.AdamWScheduleFree(
            groups,
            lr=lr,
            betas=config.betas,
            eps=config.eps,
            warmup_steps=int(schedule_free_warmup or 0),
        )
        opt.train()  # type: ignore[attr-defined]
        sched = None
    else:
        opt = torch.optim.AdamW(groups, lr=lr, betas=config.betas, eps=config.eps)
        sched = ScheduleLR(opt, schedule)
    rec = GradNormRecorder(record_path, kinds=("l2", "l1"), flush_every=200, fsync=False)
    curve = _Curve(T)

    def record_and_clip() -> None:
        if config.clip > 0:
            rec.clip_grad_norm_(model.parameters(), max_norm=config.clip)
        else:
            rec.record(model.parameters())

    ema = _ema(model, ema_decay)
    model.train()
    steps_done, diverged = _optimize(
        lm_batches(data.train, config.context, config.batch_size, T, seed),
        lambda batch: model.loss(*batch),
        opt,
        sched,
        curve,
        after_backward=record_and_clip,
        after_step=None if ema is None else lambda: ema.update_parameters(model),
    )
    rec.close()
    last = None
    if diverged:
        metrics = {"val_bpc": math.inf, "train_bpc": math.inf}
        n_val = 0
    else:
        if sf:
            opt.eval()  # type: ignore[attr-defined]  # parameters at the averaged point x
        val_bpc, n_val = eval_bits_per_char(
            model, data.val, config.context, config.val_windows, config.eval_batch
        )
        metrics = last = {
            "val_bpc": val_bpc,
            "train_bpc": nats_to_bits(sum(curve.last) / len(curve.last)),
        }
        if ema is not None:
            ema_bpc, _ = eval_bits_per_char(
                ema.module,
                data.val,
                config.context,
                config.val_windows,
                config.eval_batch,
            )
            metrics = {**last, "val_bpc": ema_bpc}
    out = _finish(t0, c0, steps_done, diverged, curve, metrics)
    out["parameters"] = count_parameters(model)
    out["val_chars"] = n_val
    if ema is not None:
        out["ema_decay"] = ema_decay
        out["last_iterate"] = last
    return out


# ----------------------------------------------------------------------------------------------
# worker processes

_DATA: dict[str, ImageData | CharData] = {}


def _data_key(source: DataSource, config: ImageConfig | LMConfig) -> str:
    extra: tuple[object, ...]
    if isinstance(config, ImageConfig):
        extra = (config.train_size, config.eval_train_size)
    else:
        extra = (config.val_fraction,)
    return repr((dataclasses.astuple(source), extra))


def get_data(source: DataSource, config: ImageConfig | LMConfig) -> ImageData | CharData:
    """The task data, loaded once per process."""
    key = _data_key(source, config)
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = load_task_data(source, config)
    return _DATA[key]


def set_data(
    source: DataSource, config: ImageConfig | LMConfig, data: ImageData | CharData
) -> None:
    """Use ``data`` for ``source`` in this process (tests inject data this way)."""
    _DATA.clear()
    _DATA[_data_key(source, config)] = data


def init_worker(threads: int) -> None:
    """Process-pool initializer: torch threads of a worker."""
    torch.set_num_threads(max(1, int(threads)))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # pragma: no cover - already set in this process
        pass


def run_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job described by plain data (what the process pool sends to a worker)."""
    source = DataSource(**payload["source"])
    if payload["task"] == "image":
        config: ImageConfig | LMConfig = ImageConfig(
            **{**payload["config"], "channels": tuple(payload["config"]["channels"])}
        )
    else:
        config = LMConfig(**{**payload["config"], "betas": tuple(payload["config"]["betas"])})
    if payload.get("threads"):
        torch.set_num_threads(int(payload["threads"]))
    data = get_data(source, config)
    sf_warmup = payload.get("schedule_free_warmup")
    ema_decay = payload.get("ema_decay")
    if isinstance(config, ImageConfig):
        assert isinstance(data, ImageData)
        return train_image(
            config,
            data,
            payload["schedule"],
            payload["lr"],
            payload["seed"],
            payload["record"],
            schedule_free_warmup=sf_warmup,
            ema_decay=ema_decay,
        )
    assert isinstance(data, CharData)
    return train_lm(
        config,
        data,
        payload["schedule"],
        payload["lr"],
        payload["seed"],
        payload["record"],
        schedule_free_warmup=sf_warmup,
        ema_decay=ema_decay,
    )
