"""Integrations with the training frameworks where users already train (one extra each).

* :mod:`refinedlr.integrations.transformers`: the Hugging Face ``Trainer`` (``refinedlr[transformers]``);
* :mod:`refinedlr.integrations.lightning`: Lightning (``refinedlr[lightning]``);
* :mod:`refinedlr.integrations.optax`: JAX / optax (``refinedlr[jax]``).

Each records the norms refinement needs in the core CSV format (``step,l2,l1``, and the update
kinds ``update_l2``, ``update_l1`` when asked for; one row per optimizer step, 0-based) and drives
training with a refinedlr schedule. The modules are named after the packages they adapt and
import them absolutely, so nothing is shadowed; importing this package imports none of them, and a
missing framework gives an :class:`ImportError` that names the extra.
"""

from __future__ import annotations

__all__: list[str] = []
