"""Models of ``refinedlr bench deep``: a small batch-norm CNN and a small GPT-style decoder.

Both are plain PyTorch, written for this benchmark.

* :class:`SmallCNN`: ``conv3x3 -> BN -> ReLU -> maxpool`` blocks (widths ``channels``) and a
  linear classifier on the flattened feature map, for 28x28 single-channel images.
* :class:`TinyGPT`: token + learned position embeddings, ``n_layer`` pre-norm blocks
  (``x + attn(LN(x))``, ``x + MLP(LN(x))``) with causal multi-head self-attention and a 4x GELU
  MLP, a final layer norm and an output projection tied to the token embedding.

Example:
    >>> import torch
    >>> gpt = TinyGPT(vocab_size=11, context=8, n_layer=1, n_head=2, d_model=16)
    >>> gpt(torch.zeros(3, 8, dtype=torch.long)).shape
    torch.Size([3, 8, 11])
    >>> SmallCNN(channels=(4, 8))(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> round(nats_to_bits(math.log(2.0)), 6)
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CausalSelfAttention", "GPTBlock", "SmallCNN", "TinyGPT", "count_parameters"]

LN2 = math.log(2.0)


def nats_to_bits(loss: float) -> float:
    """A cross-entropy in nats per token as bits per token (per character for a char-level LM)."""
    return float(loss) / LN2


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (tied weights counted once)."""
    seen: set[int] = set()
    n = 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


class SmallCNN(nn.Module):
    """Convolutional classifier for ``[N, 1, 28, 28]`` images.

    Each entry of ``channels`` adds ``Conv2d(3x3, padding 1, no bias) -> BatchNorm2d -> ReLU ->
    MaxPool2d(2)`` (28 -> 14 -> 7 -> 3 for three blocks); a linear layer maps the flattened map to
    ``n_classes`` logits.
    """

    def __init__(
        self, channels: Sequence[int] = (16, 32, 64), n_classes: int = 10, image_size: int = 28
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, size = 1, image_size
        for c in channels:
            layers += [
                nn.Conv2d(c_in, c, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in, size = c, size // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in * size * size, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, n_classes]``."""
        logits: torch.Tensor = self.classifier(self.features(x).flatten(1))
        return logits


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``i`` attends to positions ``<= i`` only."""

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model {d_model} is not divisible by n_head {n_head}")
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        h = self.n_head
        q, k, v = self.qkv(x).view(B, L, 3, h, D // h).permute(2, 0, 3, 1, 4)  # [3][B, h, L, dh]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out: torch.Tensor = self.proj(y.transpose(1, 2).reshape(B, L, D))
        return out


class GPTBlock(nn.Module):
    """A pre-norm transformer block: ``x + attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_head)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        out: torch.Tensor = x + self.mlp(self.ln2(x))
        return out


class TinyGPT(nn.Module):
    """A small decoder-only language model over ``vocab_size`` tokens and ``context`` positions.

    Weights start as ``N(0, 0.02)`` (the residual output projections scaled by
    ``1/sqrt(2 n_layer)``), biases at zero; the output layer shares the token embedding.
    """

    def __init__(
        self, vocab_size: int, context: int, n_layer: int = 3, n_head: int = 4, d_model: int = 128
    ) -> None:
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(GPTBlock(d_model, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tok.weight
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02
                if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                    std /= math.sqrt(2 * n_layer)
                nn.init.normal_(p, 0.0, std)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, L, vocab]`` for token indices ``[B, L]`` (``L <= context``)."""
        L = idx.shape[1]
        if L > self.context:
            raise ValueError(f"sequence length {L} exceeds the context {self.context}")
        x = self.tok(idx) + self.pos(torch.arange(L, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.head(self.ln_f(x))
        return logits

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy in nats."""
        logits = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
