"""Integrations with the training frameworks where users already train (one extra each):
:mod:`~refinedlr.integrations.transformers` (Hugging Face ``Trainer``),
:mod:`~refinedlr.integrations.lightning` and :mod:`~refinedlr.integrations.optax` (JAX). Importing
this package imports none of them; a missing framework gives an ``ImportError`` naming the extra.
"""

from __future__ import annotations

__all__: list[str] = []
