"""Models of ``refinedlr bench deep``: shapes, causality, bits per character."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

import torch

from refinedlr_bench.deep_models import SmallCNN, TinyGPT, count_parameters, nats_to_bits


def test_gpt_shapes_and_tied_head() -> None:
    model = TinyGPT(vocab_size=13, context=10, n_layer=2, n_head=2, d_model=16)
    logits = model(torch.randint(0, 13, (4, 7)))
    assert logits.shape == (4, 7, 13)
    assert model.head.weight is model.tok.weight
    n_unique = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == n_unique
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, 11, dtype=torch.long))


def test_gpt_is_causal() -> None:
    torch.manual_seed(0)
    model = TinyGPT(vocab_size=11, context=12, n_layer=2, n_head=4, d_model=32).eval()
    x = torch.randint(0, 11, (3, 12))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % 11  # change one token
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)  # earlier positions unchanged
    assert not torch.allclose(a[:, 7:], b[:, 7:])  # the changed position and later ones move


def test_gpt_loss_is_mean_cross_entropy() -> None:
    torch.manual_seed(1)
    model = TinyGPT(vocab_size=5, context=4, n_layer=1, n_head=1, d_model=8)
    x = torch.randint(0, 5, (2, 4))
    t = torch.randint(0, 5, (2, 4))
    logits = model(x)
    manual = -torch.log_softmax(logits, -1).gather(-1, t[..., None]).mean()
    assert torch.allclose(model.loss(x, t), manual, atol=1e-6)
    # a fresh model predicts nearly uniformly: about log2(5) bits per character
    with torch.no_grad():
        x = torch.randint(0, 5, (64, 4))
        bits = nats_to_bits(float(model.loss(x, torch.randint(0, 5, (64, 4)))))
    assert abs(bits - math.log2(5)) < 0.1


def test_bits_per_char() -> None:
    assert nats_to_bits(math.log(2.0)) == pytest.approx(1.0)
    assert nats_to_bits(math.log(256.0)) == pytest.approx(8.0)
    assert nats_to_bits(0.0) == 0.0


def test_cnn_shapes() -> None:
    model = SmallCNN(channels=(4, 8, 16))
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert SmallCNN(channels=(4,), n_classes=3)(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 3
