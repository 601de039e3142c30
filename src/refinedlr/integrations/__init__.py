"""Integrations with the training frameworks where users already train.

* :mod:`refinedlr.integrations.transformers`: Hugging Face ``Trainer``: record the pre-clip
  gradient norm of every optimizer step (:func:`~refinedlr.integrations.transformers.record_grad_norms`)
  and drive the Trainer with a refinedlr schedule
  (:func:`~refinedlr.integrations.transformers.use_schedule`). Extra ``refinedlr[transformers]``.
* :mod:`refinedlr.integrations.lightning`: Lightning ``Callback`` that records the unscaled
  pre-clip norms (:class:`~refinedlr.integrations.lightning.GradNormCallback`) and the scheduler
  config for ``configure_optimizers``
  (:func:`~refinedlr.integrations.lightning.lr_scheduler_config`). Extra ``refinedlr[lightning]``.
* :mod:`refinedlr.integrations.optax`: JAX/optax: schedules as jit-traceable optax schedules
  (:func:`~refinedlr.integrations.optax.optax_schedule`), a ``GradientTransformation`` that carries
  the gradient norms in its state (:func:`~refinedlr.integrations.optax.record_norms`) and a host-side
  writer (:class:`~refinedlr.integrations.optax.NormWriter`). Extra ``refinedlr[jax]``.

The modules are named after the packages they adapt; they import those packages absolutely
(``import transformers`` inside ``refinedlr.integrations.transformers`` is the real package), so
nothing is shadowed. Importing this package imports none of the frameworks; each submodule imports
its own framework and raises an :class:`ImportError` naming the extra to install when it is missing.
Every record these integrations write is the core CSV format (``step,l2,l1``, and the
update-direction kinds ``update_l2``, ``update_l1`` of Adam-type optimizers when asked for; one row
per optimizer step, 0-based), read by :func:`refinedlr.read_record`, ``refinedlr refine`` and
``refinedlr verify``.
"""

from __future__ import annotations

__all__: list[str] = []
