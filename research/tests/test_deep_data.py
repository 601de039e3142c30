"""Data of ``refinedlr bench deep``: deterministic batches and splits, evaluation windows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from refinedlr_bench.deep_data import (
    encode_text,
    image_batches,
    lm_batches,
    prepare_chars,
    prepare_images,
    split_ids,
    synthetic_images,
    synthetic_text,
    val_offsets,
)


def _batches(seed: int) -> list[list[int]]:
    return [b.tolist() for b in image_batches(50, 8, 20, seed=seed)]


def test_image_batches_deterministic_per_seed() -> None:
    assert _batches(3) == _batches(3)
    assert _batches(3) != _batches(4)
    b = _batches(0)
    assert len(b) == 20 and all(len(x) == 8 for x in b)
    # each epoch (6 full batches of 8 out of 50) has no repeated example
    for e in range(3):
        epoch = [i for batch in b[6 * e : 6 * e + 6] for i in batch]
        assert len(set(epoch)) == 48


def test_lm_batches_deterministic_and_shifted() -> None:
    ids = torch.arange(1000)
    a = list(lm_batches(ids, 16, 4, 5, seed=7))
    b = list(lm_batches(ids, 16, 4, 5, seed=7))
    c = list(lm_batches(ids, 16, 4, 5, seed=8))
    assert all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )
    assert not all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, c, strict=True))
    for x, y in a:
        assert x.shape == (4, 16)
        assert torch.equal(y, x + 1)  # ids are positions: the target is the next one
        assert int(y.max()) <= 999


def test_split_is_last_fraction_and_fixed() -> None:
    text = synthetic_text(5000, seed=1)
    assert text == synthetic_text(5000, seed=1)
    d = prepare_chars(text, 0.1)
    assert d.val.numel() == 500 and d.train.numel() == 4500
    vocab, ids = encode_text(text)
    assert vocab == d.vocab
    assert torch.equal(d.val, torch.from_numpy(ids[-500:]))
    assert "".join(vocab[i] for i in ids[:50]) == text[:50]
    tr, va = split_ids(np.arange(7), 0.3)
    assert tr.tolist() == [0, 1, 2, 3, 4] and va.tolist() == [5, 6]
    with pytest.raises(ValueError):
        split_ids(np.arange(7), 0.0)


def test_encode_non_latin_text() -> None:
    vocab, ids = encode_text("héllo – wörld")
    assert "".join(vocab[i] for i in ids) == "héllo – wörld"


def test_val_offsets_cover_and_fixed() -> None:
    offs = val_offsets(10_000, 64, 50)
    assert offs.numel() == 50 and int(offs[0]) == 0 and int(offs[-1]) == 10_000 - 65
    assert torch.equal(offs, val_offsets(10_000, 64, 50))
    assert val_offsets(200, 64, 50).numel() == 3  # only non-overlapping windows fit
    with pytest.raises(ValueError):
        val_offsets(10, 64, 5)


def test_prepare_images_standardises_and_fixes_eval_subset() -> None:
    xtr, ytr, xte, yte = synthetic_images(300, 50, seed=2)
    d = prepare_images(xtr, ytr, xte, yte, eval_train_size=100)
    assert d.x_train.shape == (300, 1, 28, 28) and d.x_train.dtype == torch.float32
    assert abs(float(d.x_train.mean())) < 1e-4 and abs(float(d.x_train.std()) - 1) < 1e-3
    assert d.eval_idx.numel() == 100
    d2 = prepare_images(xtr, ytr, xte, yte, eval_train_size=100)
    assert torch.equal(d.eval_idx, d2.eval_idx) and d.fingerprint == d2.fingerprint
    d3 = prepare_images(xtr, ytr, xte, yte, train_size=200)
    assert d3.n_train == 200 and d3.eval_idx.numel() == 200
