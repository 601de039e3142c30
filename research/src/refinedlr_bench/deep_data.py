"""Data of ``refinedlr bench deep``: tensors, seeded batch streams, fixed evaluation samples.

Images (Fashion-MNIST or any 28x28 grey-scale set in the same idx format):
:func:`prepare_images` scales uint8 pixels to ``[0, 1]`` and standardises them with the training
set's mean and standard deviation; :func:`image_batches` yields the indices of each optimizer step
(a fresh permutation of the training set per epoch, from a generator seeded by the run's seed, so
every schedule sees the same images in the same order for a given seed).

Text (character level): :func:`encode_text` maps each distinct character to an id (sorted order);
:func:`split_ids` keeps the first ``1 - val_fraction`` of the text for training and the rest for
validation; :func:`lm_batches` draws ``batch`` random windows of ``context + 1`` characters per
step (seeded); :func:`val_offsets` fixes evenly spaced windows that cover the validation text.

Synthetic stand-ins (:func:`synthetic_images`, :func:`synthetic_text`) let the tests and CI run
the whole pipeline without the real datasets.

Example:
    >>> vocab, ids = encode_text("abcab")
    >>> vocab, ids.tolist()
    ('abc', [0, 1, 2, 0, 1])
    >>> [b.tolist() for b in image_batches(5, 2, 4, seed=0)] == [
    ...     b.tolist() for b in image_batches(5, 2, 4, seed=0)]
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import torch

__all__ = [
    "CharData",
    "ImageData",
    "encode_text",
    "image_batches",
    "lm_batches",
    "prepare_chars",
    "prepare_images",
    "split_ids",
    "synthetic_images",
    "synthetic_text",
    "val_offsets",
]

U8 = npt.NDArray[np.uint8]


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        arr = np.ascontiguousarray(a)
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# images


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
    """Standardised image tensors (``[N, 1, H, W]`` float32) and int64 labels.

    ``eval_idx``: the fixed subset of the training set on which the final training loss is
    measured (in eval mode). ``fingerprint`` hashes the raw arrays and the subset.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    eval_idx: torch.Tensor
    n_classes: int
    fingerprint: str

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])


def prepare_images(
    x_train: U8,
    y_train: npt.ArrayLike,
    x_test: U8,
    y_test: npt.ArrayLike,
    *,
    train_size: int | None = None,
    eval_train_size: int | None = None,
) -> ImageData:
    """Tensors for training: pixels / 255, standardised with the training pixels' mean and sd.

    ``train_size``: keep only the first ``train_size`` training images (``None``: all).
    ``eval_train_size``: size of the fixed training subset for the final training loss (drawn
    with seed 0 without replacement; ``None`` or at least the training size: all of it).

    >>> x = np.zeros((6, 4, 4), np.uint8); x[::2] = 255
    >>> d = prepare_images(x, np.arange(6) % 2, x[:2], [0, 1], eval_train_size=4)
    >>> tuple(d.x_train.shape), round(float(d.x_train.mean()), 6), d.eval_idx.numel()
    ((6, 1, 4, 4), 0.0, 4)
    """
    xtr = np.asarray(x_train)
    ytr = np.asarray(y_train)
    if train_size is not None:
        xtr, ytr = xtr[:train_size], ytr[:train_size]
    xte, yte = np.asarray(x_test), np.asarray(y_test)
    ftr = xtr.astype(np.float32) / 255.0
    mean = float(ftr.mean())
    sd = float(ftr.std()) or 1.0
    fte = (xte.astype(np.float32) / 255.0 - mean) / sd
    ftr = (ftr - mean) / sd
    n = ftr.shape[0]
    if eval_train_size is None or eval_train_size >= n:
        eval_idx = torch.arange(n)
    else:
        g = torch.Generator().manual_seed(0)
        eval_idx = torch.randperm(n, generator=g)[:eval_train_size].sort().values
    n_classes = int(max(ytr.max(), yte.max())) + 1
    return ImageData(
        x_train=torch.from_numpy(ftr).unsqueeze(1),
        y_train=torch.from_numpy(ytr.astype(np.int64)),
        x_test=torch.from_numpy(fte).unsqueeze(1),
        y_test=torch.from_numpy(yte.astype(np.int64)),
        eval_idx=eval_idx,
        n_classes=n_classes,
        fingerprint=_fingerprint(xtr, ytr, xte, yte, eval_idx.numpy()),
    )


def image_batches(n: int, batch_size: int, steps: int, seed: int) -> Iterator[torch.Tensor]:
    """Index tensors for ``steps`` optimizer steps of ``batch_size`` examples out of ``n``.

    Epochs are consecutive random permutations of ``range(n)`` from a ``torch.Generator`` seeded
    with ``seed``; a batch that would straddle two epochs is taken whole from the next one (the
    tail of each permutation, ``n % batch_size`` examples, is skipped).

    >>> sorted(torch.cat(list(image_batches(6, 3, 2, seed=5))).tolist())
    [0, 1, 2, 3, 4, 5]
    """
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
    g = torch.Generator().manual_seed(int(seed))
    per_epoch = n // batch_size
    done = 0
    while done < steps:
        perm = torch.randperm(n, generator=g)
        for i in range(min(per_epoch, steps - done)):
            yield perm[i * batch_size : (i + 1) * batch_size]
        done += min(per_epoch, steps - done)


def synthetic_images(
    n_train: int = 2000, n_test: int = 500, n_classes: int = 10, size: int = 28, seed: int = 0
) -> tuple[U8, U8, U8, U8]:
    """A learnable stand-in for Fashion-MNIST: noisy, randomly shifted class templates (uint8).

    >>> xtr, ytr, xte, yte = synthetic_images(20, 10)
    >>> xtr.shape, xtr.dtype, bool(ytr.max() < 10)
    ((20, 28, 28), dtype('uint8'), True)
    """
    rng = np.random.default_rng(seed)
    templates = rng.uniform(0, 255, size=(n_classes, size, size))

    def make(n: int) -> tuple[U8, U8]:
        y = rng.integers(0, n_classes, size=n)
        x = templates[y] * 0.6 + rng.uniform(0, 255, size=(n, size, size)) * 0.4
        shifts = rng.integers(-2, 3, size=(n, 2))
        for i in range(n):
            x[i] = np.roll(x[i], tuple(shifts[i]), axis=(0, 1))
        return x.clip(0, 255).astype(np.uint8), y.astype(np.uint8)

    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    return xtr, ytr, xte, yte


# ----------------------------------------------------------------------------------------------
# text


def encode_text(text: str) -> tuple[str, npt.NDArray[np.int64]]:
    """``(vocabulary, ids)``: the distinct characters in sorted order and the text as their ids."""
    vocab = "".join(sorted(set(text)))
    if len(vocab) <= 255 and all(ord(c) < 256 for c in vocab):
        table = np.zeros(256, dtype=np.int64)
        table[[ord(c) for c in vocab]] = np.arange(len(vocab))
        raw = np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
        return vocab, table[raw]
    index = {c: i for i, c in enumerate(vocab)}
    return vocab, np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))


def split_ids(
    ids: npt.NDArray[np.int64], val_fraction: float = 0.1
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The first ``1 - val_fraction`` of the ids (training) and the rest (validation).

    >>> tr, va = split_ids(np.arange(10), 0.2)
    >>> tr.tolist(), va.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = len(ids) - round(val_fraction * len(ids))
    return ids[:cut], ids[cut:]


@dataclasses.dataclass(frozen=True, eq=False)
class CharData:
    """A character-level corpus split into training and validation ids (int64 tensors)."""

    vocab: str
    train: torch.Tensor
    val: torch.Tensor
    fingerprint: str

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


def prepare_chars(text: str, val_fraction: float = 0.1) -> CharData:
    """Encode ``text`` and split it: the last ``val_fraction`` of the characters is validation.

    >>> d = prepare_chars("hello world" * 10, 0.1)
    >>> d.vocab_size, d.train.numel(), d.val.numel()
    (8, 99, 11)
    """
    vocab, ids = encode_text(text)
    tr, va = split_ids(ids, val_fraction)
    return CharData(
        vocab=vocab,
        train=torch.from_numpy(np.ascontiguousarray(tr)),
        val=torch.from_numpy(np.ascontiguousarray(va)),
        fingerprint=_fingerprint(np.frombuffer(vocab.encode("utf-8"), np.uint8), ids)
        + f"-{val_fraction}",
    )


def lm_batches(
    ids: torch.Tensor, context: int, batch_size: int, steps: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, targets)`` pairs ``[batch_size, context]`` for ``steps`` steps.

    Each row is a window at a uniformly random offset (``torch.Generator`` seeded with ``seed``);
    targets are the inputs shifted by one character.

    >>> ids = torch.arange(50)
    >>> x, y = next(lm_batches(ids, 8, 2, 1, seed=0))
    >>> bool(torch.equal(x[:, 1:], y[:, :-1])), tuple(x.shape)
    (True, (2, 8))
    """
    n = ids.numel() - context - 1
    if n < 1:
        raise ValueError(f"the text ({ids.numel()} characters) is shorter than the context + 1")
    g = torch.Generator().manual_seed(int(seed))
    cols = torch.arange(context + 1)
    for _ in range(steps):
        offsets = torch.randint(0, n + 1, (batch_size,), generator=g)
        chunk = ids[offsets[:, None] + cols]
        yield chunk[:, :-1], chunk[:, 1:]


def val_offsets(n_ids: int, context: int, n_windows: int) -> torch.Tensor:
    """Start offsets of ``n_windows`` windows of ``context + 1`` ids, evenly spaced over the
    validation text (fewer, non-overlapping ones when it is too short).

    >>> val_offsets(100, 9, 3).tolist()
    [0, 45, 90]
    >>> val_offsets(25, 9, 5).tolist()
    [0, 15]
    """
    last = n_ids - context - 1
    if last < 0:
        raise ValueError(f"the validation text ({n_ids} ids) is shorter than the context + 1")
    most = last // context + 1  # non-overlapping windows that fit
    k = max(1, min(n_windows, most))
    if k == 1:
        return torch.zeros(1, dtype=torch.long)
    return torch.from_numpy(np.linspace(0, last, k).round().astype(np.int64))


def synthetic_text(n_chars: int = 60_000, seed: int = 0) -> str:
    """A learnable stand-in for the Shakespeare text: words from a small Markov chain.

    >>> t = synthetic_text(500); len(t), set(t) <= set("abcdefghijklmnopqrstuvwxyz .\\n")
    (500, True)
    """
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=rng.integers(2, 8))) for _ in range(40)]
    nxt = rng.integers(0, len(words), size=(len(words), 3))
    out: list[str] = []
    length = 0
    w = 0
    while length < n_chars:
        word = words[w]
        sep = ".\n" if rng.random() < 0.1 else " "
        out.append(word + sep)
        length += len(word) + len(sep)
        w = int(nxt[w, rng.integers(0, 3)])
    return "".join(out)[:n_chars]
